"""Big JPEGs resized while they decode: libjpeg-turbo row by row (`jpegrows.c`, built with cffi as
`_jpegrows`), each band of rows resized on the helper thread as soon as it is complete.

A 12 MP photo takes about as long to decode as everything after it (resize, turn, sharpen, colour,
encode) takes together; Pillow decodes the whole image before anything else may start. Here the caller
decodes and `parallel.resize_while` resizes finished bands on the second core meanwhile, so what
remains after the last row is one band's resize. libjpeg writes straight into the 4-byte pixels Pillow
keeps (RGBX), which also saves Pillow's copy of every row. The pixels are Pillow's own: libjpeg's
defaults (accurate IDCT, smooth chroma upsampling), at the scale `draft` chose.

Only three-component 8-bit JPEGs (YCbCr or RGB) at 1/1, 1/2, 1/4 or 1/8 come this way. Anything else,
and any file libjpeg warns about (corrupt data, a premature end), is declined, and the caller decodes
the usual way, so a broken file gets the answer it always got; so does every JPEG when the module is
not built.
"""
from __future__ import annotations

from PIL import Image

from sidecar.transform import parallel

try:
    from sidecar.transform._jpegrows import ffi, lib
except ImportError:  # not built (a source checkout without a compiler): Pillow decodes every JPEG
    ffi = lib = None

#: Decoded pixels from which decoding and resizing overlap (when a core is idle): below, the bands'
#: start-up costs more than the overlap saves.
MIN_OVERLAP_PIXELS = 1_000_000
_SCALES = (1, 2, 4, 8)


class Declined(Exception):
    """This file is not for this decoder (or libjpeg complained): decode it the usual way."""


class Rows:
    """An open decode: `image` (RGBX) is the whole picture, filled from the top by `read`."""

    def __init__(self, data: bytes, denominator: int) -> None:
        if lib is None:
            raise Declined("the compiled module is not installed")
        if denominator not in _SCALES:
            raise Declined(f"scale 1/{denominator}")
        self._data = data  # libjpeg reads it until close
        width, height, status = ffi.new("int *"), ffi.new("int *"), ffi.new("int *")
        handle = lib.jpegrows_open(ffi.from_buffer(data), len(data), denominator, width, height, status)
        if handle == ffi.NULL:
            raise Declined(f"status {status[0]}")
        self._handle = handle
        self.size = (width[0], height[0])
        self._buffer = bytearray(self.size[0] * self.size[1] * 4)
        self._out = ffi.from_buffer(self._buffer)
        # Shares the buffer: rows appear in it as `read` decodes them.
        self.image = Image.frombuffer("RGBX", self.size, self._buffer, "raw", "RGBX", 0, 1)  # type: ignore[arg-type]

    def read(self, rows: int) -> int:
        """Decode up to `rows` more rows; return how many are complete. Raise Declined on libjpeg's complaint."""
        done = lib.jpegrows_read(self._handle, self._out, rows)
        if done < 0:
            raise Declined(f"libjpeg: status {lib.jpegrows_status(self._handle)}")
        return done

    def close(self) -> None:
        """Free libjpeg's state (the pixels stay with `image`)."""
        if self._handle is not None:
            lib.jpegrows_close(self._handle)
            self._handle = None


def available() -> bool:
    return lib is not None


def resized(image: Image.Image, data: bytes, size: tuple[int, int], box: parallel.Box) -> Image.Image | None:
    """`image` (a JPEG that `draft` may have reduced, not loaded) decoded and its `box` resized to `size`,
    in RGB; None when this decoder declines it (then nothing is lost but the attempt)."""
    if lib is None or image.mode != "RGB" or getattr(image, "layers", 3) != 3:
        return None
    scale = getattr(image, "decoderconfig", (1,))[:1] or (1,)
    try:
        rows = Rows(data, scale[0])
    except Declined:
        return None
    try:
        if rows.size != image.size:  # not what Pillow made of the header: leave it to Pillow
            return None
        if rows.size[0] * rows.size[1] >= MIN_OVERLAP_PIXELS and parallel.spare_core():
            result = parallel.resize_while(rows.image, size, box, rows.read)
        else:
            rows.read(rows.size[1])
            result = parallel.resize(rows.image, size, box, bands=False)
    except Declined:
        return None
    finally:
        rows.close()
    return result.convert("RGB")
