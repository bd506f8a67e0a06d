"""Format detection from the first bytes of a file; the key's extension is never trusted."""
from __future__ import annotations

from sidecar.errors import Unsupported

#: Formats we decode, by Pillow plugin name (what `Image.open(formats=...)` takes).
DECODABLE = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF", "HEIF")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")


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
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    if head[4:8] == b"ftyp":
        brands = _brands(head)
        if any(b in brands for b in _AVIF_BRANDS):
            return "AVIF"
        if any(b in brands for b in _HEIF_BRANDS):
            return "HEIF"
    if head.lstrip()[:5] in (b"<?xml", b"<svg ", b"<svg>", b"<!DOC"):
        raise Unsupported("SVG is not supported")
    raise Unsupported()


def _brands(head: bytes) -> list[bytes]:
    """Major brand plus compatible brands of an ISO-BMFF `ftyp` box."""
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    return [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
