"""Trim: find the box inside uniform borders (a product's white background, letterboxing). Pure.

The border's colour is taken from the corners: the colour that most of the four corner pixels share
(within the threshold), so one corner cut by the subject does not decide it. A pixel belongs to the
border when every channel is within `threshold` of that colour. With alpha, a transparent corner makes
transparency the border (any pixel at most `threshold` opaque), whatever colour its hidden pixels hold;
an opaque corner compares alpha like any channel. Nothing is trimmed from an image that is all border.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from sidecar.url.canonical import TRIM_THRESHOLD

#: Modes compared channel by channel as they are (CMYK too: its white is all zeros, like any colour).
_MODES = ("L", "LA", "RGB", "RGBA", "CMYK")

Box = tuple[int, int, int, int]


def box(image: Image.Image, threshold: int = TRIM_THRESHOLD) -> Box:
    """(left, top, right, bottom) of what is left when the uniform borders are cut off."""
    width, height = image.size
    if image.mode not in _MODES:
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    corners = [pixels[y, x].astype(np.int16) for y in (0, -1) for x in (0, -1)]
    has_alpha = image.mode in ("LA", "RGBA")
    border = _border_colour(corners, threshold)
    if has_alpha and border[-1] <= threshold:
        content = pixels[:, :, -1] > threshold
    else:
        low = np.clip(border - threshold, 0, 255).astype(np.uint8)
        high = np.clip(border + threshold, 0, 255).astype(np.uint8)
        content = ((pixels < low) | (pixels > high)).any(axis=2)
    columns = np.flatnonzero(content.any(axis=0))
    rows = np.flatnonzero(content.any(axis=1))
    if columns.size == 0:
        return (0, 0, width, height)
    return (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)


def _border_colour(corners: list[np.ndarray], threshold: int) -> np.ndarray:
    """The corner colour most other corners are within `threshold` of (the first such, on a tie)."""
    def agreeing(colour: np.ndarray) -> int:
        return sum(bool((np.abs(other - colour) <= threshold).all()) for other in corners)
    return max(corners, key=agreeing)
