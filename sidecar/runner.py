"""`resize-sidecar run`: the sidecar plus a private nginx rendered from the same config, in the foreground."""
from __future__ import annotations

import asyncio
import grp
import os
import pwd
import signal
import subprocess
import sys

import uvloop

from sidecar.builder import build_url
from sidecar.config import Config
from sidecar.log import log
from sidecar.render import nginx as nginx_config
from sidecar.server.signals import stop_event
from sidecar.server.supervisor import supervising

NGINX = "nginx"
NGINX_START_TIMEOUT = 5.0
NGINX_PRIORITY = -5


def invoking_user() -> str | None:
    """The `user` line for nginx: its workers must read the cache we write, wherever it is (even a 0700
    home), so they run as whoever runs us. Without root, nginx cannot switch users and needs no line."""
    if os.geteuid() != 0:
        return None
    return f"{pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name}"


def nginx_priority() -> int:
    """Hits before misses: nginx's workers at nice -5 (root only), the transforms at `transform_nice`."""
    return NGINX_PRIORITY if os.geteuid() == 0 else 0


def example_url(config: Config) -> str | None:
    for root in config.fetch.sources:
        names = sorted(os.listdir(root)) if os.path.isdir(root) else []
        for name in sorted(names, key=lambda n: not n.lower().endswith((".jpg", ".jpeg"))):
            if name.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                return f"http://{config.server.listen}{build_url(config, name, width=400)}"
    return None


async def _run(config: Config) -> int:
    prefix = config.server.socket.parent / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    config.observability.access_log.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(nginx_config.standalone(config, prefix, user=invoking_user(), priority=nginx_priority()))
    stop = stop_event()
    loop = asyncio.get_running_loop()
    async with supervising(config):
        nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", "stderr",
                                  "-g", "daemon off;"], stdin=subprocess.DEVNULL)
        exited: asyncio.Future[object] = loop.run_in_executor(None, nginx.wait)
        stopped: asyncio.Future[object] = loop.create_task(stop.wait())
        done, _ = await asyncio.wait({exited, stopped}, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
        if exited in done or nginx.poll() is not None:
            log("nginx_failed", returncode=nginx.returncode, config=str(conf))
            stopped.cancel()
            return 1
        url = example_url(config)
        print(f"resize-sidecar is serving on http://{config.server.listen} (nginx config: {conf})", flush=True)
        if url:
            print(f"try: {url}", flush=True)
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                await asyncio.wait_for(exited, NGINX_START_TIMEOUT)
            except TimeoutError:
                nginx.kill()
            return 0
        log("nginx_exited", returncode=nginx.returncode)
        return 1


def run(config: Config) -> int:
    if not config.urls.signed:
        print("warning: no SIDECAR_SIGNING_KEYS set: serving unsigned URLs, so anyone can ask for any size",
              file=sys.stderr)
    # Sources are read in the worker processes, which exit past stuck reads themselves (`sidecar.server.worker`).
    return uvloop.run(_run(config))
