"""When the original is the rendition: its own bytes, minus the metadata, without decoding a pixel.

JPEG: every APPn segment but JFIF (APP0), ICC (APP2 "ICC_PROFILE") and Adobe (APP14, which says how
to read the colour channels) is dropped, and so are comments; the compressed data is copied as it is.
PNG: text, EXIF and time chunks are dropped. WebP: passed only when it has no EXIF or XMP chunk at all (animated: and
every frame decodes).
GIF: comments and application extensions but the loop count (NETSCAPE2.0) are dropped, and every
frame must decode (LZW data has no checksum).
The ICC profile is the one piece of metadata kept: it is what makes the original's colours right.

Without a decode, a broken file could slip through, so each format's structure is checked first (JPEG
ends with its EOI marker, PNG chunks and their CRCs verify, WebP's RIFF size is the file's); anything
doubtful goes the decoding way, which rejects what is broken.
"""
from __future__ import annotations

import io
import struct

from PIL import Image, ImageSequence

from sidecar.transform.headers import gif_stripped

_JPEG_KEEP_APP = {0xE0: (b"JFIF\x00", b"JFXX\x00"), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_WEBP_EXIF_OR_XMP = 0x08 | 0x04  # VP8X flags
_WEBP_ANIMATED = 0x02


def stripped(data: bytes, fmt: str, *, animated: bool = False) -> bytes | None:
    """The original without metadata, or None if this file cannot be passed through safely. `animated`:
    the rendition keeps the original's animation (else an animated file cannot be it)."""
    if fmt == "JPEG":
        return _jpeg(data)
    if fmt == "PNG":
        return _png(data)
    if fmt == "WEBP":
        plain = _webp_is_plain(data, animated)
        return data if plain and (not animated or _frames_decode(data, fmt)) else None
    if fmt == "GIF":
        data_out = gif_stripped(data)
        return data_out if data_out is not None and _frames_decode(data, fmt) else None
    return None


def _frames_decode(data: bytes, fmt: str) -> bool:
    # LZW data has no checksum, and an animated WebP's frames are checked by nothing short of decoding
    # them: every frame, at the cost of a decode without resizing or encoding (the frames are within
    # max_animation_pixels, or the animation would not be passed).
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            for frame in ImageSequence.Iterator(image):
                frame.load()
        return True
    except Exception:  # noqa: BLE001  (any failure means: let the decoding path judge it)
        return False


def _png_verifies(data: bytes) -> bool:
    # Pillow's verify() reads every chunk and checks its CRC without touching the pixels.
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001  (any failure means: let the decoding path judge it)
        return False


def _jpeg(data: bytes) -> bytes | None:
    out = [data[:2]]
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker == 0xDA:  # start of scan: the rest is compressed data and later tables
            if not data.endswith(b"\xff\xd9"):
                return None  # truncated, or trailing bytes we will not vouch for
            out.append(data[pos:])
            return b"".join(out)
        segment = data[pos:end]
        keep = _JPEG_KEEP_APP.get(marker)
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            if keep is not None and segment[4:].startswith(keep):
                out.append(segment)
        else:
            out.append(segment)
        pos = end
    return None


def _png(data: bytes) -> bytes | None:
    out = [data[:8]]
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind == b"acTL":
            return None  # animated PNG: renditions are the first frame only
        if kind not in _PNG_DROP:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            return b"".join(out) if _png_verifies(data) else None
    return None


def _webp_is_plain(data: bytes, animated: bool) -> bool:
    if len(data) < 21 or struct.unpack("<I", data[4:8])[0] + 8 != len(data):
        return False
    if data[12:16] != b"VP8X":
        return data[12:16] in (b"VP8 ", b"VP8L")
    return not data[20] & (_WEBP_EXIF_OR_XMP | (0 if animated else _WEBP_ANIMATED))
