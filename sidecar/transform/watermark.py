"""Watermarks: an image from the config laid over the rendition, scaled to it, at a fixed position."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image

from sidecar.config import Watermark
from sidecar.transform.colour import resizable, to_srgb
from sidecar.transform.geometry import COMPASS_FRACTIONS


def apply(image: Image.Image, mark: Watermark, cmyk_profile: Path) -> Image.Image:
    """`image` (L, LA, RGB or RGBA) with the watermark on it; unchanged if it is below `mark.min_size`."""
    width, height = image.size
    if min(width, height) < mark.min_size:
        return image
    source = _load(mark.image, mark.image.stat().st_mtime_ns, cmyk_profile)
    mark_w = max(1, round(width * mark.scale))
    mark_h = max(1, round(source.height * mark_w / source.width))
    if mark_h > height:  # a tall watermark on a wide rendition: fit the height instead
        mark_w, mark_h = max(1, round(source.width * height / source.height)), height
    overlay = source.resize((mark_w, mark_h), Image.Resampling.LANCZOS)
    if mark.opacity < 1:
        overlay.putalpha(overlay.getchannel("A").point(lambda a: round(a * mark.opacity)))
    margin = round(min(width, height) * mark.margin)
    fx, fy = COMPASS_FRACTIONS[mark.position]
    left = round(margin + (width - 2 * margin - mark_w) * fx)
    top = round(margin + (height - 2 * margin - mark_h) * fy)
    base = image.convert("RGBA" if "A" in image.mode else "RGB")
    if base.mode == "RGBA":
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        layer.paste(overlay, (left, top))
        return Image.alpha_composite(base, layer)
    base.paste(overlay, (left, top), overlay)
    return base


@lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, cmyk_profile: Path) -> Image.Image:
    """The watermark as sRGB RGBA, decoded once per file version."""
    with Image.open(path) as image:
        image.load()
        icc = image.info.get("icc_profile")
        pixels = to_srgb(resizable(image), icc, cmyk_profile)
    return pixels.convert("RGBA")
