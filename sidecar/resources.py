"""Where the files that ship with the package are: nginx templates and the sample images."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`nginx` or `samples`: inside an installed package, or at the top of a source checkout."""
    installed = _HERE / name  # setup.py maps the top-level folders into the package
    return installed if installed.is_dir() else _HERE.parent / name


def nginx_template(name: str) -> str:
    return (resource_dir("nginx") / name).read_text()


def samples_dir() -> Path:
    return resource_dir("samples")
