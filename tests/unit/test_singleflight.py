"""Single-flight inside one process: identical misses join one flight, which outlives the requests that
give up on it; a failed flight fails everyone on it and the next request starts afresh. (Across processes,
with the flock: tests/e2e/test_singleflight.py.)"""
from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from sidecar.cache.singleflight import (
    Flights,
    _names,
    remove_if_unheld,
    wait_for_holders,
)
from sidecar.cache.store import LOCK_PREFIX, Cache
from sidecar.errors import DeadlineExceeded, SourceUnavailable
from tests.support.inotify import Inotify

FILE = "/img/ab/cd/photo.jpg/w100.jpg"
WEBP = "/img/ab/cd/photo.jpg/w100.webp"
T = TypeVar("T")


def with_flights(tmp_path: Path, scenario: Callable[[Cache, Flights[str], float], Awaitable[T]]) -> T:
    """Run `scenario(cache, flights, give_up)` in an event loop, with a far deadline."""
    errors: list[dict[str, object]] = []

    async def run() -> T:
        cache, io = Cache(tmp_path), ThreadPoolExecutor(2)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: errors.append(context))  # a callback that failed
        try:
            return await scenario(cache, Flights[str](cache, io), loop.time() + 30)
        finally:
            io.shutdown()
    result = asyncio.run(run())
    assert errors == [], errors
    return result


class Maker:
    """A flight's work that publishes the file when let go, counting how often it ran."""

    def __init__(self, cache: Cache, publish: bool = True, released: bool = False) -> None:
        self.cache, self.publish = cache, publish
        self.calls = 0
        self.started, self.release = asyncio.Event(), asyncio.Event()
        if released:
            self.release.set()

    async def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if not self.publish:
            raise SourceUnavailable()
        await self.cache.write(FILE, b"rendition")
        return f"made {self.calls}"


def lock_files(cache: Cache) -> list[str]:
    directory = cache.path(FILE).parent  # a flight that published nothing removes the directories it made
    return [p.name for p in directory.iterdir() if p.name.startswith(LOCK_PREFIX)] if directory.is_dir() else []


def test_identical_misses_in_one_process_join_one_flight(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        make = Maker(cache)
        final = [cache.path(FILE)]
        first = asyncio.create_task(flights.run(final, make, give_up))
        await make.started.wait()
        later = [asyncio.create_task(flights.run(final, make, give_up)) for _ in range(5)]
        await asyncio.sleep(0)
        assert len(flights) == 1 and lock_files(cache) == [LOCK_PREFIX + "w100.jpg"]  # the leader's lock
        lock = cache.path(FILE).with_name(LOCK_PREFIX + "w100.jpg")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600  # the sidecar's own: nobody else reads or takes it
        make.release.set()
        leads = [await first, *[await task for task in later]]
        assert make.calls == 1
        assert [lead.joined for lead in leads] == [False] + [True] * 5
        assert {lead.result for lead in leads} == {"made 1"} and all(lead.found is None for lead in leads)
        assert len(flights) == 0 and lock_files(cache) == []

    with_flights(tmp_path, scenario)


def test_a_request_that_gives_up_leaves_the_flight_to_land(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        make = Maker(cache)
        request = asyncio.create_task(flights.run([cache.path(FILE)], make, give_up))
        await make.started.wait()
        request.cancel()  # its deadline passed, or the worker is shutting down
        with pytest.raises(asyncio.CancelledError):
            await request
        assert len(flights) == 1  # the work goes on without anyone waiting
        make.release.set()
        while len(flights):
            await asyncio.sleep(0.01)
        assert await cache.exists(FILE) and lock_files(cache) == []
        # The next request finds the file: no second flight's work.
        lead = await flights.run([cache.path(FILE)], make, give_up)
        assert lead.result is None and lead.found == cache.path(FILE) and make.calls == 1

    with_flights(tmp_path, scenario)


def test_a_failed_flight_fails_everyone_on_it_and_the_next_request_starts_a_new_one(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        failing = Maker(cache, publish=False)
        final = [cache.path(FILE)]
        first = asyncio.create_task(flights.run(final, failing, give_up))
        await failing.started.wait()
        joined = asyncio.create_task(flights.run(final, failing, give_up))
        await asyncio.sleep(0)
        failing.release.set()
        for task in (first, joined):
            with pytest.raises(SourceUnavailable):
                await task
        assert failing.calls == 1 and len(flights) == 0 and lock_files(cache) == []
        retry = Maker(cache)
        retry.release.set()
        lead = await flights.run(final, retry, give_up)
        assert lead.result == "made 1" and not lead.joined and retry.calls == 1

    with_flights(tmp_path, scenario)


def test_a_file_published_already_is_found_without_a_flight(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        await cache.write(WEBP, b"published by another worker")
        make = Maker(cache)
        finals = [cache.path(FILE), cache.path(WEBP)]  # the names an `.auto` rendition may have
        watch = Inotify(finals[0].parent, Inotify.CREATE)
        try:
            lead = await flights.run(finals, make, give_up)
            created = watch.events()
        finally:
            watch.close()
        assert lead.result is None and lead.found == finals[1] and not lead.joined
        assert make.calls == 0 and created == []  # found at the first look: not even a lock file made

    with_flights(tmp_path, scenario)


def test_a_cache_that_takes_no_lock_file_still_shares_one_flight_in_the_process(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        cache.path(FILE).parent.parent.mkdir(parents=True)
        cache.path(FILE).parent.write_bytes(b"")  # a file where the directory goes: no lock file, even as root
        make = Maker(cache, publish=False)
        first = asyncio.create_task(flights.run([cache.path(FILE)], make, give_up))
        await make.started.wait()
        joined = asyncio.create_task(flights.run([cache.path(FILE)], make, give_up))
        await asyncio.sleep(0)
        make.release.set()
        results = await asyncio.gather(first, joined, return_exceptions=True)
        assert make.calls == 1 and all(isinstance(r, SourceUnavailable) for r in results)

    with_flights(tmp_path, scenario)


def test_a_leader_that_finds_the_lock_held_gives_up_at_its_deadline(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        make = Maker(cache)
        other: Flights[str] = Flights(cache, flights.io)  # another process's flights, in effect: its own table
        holder = asyncio.create_task(other.run([cache.path(FILE)], make, give_up))
        await make.started.wait()
        waiter = Maker(cache)
        loop = asyncio.get_running_loop()
        with pytest.raises(DeadlineExceeded, match="stayed locked"):
            await flights.run([cache.path(FILE)], waiter, loop.time() + 0.05)
        assert waiter.calls == 0
        make.release.set()
        await holder

    with_flights(tmp_path, scenario)


def test_a_lock_held_in_this_process_is_neither_swept_nor_skipped_by_a_purge(tmp_path: Path) -> None:
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        make = Maker(cache)
        flight = asyncio.create_task(flights.run([cache.path(FILE)], make, give_up))
        await make.started.wait()
        [name] = lock_files(cache)
        lock = cache.path(FILE).with_name(name)
        assert not remove_if_unheld(lock) and lock.exists()  # held: the sweep leaves it
        waited = asyncio.create_task(asyncio.to_thread(wait_for_holders, lock.parent))
        await asyncio.sleep(0.05)
        assert not waited.done(), "a purge went on while a flight held its lock"
        make.release.set()
        await flight
        await waited  # the holder finished: the purge goes on
        assert not lock.exists()

    with_flights(tmp_path, scenario)


def test_the_sweep_removes_a_lock_nobody_holds(tmp_path: Path) -> None:
    directory = tmp_path / "img/ab/cd/photo.jpg"
    directory.mkdir(parents=True)
    left = directory / (LOCK_PREFIX + "w100.jpg")
    left.write_bytes(b"")  # what a crashed holder leaves: the kernel dropped its flock
    assert remove_if_unheld(left) and not left.exists()
    assert not remove_if_unheld(left)  # already gone
    wait_for_holders(directory)  # nothing held: returns at once
    wait_for_holders(tmp_path / "no/such/directory")


def test_a_lock_path_names_only_the_file_it_was_opened_as(tmp_path: Path) -> None:
    # What keeps two live holders apart: a lock taken on a file its holder has just unlinked is no lock.
    path = tmp_path / (LOCK_PREFIX + "w1.jpg")
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _names(path, fd)
        path.unlink()
        assert not _names(path, fd)
        path.write_bytes(b"")  # a new file under the old name: another inode
        assert not _names(path, fd)
    finally:
        os.close(fd)


def descriptors_of(path: Path) -> list[int]:
    """This process's open descriptors of the file at `path` (from /proc)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                found.append(int(name))
        except FileNotFoundError:  # the descriptor listdir itself used, closed again
            continue
    return found


def test_a_flight_does_its_file_work_in_the_workers_io_threads(tmp_path: Path) -> None:
    """The event loop's default pool is shut down here: a step that fell back on it would fail."""
    async def scenario() -> None:
        dead = ThreadPoolExecutor(1)
        dead.shutdown()
        asyncio.get_running_loop().set_default_executor(dead)
        cache = Cache(tmp_path, io)
        lead = await Flights[str](cache, io).run([cache.path(FILE)], Maker(cache, released=True), 1e9)
        assert lead.result == "made 1" and lock_files(cache) == []  # the lock released in the io threads

    with ThreadPoolExecutor(2) as io:
        asyncio.run(scenario())


def test_a_lock_that_got_descriptor_0_is_released_like_any_other(tmp_path: Path) -> None:
    # A worker started with its stdin closed: the first file it opens, the lock file, gets descriptor 0.
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        make = Maker(cache)
        stdin = os.dup(0)
        os.close(0)
        try:
            flight = asyncio.create_task(flights.run([cache.path(FILE)], make, give_up))
            await make.started.wait()
            assert descriptors_of(cache.path(FILE).with_name(LOCK_PREFIX + "w100.jpg")) == [0]
            make.release.set()
            assert (await flight).result == "made 1"
        finally:
            os.dup2(stdin, 0)
            os.close(stdin)
        assert lock_files(cache) == []  # unlocked, unlinked and closed

    with_flights(tmp_path, scenario)


def test_a_lock_file_that_cannot_be_made_costs_the_lock_not_the_rendition(tmp_path: Path) -> None:
    # A dangling symlink where the lock file goes (into a directory that does not exist): every open fails.
    async def scenario(cache: Cache, flights: Flights[str], give_up: float) -> None:
        lock = cache.path(FILE).with_name(LOCK_PREFIX + "w100.jpg")
        cache.makedirs(lock.parent)
        lock.symlink_to(tmp_path / "no/such/directory/lock")
        lead = await flights.run([cache.path(FILE)], Maker(cache, released=True), give_up)
        assert lead.result == "made 1" and cache.path(FILE).read_bytes() == b"rendition"

    with_flights(tmp_path, scenario)


def test_a_flight_cut_short_by_shutdown_releases_its_lock_and_logs_nothing(tmp_path: Path) -> None:
    errors: list[dict[str, object]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        cache = Cache(tmp_path)
        make = Maker(cache)
        asyncio.create_task(Flights[str](cache, io).run([cache.path(FILE)], make, 1e9))
        await make.started.wait()
        # Returning leaves the flight running: asyncio.run cancels it, as a worker's loop does at exit.

    with ThreadPoolExecutor(2) as io:
        asyncio.run(scenario())
    assert errors == [] and not (tmp_path / "img").exists()
