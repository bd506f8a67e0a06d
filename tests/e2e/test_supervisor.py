"""The supervisor, run here in the test's event loop over real worker processes: a worker that dies is
started again, and on stop the workers drain, and one that ignores SIGTERM is killed after the grace."""
from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import values

from sidecar.app.health import ask
from sidecar.config import Config, load
from sidecar.observe.metrics import DIRECTORY_ENV
from sidecar.server.supervisor import STOP_GRACE, Supervisor, supervising
from tests.support.paths import SAMPLES


class Logs:
    """The JSON records the supervisor and its workers write to the test's stderr, gathered as they come."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.records: list[dict[str, object]] = []

    def of(self, event: str) -> list[dict[str, object]]:
        lines = self.capfd.readouterr().err.splitlines()
        self.records += [json.loads(line) for line in lines if line.startswith("{")]
        return [record for record in self.records if record["event"] == event]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    # The supervisor points prometheus-client at its metrics directory, for this process and its children:
    # put both back afterwards, so that the other tests' metrics stay in memory.
    monkeypatch.setenv(DIRECTORY_ENV, "")
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    return load(None, env={
        "SIDECAR_SOCKET": str(tmp_path / "s.sock"), "SIDECAR_CACHE_DIR": str(tmp_path / "cache"),
        "SIDECAR_METRICS_DIR": str(tmp_path / "metrics"), "SIDECAR_ACCESS_LOG": str(tmp_path / "access.log"),
        "SIDECAR_SOURCES": str(SAMPLES), "SIDECAR_ALLOW_UNSIGNED": "1", "SIDECAR_WORKERS": "2",
        "SIDECAR_DRAIN_TIMEOUT": "1"})


async def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@asynccontextmanager
async def ready(config: Config, logs: Logs) -> AsyncIterator[Supervisor]:
    """A supervisor whose workers are all listening."""
    async with supervising(config) as supervisor:
        def all_ready() -> bool:
            pids = {process.pid for process in supervisor.processes.values()}
            return len(pids) == config.worker_processes and pids <= {r["pid"] for r in logs.of("worker_ready")}
        await until(all_ready, "every worker to listen")
        yield supervisor


def test_a_killed_worker_is_started_again(config: Config, capfd: pytest.CaptureFixture[str]) -> None:
    logs = Logs(capfd)

    async def scenario() -> None:
        async with ready(config, logs) as supervisor:
            killed, other = supervisor.processes[1].pid, supervisor.processes[2].pid
            os.kill(killed, signal.SIGKILL)
            await until(lambda: supervisor.processes[1].pid != killed, "worker 1 to be started again")
            new = supervisor.processes[1].pid
            await until(lambda: new in {r["pid"] for r in logs.of("worker_ready")}, "the new worker to listen")
            assert supervisor.processes[2].pid == other  # the other worker was left alone
            assert supervisor.metrics.registry.get_sample_value("resize_sidecar_worker_restarts_total") == 1
            status, _ = await asyncio.to_thread(ask, config.server.socket, "/healthz", 10)
            assert status == 200
        [died] = logs.of("worker_died")
        assert died["pid"] == killed and died["returncode"] == -signal.SIGKILL and died["worker"] == 1

    asyncio.run(scenario())


def test_stop_drains_the_workers_and_kills_one_that_ignores_sigterm(
        config: Config, capfd: pytest.CaptureFixture[str]) -> None:
    logs = Logs(capfd)

    async def scenario() -> None:
        async with ready(config, logs) as supervisor:
            stuck, fine = supervisor.processes[1], supervisor.processes[2]
            os.kill(stuck.pid, signal.SIGSTOP)  # hung: SIGTERM stays pending, only SIGKILL ends it
            started = asyncio.get_running_loop().time()
        # Leaving `supervising` stopped the supervisor: SIGTERM to both, then SIGKILL for the one still there.
        waited = asyncio.get_running_loop().time() - started
        assert fine.returncode == 0, "the worker that heard SIGTERM drained and exited by itself"
        assert stuck.returncode == -signal.SIGKILL
        assert [r["pid"] for r in logs.of("worker_killed")] == [stuck.pid]
        assert waited >= config.processes.drain_timeout + STOP_GRACE  # the grace is given in full before the kill
        assert not logs.of("worker_died")  # stopping is not dying: nothing is started again
        assert logs.of("stopped")

    asyncio.run(scenario())
