"""Colour, judged by pixels: every profile to sRGB, CMYK/YCCK not inverted, modes resized smoothly."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from sidecar.transform import colour as colour_module
from sidecar.transform.pipeline import Rendered, Settings, transform
from sidecar.url.grammar import Ops
from tests.support.corpus import require_corpus
from tests.support.images import encoded, opened

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
SRGB = ImageCms.createProfile("sRGB")
NO_CMYK = Path("/nonexistent")  # RGB conversions never read the CMYK profile


def decoded(result: Rendered) -> Image.Image:
    return opened(result.data)


def real(name: str) -> bytes:
    return (require_corpus() / "real" / name).read_bytes()


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def patches(colours: list[tuple[int, ...]], mode: str, side: int = 64) -> Image.Image:
    image = Image.new(mode, (side * len(colours), side))
    for index, colour in enumerate(colours):
        image.paste(colour, (index * side, 0, (index + 1) * side, side))
    return image


def patch(image: Image.Image, index: int, count: int) -> tuple[int, ...]:
    width, height = image.size
    return image.convert("RGB").getpixel((int((index + 0.5) * width / count), height // 2))


def test_cmyk_jpeg_without_profile_gets_swop_colours_not_inverted() -> None:
    # Cyan, magenta+yellow (red), black and no ink: Pillow writes an Adobe (inverted) CMYK JPEG.
    data = encoded(patches([(255, 0, 0, 0), (0, 255, 255, 0), (0, 0, 0, 255), (0, 0, 0, 0)], "CMYK"), "JPEG",
                  quality=95)
    result = decoded(transform(data, Ops("png", width=128), SETTINGS))
    assert result.mode == "RGB" and "icc_profile" not in result.info
    cyan, red, black, white = (patch(result, i, 4) for i in range(4))
    assert cyan[0] < 60 and cyan[1] > 130 and cyan[2] > 200, cyan
    assert red[0] > 200 and red[1] < 80 and red[2] < 80, red
    assert max(black) < 70, black                       # an inverted decode makes this white
    assert min(white) > 240, white


def test_ycck_jpeg_without_profile_is_not_inverted() -> None:
    result = decoded(transform(real("jpeg/ycck_adobe.jpg"), Ops("png"), SETTINGS)).convert("RGB")
    pixels = list(result.get_flattened_data())
    dark = sum(1 for p in pixels if max(p) < 50)
    red = sum(1 for p in pixels if p[0] > 170 and p[1] < 90 and p[2] < 90)
    assert dark > len(pixels) * 0.5, "the black background came out light: inverted"
    assert red > len(pixels) * 0.03, "no red lettering"


def test_cmyk_jpeg_uses_its_own_profile() -> None:
    data = real("jpeg/cmyk_swop_icc.jpg")
    source = Image.open(io.BytesIO(data))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(source.info["icc_profile"]))
    expected = ImageCms.profileToProfile(source, profile, SRGB, outputMode="RGB",
                                         renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                         flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
    result = decoded(transform(data, Ops("png"), SETTINGS))
    middle = (result.width // 2, result.height // 2)
    assert close(result.getpixel(middle), expected.getpixel(middle), 3)
    naive = source.convert("RGB").getpixel(middle)
    assert not close(result.getpixel(middle), naive, 20), "the profile was ignored"


@pytest.mark.parametrize("profile_of", ["jpeg/adobergb_a98_icc.jpg", "jpeg/displayp3_icc.jpg"])
def test_rgb_profiles_are_converted_to_srgb_and_dropped(profile_of: str) -> None:
    icc = Image.open(io.BytesIO(real(profile_of))).info["icc_profile"]
    colours = [(200, 100, 100), (60, 160, 60), (90, 90, 200), (128, 128, 128)]
    data = encoded(patches(colours, "RGB"), "PNG", icc_profile=icc)
    expected = ImageCms.applyTransform(
        patches(colours, "RGB"),
        ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, "RGB", "RGB",
                                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                flags=ImageCms.Flags.BLACKPOINTCOMPENSATION))
    result = decoded(transform(data, Ops("png", width=128), SETTINGS))
    assert "icc_profile" not in result.info
    moved = 0
    for index, colour in enumerate(colours):
        want = patch(expected, index, 4)
        assert close(patch(result, index, 4), want, 2), (index, patch(result, index, 4), want)
        moved += not close(want, colour, 6)
    assert moved >= 2, "this profile is too close to sRGB to tell anything"


def test_the_same_photo_in_xyb_and_adobe_rgb_comes_out_alike() -> None:
    # Two encodings of one picture: ignoring the XYB profile turns the straw green.
    xyb = decoded(transform(real("jpeg/xyb_jpegli_icc.jpg"), Ops("png", width=100), SETTINGS)).convert("RGB")
    a98 = decoded(transform(real("jpeg/adobergb_a98_icc.jpg"), Ops("png", width=100), SETTINGS)).convert("RGB")
    assert xyb.size == a98.size
    diff = sum(abs(x - y) for p, q in zip(xyb.get_flattened_data(), a98.get_flattened_data()) for x, y in zip(p, q))
    assert diff / (xyb.width * xyb.height * 3) < 4
    naive = Image.open(io.BytesIO(real("jpeg/xyb_jpegli_icc.jpg"))).convert("RGB").resize(a98.size)
    naive_diff = sum(abs(x - y) for p, q in zip(naive.get_flattened_data(), a98.get_flattened_data())
                     for x, y in zip(p, q))
    assert naive_diff / (xyb.width * xyb.height * 3) > 20


def test_grey_profile_keeps_a_grey_image_grey() -> None:
    result = decoded(transform(real("jpeg/gray_gamma22_icc.jpg"), Ops("jpeg", width=200), SETTINGS))
    assert result.mode == "L" and "icc_profile" not in result.info


def test_one_bit_image_is_resized_as_grey() -> None:
    image = Image.new("1", (100, 100), 0)
    image.paste(1, (50, 0, 100, 100))
    result = decoded(transform(encoded(image, "PNG"), Ops("png", width=25), SETTINGS))
    edge = [result.convert("L").getpixel((x, 5)) for x in range(25)]
    assert any(20 < v < 235 for v in edge), edge  # interpolated, not nearest-neighbour


def test_16_bit_rgb_is_scaled_not_clipped() -> None:
    result = decoded(transform(real("png/rgba16_basn6a16.png"), Ops("png", width=16), SETTINGS))
    assert result.mode == "RGBA"
    assert max(max(p[:3]) for p in result.get_flattened_data()) > 200  # clipping 16-bit values at 255 gives flat white
    assert len(set(result.get_flattened_data())) > 20


def test_rgb_profiles_go_through_a_table_that_follows_littlecms() -> None:
    photo = Image.open(require_corpus() / "photos" / "tree-iphone7-4032x3024.jpg")
    icc = photo.info["icc_profile"]
    small = photo.convert("RGB").resize((400, 300))
    assert colour_module._lut(icc) is not None  # Display P3: the fast path
    exact = ImageCms.applyTransform(small, colour_module._transform(icc, "RGB", "RGB"))
    fast = colour_module.to_srgb(small, icc, NO_CMYK)
    difference = ImageChops.difference(fast, exact)
    assert max(ImageStat.Stat(difference).mean) < 0.6
    assert max(high for _, high in difference.getextrema()) <= colour_module.LUT_WORST
    # XYB's profile bends too much between the table's points: it keeps the exact transform.
    xyb = Image.open(io.BytesIO(real("jpeg/xyb_jpegli_icc.jpg"))).info["icc_profile"]
    assert colour_module._lut(xyb) is None


def test_a_profile_seen_again_reuses_its_transform_and_table() -> None:
    icc = Image.open(io.BytesIO(real("jpeg/adobergb_a98_icc.jpg"))).info["icc_profile"]
    image = patches([(200, 100, 100)], "RGB")
    colour_module.to_srgb(image, bytes(icc), NO_CMYK)
    built = colour_module._transform.cache_info().misses, colour_module._lut.cache_info().misses
    colour_module.to_srgb(image, bytes(bytearray(icc)), NO_CMYK)  # equal bytes, another object
    assert (colour_module._transform.cache_info().misses, colour_module._lut.cache_info().misses) == built
