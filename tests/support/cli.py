"""The command line as users run it (`python -m sidecar ...`), and `nginx -t` on a rendered site."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import REPO
from tests.support.stack import HANG

CLI = [sys.executable, "-m", "sidecar"]


def run_cli(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """`resize-sidecar ARGS` in the repo, without the caller's SIDECAR_* variables (plus `env`)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    return subprocess.run([*CLI, *args], env={**base, **(env or {})}, capture_output=True, text=True,
                          cwd=REPO, timeout=HANG, **kw)


def nginx_t(tmp_path: Path, site: str) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a stock nginx.conf whose http {} block includes `site`."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"error_log {tmp_path}/logs/error.log; pid {tmp_path}/nginx.pid;\n"
        f"events {{}}\nhttp {{ access_log off; include {tmp_path}/site.conf; }}\n")
    return subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                           "-e", str(tmp_path / "logs/error.log")], capture_output=True, text=True)
