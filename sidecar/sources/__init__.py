"""Where originals come from: local directories, S3 and HTTP origins, tried in order (see `chain`).

Each source gets one long-lived client, opened at start by `open_chain` and closed with the chain.
"""
from __future__ import annotations

from typing import Any

from sidecar.config import Config
from sidecar.config.sources import SourceSpec, parse_source
from sidecar.observe.metrics import Metrics
from sidecar.sources.chain import Original, Source, SourceChain
from sidecar.sources.local import LocalSource

__all__ = ["Original", "Source", "SourceChain", "SourceSpec", "open_chain", "open_source", "parse_source"]


async def open_source(spec: SourceSpec, config: Config) -> Source:
    """The client for one source, with the config's limits and timeouts."""
    fetch = config.fetch
    if spec.kind == "local":
        return LocalSource(spec, max_bytes=config.limits.max_source_bytes, open_timeout=fetch.source_first_byte_timeout,
                           read_timeout=fetch.source_body_timeout, threads=fetch.source_pool_size)
    common: dict[str, Any] = dict(max_bytes=config.limits.max_source_bytes,
                                  connect_timeout=fetch.source_connect_timeout,
                                  first_byte_timeout=fetch.source_first_byte_timeout,
                                  body_timeout=fetch.source_body_timeout, pool_size=fetch.source_pool_size)
    # Imported here: aiobotocore and aiohttp take a moment to import and only remote sources need them.
    if spec.kind == "s3":
        from sidecar.sources.s3 import S3Source

        return await S3Source.open(spec, addressing_style=fetch.s3_addressing_style, **common)
    from sidecar.sources.http import HttpSource

    return await HttpSource.open(spec, **common)


async def open_chain(config: Config, metrics: Metrics | None = None) -> SourceChain:
    """Every configured source, opened; if one cannot be, those already open are closed again. The chain
    counts into `metrics` (the process's one Metrics object), or its own."""
    sources: list[Source] = []
    try:
        for spec in config.fetch.specs:
            sources.append(await open_source(spec, config))
    except BaseException:
        for source in sources:
            await source.close()
        raise
    fetch = config.fetch
    return SourceChain(sources, retries=fetch.source_retries, down_after=fetch.source_down_after,
                       down_for=fetch.source_down_seconds, metrics=metrics)
