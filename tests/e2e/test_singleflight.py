"""Single-flight across processes: the flock on a rendition's lock file. Another process leads a flight
(tests/support/flight_holder.py); this one must wait for it, take the file it publishes, and take over
the lock when the holder dies without publishing."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sidecar.cache.singleflight import Flights, Lead
from sidecar.cache.store import LOCK_PREFIX, Cache
from sidecar.errors import DeadlineExceeded
from tests.support import flight_holder
from tests.support.paths import REPO
from tests.support.stack import HANG

FILE = "/img/ab/cd/photo.jpg/w100.jpg"


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the flight (and its lock) for FILE until told to finish."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.flight_holder", str(tmp_path), FILE],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == flight_holder.LEADING
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=HANG)


def tell(holder: subprocess.Popen[str], line: str) -> str:
    """Send the holder its line; what it says when its flight is done."""
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(line + "\n")
    holder.stdin.flush()
    return holder.stdout.readline().strip()


def flight_here(cache: Cache, seconds: float) -> tuple[Lead[str] | None, int]:
    """This process's flight for FILE, giving up after `seconds`: how it ended (None: it gave up), and how
    often this process made the rendition itself."""
    made = 0

    async def make() -> str:
        nonlocal made
        made += 1
        await cache.write(FILE, b"made here")
        return "here"

    async def run() -> Lead[str] | None:
        io = ThreadPoolExecutor(1)
        try:
            loop = asyncio.get_running_loop()
            return await Flights[str](cache, io).run([cache.path(FILE)], make, loop.time() + seconds)
        except DeadlineExceeded:
            return None
        finally:
            io.shutdown()
    return asyncio.run(run()), made


def test_a_flight_in_another_process_holds_this_one_until_it_publishes(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    cache = Cache(tmp_path)
    assert flight_here(cache, 0.2) == (None, 0)  # held elsewhere: this one polls and gives up, makes nothing
    assert tell(holder, flight_holder.PUBLISH) == "done holder"
    lead, made = flight_here(cache, 30)
    assert lead is not None and lead.result is None and lead.found == cache.path(FILE) and made == 0
    assert cache.path(FILE).read_bytes() == b"made by the holder"


def test_a_waiting_flight_gets_the_file_the_holder_publishes(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    cache = Cache(tmp_path)

    async def both() -> Lead[str]:
        waiting = asyncio.create_task(asyncio.to_thread(flight_here, cache, 30))
        await asyncio.sleep(0.3)  # it polls the held lock meanwhile (or starts late: the outcome is the same)
        assert await asyncio.to_thread(tell, holder, flight_holder.PUBLISH) == "done holder"
        lead, made = await waiting
        assert lead is not None and made == 0
        return lead

    lead = asyncio.run(both())
    assert lead.result is None and lead.found == cache.path(FILE)
    assert holder.wait(HANG) == 0


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    cache = Cache(tmp_path)
    lock = cache.path(FILE).with_name(LOCK_PREFIX + cache.path(FILE).name)
    assert flight_here(cache, 0.2) == (None, 0)
    os.kill(holder.pid, signal.SIGKILL)  # mid-flight: no publish, no unlock, the lock file stays
    assert holder.wait(HANG) == -signal.SIGKILL and lock.exists()
    lead, made = flight_here(cache, 30)  # the kernel dropped the dead process's flock: ours now
    assert lead is not None and lead.result == "here" and lead.found is None and made == 1
    assert cache.path(FILE).read_bytes() == b"made here" and not lock.exists()


def test_a_holder_that_fails_lets_the_next_flight_make_the_file(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    cache = Cache(tmp_path)
    # Its flight ends without a rendition, as a failed transform's would.
    assert tell(holder, "fail") == "done holder" and not cache.path(FILE).exists()
    lead, made = flight_here(cache, 30)
    assert lead is not None and lead.result == "here" and made == 1
