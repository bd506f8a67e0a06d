"""The cache's atomic publish: whole file or nothing, readable by nginx's workers."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from sidecar.cache.store import Cache


def test_write_publishes_whole_file_with_modes(tmp_path: Path) -> None:
    os.umask(0o077)
    try:
        asyncio.run(Cache(tmp_path).write("/img/ab/cd/k.jpg/w1.jpg", b"x" * 1000))
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
        asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", "not bytes"))  # type: ignore[arg-type]
    assert os.listdir(tmp_path / "img/ab/cd/k.jpg") == []


def test_blocked_directory_raises_oserror(tmp_path: Path) -> None:
    (tmp_path / "img").write_text("a file where a directory should be")
    with pytest.raises(OSError):
        asyncio.run(Cache(tmp_path).write("/img/ab/cd/k.jpg/w1.jpg", b"x"))
