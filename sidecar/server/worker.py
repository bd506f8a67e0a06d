"""One worker process: a uvloop server on the listening socket it shares with the other workers.

The supervisor (`sidecar.server.supervisor`) binds the socket and starts the workers; each accepts connections from
nginx, runs misses in its own transform threads, and on SIGTERM drains: it stops accepting, closes idle
keep-alive connections (nginx retries a request on a cached connection that closes, so nothing is lost),
answers what it already read with `Connection: close`, and waits up to `drain_timeout` for the rest.
"""
from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import uvloop
from cffi import FFI

from sidecar.app.handler import Handler
from sidecar.config import Config
from sidecar.log import log
from sidecar.observe.metrics import Metrics
from sidecar.server.listen import BACKLOG
from sidecar.server.protocol import HttpProtocol, ServerState
from sidecar.server.signals import stop_event
from sidecar.server.spec import WorkerSpec
from sidecar.sources import open_chain
from sidecar.sources.local import THREAD_PREFIX as LOCAL_THREAD_PREFIX
from sidecar.transform import dcjpeg, jpegrows

STUCK_READ_GRACE = 1.0  # seconds for source threads to finish once the server has stopped


@asynccontextmanager
async def running(config: Config, sock: socket.socket) -> AsyncIterator[asyncio.AbstractServer]:
    """Serve on `sock` until the context exits, then drain in-flight requests and close sources."""
    cpu = ThreadPoolExecutor(config.processes.worker_threads, thread_name_prefix="transform",
                             initializer=_lower_priority, initargs=(config.processes.transform_nice,))
    io = ThreadPoolExecutor(16, thread_name_prefix="io")
    sources = await open_chain(config, Metrics())
    handler = Handler(config, sources, cpu, io)
    state = ServerState()
    loop = asyncio.get_running_loop()
    try:
        # create_unix_server listens again on the shared socket, with its own small default backlog otherwise.
        server = await loop.create_unix_server(lambda: HttpProtocol(handler, state), sock=sock, backlog=BACKLOG)
    except BaseException:
        await sources.close()
        raise
    log("worker_ready", threads=config.processes.worker_threads, queue=config.processes.queue,
        dc_jpeg=dcjpeg.available(), jpeg_rows=jpegrows.available())
    try:
        yield server
    finally:
        server.close()
        state.draining = True
        deadline = loop.time() + config.processes.drain_timeout
        while loop.time() < deadline:
            for connection in list(state.connections):
                if connection.idle and connection.transport is not None:
                    connection.transport.close()
            if not state.connections and not len(handler.flights):
                break
            await asyncio.sleep(0.02)
        for connection in list(state.connections):
            if connection.transport is not None:
                connection.transport.close()
        await sources.close()
        if handler.resolver is not None:
            await handler.resolver.close()
        for pool in (cpu, io):
            pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    """Transforms yield the CPU to nginx (hits) and to the event loops: Linux nices threads one by one."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


async def serve_worker(config: Config, sock: socket.socket) -> None:
    """A worker process's life: serve until SIGTERM/SIGINT, then drain."""
    stop = stop_event()
    async with running(config, sock):
        await stop.wait()


def exit_past_stuck_reads(status: int) -> None:
    """After a clean shutdown, exit now if a source read is still stuck (a dead NFS mount).

    Python joins every executor thread at exit, and a thread blocked in the kernel never returns, so
    the process would outlive SIGTERM forever. Everything else is closed and logged by now.
    """
    deadline = time.monotonic() + STUCK_READ_GRACE
    stuck = [t for t in threading.enumerate() if t.name.startswith(LOCAL_THREAD_PREFIX)]
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in stuck if t.is_alive()]
    if stuck:
        log("exit_past_stuck_reads", threads=len(stuck))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main() -> None:
    """A worker process, started by the supervisor with its `WorkerSpec` on stdin."""
    spec: WorkerSpec = pickle.loads(sys.stdin.buffer.read())
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the supervisor died before we asked to be told
        return
    sock = socket.socket(fileno=spec.listen_fd)
    sock.setblocking(False)
    uvloop.run(serve_worker(spec.config, sock))
    exit_past_stuck_reads(0)


def _die_with_parent() -> None:
    ffi = FFI()
    ffi.cdef("int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);")
    pr_set_pdeathsig = 1
    ffi.dlopen(None).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


if __name__ == "__main__":
    main()
