"""`resize-sidecar warm`: make renditions before anyone asks, e.g. the most popular size of new uploads.

Runs the same miss path as the server (`Handler`) in this process, so it shares the single-flight locks
with a running sidecar (nothing is made twice) and publishes exactly what nginx would serve. At most
`concurrency` renditions are made at a time; a progress bar goes to stderr and a summary to stdout.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

from sidecar.app.handler import Handler
from sidecar.app.renditions import file_names
from sidecar.app.resolver import with_row
from sidecar.builder import build_url, preset_fields
from sidecar.cache.store import Cache
from sidecar.config import Config
from sidecar.errors import BadRequest, SidecarError
from sidecar.sources import open_chain
from sidecar.url.grammar import AUTO_VARIANTS, Rendition, parse

BAR_WIDTH = 30


@dataclass
class Summary:
    made: int = 0
    cached: int = 0
    failed: Counter[int] = field(default_factory=Counter)  # by HTTP status
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.made + self.cached + sum(self.failed.values())

    def line(self) -> str:
        failures = ", ".join(f"{status}: {n}" for status, n in sorted(self.failed.items()))
        rate = self.total / self.seconds if self.seconds else 0.0
        return (f"warm: {self.total} renditions in {self.seconds:.1f}s ({rate:.1f}/s): {self.made} made, "
                f"{self.cached} already cached, {sum(self.failed.values())} failed"
                + (f" ({failures})" if failures else ""))


def read_keys(lines: Iterable[str]) -> Iterator[str]:
    """Keys one per line; blank lines and lines starting with # are skipped."""
    for line in lines:
        key = line.strip()
        if key and not key.startswith("#"):
            yield key


async def warm(config: Config, keys: list[str], presets: list[str], concurrency: int,
               progress: TextIO = sys.stderr, *, ids: bool = False) -> Summary:
    """With `ids`, `keys` are image IDs, looked up by the resolver (its row's watermark and preset apply)."""
    config = config.replace(threads=concurrency, queue=len(keys) * len(presets) + 1)
    cpu = ThreadPoolExecutor(concurrency, thread_name_prefix="transform")
    io = ThreadPoolExecutor(8, thread_name_prefix="io")
    sources = await open_chain(config)
    handler = Handler(config, sources, cpu, io)
    # An `.auto` preset has one rendition per variant nginx may ask for (by the client's Accept).
    jobs = [(key, preset, variant) for key in keys for preset in presets
            for variant in (AUTO_VARIANTS if config.urls.presets[preset].format == "auto" else (None,))]
    summary = Summary()
    bar = Progress(len(jobs), progress)
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str, preset: str, variant: str | None) -> None:
        label = f"{key} ({preset}{'/' + variant if variant else ''})"
        async with gate:
            try:
                if ids:
                    if handler.resolver is None:
                        raise BadRequest("image IDs need the resolver (SIDECAR_RESOLVER_DSN)")
                    resolved = await handler.resolver.resolve(key)
                    path = build_url(config, resolved.key,
                                     operations=with_row(config, resolved, preset_fields(config, preset)))
                else:
                    path = build_url(config, key, preset=preset)
                parsed = parse(path, prefix=config.urls.url_prefix, signed=config.urls.signed)
                base = parsed.target.file_path(config.urls.url_prefix, parsed.signature)
                assert isinstance(parsed.target, Rendition)  # built from a preset: never an info URL
                names = file_names(base, parsed.target.ops, None, variant)
                if await _any_exists(handler.cache, names):
                    summary.cached += 1
                else:
                    response = await handler.handle("GET", path, variant)
                    if any(name == "X-Accel-Redirect" for name, _ in response.headers):
                        summary.made += 1
                    else:  # served from memory: the cache refused the file (disk full, read-only)
                        summary.failed[507] += 1
                        bar.note(f"{label}: not written to the cache")
            except SidecarError as exc:
                summary.failed[exc.status] += 1
                bar.note(f"{label}: {exc.status} {exc.public}")
            bar.update(summary)

    try:
        await asyncio.gather(*(one(*job) for job in jobs))
    finally:
        summary.seconds = time.monotonic() - started
        bar.done()
        await sources.close()
        if handler.resolver is not None:
            await handler.resolver.close()
        cpu.shutdown(wait=True)
        io.shutdown(wait=True)
    return summary


async def _any_exists(cache: Cache, names: list[str]) -> bool:
    for name in names:
        if await cache.exists(name):
            return True
    return False


class Progress:
    """A one-line bar on a terminal; on anything else, a line at every tenth of the way."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last_tenth = -1

    def update(self, summary: Summary) -> None:
        done = summary.total
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed else 0.0
        filled = BAR_WIDTH * done // max(self.total, 1)
        text = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self.total} "
                f"made {summary.made} cached {summary.cached} failed {sum(summary.failed.values())} "
                f"{rate:.1f}/s")
        if self.tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif (tenth := 10 * done // max(self.total, 1)) != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(text + "\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + message + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
