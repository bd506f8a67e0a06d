"""Big JPEGs decoded on both cores, and resized while they decode: libjpeg-turbo row by row
(`jpegrows.c`, built with cffi as `_jpegrows`).

A 12 MP photo takes about as long to decode as everything after it (resize, turn, sharpen, colour,
encode) takes together, and Pillow decodes the whole image on one thread before anything else may
start. When a core is idle, this does one of two things:

- Camera JPEGs carry restart markers (the decoder's state starts afresh at each). `Rows.split` cuts
  the file at the marker that begins a row near the middle, and two threads decode a half each, then
  resize a half each (libvips decodes on one thread). The pixels are those of a whole decode: the
  upper thread also makes the first row below the cut, whose chroma needs the row above.
- Without markers, the caller decodes and `parallel.resize_while` resizes finished bands on the second
  core meanwhile, so what remains after the last row is one band's resize.

libjpeg writes straight into the 4-byte pixels Pillow keeps (RGBX), which also saves Pillow's copy of
every row. The pixels are Pillow's own: libjpeg's defaults (accurate IDCT, smooth chroma upsampling),
at the scale `draft` chose.

Only three-component 8-bit JPEGs (YCbCr or RGB) at 1/1, 1/2, 1/4 or 1/8 come this way, and only
baseline single-scan ones are cut. Anything else, and any file libjpeg warns about (corrupt data, a
premature end), is declined, and the caller decodes the usual way, so a broken file gets the answer
it always got; so does every JPEG when the module is not built.
"""
from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from sidecar.transform import parallel

try:
    from sidecar.transform._jpegrows import ffi, lib
except ImportError:  # not built (a source checkout without a compiler): Pillow decodes every JPEG
    ffi = lib = None
_UNCLEARED: Any = ffi.new_allocator(should_clear_after_alloc=False) if ffi is not None else None

#: The original's pixels from which two threads decode (when a core is idle): below, starting the second
#: costs more than it saves.
MIN_OVERLAP_PIXELS = 1_000_000
#: One decode's pixel memory, up to this size (a 16 MP decode), is kept for the next one: writing into
#: pages the process already has saves the kernel mapping and zeroing fresh ones, 15 of the 40 ms a
#: 12 MP photo took to decode on two threads. Kept between requests, it adds this much to a worker's size.
KEEP_BYTES = 64 * 1024 * 1024
_KEPT: list[Any] = []
_KEPT_LOCK = threading.Lock()
#: Where a cut in two may fall (fractions of the height): further off, one half would wait for the other.
SPLIT_RANGE = (0.35, 0.65)
_SCALES = (1, 2, 4, 8)


class Declined(Exception):
    """This file is not for this decoder (or libjpeg complained): decode it the usual way."""


class Rows:
    """An open decode: `image` (RGBX) is the whole picture, filled from the top by `read` (and, after
    `split`, from the cut down by `read_lower`, on another thread)."""

    def __init__(self, data: bytes, denominator: int) -> None:
        if lib is None:
            raise Declined("the compiled module is not installed")
        if denominator not in _SCALES:
            raise Declined(f"scale 1/{denominator}")
        self._data, self._denominator = data, denominator  # libjpeg reads `data` until close
        self._handle, self.size = _opened(lib.jpegrows_open, data, denominator)
        self._lower: _Part | None = None
        self._out = _pixels(self.size[0] * self.size[1] * 4)
        #: The rows `read` decodes: all of them, or those above the cut.
        self.limit = self.size[1]
        # Shares the buffer: rows appear in it as they are decoded.
        self.image = Image.frombuffer("RGBX", self.size, ffi.buffer(self._out, self.size[0] * self.size[1] * 4),
                                      "raw", "RGBX", 0, 1)

    def read(self, rows: int) -> int:
        """Decode up to `rows` more rows from the top; return how many are complete (at most `limit`).
        Raise Declined on libjpeg's complaint."""
        return _read(self._handle, self._out, min(rows, self.limit - self._done()))

    def split(self) -> bool:
        """Cut the file at a restart marker near the middle, so that two threads can decode it: `read`
        stops at the cut and `read_lower` decodes the rest. False when no marker begins a row there."""
        mcu_rows, mcu_height, every = ffi.new("int *"), ffi.new("int *"), ffi.new("int *")
        lib.jpegrows_layout(ffi.from_buffer(self._data), len(self._data), mcu_rows, mcu_height, every)
        if every[0] == 0:
            return False
        cut = round(mcu_rows[0] / 2 / every[0]) * every[0]
        if not SPLIT_RANGE[0] <= cut / mcu_rows[0] <= SPLIT_RANGE[1]:
            return False
        try:
            handle, size = _opened(lib.jpegrows_open_from, self._data, self._denominator, cut)
        except Declined:
            return False
        top = cut * mcu_height[0] // self._denominator
        if size != (self.size[0], self.size[1] - top) or size[1] < 2:
            lib.jpegrows_close(handle)
            return False
        # The upper decoder also makes the first row below the cut: it has the chroma row above it,
        # which the lower one lacks. The lower one's first row goes to a scratch row.
        self._lower, self.limit = _Part(handle, self._out + top * self.size[0] * 4, size[1]), top + 1
        return True

    def read_lower(self) -> None:
        """Decode every row below the cut but its first (after `split`)."""
        assert self._lower is not None
        _read(self._lower.handle, ffi.new("uint8_t[]", self.size[0] * 4), 1)
        _read(self._lower.handle, self._lower.out, self._lower.rows)

    def close(self) -> None:
        """Free libjpeg's state, and hand the pixels' memory to the next decode: `image` is over."""
        for handle in (self._handle, self._lower.handle if self._lower else None):
            if handle is not None:
                lib.jpegrows_close(handle)
        self._handle = self._lower = None
        if self._out is not None:
            _keep(self._out)
            self._out = None

    def _done(self) -> int:
        return int(lib.jpegrows_rows(self._handle))


class _Part:
    def __init__(self, handle: object, out: object, rows: int) -> None:
        self.handle, self.out, self.rows = handle, out, rows


def _pixels(size: int) -> Any:
    """Memory for `size` bytes of pixels: the buffer kept from an earlier decode if it is large enough,
    else new memory, not zeroed (libjpeg writes every byte; zeroing 48 MB took 30 ms on one thread)."""
    with _KEPT_LOCK:
        if _KEPT and ffi.sizeof(_KEPT[0]) >= size:
            return _KEPT.pop()
    return _UNCLEARED("uint8_t[]", size)


def _keep(buffer: Any) -> None:
    """Keep the larger of `buffer` and the one kept (up to KEEP_BYTES) for the next decode."""
    if ffi.sizeof(buffer) > KEEP_BYTES:
        return
    with _KEPT_LOCK:
        if not _KEPT or ffi.sizeof(_KEPT[0]) < ffi.sizeof(buffer):
            _KEPT[:] = [buffer]


def _opened(opener: object, data: bytes, denominator: int, *first_row: int) -> tuple[object, tuple[int, int]]:
    width, height, status = ffi.new("int *"), ffi.new("int *"), ffi.new("int *")
    handle = opener(ffi.from_buffer(data), len(data), denominator, *first_row, width, height, status)  # type: ignore[operator]
    if handle == ffi.NULL:
        raise Declined(f"status {status[0]}")
    return handle, (width[0], height[0])


def _read(handle: object, out: object, rows: int) -> int:
    done = lib.jpegrows_read(handle, out, rows)
    if done < 0:
        raise Declined(f"libjpeg: status {lib.jpegrows_status(handle)}")
    return int(done)


def available() -> bool:
    return lib is not None


def resized(image: Image.Image, data: bytes, size: tuple[int, int], box: parallel.Box, *,
            overlap: bool | None = None) -> Image.Image | None:
    """`image` (a JPEG that `draft` may have reduced, not loaded) decoded and its `box` resized to `size`,
    in RGB; None when this decoder declines it (then nothing is lost but the attempt). Both cores work
    on it when `overlap` is True, or (None) when the image is big and a core is idle."""
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
        if overlap is None:  # the entropy decoding, most of the cost, reads the whole file at any scale
            overlap = rows.size[0] * rows.size[1] * scale[0] ** 2 >= MIN_OVERLAP_PIXELS and parallel.spare_core()
        if not overlap:
            rows.read(rows.size[1])
            result = parallel.resize(rows.image, size, box, bands=False)
        elif rows.split():  # two threads decode a half each, then resize (in halves if big)
            parallel.both(lambda: rows.read(rows.limit), rows.read_lower)
            result = parallel.resize(rows.image, size, box)
        else:  # one decodes, the other resizes what is decoded
            result = parallel.resize_while(rows.image, size, box, rows.read)
    except Declined:
        return None
    finally:
        rows.close()
    return result.convert("RGB")
