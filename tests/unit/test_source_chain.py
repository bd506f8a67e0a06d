"""The source chain over real local sources (directories, a missing one, a FIFO whose read hangs like a dead
NFS mount's): the order it asks them in, its timeouts and the request's deadline, retries, and the breaker
that stops asking a failing source. In-process, with the loop's own clock."""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceTimeout, SourceUnavailable
from sidecar.observe.metrics import Metrics
from sidecar.sources.chain import Original, SourceChain
from sidecar.sources.local import LocalSource

T = TypeVar("T")
HANG = 0.3  # a hung source's read timeout: the FIFO has a writer and never any data


def local(path: Path, read_timeout: float = 5.0) -> LocalSource:
    return LocalSource(SourceSpec("local", str(path)), max_bytes=1 << 20, open_timeout=5.0,
                       read_timeout=read_timeout, threads=2)


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """`a` and `b` hold originals, `gone` does not exist (unavailable), `hung` holds a FIFO (hangs)."""
    found = {name: tmp_path / name for name in ("a", "b", "hung")}
    for path in found.values():
        path.mkdir()
    (found["a"] / "only-a.jpg").write_bytes(b"from a")
    (found["a"] / "both.jpg").write_bytes(b"both, from a")
    (found["b"] / "both.jpg").write_bytes(b"both, from b")
    (found["b"] / "only-b.jpg").write_bytes(b"from b")
    os.mkfifo(found["hung"] / "only-b.jpg")
    writer = os.open(found["hung"] / "only-b.jpg", os.O_RDWR | os.O_NONBLOCK)  # opens at once, reads hang
    found["gone"] = tmp_path / "gone"
    yield found
    os.close(writer)  # a read still stuck in a source's thread gets its end of file and closes the file


def run(chain: SourceChain, scenario: Callable[[SourceChain, float], Awaitable[T]], deadline: float = 30) -> T:
    """`scenario(chain, deadline)` in an event loop; `deadline` is seconds from now, in the loop's time."""
    async def go() -> T:
        try:
            return await scenario(chain, asyncio.get_running_loop().time() + deadline)
        finally:
            await chain.close()
    return asyncio.run(go())


def count(chain: SourceChain, source: LocalSource, outcome: str) -> float:
    value = chain.metrics.registry.get_sample_value("resize_sidecar_source_requests_total",
                                                    {"source": source.name, "outcome": outcome})
    return value or 0.0


def fetch(key: str) -> Callable[[SourceChain, float], Awaitable[Original]]:
    return lambda chain, deadline: chain.fetch(key, deadline)


def test_the_first_source_that_has_the_original_answers(dirs: dict[str, Path]) -> None:
    a, b = local(dirs["a"]), local(dirs["b"])
    chain = SourceChain([a, b], metrics=Metrics())
    assert run(chain, fetch("both.jpg")) == Original(b"both, from a", "local")
    assert count(chain, a, "found") == 1 and count(chain, b, "found") == 0


def test_a_source_without_it_sends_the_request_on(dirs: dict[str, Path]) -> None:
    a, b = local(dirs["a"]), local(dirs["b"])
    chain = SourceChain([a, b], metrics=Metrics())
    assert run(chain, fetch("only-b.jpg")).data == b"from b"
    assert count(chain, a, "not_found") == 1 and count(chain, b, "found") == 1


def test_not_found_anywhere_is_404_and_no_failure(dirs: dict[str, Path]) -> None:
    a, b = local(dirs["a"]), local(dirs["b"])
    chain = SourceChain([a, b], down_after=1, metrics=Metrics())
    with pytest.raises(NotFound):
        run(chain, fetch("nowhere.jpg"))
    assert not chain.breakers[0].down and not chain.breakers[1].down  # a 404 is an answer


def test_an_unavailable_source_falls_through_and_is_marked_down_after_its_threshold(
        dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gone, b = local(dirs["gone"]), local(dirs["b"])
    chain = SourceChain([gone, b], down_after=2, down_for=60, metrics=Metrics())

    async def three(chain: SourceChain, deadline: float) -> list[Original]:
        return [await chain.fetch("only-b.jpg", deadline) for _ in range(3)]

    assert [o.data for o in run(chain, three)] == [b"from b"] * 3
    # Asked twice (down after the second failure), then skipped without being asked.
    assert count(chain, gone, "unavailable") == 2 and count(chain, gone, "skipped_down") == 1
    assert chain.breakers[0].down
    metrics = chain.metrics.registry
    assert metrics.get_sample_value("resize_sidecar_source_marked_down_total", {"source": gone.name}) == 1
    assert metrics.get_sample_value("resize_sidecar_source_down", {"source": gone.name}) == 1
    assert capsys.readouterr().err.count('"event":"source_down"') == 1


def test_only_unavailable_sources_make_a_502_and_the_retries_are_counted(dirs: dict[str, Path]) -> None:
    gone = local(dirs["gone"])
    chain = SourceChain([gone], retries=2, down_after=10, metrics=Metrics())
    with pytest.raises(SourceUnavailable):
        run(chain, fetch("only-a.jpg"))
    assert count(chain, gone, "unavailable") == 3  # the first try and two retries
    assert chain.metrics.registry.get_sample_value("resize_sidecar_source_retries_total",
                                                   {"source": gone.name}) == 2
    assert chain.breakers[0].failures == 3


def test_a_hung_source_costs_its_timeout_is_not_retried_and_the_next_source_answers(dirs: dict[str, Path]) -> None:
    hung, b = local(dirs["hung"], read_timeout=HANG), local(dirs["b"])
    chain = SourceChain([hung, b], retries=3, down_after=10, metrics=Metrics())

    async def timed(chain: SourceChain, deadline: float) -> tuple[Original, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        original = await chain.fetch("only-b.jpg", deadline)
        return original, loop.time() - started

    original, took = run(chain, timed)
    assert original.data == b"from b" and took >= HANG  # the hung read was given its whole timeout
    assert count(chain, hung, "timeout") == 1  # and only once: a timeout is not retried
    assert chain.breakers[0].failures == 1


def test_a_timeout_anywhere_makes_the_whole_failure_a_504(dirs: dict[str, Path]) -> None:
    hung, gone = local(dirs["hung"], read_timeout=HANG), local(dirs["gone"])
    chain = SourceChain([gone, hung], down_after=10, metrics=Metrics())
    with pytest.raises(SourceTimeout) as raised:
        run(chain, fetch("only-b.jpg"))
    assert raised.value.detail == f"{gone.name} is not a directory; {hung.name}: body not complete after {HANG}s"


def test_the_requests_deadline_ends_a_fetch_without_blaming_the_source(dirs: dict[str, Path]) -> None:
    hung, b = local(dirs["hung"], read_timeout=30), local(dirs["b"])
    chain = SourceChain([hung, b], down_after=1, metrics=Metrics())
    with pytest.raises(SourceTimeout) as raised:
        run(chain, fetch("only-b.jpg"), deadline=HANG)
    assert "request deadline reached" in str(raised.value.detail)
    assert count(chain, hung, "timeout") == 1 and count(chain, b, "found") == 0  # no time left for b
    assert not chain.breakers[0].down  # the deadline is the request's, not the source's fault


def test_a_deadline_already_past_asks_no_source(dirs: dict[str, Path]) -> None:
    a = local(dirs["a"])
    chain = SourceChain([a], metrics=Metrics())
    with pytest.raises(SourceTimeout) as raised:
        run(chain, fetch("only-a.jpg"), deadline=-1)
    assert "deadline passed before" in str(raised.value.detail)
    assert count(chain, a, "found") == 0 and count(chain, a, "timeout") == 0


def test_a_probe_that_answers_brings_a_down_source_back(dirs: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a = local(dirs["a"])
    chain = SourceChain([a], down_after=1, down_for=0.05, metrics=Metrics())
    chain.breakers[0].failed(0)  # down since the loop's time 0: the next request is the probe
    chain.metrics.source_down.labels(a.name).set(1)  # as marking it down left it

    async def probe(chain: SourceChain, deadline: float) -> Original:
        return await chain.fetch("only-a.jpg", deadline)

    assert run(chain, probe).data == b"from a"
    assert not chain.breakers[0].down
    assert chain.metrics.registry.get_sample_value("resize_sidecar_source_down", {"source": a.name}) == 0
    assert '"event":"source_up"' in capsys.readouterr().err


def test_probe_reports_each_source(dirs: dict[str, Path]) -> None:
    a, gone = local(dirs["a"]), local(dirs["gone"])
    chain = SourceChain([a, gone], metrics=Metrics())
    report = run(chain, lambda chain, deadline: chain.probe())
    assert report[a.name] == "ok" and "No such file" in report[gone.name]


def records(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, object]]:
    """The sidecar's log records of one kind written so far (JSON lines on stderr), without the time."""
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [{k: v for k, v in r.items() if k not in ("ts", "pid")} for r in lines if r["event"] == event]


def observed(chain: SourceChain, source: LocalSource) -> float:
    """How many fetches from `source` were timed (its latency histogram's count)."""
    return chain.metrics.registry.get_sample_value("resize_sidecar_source_request_seconds_count",
                                                   {"source": source.name}) or 0.0


def test_every_attempt_is_timed_and_every_failure_logged(dirs: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    gone, hung = local(dirs["gone"]), local(dirs["hung"], read_timeout=HANG)
    a, b = local(dirs["a"]), local(dirs["b"])
    chain = SourceChain([gone, hung, a, b], retries=1, down_after=10, metrics=Metrics())
    assert run(chain, fetch("only-b.jpg")).data == b"from b"
    # gone: two attempts (a retry); hung: one (its timeout is not retried); a: not found; b: found.
    assert [observed(chain, s) for s in (gone, hung, a, b)] == [2, 1, 1, 1]
    assert records(capsys, "source_failed") == [
        {"event": "source_failed", "source": gone.name, "status": 502, "error": f"{gone.name} is not a directory"},
        {"event": "source_failed", "source": gone.name, "status": 502, "error": f"{gone.name} is not a directory"},
        {"event": "source_failed", "source": hung.name, "status": 504,
         "error": f"{hung.name}: body not complete after {HANG}s"}]


def test_the_deadline_is_logged_as_the_requests_and_counted_as_a_timeout(dirs: dict[str, Path],
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    hung = local(dirs["hung"], read_timeout=30)
    chain = SourceChain([hung], down_after=1, metrics=Metrics())
    with pytest.raises(SourceTimeout):
        run(chain, fetch("only-b.jpg"), deadline=HANG)
    assert records(capsys, "source_failed") == [
        {"event": "source_failed", "source": hung.name, "status": 504, "error": "request deadline reached"}]
    assert observed(chain, hung) == 1 and records(capsys, "source_down") == []


def test_a_source_marked_down_is_named_in_the_failure(dirs: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    gone = local(dirs["gone"])
    chain = SourceChain([gone], down_after=1, down_for=60, metrics=Metrics())
    with pytest.raises(SourceUnavailable):
        run(chain, fetch("only-a.jpg"))
    assert records(capsys, "source_down") == [
        {"event": "source_down", "source": gone.name, "seconds": 60, "failures": 1}]
    chain = SourceChain([gone], down_after=1, down_for=60, metrics=Metrics())
    chain.breakers[0].failed(time.monotonic())  # down now (the loop's clock is the monotonic one)
    with pytest.raises(SourceUnavailable) as raised:
        run(chain, fetch("only-a.jpg"))
    assert raised.value.detail == f"{gone.name} is marked down"
    assert observed(chain, gone) == 0  # skipped: not asked, not timed


def test_a_probe_that_finds_nothing_still_brings_the_source_back(dirs: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = local(dirs["a"])
    chain = SourceChain([a], down_after=1, down_for=0.05, metrics=Metrics())
    chain.breakers[0].failed(0)
    with pytest.raises(NotFound):
        run(chain, fetch("nowhere.jpg"))  # an answer: the source is up again
    assert not chain.breakers[0].down
    assert records(capsys, "source_up") == [{"event": "source_up", "source": a.name}]


def test_a_source_that_keeps_timing_out_is_marked_down(dirs: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    hung, b = local(dirs["hung"], read_timeout=HANG), local(dirs["b"])
    chain = SourceChain([hung, b], down_after=1, down_for=60, metrics=Metrics())
    assert run(chain, fetch("only-b.jpg")).data == b"from b"  # its own timeout, then the next source
    assert records(capsys, "source_down") == [
        {"event": "source_down", "source": hung.name, "seconds": 60, "failures": 1}]
    assert chain.metrics.registry.get_sample_value("resize_sidecar_source_marked_down_total",
                                                   {"source": hung.name}) == 1


def test_the_bytes_fetched_are_counted_for_the_source_that_gave_them(dirs: dict[str, Path]) -> None:
    a, b = local(dirs["a"]), local(dirs["b"])
    chain = SourceChain([a, b], metrics=Metrics())
    run(chain, fetch("only-b.jpg"))
    assert [chain.metrics.registry.get_sample_value("resize_sidecar_source_bytes_total", {"source": s.name})
            for s in (a, b)] == [0, len(b"from b")]


def test_a_fetch_is_timed_as_a_duration_within_the_time_it_took(dirs: dict[str, Path]) -> None:
    b = local(dirs["b"])
    chain = SourceChain([b], metrics=Metrics())
    started = time.perf_counter()
    run(chain, fetch("only-b.jpg"))
    took = time.perf_counter() - started
    observed_sum = chain.metrics.registry.get_sample_value("resize_sidecar_source_request_seconds_sum",
                                                           {"source": b.name})
    assert observed_sum is not None and 0 <= observed_sum <= took
