"""The perceptual score the automatic quality searches with: SSIM of the luma, in 8×8 windows.

SSIM (Wang et al. 2004) compares local mean, contrast and structure; 1.0 is identical. We compute it
on luma (BT.601, Pillow's `L`) over non-overlapping 8×8 windows offset by 4 pixels from the image's
corner, so that every window straddles the JPEG block grid: blocking, the artefact a too low quality
shows first, falls inside the windows instead of on their edges. Windows without overlap keep it to
a few sums per pixel (about 2 ms for 800×600 on one core), where the SSIMULACRA2 reference
implementation takes seconds: the search runs it three to five times per rendition. The benchmark
(`make bench-bytes`) judges the results with SSIMULACRA2 as well.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

_WINDOW = 8
_OFFSET = 4
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def luma(image: Image.Image) -> np.ndarray:
    """The image's luma as float32 (transparency ignored: the score is about the encoder's loss)."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB").convert("RGB")
    return np.asarray(image.convert("L"), dtype=np.float32)


def score(reference: np.ndarray, candidate: np.ndarray) -> float:
    """SSIM of two luma planes of the same shape; images smaller than one window compare by mean error."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {candidate.shape}")
    x, y = _windowed(reference), _windowed(candidate)
    if x.size == 0:
        return 1.0 - float(np.abs(reference - candidate).mean()) / 255.0
    n = _WINDOW * _WINDOW
    sx, sy = _sums(x), _sums(y)
    mx, my = sx / n, sy / n
    vx = _sums(x * x) / n - mx * mx
    vy = _sums(y * y) / n - my * my
    cov = _sums(x * y) / n - mx * my
    ssim = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    return float(ssim.mean())


def _windowed(plane: np.ndarray) -> np.ndarray:
    height, width = plane.shape
    rows = max(0, (height - _OFFSET) // _WINDOW * _WINDOW)
    cols = max(0, (width - _OFFSET) // _WINDOW * _WINDOW)
    return np.ascontiguousarray(plane[_OFFSET:_OFFSET + rows, _OFFSET:_OFFSET + cols])


def _sums(plane: np.ndarray) -> np.ndarray:
    """Each 8×8 window's sum: adding the eight columns and rows as slices beats numpy's small-axis sum."""
    height, width = plane.shape
    cols = plane.reshape(height, width // _WINDOW, _WINDOW)
    across = cols[..., 0].copy()
    for i in range(1, _WINDOW):
        across += cols[..., i]
    rows = across.reshape(height // _WINDOW, _WINDOW, width // _WINDOW)
    total = rows[:, 0].copy()
    for i in range(1, _WINDOW):
        total += rows[:, i]
    return total
