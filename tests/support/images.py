"""Test images: encode and decode bytes, a marked picture whose red corner shows its orientation, and the
pictures the unit and e2e tests of a feature share (a real photo, a pan over it as GIF frames, an SVG, a PDF)."""
from __future__ import annotations

import io

from PIL import Image

from tests.support.paths import SAMPLES

#: A 40x20 SVG: its left half red, its right half blue.
SQUARE_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" viewBox="0 0 4 2">'
              b'<rect width="2" height="2" fill="#ff0000"/><rect x="2" width="2" height="2" fill="#0000ff"/></svg>')


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


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """`image` as an RGB JPEG."""
    return encoded(image.convert("RGB"), "JPEG", quality=quality)


def pdf_of(image: Image.Image, **options: object) -> bytes:
    """`image` as a one-page PDF."""
    return encoded(image.convert("RGB"), "PDF", **options)


def photo(name: str = "road-1920x1080.jpg") -> Image.Image:
    """A photo from samples/, as RGB."""
    return Image.open(SAMPLES / name).convert("RGB")


def pan(frames: int = 8, size: tuple[int, int] = (160, 120), step: int = 12) -> list[Image.Image]:
    """A pan over a real photo: each frame the window moved `step` pixels right."""
    with Image.open(SAMPLES / "road-1920x1080.jpg") as source:
        source.draft("RGB", (480, 270))
        small = source.convert("RGB").resize((480, 270))
        small.info = {}  # the photo's JPEG comment would go into the GIF
    return [small.crop((i * step, 40, i * step + size[0], 40 + size[1])) for i in range(frames)]


def gif(frames: list[Image.Image], durations: list[int] | int = 80, **options: object) -> bytes:
    """An animated GIF of `frames`, each shown `durations` ms (one number or one per frame)."""
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=durations, **options)
