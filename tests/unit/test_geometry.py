"""Geometry with plain values: sizes, crops, gravity, no enlargement, never below 1 px."""
from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, ImageDraw

from sidecar.transform.geometry import plan
from sidecar.transform.smart import focus
from sidecar.url.grammar import Ops


def ops(**kw: Any) -> Ops:
    return Ops("jpeg", **kw)


@pytest.mark.parametrize("kw, size", [
    ({"width": 200}, (200, 100)),
    ({"height": 50}, (100, 50)),
    ({"width": 200, "height": 200}, (200, 100)),
    ({"width": 100, "height": 20}, (40, 20)),
    ({}, (400, 200)),
    ({"width": 800}, (400, 200)),            # no enlargement
    ({"width": 1}, (1, 1)),                   # 0.5 px rounds up to 1
])
def test_fit(kw: dict[str, object], size: tuple[int, int]) -> None:
    result = plan(400, 200, ops(**kw))
    assert result.size == size and result.box == (0, 0, 400, 200)


def test_fit_can_enlarge_when_asked() -> None:
    assert plan(400, 200, ops(width=800, enlarge=True)).size == (800, 400)


def test_fill_crops_the_middle_by_default() -> None:
    result = plan(400, 200, ops(width=100, height=100, fit="fill"))
    assert result.size == (100, 100) and result.box == (100, 0, 300, 200)


@pytest.mark.parametrize("gravity, box", [
    ("w", (0, 0, 200, 200)), ("e", (200, 0, 400, 200)), ("n", (100, 0, 300, 200)),
    ("nw", (0, 0, 200, 200)), ("se", (200, 0, 400, 200)),
])
def test_fill_gravity(gravity: str, box: tuple[float, ...]) -> None:
    assert plan(400, 200, ops(width=50, height=50, fit="fill", gravity=gravity)).box == box


def test_fill_tall_crop_moves_vertically() -> None:
    assert plan(200, 400, ops(width=50, height=50, fit="fill", gravity="s")).box == (0, 200, 200, 400)


def test_fill_bigger_than_source_keeps_aspect_without_enlarging() -> None:
    result = plan(400, 200, ops(width=1000, height=1000, fit="fill"))
    assert result.size == (200, 200) and result.box == (100, 0, 300, 200)


def test_force_ignores_aspect_but_not_the_source_size() -> None:
    assert plan(400, 200, ops(width=100, height=100, fit="force")).size == (100, 100)
    assert plan(400, 200, ops(width=1000, height=100, fit="force")).size == (400, 100)


def test_scale_and_scaled_plan() -> None:
    result = plan(4000, 2000, ops(width=100, height=100, fit="fill"))
    assert result.scale == pytest.approx(0.05)
    assert result.scaled(0.125, 0.125).box == (125, 0, 375, 250)


def test_dpr_multiplies_the_size_and_enlarge_allows_going_past_the_source() -> None:
    assert plan(400, 200, ops(width=100, dpr=2)).size == (200, 100)
    assert plan(400, 200, ops(width=300, dpr=2)).size == (400, 200)           # no enlargement
    assert plan(400, 200, ops(width=300, dpr=2, enlarge=True)).size == (600, 300)
    assert plan(400, 200, ops(width=300, height=300, fit="fill", enlarge=True)).size == (300, 300)


def test_max_side_caps_the_output_keeping_the_aspect_ratio() -> None:
    result = plan(4000, 2000, ops(width=3000, dpr=4, enlarge=True), max_side=8192)
    assert result.size == (8192, 4096)
    assert plan(4000, 2000, ops(width=3000, height=3000, fit="force", dpr=4, enlarge=True),
                max_side=8192).size == (8192, 8192)


def test_sides_never_below_one_pixel() -> None:
    assert plan(10000, 10, ops(width=1)).size == (1, 1)
    assert plan(10, 10000, ops(width=5, height=1, fit="force")).size == (5, 1)


@pytest.mark.parametrize("focus, box", [
    ((0, 500), (0, 0, 200, 200)),          # clamped at the left edge
    ((1000, 500), (200, 0, 400, 200)),     # clamped at the right edge
    ((600, 500), (140, 0, 340, 200)),      # centred on x = 240
])
def test_focal_point_centres_the_crop(focus: tuple[int, int], box: tuple[float, ...]) -> None:
    assert plan(400, 200, ops(width=50, height=50, fit="fill", gravity="fp", focus=focus)).box == box


def test_smart_focus_finds_the_busy_part() -> None:

    image = Image.new("RGB", (600, 200), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for x in range(450, 590, 8):  # a busy, colourful patch on the right
        draw.rectangle((x, 40, x + 3, 160), fill=(255, 0, 0))
    fx, fy = focus(image, (1 / 3, 1.0))
    assert fx > 0.7 and fy == 0.5
    result = plan(600, 200, ops(width=100, height=100, fit="fill", gravity="sm"), focus=(fx, fy))
    assert result.box[0] >= 400


@pytest.mark.parametrize("kw, size, canvas", [
    ({"width": 200, "height": 200}, (200, 100), (200, 200)),     # fit inside, then the canvas
    ({"width": 100, "height": 20}, (40, 20), (100, 20)),
    ({"width": 800, "height": 800}, (400, 200), (800, 800)),     # not enlarged, yet exactly 800x800
    ({"width": 800, "height": 800, "enlarge": True}, (800, 400), (800, 800)),
    ({"width": 100, "height": 100, "dpr": 2.0}, (200, 100), (200, 200)),
])
def test_pad(kw: dict[str, object], size: tuple[int, int], canvas: tuple[int, int]) -> None:
    result = plan(400, 200, ops(fit="pad", **kw))
    assert (result.size, result.canvas, result.box) == (size, canvas, (0, 0, 400, 200))
    assert not result.keeps(400, 200)


def test_pad_canvas_is_capped_like_any_size() -> None:
    result = plan(400, 200, ops(width=10000, height=5000, fit="pad", enlarge=True), max_side=1000)
    assert result.canvas == (1000, 500) and result.size == (1000, 500)
    assert plan(400, 200, ops(width=400, height=200, fit="pad")).keeps(400, 200)


@pytest.mark.parametrize("gravity", ["nw", "ce", "se"])
def test_a_crop_of_a_small_image_is_never_taken_for_the_whole(gravity: str) -> None:
    # 60x60 `fill` of a 13x425 strip, not enlarged: a 13x13 square, at (0, 0) for nw, but not the strip.
    result = plan(13, 425, ops(width=60, height=60, fit="fill", gravity=gravity))
    assert result.size == (13, 13) and not result.keeps(13, 425)
