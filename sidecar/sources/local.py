"""Originals in a local (or NFS) directory, read through aiofiles in the source's own threads: streamed in
chunks, with a timeout on opening and on every read, and the size cap enforced while reading.

Each trip to the threads costs some 50 us of CPU, as much as reading a small original, so a trip does
all it may: opening a file is one (with its checks), each read another, and the read that reaches the
end closes the file. An original up to `CHUNK` bytes takes two trips, as many as a blocking open and
read took before aiofiles.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiofiles.os

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceTimeout, SourceUnavailable
from sidecar.sources.body import check_length, read_capped

THREAD_PREFIX = "source-local"
#: The most one read asks for: a few per photo, and at most one chunk is read past the size cap.
CHUNK = 1024 * 1024
#: How long closing the source waits for files whose reads were cut to close.
CLOSE_GRACE = 0.5
_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG}


class _File:
    """An original open in the source's threads. Its methods block (they run there, one at a time);
    `fd` is -1 once closed."""

    def __init__(self, fd: int, path: str, size: int | None) -> None:
        self.fd, self.path, self.size, self.done = fd, path, size, 0
        self.trip: asyncio.Future[bytes] | None = None  # the last read, when one was sent

    def read(self) -> bytes:
        """The next chunk (one read of the file). Closes the file at its end: an empty read, or a short
        one that reaches the size it had when opened (a pipe's reads are short all along). Asks for one
        byte past that size, not a whole CHUNK: a small original's buffer is its size."""
        size = self.size
        want = CHUNK if size is None or self.done >= size else min(CHUNK, size - self.done + 1)
        try:
            chunk = os.read(self.fd, want)
        except OSError as exc:
            raise _classify(exc, self.path) from None
        self.done += len(chunk)
        if not chunk or (size is not None and self.done >= size and len(chunk) < want):
            self.close()
        return chunk

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class LocalSource:
    """A directory. Keys are relative paths; nothing outside the directory is ever read.

    Opening (with its checks) is bounded by the first-byte timeout, like the answer of a remote source
    starting, and so is every read; the whole body by the body timeout. Each source has its own threads
    (aiofiles runs every call in them), so a hung mount fills only its own pool, never another source's,
    and never the event loop.
    """

    kind = "local"

    def __init__(self, spec: SourceSpec, *, max_bytes: int, open_timeout: float, read_timeout: float,
                 threads: int) -> None:
        self.name = spec.name
        self.root = os.path.realpath(spec.location)
        self.max_bytes, self.open_timeout, self.read_timeout = max_bytes, open_timeout, read_timeout
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=THREAD_PREFIX)
        self._open_file = aiofiles.os.wrap(self._open_blocking)
        self._read = aiofiles.os.wrap(_File.read)
        self._close = aiofiles.os.wrap(_File.close)
        self._first_entry = aiofiles.os.wrap(self._list)
        self._closing: set[asyncio.Future[None]] = set()

    async def fetch(self, key: str) -> bytes:
        file = await self._open(key)
        try:
            return await read_capped(self._chunks(file), max_bytes=self.max_bytes,
                                     timeout=self.read_timeout, what=self.name, stall=self.open_timeout)
        finally:
            self._close_soon(file)  # nobody needs to wait for it; a read cut by its timeout may hold it

    async def probe(self) -> None:
        """The directory can be listed, within the open timeout (a dead NFS mount cannot)."""
        listing = asyncio.ensure_future(self._first_entry(executor=self._executor))
        try:
            await asyncio.wait_for(asyncio.shield(listing), self.open_timeout)
        except TimeoutError:
            raise SourceTimeout(detail=f"{self.name}: listing took longer than {self.open_timeout}s") from None

    async def _open(self, key: str) -> _File:
        # A hung NFS mount costs this request its timeout; the stuck thread is ours, not the loop's.
        opening = asyncio.ensure_future(self._open_file(key, executor=self._executor))
        try:
            return await asyncio.wait_for(asyncio.shield(opening), self.open_timeout)
        except BaseException as exc:  # a timeout here, or the request's deadline cancelling us
            opening.add_done_callback(self._close_late)  # if the open ever returns, do not leak the fd
            if isinstance(exc, TimeoutError):
                raise SourceTimeout(detail=f"{self.name}: open took longer than {self.open_timeout}s") from None
            raise

    def _open_blocking(self, key: str) -> _File:
        """Open `key` (in our threads) with the checks that go with it: inside the root, not already over
        the size cap."""
        if not os.path.isdir(self.root):
            raise SourceUnavailable(detail=f"{self.name} is not a directory")
        path = os.path.realpath(os.path.join(self.root, key))
        if os.path.commonpath((self.root, path)) != self.root:
            raise NotFound(detail=f"{key!r} resolves outside {self.root}")  # symlink out of the root
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _classify(exc, path) from None
        try:
            facts = os.fstat(fd)
            check_length(facts.st_size, self.max_bytes)
        except BaseException:
            os.close(fd)
            raise
        return _File(fd, path, facts.st_size if stat.S_ISREG(facts.st_mode) else None)

    async def _chunks(self, file: _File) -> AsyncIterator[bytes]:
        """The file's chunks, each read within the first-byte timeout, until the read that closed it."""
        while file.fd >= 0:
            # Shielded: a read cut by its timeout goes on in its thread, and the file closes after it.
            file.trip = asyncio.ensure_future(self._read(file, executor=self._executor))
            async with asyncio.timeout(self.open_timeout):  # a read that stalls, like a socket's
                chunk = await asyncio.shield(file.trip)
            if chunk:
                yield chunk

    def _list(self) -> None:
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError as exc:
            raise SourceUnavailable(detail=f"{self.name}: {exc.strerror}") from None

    def _close_soon(self, file: _File) -> None:
        """Close `file` in our threads, without waiting, unless its last read closed it already."""
        if file.fd < 0 and (file.trip is None or file.trip.done()):
            return
        closing = asyncio.ensure_future(self._close_after(file))
        self._closing.add(closing)
        closing.add_done_callback(self._closed)

    async def _close_after(self, file: _File) -> None:
        """Close `file` once its last read returned (one cut by its timeout may still be running), so
        the descriptor is never reused under it."""
        if file.trip is not None:
            await asyncio.wait([file.trip])
        if file.fd >= 0:
            with contextlib.suppress(OSError):  # a failed close of a file we only read loses nothing
                await self._close(file, executor=self._executor)

    def _closed(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled():
            closing.exception()  # retrieved, unlogged: one scheduled after `close` has no threads left

    def _close_late(self, opening: asyncio.Future[_File]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            self._close_soon(opening.result())

    async def close(self) -> None:
        # A file whose read was cut closes when that read returns: give those a moment, not forever. A read
        # stuck in a dead mount never returns, and its thread cannot be interrupted (see server/worker.py).
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_GRACE)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _classify(exc: OSError, path: str) -> NotFound | SourceUnavailable:
    if exc.errno in _NOT_FOUND:
        return NotFound()
    return SourceUnavailable(detail=f"local {path}: {exc.strerror}")
