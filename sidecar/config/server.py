"""The `server` section: where nginx and the sidecar meet (the Unix socket, nginx's listener and workers,
and the per-client limit nginx puts on misses before they reach the sidecar)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sidecar.config.fields import ENV_PREFIX, Where, networks, require, setting

SOCKET_INSTANCE = "{instance}"
MAX_SOCKET_PATH = 107  # bytes: Linux's sun_path holds 108, the terminating NUL included


@dataclass(frozen=True)
class ServerSection:
    """Where nginx and the sidecar meet: the Unix socket, nginx's listener and its worker count."""

    socket: Path = setting(Path("var/run/sidecar.sock"), "the sidecar's Unix socket (at most 107 bytes); "
                           "`{instance}` in it becomes `instance`")
    socket_mode: int = setting(0o660, "its mode (octal); nginx's workers must be able to connect", octal=True)
    instance: str = setting("", "this process's name, for `{instance}` in `socket` (made file-safe: "
                            "`resize-sidecar/sidecar.0` becomes `resize-sidecar_sidecar.0`); Lithos sets it")
    listen: str = setting("127.0.0.1:8080", "nginx's listener", flag="--listen")
    nginx_workers: str = setting("auto", "nginx `worker_processes` (for `run`)")
    miss_rate: float = setting(10.0, "new renditions (misses) per second each client may ask for at nginx, "
                               "beyond `miss_burst`; then 429 with Retry-After. Hits are never limited. 0 turns "
                               "the limit off; below 1, nginx counts per minute (0.5 is 30 a minute)")
    miss_burst: int = setting(100, "misses a client may make at once beyond `miss_rate` (a page of new thumbnails)")
    trusted_proxies: tuple[str, ...] = setting((), "addresses or networks of the proxies in front of nginx (load "
                                               "balancer, CDN): from them, the client `miss_rate` counts is the last "
                                               "address of X-Forwarded-For; from anyone else the header is ignored")
    # Connection hygiene in the rendered nginx config (issue 21; docs/security.md, "Hostile clients").
    nginx_worker_connections: int = setting(0, "nginx `worker_connections` (for `run`; `worker_rlimit_nofile` "
                                            "is twice it); 0: half the machine's open-file limit, 1024 to 65536")
    nginx_limit_conn: int = setting(128, "requests in progress per client address (`limit_conn`, 429 beyond); "
                                    "0: no limit (behind a front or a CDN, or use nginx's realip module)")
    nginx_client_header_timeout: int = setting(10, "seconds a client has to send its whole request header")
    nginx_client_body_timeout: int = setting(10, "seconds between two reads of a request body")
    nginx_reset_timedout_connection: bool = setting(True, "reset timed-out connections instead of closing "
                                                    "them politely")

    def check(self, where: Where) -> None:
        require(0 <= self.socket_mode <= 0o777, where("socket_mode"), "must be a file mode such as 0660")
        require(is_host_port(self.listen), where("listen"), "must be HOST:PORT")
        require(SOCKET_INSTANCE not in str(self.socket) or bool(instance_name(self.instance)), where("socket"),
                f"has {SOCKET_INSTANCE} but no instance name is set ({ENV_PREFIX}INSTANCE)")
        require(self.nginx_workers == "auto" or self.nginx_workers.isdigit(), where("nginx_workers"),
                "must be auto or a number")
        require(self.miss_rate == 0 or 1 / 60 <= self.miss_rate <= 100_000, where("miss_rate"),
                "must be 0 (no limit) or 1/60 to 100000 misses per second per client")
        require(0 <= self.miss_burst <= 100_000, where("miss_burst"), "must be 0 to 100000")
        networks(self, where, "trusted_proxies")
        require(self.nginx_worker_connections == 0 or 64 <= self.nginx_worker_connections <= 1_048_576,
                where("nginx_worker_connections"), "must be 0 (sized to the machine) or 64 to 1048576")
        require(self.nginx_limit_conn >= 0, where("nginx_limit_conn"), "must be 0 or more")
        for key in ("nginx_client_header_timeout", "nginx_client_body_timeout"):
            require(1 <= getattr(self, key) <= 3600, where(key), "must be 1 to 3600 seconds")

    def pinned_socket(self, where: Where) -> Path:
        """`socket` with `{instance}` filled in, made absolute, and short enough for a Unix socket."""
        socket = Path(str(self.socket).replace(SOCKET_INSTANCE, instance_name(self.instance))).resolve()
        require(len(bytes(socket)) <= MAX_SOCKET_PATH, where("socket"),
                f"{socket} is longer than the {MAX_SOCKET_PATH} bytes a Unix socket path may have")
        return socket


def instance_name(raw: str) -> str:
    """A process's name made safe as a file name, for `{instance}` in `socket`.

    Lithos names instances `sandbox/process.N` (`resize-sidecar/sidecar.0`); the slash would make a
    directory, so every character outside letters, digits, `_`, `.` and `-` becomes `_`, and leading
    dots go (no hidden files): `resize-sidecar_sidecar.0`.
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw).lstrip(".")


def is_host_port(value: str) -> bool:
    """`HOST:PORT` as nginx's `listen` and `server` take it: an IPv4 address, [IPv6] or a name."""
    match = re.fullmatch(r"(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[a-z0-9.-]+):(\d{1,5})", value)
    return match is not None and 0 < int(match.group(3)) < 65536
