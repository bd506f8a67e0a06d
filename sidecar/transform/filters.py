"""Pixel operations after the resize: blur, sharpen, pad and flatten. Pure functions.

Blur and sharpen work on premultiplied alpha, so colour hidden under transparent pixels never bleeds into
visible ones (the same reason the resize premultiplies). Sigmas are in the rendition's own pixels.
"""
from __future__ import annotations

import math

from PIL import Image, ImageFilter

_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
#: The automatic sharpening after a strong downscale: a mild unsharp mask (sigma, amount). Mild on
#: purpose: LANCZOS already keeps edges; this only restores the crispness that averaging many source
#: pixels into one takes away. Amount 0.4 without a threshold gives the bytes (so the high frequencies)
#: of the former UnsharpMask(0.6, 60, threshold 2), with a higher SSIM against an unsharpened reference.
AUTO_SHARPEN = (0.6, 0.4)
#: The explicit `sh{sigma}`: unsharp mask of that radius at full strength.
SHARPEN_PERCENT, SHARPEN_THRESHOLD = 100, 0


def blur(image: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur with standard deviation `sigma` (rendition pixels)."""
    return _filtered(image, ImageFilter.GaussianBlur(sigma))


def sharpen(image: Image.Image, sigma: float, percent: int = SHARPEN_PERCENT,
            threshold: int = SHARPEN_THRESHOLD) -> Image.Image:
    """Unsharp mask: add back `percent` of the difference from a Gaussian blur of `sigma`."""
    return _filtered(image, ImageFilter.UnsharpMask(sigma, percent, threshold))


def auto_sharpen(image: Image.Image) -> Image.Image:
    """The automatic sharpening: `AUTO_SHARPEN` as one 3x3 convolution. A Gaussian of sigma 0.6 hardly
    reaches past the next pixel, so the 3x3 kernel is the unsharp mask (without its threshold) in one
    SIMD pass: a tenth of the time of Pillow's blur-then-compare `UnsharpMask` (`bench/pipeline.py`)."""
    return _filtered(image, _AUTO_KERNEL)


def _unsharp_kernel(sigma: float, amount: float) -> ImageFilter.Kernel:
    side = math.exp(-1 / (2 * sigma * sigma))
    weights = [side, 1.0, side]
    total = sum(weights)
    gauss = [a * b / (total * total) for a in weights for b in weights]
    kernel = [-amount * g for g in gauss]
    kernel[4] += 1 + amount  # the image plus `amount` times (image - blur)
    return ImageFilter.Kernel((3, 3), kernel, scale=1)


_AUTO_KERNEL = _unsharp_kernel(*AUTO_SHARPEN)


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
