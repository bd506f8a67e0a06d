"""Test images: encode and decode bytes, and a marked picture whose red corner shows its orientation."""
from __future__ import annotations

import io

from PIL import Image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    """`image` saved as `fmt` (a Pillow format name), as bytes."""
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    """Decoded image bytes."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def marked(width: int = 400, height: int = 200) -> Image.Image:
    """Grey, with a red block in the top-left corner: where it ends up shows the orientation."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    image.paste((255, 0, 0), (0, 0, width // 4, height // 4))
    return image


def red(pixel: object) -> bool:
    """Whether an RGB pixel (as `getpixel` gives it) is the marker's red."""
    assert isinstance(pixel, tuple), pixel
    return bool(pixel[0] > 200 and pixel[1] < 80)


def corner_colour(image: Image.Image) -> str:
    """Which corner (tl, tr, bl, br) holds the red marker."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    spots = {"tl": (w // 16, h // 16), "tr": (w - 1 - w // 16, h // 16),
             "bl": (w // 16, h - 1 - h // 16), "br": (w - 1 - w // 16, h - 1 - h // 16)}
    reds = [name for name, xy in spots.items() if red(rgb.getpixel(xy))]
    assert len(reds) == 1, reds
    return reds[0]


def small_jpeg(width: int = 160, height: int = 120) -> bytes:
    """A small plain JPEG, cheap to fetch and render: an original for the source tests."""
    return encoded(Image.new("RGB", (width, height), (200, 30, 60)), "JPEG", quality=80)
