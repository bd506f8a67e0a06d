"""The fallback images' renderings: remembered per operations, made again when the file changes."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from sidecar.app.fallback import Fallbacks
from sidecar.config import load
from sidecar.transform.pipeline import Settings
from sidecar.url.grammar import Ops
from tests.support.images import opened

MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) < 12 for x, y in zip(a, b))


def test_renderings_are_remembered_until_the_file_changes(tmp_path: Path) -> None:
    image = tmp_path / "missing.png"
    Image.new("RGB", (40, 40), MAGENTA).save(image)
    fallbacks = Fallbacks(load(None, env={}), Settings(50_000_000, 82, (255, 255, 255)))
    first = fallbacks.render(image, Ops("png", width=20), None)
    assert fallbacks.render(image, Ops("png", width=20), None) is first
    assert fallbacks.render(image, Ops("png", width=21), None) is not first
    Image.new("RGB", (40, 40), CYAN).save(image)
    later = image.stat().st_mtime_ns + 10**9  # a new version, even within the file system's time resolution
    os.utime(image, ns=(later, later))
    again = fallbacks.render(image, Ops("png", width=20), None)
    assert again is not first and near(opened(again.data).convert("RGB").getpixel((10, 10)), CYAN)
