"""Format detection from the first bytes of a file; the key's extension is never trusted."""
from __future__ import annotations

import re

from sidecar.errors import Unsupported

#: Formats we decode, by Pillow plugin name (what `Image.open(formats=...)` takes). SVG and PDF are our
#: own plugins (`sidecar.transform.vector`), drawn at the rendition's size.
DECODABLE = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF", "HEIF", "ICO", "CUR", "JPEG2000", "SVG",
             "PDF")
#: How many leading bytes `sniff` wants: an SVG's root element may follow an XML declaration, comments
#: and a DOCTYPE.
HEAD = 1024
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"  # the JP2 signature box
_J2K = b"\xff\x4f\xff\x51"  # a raw JPEG 2000 codestream: SOC then SIZ
_SVG_ROOT = re.compile(rb"<svg[\s>/]")


def sniff(head: bytes) -> str:
    """Return the Pillow format name for these leading bytes, or raise Unsupported (415)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in _TIFF:
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and _icon_entries(head):
        return "ICO" if head[2] == 1 else "CUR"
    if head.startswith((_JP2, _J2K)):
        return "JPEG2000"
    if head[4:8] == b"ftyp":
        brands = _brands(head)
        if any(b in brands for b in _AVIF_BRANDS):
            return "AVIF"
        if any(b in brands for b in _HEIF_BRANDS):
            return "HEIF"
    if b"%PDF-" in head[:16]:
        return "PDF"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head  # a UTF-8 byte order mark
    if text.lstrip()[:1] == b"<" and _SVG_ROOT.search(text):
        return "SVG"
    raise Unsupported()


def _icon_entries(head: bytes) -> bool:
    """ICO and CUR share a 6-byte header (reserved 0, type 1 or 2, count); 00 00 01 00 alone is too weak."""
    count = int.from_bytes(head[4:6], "little")
    return 0 < count <= 256 and len(head) >= 6 + 16


def _brands(head: bytes) -> list[bytes]:
    """Major brand plus compatible brands of an ISO-BMFF `ftyp` box."""
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    return [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
