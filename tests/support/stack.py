"""A real stack: nginx on a loopback port in front of one sidecar process, both started from the config
the project renders; and a front nginx spreading requests over several stacks."""
from __future__ import annotations

import ctypes
import http.client
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from sidecar import config as config_module
from sidecar.builder import build_url
from sidecar.config import Config
from sidecar.render import nginx as nginx_config
from sidecar.url.grammar import cache_name
from tests.support.paths import REPO
from tests.support.processes import (
    children,
    free_port,
    remove_tempdir,
    wait_for,
    world_readable_tempdir,
)

#: How long a request, a start or a stop may take before the stack calls it hung. Not a measure of speed:
#: a loaded 2-core machine can make a big miss take a minute; pytest-timeout bounds the whole test.
HANG = 120.0
SIGNING_KEY = "test-signing-key-0123456789"
PURGE_TOKEN = "test-purge-token-0123456789"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def image(self) -> Image.Image:
        image = Image.open(io.BytesIO(self.body))
        image.load()
        return image


@dataclass
class Scrape:
    """A Prometheus text exposition, parsed with prometheus-client's own parser."""

    text: str

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(self.text)
                for s in family.samples]

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples()}

    def value(self, name: str, **labels: str) -> float:
        return sum(value for sample, found, value in self.samples()
                   if sample == name and all(found.get(k) == v for k, v in labels.items()))


@dataclass
class Stack:
    """nginx on a loopback port in front of one sidecar process, both started from rendered config."""

    config: Config
    root: Path
    port: int
    env: dict[str, str]
    sidecar_limits: dict[int, tuple[int, int]] = field(default_factory=dict)
    listen_socket: socket.socket | None = None  # handed over as systemd does (LISTEN_FDS), if set
    drop_dac: bool = False  # as root: run the sidecar without root's power to read any file
    site_conf: str | None = None  # what nginx serves; default: the config's own site (nginx_config.site)
    socket_activated: bool = False  # systemd-socket-activate binds the socket; the first connection starts us
    sidecar: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None

    def cache_file(self, path: str) -> Path:
        """Where the rendition of the canonical URL path `path` (as sent) is cached."""
        return self.config.cache.cache_dir / cache_name(path.split("?", 1)[0]).lstrip("/")

    @property
    def log_path(self) -> Path:
        return self.root / "sidecar.log"

    def url(self, key: str, **ops: Any) -> str:
        return build_url(self.config, key, **ops)

    def get(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            timeout: float = HANG) -> Reply:
        """A raw request: the path is sent exactly as given (no normalisation, unlike curl or urllib)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def admin(self, method: str, path: str, token: str | None = PURGE_TOKEN) -> Reply:
        """The application's API (`/_sidecar/...`) through nginx."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.get("/_sidecar" + path, method=method, headers=headers)

    def scrape(self, source: str = "127.0.0.1") -> Scrape:
        """`/metrics` through nginx, from the loopback address `source` (allowed by default)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 200, (response.status, body)
        return Scrape(body.decode())

    def metric(self, name: str, **labels: str) -> float:
        """One value of a fresh scrape: the sum of the samples of `name` that have these labels."""
        return self.scrape().value(name, **labels)

    def access_log(self) -> list[dict[str, object]]:
        """nginx's JSON access log lines so far (nginx flushes its buffer every second)."""
        path = self.config.observability.access_log
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes, from /proc."""
        assert self.sidecar is not None
        return children(self.sidecar.pid)

    def sidecar_requests(self) -> list[dict[str, object]]:
        """Every request the sidecar has logged (JSON lines on its stderr)."""
        return self.sidecar_events("request")

    def sidecar_events(self, event: str) -> list[dict[str, object]]:
        """Every record of one kind the sidecar has logged."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r.get("event") == event]

    def sidecar_fds(self) -> int:
        """How many file descriptors the sidecar's processes (supervisor and workers) hold now."""
        assert self.sidecar is not None
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in [self.sidecar.pid, *self.worker_pids()])

    def start_sidecar(self) -> None:
        ready_before = len(self.sidecar_events("worker_ready"))
        limits, drop_dac = dict(self.sidecar_limits), self.drop_dac and os.geteuid() == 0
        inherited = self.listen_socket.fileno() if self.listen_socket is not None else None

        def before_exec() -> None:
            for which, value in limits.items():
                resource.setrlimit(which, value)
            if drop_dac:
                # Out of the bounding set, CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2) are gone after
                # exec: file modes then apply to this root process too (PR_CAPBSET_DROP is 24).
                libc = ctypes.CDLL(None, use_errno=True)
                for capability in (1, 2):
                    if libc.prctl(24, capability, 0, 0, 0) != 0:
                        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
            if inherited is not None:
                os.dup2(inherited, 3)  # systemd's first socket

        command = [sys.executable, "-m", "sidecar", "serve", "--config", str(self.root / "sidecar.toml")]
        env = dict(self.env)
        if inherited is not None:
            # LISTEN_PID must be the sidecar's own pid: sh knows it ($$) and exec keeps it.
            command = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *command]
            env["LISTEN_FDS"] = "1"
        elif self.socket_activated:
            # systemd's own tool: it binds, waits for a connection, then execs the service with LISTEN_FDS=1
            # and LISTEN_PID=its own pid (exec keeps the pid). -E NAME passes our variables on.
            command = ["systemd-socket-activate", "-l", str(self.config.server.socket), *(f"-E{name}" for name in env),
                       *command]
        with open(self.log_path, "ab") as log:
            sidecar = self.sidecar = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, cwd=REPO,
                preexec_fn=before_exec if limits or drop_dac or inherited is not None else None,
                pass_fds=(3,) if inherited is not None else (),
            )
        if self.socket_activated:  # nothing runs before the first connection: only the socket is there
            wait_for(lambda: self.config.server.socket.exists() or sidecar.poll() is not None, HANG, "the socket")
            # SocketMode=: nginx's workers are nobody.
            os.chmod(self.config.server.socket, self.config.server.socket_mode)
        else:
            workers = self.config.worker_processes
            wait_for(lambda: len(self.sidecar_events("worker_ready")) >= ready_before + workers
                     or sidecar.poll() is not None, HANG, "every worker to listen")
        if sidecar.poll() is not None:
            raise RuntimeError(f"sidecar exited: {self.log_path.read_text()}")

    def stop_sidecar(self) -> None:
        if self.sidecar is not None and self.sidecar.poll() is None:
            self.sidecar.send_signal(signal.SIGTERM)
            self.sidecar.wait(HANG)
        self.sidecar = None

    def start_nginx(self) -> None:
        prefix = self.root / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_config.standalone(self.config, prefix, user=None, error_level="info",
                                                site_conf=self.site_conf))
        nginx = self.nginx = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

        def listening() -> bool:
            if nginx.poll() is not None:
                raise RuntimeError((prefix / "error.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(listening, HANG, "nginx")

    def stop_nginx(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(HANG)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        self.nginx = None

    def stop(self) -> None:
        self.stop_sidecar()
        self.stop_nginx()

    def close(self) -> None:
        """Stop both processes and remove the stack's directory (its cache, logs and config)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class StackOptions(TypedDict, total=False):
    """make_stack's keywords. signed (default true): signing keys set, unsigned URLs refused; extra: more
    TOML; limits: rlimits for the sidecar; env: added to the sidecar's environment (AWS_* for S3 sources);
    drop_dac: as root, run without the power to read any file; cache_dir: instead of one in the stack's
    directory; socket_activated: systemd-socket-activate binds the socket and starts the sidecar."""

    signed: bool
    extra: str
    limits: dict[int, tuple[int, int]]
    env: dict[str, str]
    drop_dac: bool
    cache_dir: Path
    socket_activated: bool


def make_stack(sources: Sequence[Path | str], **options: Unpack[StackOptions]) -> Stack:
    """A running stack. `sources` are directories or source URLs; `options` as StackOptions says."""
    signed, extra, env = options.get("signed", True), options.get("extra", ""), options.get("env", {})
    drop_dac, cache_dir = options.get("drop_dac", False), options.get("cache_dir")
    root, port = world_readable_tempdir(), free_port()
    sidecar_env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR_", "AWS_"))}
    sidecar_env["SIDECAR_PURGE_TOKEN"] = PURGE_TOKEN
    sidecar_env.update(env)
    if signed:
        sidecar_env["SIDECAR_SIGNING_KEYS"] = SIGNING_KEY
    try:  # a config the sidecar refuses (some tests want that) must not leave the directory behind
        config = write_config(root, port, sidecar_env, f'sources = {json.dumps([str(s) for s in sources])}\n'
                              f"allow_unsigned = {'false' if signed else 'true'}\n" + extra, cache_dir=cache_dir)
    except BaseException:
        remove_tempdir(root)
        raise
    stack = Stack(config, root, port, sidecar_env, sidecar_limits=options.get("limits", {}), drop_dac=drop_dac,
                  socket_activated=options.get("socket_activated", False))
    try:
        stack.start_sidecar()
        stack.start_nginx()
    except BaseException:
        stack.close()
        raise
    return stack


def write_config(root: Path, port: int, env: dict[str, str], extra: str, cache_dir: Path | None = None) -> Config:
    """`root/sidecar.toml` for a stack listening on `port`, loaded as the sidecar will load it."""
    toml = root / "sidecar.toml"
    toml.write_text(
        f'cache_dir = "{cache_dir or root / "cache"}"\n'
        f'socket = "{root / "s.sock"}"\n'
        f'access_log = "{root / "access.log"}"\n'
        f'metrics_dir = "{root / "metrics"}"\n'
        'socket_mode = "0666"\n'  # as root (CI), nginx's workers are nobody
        f'listen = "127.0.0.1:{port}"\n'
        'nginx_workers = "1"\n'
        # Tests send everything from one address as fast as they can: that is not a client to hold to
        # a share. tests/e2e/test_miss_limit.py sets its own.
        + ("" if "miss_rate" in extra else "miss_rate = 0\n") + extra
    )
    return config_module.load(toml, env=env)


def make_front(nodes: list[Stack]) -> Stack:
    """A front nginx (no sidecar, no cache) spreading requests over `nodes` by consistent hashing."""
    root, port = world_readable_tempdir(), free_port()
    env = dict(nodes[0].env)  # the same signing keys: the front builds the same URLs
    try:
        config = write_config(root, port, env, "")
    except BaseException:
        remove_tempdir(root)
        raise
    front = Stack(config, root, port, env,
                  site_conf=nginx_config.front(config, [f"127.0.0.1:{node.port}" for node in nodes]))
    try:
        front.start_nginx()
    except BaseException:
        front.close()
        raise
    return front


class Stacks:
    """The stacks one test starts (the `stack_factory` fixture), and the source directories it makes for
    them (`directory()`): each closed or removed when the test ends, passed or failed."""

    def __init__(self) -> None:
        self.started: list[Stack] = []
        self.directories: list[Path] = []

    def __call__(self, sources: Sequence[Path | str], **options: Unpack[StackOptions]) -> Stack:
        self.started.append(make_stack(sources, **options))
        return self.started[-1]

    def directory(self) -> Path:
        """A new world-readable directory (for originals, a fallback image), removed after the test."""
        self.directories.append(world_readable_tempdir())
        return self.directories[-1]

    def close(self) -> None:
        try:
            for stack in self.started:
                stack.close()
        finally:
            for path in self.directories:
                remove_tempdir(path)
