"""The soak test (`make soak`, not in `make test`): mixed hits, misses and hostile input at a steady rate.

    make soak SOAK_SECONDS=3600 SOAK_RATE=20     # or: .venv/bin/python bench/soak.py --seconds 600

One nginx + sidecar stack (2 workers, the per-client miss limit on with its defaults) over the sample
photos, the shared corpus (its bombs, truncated and corrupt files included) and the made seeds of the
new formats. Eight loopback clients (127.0.0.11-18) send, at `--rate` requests per second in all:
60% hits (renditions made at the start), 25% misses (a new size each time), 15% hostile (a corrupt or
oversized original, a bad signature, a missing key). It reports, at the start and at the end, the RSS
and open files of the sidecar's processes and nginx's, and counts: errors are 5xx answers other than
503, requests that got no answer, requests slower than 30 s, worker restarts and `bug` log lines.
503s (the sidecar's queue full: the machine cannot keep up with the rate, answered with Retry-After
by design) and 429s (the miss limit) are counted apart, not as errors. Exits 1 on any error.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import itertools
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import (  # noqa: E402
    CORPUS,
    SAMPLES,
    Stack,
    children,
    make_stack,
    manifest,
    world_readable_tempdir,
)
from fuzz_targets import made_seeds  # noqa: E402

from sidecar.observe.memory import rss_bytes  # noqa: E402

CLIENTS = [f"127.0.0.{n}" for n in range(11, 19)]
SLOW = 30.0
MIB = 1024 * 1024


def stage(into: Path) -> tuple[list[str], list[str]]:
    """Photos (good originals) and hostile originals under `into`; their keys."""
    good = []
    for path in sorted(SAMPLES.glob("*.*")):
        if path.suffix in (".jpg", ".png"):
            shutil.copyfile(path, into / path.name)
            good.append(path.name)
    hostile = []
    for row in manifest():
        if not row["expected"].startswith("ok"):
            name = "bad-" + row["file"].replace("/", "-")
            shutil.copyfile(CORPUS / "real" / row["file"], into / name)
            hostile.append(name)
    for number, data in enumerate(made_seeds()):
        name = f"seed{number}"
        (into / name).write_bytes(data)
        good.append(name)
    for path in into.iterdir():
        path.chmod(0o644)
    return good, hostile


def snapshot(stack: Stack) -> dict[str, float]:
    """RSS and open files of the sidecar's processes and of nginx's."""
    assert stack.sidecar is not None and stack.nginx is not None
    sidecar = [stack.sidecar.pid, *stack.worker_pids()]
    nginx = [stack.nginx.pid, *children(stack.nginx.pid)]
    return {"sidecar RSS (MiB)": sum(rss_bytes(pid) or 0 for pid in sidecar) / MIB,
            "sidecar open files": stack.sidecar_fds(),
            "nginx RSS (MiB)": sum(rss_bytes(pid) or 0 for pid in nginx) / MIB,
            "nginx open files": sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in nginx),
            "sidecar workers": len(sidecar) - 1}


class Load:
    """Requests at a steady rate from several client addresses, tallied."""

    def __init__(self, stack: Stack, good: list[str], hostile: list[str], seed: int = 16) -> None:
        self.stack, self.good, self.hostile = stack, good, hostile
        self.random = random.Random(seed)
        self.sizes = itertools.count(20)
        self.lock = threading.Lock()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.hits = [stack.url(name, width=w) for name in good for w in (100, 200)]

    def next_request(self) -> tuple[str, str]:
        roll = self.random.random()
        if roll < 0.60:
            return "hit", self.random.choice(self.hits)
        if roll < 0.85:
            size = 20 + next(self.sizes) % 1500
            return "miss", self.stack.url(self.random.choice(self.good), width=size, height=size // 2 + 1,
                                          fit=self.random.choice(("fit", "fill")), format=self.random.choice(
                                              ("jpeg", "webp", "png")))
        kind = self.random.random()
        if kind < 0.6 and self.hostile:
            return "hostile", self.stack.url(self.random.choice(self.hostile), width=120 + next(self.sizes) % 50)
        if kind < 0.8:
            signed = self.stack.url(self.random.choice(self.good), width=77)  # .../w77.{signature}.jpg
            head, _, ext = signed.rsplit(".", 2)
            return "hostile", f"{head}.AAAAAAAAAAAAAAAA.{ext}"
        return "hostile", self.stack.url(f"missing-{next(self.sizes)}.jpg", width=50)

    def one(self, client: str, kind: str, path: str) -> None:
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=SLOW * 2,
                                              source_address=(client, 0))
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            finally:
                conn.close()
        except OSError as exc:
            status, detail = 0, f"no answer: {exc}"
        seconds = time.monotonic() - started
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if (status >= 500 and status != 503) or status == 0:
                self.errors.append(f"{status} {path}" if status else detail)
            elif seconds > SLOW:
                self.errors.append(f"slow ({seconds:.0f} s) {path}")

    def run(self, seconds: float, rate: float) -> None:
        """Send at `rate` per second for `seconds`, each request on its own thread (a steady rate,
        whatever the latency)."""
        end, interval, due = time.monotonic() + seconds, 1 / rate, time.monotonic()
        clients = itertools.cycle(CLIENTS)
        threads: list[threading.Thread] = []
        next_report = time.monotonic() + 60
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            kind, path = self.next_request()
            thread = threading.Thread(target=self.one, args=(next(clients), kind, path), daemon=True)
            thread.start()
            threads.append(thread)
            threads = [t for t in threads if t.is_alive()]
            due += interval
            if time.monotonic() > next_report:
                next_report += 60
                done = sum(self.statuses.values())
                print(f"  {done} requests, {len(self.errors)} errors, {len(threads)} in flight", file=sys.stderr,
                      flush=True)
        for thread in threads:
            thread.join(SLOW * 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "3600")))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", "20")))
    args = parser.parse_args()
    source = world_readable_tempdir()
    good, hostile = stage(source)
    stack = make_stack([source], extra="workers = 2\nmiss_rate = 10\n")  # the default limit, on
    try:
        load = Load(stack, good, hostile)
        for path in load.hits:  # make the hits
            status = stack.get(path).status
            assert status == 200, (status, path)
        start = snapshot(stack)
        started = time.monotonic()
        load.run(args.seconds, args.rate)
        elapsed = time.monotonic() - started
        end = snapshot(stack)
        restarts = stack.metric("resize_sidecar_worker_restarts_total")
        limited = stack.metric("resize_sidecar_nginx_requests_total", cache="limited")
        bugs = len(stack.sidecar_events("bug"))
    finally:
        stack.stop()
        shutil.rmtree(source, ignore_errors=True)
    load_average = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"soak: {elapsed / 60:.1f} minutes at {args.rate:g} requests/s, {len(CLIENTS)} clients; "
          f"load average at the end {load_average}\n")
    print("| measure | start | end |\n| --- | --- | --- |")
    for name in start:
        print(f"| {name} | {start[name]:.1f} | {end[name]:.1f} |")
    print(f"| errors (5xx but 503, no answer, > {SLOW:.0f} s) | 0 | {len(load.errors)} |")
    overloaded = sum(n for key, n in load.statuses.items() if key.endswith(" 503"))
    print(f"| 503 (overloaded: queue full, Retry-After) | 0 | {overloaded} |")
    print(f"| worker restarts | 0 | {restarts:.0f} |")
    print(f"| `bug` log lines | 0 | {bugs} |\n")
    print("| kind status | requests |\n| --- | --- |")
    for key, count in sorted(load.statuses.items()):
        print(f"| {key} | {count} |")
    print(f"\n429s counted by the metrics (cache=limited): {limited:.0f}")
    for error in load.errors[:20]:
        print("error:", error)
    if load.errors or restarts or bugs:
        sys.exit(1)


if __name__ == "__main__":
    main()
