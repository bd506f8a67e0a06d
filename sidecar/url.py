"""The URL grammar: one canonical URL per rendition, parsed into frozen values. Pure; no IO.

    {prefix}/{shard}/{key}/{ops}.{signature}.{ext}      signed (the default)
    {prefix}/{shard}/{key}/{ops}.{ext}                  unsigned deployments only

`shard` is two levels of hex from sha256(key) (`3f/a9`), so no cache directory holds more than a few
hundred originals even for flat key sets of tens of millions. `key` is the original's name in the
sources, percent-encoded exactly as `urllib.parse.quote(key, safe="/")` does. `ops` is a dash-joined
list of tokens in a fixed order (or `orig` for none):

    w{1..}  h{1..}  fill|force  g{n,s,e,w,ne,nw,se,sw}  q{1..100}|qkeep

Defaults are never written (fit mode `fit`, gravity centre), so every rendition has one spelling and
anything else is a 400. The URL path *is* the cache path under the cache root, which lets nginx find
hits with `try_files $uri` alone, and puts every rendition of an original in one directory.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from .errors import BadRequest, Forbidden

Fit = Literal["fit", "fill", "force"]
FITS: tuple[Fit, ...] = ("fit", "fill", "force")
GRAVITIES = ("ce", "n", "s", "e", "w", "ne", "nw", "se", "sw")
#: URL extension -> output format. One extension per format: `.jpeg` is not canonical.
EXTENSIONS = {"jpg": "jpeg", "png": "png", "webp": "webp"}
FORMAT_EXTENSION = {fmt: ext for ext, fmt in EXTENSIONS.items()}
LOSSY = frozenset({"jpeg", "webp"})

MAX_SIDE = 16383  # WebP's limit; also far above any sane product image
MAX_URL_LENGTH = 2048
MAX_SEGMENT_BYTES = 200  # file names stay well under the usual 255-byte limit with the rendition suffix
NO_OPS = "orig"

_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("width", re.compile(r"w([1-9][0-9]{0,4})")),
    ("height", re.compile(r"h([1-9][0-9]{0,4})")),
    ("fit", re.compile(r"(fill|force)")),
    ("gravity", re.compile(r"g(ne|nw|se|sw|n|s|e|w)")),
    ("quality", re.compile(r"q(100|[1-9][0-9]?|keep)")),
)
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
    quality: int | Literal["keep"] | None = None

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
        if self.gravity != "ce" and self.fit != "fill":
            raise BadRequest("gravity applies only to fill")
        if self.quality is not None:
            if self.format not in LOSSY:
                raise BadRequest(f"quality does not apply to {self.format}")
            if self.quality != "keep" and (type(self.quality) is not int or not 1 <= self.quality <= 100):
                raise BadRequest("quality must be 1 to 100 or keep")

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSION[self.format]

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
        if self.gravity != "ce":
            tokens.append(f"g{self.gravity}")
        if self.quality is not None:
            tokens.append(f"q{self.quality}")
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
            for index, (name, pattern) in enumerate(_TOKENS):
                match = pattern.fullmatch(token)
                if match:
                    break
            else:
                raise BadRequest(f"unknown operation {token!r}")
            if index < position:
                raise BadRequest("operations must be written once each, in the order w, h, fit, g, q")
            position = index + 1
            value = match.group(1)
            fields[name] = int(value) if value.isdigit() else value
        ops = cls(format=fmt, **fields)  # type: ignore[arg-type]
        if ops.segment != segment:
            raise BadRequest(f"not canonical: write {ops.segment!r}")
        return ops


@dataclass(frozen=True)
class Rendition:
    """One original (by key) plus the operations that make this rendition of it."""

    key: str
    ops: Ops

    def __post_init__(self) -> None:
        check_key(self.key)

    @property
    def payload(self) -> str:
        """What the signature covers: key and ops as they appear in the URL (the shard follows from the key)."""
        return f"{quote(self.key, safe='/')}/{self.ops.segment}.{self.ops.extension}"

    def path(self, prefix: str, signature: str | None) -> str:
        """The canonical URL path (percent-encoded)."""
        return _join(prefix, self.key, quote(self.key, safe="/"), self.ops, signature)

    def file_path(self, prefix: str, signature: str | None) -> str:
        """The same path decoded, as nginx's `$uri` sees it: the file's place under the cache root."""
        return _join(prefix, self.key, self.key, self.ops, signature)

    @property
    def original_dir(self) -> str:
        """The directory (relative to the prefix) holding every rendition of this original."""
        return f"{shard(self.key)}/{self.key}"


@dataclass(frozen=True)
class ParsedUrl:
    """A request path taken apart. `signature` is None for unsigned URLs."""

    rendition: Rendition
    signature: str | None


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
        if len(part.encode()) > MAX_SEGMENT_BYTES:
            raise BadRequest(f"key segment longer than {MAX_SEGMENT_BYTES} bytes")


def parse(path: str, *, prefix: str, signed: bool) -> ParsedUrl:
    """Parse a request path (no query string) under `prefix`; raise BadRequest/Forbidden."""
    if len(path) > MAX_URL_LENGTH:
        raise BadRequest(f"URL longer than {MAX_URL_LENGTH} characters")
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
    ops = Ops.parse(name_parts[0], name_parts[-1])
    return ParsedUrl(Rendition(key, ops), signature)


def _join(prefix: str, key: str, spelled_key: str, ops: Ops, signature: str | None) -> str:
    name = ops.segment if signature is None else f"{ops.segment}.{signature}"
    return f"{prefix}/{shard(key)}/{spelled_key}/{name}.{ops.extension}"
