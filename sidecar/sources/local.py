"""Originals in a local (or NFS) directory, read off the event loop with a timeout."""
from __future__ import annotations

import asyncio
import errno
import os
from concurrent.futures import ThreadPoolExecutor

from ..errors import NotFound, SourceTimeout, SourceUnavailable, TooLarge

_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG}


class LocalSource:
    """A directory. Keys are relative paths; nothing outside the directory is ever read."""

    kind = "local"

    def __init__(self, root: str, *, max_bytes: int, timeout: float, executor: ThreadPoolExecutor) -> None:
        self.root = os.path.realpath(root)
        self.max_bytes, self.timeout, self._executor = max_bytes, timeout, executor

    async def fetch(self, key: str) -> bytes:
        loop = asyncio.get_running_loop()
        # A hung NFS mount costs this request its timeout; the stuck thread is the executor's, not the loop's.
        future = loop.run_in_executor(self._executor, self._read, key)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise SourceTimeout(detail=f"local {self.root}: no answer in {self.timeout}s") from None

    def _read(self, key: str) -> bytes:
        if not os.path.isdir(self.root):
            raise SourceUnavailable(detail=f"local {self.root} is not a directory")
        path = os.path.realpath(os.path.join(self.root, key))
        if os.path.commonpath((self.root, path)) != self.root:
            raise NotFound(detail=f"{key!r} resolves outside {self.root}")  # symlink out of the root
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size > self.max_bytes:
                    raise TooLarge(f"original is larger than {self.max_bytes} bytes")
                data = file.read(self.max_bytes + 1)
        except OSError as exc:
            if exc.errno in _NOT_FOUND:
                raise NotFound() from None
            raise SourceUnavailable(detail=f"local {path}: {exc.strerror}") from None
        if len(data) > self.max_bytes:  # grew while we read it
            raise TooLarge(f"original is larger than {self.max_bytes} bytes")
        return data

    async def close(self) -> None:
        pass
