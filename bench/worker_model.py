"""Threads or processes? Transform throughput of the real pipeline, one process vs several, side by side.

    .venv/bin/python -m bench.worker_model [PHOTOS_DIR]

Each variant renders the same distinct renditions of the big photos; variants are interleaved round by
round because other work may share the CPU. Prints renditions/s per variant and the ratio to one core.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops

PHOTOS = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/corpus/photos")
SETTINGS = Settings(50_000_000, 82, (255, 255, 255))
OPS = [Ops("jpeg", width=320), Ops("webp", width=800), Ops("jpeg", width=1200), Ops("webp", width=200, height=200, fit="fill")]
_CACHE: dict[str, bytes] = {}


def job(path: str, ops: Ops) -> int:
    data = _CACHE.get(path)
    if data is None:
        data = _CACHE[path] = Path(path).read_bytes()
    return len(transform(data, ops, SETTINGS).data)


def job_bytes(data: bytes, ops: Ops) -> int:
    return len(transform(data, ops, SETTINGS).data)


def run(executor: Executor, jobs: list[tuple[str, Ops]], ship_bytes: bool) -> float:
    started = time.perf_counter()
    if ship_bytes:
        futures = [executor.submit(job_bytes, Path(p).read_bytes(), o) for p, o in jobs]
    else:
        futures = [executor.submit(job, p, o) for p, o in jobs]
    for future in futures:
        future.result()
    return len(jobs) / (time.perf_counter() - started)


def main() -> None:
    photos = sorted(str(p) for p in PHOTOS.iterdir() if p.suffix in (".jpg", ".png"))
    jobs = [(p, o) for p in photos for o in OPS]
    cores = os.cpu_count() or 1
    variants: dict[str, tuple[Executor, bool]] = {
        "threads x1": (ThreadPoolExecutor(1), False),
        f"threads x{cores}": (ThreadPoolExecutor(cores), False),
        "processes x1 (bytes shipped)": (ProcessPoolExecutor(1), True),
        f"processes x{cores} (bytes shipped)": (ProcessPoolExecutor(cores), True),
        f"processes x{cores} (read in worker)": (ProcessPoolExecutor(cores), False),
    }
    for executor, ship in variants.values():  # warm-up: imports, caches, first-touch page faults
        run(executor, jobs[:cores * 2], ship)
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(3):
        for name, (executor, ship) in variants.items():
            results[name].append(run(executor, jobs, ship))
    base = max(results["threads x1"])
    print(f"{'variant':40} {'renditions/s (best of 3)':>26} {'x threads x1':>14}")
    for name, rates in results.items():
        print(f"{name:40} {max(rates):26.1f} {max(rates) / base:14.2f}")
    for executor, _ in variants.values():
        executor.shutdown()


if __name__ == "__main__":
    main()
