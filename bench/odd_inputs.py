"""Every odd input through the whole nginx path: no 5xx, no hang, no worker restart (issue 16's "done when").

    make bench-odd                    # or: .venv/bin/python -m bench.odd_inputs [--extra DIR ...]

Inputs: every file of ../shared/corpus (real and photos), tests/data/odd, the made seeds of the fuzzers
(SVG, PDF, ICO, JPEG 2000, BigTIFF), and any `--extra` directory (for example Pillow's Tests/images, the
1,068 files issue 16 was found with). Each file is asked for twice (a PNG fit and a JPEG fill, so two
misses), then once more as a hit. Prints one table of status counts per input group, the slowest
request, and whether any sidecar worker changed (a crash restarts it).
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.fuzz_targets import ODD, made_seeds
from tests.support.paths import CORPUS
from tests.support.processes import world_readable_tempdir
from tests.support.stack import Stack, make_stack

SLOW = 20.0  # seconds: a request slower than this counts as a hang


def gather(extra: list[Path]) -> dict[str, list[Path]]:
    """Input groups: name -> files."""
    groups = {"corpus/real": sorted(p for p in (CORPUS / "real").rglob("*") if p.is_file() and p.suffix != ".tsv"),
              "corpus/photos": sorted(p for p in (CORPUS / "photos").rglob("*") if p.is_file()),
              "tests/data/odd": sorted(p for p in ODD.iterdir() if p.suffix != ".md")}
    for folder in extra:
        groups[str(folder)] = sorted(p for p in folder.rglob("*") if p.is_file())
    return groups


def stage(groups: dict[str, list[Path]], into: Path) -> dict[str, list[str]]:
    """Copy every input under `into` (world-readable: nginx's workers and the sidecar read it)."""
    contents = {group: [(path.name, path.read_bytes()) for path in files] for group, files in groups.items()}
    contents["made seeds"] = [(f"seed{number}", data) for number, data in enumerate(made_seeds())]
    keys: dict[str, list[str]] = {}
    for index, (group, files) in enumerate(contents.items()):
        folder = into / f"g{index}"
        folder.mkdir(mode=0o755)
        for name, data in files:
            (folder / name).write_bytes(data)
            (folder / name).chmod(0o644)
        keys[group] = [f"g{index}/{name}" for name, _ in files]
    return keys


def run(stack: Stack, keys: dict[str, list[str]]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for group, names in keys.items():
        statuses: collections.Counter[int] = collections.Counter()
        slowest = (0.0, "")
        def one(path: str) -> tuple[int, float, str]:
            started = time.monotonic()
            try:
                status = stack.get(path, timeout=SLOW * 3).status
            except OSError:
                status = 0  # no answer at all
            return status, time.monotonic() - started, path

        paths = [stack.url(name, **ops) for name in names  # type: ignore[arg-type]
                 for ops in ({"width": 160, "format": "png"}, {"width": 120, "height": 120, "fit": "fill",
                                                              "format": "jpeg"})]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, paths))
            results += list(pool.map(one, paths[::2]))  # again: hits for what was made
        for status, seconds, path in results:
            statuses[status] += 1
            slowest = max(slowest, (seconds, path))
        fives = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
        hangs = sum(1 for _, seconds, _ in results if seconds > SLOW)
        rows.append((group, str(len(names)), str(len(results)),
                     " ".join(f"{s}:{n}" for s, n in sorted(statuses.items())), str(fives + hangs),
                     f"{slowest[0]:.2f} s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", type=Path, action="append", default=[], help="another directory of inputs")
    args = parser.parse_args()
    source = world_readable_tempdir()
    keys = stage(gather(args.extra), source)
    stack = make_stack([source], extra="workers = 2\nmiss_rate = 0\n")
    try:
        workers = stack.worker_pids()
        started = time.monotonic()
        rows = run(stack, keys)
        elapsed = time.monotonic() - started
        restarts = stack.metric("resize_sidecar_worker_restarts_total")
        same_workers = stack.worker_pids() == workers
        bugs = len(stack.sidecar_events("bug"))
    finally:
        stack.stop()
        shutil.rmtree(source, ignore_errors=True)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    header = ("inputs", "files", "requests", "statuses", "5xx+hangs", "slowest")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
    print(f"\n{sum(int(r[2]) for r in rows)} requests in {elapsed:.0f} s; worker restarts: {restarts:.0f}; "
          f"same worker processes at the end: {same_workers}; `bug` log lines: {bugs}; load average {load}")
    if any(r[4] != "0" for r in rows) or restarts or not same_workers or bugs:
        sys.exit(1)


if __name__ == "__main__":
    main()
