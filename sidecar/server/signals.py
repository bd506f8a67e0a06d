"""How every process of the sidecar learns to stop: SIGTERM or SIGINT set one event in its event loop."""
from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_event() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT (the supervisor, a worker, `run`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    return stop
