"""The rendition cache on disk: the directory nginx serves hits from. Writes are atomic.

A rendition is written to a dot-named temporary file in its final directory, made readable for nginx's
workers, then renamed into place: readers see the whole file or none, even if we die mid-write (rename
within one directory never crosses a filesystem). nginx refuses every dot-name, so a temporary file is
never served.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"
FILE_MODE = 0o644  # nginx's workers may run as another user (nobody, www-data)
DIR_MODE = 0o755


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, file_path: str) -> Path:
        """Where the decoded URL path `file_path` (as nginx's `$uri`) lives on disk."""
        return self.root / file_path.lstrip("/")

    def exists(self, file_path: str) -> bool:
        return self.path(file_path).is_file()

    def write(self, file_path: str, data: bytes) -> None:
        """Publish `data` at `file_path` atomically. Blocking; raises OSError and leaves nothing behind."""
        final = self.path(file_path)
        self._makedirs(final.parent)
        fd, temp = tempfile.mkstemp(dir=final.parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                os.fchmod(file.fileno(), FILE_MODE)
            os.replace(temp, final)
        except BaseException:
            os.unlink(temp)
            raise

    def _makedirs(self, directory: Path) -> None:
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
