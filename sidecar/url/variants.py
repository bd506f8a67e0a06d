"""Renditions whose URL leaves something to the request: `.auto` (the format, from Accept) and `ch` (the
size, from client hints). Pure; no IO.

nginx reduces the request's headers to one of a few variants (`AUTO_VARIANTS`; a `Hint` from the
configured widths and ratios) and passes it on; the variant ends the cache file's name, after the URL
path, so nginx finds hits with `try_files` alone and no header can make more than a fixed number of files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sidecar.errors import BadRequest
from sidecar.url.grammar import (
    DECIMAL,
    EXTENSIONS,
    FORMAT_EXTENSION,
    MAX_DPR,
    MAX_SIDE,
    Ops,
    decimal_token,
    is_decimal,
    parse_decimal,
)


@dataclass(frozen=True)
class Hint:
    """What nginx made of a request's client hints: a width from its fixed set, or else a DPR."""

    width: int | None = None
    dpr: float = 1.0

    @property
    def suffix(self) -> str:
        """How the hint ends the cache file's name (nginx builds the same from its maps)."""
        return f"w{self.width}" if self.width is not None else f"x{decimal_token(self.dpr)}"

    @classmethod
    def parse(cls, value: str, widths: tuple[int, ...] | None = None,
              dprs: tuple[float, ...] | None = None) -> Hint:
        """nginx's `X-Image-Hint` (`w640`, `x2`, `x1_5`); with `widths` and `dprs`, only values from them."""
        match = re.fullmatch(rf"w([1-9][0-9]{{0,4}})|x{DECIMAL}", value)
        try:
            hint = None if match is None else cls(width=int(match[1])) if match[1] else \
                cls(dpr=parse_decimal(match[2]))
        except BadRequest:
            hint = None
        if hint is None or (widths is not None and hint.width is not None and hint.width not in widths) \
                or (dprs is not None and hint.width is None and hint.dpr not in dprs):
            raise BadRequest(f"X-Image-Hint {value!r} is not one of nginx's")
        return hint

    def __post_init__(self) -> None:
        if self.width is not None and not 1 <= self.width <= MAX_SIDE:
            raise BadRequest(f"hinted width must be 1 to {MAX_SIDE}")
        if not is_decimal(self.dpr, 1, MAX_DPR):
            raise BadRequest(f"hinted dpr must be 1 to {MAX_DPR} in steps of 0.1")


def hinted(ops: Ops, hint: Hint | None) -> Ops:
    """The operations a client-hints URL stands for under nginx's `hint`: plain ones, without `ch`.

    A width hint sets the output width (the height keeps the URL's proportion); a DPR hint is the DPR.
    """
    if not ops.client_hints:
        return ops
    if hint is None:
        raise BadRequest("client-hint renditions need X-Image-Hint (from nginx)")
    assert ops.width is not None
    if hint.width is None:
        return replace(ops, client_hints=False, dpr=hint.dpr)
    height = None if ops.height is None else max(1, round(ops.height * hint.width / ops.width))
    return replace(ops, client_hints=False, width=hint.width, height=height)


#: The `.auto` variants whose animations are WebP although their stills are not (`.auto.anim.webp`).
ANIMATED_AS_WEBP = ("jxl", "avif")


def variant_suffix(ops: Ops, hint: Hint | None, output_format: str, variant: str | None = None) -> str:
    """What ends a cache file's name beyond its URL, when the URL leaves something to the request.

    `.auto` URLs add the format they got (`w400.{sig}.auto.webp`); client-hint URLs add the hint and the
    format (`w400-ch.{sig}.jpg.w640.jpg`), so every file name still ends in its type's extension and nginx
    finds hits with `try_files` alone. Renditions of fixed URLs have no suffix.
    """
    suffix = ""
    if ops.client_hints:
        assert hint is not None
        suffix += f".{hint.suffix}"
    if ops.format == "auto" and variant in ANIMATED_AS_WEBP and output_format == "webp":
        # An animation is WebP for these variants; a still is their own format. A still's lookup must not
        # find a WebP still the webp variant made, so the animation's name says what it is.
        suffix += ".anim"
    if ops.client_hints or ops.format == "auto":
        suffix += f".{FORMAT_EXTENSION[output_format]}"
    return suffix


def cached_ops(name: str) -> Ops | None:
    """The operations a cached rendition's file name stands for (hints resolved, the format it got), or
    None if the name is not one of a rendition (`.source.json`, `info.….json`, a temporary file)."""
    parts = name.split(".")
    if name.startswith(".") or len(parts) < 2 or parts[-1] not in EXTENSIONS or parts[-1] == "auto":
        return None
    try:
        ops = Ops.parse(parts[0], parts[-1])
        return hinted(ops, Hint.parse(parts[-2]) if ops.client_hints else None)
    except BadRequest:
        return None
