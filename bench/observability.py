"""What watching costs: one command, every variant side by side, one table (about two minutes).

    .venv/bin/python -m bench.observability [--rounds N]

  hits      wrk against three nginx, all in front of one sidecar and one cache, rounds interleaved: the
            JSON access log as shipped (buffer=32k flush=1s), the same log unbuffered, and no access log
  tail      the supervisor's CPU per 1,000 hits while wrk runs (it follows the log and counts), and the
            counting itself over a 1,000,000-line log: substring counts (what it does) vs json.loads per line
  counters  one counter increment in multiprocess mode (files) vs in-process, and one /metrics scrape
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.load import (
    REPO,
    Sidecar,
    _nginx,
    fetch_one,
    free_port,
    load,
    start_sidecar,
    wrk,
)
from sidecar.observe.accesslog import AccessLogTail, Counts, log_format
from sidecar.observe.metrics import cpu_seconds
from sidecar.render import nginx as nginx_config

ROWS: list[tuple[str, str, str]] = []
ACCESS_LOG = re.compile(r"access_log [^;]*;")


def row(phase: str, variant: str, measured: str) -> None:
    ROWS.append((phase, variant, measured))
    print(f"  {phase:9} {variant:58} {measured}", file=sys.stderr, flush=True)


def nginx_variant(sidecar: Sidecar, name: str, access_log: str) -> int:
    """Another nginx in front of the same sidecar and cache, with its own port and access_log line."""
    port = free_port()
    prefix = sidecar.root / f"nginx-{name}"
    prefix.mkdir()
    config = sidecar.config.replace(listen=f"127.0.0.1:{port}")
    from load import _priority, _user

    text = nginx_config.standalone(config, prefix, user=_user(), priority=_priority())
    site_line = ACCESS_LOG.findall(text)[1]  # [0] is the http-level `access_log off`
    text = text.replace(site_line, access_log)
    (prefix / "nginx.conf").write_text(text)
    NGINXES.append(_nginx(prefix))
    return port


NGINXES: list = []  # type: ignore[type-arg]


def bench_hits(sidecar: Sidecar, rounds: int) -> None:
    path = sidecar.url(sorted(n for n in os.listdir(REPO / "samples") if n.endswith(".jpg"))[0], width=300)
    assert load(sidecar.port, [path], 1).ok == 1
    log = sidecar.config.observability.access_log
    variants = {
        "JSON access log, buffer=32k flush=1s (shipped)": sidecar.port,
        "JSON access log, unbuffered": nginx_variant(sidecar, "unbuffered",
                                                     f"access_log {log}.unbuffered resize_sidecar_json;"),
        "no access log": nginx_variant(sidecar, "off", "access_log off;"),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    supervisor_cpu: list[float] = []
    names = list(variants)
    for round_ in range(rounds):
        for name in names[round_ % 3:] + names[:round_ % 3]:  # each variant first once: no order bias
            port = variants[name]
            before = cpu_seconds(sidecar.process.pid)
            rate, _, _ = wrk(port, path, seconds=5)
            results[name].append(rate)
            if port == sidecar.port:
                time.sleep(2.5)  # the last flush and the last poll
                after = cpu_seconds(sidecar.process.pid)
                assert before is not None and after is not None
                supervisor_cpu.append((after - before) / (rate * 5) * 1000)
    off = statistics.median(results["no access log"])
    for name, rates in results.items():
        median = statistics.median(rates)
        row("hits", f"{name} (wrk -t2 -c50)", f"{median:9,.0f} req/s  {median / off:.2f}x of no log")
    row("tail", "supervisor CPU per 1,000 hits while wrk ran (median)",
        f"{statistics.median(supervisor_cpu) * 1000:9.2f} ms")
    counted = sidecar.metric("resize_sidecar_nginx_requests_total")
    logged = sum(1 for _ in open(log, "rb"))
    row("tail", "hits+misses counted / lines in the shipped log", f"{counted:9,.0f} / {logged:,}")


async def tail_once(path: Path, data: bytes) -> tuple[Counts, float]:
    """What the tail counts in `data`, written after it opened `path`, and the seconds its poll took."""
    tail = await AccessLogTail.open(path)
    path.write_bytes(data)
    started = time.perf_counter()
    counts = await tail.poll()
    seconds = time.perf_counter() - started
    await tail.close()
    return counts, seconds


def bench_tail_counting(lines: int = 1_000_000) -> None:
    fields = {"$time_iso8601": "2026-11-28T10:00:00+00:00", "$request_id": "0123456789abcdef0123456789abcdef",
              "$remote_addr": "203.0.113.7", "$request_method": "GET", "$status": "200",
              "$body_bytes_sent": "48213", "$request_time": "0.000", "$upstream_response_time": "",
              "$c": "hit", "$upstream_http_x_image_source": "", "$http_user_agent": "Mozilla/5.0 (X11; Linux)",
              "$request_uri": "/img/3f/a9/products/red%20shoe.jpg/w400-h400-fill.Xk3abcdefghijklm.webp"}
    line = log_format("$c")
    for variable in sorted(fields, key=len, reverse=True):
        line = line.replace(variable, fields[variable])
    json.loads(line)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        counts, counting = asyncio.run(tail_once(path, (line + "\n").encode() * lines))
        assert counts.hits == lines
        started = time.perf_counter()
        with open(path, "rb") as file:
            parsed = sum(1 for raw in file if json.loads(raw)["cache"] == "hit")
        parsing = time.perf_counter() - started
        assert parsed == lines
    row("tail", f"count {lines:,} lines: substring count (shipped)",
        f"{counting * 1000:9.0f} ms  {lines / counting / 1e6:5.1f} M lines/s")
    row("tail", f"count {lines:,} lines: json.loads per line",
        f"{parsing * 1000:9.0f} ms  {lines / parsing / 1e6:5.1f} M lines/s  ({parsing / counting:.0f}x slower)")


def bench_counters(sidecar: Sidecar, n: int = 200_000) -> None:
    import subprocess

    code = f"""
import os, sys, time, tempfile
if sys.argv[1] == "files":
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
from sidecar.observe.metrics import Metrics
m = Metrics()
c = m.renditions.labels("resize")
started = time.perf_counter()
for _ in range({n}):
    c.inc()
print((time.perf_counter() - started) / {n} * 1e9)
"""
    for mode, label in (("memory", "in-process (no metrics_dir)"), ("files", "multiprocess files (shipped)")):
        runs = [float(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                     check=True, cwd=REPO).stdout) for _ in range(3)]
        row("counters", f"one counter increment, {label}", f"{statistics.median(runs):9.0f} ns")
    import asyncio

    times = []
    for _ in range(20):
        started = time.perf_counter()
        status, body = asyncio.run(fetch_one(sidecar.port, "/metrics"))
        times.append(time.perf_counter() - started)
        assert status == 200
    row("counters", f"GET /metrics through nginx, 2 workers ({len(body):,} bytes)",
        f"{statistics.median(times) * 1000:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sidecar = start_sidecar(REPO / "samples", workers=2)
    try:
        bench_hits(sidecar, args.rounds)
        bench_tail_counting()
        bench_counters(sidecar)
    finally:
        for nginx in NGINXES:
            nginx.terminate()
            nginx.wait(10)
        sidecar.stop()
    print("\nresize-sidecar observability benchmark (timings on a shared machine: compare within one run)")
    width = max(len(v) for _, v, _ in ROWS)
    for phase, variant, measured in ROWS:
        print(f"{phase:9} {variant:{width}} {measured}")


if __name__ == "__main__":
    main()
