"""What a deployment lets a URL ask for, beyond what the grammar allows: checked before any source or
pixel is touched, by the sidecar for every miss and by the URL builder before it signs anything.

- every side at most `max_dimension`;
- at most `max_output_pixels` in the rendition, where the URL alone fixes its size (`pad`, and `force`
  or `fill` with `up`: exactly W×H, DPR included, whatever the original); the pipeline checks the
  others from the original's size before decoding it;
- `allowed_sizes` (if set): the URL's width and height must be one of the listed pairs;
- `presets_only`: the URL's operations must be exactly those of one preset.

The last two stop a flood of distinct sizes (each one a transform and a file) even where URLs are not
signed. Pure; no IO.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sidecar.errors import BadRequest
from sidecar.url.grammar import Ops

_SIZE = re.compile(r"([1-9][0-9]{0,4})?x([1-9][0-9]{0,4})?")

Size = tuple[int | None, int | None]


def parse_size(text: str) -> Size:
    """`400x300`, `400x` (width only) or `x300` (height only). Raises ValueError."""
    match = _SIZE.fullmatch(text)
    if not match or not (match[1] or match[2]):
        raise ValueError(f"{text!r} is not a size like 400x300, 400x or x300")
    return (int(match[1]) if match[1] else None, int(match[2]) if match[2] else None)


@dataclass(frozen=True)
class PresetOps:
    """A preset's operations as the URL builder expands them; a preset without a format allows any."""

    ops: Ops
    any_format: bool

    @classmethod
    def of(cls, name: str, preset: Any) -> PresetOps:
        """`preset` is a `sidecar.url.presets.Preset`: its `operations` are exactly what the URL builder expands."""
        operations = preset.operations(name)
        fmt = operations.pop("format", None)
        return cls(Ops(format=fmt or "jpeg", **operations), fmt is None)

    def matches(self, ops: Ops) -> bool:
        if not self.any_format:
            return ops == self.ops
        try:
            return replace(self.ops, format=ops.format) == ops
        except BadRequest:  # a quality on a lossless format: not this preset
            return False


@dataclass(frozen=True)
class Limits:
    """The checks above, built from the config (`Limits.build`)."""

    max_dimension: int
    allowed_sizes: frozenset[Size] = frozenset()
    presets: tuple[PresetOps, ...] = ()
    presets_only: bool = False
    max_output_pixels: int | None = None

    @classmethod
    def build(cls, max_dimension: int, allowed_sizes: Iterable[str] = (),
              presets: Mapping[str, object] | None = None, presets_only: bool = False, *,
              max_output_pixels: int | None = None) -> Limits:
        return cls(max_dimension, frozenset(parse_size(s) for s in allowed_sizes),
                   tuple(PresetOps.of(name, p) for name, p in (presets or {}).items()), presets_only,
                   max_output_pixels)

    def check(self, ops: Ops) -> None:
        """Raise BadRequest unless this deployment serves `ops` (its expiry aside)."""
        for side in (ops.width, ops.height):
            if side is not None and side > self.max_dimension:
                raise BadRequest(f"width and height are limited to {self.max_dimension}")
        pixels = fixed_output_pixels(ops)
        if self.max_output_pixels is not None and pixels is not None and pixels > self.max_output_pixels:
            raise BadRequest(f"the rendition would have {pixels} pixels; at most {self.max_output_pixels}")
        sized = ops.width is not None or ops.height is not None
        if self.allowed_sizes and sized and (ops.width, ops.height) not in self.allowed_sizes:
            raise BadRequest("this width and height are not in allowed_sizes")
        if self.presets_only:
            plain = replace(ops, expires=None)
            if not any(preset.matches(plain) for preset in self.presets):
                raise BadRequest("only the configured presets are served")


def fixed_output_pixels(ops: Ops) -> int | None:
    """The rendition's pixels when the URL alone decides them (`pad`; `force` and `fill` with `up`),
    else None (they then depend on the original)."""
    width, height = ops.target
    if width is None or height is None:
        return None
    if ops.fit == "pad" or (ops.enlarge and ops.fit in ("force", "fill")):
        return width * height
    return None
