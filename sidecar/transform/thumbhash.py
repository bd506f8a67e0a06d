"""ThumbHash: a placeholder of about 25 bytes that keeps an image's colours, layout, alpha and aspect ratio.

The format is Evan Wallace's (https://evanw.github.io/thumbhash/); this is our own encoder of it, since
the Python packages that offer one depend on plain Pillow. The image (at most 100x100; we hand it 32 px
or less, which loses nothing at this resolution) becomes luminance, two colour-difference channels and
alpha, each reduced to its lowest cosine frequencies: the constant terms and the scale of the varying
ones go into a 5-byte header (6 with alpha), every varying term into 4 bits. Decoders (the JavaScript
reference, and ports in most languages) draw it back as a blurry image of the right aspect ratio.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

MAX_SIDE = 100


def encode(width: int, height: int, rgba: bytes) -> bytes:
    """The ThumbHash of `width`×`height` pixels given as 8-bit RGBA bytes (not premultiplied)."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or len(rgba) != 4 * width * height:
        raise ValueError(f"ThumbHash takes 1 to {MAX_SIDE} pixels a side as RGBA, got {width}x{height}")
    count = width * height
    alphas = [rgba[i + 3] / 255 for i in range(0, 4 * count, 4)]
    total_alpha = sum(alphas)
    # The average colour, weighted by alpha: transparent pixels are shown composited on it.
    average = [0.0, 0.0, 0.0]
    if total_alpha:
        for channel in range(3):
            average[channel] = sum(alphas[i] * rgba[4 * i + channel] / 255 for i in range(count)) / total_alpha
    has_alpha = total_alpha < count
    luminance, yellow_blue, red_green = [], [], []
    for i, alpha in enumerate(alphas):
        r, g, b = (average[c] * (1 - alpha) + alpha * rgba[4 * i + c] / 255 for c in range(3))
        luminance.append((r + g + b) / 3)
        yellow_blue.append((r + g) / 2 - b)
        red_green.append(r - g)
    # Fewer luminance terms when alpha needs room; more along the longer side.
    limit = 5 if has_alpha else 7
    longer = max(width, height)
    lx, ly = max(1, _round(limit * width / longer)), max(1, _round(limit * height / longer))
    l_dc, l_ac, l_scale = _transform(luminance, width, height, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _transform(yellow_blue, width, height, 3, 3)
    q_dc, q_ac, q_scale = _transform(red_green, width, height, 3, 3)
    landscape = width > height
    header24 = (_round(63 * l_dc) | _round(31.5 + 31.5 * p_dc) << 6 | _round(31.5 + 31.5 * q_dc) << 12
                | _round(31 * l_scale) << 18 | int(has_alpha) << 23)
    header16 = (ly if landscape else lx) | _round(63 * p_scale) << 3 | _round(63 * q_scale) << 9 | int(landscape) << 15
    out = bytearray([header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8])
    terms = [*l_ac, *p_ac, *q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _transform(alphas, width, height, 5, 5)
        out.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
        terms += a_ac
    nibbles = [_round(15 * term) for term in terms]
    if len(nibbles) % 2:
        nibbles.append(0)
    out += bytes(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2]))
    return bytes(out)


def _transform(channel: Sequence[float], width: int, height: int, nx: int,
               ny: int) -> tuple[float, list[float], float]:
    """The constant term, the varying terms scaled into 0..1, and their scale, for the cosine frequencies
    (cx, cy) with cx / nx + cy / ny < 1, row by row."""
    cos_x = [[math.cos(math.pi / width * cx * (x + 0.5)) for x in range(width)] for cx in range(nx)]
    cos_y = [[math.cos(math.pi / height * cy * (y + 0.5)) for y in range(height)] for cy in range(ny)]
    rows = [channel[y * width : (y + 1) * width] for y in range(height)]
    # Separable: each row against each horizontal frequency once, then the rows against each vertical one.
    along_x = [[sum(v * c for v, c in zip(row, cos_x[cx])) for row in rows] for cx in range(nx)]
    dc, ac = 0.0, []
    for cy in range(ny):
        cx = 0
        while cx * ny < nx * (ny - cy):
            term = sum(s * c for s, c in zip(along_x[cx], cos_y[cy])) / (width * height)
            if cx or cy:
                ac.append(term)
            else:
                dc = term
            cx += 1
    scale = max((abs(term) for term in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * term for term in ac]
    return dc, ac, scale


def _round(value: float) -> int:
    """Half up, as the reference encoder rounds (Python's round() goes to even)."""
    return math.floor(value + 0.5)
