"""How long fetching an original takes from each kind of source, and what a fallback or a dead source costs.

    .venv/bin/python -m bench.sources [--rounds 60]

Every variant is a real `SourceChain` opened from a real config, against real servers: a directory,
nginx serving the same directory over HTTP, moto's S3 server as its own process, and a port that
accepts and never answers (the dead endpoint). Rounds interleave the variants, so a neighbour's load
on a shared machine hits them all alike; the table gives medians and ratios to the local read.
Only the fetch is timed (no transform, no nginx in front), since that is what the sources add.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sidecar.config import load
from sidecar.sources import SourceChain, open_chain
from tests.support.paths import REPO
from tests.support.servers import MotoS3Process, upload  # the tests' servers

ORIGINALS = {"small.jpg": None, "large.jpg": REPO / "samples" / "redpanda-nikond80-3872x2592.jpg"}
DEAD_TIMEOUT = 0.2  # the dead endpoint's first-byte timeout in its variants


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    conf = root / "nginx.conf"
    (root / "tmp").mkdir()
    conf.write_text(
        f"worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{ access_log off; client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp;\n"
        f"  fastcgi_temp_path {root}/tmp; uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;\n"
        f"  server {{ listen 127.0.0.1:{port}; location /originals/ {{ alias {root}/originals/; }} }} }}\n")
    process = subprocess.Popen(["nginx", "-p", str(root), "-c", str(conf), "-e", str(root / "error.log"),
                                "-g", "daemon off;"])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nginx did not start")


async def measure(chain: SourceChain, key: str, size: int) -> float:
    """Milliseconds to fetch `key`; anything but the whole original is an error, not a sample."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    original = await chain.fetch(key, loop.time() + 30)
    elapsed = (time.perf_counter() - started) * 1000
    if len(original.data) != size:
        raise RuntimeError(f"{key}: got {len(original.data)} bytes from {original.source}, expected {size}")
    return elapsed


async def run(rounds: int, root: Path, http_port: int, s3: MotoS3Process, dead_port: int) -> None:
    os.environ.update(s3.env)
    local, http = str(root / "originals"), f"http://127.0.0.1:{http_port}/originals/"
    dead = f"http://127.0.0.1:{dead_port}/"
    fast_dead = dict(SIDECAR_SOURCE_FIRST_BYTE_TIMEOUT=str(DEAD_TIMEOUT))
    variants = {
        "local": (local, {}),
        "http (nginx origin)": (http, {}),
        "s3 (moto process)": ("s3://bench", {}),
        "local gone -> s3": (f"{root}/gone,s3://bench", {}),
        "dead http -> local, breaker on": (f"{dead},{local}", fast_dead),
        "dead http -> local, breaker off": (f"{dead},{local}", {**fast_dead, "SIDECAR_SOURCE_DOWN_AFTER": "1000000"}),
    }
    chains = {name: await open_chain(load(None, env={"SIDECAR_SOURCES": sources, **extra}))
              for name, (sources, extra) in variants.items()}
    samples: dict[tuple[str, str], list[float]] = {(name, key): [] for name in chains for key in ORIGINALS}
    sizes = {key: (root / "originals" / key).stat().st_size for key in ORIGINALS}
    for chain in chains.values():  # warm every pool and the breakers' first failures
        for key in ORIGINALS:
            for _ in range(6):
                await measure(chain, key, sizes[key])
    for round_ in range(rounds):
        for name, chain in chains.items():
            if name.endswith("breaker off") and round_ % 5:
                continue  # each of these costs a full timeout: a fifth of the rounds is enough
            for key in ORIGINALS:
                samples[name, key].append(await measure(chain, key, sizes[key]))
    for chain in chains.values():
        await chain.close()

    base = {key: statistics.median(samples["local", key]) for key in ORIGINALS}
    print("| variant | original | n | median ms | p90 ms | × local |")
    print("|---|---|---|---|---|---|")
    for (name, key), values in samples.items():
        median, p90 = statistics.median(values), statistics.quantiles(values, n=10)[-1]
        print(f"| {name} | {key} ({sizes[key] // 1024} KB) | {len(values)} | {median:.2f} | {p90:.2f} | "
              f"{median / base[key]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    root.chmod(0o755)  # nginx's workers (nobody, under root) read the originals from here
    (root / "originals").mkdir()
    for key, path in ORIGINALS.items():
        if path is None:
            from PIL import Image

            Image.new("RGB", (640, 480), (90, 140, 200)).save(root / "originals" / key, quality=85)
        else:
            shutil.copy(path, root / "originals" / key)
    http_port = free_port()
    nginx = start_nginx(root, http_port)
    s3 = MotoS3Process(free_port())
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(1024)  # the kernel accepts; nobody ever answers
    try:
        upload(s3.env, [(key, (root / "originals" / key).read_bytes()) for key in ORIGINALS], bucket="bench",
               create=True)
        import uvloop

        started = time.monotonic()
        with contextlib.redirect_stderr(io.StringIO()):  # the sidecar's log: a line per dead-source failure
            uvloop.run(run(args.rounds, root, http_port, s3, dead.getsockname()[1]))
        print(f"\n{args.rounds} rounds in {time.monotonic() - started:.0f} s; dead endpoint's first-byte "
              f"timeout {DEAD_TIMEOUT} s; {os.cpu_count()} cores, shared with other work")
    finally:
        dead.close()
        s3.stop()
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
