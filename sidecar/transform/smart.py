"""Smart gravity: put a `fill` crop where the picture is busiest (edges and saturated colour).

A cheap stand-in for libvips' "attention" crop: the image is shrunk to a thumbnail, each pixel scored by
edge strength plus saturation, and the crop window slid along its free axis to the position holding the
most score. The result is a focus point for `geometry.plan`, like a focal point from the URL.
"""
from __future__ import annotations

from PIL import Image, ImageChops, ImageFilter

_THUMB = 96  # longest side of the scored thumbnail


def focus(image: Image.Image, crop: tuple[float, float]) -> tuple[float, float]:
    """Where to centre a crop of `crop` (width, height, as fractions of the image) on `image`."""
    thumb = image.convert("RGB")
    thumb.thumbnail((_THUMB, _THUMB), Image.Resampling.BILINEAR)
    edges = thumb.convert("L").filter(ImageFilter.FIND_EDGES)
    saturation = thumb.convert("HSV").getchannel("S").point(lambda s: s // 2)
    score = ImageChops.add(edges, saturation)
    width, height = score.size
    columns = list(score.resize((width, 1), Image.Resampling.BOX).get_flattened_data())
    rows = list(score.resize((1, height), Image.Resampling.BOX).get_flattened_data())
    return _best(columns, crop[0]), _best(rows, crop[1])


def _best(profile: list[int], fraction: float) -> float:
    """The centre (as a fraction) of the window of `fraction` of the profile with the largest sum."""
    size = len(profile)
    window = max(1, min(size, round(size * fraction)))
    if window >= size:
        return 0.5
    total = best = sum(profile[:window])
    best_start = 0
    for start in range(1, size - window + 1):
        total += profile[start + window - 1] - profile[start - 1]
        if total > best:
            best, best_start = total, start
    return (best_start + window / 2) / size
