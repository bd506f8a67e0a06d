"""Production files: the systemd units and the Lithos container config, rendered from deploy/sidecar.toml,
say what the config says and follow Lithos's rules; systemd's LISTEN_FDS are only taken when they are ours."""
from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from sidecar import config as config_module
from sidecar.observe.memory import WORKER_BASE_BYTES
from sidecar.render import units as deploy_config
from sidecar.server.listen import inherited_count
from tests.support import lithos_schema
from tests.support.paths import REPO, SAMPLES

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


def test_listen_fds_are_only_taken_by_the_process_they_are_for() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert inherited_count(env, 4242) == 0 and env == {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    env = {"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "sidecar", "PATH": "/bin"}
    assert inherited_count(env, 4242) == 1 and env == {"PATH": "/bin"}  # gone, as sd_listen_fds(1) does
    with pytest.raises(config_module.ConfigError, match="LISTEN_FDS"):
        inherited_count({"LISTEN_PID": "4242", "LISTEN_FDS": "one"}, 4242)


