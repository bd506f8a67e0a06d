"""verwalter/: the rendered nginx upstream checked by `nginx -t` and against the sockets lithos.yaml binds,
and the renderer's commands run: nginx is reloaded only after nginx -t passes."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sidecar import config as config_module
from tests.support import lithos_schema, verwalter
from tests.support.cli import nginx_t, run_cli
from tests.support.paths import REPO
from tests.support.stack import HANG
from tests.support.verwalter import TEMPLATES


def lithos_socket(lithos_name: str) -> Path:
    """The socket the sidecar binds under Lithos, from lithos.yaml's environ and the instance's name."""
    environ = lithos_schema.load((REPO / "lithos.yaml").read_text())["environ"]
    env = {k: v.replace("@{lithos:name}", lithos_name) for k, v in environ.items()}
    return config_module.load(None, env=env).server.socket


def test_nginx_upstream_points_at_the_sockets_lithos_makes(
        rendered: dict[str, verwalter.Rendered], variables: dict[str, Any], tmp_path: Path) -> None:
    upstream = rendered["nginx.render.yaml"].files["upstream"].read_text()
    servers = [line for line in upstream.splitlines() if line.startswith("server ")]
    # Lithos names instance 0 of daemon D in sandbox (= role) R "R/D.0".
    assert servers == [f"server unix:{lithos_socket(variables['role'] + '/' + name + '.0')};"
                       for name in sorted(variables["daemons"])]
    site = run_cli("nginx-config", "--upstream-include", str(rendered["nginx.render.yaml"].files["upstream"]),
                   env={"SIDECAR_CACHE_DIR": str(tmp_path / "cache"),
                        "SIDECAR_ACCESS_LOG": str(tmp_path / "logs" / "access.log")})
    assert site.returncode == 0, site.stderr
    check = nginx_t(tmp_path, site.stdout)
    assert check.returncode == 0, check.stderr


@pytest.fixture
def host(tmp_path: Path) -> dict[str, Path]:
    """Where the nginx renderer's command acts: an nginx prefix whose nginx.conf includes the upstream file
    (as conf.d does on the host), and `nginx` / `systemctl` on PATH aimed at it."""
    root = tmp_path / "host"
    (root / "bin").mkdir(parents=True)
    (root / "logs").mkdir()
    upstream = root / "etc/nginx/resize-sidecar/upstream.conf"
    site = run_cli("nginx-config", "--upstream-include", str(upstream),
                   env={"SIDECAR_CACHE_DIR": str(tmp_path / "c"), "SIDECAR_ACCESS_LOG": str(root / "logs/access.log")})
    (root / "site.conf").write_text(site.stdout)
    (root / "nginx.conf").write_text(f"error_log {root}/logs/error.log; pid {root}/nginx.pid;\nevents {{}}\n"
                                     f"http {{ access_log off; include {root}/site.conf; }}\n")
    nginx = root / "bin/nginx"
    nginx.write_text(f'#!/bin/sh\nexec /usr/sbin/nginx -p {root} -c {root}/nginx.conf -e {root}/logs/error.log "$@"\n')
    systemctl = root / "bin/systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> {root}/systemctl.log\n')
    for tool in (nginx, systemctl):
        tool.chmod(0o755)
    return {"root": root, "upstream": upstream, "reloads": root / "systemctl.log"}


def run_command(rendered: verwalter.Rendered, host: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    [(tag, argv)] = rendered.commands
    assert tag == "RootCommand" and argv[-1] == "/etc/nginx/resize-sidecar/upstream.conf"
    argv = [*argv[:-1], str(host["upstream"])]  # the host's path, moved into the test's prefix
    env = {**os.environ, "PATH": f"{host['root'] / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=HANG)


def test_nginx_is_reloaded_only_after_nginx_t_passes(
        rendered: dict[str, verwalter.Rendered], host: dict[str, Path], tmp_path: Path,
        variables: dict[str, Any]) -> None:
    nginx = rendered["nginx.render.yaml"]
    result = run_command(nginx, host)
    assert result.returncode == 0, result.stderr
    assert host["upstream"].read_text() == nginx.files["upstream"].read_text()
    assert host["reloads"].read_text() == "reload nginx\n"

    # A render nginx refuses: the previous upstream stays, and nginx is not reloaded.
    good = host["upstream"].read_text()
    (tmp_path / "broken").mkdir()
    broken = verwalter.render_dir(TEMPLATES, variables, tmp_path / "broken")["nginx.render.yaml"]
    broken.files["upstream"].write_text("server unix:/run/resize-sidecar/x.sock weight=zero;\n")
    result = run_command(broken, host)
    assert result.returncode != 0 and "nginx -t failed" in result.stderr
    assert host["upstream"].read_text() == good
    assert host["reloads"].read_text() == "reload nginx\n"
