"""nginx's config, rendered from the sidecar's config: the two never disagree on a path or prefix.

Templates (`nginx/*.conf`) use `{{ name }}` placeholders only; any logic stays here in Python.
"""
from __future__ import annotations

import math
import resource
from collections.abc import Sequence
from pathlib import Path

from sidecar.config import Config
from sidecar.observe.accesslog import log_format
from sidecar.resources import nginx_template, render
from sidecar.url.paths import ADMIN_PREFIX, HINT_HEADERS, INTERNAL_PREFIX
from sidecar.url.routes import NGINX_IDENTITY, ROUTES_DIR, Route
from sidecar.url.variants import Hint

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
    return math.ceil(config.processes.request_deadline) + WRITE_MARGIN


def site(config: Config, *, upstream_include: Path | None = None) -> str:
    """The upstream and server blocks, for the http {} block of a production nginx.

    With `upstream_include`, the upstream's servers come from that file (an orchestrator such as
    Verwalter renders it: one `server unix:...;` line per sidecar it runs) instead of `config.server.socket`.
    """
    servers = (f"include {upstream_include};" if upstream_include is not None
               else f"server unix:{config.server.socket};")
    return render(
        nginx_template("sidecar.conf"),
        upstream=UPSTREAM, servers=f"    {servers}", listen=config.server.listen, url_prefix=config.urls.url_prefix,
        internal_prefix=INTERNAL_PREFIX, cache_dir=config.cache.cache_dir, max_age=config.cache.max_age,
        admin_prefix=ADMIN_PREFIX, read_timeout=read_timeout(config),
        open_file_cache=open_file_cache(config.cache.open_file_cache_valid),
        route_maps=route_maps(config), route_locations=route_locations(config),
        access_log=config.observability.access_log, log_format=log_format(f"${UPSTREAM}_cache"),
        hit_log_format=log_format(f"${UPSTREAM}_hit", request_id="-"),
        metrics_allow="\n".join(f"        allow {network};" for network in config.observability.metrics_allow)
        or "        # metrics_allow is empty: nobody",
        width_hints=_hint_map([(_integer_at_most(w), Hint(width=w).suffix) for w in config.urls.client_hints_widths],
                              r"[0-9]+"),
        dpr_hints=_hint_map([(_decimal_at_most(d), Hint(dpr=d).suffix) for d in config.urls.client_hints_dprs],
                            r"[0-9]*\.?[0-9]+"),
        no_hint=Hint(dpr=config.urls.client_hints_dprs[0]).suffix,
        hint_vary=", ".join(HINT_HEADERS), accept_ch=", ".join(HINT_HEADERS),
        **miss_limit(config),
        connection_zone=connection_zone(config), connection_limits=connection_limits(config),
    )


# -- The per-client limit on misses (issue 16) --------------------------------------------------------
# Only requests that reach the sidecar's named location are counted: hits are served by try_files
# before it, so they are never limited. Past its burst, a client gets 429 with Retry-After from nginx,
# and the access log marks the line `"cache":"limited"` for the metrics.
MISS_ZONE = f"{UPSTREAM}_misses"
MISS_ZONE_SIZE = "10m"  # about 80,000 clients (IPv6 keys); the least recently seen go first when full


def miss_limit(config: Config) -> dict[str, str]:
    """The template's three pieces: the zone (http level), the limit (in the sidecar's location) and
    the named location that answers 429. All comments when `miss_rate` is 0."""
    server = config.server
    if not server.miss_rate:
        off = "# miss_rate = 0: no per-client limit on misses"
        return {"miss_limit_zone": off, "miss_limit": f"        {off}", "miss_limited_location": ""}
    key = "$binary_remote_addr"
    zone: list[str] = []
    if server.trusted_proxies:
        key = f"${UPSTREAM}_miss_client"
        zone += [f"geo ${UPSTREAM}_trusted_proxy {{", "    default 0;",
                 *(f"    {network} 1;" for network in server.trusted_proxies), "}",
                 "# From a trusted proxy, the client is the last address of X-Forwarded-For (the one the proxy",
                 "# added); anything before it is what the client claimed, and is ignored.",
                 f'map "${UPSTREAM}_trusted_proxy:$http_x_forwarded_for" {key} {{',
                 "    default $binary_remote_addr;",
                 r'    "~^1:(.*,)?\s*(?<rs_forwarded_client>[^,\s]+)\s*$" $rs_forwarded_client;', "}"]
    zone.append(f"limit_req_zone {key} zone={MISS_ZONE}:{MISS_ZONE_SIZE} rate={_nginx_rate(server.miss_rate)};")
    limit = [f"limit_req zone={MISS_ZONE} burst={server.miss_burst} nodelay;", "limit_req_status 429;",
             "limit_req_log_level warn;", f"error_page 429 = @{UPSTREAM}_limited;"]
    limited = [f"    location @{UPSTREAM}_limited {{", "        default_type text/plain;",
               f"        add_header Retry-After {retry_after(server.miss_rate)} always;",
               '        add_header Cache-Control "no-store" always;',
               '        return 429 "too many new renditions from this client: retry later\\n";', "    }"]
    return {"miss_limit_zone": "\n".join(zone),
            "miss_limit": "\n".join(f"        {line}" for line in
                                    ["# Per-client limit on misses (miss_rate, miss_burst):", *limit]),
            "miss_limited_location": "\n".join(limited)}


def retry_after(rate: float) -> int:
    """Seconds until a client over its limit may make one more miss."""
    return max(1, math.ceil(1 / rate))


def _nginx_rate(rate: float) -> str:
    """nginx takes whole requests per second or per minute."""
    return f"{int(rate)}r/s" if rate >= 1 and rate == int(rate) else f"{round(rate * 60)}r/m"


def front(config: Config, nodes: Sequence[str]) -> str:
    """A front nginx's upstream and server blocks: consistent hashing over cache nodes (`HOST:PORT`).

    Every node runs `site` (its own nginx, sidecar and cache) with the same `url_prefix` and timeouts.
    """
    if not nodes:
        raise ValueError("a front needs at least one node")
    servers = "\n".join(f"    server {node} max_fails=1 fail_timeout={FRONT_FAIL_TIMEOUT}s;" for node in nodes)
    routes = "\n".join(f'    location ~ "{route.regex(nginx=True)}" {{  # route {route.name}\n'
                       f"        proxy_pass http://{FRONT_UPSTREAM};\n    }}" for route in config.urls.routes.values())
    return render(
        nginx_template("front.conf"),
        upstream=FRONT_UPSTREAM, servers=servers, listen=config.server.listen, url_prefix=config.urls.url_prefix,
        tries=len(nodes), connect_timeout=FRONT_CONNECT_TIMEOUT,
        read_timeout=read_timeout(config) + FRONT_MARGIN, route_locations=routes or "    # routes: none",
    )


#: The id shard of `sidecar.url.routes.id_shard`: the last four characters, `_`-padded, last two first.
_SHARD_MAP = (
    ('"~(..)(..)$"', "$2/$1"),
    ('"~^(.)(..)$"', "$2/_$1"),
    ('"~^(..)$"', "$1/__"),
    ('"~^(.)$"', "_$1/__"),
)


def route_maps(config: Config) -> str:
    """The path a route's link is looked up by, and the id shard, computed by nginx from the ID a route's
    location captured (none without routes)."""
    if not config.urls.routes:
        return "# routes: none"
    # What the sidecar refuses (empty or dot segments, %2e included) must never find a link through
    # nginx's normalised $uri either: such a URL would answer 404 before the link exists and 200 after.
    lines = [f"map $request_uri ${UPSTREAM}_route_uri {{", "    default $uri;",
             '    "~*^[^?]*(//|/\\.|/%2e)" "/.not-canonical";', "}"]
    if any(route.by_id for route in config.urls.routes.values()):
        lines += [f"map ${NGINX_IDENTITY} ${NGINX_IDENTITY}_shard {{"]
        lines += [f"    {regex:<16} {value};" for regex, value in _SHARD_MAP]
        lines += ["}"]
    return "\n".join(lines)


def route_locations(config: Config) -> str:
    """One regex location per route: a hit is the link that the sidecar left at the route's first miss."""
    if not config.urls.routes:
        return "    # routes: none"
    blocks = ['    location ~ "/\\." {  # no dot-named file in a route\'s links, as for renditions',
              "        return 404;", "    }"]
    for route in config.urls.routes.values():
        blocks += [f"    # route {route.name}: {route.pattern}", *_route_location(config, route)]
    return "\n".join(blocks)


def _route_location(config: Config, route: Route) -> list[str]:
    links = f"/{ROUTES_DIR}/{route.name}"
    if route.by_id:
        links += f"/${NGINX_IDENTITY}_shard/${NGINX_IDENTITY}"
    return [
        f'    location ~ "{route.regex(nginx=True)}" {{',
        f"        root {config.cache.cache_dir};",
        "        types { image/jpeg jpg jpeg; image/png png; image/gif gif; image/webp webp; image/avif avif; "
        "image/jxl jxl; }",
        "        default_type application/octet-stream;",
        f'        add_header Cache-Control "public, max-age={config.cache.max_age}, immutable";',
        f"        try_files {links}${UPSTREAM}_route_uri @{UPSTREAM};",
        "    }",
    ]


# Connection hygiene (issue 21): what one client may hold of nginx. Kept apart from the hit path's tuning
# and from per-client request rates, which have their own blocks.
MAX_AUTO_CONNECTIONS = 65536


def connection_zone(config: Config) -> str:
    """The http-level shared zone that counts each client address's requests in progress."""
    if not config.server.nginx_limit_conn:
        return "# nginx_limit_conn = 0: no per-client connection limit"
    return f"limit_conn_zone $binary_remote_addr zone={UPSTREAM}_conn:10m;  # about 160,000 addresses"


def connection_limits(config: Config) -> str:
    """Server-level limits: header and body timeouts, resets, requests in progress per client address."""
    lines = [
        (f"client_header_timeout {config.server.nginx_client_header_timeout}s;"
         "  # the whole header, however slowly it trickles"),
        f"client_body_timeout {config.server.nginx_client_body_timeout}s;",
        (f"reset_timedout_connection {'on' if config.server.nginx_reset_timedout_connection else 'off'};"
         "  # no FIN_WAIT for a client that stopped reading"),
    ]
    if config.server.nginx_limit_conn:
        lines += [f"limit_conn {UPSTREAM}_conn {config.server.nginx_limit_conn};"
                  "  # behind a front or a CDN: 0, or real_ip",
                  "limit_conn_status 429;"]
    return "\n".join(f"    {line}" for line in lines)


def worker_connections(config: Config) -> int:
    """`nginx_worker_connections`, or sized to the machine: half its hard open-file limit (a proxied miss
    holds two descriptors), from 1024 to `MAX_AUTO_CONNECTIONS`."""
    if config.server.nginx_worker_connections:
        return config.server.nginx_worker_connections
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = MAX_AUTO_CONNECTIONS * 2 if hard == resource.RLIM_INFINITY else hard
    return max(1024, min(MAX_AUTO_CONNECTIONS, hard // 2))


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


def _hint_map(buckets: list[tuple[str, str]], number: str) -> str:
    """The body of a map from a hint's value to the smallest bucket that is at least as large (the largest
    bucket for anything above). nginx tries regexes in order, so "at most b" in increasing b is enough."""
    lines = ['default "";']
    lines += [f'"~^0*({pattern})$" {suffix};' for pattern, suffix in buckets]
    lines.append(f'"~^{number}$" {buckets[-1][1]};')
    return "\n    ".join(lines)


def _integer_at_most(limit: int) -> str:
    """A regex (no anchors) for the integers 0 to `limit` written without leading zeros."""
    digits = str(limit)
    if len(digits) == 1:
        return f"[0-{digits}]"
    options = ["[0-9]"] + [f"[1-9]{_any_digits(n - 1)}" for n in range(2, len(digits))]
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            options.append(f"{digits[:i]}[{low}-{int(digit) - 1}]{_any_digits(len(digits) - i - 1)}")
    options.append(digits)
    return "|".join(options)


def _any_digits(count: int) -> str:
    return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _decimal_at_most(limit: float) -> str:
    """A regex (no anchors) for decimals from 0 to `limit` (which has one decimal at most): `2`, `1.5`,
    `2.625`, `3.0`."""
    whole, tenth = divmod(round(limit * 10), 10)
    options = [f"({_integer_at_most(whole - 1)})(\\.[0-9]*)?"] if whole else []
    if tenth:
        options.append(f"{whole}(\\.([0-{tenth - 1}][0-9]*|{tenth}0*)?)?")
    else:
        options.append(f"{whole}(\\.0*)?")
    return "|".join(options)


def standalone(config: Config, prefix: Path, *, user: str | None, error_level: str = "warn",
               priority: int = 0, site_conf: str | None = None) -> str:
    """A whole nginx.conf around `site_conf` (default: `site(config)`), with every path under `prefix`
    (which must exist). A negative `priority` (root only) lets nginx's workers, which serve the hits, go
    before the transforms."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    body = site(config) if site_conf is None else site_conf
    indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return render(
        nginx_template("standalone.conf"),
        user=f"user {user};" if user else "# user: nginx runs as whoever starts it",
        priority=f"worker_priority {priority};" if priority else "# worker_priority: the default",
        workers=config.server.nginx_workers, prefix=prefix, error_level=error_level, site=indented,
        worker_connections=worker_connections(config), worker_rlimit_nofile=2 * worker_connections(config),
    )
