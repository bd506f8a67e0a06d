"""nginx's config, rendered from the sidecar's config: the two never disagree on a path or prefix.

Templates (`nginx/*.conf`) use `{{ name }}` placeholders only; any logic stays here in Python.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from .accesslog import log_format
from .config import Config
from .handler import ADMIN_PREFIX, INTERNAL_PREFIX
from .resources import nginx_template

UPSTREAM = "resize_sidecar"
#: Seconds nginx waits beyond the sidecar's own deadline: the deadline does not cover the cache write,
#: and nginx must never answer for the sidecar (its 504 would hide the sidecar's reason).
WRITE_MARGIN = 30


def render(template: str, **values: object) -> str:
    """Fill `{{ name }}` placeholders; a placeholder without a value is an error, not an empty string."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template needs a value for {name!r}")
        return str(values[name])

    return re.sub(r"\{\{ (\w+) \}\}", fill, template)


def site(config: Config) -> str:
    """The upstream and server blocks, for the http {} block of a production nginx."""
    return render(
        nginx_template("sidecar.conf"),
        upstream=UPSTREAM, socket=config.socket, listen=config.listen, url_prefix=config.url_prefix,
        internal_prefix=INTERNAL_PREFIX, cache_dir=config.cache_dir, max_age=config.max_age,
        admin_prefix=ADMIN_PREFIX, read_timeout=math.ceil(config.request_deadline) + WRITE_MARGIN,
        open_file_cache=open_file_cache(config.open_file_cache_valid),
        access_log=config.access_log, log_format=log_format(f"${UPSTREAM}_cache"),
        metrics_allow="\n".join(f"        allow {network};" for network in config.metrics_allow)
        or "        # metrics_allow is empty: nobody",
    )


def open_file_cache(valid: int) -> str:
    """nginx's cache of open files: fewer syscalls per hit, but a removed file may be served for up to
    `valid` seconds, so purges take effect within that. 0 turns it off."""
    if not valid:
        return "    open_file_cache off;"
    return "\n".join(f"    {line}" for line in (
        "open_file_cache max=10000 inactive=30s;",
        f"open_file_cache_valid {valid}s;",
        "open_file_cache_errors off;  # a miss must reach the sidecar every time, never a cached ENOENT",
    ))


def standalone(config: Config, prefix: Path, *, user: str | None, error_level: str = "warn",
               priority: int = 0) -> str:
    """A whole nginx.conf around `site`, with every path under `prefix` (which must exist). A negative
    `priority` (root only) lets nginx's workers, which serve the hits, go before the transforms."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    indented = "\n".join(f"    {line}" if line else "" for line in site(config).splitlines())
    return render(
        nginx_template("standalone.conf"),
        user=f"user {user};" if user else "# user: nginx runs as whoever starts it",
        priority=f"worker_priority {priority};" if priority else "# worker_priority: the default",
        workers=config.nginx_workers, prefix=prefix, error_level=error_level, site=indented,
    )
