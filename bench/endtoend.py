"""Benchmark: issue 15's grid end to end, ours through nginx against a libvips server and libvips in-process.

    make bench-endtoend          (bench/.venv as for bench-grid; this driver runs in the project's .venv)

The photos and widths of bench/grid.py (the four of ../shared/corpus/photos, or SIDECAR_PHOTOS, plus the
48 MP ones it makes, with and without restart markers; BENCH_BIG=0 leaves them out; widths 160-1399,
BENCH_WIDTHS overrides), and the iPhone photo at 200 px as well (the issue's "12 MP -> 200 px" cell),
JPEG q82, `fit` to the width, one request at a time:

  ours e2e          the real stack (bench/peers.py `Ours`: nginx rendered from the config, `serve` with a
                    worker per core, transforms at nice 0, no per-client miss limit), over HTTP on loopback
  vips server e2e   bench/peers.py `Vips` (pyvips `thumbnail_buffer` behind aiohttp, no cache), over HTTP
  vips in-process   bench.grid's libvips worker: bytes in, bytes out, timed inside its process
  ours in-process   bench.grid's worker for our pipeline, the same way: what the stack adds shows beside it

Every HTTP request is a cold miss: it names a key never asked for before (a hard link to the photo,
bench.load's `Renditions.fresh`), so nothing is cached and nothing can be derived from a larger
rendition; the run checks that the sidecar logged no cascade. An HTTP time runs from sending the request
to the body's last byte (the connect is not timed). Rounds interleave the variants in rotating order
(BENCH_ROUNDS, default 3, after a warm-up round), the table shows medians, with the bytes and SSIM
(bench.pipeline's, against its full-decode reference) of each output. Then where our time goes per
request: the client's time, nginx's `$request_time` and `$upstream_response_time` (its access log), the
sidecar's own request and transform times (its metrics) and the in-process pipeline. `uptime` is printed
before and after: on a shared machine only the ratios within one run mean anything.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.grid import (
    BIG_FROM,
    PHOTOS,
    ROUNDS,
    WIDTHS,
    ask,
    interleaved,
    start_worker,
    stop_worker,
    uptime,
)
from bench.load import Renditions, fetch_timed
from bench.peers import BENCH_PYTHON, REPO, Ours, Vips

VARIANTS = ("ours e2e", "vips server", "vips in-process", "ours in-process")
THUMB_WIDTH = 200  # the "12 MP -> 200 px cold, end-to-end" cell, on BIG_FROM
#: The sidecar's metrics whose growth over the counted rounds says where its time went.
METRICS = ("resize_sidecar_request_seconds_sum", "resize_sidecar_transform_seconds_sum",
           "resize_sidecar_transform_seconds_count", "resize_sidecar_source_request_seconds_sum")


def prepare(sources: Path) -> list[Path]:
    """The photos copied into `sources` (which both servers serve) and the 48 MP ones bench.grid makes
    there, made by bench/.venv's vanilla Pillow so that they are the very files `make bench-grid` measures."""
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS} (set SIDECAR_PHOTOS)")
    for photo in photos:
        shutil.copy(photo, sources / photo.name)
    photos = [sources / photo.name for photo in photos]
    if os.environ.get("BENCH_BIG", "1") == "1":
        made = subprocess.run([str(BENCH_PYTHON), "-c", "import sys, json, pathlib, bench.grid as g; print(json.dumps("
                               "[str(p) for p in g.big_photos(pathlib.Path(sys.argv[1]))]))", str(sources)],
                              cwd=REPO, check=True, capture_output=True, text=True).stdout
        photos += [Path(path) for path in json.loads(made)]
    for photo in photos:
        photo.chmod(0o644)
    return photos


@dataclass
class Run:
    """What one run measured: medians come from `ms`; the rest says where ours' time went."""

    ms: dict[tuple[str, int, str], list[float]] = field(default_factory=dict)  # (photo, width, variant) -> ms
    made: list[dict[str, object]] = field(default_factory=list)  # round 1's outputs, for the judge
    timed: dict[str, float] = field(default_factory=dict)  # ours' counted request paths -> client seconds
    grown: dict[str, float] = field(default_factory=dict)  # METRICS over the counted rounds
    access: list[dict[str, object]] = field(default_factory=list)  # nginx's access log lines
    cascades: int = 0


def measure(sources: Path, outs: Path, jobs: list[tuple[Path, int]]) -> Run:
    run, before = Run(), {}
    keys = Renditions(sorted({photo.name for photo, _ in jobs}), sources)
    servers: dict[str, Ours | Vips] = {}
    workers: dict[str, subprocess.Popen[str]] = {}
    try:
        ours = servers["ours e2e"] = Ours(sources, miss_rate=0)
        servers["vips server"] = Vips(sources)
        # This driver runs in the project's .venv, as `Ours` does: our worker uses the same interpreter.
        workers.update({"vips in-process": start_worker("vips", BENCH_PYTHON),
                        "ours in-process": start_worker("ours", Path(sys.executable))})
        for round_number, (photo, width), variant in interleaved(jobs, VARIANTS, ROUNDS):
            if round_number == 1 and not before:
                before = {name: ours.sidecar.metric(name) for name in METRICS}
            if variant in servers:
                server = servers[variant]
                path = server.url(keys.fresh(photo.name), width)
                status, body, seconds = fetch_timed(server.port, path)
                if status != 200:
                    raise SystemExit(f"{variant}: {status} for {path}")
                out = outs / f"{len(run.made)}-{variant.replace(' ', '-')}.jpg"
                out.write_bytes(body)
                if server is ours and round_number:
                    run.timed[path] = seconds
                answer: dict[str, object] = {"ms": seconds * 1000, "out": str(out)}
            else:
                answer = ask(workers[variant], photo, width)
            if round_number:
                run.ms.setdefault((photo.name, width, variant), []).append(float(answer["ms"]))  # type: ignore[arg-type]
                if round_number == 1:
                    run.made.append({"peer": variant, "photo": str(photo), "width": width, "file": answer["out"]})
        run.grown = {name: ours.sidecar.metric(name) - before[name] for name in METRICS}
        time.sleep(1.5)  # nginx flushes its buffered access log every second
        log = ours.sidecar.config.observability.access_log
        run.access = [json.loads(line) for line in log.read_text().splitlines()]
        run.cascades = (ours.sidecar.root / "sidecar.log").read_text().count('"event":"cascade"')
    finally:
        for proc in workers.values():
            stop_worker(proc)
        for server in servers.values():
            server.stop()
    return run


def main() -> None:
    uptime_before = uptime()
    sources = Path(tempfile.mkdtemp(prefix="bench-endtoend-photos-"))
    sources.chmod(0o755)
    outs = Path(tempfile.mkdtemp(prefix="bench-endtoend-out-"))
    run = Run()
    try:
        photos = prepare(sources)
        jobs = [(photo, width) for photo in photos for width in WIDTHS]
        if THUMB_WIDTH not in WIDTHS and (sources / BIG_FROM) in photos:
            jobs.append((sources / BIG_FROM, THUMB_WIDTH))
        run = measure(sources, outs, jobs)
        uptime_after = uptime()
        judged = json.loads(subprocess.run([str(BENCH_PYTHON), "-m", "bench.scoreboard_judge", "ssim"], cwd=REPO,
                                           input=json.dumps(run.made), capture_output=True, text=True,
                                           check=True).stdout)
    finally:
        # The workers' output directories too (bench.pipeline's worker leaves them for its driver to read).
        for directory in {sources, outs, *(Path(str(item["file"])).parent for item in run.made)}:
            shutil.rmtree(directory, ignore_errors=True)
    quality = {(Path(str(item["photo"])).name, int(item["width"]), str(item["peer"])): item for item in judged}
    print(f"\nJPEG q82, `fit` to each width, every request cold, concurrency 1; median of {ROUNDS} interleaved "
          f"rounds, wall ms; SSIM against bench.pipeline's full-decode LANCZOS reference")
    print(f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\n")
    report(jobs, run.ms, quality)
    overheads(run)


def report(jobs: list[tuple[Path, int]], ms: dict[tuple[str, int, str], list[float]],
           quality: dict[tuple[str, int, str], dict[str, object]]) -> None:
    """The grid, then the whole mix and the cells lost against each libvips."""
    median = {key: statistics.median(values) for key, values in ms.items()}
    head = ["photo", "width", "ours e2e ms", "vips server ms", "vips in-process ms", "ours in-process ms",
            "vips server / ours", "vips in-process / ours", "ours bytes", "vips bytes", "ours SSIM", "vips SSIM"]
    print("| " + " | ".join(head) + " |\n|---|" + "---:|" * (len(head) - 1))
    for photo, width in jobs:
        cell = {variant: median[(photo.name, width, variant)] for variant in VARIANTS}
        mine, theirs = quality[(photo.name, width, "ours e2e")], quality[(photo.name, width, "vips in-process")]
        print(f"| {photo.name} | {width} | {cell['ours e2e']:.1f} | {cell['vips server']:.1f} "
              f"| {cell['vips in-process']:.1f} | {cell['ours in-process']:.1f} "
              f"| {cell['vips server'] / cell['ours e2e']:.2f} | {cell['vips in-process'] / cell['ours e2e']:.2f} "
              f"| {mine['bytes']} | {theirs['bytes']} | {mine['ssim']:.4f} | {theirs['ssim']:.4f} |")
    total = {variant: sum(median[(p.name, w, variant)] for p, w in jobs) for variant in VARIANTS}
    print()
    for peer in ("vips server", "vips in-process"):
        lost = [f"{p.name} @{w}" for p, w in jobs if median[(p.name, w, "ours e2e")] > median[(p.name, w, peer)]]
        print(f"whole mix ({len(jobs)} jobs): ours e2e {total['ours e2e']:.0f} ms, {peer} {total[peer]:.0f} ms: "
              f"speed vs {peer} {total[peer] / total['ours e2e']:.2f}x (target >= 1.2x); cells lost: {len(lost)}"
              + (f": {', '.join(lost)}" if lost else ""))
    differ = [f"{p.name} @{w}" for p, w in jobs
              if quality[(p.name, w, "vips server")]["bytes"] != quality[(p.name, w, "vips in-process")]["bytes"]]
    print(f"libvips server and in-process outputs differ in bytes in {len(differ)} of {len(jobs)} cells"
          + (f": {', '.join(differ)}" if differ else " (the same work, so the time between them is the server's)"))
    thumb = (BIG_FROM, THUMB_WIDTH)
    if (*thumb, "ours e2e") in median:
        ours = median[(*thumb, "ours e2e")]
        print(f"12 MP -> {THUMB_WIDTH} px cold, end-to-end ({BIG_FROM}): ours {ours:.1f} ms, vips server "
              f"{median[(*thumb, 'vips server')]:.1f} ms, vips in-process {median[(*thumb, 'vips in-process')]:.1f} "
              f"ms: vips in-process / ours {median[(*thumb, 'vips in-process')] / ours:.2f} (target >= 1.00)")


def overheads(run: Run) -> None:
    """Where ours' end-to-end time goes, as means per counted request: client, nginx, sidecar, transform."""
    count, grown = len(run.timed), run.grown
    lines = [line for line in run.access if line.get("uri") in run.timed]
    upstream = [float(str(line["upstream_time"]).split(",")[-1]) for line in lines if line["upstream_time"] != "-"]
    transforms = grown["resize_sidecar_transform_seconds_count"]
    inprocess = [v for (_, _, variant), values in run.ms.items() if variant == "ours in-process" for v in values]
    print(f"\nours, means per counted request ({count} requests: "
          f"{sum(1 for line in lines if line.get('cache') == 'miss')} logged by nginx as misses, "
          f"{transforms:.0f} transforms, {run.cascades} cascades):")
    for what, ms in (
        ("client (request sent to last byte)", statistics.mean(run.timed.values()) * 1000),
        ("nginx $request_time", statistics.mean(float(str(line["request_time"])) for line in lines) * 1000),
        ("nginx $upstream_response_time", statistics.mean(upstream) * 1000),
        ("sidecar request (its metrics)", grown["resize_sidecar_request_seconds_sum"] / count * 1000),
        ("  of which source fetch", grown["resize_sidecar_source_request_seconds_sum"] / count * 1000),
        ("  of which transform", grown["resize_sidecar_transform_seconds_sum"] / max(transforms, 1) * 1000),
        ("in-process pipeline (bench.grid worker)", statistics.mean(inprocess)),
    ):
        print(f"  {what:42} {ms:7.1f} ms")


if __name__ == "__main__":
    main()
