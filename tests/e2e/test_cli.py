"""The command line, as users run it: real processes, real nginx."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import CLI, nginx_t, run_cli
from tests.support.needs import optional
from tests.support.paths import REPO
from tests.support.processes import free_port, wait_for
from tests.support.stack import HANG, SIGNING_KEY


def test_url_prints_a_signed_path() -> None:
    result = run_cli("url", "products/red shoe.png", "--width", "300", "--height", "200", "--fit", "fill",
                     env={"SIDECAR_SIGNING_KEYS": SIGNING_KEY})
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert path.startswith("/img/") and "/products/red%20shoe.png/w300-h200-fill." in path
    assert path.endswith(".png")


def test_url_with_preset_and_override(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[presets.card]\nwidth = 400\nheight = 300\nfit = 'fill'\nformat = 'webp'\nquality = 70\n")
    result = run_cli("url", "a.jpg", "--preset", "card", "--quality", "keep", "--config", str(toml))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("/a.jpg/w400-h300-fill-qkeep.webp")


def test_url_with_focus_dpr_enlarge_and_auto_format() -> None:
    result = run_cli("url", "a.jpg", "--width", "300", "--height", "300", "--fit", "fill", "--focus", "250,600",
                     "--enlarge", "--dpr", "2", "--format", "auto")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("/a.jpg/w300-h300-fill-gfp250x600-up-x2.auto")


def test_url_with_the_restyling_flags() -> None:
    result = run_cli("url", "a.png", "--width", "300", "--height", "200", "--fit", "pad", "--rotate", "90",
                     "--flip", "v", "--blur", "1.5", "--sharpen", "0", "--background", "#00FF00")
    assert result.returncode == 0, result.stderr
    # A vertical flip after a quarter turn is three quarters and a mirror: the URL's one spelling.
    assert result.stdout.strip().endswith("/a.png/w300-h200-pad-r270-flip-bl1_5-sh0-bg00ff00.png")


def test_url_info_prints_the_signed_info_path() -> None:
    result = run_cli("url", "products/red shoe.jpg", "--info", env={"SIDECAR_SIGNING_KEYS": SIGNING_KEY})
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert "/products/red%20shoe.jpg/info." in path and path.endswith(".json") and len(path.split(".")[-2]) == 16
    assert run_cli("url", "a.jpg", "--info", "--width", "10").returncode == 2


def test_url_client_hints_only_when_enabled() -> None:
    assert run_cli("url", "a.jpg", "--width", "400", "--client-hints").returncode == 2
    result = run_cli("url", "a.jpg", "--width", "400", "--client-hints", env={"SIDECAR_CLIENT_HINTS": "1"})
    assert result.returncode == 0 and result.stdout.strip().endswith("/a.jpg/w400-ch.jpg")


def test_url_rejects_bad_arguments() -> None:
    result = run_cli("url", "a.jpg", "--width", "0")
    assert result.returncode == 2 and "width" in result.stderr
    assert run_cli("url", "../etc/passwd", "--width", "10").returncode == 2


def test_serve_refuses_to_run_unsigned_unless_told() -> None:
    result = run_cli("serve", env={"SIDECAR_SOURCES": str(REPO / "samples")})
    assert result.returncode == 2 and "SIDECAR_SIGNING_KEYS" in result.stderr


def test_config_error_names_the_key() -> None:
    result = run_cli("serve", env={"SIDECAR_MAX_PIXELS": "many"})
    assert result.returncode == 2 and "SIDECAR_MAX_PIXELS" in result.stderr


def test_refuses_plain_pillow_beside_simd(tmp_path: Path) -> None:
    # A real dist-info on the path is what pip leaves when it installs plain Pillow.
    info = tmp_path / "pillow-13.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pillow\nVersion: 13.0.0\n")
    result = run_cli("serve", env={"PYTHONPATH": str(tmp_path), "SIDECAR_ALLOW_UNSIGNED": "1",
                                   "SIDECAR_SOURCES": "/tmp"})
    assert result.returncode == 3
    assert "plain Pillow 13.0.0" in result.stderr and "pip uninstall" in result.stderr


@pytest.mark.parametrize("args, expect", [
    ((), ["try_files $resize_sidecar_file @resize_sidecar;", "internal;",
          "server unix:/run/resize-sidecar/sidecar.sock;"]),
    (("--upstream-include", "/etc/nginx/resize-sidecar/upstream.conf"),
     ["include /etc/nginx/resize-sidecar/upstream.conf;", "try_files $resize_sidecar_file @resize_sidecar;"]),
    (("--front", "10.0.0.11:8080", "localhost:8080", "[fd00::13]:8080"),
     ["hash $uri consistent;", "server 10.0.0.11:8080 max_fails=1", "server [fd00::13]:8080 ",
      "proxy_next_upstream error timeout;", "proxy_next_upstream_tries 3;"]),
], ids=["node", "verwalter-upstream", "front"])
def test_production_nginx_config_passes_nginx_t(tmp_path: Path, args: tuple[str, ...], expect: list[str]) -> None:
    site = run_cli("nginx-config", *args, env={"SIDECAR_CACHE_DIR": str(tmp_path / "cache"),
                                               "SIDECAR_SOCKET": "/run/resize-sidecar/sidecar.sock",
                                               "SIDECAR_ACCESS_LOG": str(tmp_path / "logs" / "access.log")})
    assert site.returncode == 0, site.stderr
    assert all(line in site.stdout for line in expect), site.stdout
    if "--upstream-include" in args:
        # What Verwalter renders into that file; nginx -t needs it to exist.
        include = tmp_path / "upstream.conf"
        include.write_text("server unix:/run/resize-sidecar/a.sock max_fails=0;\n")
        site.stdout = site.stdout.replace("/etc/nginx/resize-sidecar/upstream.conf", str(include))
    check = nginx_t(tmp_path, site.stdout)
    assert check.returncode == 0, check.stderr


def test_nginx_config_says_to_create_the_access_logs_directory(tmp_path: Path) -> None:
    """nginx opens `access_log` but never creates its directory. With the default config (var/log under the
    working directory) nginx-config says so in one line on stderr; once it is created, nginx -t passes."""
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}

    def render() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "nginx-config"], env=env, cwd=work, capture_output=True, text=True, timeout=60,
                              check=False)

    site = render()
    assert site.returncode == 0, site.stderr
    [note] = site.stderr.splitlines()
    assert f"{work / 'var/log'} does not exist" in note and note.endswith(f"mkdir -p {work / 'var/log'}")
    assert nginx_t(tmp_path, site.stdout).returncode != 0  # what the newcomer met
    subprocess.run(["mkdir", "-p", note.rsplit("mkdir -p ", 1)[1]], check=True)
    again = render()
    assert again.returncode == 0 and again.stderr == "" and again.stdout == site.stdout
    check = nginx_t(tmp_path, again.stdout)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("args, named", [
    (("--front", "10.0.0.11"), "--front"),
    (("--front", "10.0.0.11:0"), "--front"),
    (("--front", "a:1", "--upstream-include", "/x"), "--upstream-include"),
])
def test_nginx_config_errors_name_the_flag(args: tuple[str, ...], named: str) -> None:
    result = run_cli("nginx-config", *args)
    assert result.returncode == 2 and named in result.stderr, result.stderr


@pytest.mark.parametrize("private", [False, True], ids=["shared-dir", "0700-home"])
def test_run_serves_the_samples_and_stops_cleanly_on_sigterm(private: bool, shared_dir: Path) -> None:
    work = shared_dir
    if private:
        # Like a home directory: nobody else may enter, yet nginx's workers must read the cache in it.
        if os.geteuid() != 0:
            optional("only root's nginx workers can run as another user: run the tests as root to cover this")
        work.chmod(0o700)
    port = free_port()
    stderr = open(work / "stderr.log", "w")
    proc = subprocess.Popen(
        [*CLI, "run", "--listen", f"127.0.0.1:{port}", "--cache", str(work / "cache")],
        cwd=work, stdout=subprocess.PIPE, stderr=stderr, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")},
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("try: ") for line in lines) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        url = next(line[5:] for line in lines if line.startswith("try: "))
        assert url.startswith(f"http://127.0.0.1:{port}/img/")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG)
        conn.request("GET", url.split(str(port), 1)[1])
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("image/")
        response.read()
        conn.close()
        assert list((work / "cache").rglob("*.jpg")), "the rendition was not cached"
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(HANG)
        proc.stdout.close()
        stderr.close()
    assert returncode == 0, (work / "stderr.log").read_text()
    wait_for(lambda: not _listening(port), HANG, "nginx to stop")
    assert not (work / "var/run/sidecar.sock").exists()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_front_forwards_the_shops_routes_too(tmp_path: Path) -> None:
    toml = tmp_path / "front.toml"
    toml.write_text('[routes.legacy]\npattern = "/media/{key}_w{w}.{ext}"\n')
    site = run_cli("nginx-config", "--config", str(toml), "--front", "127.0.0.1:8081", "127.0.0.1:8082")
    assert site.returncode == 0, site.stderr
    assert '# route legacy' in site.stdout and site.stdout.count("proxy_pass http://resize_sidecar_nodes;") == 2
    check = nginx_t(tmp_path, site.stdout)
    assert check.returncode == 0, check.stderr
