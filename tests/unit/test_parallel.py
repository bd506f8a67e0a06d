"""Banded work on plain values: a banded resize or filter is the whole one, within rounding."""
from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat

from sidecar.transform import parallel
from tests.support.images import opened
from tests.support.paths import SAMPLES


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
