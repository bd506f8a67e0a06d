"""The rendition cache on disk: the directory nginx serves hits from. Writes are atomic.

A rendition is written to a dot-named temporary file in its final directory, made readable for nginx's
workers, then renamed into place: readers see the whole file or none, even if we die mid-write (rename
within one directory never crosses a filesystem). nginx refuses every dot-name, so a temporary file is
never served. The writer holds a flock on its temporary file, so the sweep (`sidecar.cache.gc`, at start and
on every pass) can tell one left by a crash from one being written, without guessing from its age.

Every file IO of a miss here goes through aiofiles, in the cache's own threads (the worker's `io` pool),
never on the event loop: a slow cache disk delays publishing, not the other requests.

A purge (`sidecar.cache.purge`) leaves a dot-named marker in the original's directory; a rendition made from an
original fetched before that moment is not published (`Superseded`), so a purge cannot be undone by work
that was already in flight.
"""
from __future__ import annotations

import errno
import fcntl
import os
import uuid
from concurrent.futures import Executor
from pathlib import Path

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

TEMP_PREFIX = ".tmp-"
LOCK_PREFIX = ".lock-"
PURGED_MARKER = ".purged"
#: The cascade's record of an original's facts, beside its renditions (`sidecar.cache.cascade`).
SOURCE_RECORD = ".source.json"
#: Face gravity's faces of the original, found once (`sidecar.cache.cascade`).
FACES_RECORD = ".faces.json"
FILE_MODE = 0o644  # nginx's workers may run as another user (nobody, www-data)
DIR_MODE = 0o755


class Superseded(Exception):
    """The original was purged after this rendition's original was fetched: it must not be published."""


class Cache:
    """The cache under `root`. Its async methods do their file IO through aiofiles in `io`, the cache's own
    threads (the event loop's default executor when None); the blocking ones are for callers already in
    a thread."""

    def __init__(self, root: Path, io: Executor | None = None) -> None:
        self.root, self.io = root, io
        self._makedirs = aiofiles.os.wrap(self.makedirs)
        self._publish = aiofiles.os.wrap(_publish)

    def path(self, file_path: str) -> Path:
        """Where the decoded URL path `file_path` (as nginx's `$uri`) lives on disk."""
        return self.root / file_path.lstrip("/")

    async def exists(self, file_path: str) -> bool:
        return await aiofiles.os.path.isfile(self.path(file_path), executor=self.io)

    async def read(self, file_path: str) -> bytes:
        """The whole file at `file_path`; raises OSError."""
        file = await aiofiles.open(self.path(file_path), "rb", executor=self.io)
        try:
            return await file.read()
        finally:
            await file.close()

    async def write(self, file_path: str, data: bytes, *, fetched_at: float | None = None) -> None:
        """Publish `data` at `file_path` atomically. Raises OSError (or Superseded, when the original was
        purged after `fetched_at`) and leaves nothing behind."""
        final = self.path(file_path)
        file, temp = await self._temp(final.parent)
        try:
            try:
                await file.write(data)
            finally:
                await file.close()  # flushes; if that fails, the write failed and nothing is published
            await self._publish(temp, final, fetched_at, executor=self.io)
        except BaseException:
            await aiofiles.os.unlink(temp, executor=self.io)
            raise

    async def link(self, link_path: str, target_path: str) -> None:
        """Make `link_path` a relative symlink to the file at `target_path` (both decoded URL paths),
        atomically: nginx sees the old link, or the new one, never none. Raises OSError."""
        link, target = self.path(link_path), self.path(target_path)
        await self._makedirs(link.parent, executor=self.io)
        temp = link.parent / f"{TEMP_PREFIX}link-{os.getpid()}-{uuid.uuid4().hex}"
        await aiofiles.os.symlink(os.path.relpath(target, link.parent), temp, executor=self.io)
        try:
            await aiofiles.os.replace(temp, link, executor=self.io)
        except BaseException:
            await aiofiles.os.unlink(temp, executor=self.io)
            raise

    async def _temp(self, directory: Path) -> tuple[AsyncBufferedIOBase, Path]:
        """A new temporary file in `directory`, open for writing and flocked (see `_open_temp`)."""
        for _ in range(3):
            temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
            try:
                file = await aiofiles.open(temp, "xb", opener=_open_temp, executor=self.io)
            except FileNotFoundError:  # no directory yet, the collector removed it as it emptied it, or swept
                await self._makedirs(directory, executor=self.io)
                continue
            return file, temp
        raise OSError(f"cannot keep a temporary file in {directory}")

    def prune(self, directory: Path) -> None:
        """Remove `directory` and its parents up to the cache root while they are empty: a miss that
        published nothing leaves nothing behind. Whoever is making a file there meanwhile makes the
        directories again (`makedirs` in a loop)."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty (renditions, another flight's lock), or already gone
                if directory.exists():
                    return
            directory = directory.parent

    def makedirs(self, directory: Path) -> None:
        """Make `directory` and its missing parents. Blocking: for callers in a thread (the flights'
        locking); `write` and `link` run it in the cache's threads through aiofiles."""
        # Made one by one with an explicit mode: the umask of a service manager may be 077.
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            try:
                path.mkdir()
                os.chmod(path, DIR_MODE)
            except FileExistsError:
                if not path.is_dir():
                    raise


def _publish(temp: Path, final: Path, fetched_at: float | None) -> None:
    """Rename `temp` to `final`, unless the original was purged after `fetched_at`: the check and the
    rename in one trip to the cache's threads, as close together as they can be."""
    if fetched_at is not None and purged_since(final.parent, fetched_at):
        raise Superseded(str(final))
    os.replace(temp, final)


def purged_since(directory: Path, moment: float) -> bool:
    try:
        return os.stat(directory / PURGED_MARKER).st_mtime >= moment
    except FileNotFoundError:
        return False


def _open_temp(path: str, flags: int) -> int:
    """The opener of a new temporary file (in the cache's threads): made readable for nginx's workers
    whatever the umask, and flocked: "being written". The sweep removes only unlocked ones; if it removed
    this one before we locked it, FileNotFoundError, and the writer makes another."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(errno.ENOENT, "removed before it was locked", path)
    except BaseException:
        os.close(fd)
        raise
    return fd
