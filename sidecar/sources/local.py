"""Originals in a local (or NFS) directory, read off the event loop with a timeout on every IO."""
from __future__ import annotations

import asyncio
import errno
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceTimeout, SourceUnavailable, TooLarge

THREAD_PREFIX = "source-local"
_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG}


class LocalSource:
    """A directory. Keys are relative paths; nothing outside the directory is ever read.

    Opening (with its checks) is bounded by the first-byte timeout, reading by the body timeout. Each
    source has its own threads, so a hung mount fills only its own pool, never another source's.
    """

    kind = "local"

    def __init__(self, spec: SourceSpec, *, max_bytes: int, open_timeout: float, read_timeout: float,
                 threads: int) -> None:
        self.name = spec.name
        self.root = os.path.realpath(spec.location)
        self.max_bytes, self.open_timeout, self.read_timeout = max_bytes, open_timeout, read_timeout
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=THREAD_PREFIX)

    async def fetch(self, key: str) -> bytes:
        loop = asyncio.get_running_loop()
        # A hung NFS mount costs this request its timeout; the stuck thread is ours, not the loop's.
        opening = loop.run_in_executor(self._executor, self._open, key)
        try:
            file = await asyncio.wait_for(asyncio.shield(opening), self.open_timeout)
        except BaseException as exc:  # a timeout here, or the request's deadline cancelling us
            opening.add_done_callback(_close_late_file)  # if the open ever returns, do not leak the fd
            if isinstance(exc, TimeoutError):
                raise SourceTimeout(detail=f"{self.name}: open took longer than {self.open_timeout}s") from None
            raise
        reading = loop.run_in_executor(self._executor, self._read, file)
        try:
            return await asyncio.wait_for(reading, self.read_timeout)
        except TimeoutError:
            raise SourceTimeout(detail=f"{self.name}: read took longer than {self.read_timeout}s") from None

    async def probe(self) -> None:
        """The directory can be listed, within the open timeout (a dead NFS mount cannot)."""
        listing = asyncio.get_running_loop().run_in_executor(self._executor, self._list)
        try:
            await asyncio.wait_for(asyncio.shield(listing), self.open_timeout)
        except TimeoutError:
            raise SourceTimeout(detail=f"{self.name}: listing took longer than {self.open_timeout}s") from None

    def _list(self) -> None:
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError as exc:
            raise SourceUnavailable(detail=f"{self.name}: {exc.strerror}") from None

    def _open(self, key: str) -> BinaryIO:
        if not os.path.isdir(self.root):
            raise SourceUnavailable(detail=f"{self.name} is not a directory")
        path = os.path.realpath(os.path.join(self.root, key))
        if os.path.commonpath((self.root, path)) != self.root:
            raise NotFound(detail=f"{key!r} resolves outside {self.root}")  # symlink out of the root
        try:
            file = open(path, "rb")
        except OSError as exc:
            raise _classify(exc, path) from None
        try:
            if os.fstat(file.fileno()).st_size > self.max_bytes:
                raise TooLarge(f"original is larger than {self.max_bytes} bytes")
        except BaseException:
            file.close()
            raise
        return file

    def _read(self, file: BinaryIO) -> bytes:
        with file:
            try:
                data = file.read(self.max_bytes + 1)
            except OSError as exc:
                raise _classify(exc, file.name) from None  # type: ignore[arg-type]
        if len(data) > self.max_bytes:  # grew while we read it
            raise TooLarge(f"original is larger than {self.max_bytes} bytes")
        return data

    async def close(self) -> None:
        # Threads stuck in a dead mount cannot be interrupted; do not wait for them (see server.py).
        self._executor.shutdown(wait=False, cancel_futures=True)


def _classify(exc: OSError, path: str) -> NotFound | SourceUnavailable:
    if exc.errno in _NOT_FOUND:
        return NotFound()
    return SourceUnavailable(detail=f"local {path}: {exc.strerror}")


def _close_late_file(future: asyncio.Future[BinaryIO] | Future[BinaryIO]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
