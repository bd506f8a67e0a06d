"""Progressive JPEGs at 1/8 scale from their DC scans: the decode step's fast path.

libjpeg decodes a progressive JPEG by entropy-decoding every scan, even at 1/8 scale where it then
reads only the DC coefficient of each block. The C decoder (`dcjpeg_decoder.c`, built with cffi as
`_dcjpeg`) decodes only the scans a 1/8-scale result depends on and produces what libjpeg-turbo would
(within ±1 per channel). It declines anything it does not handle, and then the caller decodes the
normal way; without the compiled module every image takes the normal way.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

try:
    from sidecar.transform._dcjpeg import ffi, lib
except ImportError:  # not built (a source checkout without a compiler): libjpeg does all decoding
    ffi = lib = None

#: The scale this decoder produces: libjpeg's smallest, 1/8 (one sample per 8×8 block).
SCALE = 8
# Pillow mode -> (bytes per pixel, Pillow raw mode of libjpeg's output). Pillow reads every
# 4-component JPEG as Adobe-style inverted CMYK; the bytes it gets from libjpeg are what we produce.
_LAYOUT = {"L": (1, "L"), "RGB": (3, "RGB"), "CMYK": (4, "CMYK;I")}
_enabled = True


class Declined(Exception):
    """The decoder does not handle this file (or found it malformed); decode it the normal way."""


def available() -> bool:
    """True when the compiled decoder is importable and not switched off by `disabled()`."""
    return lib is not None and _enabled


@contextmanager
def disabled() -> Iterator[None]:
    """Route every decode through libjpeg while inside (for benchmarks and comparisons; not thread-safe)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def decode(data: bytes, size: tuple[int, int], mode: str) -> Image.Image:
    """Decode the progressive JPEG `data` at 1/8 scale; `size` and `mode` are what Pillow expects
    after `draft` (the decoder checks the file agrees). Raise Declined when it will not."""
    if lib is None:
        raise Declined("the compiled decoder is not installed")
    if mode not in _LAYOUT:
        raise Declined(f"mode {mode}")
    channels, rawmode = _LAYOUT[mode]
    width, height = size
    out = bytearray(width * height * channels)
    status = lib.dcjpeg_decode(ffi.from_buffer(data), len(data), ffi.from_buffer(out), width, height, channels)
    if status != lib.DCJPEG_OK:
        raise Declined(ffi.string(lib.dcjpeg_reason(status)).decode())
    return Image.frombytes(mode, size, bytes(out), "raw", rawmode)


def reduced(image: Image.Image, data: bytes) -> Image.Image | None:
    """The decode hook: for a progressive JPEG that `draft` set to 1/8 scale, the decoded image (with
    the original's `info`: EXIF, ICC); None when this path does not apply or the decoder declines."""
    if not available() or image.format not in ("JPEG", "MPO") or not image.info.get("progressive"):
        return None
    if getattr(image, "decoderconfig", ())[:1] != (SCALE,):
        return None
    try:
        result = decode(data, image.size, image.mode)
    except Declined:
        return None
    result.info = dict(image.info)
    return result
