"""The load benchmark: one command, every variant side by side, one table.

    make bench-load                 # or: .venv/bin/python -m bench.load [--memory-misses N]

Phases (variants interleaved round by round, because other work may share the CPU):
  hits        wrk against resize-sidecar's nginx and against a plain static nginx, same files
  misses      distinct renditions of the photos in ../shared/corpus/photos at concurrency 1..64, with the
              peak RSS of all sidecar processes; 1 worker against 2 workers at concurrency 16
  latency     a miss at concurrency 1 against the in-process pipeline time of the same rendition
  identical   200 simultaneous requests for one new rendition: fetches (inotify) and transforms
  hits+load   wrk's hit latency while misses keep every core busy
  memory      N misses each against two sidecars, malloc_trim on and off, RSS every tenth of the way
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sidecar import config as config_module
from sidecar.app.renditions import transform_settings
from sidecar.builder import build_url
from sidecar.config import Config
from sidecar.observe.memory import rss_bytes
from sidecar.render import nginx as nginx_config
from sidecar.transform.pipeline import transform
from sidecar.url.grammar import RENDITIONS, parse
from tests.support.inotify import Inotify
from tests.support.paths import REPO

PHOTOS = Path(os.environ.get("SIDECAR_CORPUS", REPO.parent / "shared" / "corpus")) / "photos"
TOKEN = "bench-purge-token-0123456789"
MIB = 1024 * 1024
ROWS: list[tuple[str, str, str, str]] = []  # (phase, variant, measured, target)


def row(phase: str, variant: str, measured: str, target: str = "") -> None:
    ROWS.append((phase, variant, measured, target))
    print(f"  {phase:10} {variant:44} {measured}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@dataclass
class Sidecar:
    """`resize-sidecar serve` plus nginx rendered from the same config, as the tests start them."""

    config: Config
    root: Path
    process: subprocess.Popen[bytes]
    nginx: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return int(self.config.server.listen.rsplit(":", 1)[1])

    def url(self, key: str, **ops: object) -> str:
        return build_url(self.config, key, **ops)  # type: ignore[arg-type]

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids())

    def metric(self, name: str) -> float:
        """The sum of every sample of `name` in a scrape of /metrics (through nginx)."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body = asyncio.run(fetch_one(self.port, "/metrics"))
        assert status == 200, status
        return sum(sample.value for family in text_string_to_metric_families(body.decode())
                   for sample in family.samples if sample.name == name)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)
        stop_process(self.nginx, signal.SIGQUIT)
        shutil.rmtree(self.root, ignore_errors=True)


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal `process` to stop and wait up to 30 s; then kill it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_sidecar(sources: Path, **settings: object) -> Sidecar:
    root = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    root.chmod(0o755)
    lines = [f'sources = ["{sources}"]', f'cache_dir = "{root / "cache"}"', f'socket = "{root / "s.sock"}"',
             f'access_log = "{root / "access.log"}"', f'metrics_dir = "{root / "metrics"}"',
             'socket_mode = "0666"', f'listen = "127.0.0.1:{free_port()}"', "allow_unsigned = true",
             'nginx_workers = "auto"', *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
    (root / "sidecar.toml").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env["SIDECAR_PURGE_TOKEN"] = TOKEN
    config = config_module.load(root / "sidecar.toml", env=env)
    log = open(root / "sidecar.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "sidecar", "serve", "--config", str(root / "sidecar.toml")],
                               env=env, stdout=log, stderr=log, cwd=REPO)
    prefix = root / "nginx"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(nginx_config.standalone(config, prefix, user=_user(), priority=_priority()))
    nginx = _nginx(prefix)
    deadline = time.monotonic() + 30
    while (root / "sidecar.log").read_text().count('"worker_ready"') < config.worker_processes:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError((root / "sidecar.log").read_text())
        time.sleep(0.05)
    return Sidecar(config, root, process, nginx)


def _user() -> str | None:
    from sidecar.runner import invoking_user

    return invoking_user()


def _priority() -> int:
    from sidecar.runner import nginx_priority  # what `resize-sidecar run` uses

    return nginx_priority()


def _nginx(prefix: Path) -> subprocess.Popen[bytes]:
    nginx = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                              str(prefix / "error.log"), "-g", "daemon off;"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    if nginx.poll() is not None:
        raise RuntimeError((prefix / "error.log").read_text())
    return nginx


def url_tree(cache_dir: Path) -> Path:
    """The cache's renditions hard-linked at their URL paths (`.../=/w400.jpg` at `.../w400.jpg`), beside the
    cache: what a plain static nginx serves, for the comparison with ours (which finds the `=` name itself)."""
    tree = cache_dir.parent / "url-tree"
    for file in cache_dir.rglob("*"):
        if file.is_file() and file.parent.name == RENDITIONS and not file.name.startswith("."):
            url_path = tree / file.parent.parent.relative_to(cache_dir) / file.name
            url_path.parent.mkdir(parents=True, exist_ok=True)
            if not url_path.exists():
                os.link(file, url_path)
    return tree


def plain_nginx_conf(prefix: Path, port: int, root: Path, log: bool = False) -> str:
    """A minimal static nginx serving `root`; `log`: with a buffered access log in nginx's `combined` format."""
    user = _user()
    access = f"access_log {prefix}/access.log combined buffer=32k flush=1s;" if log else "access_log off;"
    return f"""
{f"user {user};" if user else ""}
worker_processes auto;
{f"worker_priority {_priority()};" if _priority() else ""}
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    {access}
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {prefix}/tmp/body; proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi; uwsgi_temp_path {prefix}/tmp/uwsgi; scgi_temp_path {prefix}/tmp/scgi;
    types {{ image/jpeg jpg; image/png png; image/webp webp; }}
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


@contextmanager
def plain_nginx(root: Path) -> Iterator[int]:
    """nginx with a minimal static config serving `root` (the comparison for hits)."""
    prefix = Path(tempfile.mkdtemp(prefix="plain-nginx-"))
    port = free_port()
    (prefix / "tmp").mkdir()
    (prefix / "nginx.conf").write_text(plain_nginx_conf(prefix, port, root))
    nginx = _nginx(prefix)
    try:
        yield port
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
        shutil.rmtree(prefix, ignore_errors=True)


# The load: an asyncio HTTP/1.1 client, one keep-alive connection per virtual user.

async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    return status, await reader.readexactly(length)


async def fetch_one(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await _request(reader, writer, path, headers)
    finally:
        writer.close()


def fetch_timed(port: int, path: str) -> tuple[int, bytes, float]:
    """One GET on a new connection: status, body, and seconds from sending the request to the body's
    last byte (the connect is not timed, as in `load`)."""
    async def timed() -> tuple[int, bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            started = time.perf_counter()
            status, body = await _request(reader, writer, path)
            return status, body, time.perf_counter() - started
        finally:
            writer.close()

    return asyncio.run(timed())


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0


async def _load(port: int, paths: list[str], concurrency: int) -> Load:
    result = Load()
    queue = list(reversed(paths))

    async def user() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                path = queue.pop()
                started = time.perf_counter()
                status, _ = await _request(reader, writer, path)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def load(port: int, paths: list[str], concurrency: int) -> Load:
    return asyncio.run(_load(port, paths, concurrency))


@contextmanager
def peak_rss(sidecar: Sidecar) -> Iterator[list[int]]:
    """Samples the summed RSS of the supervisor and its workers every 20 ms; yields [peak]."""
    peak = [sidecar.rss()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], sidecar.rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def wrk(port: int, path: str, seconds: int = 5, connections: int = 50, threads: int = 2) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk --latency."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, pct("50"), pct("99")


# The renditions: distinct misses of the real photos.

class Renditions:
    """Distinct misses of the photos. Each rendition gets an original of its own (a hard link to a photo
    under a new key), so every miss starts from the original: none is derived from a larger rendition
    of the same original (sidecar.cascade), which would measure another, cheaper path."""

    def __init__(self, photos: list[str], sources: Path) -> None:
        self.photos, self.sources = photos, sources
        self.n = self.links = 0

    def next(self, sidecar: Sidecar, small: bool = False) -> str:
        """A rendition never asked for before: photos in turn, widths and formats varied. `small`: mostly
        thumbnails (cheap, so that thousands fit in minutes), every tenth one large."""
        self.n += 1
        key = self.fresh(self.photos[self.n % len(self.photos)])
        large = not small or self.n % 10 == 0
        width = (200 + (self.n * 53) % 1400) if large else (120 + (self.n * 37) % 400)
        return sidecar.url(key, width=width, format=("jpeg", "webp")[self.n % 2])

    def fresh(self, photo: str) -> str:
        """A new key for `photo` (a hard link beside it): nothing cached or derived from it yet."""
        self.links += 1
        stem, ext = os.path.splitext(photo)
        key = f"{stem}-{self.links}{ext}"
        os.link(self.sources / photo, self.sources / key)
        return key

    def batch(self, sidecar: Sidecar, count: int, small: bool = False) -> list[str]:
        return [self.next(sidecar, small) for _ in range(count)]


def bench_hits(sidecar: Sidecar, renditions: Renditions, rounds: int) -> None:
    path = renditions.next(sidecar)
    assert load(sidecar.port, [path], 1).ok == 1
    results: dict[str, list[float]] = {"resize-sidecar nginx": [], "plain nginx": []}
    with plain_nginx(url_tree(sidecar.config.cache.cache_dir)) as plain_port:
        for _ in range(rounds):
            results["resize-sidecar nginx"].append(wrk(sidecar.port, path)[0])
            results["plain nginx"].append(wrk(plain_port, path)[0])
    ours, plain = statistics.median(results["resize-sidecar nginx"]), statistics.median(results["plain nginx"])
    row("hits", "resize-sidecar nginx (wrk -t2 -c50)", f"{ours:,.0f} req/s")
    row("hits", "plain nginx, minimal static config", f"{plain:,.0f} req/s")
    row("hits", "ratio", f"{ours / plain:.2f}x", ">= 0.95x")


def bench_misses(stacks: dict[int, Sidecar], renditions: Renditions, levels: list[int], per_level: int) -> None:
    two = stacks[2]
    for concurrency in levels:
        paths = renditions.batch(two, max(per_level, 2 * concurrency))
        with peak_rss(two) as peak:
            result = load(two.port, paths, concurrency)
        others = {s: n for s, n in result.statuses.items() if s != 200}
        row("misses", f"2 workers, concurrency {concurrency:>2} ({len(paths)} misses, nice 0)",
            f"{result.ok / result.seconds:6.1f} renditions/s  p50 {result.percentile(50):6.0f} ms  "
            f"p99 {result.percentile(99):6.0f} ms  peak RSS {peak[0] / MIB:5.0f} MiB"
            + (f"  other statuses: {others}" if others else ""))
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(2):
        for workers, sidecar in stacks.items():
            result = load(sidecar.port, renditions.batch(sidecar, 3 * per_level), 16)
            rates[workers].append(result.ok / result.seconds)
    one, both = statistics.median(rates[1]), statistics.median(rates[2])
    row("misses", "1 worker, concurrency 16", f"{one:6.1f} renditions/s")
    row("misses", "2 workers / 1 worker", f"{both / one:.2f}x", ">= 1.8x")


def bench_latency(sidecar: Sidecar, renditions: Renditions, sources: Path, count: int) -> None:
    """Each rendition three times over (qualities 80-82: distinct misses, same work), fastest of each kind,
    in-process and end to end in turn, so both see the same moments of a shared CPU."""
    settings = transform_settings(sidecar.config)
    local: list[float] = []
    remote: list[float] = []
    for _ in range(count):
        base = parse(renditions.next(sidecar), prefix=sidecar.config.urls.url_prefix, signed=False).target
        data = (sources / base.key).read_bytes()
        best_local = best_remote = float("inf")
        for quality in (80, 81, 82):
            ops = dict(width=base.ops.width, format=base.ops.format, quality=quality)
            rendition = parse(sidecar.url(base.key, **ops), prefix=sidecar.config.urls.url_prefix, signed=False).target
            started = time.perf_counter()
            transform(data, rendition.ops, settings)
            best_local = min(best_local, time.perf_counter() - started)
            result = load(sidecar.port, [sidecar.url(base.key, **ops)], 1)
            assert result.ok == 1, result.statuses
            best_remote = min(best_remote, result.latencies[0])
        local.append(best_local)
        remote.append(best_remote)
    ratios = [far / near for far, near in zip(remote, local)]
    row("latency", f"in-process pipeline, median of {count} renditions", f"{statistics.median(local) * 1000:6.1f} ms")
    row("latency", "end-to-end miss at concurrency 1, median", f"{statistics.median(remote) * 1000:6.1f} ms")
    row("latency", "end-to-end / in-process, median of ratios", f"{statistics.median(ratios):.2f}x", "<= 1.15x")


def bench_identical(sidecar: Sidecar, renditions: Renditions, sources: Path) -> None:
    path = renditions.next(sidecar)
    key = parse(path, prefix=sidecar.config.urls.url_prefix, signed=False).target.key
    before = sidecar.metric("resize_sidecar_renditions_total")
    opens = Inotify(sources / key, Inotify.OPEN)
    result = load(sidecar.port, [path] * 200, 200)
    fetches = len(opens.events())
    opens.close()
    transforms = sidecar.metric("resize_sidecar_renditions_total") - before
    row("identical", "200 simultaneous requests, one new rendition",
        f"{result.ok}/200 ok in {result.seconds * 1000:.0f} ms: {fetches} fetch, {transforms} transform",
        "1 fetch, 1 transform")


def bench_hits_under_load(variants: dict[str, Sidecar], renditions: Renditions) -> None:
    for name, sidecar in variants.items():
        path = renditions.next(sidecar)
        assert load(sidecar.port, [path], 1).ok == 1
        if name == next(iter(variants)):
            _, p50, p99 = wrk(sidecar.port, path, seconds=4, connections=8, threads=1)
            row("hits+load", "hit latency, idle (wrk -t1 -c8)", f"p50 {p50:.2f} ms  p99 {p99:.2f} ms")
        stop = threading.Event()
        misses = Load()

        def keep_busy(stop: threading.Event = stop, sidecar: Sidecar = sidecar, misses: Load = misses) -> None:
            while not stop.is_set():
                part = load(sidecar.port, renditions.batch(sidecar, 32), 16)
                misses.latencies += part.latencies
                misses.seconds += part.seconds

        busy = threading.Thread(target=keep_busy)
        busy.start()
        time.sleep(1)
        try:
            _, p50, p99 = wrk(sidecar.port, path, seconds=4, connections=8, threads=1)
        finally:
            stop.set()
            busy.join()
        row("hits+load", f"hit latency, misses at concurrency 16, {name}",
            f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({len(misses.latencies) / max(misses.seconds, 1e-9):.1f} misses/s)",
            "p99 < a few ms")


def bench_memory(renditions: Renditions, sources: Path, misses: int) -> None:
    variants = {"malloc_trim on": start_sidecar(sources, release_memory=True),
                "malloc_trim off": start_sidecar(sources, release_memory=False)}
    try:
        chunk = max(1, misses // 10)
        marks: dict[str, list[int]] = {name: [] for name in variants}
        peaks: dict[str, int] = {name: 0 for name in variants}
        for _ in range(10):
            for name, sidecar in variants.items():
                with peak_rss(sidecar) as peak:
                    result = load(sidecar.port, renditions.batch(sidecar, chunk, small=True), 4)
                assert result.ok == chunk, result.statuses
                peaks[name] = max(peaks[name], peak[0])
                marks[name].append(sidecar.rss())
        for name, sidecar in variants.items():
            released = int(sidecar.metric("resize_sidecar_memory_released_total"))
            row("memory", f"{misses:,} misses, {name}",
                f"RSS after 10%: {marks[name][0] / MIB:4.0f} MiB, after 100%: {marks[name][-1] / MIB:4.0f} MiB, "
                f"peak {peaks[name] / MIB:4.0f} MiB (malloc_trim gave memory back {released} times)",
                f"budget {sidecar.config.processes.memory_budget // MIB} MiB")
    finally:
        for sidecar in variants.values():
            sidecar.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-misses", type=int, default=1_000)
    parser.add_argument("--per-level", type=int, default=24, help="misses per concurrency level (at least 2x it)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does it)")
    sources = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    sources.chmod(0o755)
    photos = sorted(p.name for p in PHOTOS.iterdir() if p.suffix in (".jpg", ".png"))
    for name in photos:
        shutil.copy(PHOTOS / name, sources / name)
    renditions = Renditions(photos, sources)
    started = time.monotonic()
    print(f"resize-sidecar load benchmark: {os.cpu_count()} cores, {len(photos)} photos from {PHOTOS}",
          file=sys.stderr)
    row("machine", "load average before (1 min, all users)", f"{os.getloadavg()[0]:.2f}")
    # Transforms at nice 0 here: on a shared machine, nice 10 would measure other people's work, not ours.
    stacks = {1: start_sidecar(sources, workers=1, transform_nice=0),
              2: start_sidecar(sources, workers=2, transform_nice=0)}
    nice10 = start_sidecar(sources, workers=2)
    try:
        bench_hits(stacks[2], renditions, args.rounds)
        bench_misses(stacks, renditions, [1, 2, 4, 16, 64], args.per_level)
        bench_latency(stacks[1], renditions, sources, 8)
        bench_identical(stacks[2], renditions, sources)
        bench_hits_under_load({"transforms at nice 10 (default)": nice10, "transforms at nice 0": stacks[2]},
                              renditions)
    finally:
        for sidecar in [*stacks.values(), nice10]:
            sidecar.stop()
    bench_memory(renditions, sources, args.memory_misses)
    row("machine", "load average after (1 min, all users)", f"{os.getloadavg()[0]:.2f}")
    shutil.rmtree(sources, ignore_errors=True)
    widths = [max(len(r[i]) for r in ROWS) for i in range(4)]
    header = ("phase", "variant", "measured", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in ROWS:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"({time.monotonic() - started:.0f} s; shared machine: other work may have used the same cores)")


if __name__ == "__main__":
    main()
