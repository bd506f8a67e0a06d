"""The supervisor: binds the socket, starts worker processes that share it, and keeps them running.

Why processes: each worker has its own interpreter, so the event loop and the Python parts of a
transform never wait for another worker's GIL, and a worker that crashes takes only its own requests
with it. `bench/worker_model.py` measured processes and threads side by side (docs/benchmarks.md,
"Threads or processes"). The workers accept from one listening socket; single-flight across them uses file locks
(`sidecar.cache.singleflight`), and metrics live in files of one directory that the supervisor empties at
start (`sidecar.observe.metrics`).

The supervisor also runs the cache's collector (`sidecar.cache.gc`) in a thread: once at start, which sweeps
temporary files left by a crash, then every `gc_interval` seconds. Requests never wait for it. And it
follows nginx's access log to count hits and misses (`sidecar.observe.accesslog`).

Workers are started as separate interpreters (`sidecar.server.spec`). If the supervisor dies, its workers
get SIGTERM (Linux's parent-death signal) and drain.
"""
from __future__ import annotations

import asyncio
import pickle
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvloop

from sidecar.cache import gc
from sidecar.config import Config
from sidecar.log import log
from sidecar.observe import metrics
from sidecar.observe.accesslog import AccessLogTail, HitRatio
from sidecar.server.listen import listen
from sidecar.server.signals import stop_event
from sidecar.server.spec import WORKER_MODULE, WorkerSpec

RESTART_DELAY_MIN = 0.1
RESTART_DELAY_MAX = 5.0
STOP_GRACE = 5.0  # beyond drain_timeout, before a worker that does not exit is killed
TAIL_INTERVAL = 1.0  # seconds between reads of nginx's access log (nginx itself flushes it every second)



class Supervisor:
    def __init__(self, config: Config, sock: socket.socket) -> None:
        self.config, self.sock = config, sock
        self.count = config.worker_processes
        metrics.use_directory(config.observability.metrics_dir)  # before any metric exists, here and in the workers
        self.metrics = metrics.Metrics()
        self.metrics.initialise_supervisor()
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._collector: asyncio.Task[None] | None = None
        self._tail: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep(row)) for row in range(1, self.count + 1)]
        self._collector = loop.create_task(self._collect())
        self._tail = loop.create_task(self._count_hits())

    async def _keep(self, row: int) -> None:
        """Run worker `row`, and start it again whenever it dies."""
        delay = RESTART_DELAY_MIN
        while not self.stopping:
            started = time.monotonic()
            process = await self._spawn(row)
            self.processes[row] = process
            code = await process.wait()
            metrics.process_died(process.pid)
            if self.stopping:
                return
            log("worker_died", worker=row, pid=process.pid, returncode=code)
            self.metrics.worker_restarts.inc()
            delay = RESTART_DELAY_MIN if time.monotonic() - started > 10 else min(delay * 2, RESTART_DELAY_MAX)
            await asyncio.sleep(delay)

    async def _spawn(self, row: int) -> asyncio.subprocess.Process:
        spec = WorkerSpec(self.config, self.sock.fileno(), row)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER_MODULE, stdin=asyncio.subprocess.PIPE,
            pass_fds=(self.sock.fileno(),),
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(spec))
        await process.stdin.drain()
        process.stdin.close()
        return process

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        root = self.config.cache.cache_dir / self.config.urls.url_prefix.lstrip("/")
        while not self.stopping:
            report = await loop.run_in_executor(None, gc.collect, root, self.config.cache.cache_max_bytes)
            self.metrics.gc_evicted_files.inc(report.evicted_files)
            self.metrics.gc_evicted_bytes.inc(report.evicted_bytes)
            self.metrics.gc_stale_removed.inc(report.stale_removed)
            if not report.skipped:
                self.metrics.cache_bytes.set(report.bytes - report.evicted_bytes)
                self.metrics.cache_files.set(report.files - report.evicted_files)
            if report.evicted_files or report.stale_removed or report.empty_dirs_removed:
                log("gc", files=report.files, bytes=report.bytes, evicted_files=report.evicted_files,
                    evicted_bytes=report.evicted_bytes, stale_removed=report.stale_removed,
                    empty_dirs_removed=report.empty_dirs_removed)
            if not self.config.cache.gc_interval:
                return
            await asyncio.sleep(self.config.cache.gc_interval)

    async def _count_hits(self) -> None:
        """Count nginx's hits and misses from its access log, every TAIL_INTERVAL seconds."""
        tail = await AccessLogTail.open(self.config.observability.access_log)  # in the loop's default threads
        ratio = HitRatio()
        failing = False
        try:
            while not self.stopping:
                try:
                    counts = await tail.poll()
                except OSError as exc:  # unreadable for now (permissions, a vanished mount): say so once
                    if not failing:
                        log("access_log_unreadable", path=str(self.config.observability.access_log), error=str(exc))
                    failing = True
                else:
                    failing = False
                    self.metrics.nginx_requests.labels("hit").inc(counts.hits)
                    self.metrics.nginx_requests.labels("miss").inc(counts.misses)
                    self.metrics.nginx_requests.labels("limited").inc(counts.limited)
                    value = ratio.add(time.monotonic(), counts)
                    if value is not None:
                        self.metrics.hit_ratio.set(value)
                await asyncio.sleep(TAIL_INTERVAL)
        finally:
            await tail.close()

    async def stop(self) -> None:
        """SIGTERM every worker (they drain), and kill those still running after the drain timeout."""
        self.stopping = True
        for task in filter(None, [self._collector, self._tail]):
            task.cancel()
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=self.config.processes.drain_timeout + STOP_GRACE)
            for process in running:
                if process.returncode is None:
                    log("worker_killed", pid=process.pid)
                    process.kill()
            await asyncio.gather(*waits, return_exceptions=True)
        for task in self._tasks:  # some may be waiting to restart a worker
            task.cancel()
        await asyncio.gather(*self._tasks, *filter(None, [self._collector, self._tail]), return_exceptions=True)


@asynccontextmanager
async def supervising(config: Config) -> AsyncIterator[Supervisor]:
    """Bind (or take systemd's socket), start the workers, yield; on exit drain and stop them, and remove
    the socket if it is ours."""
    listener = listen(config)
    supervisor = Supervisor(config, listener.sock)
    supervisor.start()
    log("listening", socket=str(config.server.socket), inherited=listener.inherited, sources=list(config.fetch.sources),
        cache=str(config.cache.cache_dir), signed=config.urls.signed, workers=supervisor.count,
        threads=config.processes.worker_threads, memory_budget=config.processes.memory_budget)
    try:
        yield supervisor
    finally:
        await supervisor.stop()
        listener.close()
        log("stopped")


async def supervise(config: Config) -> None:
    """`serve`: supervise until SIGTERM or SIGINT."""
    stop = stop_event()
    async with supervising(config):
        await stop.wait()


def serve(config: Config) -> None:
    """Run the sidecar alone (production: nginx is someone else's) until SIGTERM or SIGINT."""
    uvloop.run(supervise(config))
