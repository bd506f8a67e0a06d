"""SVG originals: sanitised, then drawn by resvg at the rendition's size.

Sanitising keeps the drawing and removes what could reach outside the file or run: entity declarations
are refused before parsing (no entity expansion at all), scripts, `foreignObject` and event attributes
are dropped, and every reference (`href`, CSS `url()`, `@import`) must point inside the document, or be
an embedded PNG, JPEG, GIF or WebP whose header is within the pixel limit. resvg itself would read any
absolute file path an `<image>` names, so nothing unsanitised ever reaches it.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import xml.etree.ElementTree as ET

import resvg_py
from PIL import Image

from sidecar.errors import TooLarge, Undecodable
from sidecar.transform.vector import VectorImageFile, checked_size

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
#: Elements beyond this are refused (413), counted as drawn: every `<use>` and `url(#...)` reference adds
#: what it points to again (ten uses of ten uses of ... is the SVG "billion laughs": resvg took 4.5 s
#: for 10^5 copies, ten times more per level). Drawing time grows with them; real artwork stays below.
MAX_ELEMENTS = 100_000
#: The size of an SVG without width, height or viewBox: CSS's default for a replaced element.
DEFAULT_SIZE = (300.0, 150.0)
_DROPPED = {"script", "foreignObject", "iframe", "object", "embed", "audio", "video", "canvas", "handler",
            "listener"}
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0,
          "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*$")
_OUTSIDE_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)
_EMBEDDED = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,", re.IGNORECASE)
_REFERENCE = re.compile(r"url\(\s*['\"]?\s*#([^)'\"\s]+)|^\s*#(\S+)")

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


def sanitised(data: bytes, max_pixels: int) -> ET.Element:
    """The SVG's root element with everything outside the drawing removed. SyntaxError (Pillow's "not
    this format") if it is not an SVG document at all."""
    if b"<!ENTITY" in data.upper():
        raise Undecodable("SVG declares entities")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError) as exc:
        raise SyntaxError(f"SVG does not parse: {exc}") from None
    if _local(root.tag) != "svg":
        raise SyntaxError("not an SVG document")
    for count, parent in enumerate(root.iter(), 1):
        if count > MAX_ELEMENTS:
            raise TooLarge(f"SVG has more than {MAX_ELEMENTS} elements")
        for child in list(parent):
            if not isinstance(child.tag, str) or _local(child.tag) in _DROPPED or (
                    _local(child.tag) == "style" and _reaches_out(child.text or "")):
                parent.remove(child)
        for name, value in list(parent.attrib.items()):
            if _unsafe_attribute(_local(name), value, max_pixels):
                del parent.attrib[name]
    drawn = drawn_elements(root)
    if drawn > MAX_ELEMENTS:
        raise TooLarge(f"SVG draws more than {MAX_ELEMENTS} elements (through its references)")
    return root


def drawn_elements(root: ET.Element) -> int:
    """How many elements drawing `root` may visit: each element once, plus, for every reference it makes
    (`href="#id"`, `url(#id)`), what that element counts. Stops counting past MAX_ELEMENTS."""
    by_id = {element.get("id"): element for element in root.iter() if element.get("id")}
    counted: dict[int, int] = {}

    def count(element: ET.Element, path: frozenset[int]) -> int:
        key = id(element)
        if key in counted:
            return counted[key]
        if key in path or len(path) > 256:
            return MAX_ELEMENTS + 1 if len(path) > 256 else 0  # too deep to draw; a cycle resvg refuses
        inner = path | {key}
        total = 1
        for target in _references(element, by_id):
            total += count(target, inner)
        for child in element:
            total += count(child, inner)
            if total > MAX_ELEMENTS:
                break
        counted[key] = total = min(total, MAX_ELEMENTS + 1)
        return total

    return count(root, frozenset())


def _references(element: ET.Element, by_id: dict[str | None, ET.Element]) -> list[ET.Element]:
    found = []
    for value in element.attrib.values():
        for match in _REFERENCE.finditer(value):
            target = by_id.get(match.group(1) or match.group(2))
            if target is not None:
                found.append(target)
    return found


def intrinsic_size(root: ET.Element) -> tuple[float, float]:
    """The size in CSS pixels: width and height, else the viewBox's (keeping its ratio with one of them)."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    box = _view_box(root.get("viewBox"))
    if width and height:
        return width, height
    if box:
        if width:
            return width, width * box[1] / box[0]
        if height:
            return height * box[0] / box[1], height
        return box
    return width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1]


class SvgImageFile(VectorImageFile):
    format = "SVG"
    format_description = "Scalable Vector Graphics (sanitised, drawn by resvg)"

    def _open(self) -> None:
        assert self.fp is not None
        root = sanitised(self.fp.read(), Image.MAX_IMAGE_PIXELS or 1 << 62)
        self._size = checked_size(*intrinsic_size(root), "SVG")
        self._mode = "RGBA"
        self._markup = ET.tostring(root, encoding="unicode")

    def render(self, size: tuple[int, int]) -> Image.Image:
        try:
            png = resvg_py.svg_to_bytes(svg_string=self._markup, width=size[0], height=size[1])
        except ValueError as exc:
            raise Undecodable(detail=f"resvg: {exc}") from None
        return Image.open(io.BytesIO(bytes(png)), formats=["PNG"])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _unsafe_attribute(name: str, value: str, max_pixels: int) -> bool:
    if name.lower().startswith("on"):
        return True
    if name == "href":
        target = value.strip()
        return not (target.startswith("#") or _embedded_image_ok(target, max_pixels))
    return _reaches_out(value)


def _reaches_out(css: str) -> bool:
    return "@import" in css.lower() or _OUTSIDE_URL.search(css) is not None


def _embedded_image_ok(uri: str, max_pixels: int) -> bool:
    """A base64 PNG, JPEG, GIF or WebP whose header says it is within the pixel limit."""
    match = _EMBEDDED.match(uri)
    if match is None:
        return False
    try:
        payload = base64.b64decode(uri[match.end():], validate=False)
        with Image.open(io.BytesIO(payload), formats=["PNG", "JPEG", "GIF", "WEBP"]) as image:
            return image.size[0] * image.size[1] <= max_pixels
    except (OSError, ValueError, binascii.Error, Image.DecompressionBombError):
        return False


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if match is None or match.group(2) not in _UNITS:
        return None  # absent, a percentage, or nonsense: the viewBox decides
    return float(match.group(1)) * _UNITS[match.group(2)] or None


def _view_box(value: str | None) -> tuple[float, float] | None:
    try:
        parts = [float(part) for part in (value or "").replace(",", " ").split()]
    except ValueError:
        return None
    return (parts[2], parts[3]) if len(parts) == 4 and parts[2] > 0 and parts[3] > 0 else None


def accept(prefix: bytes) -> bool:
    """Markup, possibly after a byte order mark: `_open` tells an SVG from other XML (Pillow shows a
    plugin only 16 bytes)."""
    return prefix.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"<"


Image.register_open(SvgImageFile.format, SvgImageFile, accept)
Image.register_mime(SvgImageFile.format, "image/svg+xml")
