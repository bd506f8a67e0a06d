"""The cache's size budget: the least recently used renditions go first. Also sweeps crash leftovers.

Recency is the file's access time. nginx reads every hit from disk, and with Linux's default `relatime`
mount option the kernel updates atime on the first read after a write and then at most once a day, so
the order is exact to within a day, which is what an LRU over days or weeks of traffic needs. It costs
nothing on the hit path (no log to parse, no Python). On a `noatime` mount, atime stays at creation and
eviction becomes oldest-first.

Sizes are disk usage (allocated blocks), not file lengths, and count everything the cache holds:
renditions, directories and the small files beside renditions, so `cache_max_bytes` bounds what the
disk really holds. A pass over budget removes renditions until the cache is at `LOW_WATERMARK` of it, so
passes are rare. Every pass removes empty directories (what a miss or an eviction left), deepest first. Temporary and
lock files that no process holds a
flock on belong to a process that died mid-write; they are removed on every pass, the first of which
runs when the sidecar starts.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.cache.singleflight import remove_if_unheld
from sidecar.cache.store import (
    FACES_RECORD,
    LOCK_PREFIX,
    PURGED_MARKER,
    SOURCE_RECORD,
    TEMP_PREFIX,
)

LOW_WATERMARK = 0.9
GC_LOCK = ".gc.lock"
#: Seconds an empty directory is left alone: a flight may have just made it for its lock.
EMPTY_GRACE = 10
#: Files about an original's renditions (the cascade's record, a purge's marker): kept while a rendition
#: is beside them, or for `NOTE_GRACE` seconds (a purge's marker must outlive any flight in progress, and
#: `request_deadline` is at most an hour).
_NOTES = frozenset({SOURCE_RECORD, FACES_RECORD, PURGED_MARKER})
NOTE_GRACE = 3600


@dataclass
class Report:
    """What one pass of the collector found and did."""

    files: int = 0
    bytes: int = 0
    evicted_files: int = 0
    evicted_bytes: int = 0
    stale_removed: int = 0
    empty_dirs_removed: int = 0
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
    """Every rendition as (atime, bytes, path); everything else on disk is counted in `report.bytes`."""
    entries: list[tuple[float, int, str]] = []
    directories: list[tuple[str, int, float]] = []  # (path, bytes, mtime), parents before children
    left: dict[str, _Left] = {}
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            iterator = os.scandir(directory)
        except FileNotFoundError:
            continue
        here = left[directory] = _Left()
        with iterator:
            for entry in iterator:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
                    directories.append((entry.path, info.st_blocks * 512, info.st_mtime))
                    here.entries += 1
                    continue
                name = entry.name
                if name.startswith((TEMP_PREFIX, LOCK_PREFIX)):
                    if not dry_run and remove_if_unheld(Path(entry.path)):
                        report.stale_removed += 1
                    else:
                        here.entries += 1
                    continue
                size = info.st_blocks * 512
                report.bytes += size
                here.entries += 1
                if name in _NOTES:  # only worth keeping beside renditions
                    here.notes.append((entry.path, size, info.st_mtime))
                elif not name.startswith("."):  # our own lock
                    report.files += 1
                    entries.append((info.st_atime, size, entry.path))
    if not dry_run:
        _remove_empty(directories, left, report)
    report.bytes += sum(size for path, size, _ in directories if path in left)
    return entries


@dataclass
class _Left:
    """What a directory still holds: entries of any kind, and which of them are notes (`_NOTES`)."""

    entries: int = 0
    notes: list[tuple[str, int, float]] = field(default_factory=list)


def _remove_empty(directories: list[tuple[str, int, float]], left: dict[str, _Left], report: Report) -> None:
    """Remove, deepest first, directories that hold nothing (what a failed miss or an eviction left),
    or only notes about renditions that are gone. Not within `EMPTY_GRACE` of their last change: a
    flight may be about to make its lock there (it makes the directory again if not)."""
    now = time.time()
    for path, _, mtime in reversed(directories):
        here = left.get(path)
        if here is None or now - mtime < EMPTY_GRACE:
            continue
        if here.entries == len(here.notes) and all(now - when > NOTE_GRACE for _, _, when in here.notes):
            for note, size, _ in here.notes:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(note)
                    report.bytes -= size
            try:
                os.rmdir(path)
            except OSError:
                continue
            del left[path]
            report.empty_dirs_removed += 1
            parent = left.get(os.path.dirname(path))
            if parent is not None:
                parent.entries -= 1


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
