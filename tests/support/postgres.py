"""A real PostgreSQL server (Debian's package) and PgBouncer, on private ports and data directories.

Both refuse to run as root, so as root they run as the `postgres` user (`runuser`); otherwise as whoever
runs the tests. Debian's `postgresql` package puts the server's programs in /usr/lib/postgresql/N/bin.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.needs import missing

AS_ROOT = os.geteuid() == 0
RUN_AS = "postgres"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        missing(f"PostgreSQL's {name}", "make install, or apt-get install postgresql")
    return found[-1]


def _as_owner() -> dict[str, Any]:
    """Popen's arguments that drop root (the process itself then gets our signals, not a runuser)."""
    return {"user": RUN_AS, "group": RUN_AS, "extra_groups": []} if AS_ROOT else {}


def _own(path: Path) -> None:
    if AS_ROOT:
        shutil.chown(path, RUN_AS, RUN_AS)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


class Postgres:
    """initdb into `root/data`, then `postgres` on a loopback port; `stop` and `start` keep the data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        for path in (root, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
            _own(path)
        subprocess.run([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True, timeout=120, cwd=root, **_as_owner())
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = self.root / "postgres.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [_bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=out, stderr=out, cwd=self.root, **_as_owner())
        _wait(self.port, self.process, log, "postgres")
        deadline = time.monotonic() + 30
        while self.sql("select 1", check=False).returncode != 0:  # listening is not yet accepting
            if time.monotonic() > deadline:
                raise TimeoutError("postgres did not accept queries")
            time.sleep(0.05)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): connections are closed, the port refuses new ones."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)
        self.process = None

    def sql(self, statement: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                               "-v", "ON_ERROR_STOP=1", "-Atqc", statement],
                              capture_output=True, text=True, timeout=30, check=check)

    def value(self, statement: str) -> str:
        return self.sql(statement).stdout.strip()


class PgBouncer:
    """PgBouncer in transaction mode in front of `postgres`: the setup the resolver must work behind."""

    def __init__(self, root: Path, postgres: Postgres, pool_size: int = 20) -> None:
        self.binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(self.binary):
            missing("PgBouncer", "make install, or apt-get install pgbouncer")
        root.mkdir(parents=True, exist_ok=True)
        _own(root)
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        (root / "users.txt").write_text('"postgres" ""\n')
        self.ini = root / "pgbouncer.ini"
        self.ini.write_text(
            "[databases]\n"
            f"postgres = host=127.0.0.1 port={postgres.port} dbname=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root / 'users.txt'}\nadmin_users = postgres\nserver_login_retry = 1\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
            f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
        )
        for path in root.iterdir():
            _own(path)
        log = root / "pgbouncer.log"
        self.process = subprocess.Popen([self.binary, str(self.ini)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, cwd=root, **_as_owner())
        _wait(self.port, self.process, log, "pgbouncer")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # immediate shutdown; SIGINT waits for clients
            self.process.wait(30)
