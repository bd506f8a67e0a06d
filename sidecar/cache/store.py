"""The rendition cache on disk: the directory nginx serves hits from. Writes are atomic.

A rendition is written to a dot-named temporary file in its final directory, made readable for nginx's
workers, then renamed into place: readers see the whole file or none, even if we die mid-write (rename
within one directory never crosses a filesystem). nginx refuses every dot-name, so a temporary file is
never served. The writer holds a flock on its temporary file, so the sweep (`sidecar.cache.gc`, at start and
on every pass) can tell one left by a crash from one being written, without guessing from its age.

A purge (`sidecar.cache.purge`) leaves a dot-named marker in the original's directory; a rendition made from an
original fetched before that moment is not published (`Superseded`), so a purge cannot be undone by work
that was already in flight.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from pathlib import Path

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
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, file_path: str) -> Path:
        """Where the decoded URL path `file_path` (as nginx's `$uri`) lives on disk."""
        return self.root / file_path.lstrip("/")

    def exists(self, file_path: str) -> bool:
        return self.path(file_path).is_file()

    def write(self, file_path: str, data: bytes, *, fetched_at: float | None = None) -> None:
        """Publish `data` at `file_path` atomically. Blocking; raises OSError (or Superseded, when the
        original was purged after `fetched_at`) and leaves nothing behind."""
        final = self.path(file_path)
        fd, temp = self._temp(final.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                os.fchmod(file.fileno(), FILE_MODE)
            if fetched_at is not None and purged_since(final.parent, fetched_at):
                raise Superseded(str(final))
            os.replace(temp, final)
        except BaseException:
            os.unlink(temp)
            raise

    def link(self, link_path: str, target_path: str) -> None:
        """Make `link_path` a relative symlink to the file at `target_path` (both decoded URL paths),
        atomically: nginx sees the old link, or the new one, never none. Blocking; raises OSError."""
        link, target = self.path(link_path), self.path(target_path)
        self.makedirs(link.parent)
        temp = link.parent / f"{TEMP_PREFIX}link-{os.getpid()}-{uuid.uuid4().hex}"
        os.symlink(os.path.relpath(target, link.parent), temp)
        try:
            os.replace(temp, link)
        except BaseException:
            os.unlink(temp)
            raise

    def _temp(self, directory: Path) -> tuple[int, str]:
        """A new temporary file in `directory`, flocked: "being written". The sweep removes only
        unlocked ones; if it removed ours before we locked it, we make another."""
        for _ in range(3):
            self.makedirs(directory)
            try:
                fd, temp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
            except FileNotFoundError:  # the collector removed the directory as it emptied it
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(temp).st_ino == os.fstat(fd).st_ino:
                    return fd, temp
            except FileNotFoundError:
                pass
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
