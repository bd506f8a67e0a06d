"""Production files: the systemd units and the Lithos container config, rendered from deploy/sidecar.toml,
checked by systemd's own tools and by Lithos's rules; socket activation for real; the package as pip
installs it."""
from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import lithos_schema
import pytest
from conftest import REPO, SAMPLES, make_stack, wait_for, world_readable_tempdir

from sidecar import config as config_module
from sidecar.observe.memory import WORKER_BASE_BYTES
from sidecar.render import units as deploy_config
from sidecar.server.listen import adopt, inherited_count

PRODUCTION = REPO / "deploy" / "sidecar.toml"
UNITS = REPO / "deploy" / "systemd"
LITHOS = REPO / "lithos.yaml"


@pytest.fixture(scope="module")
def production() -> config_module.Config:
    return config_module.load(PRODUCTION, env={})


def test_files_in_the_repo_are_what_deploy_config_renders(production: config_module.Config) -> None:
    rendered = {UNITS / "resize-sidecar.service": deploy_config.systemd_service(production),
                UNITS / "resize-sidecar.socket": deploy_config.systemd_socket(production),
                LITHOS: deploy_config.lithos(production)}
    stale = [str(path.relative_to(REPO)) for path, text in rendered.items() if path.read_text() != text]
    assert not stale, f"{stale} differ from deploy/sidecar.toml: run `make deploy-files`"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text())
    return parser


def test_units_say_what_the_config_says(production: config_module.Config) -> None:
    service, sock = unit(UNITS / "resize-sidecar.service")["Service"], unit(UNITS / "resize-sidecar.socket")["Socket"]
    assert sock["ListenStream"] == str(production.server.socket)  # where nginx-config points nginx
    assert sock["SocketMode"] == "0660" and sock["SocketGroup"] == "www-data"
    assert service["ExecStart"] == f"{deploy_config.DEFAULT_EXECUTABLE} serve --config /etc/resize-sidecar/sidecar.toml"
    assert service["User"] == "resize-sidecar"
    assert service["ReadWritePaths"] == str(production.cache.cache_dir)  # the one writable path on disk,
    assert Path("/run", service["RuntimeDirectory"]) == production.observability.metrics_dir  # and the metrics' tmpfs
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    # SIGTERM to the supervisor only (it drains its workers), and time for the drain before SIGKILL.
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"].rstrip("s")) >= production.processes.drain_timeout + 5
    # The cgroup holds the budget the workers are sized by, plus the supervisor.
    assert int(service["MemoryMax"].rstrip("M")) * 1024**2 >= production.processes.memory_budget + WORKER_BASE_BYTES
    assert service["Restart"] == "on-failure"


@pytest.fixture
def systemd_root(tmp_path: Path) -> Path:
    """A root for `systemd-analyze --root`: the units installed, the command they run, systemd's own units."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; make test installs it)")
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
                             "resize-sidecar.service"], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values, and only says so: any output is a finding.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_service_is_hardened(systemd_root: Path) -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={systemd_root}",
                             "--threshold=20", "resize-sidecar.service"], capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for resize-sidecar.service: ([\d.]+)", result.stdout)
    assert result.returncode == 0 and level, result
    print(f"\nsystemd-analyze security: exposure {level.group(1)} (0 = locked down, 10 = unprotected)")
    assert float(level.group(1)) <= 2.0


def test_lithos_container_config_follows_lithos_rules(production: config_module.Config) -> None:
    container = lithos_schema.load(LITHOS.read_text())
    assert lithos_schema.check_container(container) == []
    assert container["kind"] == "Daemon" and container["arguments"] == ["serve"]
    assert container["user-id"] >= 1  # never root
    assert float(container["kill-timeout"]) >= production.processes.drain_timeout + 5
    memory = lithos_schema.size(container["memory-limit"])
    assert memory >= production.processes.memory_budget + WORKER_BASE_BYTES
    assert memory >= production.worker_processes * production.worker_bytes + WORKER_BASE_BYTES
    assert container["fileno-limit"] >= 4096
    volumes = container["volumes"]
    assert volumes["/tmp"].tag == "Tmpfs"  # the image's root is read-only
    socket_volume = volumes[str(production.server.socket.parent)]
    cache_volume = volumes[str(production.cache.cache_dir)]
    assert socket_volume.tag == cache_volume.tag == "Persistent"
    assert volumes[str(production.observability.access_log.parent)].tag == "Readonly"  # nginx's logs, followed for hits


def test_lithos_environ_carries_every_setting(production: config_module.Config) -> None:
    environ = lithos_schema.load(LITHOS.read_text())["environ"]
    names = {row.env for row in config_module.SETTINGS.values()
             if row.name not in config_module.SECRET_KEYS | config_module.TABLES
             # unset optional settings (fallback_image) stay unset
             and getattr(getattr(production, row.section), row.name) is not None}
    assert names <= set(environ), names - set(environ)
    # Lithos substitutes the instance's name; two instances get two sockets.
    sockets = set()
    for instance in ("resize-sidecar/sidecar.0", "resize-sidecar/sidecar.1"):
        env = {k: v.replace("@{lithos:name}", instance) for k, v in environ.items()}
        seen = config_module.load(None, env=env)
        sockets.add(seen.server.socket)
        assert seen.server.socket.parent == production.server.socket.parent
        assert seen.observability.metrics_dir.parent == Path("/tmp")  # the container's own tmpfs
        assert seen.replace(socket=production.server.socket, instance="",
                            metrics_dir=production.observability.metrics_dir) == production
    assert sockets == {Path("/run/resize-sidecar/resize-sidecar_sidecar.0.sock"),
                       Path("/run/resize-sidecar/resize-sidecar_sidecar.1.sock")}


def test_lithos_config_reads_the_toml_when_environ_cannot_carry_it(tmp_path: Path) -> None:
    toml = tmp_path / "sidecar.toml"
    toml.write_text(PRODUCTION.read_text() + f'\n[watermarks.logo]\nimage = "{SAMPLES / "road-1920x1080.jpg"}"\n')
    container = lithos_schema.load(deploy_config.lithos(config_module.load(toml, env={}),
                                                        config_path=Path("/config/sidecar.toml")))
    assert container["arguments"] == ["serve", "--config", "/config/sidecar.toml"]
    assert lithos_schema.check_container(container) == []


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
        stack.stop()
        shutil.rmtree(stack.root, ignore_errors=True)


def test_socket_activation_refuses_a_socket_nginx_would_not_reach() -> None:
    root = world_readable_tempdir()
    elsewhere = root / "other.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SOCKET=str(root / "s.sock"), SIDECAR_SOURCES=str(SAMPLES), SIDECAR_ALLOW_UNSIGNED="1")
    process = subprocess.Popen(["systemd-socket-activate", "-l", str(elsewhere), *(f"-E{k}" for k in env),
                                sys.executable, "-m", "sidecar", "serve"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(elsewhere.exists, 10, "systemd-socket-activate")
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(elsewhere))
        _, stderr = process.communicate(timeout=30)
        client.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    assert process.returncode == 2, stderr
    assert "socket:" in stderr and "ListenStream=" in stderr


def test_listen_fds_are_only_taken_by_the_process_they_are_for() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert inherited_count(env, 4242) == 0 and env == {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    env = {"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "sidecar", "PATH": "/bin"}
    assert inherited_count(env, 4242) == 1 and env == {"PATH": "/bin"}  # gone, as sd_listen_fds(1) does
    with pytest.raises(config_module.ConfigError, match="LISTEN_FDS"):
        inherited_count({"LISTEN_PID": "4242", "LISTEN_FDS": "one"}, 4242)


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
    requires = [line.split(": ", 1)[1] for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist")]
    assert requires and all(re.search(r"<\d", r) for r in requires), requires  # every one bounded
    assert not any(re.match(r"(?i)pillow\b(?!-)", r) for r in requires)  # pillow-simd is built, never required

    env = {**os.environ, "PYTHONPATH": str(target), "SIDECAR_SOCKET": "/run/resize-sidecar/sidecar.sock"}
    command = target / "bin" / "resize-sidecar"

    def run(*args: str) -> str:
        result = subprocess.run([str(command), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)
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
