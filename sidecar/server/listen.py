"""The listening socket: one systemd (or a look-alike) hands over, or one we bind at `config.server.socket`.

Socket activation follows sd_listen_fds(3): the sockets start at fd 3, `LISTEN_FDS` says how many and
`LISTEN_PID` whom they are for (a variable inherited by another process is not meant for it). The
variables are removed once read, as `sd_listen_fds(1)` does, so no child process takes them as its own.
A socket systemd handed over is systemd's: it stays where it is when we stop, so that the next start
(or the next connection) finds it. One we bound ourselves is removed, but only if it is still ours.
"""
from __future__ import annotations

import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from sidecar.config import Config, ConfigError

SD_LISTEN_FDS_START = 3
BACKLOG = 1024  # connections nginx may open before one is accepted; beyond that nginx sees EAGAIN (502)
#: The longest path an AF_UNIX socket can have on Linux (sun_path is 108 bytes, NUL included).
MAX_SOCKET_PATH = 107


@dataclass
class Listener:
    sock: socket.socket
    path: Path
    inherited: bool
    inode: int = 0  # of the socket file we bound, to remove only our own

    def close(self) -> None:
        """Close the socket; remove its file if we made it and nobody has replaced it since."""
        self.sock.close()
        if self.inherited:
            return
        try:
            if self.path.lstat().st_ino == self.inode:
                self.path.unlink()
        except FileNotFoundError:
            pass


def listen(config: Config, environ: MutableMapping[str, str] | None = None) -> Listener:
    """The socket to serve on: inherited when `LISTEN_PID` is this process, else bound at `config.server.socket`."""
    environ = os.environ if environ is None else environ
    count = inherited_count(environ, os.getpid())
    if count:
        return Listener(adopt(count, config.server.socket), config.server.socket, inherited=True)
    return bind(config)


def inherited_count(environ: MutableMapping[str, str], pid: int) -> int:
    """How many sockets were handed to process `pid` (0 if none, or if they were meant for another)."""
    if environ.get("LISTEN_PID") != str(pid):
        return 0
    raw = environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(name, None)
    if not raw.isdigit():
        raise ConfigError(f"LISTEN_FDS: expected a number of sockets, got {raw!r}")
    return int(raw)


def adopt(count: int, expected: Path, fd: int = SD_LISTEN_FDS_START) -> socket.socket:
    """Take over the listening socket at `fd`; refuse anything nginx's rendered config would not reach."""
    if count != 1:
        raise ConfigError(f"LISTEN_FDS: {count} sockets were passed; the sidecar takes exactly one "
                          "(one ListenStream= in the .socket unit)")
    sock = socket.socket(fileno=fd)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM \
            or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ConfigError(f"LISTEN_FDS: fd {fd} is not a listening Unix stream socket "
                          "(use ListenStream=/path/to/socket)")
    name = sock.getsockname()
    if name != str(expected):
        sock.detach()
        # nginx-config renders `socket`: a different path here would leave nginx knocking on the wrong door.
        raise ConfigError(f"socket: the inherited socket is {name!r} but the config says {str(expected)!r}; "
                          "make them the same (ListenStream= and socket)")
    sock.set_inheritable(False)
    sock.setblocking(False)
    return sock


def bind(config: Config) -> Listener:
    """Bind a fresh socket at `config.server.socket`, replacing a stale one left by a process that died."""
    path = config.server.socket
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"socket: {path} exists and is not a socket; refusing to remove it")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, config.server.socket_mode)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return Listener(sock, path, inherited=False, inode=path.lstat().st_ino)
