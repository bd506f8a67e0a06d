"""Where the files that ship with the package are: templates (nginx, systemd, Lithos) and sample images."""
from __future__ import annotations

import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`nginx`, `deploy` or `samples`: inside an installed package, or at the top of a source checkout."""
    installed = _HERE / name  # setup.py maps the top-level folders into the package
    return installed if installed.is_dir() else _HERE.parent / name


def nginx_template(name: str) -> str:
    return (resource_dir("nginx") / name).read_text()


def deploy_template(name: str) -> str:
    return (resource_dir("deploy") / name).read_text()


def samples_dir() -> Path:
    return resource_dir("samples")


def render(template: str, **values: object) -> str:
    """Fill `{{ name }}` placeholders; a placeholder without a value is an error, not an empty string."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template needs a value for {name!r}")
        return str(values[name])

    return re.sub(r"\{\{ (\w+) \}\}", fill, template)
