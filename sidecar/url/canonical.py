"""The grammar's vocabulary: the values a URL may spell (formats, fits, gravities, bounds) and how it spells
numbers and colours. Pure; no IO."""
from __future__ import annotations

from typing import Literal

Fit = Literal["fit", "fill", "force", "pad"]
#: `pad` fits inside W×H, then pads to exactly W×H with the background.
FITS: tuple[Fit, ...] = ("fit", "fill", "force", "pad")
#: `sm` is smart (the crop goes where the pixels are busiest), `fc` keeps the faces (else smart), `fp` a
#: focal point given in the URL.
COMPASS = ("ce", "n", "s", "e", "w", "ne", "nw", "se", "sw")
GRAVITIES = (*COMPASS, "sm", "fc", "fp")
#: Gravities that look at the picture, for `fill` only.
AWARE_GRAVITIES = ("sm", "fc")
#: `trim` without a number: the largest difference per channel (0-255) from the border colour still
#: counted as border; `trim{0..MAX_TRIM}` sets it.
TRIM_THRESHOLD = 30
MAX_TRIM = 100
#: URL extension -> output format. One extension per format: `.jpeg` is not canonical. `auto` picks JPEG XL,
#: AVIF, WebP or JPEG/PNG per request (see `AUTO_VARIANTS`).
EXTENSIONS = {"jpg": "jpeg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif", "jxl": "jxl", "auto": "auto"}
FORMAT_EXTENSION = {fmt: ext for ext, fmt in EXTENSIONS.items()}
#: What the URL builder accepts for a format: the format's name or its extension.
FORMAT_NAMES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif",
                "jxl": "jxl", "auto": "auto"}
#: The output formats that keep an animation (every frame); the others get one frame.
ANIMATED_FORMATS = frozenset({"gif", "webp", "avif"})
#: The `fr{N}` operation's largest frame number (frames count from 0).
MAX_FRAME = 9999
LOSSY = frozenset({"jpeg", "webp", "avif", "jxl", "auto"})
#: What nginx maps a client's Accept header to for `.auto` URLs, in order of preference; `legacy` is JPEG,
#: or PNG for sources with transparency or from lossless formats. Four variants at most, so Accept cannot
#: bust the cache.
AUTO_VARIANTS = ("jxl", "avif", "webp", "legacy")
MAX_DPR = 4
MAX_BLUR = 50
MAX_SHARPEN = 10
ROTATIONS = (0, 90, 180, 270)
FOCUS_SCALE = 1000  # focal points are in thousandths of the width and height
MAX_SIDE = 16383  # WebP's limit; also far above any sane product image
#: The ops segment of a rendition with no operations.
NO_OPS = "orig"
#: `mb{bytes}`: from a size no image comes under, to nine digits (just under a gigabyte).
MIN_MAX_BYTES = 100
MAX_MAX_BYTES = 10**9 - 1
MAX_EXPIRES = 10**11 - 1  # eleven digits: far beyond any real expiry, and a bound on the token's length
#: Watermark and preset names, as URLs and the config write them.
NAME = r"[a-z0-9_]{1,32}"
#: A focal point coordinate: no leading zeros, four digits at most.
NUMBER = r"(?:0|[1-9][0-9]{0,3})"
#: One decimal at most, written with `_` for the point: `2`, `1_5`, `0_5` (never `2_0` or `01`).
DECIMAL = r"((?:0|[1-9][0-9]?)(?:_[1-9])?)"


def decimal_token(value: float) -> str:
    """`2`, `1_5`, `0_5`: a number with at most one decimal, as URL tokens write it."""
    tenths = round(value * 10)
    return f"{tenths // 10}" + (f"_{tenths % 10}" if tenths % 10 else "")


def parse_decimal(text: str) -> float:
    whole, _, tenth = text.partition("_")
    return int(whole) + int(tenth or 0) / 10


def is_decimal(value: object, low: float, high: float) -> bool:
    """A number from `low` to `high` with at most one decimal."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
            and abs(value * 10 - round(value * 10)) < 1e-6)


def hex_rgb(value: str) -> tuple[int, int, int]:
    """A background colour as the grammar spells it, `rrggbb`, -> (r, g, b)."""
    number = int(value, 16)
    return (number >> 16, (number >> 8) & 0xFF, number & 0xFF)
