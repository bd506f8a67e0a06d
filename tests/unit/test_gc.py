"""The collector, admission and counters with plain files and values."""
from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

import pytest

from sidecar import config as config_module
from sidecar.app.admission import Admission
from sidecar.cache.gc import NOTE_GRACE, collect
from sidecar.cache.purge import purge
from sidecar.cache.store import PURGED_MARKER, Cache, Superseded
from sidecar.config import ConfigError
from sidecar.errors import Overloaded
from sidecar.url.grammar import renditions_dir
from tests.support.inotify import Inotify


def make(root: Path, name: str, size: int, atime: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (atime, path.stat().st_mtime))
    return path


def test_collect_evicts_least_recently_used_down_to_the_low_watermark(tmp_path: Path) -> None:
    files = [make(tmp_path, f"a/b/k{i}.jpg/w{i}.jpg", 40960, atime=1000 + i) for i in range(10)]
    folders = [tmp_path / "a", tmp_path / "a/b"] + [f.parent for f in files]
    directories = sum(os.stat(d).st_blocks * 512 for d in folders)
    report = collect(tmp_path, 8 * 40960 + 16 * 4096)
    assert report.files == 10 and report.bytes == 10 * 40960 + directories  # directories take disk too
    assert report.evicted_files == 3  # down to 90% of the budget
    assert [f.exists() for f in files] == [False] * 3 + [True] * 7
    assert not (tmp_path / "a/b/k0.jpg").exists(), "emptied directories are removed"
    assert collect(tmp_path, 0).evicted_files == 0  # no budget, no eviction


def test_collect_dry_run_removes_nothing(tmp_path: Path) -> None:
    files = [make(tmp_path, f"k/w{i}.jpg", 8192, atime=i) for i in range(4)]
    report = collect(tmp_path, 3 * 8192, dry_run=True)
    assert report.evicted_files == 2 and all(f.exists() for f in files)


def test_sweep_removes_unheld_temp_and_lock_files_only(tmp_path: Path) -> None:
    stale = make(tmp_path, "k/.tmp-dead", 10, 0)
    orphan_lock = make(tmp_path, "k/.lock-w1.jpg", 0, 0)
    marker = make(tmp_path, "k/.purged", 0, 0)
    live = make(tmp_path, "k/.tmp-live", 10, 0)
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer at work
    try:
        report = collect(tmp_path, 0)
    finally:
        os.close(fd)
    assert report.stale_removed == 2
    assert not stale.exists() and not orphan_lock.exists()
    assert live.exists() and marker.exists()
    assert report.files == 0  # dot-files never count as renditions


def test_collect_removes_empty_directories_and_notes_left_alone(tmp_path: Path) -> None:
    # What failed misses left (a deep chain of empty directories) and an original whose renditions were
    # evicted (only the cascade's record and a purge marker left): both go, once past their grace.
    deep = tmp_path / "/".join(["a"] * 50)
    deep.mkdir(parents=True)
    notes = make(tmp_path, "k/=/.source.json", 10, 0), make(tmp_path, "k/=/.purged", 0, 0)
    kept = make(tmp_path, "j/=/w1.jpg", 10, 0), make(tmp_path, "j/=/.source.json", 10, 0)
    fresh = tmp_path / "new/="
    fresh.mkdir(parents=True)  # a flight is about to make its lock here
    old = time.time() - 2 * NOTE_GRACE
    for path in [*tmp_path.rglob("*")]:
        if path != fresh and path != fresh.parent:
            os.utime(path, (old, old), follow_symlinks=False)
    report = collect(tmp_path, 0)
    assert report.empty_dirs_removed == 50 + 2
    assert not (tmp_path / "a").exists() and not any(n.exists() for n in notes) and not (tmp_path / "k").exists()
    assert all(k.exists() for k in kept) and fresh.is_dir()
    directories = sum(os.stat(d).st_blocks * 512 for d in (tmp_path / "j", tmp_path / "j/=", fresh, fresh.parent))
    assert report.bytes == sum(k.stat().st_blocks * 512 for k in kept) + directories


def test_a_second_collector_skips(tmp_path: Path) -> None:
    make(tmp_path, "k/w1.jpg", 10, 0)
    fd = os.open(tmp_path / ".gc.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert collect(tmp_path, 1).skipped
    finally:
        os.close(fd)


def test_purge_removes_renditions_but_not_another_keys_directory(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    base = f"/img/{renditions_dir('a')}"
    for name, data in (("w1.jpg", b"1"), ("w2.webp", b"2"), (".source.json", b"{}")):  # .source.json: the
        asyncio.run(cache.write(f"{base}/{name}", data))  # cascade's record of the original
    (tmp_path / base.lstrip("/")).parent.joinpath("b.jpg").mkdir()  # the key "a/b.jpg"'s directory
    assert purge(tmp_path, "/img", "a") == 2
    assert sorted(os.listdir(tmp_path / base.lstrip("/"))) == [".purged"]
    assert (tmp_path / base.lstrip("/")).parent.joinpath("b.jpg").is_dir()
    assert purge(tmp_path, "/img", "never/cached.jpg") == 0


def test_a_write_after_a_purge_of_its_original_is_refused(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    path = f"/img/{renditions_dir('k')}/w1.jpg"
    asyncio.run(cache.write(f"/img/{renditions_dir('k')}/w2.jpg", b"old"))
    fetched_at = os.path.getmtime(tmp_path / path.lstrip("/").rsplit("/", 1)[0]) - 1
    purge(tmp_path, "/img", "k")
    with pytest.raises(Superseded):
        asyncio.run(cache.write(path, b"stale", fetched_at=fetched_at))
    assert os.listdir(tmp_path / path.lstrip("/").rsplit("/", 1)[0]) == [".purged"]
    asyncio.run(cache.write(path, b"fresh", fetched_at=fetched_at + 3600))


def test_the_purge_marker_appears_with_the_purge_time_never_the_kernels_coarser_one(tmp_path: Path) -> None:
    # A marker created or touched in place carries the kernel's coarse clock (a few ms behind time.time())
    # until it is set: a write checking it then would publish a rendition fetched just before the purge.
    cache = Cache(tmp_path)
    directory = tmp_path / "img" / renditions_dir("k")
    asyncio.run(cache.write(f"/img/{renditions_dir('k')}/w1.jpg", b"old"))
    watch = Inotify(directory, Inotify.CREATE | Inotify.ATTRIB | Inotify.MODIFY | Inotify.MOVED_TO)
    try:
        for _ in range(2):  # a new marker, then one that replaces it
            before = time.time()
            purge(tmp_path, "/img", "k")
            assert before <= (directory / PURGED_MARKER).stat().st_mtime <= time.time()
        events = watch.events()
    finally:
        watch.close()
    assert [mask for mask, name in events if name == PURGED_MARKER] == [Inotify.MOVED_TO] * 2
    assert os.listdir(directory) == [PURGED_MARKER]


def test_admission_refuses_beyond_slots_plus_queue() -> None:
    async def scenario() -> list[str]:
        admission = Admission(slots=2, queue=1)
        release = asyncio.Event()
        outcomes: list[str] = []

        async def miss() -> None:
            try:
                async with admission:
                    await release.wait()
                outcomes.append("done")
            except Overloaded:
                outcomes.append("refused")

        tasks = [asyncio.create_task(miss()) for _ in range(5)]
        await asyncio.sleep(0.01)
        assert outcomes == ["refused", "refused"] and admission.busy == 2 and admission.waiting == 1
        release.set()
        await asyncio.gather(*tasks)
        return outcomes

    assert asyncio.run(scenario()) == ["refused", "refused", "done", "done", "done"]


def test_memory_budget_bounds_the_workers() -> None:
    assert config_module.load(env={"SIDECAR_MEMORY_BUDGET": str(10 * 2**30)}).worker_processes == (os.cpu_count() or 1)
    small = config_module.load(env={"SIDECAR_MEMORY_BUDGET": str(1000 * 2**20)})
    assert small.worker_processes == 1
    with pytest.raises(ConfigError, match="SIDECAR_MEMORY_BUDGET"):
        config_module.load(env={"SIDECAR_MEMORY_BUDGET": str(1000 * 2**20), "SIDECAR_WORKERS": "2"})
    with pytest.raises(ConfigError, match="SIDECAR_MEMORY_BUDGET"):
        config_module.load(env={"SIDECAR_MEMORY_BUDGET": str(100 * 2**20)})
    assert config_module.load(env={"SIDECAR_MEMORY_BUDGET": str(200 * 2**20), "SIDECAR_MAX_PIXELS": "1000000",
                                   "SIDECAR_MAX_SOURCE_BYTES": "10000000"}).worker_processes >= 1


def test_purge_token_is_a_secret_of_the_environment(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('purge_token = "0123456789abcdefgh"\n')
    with pytest.raises(ConfigError, match="SIDECAR_PURGE_TOKEN"):
        config_module.load(toml, env={})
    with pytest.raises(ConfigError, match="SIDECAR_PURGE_TOKEN"):
        config_module.load(env={"SIDECAR_PURGE_TOKEN": "short"})
