"""Geometry: from the source size and the operations to a crop box and an output size. Pure."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.url.grammar import FOCUS_SCALE, Ops

Box = tuple[float, float, float, float]

#: Where a fill crop (or a watermark) sits, as fractions of the slack on each axis.
COMPASS_FRACTIONS = {
    "ce": (0.5, 0.5), "n": (0.5, 0.0), "s": (0.5, 1.0), "e": (1.0, 0.5), "w": (0.0, 0.5),
    "ne": (1.0, 0.0), "nw": (0.0, 0.0), "se": (1.0, 1.0), "sw": (0.0, 1.0),
}


@dataclass(frozen=True)
class Plan:
    """Take `box` (left, top, right, bottom, in source pixels) and scale it to `size`; with `canvas`
    (`pad`), then place that on a canvas of exactly this size."""

    box: Box
    size: tuple[int, int]
    canvas: tuple[int, int] | None = None

    @property
    def scale(self) -> float:
        """The largest of the two axis scales (output pixels per source pixel)."""
        left, top, right, bottom = self.box
        return max(self.size[0] / (right - left), self.size[1] / (bottom - top))

    def keeps(self, width: int, height: int) -> bool:
        """Whether the plan leaves a `width`×`height` source as it is: the whole of it, at its own size."""
        return self.box == (0, 0, width, height) and self.size == (width, height) and self.canvas in (None, self.size)

    def scaled(self, fx: float, fy: float) -> Plan:
        """The same plan on a source scaled by fx, fy (after a reduced-size JPEG decode)."""
        left, top, right, bottom = self.box
        return Plan((left * fx, top * fy, right * fx, bottom * fy), self.size, self.canvas)


def plan(width: int, height: int, ops: Ops, *, max_side: int | None = None,
         focus: tuple[float, float] | None = None) -> Plan:
    """Plan the geometry for a `width`×`height` source (after orientation).

    Sizes are the URL's times its DPR; nothing is enlarged unless `ops.enlarge`; no side is ever below
    1 px or, with `max_side`, above it (the aspect ratio is kept). `focus` (fractions of width and
    height) is where a `fill` crop centres for smart gravity; a URL focal point (`gfp`) works the same.
    `pad` fits inside W×H and always has a canvas of exactly W×H (capped like any size), even when the
    image itself is not enlarged to fill it.
    """
    full: Box = (0, 0, width, height)
    target_w, target_h = ops.target
    if target_w is None and target_h is None:
        return Plan(full, _capped(width, height, max_side))
    if ops.fit == "force":
        w, h = target_w or width, target_h or height
        if not ops.enlarge:
            w, h = min(w, width), min(h, height)
        return Plan(full, _capped(w, h, max_side))
    if ops.fit == "pad":
        canvas = _capped(target_w or width, target_h or height, max_side)
        scale = min(canvas[0] / width, canvas[1] / height)
        if not ops.enlarge:
            scale = min(scale, 1.0)
        size = _side(width * scale), _side(height * scale)
        return Plan(full, (min(size[0], canvas[0]), min(size[1], canvas[1])), canvas)
    if ops.fit == "fill":
        if ops.focus is not None:
            focus = (ops.focus[0] / FOCUS_SCALE, ops.focus[1] / FOCUS_SCALE)
        return _fill(width, height, target_w or width, target_h or height, ops, focus, max_side)
    scales = [s for s in (target_w and target_w / width, target_h and target_h / height) if s]
    scale = min(scales)
    if not ops.enlarge:
        scale = min(scale, 1.0)
    return Plan(full, _capped(width * scale, height * scale, max_side))


def _fill(width: int, height: int, w: int, h: int, ops: Ops, focus: tuple[float, float] | None,
          max_side: int | None) -> Plan:
    # The largest box of the target's aspect ratio inside the source.
    crop_w = min(float(width), height * w / h)
    crop_h = crop_w * h / w
    if not ops.enlarge and w > crop_w:
        # Not enough pixels: keep the aspect ratio, give what the source has.
        w, h = _side(crop_w), _side(crop_h)
    if focus is None:
        # Smart gravity without its focus yet (planning the decode) sits in the centre: same crop size.
        fx, fy = COMPASS_FRACTIONS.get(ops.gravity, (0.5, 0.5))
        left, top = (width - crop_w) * fx, (height - crop_h) * fy
    else:
        # Centre the crop on the point, as far as the source's edges allow.
        left = min(max(focus[0] * width - crop_w / 2, 0.0), width - crop_w)
        top = min(max(focus[1] * height - crop_h / 2, 0.0), height - crop_h)
    return Plan((left, top, left + crop_w, top + crop_h), _capped(w, h, max_side))


def _capped(w: float, h: float, max_side: int | None) -> tuple[int, int]:
    if max_side is not None and max(w, h) > max_side:
        factor = max_side / max(w, h)
        w, h = w * factor, h * factor
    return _side(w), _side(h)


def _side(value: float) -> int:
    return max(1, round(value))
