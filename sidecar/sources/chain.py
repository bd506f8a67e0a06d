"""The sources of a deployment, tried in order under one deadline, with the fallback rules in one place.

- found: the original, and the kind of the source that had it (`X-Image-Source`);
- "not found" in a source: try the next;
- "refused" (the source answered, but not with this key's original: a redirect, 403 for one object,
  S3 AccessDenied): like not found, and the source answered, so its circuit breaker counts a success;
- "unavailable" (connection refused or reset, IO error, 5xx, throttling) or a timeout: count it
  towards the source's circuit breaker, try the next;
- a source marked down by its circuit breaker is skipped and counts as unavailable;
- all not found or refused: 404; nothing found and any source unavailable: 502, or 504 if one timed out;
- too large: 413 at once (another source would have the same original).

`source_retries` retries an unavailable source that many times before moving on (timeouts are not
retried: they have already cost their time). No attempt starts after the deadline, and an attempt in
flight is cut at the deadline.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sidecar.errors import NotFound, SourceRefused, SourceTimeout, SourceUnavailable
from sidecar.log import log
from sidecar.observe.metrics import Metrics
from sidecar.sources.breaker import CircuitBreaker


class Source(Protocol):
    """One place originals live. `fetch` raises NotFound, SourceUnavailable, SourceTimeout or TooLarge."""

    kind: str  # local, s3 or http: what X-Image-Source says
    name: str  # which one, for logs and counts

    async def fetch(self, key: str) -> bytes: ...

    async def probe(self) -> None:
        """Check that the source answers at all (for /readyz); raise SourceUnavailable or SourceTimeout."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Original:
    data: bytes
    source: str  # the `kind` of the source that had it, for the X-Image-Source header


class SourceChain:
    def __init__(self, sources: Sequence[Source], *, retries: int = 0, down_after: int = 5,
                 down_for: float = 10.0, metrics: Metrics | None = None) -> None:
        self.sources = tuple(sources)
        self.retries = retries
        self.breakers = [CircuitBreaker(down_after, down_for) for _ in self.sources]
        #: The process's metrics (one object per process: the handler uses this one too).
        self.metrics = metrics or Metrics()
        self.metrics.initialise(source.name for source in self.sources)

    async def fetch(self, key: str, deadline: float) -> Original:
        """Find `key`; `deadline` is in the running loop's time."""
        loop = asyncio.get_running_loop()
        failures: list[SourceUnavailable | SourceTimeout] = []
        for source, breaker in zip(self.sources, self.breakers):
            if not breaker.allow(loop.time()):
                self._count(source, "skipped_down")
                failures.append(SourceUnavailable(detail=f"{source.name} is marked down"))
                continue
            try:
                data = await self._fetch_from(source, breaker, key, deadline)
            except (SourceUnavailable, SourceTimeout) as exc:
                failures.append(exc)
                if loop.time() >= deadline:
                    break
                continue
            if data is not None:
                return Original(data, source.kind)
        return self._give_up(failures)

    async def _fetch_from(self, source: Source, breaker: CircuitBreaker, key: str,
                          deadline: float) -> bytes | None:
        """One source, retried as configured: the original, None if the source does not have it, or the
        last failure raised."""
        loop = asyncio.get_running_loop()
        for attempt in range(self.retries + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SourceTimeout(detail=f"request deadline passed before {source.name}")
            started = time.perf_counter()
            try:
                async with asyncio.timeout(remaining):
                    data = await source.fetch(key)
            except SourceRefused as exc:  # the key's answer: never marks the source down, never retried
                self._count(source, "refused", started)
                log("source_refused", source=source.name, error=exc.detail)
                self._answered(source, breaker)
                return None
            except NotFound:
                self._count(source, "not_found", started)
                self._answered(source, breaker)
                return None
            except TimeoutError:  # the request's deadline: not necessarily this source's fault
                self._count(source, "timeout", started)
                log("source_failed", source=source.name, status=504, error="request deadline reached")
                raise SourceTimeout(detail=f"{source.name}: request deadline reached") from None
            except SourceTimeout as exc:  # its own timeout: not retried, it has cost its time already
                self._count(source, "timeout", started)
                self._failed(source, breaker, loop.time(), exc)
                raise
            except SourceUnavailable as exc:
                self._count(source, "unavailable", started)
                self._failed(source, breaker, loop.time(), exc)
                if attempt >= self.retries:
                    raise
                self.metrics.source_retries.labels(source.name).inc()
                continue
            self._count(source, "found", started)
            self.metrics.source_bytes.labels(source.name).inc(len(data))
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

    def _count(self, source: Source, outcome: str, started: float | None = None) -> None:
        self.metrics.source_requests.labels(source.name, outcome).inc()
        if started is not None:
            self.metrics.source_seconds.labels(source.name).observe(time.perf_counter() - started)

    def _answered(self, source: Source, breaker: CircuitBreaker) -> None:
        if breaker.succeeded():
            self.metrics.source_down.labels(source.name).set(0)
            log("source_up", source=source.name)

    def _failed(self, source: Source, breaker: CircuitBreaker, now: float,
                exc: SourceUnavailable | SourceTimeout) -> None:
        log("source_failed", source=source.name, status=exc.status, error=exc.detail or exc.public)
        if breaker.failed(now):
            self.metrics.source_marked_down.labels(source.name).inc()
            self.metrics.source_down.labels(source.name).set(1)
            log("source_down", source=source.name, seconds=breaker.down_for, failures=breaker.failures)

    async def probe(self) -> dict[str, str]:
        """Ask every source whether it answers (for /readyz): its name -> "ok", or what went wrong."""
        async def one(source: Source) -> str:
            try:
                await source.probe()
            except (SourceUnavailable, SourceTimeout) as exc:
                return exc.detail or exc.public
            return "ok"

        results = await asyncio.gather(*(one(source) for source in self.sources))
        return dict(zip((source.name for source in self.sources), results))

    async def close(self) -> None:
        for source in self.sources:
            await source.close()
