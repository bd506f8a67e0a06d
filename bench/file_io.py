"""What a miss's file IO costs, for versions of the code side by side: miss latency at concurrency 1
and 16, and how long a hung directory source (a FIFO, which blocks its reader like a dead NFS mount)
holds up the fall-through to the next source.

    .venv/bin/python -m bench.file_io [--rounds 8] [--rev NAME=REV ...] [--tree NAME=PATH ...]

Each `--rev` is a commit of this repository, exported to a temporary directory (with this checkout's
built C modules); each `--tree` a checkout of the sidecar. Without either: the last commit before aiofiles
(BEFORE_AIOFILES) against this checkout. Each round runs every version once, in its own child process,
in turn, each version first in its turn (A B, B A, ...), so a neighbour's load on a shared machine hits
them alike; the ratio columns are each version's median over the first version's.

A child serves real misses in-process: the real `Handler` (one transform thread, as one worker process
has by default), a directory source and a cache directory on disk; every request is a new rendition,
from its original (see ROWS). Only the `handle` call is timed (no nginx, no socket). The "CPU per miss"
rows are the child's CPU time over a row divided by its misses (threads included), which a busy
neighbour disturbs less than latency; the "trips" rows count the trips to any executor's threads
(`run_in_executor`, which aiofiles calls for each of its calls) per miss or call, the cost a version
controls (some 50 us of CPU each here). The fall-through row times `SourceChain.fetch` of a key that is
a FIFO in the first source and a file in the second, with the breaker off.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

REPO = Path(__file__).resolve().parent.parent
#: main just before issue 20 brought aiofiles in (the first parent of its merge, 55eb105).
BEFORE_AIOFILES = "afb9195"
LARGE = REPO / "samples" / "road-1920x1080.jpg"
HUNG_TIMEOUT = 0.2  # the FIFO source's first-byte timeout
#: row: (original, width, concurrency, requests per round, keys). "new" keys were never asked for: the
#: first miss of an original also writes its record for the cascade. "seen" ones are the first row's keys
#: again, at a size no rendition of theirs can be derived from: the original is fetched, the record is there.
ROWS = {
    "small (640x480), new original": ("small", 100, 1, 30, "new"),
    "small, new original, c16": ("small", 100, 16, 96, "new"),
    "small, another size of a seen one": ("small", 400, 1, 30, "seen"),
    "large (1920x1080), new original": ("large", 320, 1, 12, "new"),
    "large, new original, c16": ("large", 320, 16, 48, "new"),
}
IO_STEPS = 200  # fetches or publishes per row and round
FALL_THROUGHS = 8  # per round; each leaves one thread stuck in the FIFO source until the end of the round


async def child(root: Path) -> dict[str, list[float]]:
    from sidecar.app.handler import Handler
    from sidecar.builder import build_url
    try:
        from sidecar.config import load
    except ImportError:  # before the config's sections (issue 14)
        from sidecar.config.settings import load  # type: ignore[attr-defined, no-redef]
    from sidecar.observe.metrics import Metrics
    from sidecar.sources import open_chain

    originals, cache, hung = root / "originals", root / "cache", root / "hung"
    env = {"SIDECAR_SOURCES": str(originals), "SIDECAR_CACHE_DIR": str(cache), "SIDECAR_ALLOW_UNSIGNED": "true",
           "SIDECAR_QUEUE": "1000", "SIDECAR_REQUEST_DEADLINE": "60"}
    config = load(None, env=env)
    cpu = ThreadPoolExecutor(1, thread_name_prefix="transform")  # one worker process's default `threads`
    pool = ThreadPoolExecutor(16, thread_name_prefix="io")
    handler = Handler(config, await open_chain(config, Metrics()), cpu, pool)
    samples: dict[str, list[float]] = {row: [] for row in ROWS}
    counters = {kind: iter(range(10**9)) for kind in ("small", "large")}
    seen = iter(range(1, 10**9))  # the first row's keys (0 is the warm-up's)

    async def miss(kind: str, width: int, keys: str) -> float:
        path = build_url(config, f"{kind}-{next(counters[kind] if keys == 'new' else seen)}.jpg", width=width)
        started = time.perf_counter()
        response = await handler.handle("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or not any(name == "X-Accel-Redirect" for name, _ in response.headers):
            raise RuntimeError(f"{path}: {response.status} {response.headers}")
        return elapsed

    for kind in ("small", "large"):  # imports, pools, the decoder's first call
        await miss(kind, 100, "new")
    for row, (kind, width, concurrency, count, keys) in ROWS.items():
        gate = asyncio.Semaphore(concurrency)

        async def one(kind: str = kind, width: int = width, keys: str = keys, gate: asyncio.Semaphore = gate) -> float:
            async with gate:
                return await miss(kind, width, keys)

        cpu_started, trips = time.process_time(), TRIPS[0]
        samples[row] = list(await asyncio.gather(*(one() for _ in range(count))))
        samples[f"{row}: CPU per miss"] = [(time.process_time() - cpu_started) / count * 1000]
        samples[f"{row}: trips per miss"] = [(TRIPS[0] - trips) / count]

    # The file IO alone, without the transform: fetching the small original, publishing its bytes.
    data = (originals / "small.jpg").read_bytes()
    loop = asyncio.get_running_loop()
    done = iter(range(10**9))

    async def fetch() -> None:
        original = await handler.sources.fetch(f"small-{next(done) % 30 + 1}.jpg", loop.time() + 30)
        assert original.data == data

    async def publish() -> None:
        assert await handler.work.publish(f"/img/bench/{next(done)}.jpg", data)

    size = f"{len(data) // 1024} KB"
    for name, step in ((f"fetch a {size} original", fetch), (f"publish {size}", publish)):
        for concurrency in (1, 16):
            gate = asyncio.Semaphore(concurrency)

            async def timed(step: Callable[[], Awaitable[None]] = step, gate: asyncio.Semaphore = gate) -> float:
                async with gate:
                    started = time.perf_counter()
                    await step()
                    return (time.perf_counter() - started) * 1000

            await step()  # the first publish makes the directory
            row = f"{name}, c{concurrency}"
            cpu_started, trips = time.process_time(), TRIPS[0]
            samples[row] = list(await asyncio.gather(*(timed() for _ in range(IO_STEPS))))
            samples[f"{row}: CPU per call"] = [(time.process_time() - cpu_started) / IO_STEPS * 1000]
            samples[f"{row}: trips per call"] = [(TRIPS[0] - trips) / IO_STEPS]

    chain = await open_chain(load(None, env={**env, "SIDECAR_SOURCES": f"{hung},{originals}",
                                             "SIDECAR_SOURCE_FIRST_BYTE_TIMEOUT": str(HUNG_TIMEOUT),
                                             "SIDECAR_SOURCE_DOWN_AFTER": "1000000"}), Metrics())
    samples["hung source -> next"] = []
    for _ in range(FALL_THROUGHS):
        started = time.perf_counter()
        original = await chain.fetch("small-0.jpg", loop.time() + 30)
        samples["hung source -> next"].append((time.perf_counter() - started) * 1000)
        assert original.source == "local" and original.data
    release(hung / "small-0.jpg")
    await chain.close()
    await handler.sources.close()
    cpu.shutdown()
    pool.shutdown()
    return samples


def release(fifo: Path) -> None:
    """Let every thread stuck opening `fifo` go (each open for writing pairs with the readers waiting)."""
    for _ in range(200):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody is waiting any more
            return
        time.sleep(0.005)


def prepare(root: Path) -> None:
    from PIL import Image

    for name in ("originals", "cache", "hung"):
        (root / name).mkdir()
    Image.new("RGB", (640, 480), (90, 140, 200)).save(root / "originals" / "small.jpg", quality=85)
    shutil.copy(LARGE, root / "originals" / "large.jpg")
    for kind in ("small", "large"):
        for i in range(1 + sum(count for k, _, _, count, keys in ROWS.values() if k == kind and keys == "new")):
            os.link(root / "originals" / f"{kind}.jpg", root / "originals" / f"{kind}-{i}.jpg")
    os.mkfifo(root / "hung" / "small-0.jpg")


T = TypeVar("T")
Ts = TypeVarTuple("Ts")
#: Trips to any executor's threads so far, in the child (`counting_loop`).
TRIPS = [0]


def counting_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop (the worker's), counting `run_in_executor` calls in TRIPS."""
    import uvloop

    class Counting(uvloop.Loop):  # type: ignore[misc]
        def run_in_executor(self, executor: Any, func: Callable[[*Ts], T], *args: *Ts) -> Any:
            TRIPS[0] += 1
            return super().run_in_executor(executor, func, *args)

    return Counting()


def run_child() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-file-io-"))
    try:
        prepare(root)
        with contextlib.redirect_stderr(io.StringIO()):  # the sidecar's log: a line per hung-source failure
            with asyncio.Runner(loop_factory=counting_loop) as runner:
                samples = runner.run(child(root))
    finally:
        release(root / "hung" / "small-0.jpg")
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(samples))


def export(rev: str, into: Path) -> str:
    """Commit `rev` of this repository as files under `into`, with this checkout's C modules (untracked,
    built by `pip install -e .`; one the commit does not know is never imported)."""
    subprocess.run(f"git -C {REPO} archive {rev} | tar -x -C {into}", shell=True, check=True)
    for built in (REPO / "sidecar" / "transform").glob("_*.so"):
        shutil.copy(built, into / built.relative_to(REPO))
    return str(into)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV: a commit of this repository (repeatable)")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout (repeatable)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child()
    with tempfile.TemporaryDirectory(prefix="bench-file-io-revs-") as exports:
        if not args.rev and not args.tree:
            args.rev, args.tree = [f"before-aiofiles={BEFORE_AIOFILES}"], [f"this={REPO}"]
        trees: dict[str, str] = {}
        for name, rev in (spec.split("=", 1) for spec in args.rev):
            (Path(exports) / name).mkdir()
            trees[name] = export(rev, Path(exports) / name)
        trees.update(tree.split("=", 1) for tree in args.tree)
        compare(trees, args.rounds)


def compare(trees: dict[str, str], rounds: int) -> None:
    """Run every tree once per round, in turn, and print the table."""
    results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    loads = [os.getloadavg()[0]]
    started = time.monotonic()
    names = list(trees)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # each goes first in turn
            path = trees[name]
            env = {**os.environ, "PYTHONPATH": path}
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, cwd=path, check=True,
                                 capture_output=True, text=True).stdout
            for row, values in json.loads(out.splitlines()[-1]).items():
                results[name].setdefault(row, []).extend(values)
            loads.append(os.getloadavg()[0])
    first, *others = list(trees)
    print("| row | n | " + " | ".join(f"{n} median | {n} p90" for n in trees)
          + "".join(f" | {n} / {first} (median)" for n in others) + " |")
    print("|---|---|" + "---|---|" * len(trees) + "---|" * len(others))
    kinds = ("CPU", "trips")  # latency rows first, then CPU, then trips
    for row in sorted(results[first], key=lambda row: [kind in row for kind in reversed(kinds)]):
        cells, medians = [], []
        for name in trees:
            values = results[name].get(row, [float("nan")])
            medians.append(statistics.median(values))
            p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
            cells.append(f"{medians[-1]:.1f} | {p90:.1f}")
        ratios = "".join(f" | {median / medians[0]:.2f}" for median in medians[1:])
        print(f"| {row} | {len(results[first][row])} | " + " | ".join(cells) + ratios + " |")
    print(f"\n{rounds} rounds in {time.monotonic() - started:.0f} s; 1-minute load average "
          f"{min(loads):.2f} to {max(loads):.2f} during the run; {os.cpu_count()} cores, shared with other work; "
          f"hung source's first-byte timeout {HUNG_TIMEOUT} s; times in ms; trees: "
          + ", ".join(f"{name}={path}" for name, path in trees.items()))


if __name__ == "__main__":
    main()
