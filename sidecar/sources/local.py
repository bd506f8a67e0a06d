"""Originals in a local (or NFS) directory, read through aiofiles in the source's own threads: streamed in
chunks, with a timeout on opening and on every read, and the size cap enforced while reading."""
from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import stat
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceTimeout, SourceUnavailable
from sidecar.sources.body import check_length, read_capped

THREAD_PREFIX = "source-local"
#: The most one read asks for. Each read is a trip to the source's threads (tens of microseconds): a
#: few per photo, and at most one chunk is read past the size cap.
CHUNK = 1024 * 1024
#: How long closing the source waits for files whose reads were cut to close.
CLOSE_GRACE = 0.5
_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG}


@dataclass
class _Opened:
    """What opening a file found out (in the source's threads)."""

    size: int | None = None


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
        self._first_entry = aiofiles.os.wrap(self._list)
        self._closing: set[asyncio.Task[None]] = set()

    async def fetch(self, key: str) -> bytes:
        opened = _Opened()
        file = await self._open(key, opened)
        try:
            return await read_capped(self._chunks(file, key, opened.size), max_bytes=self.max_bytes,
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

    async def _open(self, key: str, opened: _Opened) -> AsyncBufferedReader:
        # A hung NFS mount costs this request its timeout; the stuck thread is ours, not the loop's.
        opener = functools.partial(self._opener, opened)
        opening = asyncio.ensure_future(aiofiles.open(key, "rb", opener=opener, executor=self._executor))
        try:
            return await asyncio.wait_for(asyncio.shield(opening), self.open_timeout)
        except BaseException as exc:  # a timeout here, or the request's deadline cancelling us
            opening.add_done_callback(self._close_late)  # if the open ever returns, do not leak the fd
            if isinstance(exc, TimeoutError):
                raise SourceTimeout(detail=f"{self.name}: open took longer than {self.open_timeout}s") from None
            raise

    def _opener(self, opened: _Opened, key: str, flags: int) -> int:
        """Open `key` for aiofiles (in our threads), with the checks that go with it: inside the root, not
        already over the size cap. Notes a regular file's size in `opened`."""
        if not os.path.isdir(self.root):
            raise SourceUnavailable(detail=f"{self.name} is not a directory")
        path = os.path.realpath(os.path.join(self.root, key))
        if os.path.commonpath((self.root, path)) != self.root:
            raise NotFound(detail=f"{key!r} resolves outside {self.root}")  # symlink out of the root
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise _classify(exc, path) from None
        try:
            facts = os.fstat(fd)
            check_length(facts.st_size, self.max_bytes)
        except BaseException:
            os.close(fd)
            raise
        opened.size = facts.st_size if stat.S_ISREG(facts.st_mode) else None
        return fd

    async def _chunks(self, file: AsyncBufferedReader, key: str, size: int | None) -> AsyncIterator[bytes]:
        """The file's chunks, each read within the first-byte timeout. `size` is a regular file's size
        when it was opened: a short read that reaches it is the end, without one more trip to the
        threads to hear so (a pipe's reads are short all along)."""
        done = 0
        while True:
            async with asyncio.timeout(self.open_timeout):  # a read that stalls, like a socket's
                try:
                    chunk = await file.read1(CHUNK)  # one read of the file, not as many as fill CHUNK
                except OSError as exc:
                    raise _classify(exc, os.path.join(self.root, key)) from None
            if not chunk:
                return
            yield chunk
            done += len(chunk)
            if size is not None and done >= size and len(chunk) < CHUNK:
                return

    def _list(self) -> None:
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError as exc:
            raise SourceUnavailable(detail=f"{self.name}: {exc.strerror}") from None

    def _close_soon(self, file: AsyncBufferedReader) -> None:
        """Close `file` in our threads, without waiting. After a read stuck in a dead mount, the close
        waits for that read (the buffer's lock), so the descriptor is never reused under it."""
        closing = asyncio.ensure_future(_close(file))
        self._closing.add(closing)
        closing.add_done_callback(self._closed)

    def _closed(self, closing: asyncio.Task[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled():
            closing.exception()  # retrieved, unlogged: one scheduled after `close` has no threads left

    def _close_late(self, opening: asyncio.Future[AsyncBufferedReader]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            self._close_soon(opening.result())

    async def close(self) -> None:
        # A file whose read was cut closes when that read returns: give those a moment, not forever. A read
        # stuck in a dead mount never returns, and its thread cannot be interrupted (see server/worker.py).
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_GRACE)
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _close(file: AsyncBufferedReader) -> None:
    with contextlib.suppress(OSError):  # a failed close of a file we only read loses nothing
        await file.close()


def _classify(exc: OSError, path: str) -> NotFound | SourceUnavailable:
    if exc.errno in _NOT_FOUND:
        return NotFound()
    return SourceUnavailable(detail=f"local {path}: {exc.strerror}")
