"""Where originals come from: sources tried in order, with the fallback rules in one place.

Rules: "not found" in one source -> try the next; "unavailable" or a timeout -> try the next too;
all not found -> 404; nothing found and any source unavailable -> 502 (504 if one timed out).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import NotFound, SourceTimeout, SourceUnavailable


class Source(Protocol):
    """One place originals live. `fetch` raises NotFound, SourceUnavailable, SourceTimeout or TooLarge."""

    kind: str

    async def fetch(self, key: str) -> bytes: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Original:
    data: bytes
    source: str  # the `kind` of the source that had it, for the X-Image-Source header


class SourceChain:
    """Tries each source in order and applies the fallback rules."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = tuple(sources)

    async def fetch(self, key: str) -> Original:
        failures: list[Exception] = []
        for source in self.sources:
            try:
                return Original(await source.fetch(key), source.kind)
            except NotFound:
                continue
            except (SourceUnavailable, SourceTimeout) as exc:
                failures.append(exc)
        if any(isinstance(exc, SourceTimeout) for exc in failures):
            raise SourceTimeout(detail="; ".join(map(str, failures)))
        if failures:
            raise SourceUnavailable(detail="; ".join(map(str, failures)))
        raise NotFound()

    async def close(self) -> None:
        for source in self.sources:
            await source.close()
