"""The bounded queue in front of the transform threads: wait for a slot, or be refused at once.

A worker works on at most `slots` misses (fetch + transform) at a time, so at most that many originals
are in memory, and its transform threads bound the decoded images; up to `queue` more wait their turn,
holding nothing but a connection. Any further miss is refused with 503 and `Retry-After` immediately
instead of queueing without end.
"""
from __future__ import annotations

import asyncio
from types import TracebackType

from sidecar.errors import Overloaded
from sidecar.observe.metrics import Metrics


class Admission:
    """`metrics` gets the queue depth and the misses at work (gauges summed over the live workers)."""

    def __init__(self, slots: int, queue: int, metrics: Metrics | None = None) -> None:
        self.slots, self.queue = slots, queue
        self._free = asyncio.Semaphore(slots)
        self.waiting = 0
        self.metrics = metrics or Metrics()

    @property
    def busy(self) -> int:
        return self.slots - self._free._value  # noqa: SLF001 (asyncio exposes no public count)

    async def __aenter__(self) -> None:
        if self._free.locked():
            if self.waiting >= self.queue:
                raise Overloaded(detail=f"{self.slots} working and {self.waiting} queued")
            self.waiting += 1
            self.metrics.queue_depth.inc()
            try:
                await self._free.acquire()
            finally:
                self.waiting -= 1
                self.metrics.queue_depth.dec()
        else:
            await self._free.acquire()
        self.metrics.in_flight.inc()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.metrics.in_flight.dec()
        self._free.release()
