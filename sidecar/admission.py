"""The bounded queue in front of the transform threads: wait for a slot, or be refused at once.

A worker works on at most `slots` misses (fetch + transform) at a time, so at most that many originals
are in memory, and its transform threads bound the decoded images; up to `queue` more wait their turn,
holding nothing but a connection. Any further miss is refused with 503 and `Retry-After` immediately
instead of queueing without end.
"""
from __future__ import annotations

import asyncio
from types import TracebackType

from .errors import Overloaded


class Admission:
    def __init__(self, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._free = asyncio.Semaphore(slots)
        self.waiting = 0

    @property
    def busy(self) -> int:
        return self.slots - self._free._value  # noqa: SLF001 (asyncio exposes no public count)

    async def __aenter__(self) -> None:
        if self._free.locked():
            if self.waiting >= self.queue:
                raise Overloaded(detail=f"{self.slots} working and {self.waiting} queued")
            self.waiting += 1
            try:
                await self._free.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._free.acquire()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._free.release()
