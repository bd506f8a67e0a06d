"""Searches over the encoder's quality: the lowest one whose output keeps a perceptual target (`qauto`),
and the highest one whose output fits a byte budget (`mb{bytes}`).

Both are bisections over a quality range, so their cost is a fixed number of encodes. The perceptual
search encodes a sample rather than the whole rendition: a mosaic of tiles cut on the 16-pixel grid of
JPEG's blocks (and of WebP's and AVIF's smallest ones), so each tile is compressed much as it is inside
the image. The byte search must measure the real thing, so it encodes the whole rendition.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from sidecar.transform import perceptual

#: The lowest quality either search goes to: below it every encoder's output falls apart.
LOWEST = 30
#: The floor of the byte search: a budget that needs less gets the smallest we can make.
LOWEST_FOR_BYTES = 10
#: Encodes per perceptual search: the answer is within (ceiling - LOWEST) / 2**PROBES of the exact one.
PROBES = 5
#: Tiles per side of the sample, and a tile's side (a multiple of 16).
TILES = 4
TILE = 96

Encoder = Callable[[Image.Image, int], bytes]


@dataclass(frozen=True)
class Fitted:
    """The byte search's answer: the bytes, the quality used, and whether they fit the budget."""

    data: bytes
    quality: int
    fits: bool


def lowest_quality(image: Image.Image, encode: Encoder, target: float, ceiling: int, *,
                   floor: int = LOWEST, probes: int = PROBES, tiles: int = TILES) -> int:
    """The lowest quality from `floor` to `ceiling` whose output scores at least `target` (SSIM, see
    `perceptual`) against `image`; `ceiling` when none below it does. Scores rise with quality, so a
    bisection: `probes` encodes of the sample."""
    if ceiling <= floor:
        return ceiling
    sample = _sample(image, tiles)
    reference = perceptual.luma(sample)
    low, high = floor, ceiling  # invariant: `high` is good enough (assumed for the ceiling)
    for _ in range(probes):
        if low >= high:
            break
        middle = (low + high) // 2
        decoded = Image.open(io.BytesIO(encode(sample, middle)))
        if perceptual.score(reference, perceptual.luma(decoded)) >= target:
            high = middle
        else:
            low = middle + 1
    return high


def fitting_quality(image: Image.Image, encode: Encoder, budget: int, ceiling: int, *,
                    floor: int = LOWEST_FOR_BYTES) -> Fitted:
    """The highest quality up to `ceiling` whose output is at most `budget` bytes; when even `floor`
    is too big, the output at `floor` (the smallest this image makes), marked as not fitting."""
    data = encode(image, ceiling)
    if len(data) <= budget:
        return Fitted(data, ceiling, True)
    smallest = encode(image, floor)
    if len(smallest) > budget:
        return Fitted(smallest, floor, False)
    best = Fitted(smallest, floor, True)
    low, high = floor + 1, ceiling - 1  # `floor` fits, `ceiling` does not
    while low <= high:
        middle = (low + high) // 2
        data = encode(image, middle)
        if len(data) <= budget:
            best, low = Fitted(data, middle, True), middle + 1
        else:
            high = middle - 1
    return best


def _sample(image: Image.Image, tiles: int = TILES) -> Image.Image:
    """The image itself when it is small, else tiles×tiles tiles spread evenly over it, side by side."""
    width, height = image.size
    side = tiles * TILE
    if width * height <= 2 * side**2 or width < side or height < side:
        return image
    mosaic = Image.new(image.mode, (side, side))
    for row in range(tiles):
        top = _grid(row * (height - TILE) // (tiles - 1))
        for col in range(tiles):
            left = _grid(col * (width - TILE) // (tiles - 1))
            mosaic.paste(image.crop((left, top, left + TILE, top + TILE)), (col * TILE, row * TILE))
    return mosaic


def _grid(position: int) -> int:
    return position // 16 * 16
