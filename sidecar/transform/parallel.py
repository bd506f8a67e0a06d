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
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

Box = tuple[float, float, float, float]
#: Output pixels below which one band is the whole job.
MIN_PIXELS = 500_000
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
    """`image.resize(size, LANCZOS, box=box, reducing_gap=3.0)`, in two bands when a core is spare (`bands`
    None), or always (True) or never (False)."""
    width, height = size
    if height < 2 or not _banding(bands, width * height):
        return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    left, top, right, bottom = box
    split = height // 2
    middle = top + (bottom - top) * split / height

    def band(rows: int, band_top: float, band_bottom: float) -> Image.Image:
        return image.resize((width, rows), Image.Resampling.LANCZOS, box=(left, band_top, right, band_bottom),
                            reducing_gap=3.0)

    lower = _HELPER.submit(band, height - split, middle, bottom)
    upper = band(split, top, middle)
    return _stacked(upper, lower.result())


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


def _banding(bands: bool | None, pixels: int) -> bool:
    if bands is not None:
        return bands
    return pixels >= MIN_PIXELS and spare_core()


def _stacked(upper: Image.Image, lower: Image.Image) -> Image.Image:
    whole = Image.new(upper.mode, (upper.width, upper.height + lower.height))
    whole.paste(upper, (0, 0))
    whole.paste(lower, (0, upper.height))
    return whole
