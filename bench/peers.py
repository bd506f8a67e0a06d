"""The four servers bench/scoreboard.py compares, each started on loopback the way its users run it.

Every peer answers `url(photo, width)` (a JPEG of `photo` at `width`, aspect kept, never enlarged,
quality 82) and knows its processes (`pids`), so the scoreboard can sum their memory.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.load import (
    Sidecar,
    _nginx,
    _priority,
    _user,
    children,
    free_port,
    start_sidecar,
    stop_process,
)

REPO = Path(__file__).resolve().parent.parent
BENCH_PYTHON = REPO / "bench" / ".venv" / "bin" / "python"
THUMBOR_VENV = Path(os.environ.get("THUMBOR_VENV", Path.home() / ".cache" / "resize-sidecar" / "thumbor-venv"))
IMAGE_FILTER_MODULE = "/usr/lib/nginx/modules/ngx_http_image_filter_module.so"
QUALITY = 82


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found = [pid]
    for child in children(pid):
        found += tree(child)
    return found


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log.read_text() if log.exists() else ''}") from None
            time.sleep(0.2)


class Ours:
    """resize-sidecar: nginx rendered from the config plus `serve` with its default workers (one per core)."""

    name = "resize-sidecar"

    def __init__(self, photos: Path, **settings: object) -> None:
        # Transforms at nice 0, as every peer runs: nice 10 would lend our CPU to the others here.
        self.sidecar: Sidecar = start_sidecar(photos, **{"transform_nice": 0, **settings})
        self.port = self.sidecar.port

    def url(self, photo: str, width: int) -> str:
        return self.sidecar.url(photo, width=width, format="jpeg", quality=QUALITY)

    def pids(self) -> list[int]:
        return [pid for top in (self.sidecar.process.pid, self.sidecar.nginx.pid) for pid in tree(top)]

    def stop(self) -> None:
        self.sidecar.stop()


class Thumbor:
    """thumbor 7 in its own venv (plain Pillow): file loader, file result storage, one process per core."""

    name = "thumbor"

    def __init__(self, photos: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-thumbor-"))
        self.port = free_port()
        conf = self.root / "thumbor.conf"
        conf.write_text("\n".join((
            "LOADER = 'thumbor.loaders.file_loader'",
            f"FILE_LOADER_ROOT_PATH = {str(photos)!r}",
            "STORAGE = 'thumbor.storages.no_storage'",
            "RESULT_STORAGE = 'thumbor.result_storages.file_storage'",
            f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(self.root / 'results')!r}",
            "RESULT_STORAGE_STORES_UNSAFE = True",
            f"QUALITY = {QUALITY}",
            "RESPECT_ORIENTATION = True",  # off by default; on, so that it is judged on upright pictures
            "AUTO_WEBP = False",
            "ALLOW_UNSAFE_URL = True",
        )) + "\n")
        log = self.root / "thumbor.log"
        self.process = subprocess.Popen(
            [str(THUMBOR_VENV / "bin" / "thumbor"), "-i", "127.0.0.1", "-p", str(self.port), "-c", str(conf),
             "--processes", str(os.cpu_count() or 1), "-l", "error"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root)
        wait_ready(self.port, "/healthcheck", self.process, "thumbor", log)

    def url(self, photo: str, width: int) -> str:
        return f"/unsafe/{width}x0/{photo}"

    def pids(self) -> list[int]:
        return tree(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class ImageFilter:
    """Debian's nginx `image_filter` (libgd) behind `proxy_cache` in the same nginx: a cache server in
    front, the resizing server behind it, as the module's usual recipe has it."""

    name = "nginx image_filter"

    def __init__(self, photos: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-image-filter-"))
        self.root.chmod(0o755)
        self.port, back = free_port(), free_port()
        user, priority = _user(), _priority()
        (self.root / "tmp").mkdir()
        (self.root / "nginx.conf").write_text(f"""
load_module {IMAGE_FILTER_MODULE};
{f"user {user};" if user else ""}
worker_processes auto;
{f"worker_priority {priority};" if priority else ""}
pid {self.root}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {self.root}/tmp/body; proxy_temp_path {self.root}/tmp/proxy;
    fastcgi_temp_path {self.root}/tmp/fastcgi; uwsgi_temp_path {self.root}/tmp/uwsgi; scgi_temp_path {self.root}/tmp/scgi;
    proxy_cache_path {self.root}/cache levels=1:2 keys_zone=images:10m max_size=1g inactive=1h use_temp_path=off;
    upstream resizer {{ server 127.0.0.1:{back}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://resizer;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache images;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            proxy_read_timeout 120s;
        }}
    }}
    server {{
        listen 127.0.0.1:{back};
        location ~ "^/([1-9][0-9]*)/([^/]+)$" {{
            alias {photos}/$2;
            image_filter resize $1 -;
            image_filter_jpeg_quality {QUALITY};
            image_filter_buffer 64M;
        }}
    }}
}}
""")
        self.nginx = _nginx(self.root)

    def url(self, photo: str, width: int) -> str:
        return f"/{width}/{photo}"

    def pids(self) -> list[int]:
        return tree(self.nginx.pid)

    def stop(self) -> None:
        stop_process(self.nginx, signal.SIGQUIT)
        shutil.rmtree(self.root, ignore_errors=True)


class Vips:
    """bench/vips_server.py: pyvips `thumbnail_buffer` behind aiohttp, one thread per core, no cache."""

    name = "libvips (pyvips+aiohttp)"

    def __init__(self, photos: Path) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="bench-vips-", suffix=".log")[1])
        self.process = subprocess.Popen(
            [str(BENCH_PYTHON), "-m", "bench.vips_server", "--root", str(photos), "--port",
             str(self.port)], stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_ready(self.port, f"/1/{next(p.name for p in photos.iterdir())}", self.process, "vips server", self.log)

    def url(self, photo: str, width: int) -> str:
        return f"/{width}/{photo}"

    def pids(self) -> list[int]:
        return tree(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.unlink(missing_ok=True)


PEERS = (Ours, Thumbor, ImageFilter, Vips)
