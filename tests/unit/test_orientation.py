"""Orientation after the resize: the EXIF orientation, the URL's rotation and flip are one transpose of the
small result, and the crop is cut from the stored pixels. Judged against the plain order (turn the whole
decoded image first, then crop and resize) on every one of the 8 x 4 x 2 combinations."""
from __future__ import annotations

import itertools
import random

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from sidecar.transform import orientation
from sidecar.transform.geometry import plan
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.images import encoded, opened

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255), auto_sharpen=False)
COMBINATIONS = list(itertools.product(range(1, 9), (0, 90, 180, 270), (False, True)))


def scene(size: tuple[int, int] = (300, 180)) -> Image.Image:
    """A picture with no symmetry: a gradient, a few coloured shapes near one corner."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 60, 40), fill=(220, 30, 30))
    draw.ellipse((200, 100, 280, 170), fill=(30, 200, 60))
    draw.line((0, 179, 299, 0), fill=(20, 20, 220), width=5)
    return image


def plainly_turned(image: Image.Image, exif: int, rotate: int, flip: bool) -> Image.Image:
    for method in orientation.steps(exif, rotate, flip):
        image = image.transpose(method)
    return image


@pytest.mark.parametrize("exif, rotate, flip", COMBINATIONS)
def test_one_composite_transpose_equals_the_steps_in_order(exif: int, rotate: int, flip: bool) -> None:
    image = scene((7, 4))
    method = orientation.composite(exif, rotate, flip)
    once = image if method is None else image.transpose(method)
    assert once.tobytes() == plainly_turned(image, exif, rotate, flip).tobytes()


@pytest.mark.parametrize("method", [None, *Image.Transpose])
def test_a_displayed_box_maps_to_the_stored_pixels_it_shows(method: Image.Transpose | None) -> None:
    stored = scene((31, 17))
    shown = stored if method is None else stored.transpose(method)
    rng = random.Random(method or 0)
    for _ in range(20):
        left, right = sorted(rng.sample(range(shown.width + 1), 2))
        top, bottom = sorted(rng.sample(range(shown.height + 1), 2))
        box = orientation.stored_box(method, (left, top, right, bottom), shown.size)
        cut = stored.crop(tuple(int(v) for v in box))
        cut = cut if method is None else cut.transpose(method)
        assert cut.tobytes() == shown.crop((left, top, right, bottom)).tobytes()


@pytest.mark.parametrize("method", [None, *Image.Transpose])
def test_points_go_there_and_back(method: Image.Transpose | None) -> None:
    point = (0.2, 0.7)
    there = orientation.shown_point(method, point)
    assert orientation.stored_point(method, there) == pytest.approx(point)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


@pytest.mark.parametrize("exif, rotate, flip", COMBINATIONS)
@pytest.mark.parametrize("ops_args", [
    {"width": 90},                                          # fit
    {"width": 80, "height": 80, "fit": "fill", "gravity": "nw"},  # a corner crop: the box must map exactly
    {"width": 70, "height": 40, "fit": "fill", "gravity": "fp", "focus": (800, 300)},
])
def test_turning_the_small_result_matches_turning_the_original_first(
        exif: int, rotate: int, flip: bool, ops_args: dict) -> None:
    tags = Image.Exif()
    tags[0x0112] = exif
    original = scene()
    ops = Ops("png", rotate=rotate, flip=flip, **ops_args)
    result = opened(transform(encoded(original, "PNG", exif=tags.tobytes()), ops, SETTINGS).data)
    upright = plainly_turned(original, exif, rotate, flip)
    expected_plan = plan(*upright.size, ops)
    expected = upright.resize(expected_plan.size, Image.Resampling.LANCZOS, box=expected_plan.box,
                              reducing_gap=3.0)
    assert result.size == expected.size
    assert mean_difference(result, expected) < 1.0


@pytest.mark.parametrize("exif", range(1, 9))
def test_smart_gravity_finds_the_same_subject_whatever_the_stored_orientation(exif: int) -> None:
    # A busy patch on the right of a plain picture: a square crop of it must hold the patch.
    upright = Image.new("RGB", (400, 100), (128, 128, 128))
    draw = ImageDraw.Draw(upright)
    for x in range(300, 390, 6):
        draw.line((x, 10, x, 90), fill=(255, 0, 0) if x % 12 else (0, 0, 255), width=3)
    inverse = {6: 8, 8: 6}.get(exif, exif)  # store it so that the EXIF orientation shows it upright
    stored = plainly_turned(upright, inverse, 0, False)
    tags = Image.Exif()
    tags[0x0112] = exif
    data = encoded(stored, "PNG", exif=tags.tobytes())
    result = opened(transform(data, Ops("png", width=100, height=100, fit="fill", gravity="sm"), SETTINGS).data)
    assert result.size == (100, 100)
    assert min(ImageStat.Stat(result).stddev) > 40  # the striped patch, not the plain grey
