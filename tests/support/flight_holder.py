"""Another process leading a single flight, for the tests of the cross-process lock:

    python -m tests.support.flight_holder CACHE_ROOT FILE_PATH

It starts a flight for FILE_PATH (a decoded URL path in the cache at CACHE_ROOT), prints `leading` once
it holds the lock, then waits for one line on stdin: `publish` writes the rendition before the flight
ends, anything else ends it without one. Killed while it waits, it leaves the lock as a crash would."""
from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sidecar.cache.singleflight import Flights
from sidecar.cache.store import Cache

LEADING = "leading"
PUBLISH = "publish"


async def lead(root: Path, file_path: str) -> None:
    cache, io = Cache(root), ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()

    async def make() -> str:
        print(LEADING, flush=True)
        if (await loop.run_in_executor(io, sys.stdin.readline)).strip() == PUBLISH:
            await cache.write(file_path, b"made by the holder")
        return "holder"

    lead = await Flights[str](cache, io).run([cache.path(file_path)], make, loop.time() + 60)
    print(f"done {lead.result}", flush=True)
    io.shutdown()


if __name__ == "__main__":
    asyncio.run(lead(Path(sys.argv[1]), sys.argv[2]))
