"""Single-flight: one fetch and one transform per rendition, however many requests and worker processes.

Within a process, the first request for a rendition starts a *flight* and later ones await the same
future. Across processes, a flight's leader holds an exclusive `flock` on a dot-named lock file beside the
rendition (nginx refuses dot-names). A leader that finds the lock taken polls: when the rendition appears,
it is done; when the lock comes free without one (the holder failed, or died: the kernel drops a dead
process's locks), it takes the lock and does the work itself. So a crashed worker delays the others by
one poll interval, never past their deadline.

The holder unlinks the lock file before closing it. Whoever locked the unlinked inode in between sees
that the path no longer names it and tries again, so two live holders of one rendition cannot exist.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Generic, TypeVar

import aiofiles.os

from sidecar.cache.store import LOCK_PREFIX, Cache
from sidecar.errors import DeadlineExceeded

T = TypeVar("T")
POLL_FIRST = 0.005
POLL_MAX = 0.05


class _State(Enum):
    PUBLISHED = "published"
    LOCKED = "locked"
    BUSY = "busy"


@dataclass
class Lead(Generic[T]):
    """How a flight ended: `result` is the leader's, or None when another process published the file
    (then `found` is the file)."""

    result: T | None
    found: Path | None = None
    joined: bool = False  # True for requests that waited for another request's flight


class Flights(Generic[T]):
    """In-flight renditions of this process, keyed by their final path."""

    def __init__(self, cache: Cache, io: Executor) -> None:
        self.cache, self.io = cache, io
        # One trip each to the cache's threads, through aiofiles (see `sidecar.cache.store`).
        self._lock = aiofiles.os.wrap(self._try_lock)
        self._unlock = aiofiles.os.wrap(self._release)
        self._flights: dict[Path, asyncio.Task[tuple[T | None, Path | None]]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, finals: list[Path], make: Callable[[], Awaitable[T]], give_up: float) -> Lead[T]:
        """Run `make` once for a rendition across all processes, or wait for whoever is running it.

        `finals` are the names the rendition may be published under (the first one keys the flight and
        its lock). The flight is shielded: a request that gives up (deadline, shutdown) leaves it
        running, so the rendition still lands in the cache. A leader waits for another process's lock
        until `give_up` (event loop time).
        """
        task = self._flights.get(finals[0])
        joined = task is not None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._lead(finals, make, give_up))
            self._flights[finals[0]] = task
            task.add_done_callback(lambda _: self._done(finals[0], task))
        result, found = await asyncio.shield(task)
        return Lead(result, found, joined)

    def _done(self, key: Path, task: asyncio.Task[tuple[T | None, Path | None]]) -> None:
        self._flights.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have given up on it already

    async def _lead(self, finals: list[Path], make: Callable[[], Awaitable[T]],
                    give_up: float) -> tuple[T | None, Path | None]:
        loop = asyncio.get_running_loop()
        lock_path = finals[0].with_name(LOCK_PREFIX + finals[0].name)
        delay = POLL_FIRST
        while True:
            state, fd, found = await self._lock(finals, lock_path, executor=self.io)
            if state is _State.PUBLISHED:
                return None, found
            if state is _State.LOCKED:
                break
            if loop.time() >= give_up:
                raise DeadlineExceeded(detail=f"{lock_path} stayed locked")
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX)
        try:
            return await make(), None
        finally:
            await self._unlock(lock_path, fd, executor=self.io)

    def _release(self, lock_path: Path, fd: int | None) -> None:
        """Unlock, and remove the directories this flight made if it published nothing in them."""
        _unlock(lock_path, fd)
        self.cache.prune(lock_path.parent)

    def _try_lock(self, finals: list[Path], lock_path: Path) -> tuple[_State, int | None, Path | None]:
        """Where the flight stands, the lock's descriptor (only when LOCKED with a lock), and the file
        found published. Descriptors are opened close-on-exec, as `os.open` always does (PEP 446)."""
        found = _published(finals)
        if found:
            return _State.PUBLISHED, None, found
        try:
            fd = self._open_lock(lock_path)
        except OSError:
            # A full or read-only cache: go on without the cross-process lock. The rendition cannot be
            # published anyway, and this process's own requests still share one flight.
            return _State.LOCKED, None, None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return _State.BUSY, None, None
        if not _names(lock_path, fd):
            os.close(fd)
            return _State.BUSY, None, None
        found = _published(finals)
        if found:  # published between our first look and the lock
            _unlock(lock_path, fd)
            return _State.PUBLISHED, None, found
        return _State.LOCKED, fd, None

    def _open_lock(self, lock_path: Path) -> int:
        for _ in range(3):
            try:
                return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # the original's first miss, or a failed flight or gc removed the dir
                self.cache.makedirs(lock_path.parent)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)


def _published(finals: list[Path]) -> Path | None:
    return next((final for final in finals if final.is_file()), None)


def _names(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd` (its holder may have unlinked it)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _unlock(lock_path: Path, fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.unlink(lock_path)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def wait_for_holders(directory: Path) -> None:
    """Block until every flight holding a lock in `directory` right now has finished (for purges)."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith(LOCK_PREFIX)]
    except FileNotFoundError:
        return
    for name in names:
        try:
            fd = os.open(directory / name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)


def remove_if_unheld(path: Path) -> bool:
    """Remove a lock or temporary file that no process holds a flock on (left by a crash)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    if _names(path, fd):
        _unlock(path, fd)
        return True
    os.close(fd)
    return False
