"""The sidecar process: a uvloop server on a Unix socket (or one systemd hands over), with clean shutdown."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

import uvloop

from .config import Config
from .handler import Handler
from .listen import BACKLOG, listen
from .log import log
from .protocol import HttpProtocol
from .sources import open_chain
from .sources.local import THREAD_PREFIX as LOCAL_THREAD_PREFIX
from .transform import dcjpeg

DRAIN_TIMEOUT = 10.0
STUCK_READ_GRACE = 1.0  # seconds for source threads to finish once the server has stopped


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[asyncio.AbstractServer]:
    """Serve until the context exits, then stop accepting, drain in-flight requests and close sources."""
    cpu = ThreadPoolExecutor(config.worker_threads, thread_name_prefix="transform")
    io = ThreadPoolExecutor(16, thread_name_prefix="io")
    sources = await open_chain(config)
    handler = Handler(config, sources, cpu, io)
    connections: set[HttpProtocol] = set()
    loop = asyncio.get_running_loop()
    listener = None
    try:
        listener = listen(config)
        server = await loop.create_unix_server(lambda: HttpProtocol(handler, connections), sock=listener.sock,
                                               backlog=BACKLOG)
    except BaseException:
        if listener is not None:
            listener.close()
        await sources.close()
        raise
    log("listening", socket=str(config.socket), inherited=listener.inherited, sources=list(config.sources),
        cache=str(config.cache_dir), signed=config.signed, threads=config.worker_threads, dc_jpeg=dcjpeg.available())
    try:
        yield server
    finally:
        server.close()
        deadline = loop.time() + DRAIN_TIMEOUT
        while any(not c.idle for c in connections) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(connections):
            if connection.transport is not None:
                connection.transport.close()
        await sources.close()
        log("source_counts", sources={name: counts.as_dict() for name, counts in sources.counts.items()})
        for pool in (cpu, io):
            pool.shutdown(wait=False, cancel_futures=True)
        listener.close()
        log("stopped")


async def serve_until_signalled(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(config):
        await stop.wait()


def serve(config: Config) -> None:
    """Run the sidecar alone (production: nginx is someone else's) until SIGTERM or SIGINT."""
    uvloop.run(serve_until_signalled(config))
    exit_past_stuck_reads(0)


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
