"""Pixel operations after the resize: blur, sharpen, pad and flatten. Pure functions.

Blur and sharpen work on premultiplied alpha, so colour hidden under transparent pixels never bleeds into
visible ones (the same reason the resize premultiplies). Sigmas are in the rendition's own pixels.
"""
from __future__ import annotations

from PIL import Image, ImageFilter

_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
#: The automatic sharpening after a strong downscale: a mild unsharp mask (radius, percent, threshold).
#: Mild on purpose: LANCZOS already keeps edges; this only restores the crispness that averaging
#: many source pixels into one takes away.
AUTO_SHARPEN = (0.6, 60, 2)
#: The explicit `sh{sigma}`: unsharp mask of that radius at full strength.
SHARPEN_PERCENT, SHARPEN_THRESHOLD = 100, 0


def blur(image: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur with standard deviation `sigma` (rendition pixels)."""
    return _filtered(image, ImageFilter.GaussianBlur(sigma))


def sharpen(image: Image.Image, sigma: float, percent: int = SHARPEN_PERCENT,
            threshold: int = SHARPEN_THRESHOLD) -> Image.Image:
    """Unsharp mask: add back `percent` of the difference from a Gaussian blur of `sigma`."""
    return _filtered(image, ImageFilter.UnsharpMask(sigma, percent, threshold))


def pad(image: Image.Image, canvas: tuple[int, int], position: tuple[float, float],
        fill: tuple[int, int, int] | None) -> Image.Image:
    """`image` on a canvas of exactly `canvas` pixels, placed at `position` (fractions of the slack on each
    axis, as gravity gives them). `fill` None means transparent (the image keeps or gains alpha)."""
    if image.size == canvas:
        return image
    if fill is None:
        mode = "LA" if image.mode in ("L", "LA") else "RGBA"
        colour: tuple[int, ...] = (0, 0) if mode == "LA" else (0, 0, 0, 0)
    else:
        mode = "RGBA" if "A" in image.mode else "RGB"
        colour = (*fill, 255) if mode == "RGBA" else fill
    base = Image.new(mode, canvas, colour)
    left = round((canvas[0] - image.width) * position[0])
    top = round((canvas[1] - image.height) * position[1])
    base.paste(image.convert(mode), (left, top))
    return base


def flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Transparency composited on an opaque `background` (RGB out); images without alpha are unchanged."""
    if "A" not in image.mode:
        return image
    rgba = image.convert("RGBA")
    base = Image.new("RGB", rgba.size, background)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def _filtered(image: Image.Image, kernel: ImageFilter.Filter) -> Image.Image:
    premultiplied = _PREMULTIPLIED.get(image.mode)
    if premultiplied is None:
        return image.filter(kernel)
    return image.convert(premultiplied).filter(kernel).convert(image.mode)
