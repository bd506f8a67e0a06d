"""The cache's atomic publish: whole file or nothing, readable by nginx's workers."""
from __future__ import annotations

import asyncio
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sidecar.cache.store import PURGED_MARKER, TEMP_PREFIX, Cache, Superseded
from tests.support.inotify import Inotify, torn


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
            asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"x" * size))  # new, then replaced
        asyncio.run(cache.write("/img/ab/cd/k.jpg/w2.jpg", b"y" * 100))
        events = watch.events()
    finally:
        watch.close()
    assert torn(events, {"w1.jpg", "w2.jpg"}) == []
    # Written first under dot-names, which nginx refuses to serve and the sweep knows.
    assert all(name.startswith(TEMP_PREFIX) for mask, name in events if mask & Inotify.CREATE)
    assert [name for mask, name in events if mask & Inotify.MOVED_TO] == ["w1.jpg"] * 3 + ["w2.jpg"]
    assert (directory / "w1.jpg").read_bytes() == b"x" * 3_000_000


def test_link_points_at_the_file_relatively_and_replaces_an_old_link_whole(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"first"))
    asyncio.run(cache.write("/img/ab/cd/k.jpg/w2.jpg", b"second"))
    link = tmp_path / "_routes/legacy/12/__/12/12_x.jpg"
    directory = link.parent
    asyncio.run(cache.link("/_routes/legacy/12/__/12/12_x.jpg", "/img/ab/cd/k.jpg/w1.jpg"))
    assert os.readlink(link) == "../../../../../img/ab/cd/k.jpg/w1.jpg"  # relative: the cache may move
    assert link.read_bytes() == b"first"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755  # made for nginx's workers to traverse
    cache.makedirs(directory)  # already there: nothing to do, no error
    watch = Inotify(directory, Inotify.WRITES)
    try:
        asyncio.run(cache.link("/_routes/legacy/12/__/12/12_x.jpg", "/img/ab/cd/k.jpg/w2.jpg"))  # the row changed
        events = watch.events()
    finally:
        watch.close()
    assert link.read_bytes() == b"second" and os.listdir(directory) == ["12_x.jpg"]  # no temporary link left
    assert torn(events, {"12_x.jpg"}) == []  # replaced by a rename: never missing, never half made


def test_a_link_that_cannot_be_made_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"x"))
    (tmp_path / "_routes").mkdir()
    (tmp_path / "_routes/x.jpg").mkdir()  # a directory where the link goes: the rename fails
    with pytest.raises(OSError):
        asyncio.run(cache.link("/_routes/x.jpg", "/img/ab/cd/k.jpg/w1.jpg"))
    assert sorted(os.listdir(tmp_path / "_routes")) == ["x.jpg"]


def test_a_file_in_the_way_of_a_directory_is_an_error_not_a_retry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    (tmp_path / "img").mkdir()
    (tmp_path / "img/ab").write_bytes(b"")
    with pytest.raises(FileExistsError):
        cache.makedirs(tmp_path / "img/ab/cd")


def test_a_rendition_of_an_original_fetched_before_its_purge_is_not_published(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    directory = tmp_path / "img/ab/cd/k.jpg"
    cache.makedirs(directory)
    (directory / PURGED_MARKER).write_bytes(b"")
    purged = (directory / PURGED_MARKER).stat().st_mtime
    with pytest.raises(Superseded, match=str(directory / "w1.jpg")):
        asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"stale", fetched_at=purged - 1))
    with pytest.raises(Superseded):
        asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"stale", fetched_at=purged))  # the same moment: stale too
    assert os.listdir(directory) == [PURGED_MARKER]
    asyncio.run(cache.write("/img/ab/cd/k.jpg/w1.jpg", b"fresh", fetched_at=purged + 1))
    assert (directory / "w1.jpg").read_bytes() == b"fresh"


def test_every_file_operation_runs_in_the_caches_own_threads(tmp_path: Path) -> None:
    """The event loop's default pool is shut down here: a call that fell back on it would fail."""
    directory = tmp_path / "img/ab/cd/k.jpg"

    async def scenario(cache: Cache) -> None:
        dead = ThreadPoolExecutor(1)
        dead.shutdown()
        asyncio.get_running_loop().set_default_executor(dead)
        await cache.write("/img/ab/cd/k.jpg/w1.jpg", b"whole")  # makes the directories, then publishes
        assert await cache.exists("/img/ab/cd/k.jpg/w1.jpg") and await cache.read("/img/ab/cd/k.jpg/w1.jpg") == b"whole"
        await cache.link("/img/ab/cd/k.jpg/=/w1.jpg", "/img/ab/cd/k.jpg/w1.jpg")  # makes its directory too
        assert (directory / "=/w1.jpg").read_bytes() == b"whole"
        (directory / PURGED_MARKER).write_bytes(b"")
        with pytest.raises(Superseded):  # the temporary file is removed in the cache's threads too
            await cache.write("/img/ab/cd/k.jpg/w2.jpg", b"stale", fetched_at=0.0)
        (directory / "=/w2.jpg").mkdir()
        (directory / "=/w2.jpg/in-the-way").write_bytes(b"")
        with pytest.raises(OSError):  # a link cannot replace a directory; its temporary link is removed
            await cache.link("/img/ab/cd/k.jpg/=/w2.jpg", "/img/ab/cd/k.jpg/w1.jpg")

    with ThreadPoolExecutor(2, thread_name_prefix="cache-io") as io:
        asyncio.run(scenario(Cache(tmp_path, io)))
    assert sorted(os.listdir(directory)) == [PURGED_MARKER, "=", "w1.jpg"]
    assert sorted(os.listdir(directory / "=")) == ["w1.jpg", "w2.jpg"]


def test_prune_removes_empty_directories_up_to_the_root_and_nothing_outside_it(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = Cache(root)
    cache.makedirs(root / "img/ab/cd/k.jpg")
    cache.makedirs(root / "img/ab/ef")
    cache.prune(root / "img/ab/cd/k.jpg")
    assert sorted(p.name for p in root.rglob("*")) == ["ab", "ef", "img"]  # up to the first one not empty
    cache.prune(root / "img/ab/ef")
    assert root.is_dir() and list(root.iterdir()) == []  # the root itself stays
    (tmp_path / "elsewhere/empty").mkdir(parents=True)
    cache.prune(tmp_path / "elsewhere/empty")
    assert (tmp_path / "elsewhere/empty").is_dir()  # not the cache's to remove


def test_a_url_path_maps_under_the_root_whatever_its_first_letter(tmp_path: Path) -> None:
    assert Cache(tmp_path).path("/Xmas/ab/cd/k.jpg/w1.jpg") == tmp_path / "Xmas/ab/cd/k.jpg/w1.jpg"
