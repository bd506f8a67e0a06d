"""Process and file helpers: free ports, temp directories nginx can read, polling, a process's children."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Where `world_readable_tempdir` makes its directories: the test session's own (tests/conftest.py), which
#: must be empty again when the session ends, or the system's.
TEMP_ROOT_ENV = "SIDECAR_TEST_TMP"


def world_readable_tempdir() -> Path:
    """pytest's tmp_path is 0700 under root; nginx's workers run as nobody and must traverse this one.
    Whoever makes one removes it."""
    path = Path(tempfile.mkdtemp(prefix="sidecar-test-", dir=os.environ.get(TEMP_ROOT_ENV)))
    path.chmod(0o755)
    MADE_BY[path.name] = os.environ.get("PYTEST_CURRENT_TEST", "no test")
    return path


#: Who made each `world_readable_tempdir` (pytest's name of the test and its phase), by directory name: the
#: leftover guard (tests/conftest.py) names the test, not only a random directory. (Not in the path itself:
#: a unix socket's path must stay under 108 bytes.)
MADE_BY: dict[str, str] = {}


def remove_tempdir(path: Path) -> None:
    """Remove a directory a test made, whatever the test did to it: made it unreadable, mounted on it."""
    if path.is_mount():
        subprocess.run(["umount", "-l", str(path)], check=False)
    if path.exists():
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def readable_tempdir() -> Iterator[Path]:
    """A `world_readable_tempdir` that is removed when the block ends, however it ends."""
    path = world_readable_tempdir()
    try:
        yield path
    finally:
        remove_tempdir(path)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as file:
                    fields = file.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)
