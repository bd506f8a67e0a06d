"""Benchmark: what resize-sidecar's nginx config costs per hit, against plain static nginx.

    make bench-hits            (wrk on loopback; about two minutes)

One rendition is made through the real stack (nginx + sidecar), then served as a hit by several nginx
instances side by side, all from the same file in the same cache directory:

  plain nginx            a minimal static server (the comparison the issue sets: a buffered access log in
                         nginx's default `combined` format), and the same with no access log at all
  ours                   the site config exactly as `resize-sidecar nginx-config` renders it
  ours minus X           the same with one feature removed or changed, to price each feature separately:
                         the hits' own log format (vs the general one: two regex maps and a request id
                         per hit), PCRE JIT, the whole access log, open_file_cache, add_header

wrk (-t2 -c50) runs each for a few seconds per round; the rounds interleave the variants in a rotating
order, so a busy neighbour on the shared 2-core machine slows all of them alike. Two figures per variant:
its median requests/s, and the CPU time its nginx workers spent per hit (user + system, from /proc, over
all rounds). The second is what a config costs; it hardly moves when other work shares the cores, where
requests/s swings with whatever else runs. Ratios are to plain nginx with a buffered log (for CPU per
hit, plain's over ours: above 1.00x means cheaper than plain). `uptime` is recorded with the run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.load import (
    PHOTOS,
    Renditions,
    _nginx,
    free_port,
    load,
    plain_nginx_conf,
    start_sidecar,
    url_tree,
)

Edit = Callable[[str], str]


def _without_access_log(conf: str) -> str:
    return re.sub(r"access_log /\S+ \S+ buffer=\S+ flush=\S+;", "access_log off;", conf)


def _without_open_file_cache(conf: str) -> str:
    conf = re.sub(r"open_file_cache(_valid|_errors)? [^;]*;.*\n", "", conf)
    return conf.replace("tcp_nopush on;", "tcp_nopush on;\n    open_file_cache off;", 1)


def _without_add_header(conf: str) -> str:
    return re.sub(r"add_header [^;]*;\n", "", conf)


def _hits_in_general_format(conf: str) -> str:
    """Undo the hit format: every request logs the general format (two regex maps, a request id)."""
    return re.sub(r"\n *access_log \S+ \S+_hit_json [^;]*;", "", conf)


def _without_pcre_jit(conf: str) -> str:
    return conf.replace("pcre_jit on;", "pcre_jit off;")


def _unchanged(conf: str) -> str:
    return conf


#: Variants of our config: (name, edit of the rendered nginx.conf).
OURS: tuple[tuple[str, Edit], ...] = (
    ("ours", _unchanged),
    ("ours, hits in the general log format", _hits_in_general_format),
    ("ours, pcre_jit off", _without_pcre_jit),
    ("ours, both (the config before issue 15)", lambda conf: _without_pcre_jit(_hits_in_general_format(conf))),
    ("ours, no access log", _without_access_log),
    ("ours, open_file_cache off", _without_open_file_cache),
    ("ours, no add_header", _without_add_header),
)


def cpu_seconds(master: int) -> float:
    """User + system CPU seconds of nginx's worker processes (the children of `master`)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, path: str, seconds: int) -> tuple[float, int]:
    """(requests/s, requests) from wrk -t2 -c50."""
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate, count


def ours_conf(base: str, prefix: Path, port: int, edit: Edit) -> str:
    """The rendered standalone config, moved to `prefix` and `port`, then edited."""
    conf = re.sub(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{port};", base)
    conf = re.sub(r"pid \S+;", f"pid {prefix}/nginx.pid;", conf)
    conf = re.sub(r"access_log (/\S+) ", f"access_log {prefix}/access.log ", conf)
    return edit(conf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench-hits does it)")
    uptime_before = subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()
    sources = Path(tempfile.mkdtemp(prefix="bench-hits-photos-"))
    sources.chmod(0o755)
    photo = "road-1920x1080.jpg"
    shutil.copy(PHOTOS / photo, sources / photo)
    sidecar = start_sidecar(sources, workers=1, transform_nice=0)
    servers: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        path = Renditions([photo], sources).next(sidecar)
        assert load(sidecar.port, [path], 1).ok == 1
        base = Path(sidecar.root / "nginx" / "nginx.conf").read_text()
        tree = url_tree(sidecar.config.cache.cache_dir)
        variants: list[tuple[str, Callable[[Path, int], str]]] = [
            ("plain nginx, buffered combined log", lambda p, port: plain_nginx_conf(p, port, tree, log=True)),
            ("plain nginx, no access log", lambda p, port: plain_nginx_conf(p, port, tree)),
            *[(name, lambda p, port, edit=edit: ours_conf(base, p, port, edit)) for name, edit in OURS],
        ]
        if args.only:
            wanted = set(args.only.split(","))
            variants = [v for v in variants if v[0] in wanted or v[0].startswith("plain nginx, buffered")]
        for name, make in variants:
            prefix = Path(tempfile.mkdtemp(prefix="bench-hits-nginx-"))
            (prefix / "tmp").mkdir()
            port = free_port()
            (prefix / "nginx.conf").write_text(make(prefix, port))
            servers[name] = (_nginx(prefix), port, prefix)
            assert load(port, [path], 1).ok == 1, f"{name}: the hit failed"
        results: dict[str, list[float]] = {name: [] for name in servers}
        cpu = {name: 0.0 for name in servers}
        hits = {name: 0 for name in servers}
        names = list(servers)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                process, port, _ = servers[name]
                before = cpu_seconds(process.pid)
                rate, count = run_wrk(port, path, args.seconds)
                cpu[name] += cpu_seconds(process.pid) - before
                hits[name] += count
                results[name].append(rate)
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for process, _, prefix in servers.values():
            process.send_signal(signal.SIGQUIT)
            process.wait(10)
            shutil.rmtree(prefix, ignore_errors=True)
        sidecar.stop()
        shutil.rmtree(sources, ignore_errors=True)
    uptime_after = subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()
    plain = "plain nginx, buffered combined log"
    baseline = statistics.median(results[plain])
    per_hit = {name: cpu[name] / max(1, hits[name]) * 1e6 for name in results}
    print(f"\nhits of one {path.rsplit('.', 1)[-1]} rendition, wrk -t2 -c50 on loopback, {args.rounds} interleaved "
          f"rounds of {args.seconds} s, medians; {os.cpu_count()} cores shared with other work")
    print(f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\n")
    print(f"| {'variant':<40} | {'req/s':>9} | {'min..max':>17} | {'vs plain':>8} "
          f"| {'nginx CPU us/hit':>16} | {'vs plain':>8} |")
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 19}|{'-' * 10}|{'-' * 18}|{'-' * 10}|")
    for name, rates in results.items():
        median = statistics.median(rates)
        print(f"| {name:<40} | {median:>9,.0f} | {min(rates):>8,.0f}..{max(rates):<8,.0f} | {median / baseline:>7.2f}x "
              f"| {per_hit[name]:>16.1f} | {per_hit[plain] / per_hit[name]:>7.2f}x |")


if __name__ == "__main__":
    main()
