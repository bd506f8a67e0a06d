"""The cache's life through the real nginx path: disk full, read-only, kill -9 mid-write, purge, eviction."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from tests.support.cli import run_cli
from tests.support.inotify import Inotify, torn
from tests.support.needs import optional
from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir, wait_for
from tests.support.stack import HANG, Reply, Stack, Stacks

PHOTO = "redpanda-nikond80-3872x2592.jpg"
ROAD = "road-1920x1080.jpg"


def files_under(path: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


def renditions_under(path: Path) -> list[str]:
    return [f for f in files_under(path) if not os.path.basename(f).startswith(".")]


def on_disk(stack: Stack, path: str) -> Path:
    return stack.cache_file(path)


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 1 MB filesystem of its own, so that it can really fill up and be made read-only."""
    with readable_tempdir() as mount:  # unmounted and removed at the end, also when the mount fails
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            optional(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        yield mount


def test_disk_full_and_read_only_cache_still_serve_from_memory(stack_factory: Stacks, small_tmpfs: Path) -> None:
    stack = stack_factory([SAMPLES], cache_dir=small_tmpfs, extra="request_deadline = 600\n")  # however slow
    big = stack.url(PHOTO, width=1500, format="png")  # 2.7 MB: ENOSPC part-way through the write
    reply = stack.get(big)
    assert reply.status == 200 and reply.image().size == (1500, 1004)
    assert reply.headers["cache-control"] == "no-store"
    assert renditions_under(small_tmpfs) == [] and not [f for f in files_under(small_tmpfs) if ".tmp-" in f]
    small = stack.url(PHOTO, width=100)
    assert stack.get(small).status == 200 and on_disk(stack, small).is_file()  # the disk works otherwise

    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    other = stack.url(ROAD, width=120)
    reply = stack.get(other)
    assert reply.status == 200 and reply.image().size == (120, 68)
    assert reply.headers["cache-control"] == "no-store"
    assert stack.get(small).status == 200  # hits are unaffected
    assert stack.metric("resize_sidecar_cache_writes_total", result="failed") == 2
    # Each miss from an original also writes the original's record, at the same time: their order varies.
    errors = [str(event["error"]) for event in stack.sidecar_events("cache_write_failed")]
    assert "No space left" in errors[0] and "Read-only" in errors[-1], errors


def locked_or_done(final: Path, pending: Future[Reply]) -> bool:
    """Whether the miss for `final` holds its lock (its directory exists) or has already been answered."""
    return final.parent.is_dir() or pending.done()


def test_kill_9_mid_write_leaves_no_partial_file_and_the_next_start_sweeps(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], extra="workers = 1\nrequest_deadline = 600\n")  # big PNGs, however slow
    for attempt in range(10):  # a loaded machine may take a few tries to kill the worker mid-write
        path = stack.url(PHOTO, width=2600 - attempt, format="png")  # about 7 MB to write
        final = on_disk(stack, path)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(stack.get, path)
            # The miss locks first (creating the directory), then transforms for seconds, then writes.
            wait_for(partial(locked_or_done, final, pending), HANG, "the miss to take its lock")
            created = Inotify(final.parent, Inotify.CREATE)
            try:
                while not pending.done() and not any(n.startswith(".tmp-") for _, n in created.events(0.05)):
                    pass
                for pid in stack.worker_pids():
                    os.kill(pid, signal.SIGKILL)  # the instant the temporary file exists
            finally:
                created.close()
            reply = pending.result()
        temps = [n for n in os.listdir(final.parent) if n.startswith(".tmp-")]
        if temps:  # killed mid-write: whatever it wrote is in the temporary file, none at the final path
            if final.exists():  # only ever a whole one, renamed there by a write that finished (a retry's)
                with Image.open(final) as published:
                    published.load()  # a partial PNG fails here
                assert published.size[0] == 2600 - attempt
            break
        # Killed before the write began, or after it ended: nothing to learn here, try another size.
    else:
        pytest.fail("never caught a write in progress")
    assert reply.status == 502  # the request died with its worker
    # nginx never serves the temporary file, whatever its name.
    hidden = path.rsplit("/", 1)[0] + "/=/" + temps[0]  # the URL that names it
    assert stack.get(hidden).status == 404
    stack.stop_sidecar()
    stack.start_sidecar()  # the start-up sweep removes what the dead writer left
    wait_for(lambda: not (final.parent / temps[0]).exists(), HANG, "the sweep to remove the temporary file")
    reply = stack.get(path)
    assert reply.status == 200 and reply.image().size[0] == 2600 - attempt
    assert final.is_file()


def test_a_rendition_appears_whole_through_nginx(stack_factory: Stacks) -> None:
    # The kernel reports every create and write of a name: the renditions' names may only ever
    # appear by a rename, so neither nginx nor anyone else can read part of one.
    stack = stack_factory([SAMPLES], extra="request_deadline = 600\n")  # a big PNG, however slow
    paths = [stack.url(PHOTO, width=2400, format="png"), stack.url(PHOTO, width=300), stack.url(ROAD, width=100)]
    directories = {on_disk(stack, path).parent for path in paths}
    watches = []
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)  # made before the miss, so every event is seen
        watches.append(Inotify(directory, Inotify.WRITES))
    try:
        for path in paths:
            assert stack.get(path).status == 200
        events = [event for watch in watches for event in watch.events()]
    finally:
        for watch in watches:
            watch.close()
    names = {on_disk(stack, path).name for path in paths}
    assert torn(events, names) == []
    assert sorted(name for mask, name in events if mask & Inotify.MOVED_TO and name in names) == sorted(names)


def test_purge_over_http_needs_the_token_and_removes_every_rendition(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], extra="open_file_cache_valid = 1\n")
    mine = [stack.url(PHOTO, width=50), stack.url(PHOTO, width=60, format="webp")]
    other = stack.url(ROAD, width=50)
    for path in [*mine, other]:
        assert stack.get(path).status == 200
    assert stack.get(mine[0]).status == 200  # a hit: nginx now holds the file open
    key = "/purge/" + PHOTO
    assert stack.admin("POST", key, token=None).status == 401
    wrong = stack.admin("POST", key, token="x" * 27)
    assert wrong.status == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert stack.admin("GET", key).status == 405
    assert all(on_disk(stack, p).is_file() for p in mine)
    reply = stack.admin("POST", key)
    assert reply.status == 200 and json.loads(reply.body) == {"key": PHOTO, "removed": 2}
    assert not any(on_disk(stack, p).exists() for p in mine)
    assert on_disk(stack, other).is_file()
    # nginx stops serving the removed file within open_file_cache_valid, and the sidecar makes it anew.
    before = len([r for r in stack.sidecar_requests() if r["path"] == mine[0]])
    deadline = time.monotonic() + 5
    while len([r for r in stack.sidecar_requests() if r["path"] == mine[0]]) == before:
        assert time.monotonic() < deadline, "nginx kept serving a purged rendition"
        assert stack.get(mine[0]).status == 200
        time.sleep(0.2)
    assert on_disk(stack, mine[0]).is_file()


def test_purge_during_a_miss_keeps_the_stale_rendition_out_of_the_cache(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES])
    slow = stack.url(PHOTO, width=2000, format="png")
    final = on_disk(stack, slow)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(stack.get, slow)
        wait_for(lambda: final.parent.is_dir() and any(n.startswith(".lock-") for n in os.listdir(final.parent)),
                 HANG, "the miss to take its lock")
        purged = stack.admin("POST", "/purge/" + PHOTO)  # waits for the flight in progress
        reply = pending.result()
    assert purged.status == 200
    assert reply.status == 200 and reply.headers["cache-control"] == "no-store"  # served, not published
    assert not final.exists()
    assert stack.metric("resize_sidecar_cache_writes_total", result="superseded") == 1
    assert stack.get(slow).headers["cache-control"] != "no-store"  # the next miss publishes again


def test_purge_and_gc_commands(stack_factory: Stacks) -> None:
    # open_file_cache off: an evicted file must not be served from an open descriptor afterwards.
    stack = stack_factory([SAMPLES], extra="cache_max_bytes = 200_000\ngc_interval = 0\nopen_file_cache_valid = 0\n")
    paths = [stack.url(PHOTO, width=w) for w in (300, 310, 320, 330, 340)]  # about 30 KB each on disk
    for path in paths:
        assert stack.get(path).status == 200
    total = sum(on_disk(stack, p).stat().st_blocks * 512 for p in paths)
    # Oldest access first: paths[0] a day ago ... paths[4] an hour ago; then paths[0] is hit again.
    now = time.time()
    for age, path in zip((86400, 7200, 6000, 5000, 3600), paths):
        mtime = on_disk(stack, path).stat().st_mtime
        os.utime(on_disk(stack, path), (now - age, mtime))
    assert stack.get(paths[0]).status == 200  # a hit: the kernel refreshes its atime (relatime)
    assert on_disk(stack, paths[0]).stat().st_atime > now - 60
    config = ["--config", str(stack.root / "sidecar.toml")]
    budget = total - 1  # just over budget: evict down to 90% of it
    env = {"SIDECAR_CACHE_MAX_BYTES": str(budget)}
    dry = run_cli("gc", "--dry-run", *config, env=env)
    assert dry.returncode == 0 and "would evict" in dry.stdout
    assert all(on_disk(stack, p).is_file() for p in paths)
    result = run_cli("gc", *config, env=env)
    assert result.returncode == 0, result.stderr
    kept = [p for p in paths if on_disk(stack, p).is_file()]
    assert paths[0] in kept and paths[1] not in kept, "eviction ignored recency"
    assert sum(on_disk(stack, p).stat().st_blocks * 512 for p in kept) <= 0.9 * budget
    assert stack.get(paths[1]).status == 200 and on_disk(stack, paths[1]).is_file()  # made again

    result = run_cli("purge", PHOTO, ROAD, *config)
    assert result.returncode == 0, result.stderr
    assert f"{PHOTO}: removed {len(kept) + 1} renditions" in result.stdout
    assert f"{ROAD}: removed 0 renditions" in result.stdout
    assert renditions_under(stack.config.cache.cache_dir) == []
    assert run_cli("purge", "../etc", *config).returncode == 2


def test_background_collector_keeps_the_budget(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], extra="cache_max_bytes = 60_000\ngc_interval = 1\n")
    for width in (300, 310, 320, 330):
        assert stack.get(stack.url(PHOTO, width=width)).status == 200
    wait_for(lambda: stack.metric("resize_sidecar_gc_evicted_files_total") >= 2, HANG, "the collector to evict")
    kept = renditions_under(stack.config.cache.cache_dir)
    assert sum(os.stat(stack.config.cache.cache_dir / f).st_blocks * 512 for f in kept) <= 60_000


def test_warm_makes_presets_for_a_list_of_keys(stack_factory: Stacks, tmp_path: Path) -> None:
    stack = stack_factory([SAMPLES], extra="[presets.thumb]\nwidth = 160\nformat = 'webp'\n"
                                            "[presets.card]\nwidth = 400\nheight = 300\nfit = 'fill'\n"
                                            "[presets.hero]\nwidth = 240\nformat = 'auto'\n")
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# new uploads\n{PHOTO}\n{ROAD}\n\nno/such.jpg\n")
    config = ["--config", str(stack.root / "sidecar.toml")]
    env = {"SIDECAR_SIGNING_KEYS": stack.env["SIDECAR_SIGNING_KEYS"]}
    result = run_cli("warm", str(keys), "--preset", "thumb", "--preset", "card", "--concurrency", "2", *config, env=env)
    assert result.returncode == 1  # one key is missing
    assert "6 renditions" in result.stdout and "4 made, 0 already cached, 2 failed (404: 2)" in result.stdout
    assert "no/such.jpg (thumb): 404" in result.stderr and "6/6" in result.stderr
    before = len(stack.sidecar_requests())
    for key in (PHOTO, ROAD):
        thumb = stack.get(stack.url(key, preset="thumb"))
        assert thumb.status == 200 and thumb.image().size[0] == 160
        assert stack.get(stack.url(key, preset="card")).image().size == (400, 300)
    assert len(stack.sidecar_requests()) == before, "warmed renditions should be hits"
    again = run_cli("warm", "-", "--preset", "thumb", *config, env=env, input=f"{PHOTO}\n")
    assert again.returncode == 0 and "0 made, 1 already cached, 0 failed" in again.stdout
    assert run_cli("warm", str(keys), "--preset", "nope", *config, env=env).returncode == 2
    # An auto preset: one rendition for each variant nginx may ask for.
    auto = run_cli("warm", "-", "--preset", "hero", *config, env=env, input=f"{ROAD}\n")
    assert auto.returncode == 0 and "4 made" in auto.stdout, auto.stdout + auto.stderr
    before = len(stack.sidecar_requests())
    for accept, kind in (("image/jxl,image/avif", "image/jxl"), ("image/avif,image/webp", "image/avif"),
                         ("image/webp", "image/webp"), ("*/*", "image/jpeg")):
        reply = stack.get(stack.url(ROAD, preset="hero"), headers={"Accept": accept})
        assert reply.status == 200 and reply.headers["content-type"] == kind
    assert len(stack.sidecar_requests()) == before, "warmed auto renditions should be hits"
