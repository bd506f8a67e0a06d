"""The `processes` section: how many workers and threads make renditions, how much memory they may
hold, how long a miss may take and how a worker drains."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.fields import Where, at_least_zero, positive, require, setting


@dataclass(frozen=True)
class ProcessesSection:
    """Workers, threads, the queue in front of them, the memory they share and the deadline of a miss."""

    workers: int = setting(0, "worker processes; `0`: one per core, but no more than `memory_budget` holds")
    threads: int = setting(1, "transforms at a time in each worker (Pillow releases the GIL while it works)")
    transform_nice: int = setting(10, "nice value of the transform threads (0-19), so that nginx's hits and "
                                  "the event loops go first")
    queue: int = setting(64, "misses that may wait for a transform slot in each worker; beyond that, 503 with "
                         "`Retry-After: 1` at once")
    request_deadline: float = setting(30.0, "seconds a miss may take to find, fetch (all sources and retries) "
                                      "and transform its original, waiting in the queue or for an identical miss "
                                      "included; then 504 with `Retry-After: 1` (the work itself goes on and lands "
                                      "in the cache). nginx's `proxy_read_timeout` is rendered as this plus 30")
    drain_timeout: int = setting(20, "seconds a worker may take on SIGTERM to finish what it accepted")
    memory_budget: int = setting(2 * 1024**3, "bytes for all workers together; each needs 80 MiB + `threads` × "
                                 "(2 × `max_source_bytes` + 14 × `max_pixels`). A start-up error names it when "
                                 "the workers cannot fit", shown="`2147483648` (2 GiB)")
    release_memory: bool = setting(True, "`malloc_trim(0)` after each transform (see "
                                   "[operations.md](operations.md#memory-and-tuning))")

    @property
    def worker_threads(self) -> int:
        """Transforms at a time in one worker process."""
        return self.threads

    @property
    def worker_slots(self) -> int:
        """Misses a worker works on at once: two per transform thread, so that one can wait for its
        source (a slow or hung one included) while another transforms."""
        return 2 * self.threads

    def check(self, where: Where) -> None:
        positive(self, where, "threads", "drain_timeout", "memory_budget", "request_deadline")
        require(self.request_deadline <= 3600, where("request_deadline"), "must be at most 3600 seconds")
        at_least_zero(self, where, "workers", "queue")
        require(0 <= self.transform_nice <= 19, where("transform_nice"), "must be 0 to 19")
