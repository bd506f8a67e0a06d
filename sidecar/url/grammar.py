"""The URL grammar: one canonical URL per rendition, parsed into frozen values. Pure; no IO.

    {prefix}/{shard}/{key}/{ops}.{signature}.{ext}      signed (the default)
    {prefix}/{shard}/{key}/{ops}.{ext}                  unsigned deployments only

`shard` is two levels of hex from sha256(key) (`3f/a9`), so no cache directory holds more than a few
hundred originals even for flat key sets of tens of millions. `key` is the original's name in the
sources, percent-encoded exactly as `urllib.parse.quote(key, safe="/")` does. `ops` is a dash-joined
list of tokens in a fixed order (or `orig` for none):

    w{1..}  h{1..}  fill|force|pad  g{n,s,e,w,ne,nw,se,sw,sm}|gfp{X}x{Y}  up  x{DPR}|ch  r{90,180,270}  flip
    bl{sigma}  sh{sigma}  bg{rrggbb}  wm{name}  q{1..100}|qkeep  fb{preset}  e{unix time}

`e` is not an operation but an expiry: signed deployments refuse the URL after that second. Being in the
ops segment, it is covered by the signature like everything else; the rendition's file does not carry
it (see `Rendition.without_expiry`), so URLs that differ only in expiry share one cached file.

Defaults are never written (fit mode `fit`, gravity centre, no enlargement, DPR 1, no rotation, no blur,
automatic sharpening, no watermark...), so every rendition has one spelling and anything else is a 400.
Besides renditions, `{prefix}/{shard}/{key}/info[.{signature}].json` asks for facts about the original
(`Info`), signed and cached the same way. The extension is the output format, or `auto`: the
format then follows the client's Accept header, which nginx reduces to one of three variants. The URL path, exactly as sent, names the cache file (`cache_name`: the last segment goes into
the `=` directory), which lets nginx find hits with one `try_files`, puts every rendition of an original
in one directory, and makes every other spelling of a URL a miss that the sidecar refuses.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Literal
from urllib.parse import quote, unquote

from sidecar.errors import BadRequest, Forbidden, UriTooLong

Fit = Literal["fit", "fill", "force", "pad"]
#: `pad` fits inside W×H, then pads to exactly W×H with the background.
FITS: tuple[Fit, ...] = ("fit", "fill", "force", "pad")
#: `sm` is smart (the crop goes where the pixels are busiest), `fp` a focal point given in the URL.
COMPASS = ("ce", "n", "s", "e", "w", "ne", "nw", "se", "sw")
GRAVITIES = (*COMPASS, "sm", "fp")
#: URL extension -> output format. One extension per format: `.jpeg` is not canonical. `auto` picks AVIF,
#: WebP or JPEG/PNG per request (see `AUTO_VARIANTS`).
EXTENSIONS = {"jpg": "jpeg", "png": "png", "webp": "webp", "avif": "avif", "auto": "auto"}
FORMAT_EXTENSION = {fmt: ext for ext, fmt in EXTENSIONS.items()}
LOSSY = frozenset({"jpeg", "webp", "avif", "auto"})
#: What nginx maps a client's Accept header to for `.auto` URLs; `legacy` is JPEG, or PNG for sources
#: with transparency or from lossless formats. Three variants at most, so Accept cannot bust the cache.
AUTO_VARIANTS = ("avif", "webp", "legacy")
MAX_DPR = 4
MAX_BLUR = 50
MAX_SHARPEN = 10
ROTATIONS = (0, 90, 180, 270)
FOCUS_SCALE = 1000  # focal points are in thousandths of the width and height

MAX_SIDE = 16383  # WebP's limit; also far above any sane product image
MAX_URL_LENGTH = 2048
#: The directory of an original's renditions, under its key's directory. Keys are cached as percent-encoded
#: by `quote`, which always encodes `=`, so no key segment can be this name.
RENDITIONS = "="
MAX_SEGMENT_BYTES = 200  # file names stay well under the usual 255-byte limit with the rendition suffix
MAX_NAME = 255  # bytes in one file name (ext4, xfs): a key segment is cached percent-encoded
NO_OPS = "orig"
INFO = "info"
INFO_EXTENSION = "json"
_NAME = r"[a-z0-9_]{1,32}"

_NUMBER = r"(?:0|[1-9][0-9]{0,3})"
#: One decimal at most, written with `_` for the point: `2`, `1_5`, `0_5` (never `2_0` or `01`).
DECIMAL = r"((?:0|[1-9][0-9]?)(?:_[1-9])?)"
#: Token patterns in their fixed order, each with the fields its match gives.
_TOKENS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], dict[str, object]]], ...] = (
    (re.compile(r"w([1-9][0-9]{0,4})"), lambda m: {"width": int(m[1])}),
    (re.compile(r"h([1-9][0-9]{0,4})"), lambda m: {"height": int(m[1])}),
    (re.compile(r"(fill|force|pad)"), lambda m: {"fit": m[1]}),
    (re.compile(rf"g(?:(ne|nw|se|sw|n|s|e|w|sm)|fp({_NUMBER})x({_NUMBER}))"),
     lambda m: {"gravity": m[1]} if m[1] else {"gravity": "fp", "focus": (int(m[2]), int(m[3]))}),
    (re.compile(r"up"), lambda m: {"enlarge": True}),
    (re.compile(r"x([1-9])(?:_([1-9]))?|(ch)"),
     lambda m: {"client_hints": True} if m[3] else {"dpr": int(m[1]) + int(m[2] or 0) / 10}),
    (re.compile(r"r(90|180|270)"), lambda m: {"rotate": int(m[1])}),
    (re.compile(r"flip"), lambda m: {"flip": True}),
    (re.compile(rf"bl{DECIMAL}"), lambda m: {"blur": parse_decimal(m[1])}),
    (re.compile(rf"sh{DECIMAL}"), lambda m: {"sharpen": parse_decimal(m[1])}),
    (re.compile(r"bg([0-9a-f]{6})"), lambda m: {"background": m[1]}),
    (re.compile(rf"wm({_NAME})"), lambda m: {"watermark": m[1]}),
    (re.compile(r"q(100|[1-9][0-9]?|keep)"), lambda m: {"quality": m[1] if m[1] == "keep" else int(m[1])}),
    (re.compile(rf"fb({_NAME})"), lambda m: {"fallback": m[1]}),
    (re.compile(r"e([1-9][0-9]{0,10})"), lambda m: {"expires": int(m[1])}),
)
_ORDER = "w, h, fill/force/pad, g, up, x/ch, r, flip, bl, sh, bg, wm, q, fb, e"
MAX_EXPIRES = 10**11 - 1  # eleven digits: far beyond any real expiry, and a bound on the token's length
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Ops:
    """What to do to the original. Validated at construction; `segment` is its canonical spelling."""

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
    #: Gaussian blur, sigma in the URL's pixels (multiplied by the DPR like width and height).
    blur: float | None = None
    #: Unsharp mask with this sigma (URL pixels); 0 switches off the automatic sharpening; None is automatic.
    sharpen: float | None = None
    #: rrggbb: transparency is flattened on it (every format), and `pad` fills with it.
    background: str | None = None
    #: A watermark named in the config's `[watermarks.NAME]`.
    watermark: str | None = None
    quality: int | Literal["keep"] | None = None
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
        if self.gravity in ("sm", "fp") and self.fit != "fill":
            raise BadRequest("smart gravity and focal points apply only to fill")
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
            if value is not None and not re.fullmatch(_NAME, str(value)):
                raise BadRequest(f"{name} names are 1-32 of a-z, 0-9, _")
        if self.quality is not None:
            if self.format not in LOSSY:
                raise BadRequest(f"quality does not apply to {self.format}")
            if self.quality != "keep" and (type(self.quality) is not int or not 1 <= self.quality <= 100):
                raise BadRequest("quality must be 1 to 100 or keep")
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
        """Whether pixels change beyond size, crop and format: a rotation, flip, filter, background or
        watermark (the original can then never be the rendition as it is)."""
        return bool(self.rotate or self.flip or self.blur or self.sharpen or self.background
                    or self.watermark)

    @property
    def turned(self) -> bool:
        """Whether the rotation swaps width and height."""
        return self.rotate in (90, 270)

    @property
    def segment(self) -> str:
        """The canonical ops segment of the URL, without extension."""
        tokens = []
        if self.width is not None:
            tokens.append(f"w{self.width}")
        if self.height is not None:
            tokens.append(f"h{self.height}")
        if self.fit != "fit":
            tokens.append(self.fit)
        if self.focus is not None:
            tokens.append(f"gfp{self.focus[0]}x{self.focus[1]}")
        elif self.gravity != "ce":
            tokens.append(f"g{self.gravity}")
        if self.enlarge:
            tokens.append("up")
        if self.dpr != 1:
            tokens.append(f"x{decimal_token(self.dpr)}")
        if self.client_hints:
            tokens.append("ch")
        if self.rotate:
            tokens.append(f"r{self.rotate}")
        if self.flip:
            tokens.append("flip")
        if self.blur is not None:
            tokens.append(f"bl{decimal_token(self.blur)}")
        if self.sharpen is not None:
            tokens.append(f"sh{decimal_token(self.sharpen)}")
        if self.background is not None:
            tokens.append(f"bg{self.background}")
        if self.watermark is not None:
            tokens.append(f"wm{self.watermark}")
        if self.quality is not None:
            tokens.append(f"q{self.quality}")
        if self.fallback is not None:
            tokens.append(f"fb{self.fallback}")
        if self.expires is not None:
            tokens.append(f"e{self.expires}")
        return "-".join(tokens) or NO_OPS

    @classmethod
    def parse(cls, segment: str, extension: str) -> Ops:
        """Parse an ops segment and extension; raise BadRequest unless they are canonical."""
        fmt = EXTENSIONS.get(extension)
        if fmt is None:
            raise BadRequest(f"unknown extension .{extension}; use one of .{', .'.join(EXTENSIONS)}")
        fields: dict[str, object] = {}
        position = 0
        for token in [] if segment == NO_OPS else segment.split("-"):
            for index, (pattern, convert) in enumerate(_TOKENS):
                match = pattern.fullmatch(token)
                if match:
                    break
            else:
                raise BadRequest(f"unknown operation {token!r}")
            if index < position:
                raise BadRequest(f"operations must be written once each, in the order {_ORDER}")
            position = index + 1
            fields.update(convert(match))
        ops = cls(format=fmt, **fields)  # type: ignore[arg-type]
        if ops.segment != segment:
            raise BadRequest(f"not canonical: write {ops.segment!r}")
        return ops


@dataclass(frozen=True)
class Target:
    """Something asked of one original (by key): a rendition of it, or facts about it."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)

    @property
    def name(self) -> str:
        """The last URL segment without signature and extension."""
        raise NotImplementedError

    @property
    def extension(self) -> str:
        raise NotImplementedError

    @property
    def payload(self) -> str:
        """What the signature covers: key and name as they appear in the URL (the shard follows from the key)."""
        return f"{quote(self.key, safe='/')}/{self.name}.{self.extension}"

    def path(self, prefix: str, signature: str | None) -> str:
        """The canonical URL path (percent-encoded)."""
        return self._join(prefix, quote(self.key, safe="/"), signature)

    def file_path(self, prefix: str, signature: str | None) -> str:
        """The file's place under the cache root: the canonical path as sent, in the renditions'
        namespace (`cache_name`)."""
        return cache_name(self.path(prefix, signature))

    @property
    def original_dir(self) -> str:
        """The directory (relative to the prefix) holding every rendition of this original."""
        return renditions_dir(self.key)

    def _join(self, prefix: str, spelled_key: str, signature: str | None) -> str:
        name = self.name if signature is None else f"{self.name}.{signature}"
        return f"{prefix}/{shard(self.key)}/{spelled_key}/{name}.{self.extension}"


@dataclass(frozen=True)
class Rendition(Target):
    """One original plus the operations that make this rendition of it."""

    ops: Ops

    def without_expiry(self) -> Rendition:
        """The same rendition for a URL that does not expire: what an expiring URL's file is named by."""
        return self if self.ops.expires is None else Rendition(self.key, replace(self.ops, expires=None))

    @property
    def name(self) -> str:
        return self.ops.segment

    @property
    def extension(self) -> str:
        return self.ops.extension


@dataclass(frozen=True)
class Info(Target):
    """Facts about one original, as JSON: `{prefix}/{shard}/{key}/info.{signature}.json`."""

    name: ClassVar[str] = INFO  # type: ignore[misc]
    extension: ClassVar[str] = INFO_EXTENSION  # type: ignore[misc]


@dataclass(frozen=True)
class ParsedUrl:
    """A request path taken apart. `signature` is None for unsigned URLs."""

    target: Rendition | Info
    signature: str | None


def cache_name(url_path: str) -> str:
    """Where the canonical URL path `url_path` (percent-encoded, as sent) is cached, relative to the cache
    root: `/img/3f/a9/a%20b.jpg/w300.jpg` -> `/img/3f/a9/a%20b.jpg/=/w300.jpg`. nginx derives the same
    from `$request_uri` (docs/architecture.md, "Cache layout"). Kept as sent, so no other spelling of the
    URL names a file; in `RENDITIONS`, which no key can name, so no key's directory can take a file's place.
    """
    head, _, name = url_path.rpartition("/")
    return f"{head}/{RENDITIONS}/{name}"


def renditions_dir(key: str) -> str:
    """The directory (relative to the URL prefix) of every rendition of `key`."""
    return f"{shard(key)}/{quote(key, safe='/')}/{RENDITIONS}"


def shard(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}"


def check_key(key: str) -> None:
    """Raise BadRequest unless `key` is a safe relative name.

    No segment may be empty or start with a dot: that rules out `.` and `..`, and keeps every cache
    path free of the dot-names that temporary files use while they are being written.
    """
    if not key:
        raise BadRequest("empty key")
    if _CONTROL.search(key):
        raise BadRequest("control character in key")
    for part in key.split("/"):
        if not part or part.startswith("."):
            raise BadRequest("key segments must not be empty or start with '.'")
        if len(part.encode()) > MAX_SEGMENT_BYTES or len(quote(part, safe="")) > MAX_NAME:
            raise BadRequest(f"key segment longer than {MAX_SEGMENT_BYTES} bytes")


def check_length(path: str, max_length: int = MAX_URL_LENGTH) -> None:
    """Raise UriTooLong for a request path (of any shape) longer than `max_length` characters."""
    if len(path) > max_length:
        raise UriTooLong(f"URL longer than {max_length} characters")


def parse(path: str, *, prefix: str, signed: bool, max_length: int = MAX_URL_LENGTH) -> ParsedUrl:
    """Parse a request path (no query string) under `prefix`; raise BadRequest/Forbidden/UriTooLong."""
    check_length(path, max_length)
    if not path.startswith(prefix + "/"):
        raise BadRequest(f"path must start with {prefix}/")
    segments = path[len(prefix) + 1 :].split("/")
    if len(segments) < 4:
        raise BadRequest("expected {shard}/{key}/{ops}.{ext}")
    name_parts = segments[-1].split(".")
    raw_key = "/".join(segments[2:-1])
    try:
        key = unquote(raw_key, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("key is not UTF-8") from None
    check_key(key)
    if quote(key, safe="/") != raw_key:
        raise BadRequest(f"key not canonically encoded: write {quote(key, safe='/')!r}")
    if "/".join(segments[:2]) != shard(key):
        raise BadRequest(f"shard does not match key: write {shard(key)}")
    signature: str | None = None
    if signed and len(name_parts) == 2:
        raise Forbidden("missing signature")
    if len(name_parts) != (3 if signed else 2):
        raise BadRequest("expected {ops}.{signature}.{ext}" if signed else "expected {ops}.{ext}")
    if signed:
        signature = name_parts[1]
        if not _SIGNATURE.fullmatch(signature):
            raise Forbidden("malformed signature")
    if name_parts[-1] == INFO_EXTENSION:
        if name_parts[0] != INFO:
            raise BadRequest(f"only {INFO}.{INFO_EXTENSION} ends in .{INFO_EXTENSION}")
        return ParsedUrl(Info(key), signature)
    ops = Ops.parse(name_parts[0], name_parts[-1])
    if ops.expires is not None and not signed:
        raise BadRequest("an expiry needs signed URLs: without a signature anyone could change it")
    return ParsedUrl(Rendition(key, ops), signature)


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
