"""nginx's config, rendered from the sidecar's config: the two never disagree on a path or prefix.

Templates (`nginx/*.conf`) use `{{ name }}` placeholders only; any logic stays here in Python.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .config import Config
from .handler import HEALTH_PATH, INTERNAL_PREFIX
from .resources import nginx_template, render

UPSTREAM = "resize_sidecar"
FRONT_UPSTREAM = "resize_sidecar_nodes"
#: Seconds nginx waits beyond the sidecar's own deadline: the deadline does not cover the cache write,
#: and nginx must never answer for the sidecar (its 504 would hide the sidecar's reason).
WRITE_MARGIN = 30
#: Seconds a front waits beyond a node's own read timeout, so the node's answer always arrives first.
FRONT_MARGIN = 5
FRONT_CONNECT_TIMEOUT = 1  # seconds; a live node on the LAN accepts in well under a millisecond
FRONT_FAIL_TIMEOUT = 10  # seconds a node that failed once is skipped before the front tries it again


def read_timeout(config: Config) -> int:
    """nginx's proxy_read_timeout towards the sidecar, in seconds."""
    return math.ceil(config.request_deadline) + WRITE_MARGIN


def site(config: Config, *, upstream_include: Path | None = None) -> str:
    """The upstream and server blocks, for the http {} block of a production nginx.

    With `upstream_include`, the upstream's servers come from that file (an orchestrator such as
    Verwalter renders it: one `server unix:...;` line per sidecar it runs) instead of `config.socket`.
    """
    servers = (f"include {upstream_include};" if upstream_include is not None
               else f"server unix:{config.socket};")
    return render(
        nginx_template("sidecar.conf"),
        upstream=UPSTREAM, servers=f"    {servers}", listen=config.listen, url_prefix=config.url_prefix,
        internal_prefix=INTERNAL_PREFIX, cache_dir=config.cache_dir, max_age=config.max_age,
        read_timeout=read_timeout(config), health_path=HEALTH_PATH, internal_allow=allow(config.internal_networks),
    )


def allow(networks: Sequence[str]) -> str:
    """nginx access rules letting `networks` in and nobody else."""
    return "\n".join([*(f"        allow {network};" for network in networks), "        deny all;"])


def front(config: Config, nodes: Sequence[str]) -> str:
    """A front nginx's upstream and server blocks: consistent hashing over cache nodes (`HOST:PORT`).

    Every node runs `site` (its own nginx, sidecar and cache) with the same `url_prefix` and timeouts.
    """
    if not nodes:
        raise ValueError("a front needs at least one node")
    servers = "\n".join(f"    server {node} max_fails=1 fail_timeout={FRONT_FAIL_TIMEOUT}s;" for node in nodes)
    return render(
        nginx_template("front.conf"),
        upstream=FRONT_UPSTREAM, servers=servers, listen=config.listen, url_prefix=config.url_prefix,
        tries=len(nodes), connect_timeout=FRONT_CONNECT_TIMEOUT,
        read_timeout=read_timeout(config) + FRONT_MARGIN,
    )


def standalone(config: Config, prefix: Path, *, user: str | None, access_log: str = "off",
               error_level: str = "warn", site_conf: str | None = None) -> str:
    """A whole nginx.conf around `site_conf` (default: `site(config)`), with every path under `prefix`
    (which must exist)."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    body = site(config) if site_conf is None else site_conf
    indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return render(
        nginx_template("standalone.conf"),
        user=f"user {user};" if user else "# user: nginx runs as whoever starts it",
        workers=config.nginx_workers, prefix=prefix, error_level=error_level, access_log=access_log,
        site=indented,
    )
