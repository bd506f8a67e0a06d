"""Production files checked by systemd's own tools, socket activation for real, the package as pip installs it."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar import config as config_module
from sidecar.render import units as deploy_config
from sidecar.server.listen import adopt
from tests.support.needs import missing
from tests.support.paths import REPO, SAMPLES
from tests.support.processes import wait_for
from tests.support.stack import HANG, make_stack

PRODUCTION = REPO / "deploy" / "sidecar.toml"
UNITS = REPO / "deploy" / "systemd"


@pytest.fixture
def systemd_root(tmp_path: Path) -> Path:
    """A root for `systemd-analyze --root`: the units installed, the command they run, systemd's own units."""
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze", "make install, or apt-get install systemd")
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for path in UNITS.iterdir():
        shutil.copy(path, units)
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/system").symlink_to("/lib/systemd/system")
    command = tmp_path / str(deploy_config.DEFAULT_EXECUTABLE).lstrip("/")
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")  # verify checks that ExecStart= names an executable
    command.chmod(0o755)
    return tmp_path


def test_units_pass_systemd_analyze_verify(systemd_root: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", f"--root={systemd_root}", "resize-sidecar.socket",
                             "resize-sidecar.service"], capture_output=True, text=True, timeout=HANG)
    # verify exits 0 on unknown keys and bad values, and only says so: any output is a finding.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_service_is_hardened(systemd_root: Path) -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={systemd_root}",
                             "--threshold=20", "resize-sidecar.service"], capture_output=True, text=True, timeout=HANG)
    level = re.search(r"Overall exposure level for resize-sidecar.service: ([\d.]+)", result.stdout)
    assert result.returncode == 0 and level, result
    print(f"\nsystemd-analyze security: exposure {level.group(1)} (0 = locked down, 10 = unprotected)")
    assert float(level.group(1)) <= 2.0


# Socket activation, as systemd does it.

def test_socket_activation_the_first_connection_starts_the_sidecar_on_systemds_socket() -> None:
    stack = make_stack([SAMPLES], socket_activated=True)
    try:
        assert stack.sidecar_events("listening") == []  # bound, not started: nothing has connected yet
        reply = stack.get(stack.url("road-1920x1080.jpg", width=160))
        assert reply.status == 200 and reply.image().size == (160, 90)
        [listening] = stack.sidecar_events("listening")
        assert listening["inherited"] is True and listening["socket"] == str(stack.config.server.socket)
        stack.stop_sidecar()
        # The socket is systemd's: it outlives the service, so the next start finds it where nginx looks.
        assert stack.config.server.socket.exists()
        assert stack.sidecar_events("stopped")
    finally:
        stack.close()


def test_socket_activation_refuses_a_socket_nginx_would_not_reach(shared_dir: Path) -> None:
    root = shared_dir
    elsewhere = root / "other.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SOCKET=str(root / "s.sock"), SIDECAR_SOURCES=str(SAMPLES), SIDECAR_ALLOW_UNSIGNED="1")
    process = subprocess.Popen(["systemd-socket-activate", "-l", str(elsewhere), *(f"-E{k}" for k in env),
                                sys.executable, "-m", "sidecar", "serve"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(elsewhere.exists, HANG, "systemd-socket-activate")
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(elsewhere))
        _, stderr = process.communicate(timeout=HANG)
        client.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(HANG)
    assert process.returncode == 2, stderr
    assert "socket:" in stderr and "ListenStream=" in stderr


def test_adopt_takes_one_listening_unix_socket_at_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with pytest.raises(config_module.ConfigError, match="exactly one"):
        adopt(2, path)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(config_module.ConfigError, match="not a listening Unix stream socket"):
        adopt(1, path, fd=udp.fileno())
    udp.close()
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(tmp_path / "other.sock"))
    other.listen()
    with pytest.raises(config_module.ConfigError, match="^socket: .*other.sock"):
        adopt(1, path, fd=other.fileno())
    other.close()
    good = socket.socket(socket.AF_UNIX)
    good.bind(str(path))
    good.listen()
    taken = adopt(1, path, fd=good.detach())
    assert taken.getsockname() == str(path) and not taken.get_inheritable() and not taken.getblocking()
    taken.close()


# The package, as `pip install .` makes it.

def test_wheel_installs_the_command_with_its_templates(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "README.md", "requirements.txt", "sidecar", "nginx", "samples", "deploy"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("resize_sidecar-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    metadata = next(target.glob("resize_sidecar-*.dist-info")) / "METADATA"
    lines = metadata.read_text().splitlines()
    requires = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist")]
    assert requires and all(re.search(r"<\d", r) for r in requires), requires  # every one bounded
    assert not any(re.match(r"(?i)pillow\b(?!-)", r) for r in requires)  # pillow-simd is built, never required

    env = {**os.environ, "PYTHONPATH": str(target), "SIDECAR_SOCKET": "/run/resize-sidecar/sidecar.sock"}
    command = target / "bin" / "resize-sidecar"

    def run(*args: str) -> str:
        result = subprocess.run([str(command), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=HANG)
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = subprocess.run([sys.executable, "-c", "import sidecar; print(sidecar.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target)), where  # the installed copy, not this checkout
    assert "server unix:/run/resize-sidecar/sidecar.sock;" in run("nginx-config")
    assert "hash $uri consistent;" in run("nginx-config", "--front", "127.0.0.1:8081")
    assert "ListenStream=/run/resize-sidecar/sidecar.sock" in run("deploy-config", "systemd-socket")
    assert "kind: Daemon" in run("deploy-config", "lithos")
    assert list((target / "sidecar" / "samples").glob("*.jpg")), "the samples did not ship"
