"""The rendition cache on disk: the directory nginx serves hits from. Writes are atomic.

A rendition is written to a dot-named temporary file in its final directory, made readable for nginx's
workers, then renamed into place: readers see the whole file or none, even if we die mid-write (rename
within one directory never crosses a filesystem). nginx refuses every dot-name, so a temporary file is
never served. The writer holds a flock on its temporary file, so the sweep (`sidecar.cache.gc`, at start and
on every pass) can tell one left by a crash from one being written, without guessing from its age.

Every file IO here goes through aiofiles in the cache's own threads (the worker's `io` pool), never on
the event loop: a slow cache disk delays publishing, not the other requests. Each async method is one trip
to those threads (aiofiles' `wrap` of a blocking routine, in the given executor), not one per file call:
a trip costs some 50 us of CPU, as much as the IO of a small rendition (docs/benchmarks.md).

A purge (`sidecar.cache.purge`) leaves a dot-named marker in the original's directory; a rendition made from an
original fetched before that moment is not published (`Superseded`), so a purge cannot be undone by work
that was already in flight.
"""
from __future__ import annotations

import fcntl
import os
import uuid
from concurrent.futures import Executor
from pathlib import Path

import aiofiles.os

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
    threads (the event loop's default executor when None), one trip each; the blocking ones are for
    callers already in a thread."""

    def __init__(self, root: Path, io: Executor | None = None) -> None:
        self.root, self.io = root, io
        self._read = aiofiles.os.wrap(Path.read_bytes)
        self._write = aiofiles.os.wrap(self.write_now)
        self._link = aiofiles.os.wrap(self.link_now)

    def path(self, file_path: str) -> Path:
        """Where the decoded URL path `file_path` (as nginx's `$uri`) lives on disk."""
        return self.root / file_path.lstrip("/")

    async def exists(self, file_path: str) -> bool:
        return await aiofiles.os.path.isfile(self.path(file_path), executor=self.io)

    async def read(self, file_path: str) -> bytes:
        """The whole file at `file_path`; raises OSError."""
        return await self._read(self.path(file_path), executor=self.io)

    async def write(self, file_path: str, data: bytes, *, fetched_at: float | None = None) -> None:
        """Publish `data` at `file_path` atomically (see `write_now`), in one trip to the cache's threads."""
        await self._write(self.path(file_path), data, fetched_at, executor=self.io)

    async def link(self, link_path: str, target_path: str) -> None:
        """Make `link_path` a relative symlink to the file at `target_path` (see `link_now`)."""
        await self._link(self.path(link_path), self.path(target_path), executor=self.io)

    def write_now(self, final: Path, data: bytes, fetched_at: float | None = None) -> None:
        """Publish `data` at `final` atomically. Blocking; raises OSError (or Superseded, when the
        original was purged after `fetched_at`) and leaves nothing behind."""
        fd, temp = self.temp_file(final.parent)
        try:
            with os.fdopen(fd, "wb") as file:  # closed (flushed) before the rename: a failed flush publishes nothing
                file.write(data)
            if fetched_at is not None and purged_since(final.parent, fetched_at):
                raise Superseded(str(final))
            os.replace(temp, final)
        except BaseException:
            os.unlink(temp)
            raise

    def link_now(self, link: Path, target: Path) -> None:
        """Make `link` a relative symlink to `target`, atomically: nginx sees the old link, or the new
        one, never none. Blocking; raises OSError."""
        self.makedirs(link.parent)
        temp = link.parent / f"{TEMP_PREFIX}link-{os.getpid()}-{uuid.uuid4().hex}"
        os.symlink(os.path.relpath(target, link.parent), temp)
        try:
            os.replace(temp, link)
        except BaseException:
            os.unlink(temp)
            raise

    def temp_file(self, directory: Path) -> tuple[int, Path]:
        """A new temporary file in `directory`, open for writing, readable for nginx's workers whatever the
        umask, and flocked: "being written". The sweep removes only unlocked ones; if it removed ours
        before we locked it, we make another. Blocking."""
        for _ in range(3):
            temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            except FileNotFoundError:  # no directory yet, or the collector removed it as it emptied it
                self.makedirs(directory)
                continue
            try:
                os.fchmod(fd, FILE_MODE)
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.stat(temp).st_ino == os.fstat(fd).st_ino:
                    return fd, temp
            except FileNotFoundError:  # swept before we locked it
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
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
        """Make `directory` and its missing parents. Blocking: for callers in a thread."""
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


def purged_since(directory: Path, moment: float) -> bool:
    try:
        return os.stat(directory / PURGED_MARKER).st_mtime >= moment
    except FileNotFoundError:
        return False
