"""The URL grammar: one canonical URL per rendition, parsed into frozen values. Pure; no IO.

    {prefix}/{shard}/{key}/{ops}.{signature}.{ext}      signed (the default)
    {prefix}/{shard}/{key}/{ops}.{ext}                  unsigned deployments only

`shard` is two levels of hex from sha256(key) (`3f/a9`), so no cache directory holds more than a few
hundred originals even for flat key sets of tens of millions. `key` is the original's name in the
sources, percent-encoded exactly as `urllib.parse.quote(key, safe="/")` does. `ops` is a dash-joined
list of tokens in a fixed order (or `orig` for none), one row each of the table of operations
(`sidecar.url.operations`, rendered as docs/operations-table.md):

    w{1..}  h{1..}  fill|force|pad  g{n,s,e,w,ne,nw,se,sw,sm}|gfp{X}x{Y}  up  x{DPR}|ch  r{90,180,270}  flip
    bl{sigma}  sh{sigma}  bg{rrggbb}  wm{name}  q{1..100}|qkeep  fb{preset}  e{unix time}

`e` is not an operation but an expiry: signed deployments refuse the URL after that second. Being in the
ops segment, it is covered by the signature like everything else; the rendition's file does not carry
it (see `Rendition.without_expiry`), so URLs that differ only in expiry share one cached file.

Defaults are never written (fit mode `fit`, gravity centre, no enlargement, DPR 1, no rotation, no blur,
automatic sharpening, no watermark...), so every rendition has one spelling and anything else is a 400.
Besides renditions, `{prefix}/{shard}/{key}/info[.{signature}].json` asks for facts about the original
(`Info`), signed and cached the same way. The extension is the output format, or `auto`: the
format then follows the client's Accept header, which nginx reduces to one of three variants. The URL
path, exactly as sent, names the cache file (`cache_name`: the last segment goes into the `=` directory),
which lets nginx find hits with one `try_files`, puts every rendition of an original in one directory, and
makes every other spelling of a URL a miss that the sidecar refuses.

This module is the URL as a whole (`Target`s and `parse`); `Ops` is in `sidecar.url.ops`, the
vocabulary in `sidecar.url.canonical`; their names are importable from here too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import ClassVar
from urllib.parse import quote, unquote

from sidecar.errors import BadRequest, Forbidden, UriTooLong
from sidecar.url.canonical import (
    AUTO_VARIANTS,
    COMPASS,
    DECIMAL,
    EXTENSIONS,
    FOCUS_SCALE,
    FORMAT_EXTENSION,
    MAX_DPR,
    MAX_SIDE,
    decimal_token,
    hex_rgb,
    is_decimal,
    parse_decimal,
)
from sidecar.url.ops import Ops

#: The URL's own names, and (for the modules and tests that import them from here) the value's and vocabulary's.
__all__ = [
    "AUTO_VARIANTS",
    "COMPASS",
    "DECIMAL",
    "EXTENSIONS",
    "FOCUS_SCALE",
    "FORMAT_EXTENSION",
    "INFO",
    "INFO_EXTENSION",
    "MAX_DPR",
    "MAX_SEGMENT_BYTES",
    "MAX_SIDE",
    "MAX_URL_LENGTH",
    "RENDITIONS",
    "Info",
    "Ops",
    "ParsedUrl",
    "Rendition",
    "Target",
    "cache_name",
    "check_key",
    "check_length",
    "decimal_token",
    "hex_rgb",
    "is_decimal",
    "parse",
    "parse_decimal",
    "renditions_dir",
    "shard",
]

MAX_URL_LENGTH = 2048
#: The directory of an original's renditions, under its key's directory. Keys are cached as percent-encoded
#: by `quote`, which always encodes `=`, so no key segment can be this name.
RENDITIONS = "="
MAX_SEGMENT_BYTES = 200  # file names stay well under the usual 255-byte limit with the rendition suffix
MAX_NAME = 255  # bytes in one file name (ext4, xfs): a key segment is cached percent-encoded
INFO = "info"
INFO_EXTENSION = "json"
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
