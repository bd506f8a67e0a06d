"""The peer scoreboard: resize-sidecar against thumbor, nginx image_filter and a libvips server.

    make bench-scoreboard      (installs wrk, Debian's image_filter module, bench/.venv and thumbor's venv)

One run, every peer started side by side on loopback (bench/peers.py), the same JPEG photos from
../shared/corpus/photos, the same target widths, JPEG at quality 82:

  cold    renditions/s and p99: every request a size never asked for before, 4 at a time, in rounds
          that rotate the peers' order, so a busy neighbour on the shared CPU slows all of them alike
  warm    requests/s and p99 from wrk (-t2 -c32) on one rendition already made (a cache hit, for the
          peers that have a cache), interleaved rounds, medians
  memory  the peak summed RSS of each peer's processes (nginx included), sampled every 50 ms all run long
  output  bytes and SSIM of each photo at 800 wide, against a full-decode LANCZOS reference
          (bench/scoreboard_judge.py, in bench/.venv, computes SSIM and draws the chart)

Prints one table, writes it with the raw numbers to bench/scoreboard.json and the chart to
docs/scoreboard.png.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.load import PHOTOS, Load, fetch_one, load, wrk
from bench.peers import BENCH_PYTHON, PEERS, REPO
from sidecar.observe.memory import rss_bytes

MIB = 1024 * 1024
WARM_PHOTO, WARM_WIDTH = "road-1920x1080.jpg", 640
JUDGE_WIDTH = 800
COLUMNS = ("cold renditions/s", "cold p99 ms", "warm req/s", "warm p99 ms", "peak RSS MiB", "bytes @800w",
           "SSIM @800w")


class PeakRss:
    """Samples every peer's summed RSS every 50 ms in one thread; `peak[name]` is the largest seen."""

    def __init__(self, peers: list) -> None:  # noqa: ANN001
        self.peers, self.peak = peers, {peer.name: 0 for peer in peers}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for peer in self.peers:
                total = sum(rss_bytes(pid) for pid in peer.pids())
                self.peak[peer.name] = max(self.peak[peer.name], total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cold(peers: list, photos: list[str], rounds: int, batch: int, concurrency: int) -> dict[str, Load]:  # noqa: ANN001
    results = {peer.name: Load() for peer in peers}
    n = 0
    for number in range(rounds):
        jobs = []
        for _ in range(batch):
            n += 1  # widths 160-1399, each (photo, width) once in the whole run, the same for every peer
            jobs.append((photos[n % len(photos)], 160 + (n * 97) % 1240))
        order = peers[number % len(peers):] + peers[:number % len(peers)]
        for peer in order:
            part = load(peer.port, [peer.url(photo, width) for photo, width in jobs], concurrency)
            total = results[peer.name]
            total.latencies += part.latencies
            total.seconds += part.seconds
            for status, count in part.statuses.items():
                total.statuses[status] = total.statuses.get(status, 0) + count
        print(f"  cold round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def warm(peers: list, rounds: int, seconds: int) -> dict[str, tuple[float, float]]:  # noqa: ANN001
    rates: dict[str, list[float]] = {peer.name: [] for peer in peers}
    p99s: dict[str, list[float]] = {peer.name: [] for peer in peers}
    for peer in peers:
        made = load(peer.port, [peer.url(WARM_PHOTO, WARM_WIDTH)] * 2, 1)  # make it, then hit it once
        assert made.ok == 2, (peer.name, made.statuses)
    for number in range(rounds):
        for peer in peers[number % len(peers):] + peers[:number % len(peers)]:
            rate, _, p99 = wrk(peer.port, peer.url(WARM_PHOTO, WARM_WIDTH), seconds=seconds, connections=32)
            rates[peer.name].append(rate)
            p99s[peer.name].append(p99)
        print(f"  warm round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {name: (statistics.median(rates[name]), statistics.median(p99s[name])) for name in rates}


def outputs(peers: list, photos: list[str], out: Path) -> list[dict[str, object]]:  # noqa: ANN001
    """Each photo at JUDGE_WIDTH from every peer, saved for the judge."""
    made = []
    for peer in peers:
        for photo in photos:
            status, body = asyncio.run(fetch_one(peer.port, peer.url(photo, JUDGE_WIDTH)))
            assert status == 200, (peer.name, photo, status)
            path = out / f"{peer.name.replace(' ', '_').replace('/', '_')}-{photo}"
            path.write_bytes(body)
            made.append({"peer": peer.name, "photo": str(PHOTOS / photo), "width": JUDGE_WIDTH, "file": str(path)})
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="cold rounds (and warm rounds, at most 3)")
    parser.add_argument("--batch", type=int, default=12, help="new renditions per peer per cold round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warm-seconds", type=int, default=5)
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "scoreboard.png")
    parser.add_argument("--peers", help="comma-separated peer names to run (default: all); the chart and "
                        "bench/scoreboard.json are then left alone")
    args = parser.parse_args()
    kinds = [kind for kind in PEERS if not args.peers or kind.name in args.peers.split(",")]
    started = time.monotonic()
    photos = sorted(p.name for p in PHOTOS.iterdir() if p.suffix == ".jpg")
    sources = Path(tempfile.mkdtemp(prefix="scoreboard-photos-"))
    sources.chmod(0o755)
    for name in photos:
        shutil.copy(PHOTOS / name, sources / name)
        (sources / name).chmod(0o644)
    load_before = os.getloadavg()[0]
    print(f"scoreboard: {os.cpu_count()} cores (shared), photos {', '.join(photos)}", file=sys.stderr)
    peers = []
    scratch = Path(tempfile.mkdtemp(prefix="scoreboard-out-"))
    try:
        for kind in kinds:
            peers.append(kind(sources))
            print(f"  started {peers[-1].name} on port {peers[-1].port}", file=sys.stderr, flush=True)
        for number, peer in enumerate(peers):  # imports and first decode, not counted
            assert load(peer.port, [peer.url(photos[0], 150 + number)], 1).ok == 1, peer.name
        memory = PeakRss(peers)
        try:
            colds = cold(peers, photos, args.rounds, args.batch, args.concurrency)
            warms = warm(peers, min(args.rounds, 3), args.warm_seconds)
            made = outputs(peers, photos, scratch)
        finally:
            memory.stop()
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(sources, ignore_errors=True)
    judged = json.loads(subprocess.run([str(BENCH_PYTHON), "-m", "bench.scoreboard_judge", "ssim"],
                                       input=json.dumps(made), capture_output=True, text=True, check=True).stdout)
    shutil.rmtree(scratch, ignore_errors=True)
    rows = {}
    for peer in peers:
        mine = [item for item in judged if item["peer"] == peer.name]
        result = colds[peer.name]
        errors = sum(count for status, count in result.statuses.items() if status != 200)
        rows[peer.name] = {
            "cold renditions/s": result.ok / result.seconds,
            "cold p99 ms": result.percentile(99),
            "warm req/s": warms[peer.name][0],
            "warm p99 ms": warms[peer.name][1],
            "peak RSS MiB": memory.peak[peer.name] / MIB,
            "bytes @800w": statistics.mean(item["bytes"] for item in mine),
            "SSIM @800w": statistics.mean(item["ssim"] for item in mine),
            "cold errors": errors,
            "per photo": mine,
        }
    note = (f"{os.cpu_count()} shared cores (other engineers' work ran too: load average {load_before:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after); {args.rounds}x{args.batch} cold renditions per peer at concurrency "
            f"{args.concurrency}; wrk -t2 -c32 -d{args.warm_seconds}s x{min(args.rounds, 3)}; "
            f"{len(photos)} JPEG photos; {time.monotonic() - started:.0f} s")
    table = render(rows)
    print(table)
    print(note)
    if args.peers:
        return
    (REPO / "bench" / "scoreboard.json").write_text(json.dumps({"rows": rows, "note": note}, indent=1) + "\n")
    args.chart.parent.mkdir(exist_ok=True)
    subprocess.run([str(BENCH_PYTHON), "-m", "bench.scoreboard_judge", "chart", str(args.chart)],
                   input=json.dumps({"rows": rows, "note": note, "columns": COLUMNS}), text=True, check=True)
    print(f"chart: {args.chart}", file=sys.stderr)


def render(rows: dict[str, dict[str, object]]) -> str:
    formats = {"cold renditions/s": "{:.1f}", "cold p99 ms": "{:.0f}", "warm req/s": "{:,.0f}",
               "warm p99 ms": "{:.1f}", "peak RSS MiB": "{:.0f}", "bytes @800w": "{:,.0f}", "SSIM @800w": "{:.4f}"}
    header = ["peer", *COLUMNS, "cold errors"]
    lines = [[name, *(formats[c].format(row[c]) for c in COLUMNS), str(row["cold errors"])]
             for name, row in rows.items()]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))) + " |"
            for line in lines]
    return "\n".join(out)


if __name__ == "__main__":
    main()
