"""The restyling operations with plain values (bytes in, bytes out), each judged on decoded pixels:
rotate and flip, blur, sharpen (explicit and automatic), background, pad."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from sidecar.errors import BadRequest
from sidecar.transform import filters
from sidecar.transform.geometry import plan
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.images import corner_colour, encoded, marked, opened
from tests.support.paths import SAMPLES

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def rendered(image: Image.Image, ops: Ops, settings: Settings = SETTINGS, fmt: str = "PNG") -> Image.Image:
    return opened(transform(encoded(image, fmt), ops, settings).data)


@pytest.mark.parametrize("rotate, flip, size, corner", [
    (0, False, (200, 100), "tl"),
    (90, False, (100, 200), "tr"),    # clockwise: the top-left corner goes to the top right
    (180, False, (200, 100), "br"),
    (270, False, (100, 200), "bl"),
    (0, True, (200, 100), "tr"),      # mirrored left to right
    (90, True, (100, 200), "tl"),     # turned first, then mirrored
])
def test_rotate_and_flip_turn_the_pixels(rotate: int, flip: bool, size: tuple[int, int], corner: str) -> None:
    result = rendered(marked(), Ops("png", width=200 if rotate in (0, 180) else 100, rotate=rotate, flip=flip))
    assert result.size == size
    assert corner_colour(result) == corner


def test_rotation_comes_after_exif_orientation_and_before_the_size() -> None:
    tags = Image.Exif()
    tags[0x0112] = 6  # stored sideways: shown turned 90 degrees clockwise
    data = encoded(marked(), "JPEG", exif=tags.tobytes())
    upright = opened(transform(data, Ops("png", height=100), SETTINGS).data)
    assert upright.size == (50, 100) and corner_colour(upright) == "tr"
    turned_back = opened(transform(data, Ops("png", width=100, rotate=270), SETTINGS).data)
    assert turned_back.size == (100, 50) and corner_colour(turned_back) == "tl"


def edge() -> Image.Image:
    """Black left half, white right half."""
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (100, 0, 200, 100))
    return image


def row(image: Image.Image, y: int = 50) -> list[int]:
    grey = image.convert("L")
    return [grey.getpixel((x, y)) for x in range(grey.width)]


def test_blur_spreads_an_edge_by_its_sigma() -> None:
    sharp = row(rendered(edge(), Ops("png", sharpen=0)))
    soft = row(rendered(edge(), Ops("png", blur=4.0, sharpen=0)))
    softer = row(rendered(edge(), Ops("png", blur=8.0, sharpen=0)))
    grey = lambda values: sum(1 for v in values if 20 < v < 235)  # noqa: E731
    assert grey(sharp) == 0
    # A Gaussian edge goes from 5% to 95% over about 3.3 sigma.
    assert 10 <= grey(soft) <= 20 and 22 <= grey(softer) <= 40, (grey(soft), grey(softer))
    assert soft[0] < 5 and soft[-1] > 250  # far from the edge nothing changes


def test_blur_does_not_bleed_hidden_colour_from_transparent_pixels() -> None:
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))  # invisible red
    image.paste((0, 0, 255, 255), (0, 0, 50, 100))
    result = rendered(image, Ops("png", blur=5.0))
    assert result.mode == "RGBA"
    assert result.getpixel((5, 50))[3] == 255 and result.getpixel((95, 50))[3] == 0  # the alpha survived
    seen = [(x, *result.getpixel((x, 50))) for x in range(40, 60) if result.getpixel((x, 50))[3] > 10]
    assert 10 <= len(seen) < 20, seen  # the blurred edge: some pixels partly opaque, and they are checked
    assert all(r < 20 and b > 200 for _, r, _, b, _ in seen), seen


def overshoot(values: list[int]) -> int:
    """How far an edge from 64 to 192 swings beyond its two levels (the unsharp mask's halo)."""
    return max(0, 64 - min(values)) + max(0, max(values) - 192)


def steepest(values: list[int]) -> int:
    return max(abs(a - b) for a, b in zip(values, values[1:]))


def soft_edge() -> Image.Image:
    image = Image.new("L", (200, 40), 64)
    image.paste(192, (100, 0, 200, 40))
    return image.filter(ImageFilter.GaussianBlur(2))


def test_sharpen_steepens_an_edge() -> None:
    plain = row(rendered(soft_edge(), Ops("png", sharpen=0)), 20)
    sharp = row(rendered(soft_edge(), Ops("png", sharpen=2.0)), 20)
    assert overshoot(plain) == 0 and overshoot(sharp) >= 8  # the unsharp mask's halo
    assert steepest(sharp) >= 1.2 * steepest(plain)


def edge_energy(image: Image.Image) -> float:
    return ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]


def test_automatic_sharpening_after_a_strong_downscale_only_and_mild() -> None:
    photo = (SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes()

    def energy(ops: Ops, settings: Settings = SETTINGS) -> float:
        return edge_energy(opened(transform(photo, ops, settings).data))

    auto, off = energy(Ops("png", width=400)), energy(Ops("png", width=400, sharpen=0))
    assert auto > 1.08 * off
    assert auto < energy(Ops("png", width=400, sharpen=1.0))  # mild next to an explicit sharpen
    config_off = Settings(50_000_000, 82, (255, 255, 255), auto_sharpen=False)
    assert energy(Ops("png", width=400), config_off) == off
    # 2500 of 3872 px is no strong downscale: nothing is sharpened.
    assert energy(Ops("png", width=2500)) == energy(Ops("png", width=2500, sharpen=0))


def transparent_half() -> Image.Image:
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    image.paste((0, 200, 0, 255), (0, 0, 50, 100))
    return image


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_background_flattens_transparency_in_every_format(fmt: str) -> None:
    result = rendered(transparent_half(), Ops(fmt, background="000080"))
    assert "A" not in result.mode
    r, g, b = result.convert("RGB").getpixel((80, 50))
    assert r < 16 and g < 16 and 110 < b < 145, (r, g, b)
    assert result.convert("RGB").getpixel((20, 50))[1] > 180  # the opaque half is untouched


def test_auto_legacy_of_a_flattened_transparent_photo_is_jpeg() -> None:
    data = encoded(transparent_half(), "WEBP", quality=90)  # lossy with alpha: legacy would be PNG
    assert transform(data, Ops("auto", width=50), SETTINGS, variant="legacy").format == "png"
    flat = transform(data, Ops("auto", width=50, background="ffffff"), SETTINGS, variant="legacy")
    assert flat.format == "jpeg" and opened(flat.data).getpixel((45, 25))[0] > 240


def test_without_background_png_keeps_its_transparency() -> None:
    assert rendered(transparent_half(), Ops("png", width=50)).getpixel((45, 25))[3] == 0


def test_pad_fits_inside_and_fills_exactly_w_by_h_with_the_background() -> None:
    result = rendered(marked(400, 200), Ops("png", width=200, height=200, fit="pad", background="00ff00"))
    assert result.size == (200, 200) and result.mode == "RGB"
    green = (0, 255, 0)
    assert result.getpixel((100, 20)) == green and result.getpixel((100, 180)) == green  # bands above, below
    assert result.getpixel((100, 52)) != green and result.getpixel((100, 147)) != green  # the 200x100 image
    assert result.getpixel((5, 55))[0] > 200  # its red corner, top left of the image
    assert ImageStat.Stat(result.crop((0, 50, 200, 150))).mean[1] < 150


@pytest.mark.parametrize("gravity, image_top", [("n", 0), ("ce", 50), ("s", 100)])
def test_pad_places_the_image_by_gravity(gravity: str, image_top: int) -> None:
    result = rendered(marked(400, 200), Ops("png", width=200, height=200, fit="pad", gravity=gravity,
                                            background="00ff00"))
    column = [result.getpixel((150, y)) == (0, 255, 0) for y in range(200)]
    assert column.index(False) == image_top and column[image_top:image_top + 100] == [False] * 100


def test_pad_without_background_is_transparent_for_alpha_and_the_configured_colour_otherwise() -> None:
    clear = rendered(transparent_half(), Ops("png", width=200, height=100, fit="pad"))
    assert clear.size == (200, 100) and clear.getpixel((10, 50))[3] == 0
    navy = Settings(50_000_000, 82, (0, 0, 128))
    opaque = rendered(marked(400, 200), Ops("jpeg", width=100, height=100, fit="pad"), navy)
    r, g, b = opaque.getpixel((50, 5))
    assert r < 16 and g < 16 and 110 < b < 145


def test_pad_never_enlarges_without_up_but_the_canvas_is_exact() -> None:
    small = rendered(marked(40, 20), Ops("png", width=200, height=200, fit="pad", background="00ff00"))
    assert small.size == (200, 200)
    visible = [small.getpixel((x, 100)) != (0, 255, 0) for x in range(200)]
    assert sum(visible) == 40  # the 40x20 image, not enlarged, in the middle
    assert plan(40, 20, Ops("png", width=200, height=200, fit="pad", enlarge=True)).size == (200, 100)


def test_pad_colour_is_exact_srgb_even_with_an_icc_profile() -> None:
    adobe_rgb = Path("/usr/share/color/icc/ghostscript/a98.icc").read_bytes()  # Debian's libgs-common
    data = encoded(marked(400, 200), "PNG", icc_profile=adobe_rgb)
    result = opened(transform(data, Ops("png", width=200, height=200, fit="pad", background="336699"),
                              SETTINGS).data)
    assert result.getpixel((100, 10)) == (0x33, 0x66, 0x99)  # padding: as written
    assert result.getpixel((150, 100)) != (128, 128, 128)  # the picture: converted from Adobe RGB


def test_smart_and_focal_gravity_stay_with_fill() -> None:
    with pytest.raises(BadRequest):
        Ops("png", width=10, height=10, fit="pad", gravity="sm")
    assert Ops("png", width=10, height=10, fit="pad", gravity="se").segment == "w10-h10-pad-gse"


def test_blurred_jpeg_still_comes_out_the_right_size() -> None:
    image = Image.new("RGB", (300, 200), (10, 20, 30))
    ImageDraw.Draw(image).ellipse((50, 50, 250, 150), fill=(250, 240, 10))
    result = rendered(image, Ops("jpeg", width=150, blur=1.5), fmt="JPEG")
    assert result.size == (150, 100)


def test_automatic_sharpening_is_the_mild_unsharp_mask_in_one_convolution() -> None:
    photo = opened((SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes()).resize((400, 268))
    sigma, amount = filters.AUTO_SHARPEN
    unsharp = photo.filter(ImageFilter.UnsharpMask(sigma, round(amount * 100), 0))
    fast = filters.auto_sharpen(photo)
    difference = ImageStat.Stat(ImageChops.difference(fast, unsharp)).mean
    effect = ImageStat.Stat(ImageChops.difference(unsharp, photo)).mean
    assert max(difference) < 0.5 < min(effect)  # close to the same sharpening, beside its own effect
