"""Routes: the URL shapes a shop already has, mapped onto canonical renditions. Pure; no IO.

A route is a pattern with named placeholders, for example

    [routes.legacy]
    pattern = "/{id}_w{w}_h{h}_{name}.{ext}"
    preset = "product"          # optional: the operations the old URLs implied (fill, quality, ...)

| placeholder | matches | becomes |
|---|---|---|
| `{id}`  | 1-64 of `A-Z a-z 0-9 -` | the original, looked up by the resolver (`sidecar.app.resolver`) |
| `{key}` | a key (no empty or dot-leading segment) | the original's key itself (no resolver) |
| `{w}` `{h}` | 1 to 99999 | width, height |
| `{ext}` | `jpg jpeg png webp avif` | the output format |
| `{name}` | anything but `/` | nothing: a slug for people and search engines |

Exactly one of `{id}` and `{key}`. What a matched URL asks for is a canonical rendition (`sidecar.url.grammar`), whose
cache file is the one its canonical URL serves. nginx cannot compute the canonical path (its shard is a
sha256), so the sidecar answers an old URL's first miss and leaves a *link*: a relative symlink at a path
nginx derives from the old URL alone, pointing at the canonical file,

    {cache_dir}/_routes/{route}/{id shard}/{id}{old URL path}     id routes
    {cache_dir}/_routes/{route}{old URL path}                     key routes

The id shard is the last four characters of the ID (`_`-padded), last two first: `/1234567` -> `67/45`, so
a bucket holds a hundredth of a hundredth of the IDs. A purge removes canonical files, which leaves
such links dangling: nginx then misses, and the sidecar resolves the ID again and relinks. Purging an ID
removes its links too, so a row that now names another original takes effect at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from sidecar.errors import BadRequest

ROUTES_DIR = "_routes"
ID_PATTERN = r"[A-Za-z0-9-]{1,64}"
KEY_PATTERN = r"[^/.][^/]*(?:/[^/.][^/]*)*"
PLACEHOLDERS = {
    "id": ID_PATTERN,
    "key": KEY_PATTERN,
    "w": r"[1-9][0-9]{0,4}",
    "h": r"[1-9][0-9]{0,4}",
    "ext": r"jpg|jpeg|png|webp|avif",
    "name": r"[^/]+",
}
#: A route's extension -> output format, as the URL builder spells formats.
ROUTE_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif"}
#: The nginx variable that the location's regex fills with the ID or key.
NGINX_IDENTITY = "resize_sidecar_route_id"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_LITERAL = re.compile(r"[A-Za-z0-9/_.,~-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Route:
    """One URL shape. Validated at construction (errors say what is wrong with the pattern)."""

    name: str
    pattern: str
    preset: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,32}", self.name):
            raise ValueError("route names are 1-32 of a-z, 0-9, _")
        if not self.pattern.startswith("/") or self.pattern.startswith("/_"):
            raise ValueError("pattern must start with / (and not with /_, which is the sidecar's)")
        names = _PLACEHOLDER.findall(self.pattern)
        for literal in _PLACEHOLDER.split(self.pattern)[::2]:
            if not _LITERAL.fullmatch(literal):
                raise ValueError(f"pattern: only A-Z a-z 0-9 / _ . , ~ - between placeholders, not {literal!r}")
        unknown = set(names) - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(f"pattern: unknown placeholders {sorted(unknown)}; known: {', '.join(PLACEHOLDERS)}")
        if len(names) != len(set(names)):
            raise ValueError("pattern: each placeholder at most once")
        if ("id" in names) == ("key" in names):
            raise ValueError("pattern: needs exactly one of {id} and {key}")
        if re.search(r"\}\{", self.pattern):
            raise ValueError("pattern: placeholders must be separated by literal text")

    @property
    def by_id(self) -> bool:
        return "{id}" in self.pattern

    def regex(self, *, nginx: bool = False) -> str:
        """The anchored regular expression of the pattern: Python's with every placeholder captured,
        nginx's (PCRE) with only the ID or key captured, into `NGINX_IDENTITY`."""
        parts = []
        for index, piece in enumerate(_PLACEHOLDER.split(self.pattern)):
            if index % 2 == 0:
                parts.append(re.escape(piece))
            elif not nginx:
                parts.append(f"(?P<{piece}>{PLACEHOLDERS[piece]})")
            elif piece in ("id", "key"):
                parts.append(f"(?<{NGINX_IDENTITY}>{PLACEHOLDERS[piece]})")
            else:
                parts.append(f"(?:{PLACEHOLDERS[piece]})")
        return "^" + "".join(parts) + "$"


@dataclass(frozen=True)
class RouteMatch:
    """An old URL, taken apart: `identity` is the ID (resolver routes) or the key."""

    route: Route
    path: str  # decoded, as nginx's $uri
    identity: str
    width: int | None = None
    height: int | None = None
    format: str | None = None

    @property
    def link_path(self) -> str:
        """Where, under the cache root, the link to the canonical file lives (nginx's try_files path)."""
        return link_dir(self.route, self.identity) + self.path

    def fields(self) -> dict[str, object]:
        """What the URL itself says about the rendition, in the URL builder's terms."""
        given = {"width": self.width, "height": self.height, "format": self.format}
        return {name: value for name, value in given.items() if value is not None}


def id_shard(image_id: str) -> str:
    """Two directory levels from the ID's last four characters (nginx computes the same with a `map`)."""
    tail = image_id[-4:].rjust(4, "_")
    return f"{tail[2:]}/{tail[:2]}"


def link_dir(route: Route, identity: str) -> str:
    """The directory of an ID's links (id routes), or the route's root (key routes: its links mirror
    the old URLs), relative to the cache root."""
    base = f"/{ROUTES_DIR}/{route.name}"
    return f"{base}/{id_shard(identity)}/{identity}" if route.by_id else base


def match(routes: tuple[Route, ...], raw_path: str) -> RouteMatch | None:
    """The first route whose pattern matches the request path (percent-encoded, as the client sent it)."""
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("path is not UTF-8") from None
    if _CONTROL.search(path) or "/." in path:
        return None  # nginx refuses such paths for routes too, so no link may have such a name
    for route in routes:
        found = re.fullmatch(route.regex(), path)
        if found is None:
            continue
        values = found.groupdict()
        return RouteMatch(
            route, path, values.get("id") or values["key"],
            width=int(values["w"]) if values.get("w") else None,
            height=int(values["h"]) if values.get("h") else None,
            format=ROUTE_FORMATS[values["ext"]] if values.get("ext") else None,
        )
    return None
