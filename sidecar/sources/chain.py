"""The sources of a deployment, tried in order under one deadline, with the fallback rules in one place.

- found: the original, and the kind of the source that had it (`X-Image-Source`);
- "not found" in a source: try the next;
- "unavailable" (refused, reset, IO error, bad status) or a timeout: count it, try the next;
- a source marked down by its circuit breaker is skipped and counts as unavailable;
- all not found: 404; nothing found and any source unavailable: 502, or 504 if one timed out;
- too large: 413 at once (another source would have the same original).

`source_retries` retries an unavailable source that many times before moving on (timeouts are not
retried: they have already cost their time). No attempt starts after the deadline, and an attempt in
flight is cut at the deadline.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import NotFound, SourceTimeout, SourceUnavailable
from ..log import log
from .breaker import CircuitBreaker, SourceCounts


class Source(Protocol):
    """One place originals live. `fetch` raises NotFound, SourceUnavailable, SourceTimeout or TooLarge."""

    kind: str  # local, s3 or http: what X-Image-Source says
    name: str  # which one, for logs and counts

    async def fetch(self, key: str) -> bytes: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Original:
    data: bytes
    source: str  # the `kind` of the source that had it, for the X-Image-Source header


class SourceChain:
    def __init__(self, sources: Sequence[Source], *, retries: int = 0, down_after: int = 5,
                 down_for: float = 10.0) -> None:
        self.sources = tuple(sources)
        self.retries = retries
        self.breakers = [CircuitBreaker(down_after, down_for) for _ in self.sources]
        self._counts = [SourceCounts() for _ in self.sources]

    @property
    def counts(self) -> Mapping[str, SourceCounts]:
        """Per-source counters, by source name (the config refuses the same source twice)."""
        return {source.name: counts for source, counts in zip(self.sources, self._counts)}

    async def fetch(self, key: str, deadline: float) -> Original:
        """Find `key`; `deadline` is in the running loop's time."""
        loop = asyncio.get_running_loop()
        failures: list[SourceUnavailable | SourceTimeout] = []
        for source, breaker, counts in zip(self.sources, self.breakers, self._counts):
            if not breaker.allow(loop.time()):
                counts.skipped_down += 1
                failures.append(SourceUnavailable(detail=f"{source.name} is marked down"))
                continue
            try:
                data = await self._fetch_from(source, breaker, counts, key, deadline)
            except (SourceUnavailable, SourceTimeout) as exc:
                failures.append(exc)
                if loop.time() >= deadline:
                    break
                continue
            if data is not None:
                return Original(data, source.kind)
        return self._give_up(failures)

    async def _fetch_from(self, source: Source, breaker: CircuitBreaker, counts: SourceCounts, key: str,
                          deadline: float) -> bytes | None:
        """One source, retried as configured: the original, None if the source does not have it, or the
        last failure raised."""
        loop = asyncio.get_running_loop()
        for attempt in range(self.retries + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SourceTimeout(detail=f"request deadline passed before {source.name}")
            try:
                async with asyncio.timeout(remaining):
                    data = await source.fetch(key)
            except NotFound:
                counts.not_found += 1
                self._answered(source, breaker)
                return None
            except TimeoutError:  # the request's deadline: not necessarily this source's fault
                counts.timeouts += 1
                log("source_failed", source=source.name, status=504, error="request deadline reached")
                raise SourceTimeout(detail=f"{source.name}: request deadline reached") from None
            except SourceTimeout as exc:  # its own timeout: not retried, it has cost its time already
                counts.timeouts += 1
                self._failed(source, breaker, counts, loop.time(), exc)
                raise
            except SourceUnavailable as exc:
                counts.unavailable += 1
                self._failed(source, breaker, counts, loop.time(), exc)
                if attempt >= self.retries:
                    raise
                counts.retries += 1
                continue
            counts.found += 1
            self._answered(source, breaker)
            return data
        raise AssertionError("the last attempt returns or raises")

    @staticmethod
    def _give_up(failures: list[SourceUnavailable | SourceTimeout]) -> Original:
        detail = "; ".join(exc.detail or exc.public for exc in failures)
        if any(isinstance(exc, SourceTimeout) for exc in failures):
            raise SourceTimeout(detail=detail)
        if failures:
            raise SourceUnavailable(detail=detail)
        raise NotFound()

    def _answered(self, source: Source, breaker: CircuitBreaker) -> None:
        if breaker.succeeded():
            log("source_up", source=source.name)

    def _failed(self, source: Source, breaker: CircuitBreaker, counts: SourceCounts, now: float,
                exc: SourceUnavailable | SourceTimeout) -> None:
        log("source_failed", source=source.name, status=exc.status, error=exc.detail or exc.public)
        if breaker.failed(now):
            counts.marked_down += 1
            log("source_down", source=source.name, seconds=breaker.down_for, failures=breaker.failures,
                counts=counts.as_dict())

    async def close(self) -> None:
        for source in self.sources:
            await source.close()
