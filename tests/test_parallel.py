"""Two bands for one big rendition: the same pixels as one piece, and no banding while the cores are busy."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import SAMPLES, opened
from PIL import Image, ImageChops, ImageFilter, ImageStat

from sidecar.transform import parallel


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return opened((SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes()).convert("RGB").resize((1936, 1296))


@pytest.mark.parametrize("size, box", [
    ((900, 602), (0.0, 0.0, 1936.0, 1296.0)),       # a plain downscale
    ((700, 701), (300.5, 10.25, 1500.0, 1211.0)),   # a fill crop, fractional box
    ((1936, 1296), (0.0, 0.0, 1936.0, 1296.0)),     # no reduce step at all
])
def test_a_banded_resize_is_the_resize_within_rounding(photo: Image.Image, size: tuple[int, int],
                                                       box: tuple[float, float, float, float]) -> None:
    whole = parallel.resize(photo, size, box, bands=False)
    banded = parallel.resize(photo, size, box, bands=True)
    assert banded.size == whole.size == size and banded.mode == whole.mode
    difference = ImageChops.difference(banded, whole)
    assert max(ImageStat.Stat(difference).mean) < 0.05
    assert max(high for _, high in difference.getextrema()) <= 2


@pytest.mark.parametrize("overlap, kernel", [(0, None), (1, ImageFilter.SHARPEN), (8, ImageFilter.GaussianBlur(1))])
def test_banded_filters_are_exactly_the_filters(photo: Image.Image, overlap: int, kernel: ImageFilter.Filter) -> None:
    def apply(image: Image.Image) -> Image.Image:
        return image.point(lambda v: 255 - v) if kernel is None else image.filter(kernel)

    banded = parallel.filtered(photo, apply, overlap, bands=True)
    assert ImageChops.difference(banded, apply(photo)).getbbox() is None


def test_no_spare_core_while_every_core_is_busy() -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        assert not any(parallel.spare_core() for _ in range(20))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
