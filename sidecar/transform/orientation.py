"""Orientation: the EXIF orientation and the URL's rotation and flip as one transpose, applied last.

Turning a decoded 12 MP photo costs more than resizing it, and every one of the eight ways a picture
can be turned or mirrored is a dihedral symmetry: it commutes with a resize (the box mapped back into
the stored pixels), with colour conversion and with the isotropic filters. So the pipeline plans the
crop in displayed coordinates, maps that box back into the stored image's own coordinates, resizes
there, and turns only the small result: one `transpose` of the rendition instead of up to three of
the original. Pure functions of sizes and boxes, plus the composite table.
"""
from __future__ import annotations

from functools import lru_cache

from PIL import Image

Box = tuple[float, float, float, float]
T = Image.Transpose

#: EXIF orientation (1-8) -> the transposes that show the stored pixels upright.
EXIF_TRANSPOSES: dict[int, tuple[Image.Transpose, ...]] = {
    2: (T.FLIP_LEFT_RIGHT,), 3: (T.ROTATE_180,), 4: (T.FLIP_TOP_BOTTOM,), 5: (T.TRANSPOSE,),
    6: (T.ROTATE_270,), 7: (T.TRANSVERSE,), 8: (T.ROTATE_90,),
}
#: Clockwise degrees -> Pillow's transpose (whose ROTATE_* turn counter-clockwise).
CLOCKWISE = {90: T.ROTATE_270, 180: T.ROTATE_180, 270: T.ROTATE_90}
_SWAPS_AXES = (T.ROTATE_90, T.ROTATE_270, T.TRANSPOSE, T.TRANSVERSE)
_INVERSE = {T.ROTATE_90: T.ROTATE_270, T.ROTATE_270: T.ROTATE_90}


def steps(orientation: int, degrees: int, flip: bool) -> tuple[Image.Transpose, ...]:
    """The transposes in order: EXIF orientation, then the URL's clockwise rotation, then its flip."""
    turns = list(EXIF_TRANSPOSES.get(orientation, ()))
    if degrees:
        turns.append(CLOCKWISE[degrees])
    if flip:
        turns.append(T.FLIP_LEFT_RIGHT)
    return tuple(turns)


@lru_cache(maxsize=64)
def composite(orientation: int, degrees: int = 0, flip: bool = False) -> Image.Transpose | None:
    """The one transpose equal to `steps(...)` in sequence; None when they cancel out (or there are none).

    Found by doing both to a tiny image whose pixels are all different: exact, and cheap once cached.
    """
    probe = Image.frombytes("L", (3, 2), bytes(range(6)))
    turned = probe
    for method in steps(orientation, degrees, flip):
        turned = turned.transpose(method)
    if turned.tobytes() == probe.tobytes() and turned.size == probe.size:
        return None
    for method in T:
        candidate = probe.transpose(method)
        if candidate.size == turned.size and candidate.tobytes() == turned.tobytes():
            return method
    raise AssertionError("the eight symmetries of a rectangle are closed under composition")


def swaps_axes(method: Image.Transpose | None) -> bool:
    """Whether the transpose exchanges width and height."""
    return method in _SWAPS_AXES


def stored_box(method: Image.Transpose | None, box: Box, shown: tuple[int | float, int | float]) -> Box:
    """A box in the displayed image (after `method`, of size `shown`) as a box in the stored pixels."""
    if method is None:
        return box
    inverse = _INVERSE.get(method, method)  # every other symmetry is its own inverse
    left, top, right, bottom = box
    corners = [_forward(inverse, x, y, shown) for x, y in ((left, top), (right, bottom))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return (min(xs), min(ys), max(xs), max(ys))


def stored_point(method: Image.Transpose | None, point: tuple[float, float]) -> tuple[float, float]:
    """A point as fractions of the displayed image, as fractions of the stored one."""
    if method is None:
        return point
    return _forward(_INVERSE.get(method, method), point[0], point[1], (1.0, 1.0))


def shown_point(method: Image.Transpose | None, point: tuple[float, float]) -> tuple[float, float]:
    """A point as fractions of the stored image, as fractions of the displayed one."""
    if method is None:
        return point
    return _forward(method, point[0], point[1], (1.0, 1.0))


def _forward(method: Image.Transpose, x: float, y: float,
             size: tuple[int | float, int | float]) -> tuple[float, float]:
    """Where the point (x, y) of an image of `size` lands after `method` (edges, not pixel centres)."""
    width, height = size
    if method == T.FLIP_LEFT_RIGHT:
        return width - x, y
    if method == T.FLIP_TOP_BOTTOM:
        return x, height - y
    if method == T.ROTATE_180:
        return width - x, height - y
    if method == T.ROTATE_90:  # counter-clockwise
        return y, width - x
    if method == T.ROTATE_270:  # clockwise
        return height - y, x
    if method == T.TRANSPOSE:
        return y, x
    return height - y, width - x  # TRANSVERSE
