"""Every mode Pillow can hand the transform becomes a resizable one, with the right values (issue 16)."""
from __future__ import annotations

import pytest
from PIL import Image

from sidecar.errors import Undecodable
from sidecar.transform.colour import RESIZABLE, resizable

#: mode -> (a pixel written in that mode, the pixel expected after normalisation, its mode).
CASES: dict[str, tuple[object, tuple[int, ...] | int, str]] = {
    "1": (1, 255, "L"),
    "L": (77, 77, "L"),
    "LA": ((77, 128), (77, 128), "LA"),
    "La": ((50, 128), (99, 128), "LA"),  # premultiplied: 50 at half alpha is 100 (99.6) straight
    "P": (3, (3, 3, 3), "RGB"),  # a greyscale palette
    "PA": ((3, 200), (3, 3, 3, 200), "RGBA"),
    "I": (40000, 156, "L"),  # 16-bit values scaled, not clipped: 40000 / 256
    "I;16": (40000, 156, "L"),
    "I;16B": (40000, 156, "L"),
    "I;16L": (40000, 156, "L"),
    "I;16N": (40000, 156, "L"),
    "F": (0.5, 127, "L"),  # 0..1 floats are normalised data
    "RGB": ((10, 20, 30), (10, 20, 30), "RGB"),
    "RGBA": ((10, 20, 30, 40), (10, 20, 30, 40), "RGBA"),
    "RGBa": ((50, 25, 10, 128), (99, 49, 19, 128), "RGBA"),
    "RGBX": ((10, 20, 30, 0), (10, 20, 30), "RGB"),
    "CMYK": ((0, 255, 255, 0), (0, 255, 255, 0), "CMYK"),  # converted to sRGB later, by profile
    "YCbCr": ((76, 85, 255), (254, 0, 0), "RGB"),  # red
    "LAB": ((255, 128, 128), (254, 255, 254), "RGB"),  # white
    "HSV": ((85, 255, 255), (0, 255, 0), "RGB"),  # green
}


def close(got: tuple[int, ...] | int, want: tuple[int, ...] | int, tolerance: int = 2) -> bool:
    got_t = got if isinstance(got, tuple) else (got,)
    want_t = want if isinstance(want, tuple) else (want,)
    return len(got_t) == len(want_t) and all(abs(a - b) <= tolerance for a, b in zip(got_t, want_t))


@pytest.mark.parametrize("mode", list(CASES))
def test_every_mode_normalises_to_a_resizable_mode_with_its_values(mode: str) -> None:
    written, expected, expected_mode = CASES[mode]
    image = Image.new(mode, (8, 6))
    if mode in ("P", "PA"):
        image.putpalette([v for i in range(256) for v in (i, i, i)])
    for xy in ((x, y) for x in range(8) for y in range(6)):
        image.putpixel(xy, written)  # type: ignore[arg-type]  # paste truncates 16-bit values
    out = resizable(image)
    assert out.mode == expected_mode and out.mode in RESIZABLE
    assert close(out.getpixel((3, 3)), expected), (mode, out.getpixel((3, 3)), expected)
    # And it resizes as the geometry step does (LANCZOS with a box), to the same values.
    small = out.resize((4, 3), Image.Resampling.LANCZOS, box=(0, 0, 8, 6), reducing_gap=3.0)
    assert close(small.getpixel((1, 1)), expected)


def test_16_bit_keeps_its_gradient_instead_of_clipping() -> None:
    for mode in ("I;16", "I;16B", "I;16L"):
        image = Image.new(mode, (256, 1))
        for x in range(256):
            image.putpixel((x, 0), x * 257)
        out = resizable(image)
        assert [out.getpixel((x, 0)) for x in (0, 100, 255)] == [0, 100, 255], mode


def test_floats_outside_zero_to_one_are_clipped_not_scaled() -> None:
    image = Image.new("F", (3, 1))
    for x, value in enumerate((-5.0, 100.0, 1000.0)):
        image.putpixel((x, 0), value)
    out = resizable(image)
    assert [out.getpixel((x, 0)) for x in range(3)] == [0, 100, 255]


def test_palette_with_transparency_keeps_it() -> None:
    image = Image.new("P", (2, 1))
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 1
    out = resizable(image)
    assert out.mode == "RGBA" and out.getpixel((1, 0))[3] == 0 and out.getpixel((0, 0))[3] == 255


def test_a_mode_without_a_conversion_is_a_clear_4xx() -> None:
    class Odd:
        mode, info = "BGR;15", {}

        def convert(self, mode: str) -> Image.Image:
            raise ValueError("conversion not supported")

    with pytest.raises(Undecodable) as caught:
        resizable(Odd())  # type: ignore[arg-type]
    assert caught.value.status == 422
