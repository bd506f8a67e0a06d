"""Geometry: from the source size and the operations to a crop box and an output size. Pure."""
from __future__ import annotations

from dataclasses import dataclass

from ..url import Ops

Box = tuple[float, float, float, float]

# Where a fill crop sits, as fractions of the slack on each axis.
_GRAVITY = {
    "ce": (0.5, 0.5), "n": (0.5, 0.0), "s": (0.5, 1.0), "e": (1.0, 0.5), "w": (0.0, 0.5),
    "ne": (1.0, 0.0), "nw": (0.0, 0.0), "se": (1.0, 1.0), "sw": (0.0, 1.0),
}


@dataclass(frozen=True)
class Plan:
    """Take `box` (left, top, right, bottom, in source pixels) and scale it to `size`."""

    box: Box
    size: tuple[int, int]

    @property
    def scale(self) -> float:
        """The largest of the two axis scales (output pixels per source pixel)."""
        left, top, right, bottom = self.box
        return max(self.size[0] / (right - left), self.size[1] / (bottom - top))

    @property
    def is_identity(self) -> bool:
        left, top, right, bottom = self.box
        return (left, top) == (0, 0) and self.size == (right, bottom)

    def scaled(self, fx: float, fy: float) -> Plan:
        """The same plan on a source scaled by fx, fy (after a reduced-size JPEG decode)."""
        left, top, right, bottom = self.box
        return Plan((left * fx, top * fy, right * fx, bottom * fy), self.size)


def plan(width: int, height: int, ops: Ops, *, enlarge: bool = False) -> Plan:
    """Plan the geometry for a `width`×`height` source (after orientation). Sides are never below 1 px."""
    full: Box = (0, 0, width, height)
    if ops.width is None and ops.height is None:
        return Plan(full, (width, height))
    if ops.fit == "force":
        w, h = ops.width or width, ops.height or height
        if not enlarge:
            w, h = min(w, width), min(h, height)
        return Plan(full, (w, h))
    if ops.fit == "fill":
        return _fill(width, height, ops.width or width, ops.height or height, ops.gravity, enlarge)
    scales = [s for s in (ops.width and ops.width / width, ops.height and ops.height / height) if s]
    scale = min(scales)
    if not enlarge:
        scale = min(scale, 1.0)
    return Plan(full, (_side(width * scale), _side(height * scale)))


def _fill(width: int, height: int, w: int, h: int, gravity: str, enlarge: bool) -> Plan:
    # The largest box of the target's aspect ratio inside the source.
    crop_w = min(float(width), height * w / h)
    crop_h = crop_w * h / w
    if not enlarge and w > crop_w:
        # Not enough pixels: keep the aspect ratio, give what the source has.
        w, h = _side(crop_w), _side(crop_h)
    fx, fy = _GRAVITY[gravity]
    left, top = (width - crop_w) * fx, (height - crop_h) * fy
    return Plan((left, top, left + crop_w, top + crop_h), (w, h))


def _side(value: float) -> int:
    return max(1, round(value))
