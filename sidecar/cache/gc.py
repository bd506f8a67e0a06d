"""The cache's size budget: the least recently used renditions go first. Also sweeps crash leftovers.

Recency is the file's access time. nginx reads every hit from disk, and with Linux's default `relatime`
mount option the kernel updates atime on the first read after a write and then at most once a day, so
the order is exact to within a day, which is what an LRU over days or weeks of traffic needs. It costs
nothing on the hit path (no log to parse, no Python). On a `noatime` mount, atime stays at creation and
eviction becomes oldest-first.

Sizes are disk usage (allocated blocks), not file lengths. A pass over budget removes files until the
cache is at `LOW_WATERMARK` of it, so passes are rare. Temporary and lock files that no process holds a
flock on belong to a process that died mid-write; they are removed on every pass, the first of which
runs when the sidecar starts.
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sidecar.cache.singleflight import remove_if_unheld
from sidecar.cache.store import LOCK_PREFIX, TEMP_PREFIX

LOW_WATERMARK = 0.9
GC_LOCK = ".gc.lock"


@dataclass
class Report:
    """What one pass of the collector found and did."""

    files: int = 0
    bytes: int = 0
    evicted_files: int = 0
    evicted_bytes: int = 0
    stale_removed: int = 0
    skipped: bool = False  # another collector (the CLI, another sidecar) was already running


def collect(root: Path, budget: int, *, dry_run: bool = False) -> Report:
    """Sweep leftovers under `root` and, if it holds more than `budget` bytes (0: no budget), evict the
    least recently used files down to `LOW_WATERMARK` of it. Blocking; run it in a thread."""
    report = Report()
    if not root.is_dir():
        return report
    lock = os.open(root / GC_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report.skipped = True
            return report
        entries = _scan(root, report, dry_run)
        if budget and report.bytes > budget:
            _evict(entries, report, int(budget * LOW_WATERMARK), dry_run)
        return report
    finally:
        os.close(lock)


def _scan(root: Path, report: Report, dry_run: bool) -> list[tuple[float, int, str]]:
    entries: list[tuple[float, int, str]] = []
    stack = [str(root)]
    while stack:
        try:
            iterator = os.scandir(stack.pop())
        except FileNotFoundError:
            continue
        with iterator:
            for entry in iterator:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                name = entry.name
                if name.startswith((TEMP_PREFIX, LOCK_PREFIX)):
                    if not dry_run and remove_if_unheld(Path(entry.path)):
                        report.stale_removed += 1
                    continue
                if name.startswith("."):  # purge markers, our own lock
                    continue
                size = info.st_blocks * 512
                report.files += 1
                report.bytes += size
                entries.append((info.st_atime, size, entry.path))
    return entries


def _evict(entries: list[tuple[float, int, str]], report: Report, target: int, dry_run: bool) -> None:
    entries.sort()
    total = report.bytes
    parents: set[str] = set()
    for _, size, path in entries:
        if total <= target:
            break
        if not dry_run and not _unlink(path):
            continue
        total -= size
        report.evicted_files += 1
        report.evicted_bytes += size
        parents.add(os.path.dirname(path))
    for parent in parents:
        try:
            os.rmdir(parent)  # only if empty; a new rendition may be landing there right now
        except OSError:
            pass


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
