"""A URL-building application and the config renderers never load Pillow (checked in a fresh interpreter)."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["sidecar", "sidecar.render.nginx", "sidecar.render.units"])
def test_building_urls_and_rendering_configs_load_no_pillow(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('PIL', 'pillow_heif')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
