"""Smart gravity: put a `fill` crop where the picture draws the eye.

An attention score after libvips' "attention" crop: the image is shrunk to a thumbnail and each pixel
scored by what people look at — edges (detail), skin tones (people), saturated colour, and brightness
(a subject is rarely in the shadows) — and the crop window is slid along its free axis (a fill crop
spans the whole other one) to the position holding the most score. The result is a focus point for
`geometry.plan`, like a focal point from the URL.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

_THUMB = 128  # longest side of the scored thumbnail
#: Weights of the scores (each 0-255 per pixel): skin draws the eye most, then detail, then colour.
_EDGES, _SKIN, _SATURATION, _BRIGHTNESS = 1.0, 1.5, 0.5, 0.25
#: Saturation counts only where the pixel is this bright (dark noise is often saturated).
_SATURATED_ABOVE = 40


def focus(image: Image.Image, crop: tuple[float, float]) -> tuple[float, float]:
    """Where to centre a crop of `crop` (width, height, as fractions of the image) on `image`."""
    score = attention(image)
    return _best(score.sum(axis=0), crop[0]), _best(score.sum(axis=1), crop[1])


def attention(image: Image.Image) -> np.ndarray:
    """Each pixel of a thumbnail of `image`, scored for attention (float array, height x width)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((_THUMB, _THUMB), Image.Resampling.BILINEAR)
    luma = thumb.convert("L")
    edges = np.asarray(luma.filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32)
    saturation = np.where(hsv[:, :, 2] > _SATURATED_ABOVE, hsv[:, :, 1], 0.0)
    ycbcr = np.asarray(thumb.convert("YCbCr"), dtype=np.int16)
    cb, cr = ycbcr[:, :, 1], ycbcr[:, :, 2]
    skin = ((cr >= 138) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (ycbcr[:, :, 0] > 60)) * 255.0
    brightness = np.asarray(luma, dtype=np.float32)
    score = _EDGES * edges + _SKIN * skin + _SATURATION * saturation + _BRIGHTNESS * brightness
    # libvips blurs its score so that a region, not a speck, wins; a box blur of a few pixels does it.
    blurred = Image.fromarray(np.clip(score / 4, 0, 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(2))
    return np.asarray(blurred, dtype=np.float32)


def _best(profile: np.ndarray, fraction: float) -> float:
    """The centre (as a fraction) of the window of `fraction` of the profile with the largest sum; of
    windows that tie (all holding the whole subject), the middle one, so the subject sits centred."""
    size = len(profile)
    window = max(1, min(size, round(size * fraction)))
    if window >= size:
        return 0.5
    sums = np.convolve(profile, np.ones(window), mode="valid")
    best = np.flatnonzero(sums >= sums.max() * (1 - 1e-6))
    # As a share of the slack, so the first and last windows are the crop against either edge exactly
    # (the thumbnail's whole pixels would otherwise leave a sliver).
    share = (best[0] + best[-1]) / 2 / (size - window)
    return float(fraction / 2 + share * (1 - fraction))
