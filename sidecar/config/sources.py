"""What a `--source` names: a directory, `s3://bucket/prefix` or `http(s)://host/prefix`. Pure, no IO."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

Kind = Literal["local", "s3", "http"]

# AWS's rules for new buckets; dots are allowed for older ones and S3-compatible stores.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class SourceSpec:
    """One source, validated at construction. `kind` is what `X-Image-Source` reports.

    local: `location` is a directory. s3: `location` is the bucket, `prefix` ends in `/` or is empty.
    http: `location` is the base URL and ends in `/`; a key is appended to it percent-encoded.
    """

    kind: Kind
    location: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.kind == "local":
            if not self.location or self.prefix:
                raise ValueError("a local source is a directory")
        elif self.kind == "s3":
            if not _BUCKET.fullmatch(self.location) or ".." in self.location:
                raise ValueError(f"{self.location!r} is not a valid S3 bucket name")
            if self.prefix and (not self.prefix.endswith("/") or self.prefix.startswith("/")):
                raise ValueError("an S3 prefix has no leading slash and ends with one")
        elif self.kind == "http":
            if not self.location.endswith("/") or self.prefix:
                raise ValueError("an HTTP source's base URL ends with a slash")
        else:
            raise ValueError(f"unknown source kind {self.kind!r}")

    @property
    def name(self) -> str:
        """How logs and counters name this source (never with credentials: URLs may not carry any)."""
        if self.kind == "s3":
            return f"s3://{self.location}/{self.prefix}"
        return self.location

    def object_key(self, key: str) -> str:
        """The S3 object key of an original."""
        return self.prefix + key

    def url(self, key: str) -> str:
        """The HTTP URL of an original: the key percent-encoded exactly as in our own URLs."""
        return self.location + quote(key, safe="/")


def parse_source(text: str) -> SourceSpec:
    """Parse one `--source` value. Raises ValueError with a message fit for a config error."""
    if "://" not in text:
        return SourceSpec("local", os.path.abspath(text))
    scheme = text.split("://", 1)[0].lower()
    if scheme == "s3":
        bucket, _, prefix = text[len("s3://"):].partition("/")
        prefix = prefix.strip("/")
        return SourceSpec("s3", bucket, prefix + "/" if prefix else "")
    if scheme in ("http", "https"):
        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"{text!r} has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{text!r}: credentials in the URL are not supported")
        if parts.query or parts.fragment:
            raise ValueError(f"{text!r}: a base URL has no query or fragment")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError(f"{text!r} has an invalid port") from None
        path = parts.path.rstrip("/") + "/"
        return SourceSpec("http", f"{scheme}://{parts.netloc}{path}")
    raise ValueError(f"{text!r}: a source is a directory, s3://bucket/prefix or http(s)://host/prefix")
