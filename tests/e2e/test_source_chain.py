"""The source chain in this process against a real HTTP origin (aiohttp, tests/support/servers.py): an
origin's refusal of one key is that key's answer, never a failure of the source. (The chain over local
directories: tests/unit/test_source_chain.py; through nginx and a sidecar: test_sources_path.py.)"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound
from sidecar.observe.metrics import Metrics
from sidecar.sources.chain import SourceChain
from sidecar.sources.http import HttpSource
from sidecar.sources.local import LocalSource
from tests.support.servers import Origin

KEY = "forbidden/photo.jpg"  # the origin answers 403 for every key under forbidden/


@pytest.fixture
def flaky() -> Iterator[Origin]:
    """An origin of its own: /flaky/ answers in a fixed cycle (ok, 500, ok, reset), counted from its start."""
    server = Origin()
    yield server
    server.stop()


def events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    """The sidecar's log records written so far, without time and pid, in order."""
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [{k: v for k, v in r.items() if k not in ("ts", "pid")} for r in lines]


def test_a_refusal_is_the_keys_answer_it_counts_logs_and_brings_a_down_source_back(
        flaky: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "forbidden").mkdir()
    (tmp_path / "forbidden/photo.jpg").write_bytes(b"from the disk")

    async def scenario() -> list[bytes]:
        http = await HttpSource.open(SourceSpec("http", flaky.base + "/flaky/"), max_bytes=1 << 20,
                                     connect_timeout=5, first_byte_timeout=5, body_timeout=5, pool_size=2)
        disk = LocalSource(SourceSpec("local", str(tmp_path)), max_bytes=1 << 20, open_timeout=5,
                           read_timeout=5, threads=1)
        chain = SourceChain([http, disk], down_after=1, down_for=0.001, metrics=metrics)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            found = [(await chain.fetch(KEY, deadline)).data]  # the origin's 1st answer: 403, refused
            found.append((await chain.fetch(KEY, deadline)).data)  # 2nd: 500, the origin is marked down
            await asyncio.sleep(0.01)  # its down period (1 ms) is over: the next request probes it
            found.append((await chain.fetch(KEY, deadline)).data)  # 3rd: 403 again, an answer: it is back
            return found
        finally:
            await chain.close()

    metrics = Metrics()
    assert asyncio.run(scenario()) == [b"from the disk"] * 3
    name = flaky.base + "/flaky/"
    url = name + KEY

    def requests(outcome: str) -> float | None:
        return metrics.registry.get_sample_value("resize_sidecar_source_requests_total",
                                                 {"source": name, "outcome": outcome})

    assert [requests("refused"), requests("unavailable"), requests("found")] == [2, 1, 0]
    assert metrics.registry.get_sample_value("resize_sidecar_source_request_seconds_count", {"source": name}) == 3
    assert metrics.registry.get_sample_value("resize_sidecar_source_down", {"source": name}) == 0
    assert [e for e in events(capsys) if e["event"] != "source_failed"] == [
        {"event": "source_refused", "source": name, "error": f"{url}: HTTP 403"},
        {"event": "source_down", "source": name, "seconds": 0.001, "failures": 1},
        {"event": "source_refused", "source": name, "error": f"{url}: HTTP 403"},
        {"event": "source_up", "source": name}]


def test_a_key_refused_everywhere_is_not_found(flaky: Origin) -> None:
    async def scenario() -> None:
        http = await HttpSource.open(SourceSpec("http", flaky.base + "/files/"), max_bytes=1 << 20,
                                     connect_timeout=5, first_byte_timeout=5, body_timeout=5, pool_size=2)
        chain = SourceChain([http], metrics=Metrics())
        try:
            with pytest.raises(NotFound):
                await chain.fetch(KEY, asyncio.get_running_loop().time() + 60)
        finally:
            await chain.close()

    asyncio.run(scenario())
