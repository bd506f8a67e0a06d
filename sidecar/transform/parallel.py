"""Two cores for one rendition, when nothing else wants them.

Pillow releases the GIL while it resamples and filters, so a big rendition's resize and colour table
can run as two horizontal bands at once: the caller's thread does the top band, one helper
thread the bottom. That only pays when a core is idle: under load every core already has a transform of
its own, and splitting would just add the bands' overhead. So `spare_core()` asks the kernel how many
threads are runnable right now (/proc/loadavg's fourth field, this one included) and bands only when
fewer than the cores are; and only images of at least `MIN_PIXELS`, below which a band's start costs
more than it saves. Banding costs CPU (the resize about a third more: each band pre-reduces and reads its
share of the rows, and the bands are copied together; the table a half more: crops and pastes), which is
why it waits for a spare core; the 3x3 sharpening costs less than its banding and is never banded.
Results are the same pixels as unbanded ones (filters, with their overlap) or within
rounding (the resize: each band's integer pre-reduction starts on its own row).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from PIL import Image

Box = tuple[float, float, float, float]
T = TypeVar("T")
U = TypeVar("U")
#: Output pixels below which one band is the whole job.
MIN_PIXELS = 500_000
#: Pillow's `reducing_gap`: an integer `reduce()` first while it leaves at least 3x to resample.
REDUCING_GAP = 3.0
#: A decode resized as it goes (`resize_while`): at most this many bands, of at least this many rows.
MAX_STREAM_BANDS = 6
MIN_BAND_ROWS = 64
#: Rows decoded per call at least (each call is a trip into C).
STREAM_CHUNK = 64
_CORES = os.cpu_count() or 1
_HELPER = ThreadPoolExecutor(1, thread_name_prefix="band")


def spare_core() -> bool:
    """Whether a core is idle now: fewer runnable threads on the machine (this one included) than cores."""
    if _CORES < 2:
        return False
    try:
        with open("/proc/loadavg", "rb") as file:
            running = int(file.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return running < _CORES


def resize(image: Image.Image, size: tuple[int, int], box: Box, *, bands: bool | None = None) -> Image.Image:
    """`image.resize(size, LANCZOS, box=box, reducing_gap=REDUCING_GAP)`, in two bands when a core is spare (`bands`
    None), or always (True) or never (False)."""
    width, height = size
    if height < 2 or not _banding(bands, width * height):
        return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
    left, top, right, bottom = box
    split = height // 2
    middle = top + (bottom - top) * split / height

    def band(rows: int, band_top: float, band_bottom: float) -> Image.Image:
        return image.resize((width, rows), Image.Resampling.LANCZOS, box=(left, band_top, right, band_bottom),
                            reducing_gap=REDUCING_GAP)

    lower = _HELPER.submit(band, height - split, middle, bottom)
    upper = band(split, top, middle)
    return _stacked(upper, lower.result())


def resize_while(image: Image.Image, size: tuple[int, int], box: Box, fill: Callable[[int], int]) -> Image.Image:
    """`resize(image, size, box, bands=False)` of an image still being decoded: `fill(n)` decodes up to `n`
    more rows and returns how many are complete. The caller's thread decodes; as soon as the rows one
    band of the output needs are there, the helper thread resizes that band."""
    width, height = size
    left, top, right, bottom = box
    per_row = (bottom - top) / height  # source rows per output row
    # LANCZOS reaches 3 output rows' worth of source rows; the pre-reduction aligns its box to the factor.
    reach = 3 * per_row + 2 * max(1, int(per_row / REDUCING_GAP)) + 4
    count = max(1, min(MAX_STREAM_BANDS, height // MIN_BAND_ROWS))
    edges = [height * index // count for index in range(count + 1)]
    done, limit, futures = 0, image.height, []
    try:
        for start, end in zip(edges, edges[1:]):
            band_box = (left, top + start * per_row, right, top + end * per_row)
            needed = min(limit, int(band_box[3] + reach) + 1)
            while done < needed:
                done = fill(max(needed - done, STREAM_CHUNK))
            futures.append(_HELPER.submit(image.resize, (width, end - start), Image.Resampling.LANCZOS,
                                          band_box, REDUCING_GAP))
        while done < limit:  # the rows below the box: libjpeg must still see the file through
            done = fill(limit - done)
        bands = [future.result() for future in futures]
    finally:
        for future in futures:
            future.cancel()
    whole = Image.new(bands[0].mode, size)
    row = 0
    for band in bands:
        whole.paste(band, (0, row))
        row += band.height
    return whole


def filtered(image: Image.Image, apply: Callable[[Image.Image], Image.Image], overlap: int = 0, *,
             bands: bool | None = None) -> Image.Image:
    """`apply(image)` for a pointwise operation (`overlap` 0) or a filter reaching `overlap` pixels, in two
    bands when a core is spare (`bands` as for `resize`). `apply` must keep the size."""
    width, height = image.size
    if height < 2 * (overlap + 1) or not _banding(bands, width * height):
        return apply(image)
    split = height // 2
    lower = _HELPER.submit(lambda: apply(image.crop((0, split - overlap, width, height))))
    upper = apply(image.crop((0, 0, width, split + overlap)))
    bottom = lower.result().crop((0, overlap, width, height - split + overlap))
    return _stacked(upper.crop((0, 0, width, split)), bottom)


def both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """`first()` in the caller's thread while the helper runs `second()`; both results. The helper's work
    is always over when this returns or raises (it may be using what the caller is about to free)."""
    future = _HELPER.submit(second)
    try:
        one = first()
    finally:
        wait([future])
    return one, future.result()


def _banding(bands: bool | None, pixels: int) -> bool:
    if bands is not None:
        return bands
    return pixels >= MIN_PIXELS and spare_core()


def _stacked(upper: Image.Image, lower: Image.Image) -> Image.Image:
    whole = Image.new(upper.mode, (upper.width, upper.height + lower.height))
    whole.paste(upper, (0, 0))
    whole.paste(lower, (0, upper.height))
    return whole
