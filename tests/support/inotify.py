"""Kernel file events through inotify (ctypes): opens of a source file, files created in a directory."""
from __future__ import annotations

import ctypes
import os
import select
import struct
from pathlib import Path


class Inotify:
    """A watch on one path; `events` drains what the kernel queued."""

    MODIFY, ATTRIB, CLOSE_WRITE, OPEN, MOVED_TO, CREATE = 0x2, 0x4, 0x8, 0x20, 0x80, 0x100
    #: A name made, written to, or renamed onto (not opened: nginx opens files to read them).
    WRITES = MODIFY | CLOSE_WRITE | MOVED_TO | CREATE

    def __init__(self, path: Path, mask: int) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0 and self.libc.inotify_add_watch(self.fd, str(path).encode(), mask) >= 0

    def events(self, timeout: float = 0) -> list[tuple[int, str]]:
        """(mask, name) of every event so far; waits up to `timeout` seconds for the first one."""
        select.select([self.fd], [], [], timeout)
        found: list[tuple[int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16: offset + 16 + length].rstrip(b"\0").decode()
                found.append((mask, name))
                offset += 16 + length

    def close(self) -> None:
        os.close(self.fd)


def torn(events: list[tuple[int, str]], names: set[str]) -> list[tuple[int, str]]:
    """The events that show one of `names` being written in place (created, modified) instead of
    appearing whole by a rename: a reader could have seen part of the file."""
    return [(mask, name) for mask, name in events if name in names and mask & ~Inotify.MOVED_TO]
