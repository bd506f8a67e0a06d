"""What the multi-node front costs on hits, and what serving with a dead node costs.

    make bench-front          (or: .venv/bin/python -m bench.front [--rounds 3] [--seconds 5])

Three cache nodes (nginx + sidecar each, as in tests/e2e/test_front.py) behind a front nginx rendered by
`nginx-config --front`, one moto S3 behind them. 1,000 renditions are made first, so every variant
measures hits:

  node direct      wrk against one node, on the renditions that node holds
  via front        wrk against the front, on all 1,000 (each goes to the node that holds it)
  front, 1 dead    the same with node 0's nginx stopped: its share was made again on its neighbours
                   in a warm-up pass, and the front skips node 0 (max_fails=1, fail_timeout=10s),
                   probing it once per fail_timeout, which costs that request one refused connect.

Rounds interleave the variants (node 0 is stopped for the last one and started again after), so a
neighbour's load on a shared machine hits them alike; the table gives medians and ratios to the node.
wrk, nginx and the sidecars share the machine's cores, so absolute numbers are the machine's, not nginx's.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.images import small_jpeg
from tests.support.servers import BUCKET, MotoS3, upload
from tests.support.stack import (  # the tests' real nginx + sidecar stacks
    Stack,
    make_front,
    make_stack,
)

NODES, ORIGINALS, WIDTHS = 3, 10, range(1, 101)
LUA = """
paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
i = math.random(#paths)
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
"""


def wrk(port: int, paths: list[str], seconds: int, work: Path) -> dict[str, float]:
    listing = work / f"paths-{port}.txt"
    listing.write_text("\n".join(paths) + "\n")
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(work / "paths.lua"),
                          f"http://127.0.0.1:{port}"], env={**os.environ, "BENCH_PATHS": str(listing)},
                         capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "errors": float(errors.group(1) if errors else 0)
            + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0)}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert match, text
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench-front does)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    work = Path(tempfile.mkdtemp(prefix="bench-front-"))
    (work / "paths.lua").write_text(LUA)
    s3 = MotoS3()
    upload(s3.env, [], create=True)
    upload(s3.env, [(f"front/o{i}.jpg", small_jpeg(100 + i, 75)) for i in range(ORIGINALS)])
    stacks: list[Stack] = []
    try:
        nodes = [make_stack([f"s3://{BUCKET}/front"], env=s3.env) for _ in range(NODES)]
        stacks += nodes
        front = make_front(nodes)
        stacks.append(front)
        paths = [front.url(f"o{i}.jpg", width=w) for i in range(ORIGINALS) for w in WIDTHS]
        with ThreadPoolExecutor(8) as pool:
            assert {r.status for r in pool.map(front.get, paths)} == {200}
            held = [p for p in paths if nodes[0].cache_file(p).is_file()]
            nodes[0].stop_nginx()
            assert {r.status for r in pool.map(front.get, paths)} == {200}  # node 0's share made on neighbours
            nodes[0].start_nginx()
        results: dict[str, list[dict[str, float]]] = {"node direct": [], "via front": [], "front, 1 dead": []}
        for _ in range(args.rounds):
            results["node direct"].append(wrk(nodes[0].port, held, args.seconds, work))
            results["via front"].append(wrk(front.port, paths, args.seconds, work))
            nodes[0].stop_nginx()
            results["front, 1 dead"].append(wrk(front.port, paths, args.seconds, work))
            nodes[0].start_nginx()
        base = statistics.median(r["rps"] for r in results["node direct"])
        print(f"\nhits, wrk -t2 -c16, {args.rounds} rounds x {args.seconds}s, medians "
              f"({len(held)} renditions on node 0, {len(paths)} via the front); shared 2-core machine\n")
        print(f"{'variant':<16}{'req/s':>10}{'vs node':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>9}")
        for name, runs in results.items():
            rps = statistics.median(r["rps"] for r in runs)
            print(f"{name:<16}{rps:>10.0f}{rps / base:>9.2f}x{statistics.median(r['p50'] for r in runs):>10.2f}"
                  f"{statistics.median(r['p99'] for r in runs):>10.2f}{sum(r['errors'] for r in runs):>9.0f}")
    finally:
        for stack in stacks:
            stack.stop()
            shutil.rmtree(stack.root, ignore_errors=True)
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
