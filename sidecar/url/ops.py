"""`Ops`: what to do to an original, as one frozen value validated at construction. Its fields are the
rows of the table of operations (`sidecar.url.operations`), which spells it as an ops segment. Pure; no IO."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sidecar.errors import BadRequest
from sidecar.url.canonical import (
    AWARE_GRAVITIES,
    EXTENSIONS,
    FITS,
    FOCUS_SCALE,
    FORMAT_EXTENSION,
    GRAVITIES,
    LOSSY,
    MAX_BLUR,
    MAX_DPR,
    MAX_EXPIRES,
    MAX_FRAME,
    MAX_MAX_BYTES,
    MAX_SHARPEN,
    MAX_SIDE,
    MAX_TRIM,
    MIN_MAX_BYTES,
    NAME,
    ROTATIONS,
    Fit,
    is_decimal,
)
from sidecar.url.operations import read_segment, write_segment


@dataclass(frozen=True)
class Ops:
    """What to do to the original. Validated at construction; `segment` is its canonical spelling.

    One field per row of the table of operations, in its order (the tests check both ways); the checks
    below are each field's range and the rules between fields.
    """

    format: str
    width: int | None = None
    height: int | None = None
    fit: Fit = "fit"
    gravity: str = "ce"
    #: With gravity `fp`: the point to keep in view, in thousandths of the (oriented) width and height.
    focus: tuple[int, int] | None = None
    enlarge: bool = False
    #: Device pixel ratio: width and height are multiplied by it. 1 to 4 in steps of 0.1.
    dpr: float = 1.0
    #: The width (or DPR) comes from the client's hints, which nginx reduces to a fixed set (`variants.Hint`).
    client_hints: bool = False
    #: Clockwise, after EXIF orientation and before the geometry: width and height refer to the turned image.
    rotate: int = 0
    #: Mirror left to right, after the rotation.
    flip: bool = False
    #: Cut uniform borders before the resize: a pixel within this of the corners' colour (per channel,
    #: 0-255) is border.
    trim: int | None = None
    #: Gaussian blur, sigma in the URL's pixels (multiplied by the DPR like width and height).
    blur: float | None = None
    #: Unsharp mask with this sigma (URL pixels); 0 switches off the automatic sharpening; None is automatic.
    sharpen: float | None = None
    #: rrggbb: transparency is flattened on it (every format), and `pad` fills with it.
    background: str | None = None
    #: A watermark named in the config's `[watermarks.NAME]`.
    watermark: str | None = None
    #: A still of this frame of an animation (from 0; past the last frame: the last one).
    frame: int | None = None
    #: 1 to 100; `keep` the source JPEG's; `auto` the lowest that keeps the perceptual target.
    quality: int | Literal["keep", "auto"] | None = None
    #: The most bytes the rendition may have: quality is lowered (then, if configured, dimensions) to fit.
    max_bytes: int | None = None
    #: A preset whose `fallback_image` replaces a missing or broken original.
    fallback: str | None = None
    #: Unix time after which a signed URL is refused. Not an operation: the rendition is the same without it.
    expires: int | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMAT_EXTENSION:
            raise BadRequest(f"unknown output format {self.format!r}")
        for name in ("width", "height"):
            side = getattr(self, name)
            if side is not None and (type(side) is not int or not 1 <= side <= MAX_SIDE):
                raise BadRequest(f"{name} must be an integer from 1 to {MAX_SIDE}")
        if self.fit not in FITS:
            raise BadRequest(f"fit must be one of {', '.join(FITS)}")
        if self.fit != "fit" and (self.width is None or self.height is None):
            raise BadRequest(f"{self.fit} needs both width and height")
        if self.gravity not in GRAVITIES:
            raise BadRequest(f"gravity must be one of {', '.join(GRAVITIES)}")
        if self.gravity != "ce" and self.fit not in ("fill", "pad"):
            raise BadRequest("gravity applies only to fill and pad")
        if self.gravity in (*AWARE_GRAVITIES, "fp") and self.fit != "fill":
            raise BadRequest("smart and face gravity and focal points apply only to fill")
        if (self.gravity == "fp") != (self.focus is not None):
            raise BadRequest("a focal point needs gravity fp, and gravity fp a focal point")
        if self.focus is not None and (
                len(self.focus) != 2 or not all(type(c) is int and 0 <= c <= FOCUS_SCALE for c in self.focus)):
            raise BadRequest(f"focal point coordinates must be integers from 0 to {FOCUS_SCALE}")
        for name in ("enlarge", "client_hints", "flip"):
            if type(getattr(self, name)) is not bool:
                raise BadRequest(f"{name} must be true or false")
        if self.enlarge and self.width is None and self.height is None:
            raise BadRequest("enlarge needs a width or a height")
        if self.trim is not None and (type(self.trim) is not int or not 0 <= self.trim <= MAX_TRIM):
            raise BadRequest(f"trim's threshold must be an integer from 0 to {MAX_TRIM}")
        if not is_decimal(self.dpr, 1, MAX_DPR):
            raise BadRequest(f"dpr must be 1 to {MAX_DPR} in steps of 0.1")
        if self.dpr != 1 and self.width is None and self.height is None:
            raise BadRequest("dpr needs a width or a height")
        if self.client_hints and (self.width is None or self.dpr != 1):
            raise BadRequest("client hints need a width and no dpr (the hints are the dpr)")
        if self.rotate not in ROTATIONS or type(self.rotate) is not int:
            raise BadRequest("rotate must be 0, 90, 180 or 270")
        if self.blur is not None and not is_decimal(self.blur, 0.1, MAX_BLUR):
            raise BadRequest(f"blur must be 0.1 to {MAX_BLUR} in steps of 0.1")
        if self.sharpen is not None and not (self.sharpen == 0 or is_decimal(self.sharpen, 0.1, MAX_SHARPEN)):
            raise BadRequest(f"sharpen must be 0 (off) or 0.1 to {MAX_SHARPEN} in steps of 0.1")
        if self.background is not None and not re.fullmatch(r"[0-9a-f]{6}", str(self.background)):
            raise BadRequest("background must be six lowercase hex digits, like ffffff")
        for name in ("watermark", "fallback"):
            value = getattr(self, name)
            if value is not None and not re.fullmatch(NAME, str(value)):
                raise BadRequest(f"{name} names are 1-32 of a-z, 0-9, _")
        if self.frame is not None and (type(self.frame) is not int or not 0 <= self.frame <= MAX_FRAME):
            raise BadRequest(f"frame must be an integer from 0 to {MAX_FRAME}")
        if self.quality is not None:
            if self.format not in LOSSY:
                raise BadRequest(f"quality does not apply to {self.format}")
            if self.quality not in ("keep", "auto") and (
                    type(self.quality) is not int or not 1 <= self.quality <= 100):
                raise BadRequest("quality must be 1 to 100, keep or auto")
        if self.max_bytes is not None and (
                type(self.max_bytes) is not int or not MIN_MAX_BYTES <= self.max_bytes <= MAX_MAX_BYTES):
            raise BadRequest(f"max_bytes must be an integer from {MIN_MAX_BYTES} to {MAX_MAX_BYTES}")
        if self.expires is not None and (type(self.expires) is not int or not 1 <= self.expires <= MAX_EXPIRES):
            raise BadRequest(f"expiry must be a unix time from 1 to {MAX_EXPIRES}")

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSION[self.format]

    @property
    def target(self) -> tuple[int | None, int | None]:
        """Width and height in output pixels: the URL's, multiplied by the DPR."""
        return (None if self.width is None else round(self.width * self.dpr),
                None if self.height is None else round(self.height * self.dpr))

    @property
    def restyles(self) -> bool:
        """Whether pixels change beyond size, crop and format: a rotation, flip, trim, filter, background or
        watermark (the original can then never be the rendition as it is, nor be cut from it)."""
        return bool(self.rotate or self.flip or self.trim is not None or self.blur or self.sharpen
                    or self.background or self.watermark)

    @property
    def turned(self) -> bool:
        """Whether the rotation swaps width and height."""
        return self.rotate in (90, 270)

    @property
    def segment(self) -> str:
        """The canonical ops segment of the URL, without extension."""
        return write_segment(self)

    @classmethod
    def parse(cls, segment: str, extension: str) -> Ops:
        """Parse an ops segment and extension; raise BadRequest unless they are canonical."""
        fmt = EXTENSIONS.get(extension)
        if fmt is None:
            raise BadRequest(f"unknown extension .{extension}; use one of .{', .'.join(EXTENSIONS)}")
        ops = cls(format=fmt, **read_segment(segment))  # type: ignore[arg-type]
        if ops.segment != segment:
            raise BadRequest(f"not canonical: write {ops.segment!r}")
        return ops
