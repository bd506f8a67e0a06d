"""The table of operations: each one written once, with its URL token and place in the canonical order,
its `build_url` keyword, its preset key, its `resize-sidecar url` flag and its documentation line.

The grammar reads and writes ops segments from `OPERATIONS` (`read_segment`, `write_segment`), the builder
takes its keywords from it (`keyword_fields`), the command line builds its flags from it, and
docs/operations-table.md is rendered from it: `python -m sidecar.url > docs/operations-table.md` (a test
fails while the committed file differs). What an operation does to pixels is the transform's.
Pure; no IO.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.errors import BadRequest
from sidecar.url.canonical import (
    COMPASS,
    DECIMAL,
    EXTENSIONS,
    FITS,
    FORMAT_NAMES,
    MAX_BLUR,
    MAX_FRAME,
    MAX_MAX_BYTES,
    MAX_SHARPEN,
    MAX_SIDE,
    MAX_TRIM,
    MIN_MAX_BYTES,
    NAME,
    NO_OPS,
    NUMBER,
    TRIM_THRESHOLD,
    decimal_token,
    parse_decimal,
)


@dataclass(frozen=True)
class Token:
    """How an operation is spelled in the ops segment."""

    #: Its place in the canonical order. Rows sharing a slot stand side by side and exclude each other.
    slot: str
    #: As the docs write it: `w{1..16383}`.
    spelling: str
    #: The whole token; its first group, when it has one, is the value's text.
    pattern: re.Pattern[str]
    #: The value's text -> the `Ops` field's value.
    read: Callable[[str], object]
    #: The field's value (other than the default) -> the token, or None where another row writes it.
    write: Callable[[Any], str | None]
    #: The `Ops` field's default, which is never written.
    default: object = None
    #: A canonical ops segment using the token, for the docs and the tests.
    example: str = ""

    def value(self, match: re.Match[str]) -> object:
        return self.read(match[1] if self.pattern.groups else match[0])


@dataclass(frozen=True)
class Flag:
    """The operation's option of `resize-sidecar url`."""

    help: str
    type: Callable[[str], Any] = str
    choices: tuple[object, ...] | None = None
    metavar: str | None = None
    #: Takes no value: given means true.
    switch: bool = False
    #: The keyword's value when the option is given without one (`--trim` alone); None: one is required.
    bare: object = None
    #: The option, where it is not the keyword's name (`--expires-in`).
    option: str = ""
    #: The option's value -> the keyword's, where they differ.
    to_keyword: Callable[[Any], Any] | None = None

    def name(self, keyword: str) -> str:
        return self.option or "--" + keyword.replace("_", "-")

    def dest(self, keyword: str) -> str:
        """Where argparse puts the value."""
        return self.name(keyword)[2:].replace("-", "_")


@dataclass(frozen=True)
class Operation:
    """One operation. `name` is its `Ops` field, and its `build_url` keyword and preset key where it has them."""

    name: str
    doc: str
    #: None for the one operation outside the ops segment: the format, which is the extension.
    token: Token | None
    flag: Flag | None
    keyword: bool = True
    preset: bool = True
    #: Fields set along with this one: a focal point is gravity `fp`.
    implies: tuple[tuple[str, object], ...] = ()
    #: A `build_url` keyword's value -> fields, where that is not simply the field (and `implies`).
    from_keyword: Callable[[Any, Mapping[str, object]], dict[str, object]] | None = None
    #: Looser spellings `build_url` accepts for the field, made canonical (wherever the value came from).
    tidy: Callable[[Any], Any] | None = None

    def fields(self, value: object) -> dict[str, object]:
        return {self.name: value, **dict(self.implies)}


def _pair(text: str) -> tuple[int, int]:
    """`250x600` -> (250, 600)."""
    x, _, y = text.partition("x")
    return int(x), int(y)


def _focus(text: str) -> tuple[int, int]:
    """The `--focus` flag's `250,600` -> (250, 600)."""
    x, _, y = text.partition(",")
    return int(x), int(y)


def _quality(text: str) -> int | str:
    return text if text in ("keep", "auto") else int(text)


def _flip(value: object, fields: Mapping[str, object]) -> dict[str, object]:
    """`build_url(flip=...)`: `h` mirrors; `v` is spelled as a half turn more plus the mirror, its one spelling."""
    if value not in ("h", "v"):
        raise BadRequest("flip must be h or v")
    if value == "h":
        return {"flip": True}
    return {"flip": True, "rotate": (int(fields.get("rotate") or 0) + 180) % 360}  # type: ignore[call-overload]


def _colour(value: object) -> object:
    return value.lower().lstrip("#") if isinstance(value, str) else value


def _trim(value: object) -> object:
    """`build_url(trim=True)` is the default threshold; False is no trim."""
    if value is True:
        return TRIM_THRESHOLD
    return None if value is False else value


def _seconds_from_now(seconds: int) -> int:
    return int(time.time()) + seconds


def _token(slot: str, spelling: str, pattern: str, read: Callable[[str], object],
           write: Callable[[Any], str | None], example: str, default: object = None) -> Token:
    return Token(slot, spelling, re.compile(pattern), read, write, default, example)


def _word(word: str, example: str, slot: str = "") -> Token:
    """A token that is one word and stands for true."""
    return _token(slot or word, word, re.escape(word), lambda _: True, lambda _: word, example, default=False)


#: Every operation, tokens in their canonical order. The format, the extension, stands next to quality.
OPERATIONS: tuple[Operation, ...] = (
    Operation("width", f"the width in pixels, 1 to {MAX_SIDE} (the DPR multiplies it)",
              _token("w", f"w{{1..{MAX_SIDE}}}", r"w([1-9][0-9]{0,4})", int, lambda v: f"w{v}", "w300"),
              Flag("width in pixels", type=int, metavar="N")),
    Operation("height", f"the height in pixels, 1 to {MAX_SIDE} (the DPR multiplies it)",
              _token("h", f"h{{1..{MAX_SIDE}}}", r"h([1-9][0-9]{0,4})", int, lambda v: f"h{v}", "w300-h200"),
              Flag("height in pixels", type=int, metavar="N")),
    Operation("fit", "with width and height: fill crops to them, force stretches to them, pad fits inside and "
                     "pads with the background (default: fit inside)",
              _token("fill/force/pad", "fill|force|pad", r"(fill|force|pad)", str, str, "w300-h200-fill",
                     default="fit"),
              Flag("how the image meets width and height", choices=FITS)),
    Operation("gravity", "what fill and pad keep: a side or corner, or (fill only) sm, smart: the busiest "
                         "pixels, or fc, the faces (every face that fits, with headroom, else the largest; "
                         "none: as sm); default the centre",
              _token("g", "g{n,s,e,w,ne,nw,se,sw,sm,fc}", r"g(ne|nw|se|sw|n|s|e|w|sm|fc)", str,
                     lambda v: None if v == "fp" else f"g{v}", "w300-h200-fill-gn", default="ce"),
              Flag("what fill and pad keep in view", choices=(*COMPASS, "sm", "fc"))),
    Operation("focus", "a focal point for fill, in thousandths of the width and height",
              _token("g", "gfp{X}x{Y}", rf"gfp({NUMBER}x{NUMBER})", _pair, lambda v: f"gfp{v[0]}x{v[1]}",
                     "w300-h300-fill-gfp250x600"),
              Flag("focal point in thousandths (fill only)", type=_focus, metavar="X,Y"),
              preset=False, implies=(("gravity", "fp"),)),
    Operation("enlarge", "allow upscaling beyond the original's size (needs a width or a height)",
              _word("up", "w2000-up"), Flag("allow upscaling", switch=True)),
    Operation("dpr", "device pixel ratio, 1 to 4 in steps of 0.1 (1_5 is 1.5; needs a width or a height)",
              _token("x/ch", "x{DPR}", r"x([1-9](?:_[1-9])?)", parse_decimal, lambda v: f"x{decimal_token(v)}",
                     "w300-x1_5", default=1),
              Flag("device pixel ratio, 1 to 4 in steps of 0.1", type=float)),
    Operation("client_hints", "the width and DPR follow the client's Sec-CH-Width / Sec-CH-DPR "
                              "(needs a width and client_hints = true)",
              _word("ch", "w400-ch", slot="x/ch"),
              Flag("the width follows the client's Sec-CH-Width / Sec-CH-DPR (client_hints = true)",
                   switch=True)),
    Operation("rotate", "turn clockwise, after the EXIF orientation and before the geometry",
              _token("r", "r{90,180,270}", r"r(90|180|270)", int, lambda v: f"r{v}", "r90", default=0),
              Flag("clockwise", type=int, choices=(90, 180, 270))),
    Operation("flip", "mirror left to right, after the rotation (the builder's flip v is r180 more and flip)",
              _word("flip", "r90-flip"), Flag("mirror left to right (h) or upside down (v)", choices=("h", "v")),
              from_keyword=_flip),
    Operation("trim", f"cut uniform borders (the corners' colour, or transparency) before the resize; "
                      f"trim{{N}}: the border is within N of it per channel, 0 to {MAX_TRIM} (trim: "
                      f"{TRIM_THRESHOLD})",
              _token("trim", f"trim|trim{{0..{MAX_TRIM}}}", r"trim(0|[1-9][0-9]?|100)?",
                     lambda v: TRIM_THRESHOLD if v is None else int(v),
                     lambda v: "trim" if v == TRIM_THRESHOLD else f"trim{v}", "w300-h300-fill-trim"),
              Flag(f"cut uniform borders; THRESHOLD 0 to {MAX_TRIM} (default {TRIM_THRESHOLD})", type=int,
                   metavar="THRESHOLD", bare=True),
              tidy=_trim),
    Operation("blur", f"Gaussian blur, sigma 0.1 to {MAX_BLUR} in the URL's pixels",
              _token("bl", "bl{sigma}", rf"bl{DECIMAL}", parse_decimal, lambda v: f"bl{decimal_token(v)}",
                     "w300-bl2_5"),
              Flag(f"Gaussian blur, 0.1 to {MAX_BLUR}", type=float, metavar="SIGMA")),
    Operation("sharpen", f"unsharp mask, sigma 0.1 to {MAX_SHARPEN}; 0 switches the automatic sharpening off",
              _token("sh", "sh{sigma}", rf"sh{DECIMAL}", parse_decimal, lambda v: f"sh{decimal_token(v)}",
                     "w300-sh0"),
              Flag(f"unsharp mask, 0.1 to {MAX_SHARPEN}; 0 switches the automatic sharpening off", type=float,
                   metavar="SIGMA")),
    Operation("background", "a colour: transparency is flattened on it, and pad fills with it",
              _token("bg", "bg{rrggbb}", r"bg([0-9a-f]{6})", str, lambda v: f"bg{v}", "w300-h300-pad-bgffffff"),
              Flag("flatten transparency on it; pad with it", metavar="RRGGBB"), tidy=_colour),
    Operation("watermark", "lay the config's [watermarks.NAME] over the image",
              _token("wm", "wm{name}", rf"wm({NAME})", str, lambda v: f"wm{v}", "w300-wmlogo"),
              Flag("a watermark from [watermarks.NAME]", metavar="NAME")),
    Operation("frame", f"a still of this frame of an animation, 0 (the first) to {MAX_FRAME} (past the last: the "
                       "last); without it, .gif, .webp, .avif and .auto keep animations, .jpg and .png show frame 0",
              _token("fr", f"fr{{0..{MAX_FRAME}}}", r"fr(0|[1-9][0-9]{0,3})", int, lambda v: f"fr{v}", "w300-fr0"),
              Flag("a still of this frame of an animation (0 is the first)", type=int, metavar="N")),
    Operation("format", "the output format, as the extension: .jpg, .png, .gif, .webp, .avif, .jxl, or .auto (by "
                        "the client's Accept; animations: WebP, else GIF); by default the original's PNG, WebP or "
                        "AVIF, else JPEG",
              None, Flag("the output format", choices=tuple(FORMAT_NAMES))),
    Operation("quality", "the encoder's quality, 1 to 100, keep the original's, or auto: the lowest that keeps "
                         "the perceptual target quality_target (lossy formats only)",
              _token("q", "q{1..100}|qkeep|qauto", r"q(100|[1-9][0-9]?|keep|auto)", _quality, lambda v: f"q{v}",
                     "w300-q70"),
              Flag("encoder quality, keep the original's, or auto (searched)", type=_quality,
                   metavar="N|keep|auto")),
    Operation("max_bytes", f"the most bytes the rendition may have, {MIN_MAX_BYTES} to {MAX_MAX_BYTES}: the "
                           "highest quality that fits (then smaller dimensions, if max_bytes_resize); when "
                           "nothing fits, the smallest we can make",
              _token("mb", f"mb{{{MIN_MAX_BYTES}..{MAX_MAX_BYTES}}}", r"mb([1-9][0-9]{2,8})", int,
                     lambda v: f"mb{v}", "w300-mb20000"),
              Flag("the most bytes the rendition may have", type=int, metavar="N")),
    Operation("fallback", "the preset whose fallback_image stands in for a missing or broken original "
                          "(presets with a fallback_image add it)",
              _token("fb", "fb{preset}", rf"fb({NAME})", str, lambda v: f"fb{v}", "w300-fbthumb"),
              None, keyword=False, preset=False),
    Operation("expires", "the URL is refused after this unix time (signed URLs only; the cached file is the "
                         "same without it)",
              _token("e", "e{unix time}", r"e([1-9][0-9]{0,10})", int, lambda v: f"e{v}", "w300-e1767225600"),
              Flag("the URL stops working this many seconds from now (signed deployments)", type=int,
                   metavar="SECONDS", option="--expires-in", to_keyword=_seconds_from_now),
              preset=False),
)
#: The rows in the ops segment, and each one's place in the order (rows sharing a slot share a place).
TOKENS = tuple(op for op in OPERATIONS if op.token is not None)
SLOTS = tuple(dict.fromkeys(op.token.slot for op in TOKENS if op.token))
_PLACES = tuple((op, op.token, SLOTS.index(op.token.slot)) for op in TOKENS if op.token)
_WRITERS = tuple((op.name, token.default, token.write) for op, token, _ in _PLACES)
ORDER = ", ".join(SLOTS)
KEYWORDS = tuple(op.name for op in OPERATIONS if op.keyword)
PRESET_KEYS = tuple(op.name for op in OPERATIONS if op.preset)
#: The `resize-sidecar url` options, with their rows.
FLAGS = tuple((op, op.flag) for op in OPERATIONS if op.flag is not None)


def read_segment(segment: str) -> dict[str, object]:
    """An ops segment's `Ops` fields; raise BadRequest for an unknown token or one out of order."""
    fields: dict[str, object] = {}
    position = 0
    for text in [] if segment == NO_OPS else segment.split("-"):
        for op, token, place in _PLACES:  # noqa: B007 (the match's row is read after the loop)
            match = token.pattern.fullmatch(text)
            if match:
                break
        else:
            raise BadRequest(f"unknown operation {text!r}")
        if place < position:
            raise BadRequest(f"operations must be written once each, in the order {ORDER}")
        position = place + 1
        fields.update(op.fields(token.value(match)))
    return fields


def write_segment(ops: object) -> str:
    """The canonical ops segment of an `Ops`: each field that is not its default, in the order."""
    tokens = []
    for name, default, write in _WRITERS:
        value = getattr(ops, name)
        if value != default and (text := write(value)) is not None:
            tokens.append(text)
    return "-".join(tokens) or NO_OPS


def check_keywords(keywords: Iterable[str]) -> None:
    """Raise TypeError, as a call would, for a keyword `build_url` does not take."""
    unknown = set(keywords) - set(KEYWORDS)
    if unknown:
        raise TypeError(f"build_url() got an unexpected keyword argument {min(unknown)!r}")


def keyword_fields(keywords: Mapping[str, object], fields: Mapping[str, object]) -> dict[str, object]:
    """`build_url`'s keywords (None: not given) over `fields` (a preset's, a route's), as `Ops` fields."""
    merged = dict(fields)
    for op in OPERATIONS:  # in order: a keyword may build on an earlier one (flip v turns the rotation)
        value = keywords.get(op.name)
        if value is not None:
            merged.update(op.from_keyword(value, merged) if op.from_keyword else op.fields(value))
    for op in OPERATIONS:
        if op.tidy is not None and op.name in merged:
            merged[op.name] = op.tidy(merged[op.name])
    return merged


def flag_keywords(values: Callable[[str], object]) -> dict[str, Any]:
    """The `build_url` keywords of the `url` command's flags, given each flag's parsed value by its dest."""
    keywords: dict[str, Any] = {}
    for op, flag in FLAGS:
        value = values(flag.dest(op.name))
        if value is not None:
            keywords[op.name] = flag.to_keyword(value) if flag.to_keyword else value
    return keywords


def markdown(operations: Iterable[Operation] = OPERATIONS) -> str:
    """docs/operations-table.md: the grammar's tokens, in order, with their keywords, flags and meaning."""
    def code(text: str | None) -> str:
        return "—" if not text else "`" + text.replace("|", "\\|") + "`"

    shared = ", ".join(f"`{slot}`" for slot in SLOTS if sum(op.token.slot == slot for op in TOKENS if op.token) > 1)
    lines = [
        "# Operations",
        "",
        "<!-- Generated from sidecar/url/operations.py by `python -m sidecar.url > docs/operations-table.md`. -->",
        "",
        (f"An ops segment is its tokens joined by `-`, in this order: {ORDER}. Tokens that share a place "
         f"({shared}) exclude each other. Defaults are never written, and a URL with no operations says "
         f"`{NO_OPS}`: every rendition has one spelling, and any other is a 400."),
        "",
        "| token | example | `build_url` keyword | preset key | `resize-sidecar url` | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for op in sorted(operations, key=lambda op: op.token is None):  # the extension after the tokens
        token = op.token
        flag = None
        if op.flag is not None:
            flag = op.flag.name(op.name) + ("" if op.flag.switch else " " + _argument(op.name, op.flag))
        cells = (code(token.spelling if token else ".{" + ",".join(EXTENSIONS) + "}"),
                 code(token.example if token else "w300.webp"), code(op.name if op.keyword else None),
                 code(op.name if op.preset else None), code(flag), op.doc)
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _argument(name: str, flag: Flag) -> str:
    """How `--help` shows a flag's value: its choices, its metavar, or its name in capitals."""
    if flag.bare is not None:
        return f"[{flag.metavar or name.upper()}]"
    if flag.choices is not None:
        return "{" + ",".join(map(str, flag.choices)) + "}"
    return flag.metavar or name.upper()
