"""Watermarks, smart crops, AVIF output and animations, with plain values (bytes in, bytes out)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from sidecar.config import Watermark
from sidecar.errors import BadRequest
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.images import encoded, opened

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


@pytest.fixture
def logo(tmp_path: Path) -> Path:
    path = tmp_path / "logo.png"
    mark = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    mark.paste((255, 0, 0, 255), (0, 0, 100, 50))  # solid red: easy to find
    mark.save(path)
    return path


def with_mark(logo: Path, **spec: object) -> Settings:
    return Settings(50_000_000, 82, (255, 255, 255), watermarks={"logo": Watermark(image=logo, **spec)})


def reddish(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 150 and pixel[1] < 100 and pixel[2] < 100


def test_watermark_sits_at_its_position_scaled_to_the_output(logo: Path) -> None:
    grey = encoded(Image.new("RGB", (800, 600), (128, 128, 128)), "PNG")
    settings = with_mark(logo, position="se", opacity=1.0, scale=0.25, margin=0.0, min_size=100)
    result = opened(transform(grey, Ops("png", width=400, watermark="logo"), settings).data).convert("RGB")
    assert result.size == (400, 300)
    # 25% of 400 px wide: a 100x50 red block in the bottom-right corner, nothing elsewhere.
    assert reddish(result.getpixel((399, 299))) and reddish(result.getpixel((301, 251)))
    assert not reddish(result.getpixel((298, 299))) and not reddish(result.getpixel((399, 248)))
    assert not reddish(result.getpixel((5, 5)))


def test_watermark_opacity_and_minimum_size(logo: Path) -> None:
    grey = encoded(Image.new("RGB", (800, 600), (128, 128, 128)), "PNG")
    half = with_mark(logo, position="nw", opacity=0.5, scale=0.25, margin=0.0, min_size=250)
    corner = opened(transform(grey, Ops("png", width=400, watermark="logo"), half).data).getpixel((5, 5))
    assert 180 < corner[0] < 200 and 55 < corner[1] < 75  # half red over grey
    small = opened(transform(grey, Ops("png", width=200, watermark="logo"), half).data)  # 150 px tall
    assert small.getpixel((5, 5))[:3] == (128, 128, 128)


def test_unknown_watermark_is_400() -> None:
    with pytest.raises(BadRequest):
        transform(encoded(Image.new("RGB", (10, 10)), "PNG"), Ops("png", watermark="nope"), SETTINGS)


def test_smart_gravity_keeps_the_subject_in_the_crop() -> None:
    image = Image.new("RGB", (900, 300), (90, 120, 90))
    draw = ImageDraw.Draw(image)
    for x in range(40, 260, 10):
        draw.rectangle((x, 60, x + 4, 240), fill=(250, 30, 30))
    data = encoded(image, "JPEG", quality=95)
    smart = opened(transform(data, Ops("png", width=100, height=100, fit="fill", gravity="sm"), SETTINGS).data)
    centre = opened(transform(data, Ops("png", width=100, height=100, fit="fill"), SETTINGS).data)
    red = lambda im: sum(1 for p in im.convert("RGB").get_flattened_data() if reddish(p))  # noqa: E731
    assert red(smart) > 1000 and red(centre) == 0


def test_avif_output_decodes_with_the_right_size_and_colour() -> None:
    image = Image.new("RGB", (300, 200), (30, 160, 220))
    result = transform(encoded(image, "PNG"), Ops("avif", width=150), SETTINGS)
    assert result.content_type == "image/avif"
    out = opened(result.data).convert("RGB")
    assert out.size == (150, 100)
    assert all(abs(a - b) < 8 for a, b in zip(out.getpixel((75, 50)), (30, 160, 220)))


def test_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("P", (64, 64), i) for i in range(3)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    result = opened(transform(data, Ops("png", width=32), SETTINGS).data).convert("RGB")
    assert result.getpixel((16, 16)) == (0, 0, 0)


def test_transparency_is_flattened_on_the_configured_background() -> None:
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))  # invisible red everywhere
    image.paste((0, 200, 0, 255), (0, 0, 50, 100))
    navy = Settings(50_000_000, 82, (0, 0, 128))
    for fmt in ("jpeg", "auto"):  # auto's legacy variant of a transparent source keeps its alpha as PNG
        result = opened(transform(encoded(image, "PNG"), Ops(fmt, width=50), navy, variant="legacy").data)
        if fmt == "jpeg":
            right = result.getpixel((45, 25))
            assert right[0] < 20 and right[1] < 20 and 110 < right[2] < 145, right
        else:
            assert result.mode == "RGBA" and result.getpixel((45, 25))[3] == 0


def test_heic_input_is_decoded_and_turned_upright_once() -> None:
    image = Image.new("RGB", (400, 200), (128, 128, 128))
    image.paste((255, 0, 0), (0, 0, 100, 50))  # the red marker, top-left as stored
    tags = Image.Exif()
    tags[0x0112] = 6
    data = encoded(image, "HEIF", exif=tags.tobytes(), quality=90)
    result = opened(transform(data, Ops("png", width=100), SETTINGS).data).convert("RGB")
    assert result.size == (100, 200)
    assert reddish(result.getpixel((90, 10))) and not reddish(result.getpixel((10, 10)))  # top-right
