"""Counters shared by every worker process, for `GET /_sidecar/stats` and the benchmarks.

One small shared memory file (memfd) holds a row of 64-bit counters per process; each process writes only
its own row, so no locks are needed, and a reader sums the rows. The supervisor creates it and hands the
file descriptor to each worker with the listening socket.
"""
from __future__ import annotations

import mmap
import os
import struct

COUNTERS = (
    "requests", "transforms", "joined", "overloaded", "deadline_exceeded", "cache_write_failures",
    "superseded", "purged_files", "evicted_files", "evicted_bytes", "stale_removed", "worker_restarts",
    "memory_released", "resolver_queries", "resolver_cache_hits", "resolver_gone", "resolver_failures",
    "resolver_query_us", "route_links",
)
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
_WIDTH = 8


class Stats:
    def __init__(self, fd: int, rows: int, row: int) -> None:
        self.fd, self.rows, self.row = fd, rows, row
        self._map = mmap.mmap(fd, rows * len(COUNTERS) * _WIDTH)

    @classmethod
    def create(cls, rows: int) -> Stats:
        """A new zeroed table (row 0 for the caller); `fd` is inheritable for worker processes."""
        fd = os.memfd_create("resize-sidecar-stats", 0)
        os.ftruncate(fd, rows * len(COUNTERS) * _WIDTH)
        return cls(fd, rows, 0)

    def for_row(self, row: int) -> Stats:
        return Stats(self.fd, self.rows, row)

    def add(self, name: str, count: int = 1) -> None:
        offset = (self.row * len(COUNTERS) + _INDEX[name]) * _WIDTH
        (value,) = struct.unpack_from("q", self._map, offset)
        struct.pack_into("q", self._map, offset, value + count)

    def totals(self) -> dict[str, int]:
        values = struct.unpack_from(f"{self.rows * len(COUNTERS)}q", self._map)
        return {name: sum(values[row * len(COUNTERS) + i] for row in range(self.rows))
                for i, name in enumerate(COUNTERS)}
