"""The cache's atomic publish: whole file or nothing, readable by nginx's workers."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sidecar.cache.store import Cache
from tests.support.inotify import Inotify, torn


def test_write_publishes_whole_file_with_modes(tmp_path: Path) -> None:
    os.umask(0o077)
    try:
        Cache(tmp_path).write("/img/ab/cd/k.jpg/w1.jpg", b"x" * 1000)
    finally:
        os.umask(0o022)
    final = tmp_path / "img/ab/cd/k.jpg/w1.jpg"
    assert final.read_bytes() == b"x" * 1000
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert stat.S_IMODE(final.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "img").stat().st_mode) == 0o755
    assert os.listdir(final.parent) == ["w1.jpg"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(TypeError):
        cache.write("/img/ab/cd/k.jpg/w1.jpg", "not bytes")  # type: ignore[arg-type]
    assert os.listdir(tmp_path / "img/ab/cd/k.jpg") == []


def test_blocked_directory_raises_oserror(tmp_path: Path) -> None:
    (tmp_path / "img").write_text("a file where a directory should be")
    with pytest.raises(OSError):
        Cache(tmp_path).write("/img/ab/cd/k.jpg/w1.jpg", b"x")


def test_the_final_path_never_holds_part_of_a_file(tmp_path: Path) -> None:
    # The kernel reports every create and write of a name in the directory: the rendition's name
    # may only ever appear by a rename, whole. (A reader racing the writer could miss a partial file;
    # the kernel's event queue cannot.)
    cache = Cache(tmp_path)
    directory = tmp_path / "img/ab/cd/k.jpg"
    cache.makedirs(directory)
    watch = Inotify(directory, Inotify.WRITES)
    try:
        for size in (1, 4096, 3_000_000):
            cache.write("/img/ab/cd/k.jpg/w1.jpg", b"x" * size)  # new, then replaced
        cache.write("/img/ab/cd/k.jpg/w2.jpg", b"y" * 100)
        events = watch.events()
    finally:
        watch.close()
    assert torn(events, {"w1.jpg", "w2.jpg"}) == []
    assert [name for mask, name in events if mask & Inotify.MOVED_TO] == ["w1.jpg"] * 3 + ["w2.jpg"]
    assert (directory / "w1.jpg").read_bytes() == b"x" * 3_000_000
