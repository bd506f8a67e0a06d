"""Purge: remove every rendition of one original, so the next request makes them again from the source.

The original's renditions all live in one directory (`url.Rendition.original_dir`). The purge first
leaves a marker there (`cache.PURGED_MARKER`, dot-named so nginx never serves it), then waits for the
flights that hold a lock in that directory, then removes the files and the cascade's record of the
original (`store.SOURCE_RECORD`, and `store.FACES_RECORD`). A flight that fetched the original
before the marker does not publish (`cache.Superseded`), so no stale rendition survives the purge.

nginx may keep serving an open file descriptor of a removed file until `open_file_cache_valid` seconds
have passed (see docs/operations.md).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from sidecar.cache.singleflight import wait_for_holders
from sidecar.cache.store import FACES_RECORD, PURGED_MARKER, SOURCE_RECORD, Cache
from sidecar.url.grammar import check_key, renditions_dir
from sidecar.url.routes import ID_PATTERN, Route, link_dir


def original_dir(cache_root: Path, url_prefix: str, key: str) -> Path:
    check_key(key)
    return cache_root / url_prefix.lstrip("/") / renditions_dir(key)


def purge(cache_root: Path, url_prefix: str, key: str) -> int:
    """Remove the renditions of `key`; return how many files were removed. Blocking."""
    directory = original_dir(cache_root, url_prefix, key)
    if not directory.is_dir():
        return 0
    mark(Cache(cache_root), directory)
    wait_for_holders(directory)
    removed = 0
    for record in (SOURCE_RECORD, FACES_RECORD):  # the cascade's facts about the old original
        with contextlib.suppress(FileNotFoundError):
            (directory / record).unlink()
    for entry in os.scandir(directory):
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def mark(cache: Cache, directory: Path) -> None:
    """Leave the marker in `directory`, timed precisely now. It appears by a rename, with that time: the
    kernel stamps a file it creates or touches with its coarse clock (a few ms behind `time.time()`), and a
    flight checking the marker meanwhile would take a fetch made just before the purge for one made after."""
    now = time.time()
    fd, temp = cache.temp_file(directory)  # flocked: the sweep leaves it alone
    try:
        os.utime(fd, (now, now))
        os.replace(temp, directory / PURGED_MARKER)
    except BaseException:
        os.unlink(temp)
        raise
    finally:
        os.close(fd)


def purge_links(cache_root: Path, routes: Iterable[Route], image_id: str) -> int:
    """Remove the links that the ID's old URLs left (see `sidecar.url.routes`); return how many. Blocking.
    Without them, a row that now names another original would still be served the old one."""
    if not re.fullmatch(ID_PATTERN, image_id):
        return 0
    removed = 0
    for route in routes:
        if route.by_id:
            directory = cache_root / link_dir(route, image_id).lstrip("/")
            removed += sum(len(files) for _, _, files in os.walk(directory))
            shutil.rmtree(directory, ignore_errors=True)
    return removed
