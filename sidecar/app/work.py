"""What every miss shares: the process's executors, cache and metrics, publishing to the cache, and CPU
work bounded by the request's deadline."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from sidecar.cache.store import Cache, Superseded
from sidecar.config import Config
from sidecar.errors import DeadlineExceeded
from sidecar.log import log
from sidecar.observe.metrics import Metrics, write_failure_reason

T = TypeVar("T")


@dataclass(frozen=True)
class Work:
    """One worker process's means: `cpu` runs transforms (at low priority), `io` runs file IO."""

    config: Config
    cache: Cache
    metrics: Metrics
    cpu: Executor
    io: Executor

    async def publish(self, file_path: str, data: bytes, *, fetched_at: float | None = None) -> bool:
        """Write to the cache (through aiofiles, in the IO threads) and count it; False when the cache
        refused the file, in which case the caller answers from memory and the next request tries the
        write again."""
        try:
            await self.cache.write(file_path, data, fetched_at=fetched_at)
        except Superseded as exc:
            self.metrics.cache_writes.labels("superseded", "").inc()
            log("cache_superseded", path=file_path, error=str(exc))
            return False
        except OSError as exc:
            self.metrics.cache_writes.labels("failed", write_failure_reason(exc)).inc()
            log("cache_write_failed", path=file_path, error=str(exc))
            return False
        self.metrics.cache_writes.labels("written", "").inc()
        return True

    async def in_time(self, deadline: float, work: Callable[[], T]) -> T:
        """Run CPU work in the transform threads, within the request's deadline."""
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.get_running_loop().run_in_executor(self.cpu, work)
        except TimeoutError:
            raise DeadlineExceeded(detail=f"not done within {self.config.processes.request_deadline}s") from None
