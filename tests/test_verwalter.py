"""verwalter/: the templates rendered with the example variables (tests/verwalter.py stands in for
verwalter_render), the Lithos process config checked against Lithos's keys, the nginx upstream against
`nginx -t` and the sockets lithos.yaml binds, and the renderer's commands run: reload only after nginx -t."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import lithos_schema
import pytest
import yaml
from conftest import REPO
from test_cli import nginx_t, run_cli

import verwalter
from sidecar import config as config_module
from sidecar.render import units as deploy_config

TEMPLATES = REPO / "verwalter" / "templates" / "resize-sidecar" / "v1"
PROCESS_KEYS = {"kind", "image", "config", "instances", "variables", "ip-addresses", "extra-secrets-namespaces"}


@pytest.fixture
def variables() -> dict[str, Any]:
    return yaml.safe_load((REPO / "verwalter" / "example-vars.yaml").read_text())


@pytest.fixture
def rendered(tmp_path: Path, variables: dict[str, Any]) -> dict[str, verwalter.Rendered]:
    return verwalter.render_dir(TEMPLATES, variables, tmp_path)


def test_lithos_process_config_names_the_image_and_container_config(
        rendered: dict[str, verwalter.Rendered], variables: dict[str, Any]) -> None:
    lithos = rendered["lithos.render.yaml"]
    processes = yaml.safe_load(lithos.files["processes"].read_text())
    assert set(processes) == set(variables["daemons"])
    for name, process in processes.items():
        assert set(process) <= PROCESS_KEYS, set(process) - PROCESS_KEYS
        assert process["kind"] == "Daemon" and process["instances"] == 1
        assert process["image"] == variables["daemons"][name]["image"]
        assert process["config"] == deploy_config.LITHOS_IMAGE_PATH  # where the image build puts lithos.yaml
    assert lithos.commands == [("RootCommand", ["lithos_switch", "resize-sidecar", str(lithos.files["processes"])])]


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


def test_two_daemons_two_sockets(tmp_path: Path, variables: dict[str, Any]) -> None:
    variables["daemons"]["sidecar-next"] = {"image": "resize-sidecar/0.2.0", "config": "/config/resize-sidecar.yaml"}
    result = verwalter.render_dir(TEMPLATES, variables, tmp_path)
    assert len(yaml.safe_load(result["lithos.render.yaml"].files["processes"].read_text())) == 2
    upstream = result["nginx.render.yaml"].files["upstream"].read_text()
    assert upstream.count("server unix:") == 2 and "resize-sidecar_sidecar-next.0.sock" in upstream


def test_unsafe_values_are_refused_by_the_templates_validators(tmp_path: Path, variables: dict[str, Any]) -> None:
    variables["daemons"]["sidecar"]["image"] = "x\ninjected: true"
    with pytest.raises(verwalter.TemplateError, match="validator"):
        verwalter.render_dir(TEMPLATES, variables, tmp_path)


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
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


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
