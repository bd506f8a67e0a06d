"""Memory: what one worker may hold (for `memory_budget`), giving it back to the OS, and measuring it.

A transform's peak is dominated by pixels: while decoding, the decoded image, one converted copy (CMYK or
palette to RGB) and the resized result (`BYTES_PER_PIXEL` per source pixel); while encoding, the rendition
and the encoder's own buffers (`OUTPUT_BYTES_PER_PIXEL` per output pixel: AVIF's, the largest, measured
21-34; WebP 10-13, JPEG 7, PNG 4-5; bench/output_memory.py), on top of the source's pixels still held by the
resize (4 a pixel). Plus the original's bytes. The budget is checked with the worst case the limits
allow (an original at `max_pixels` and `max_source_bytes`, a rendition at `max_output_pixels`, a `pad`
canvas included), so the number of workers times `threads` is what bounds peak RSS, whatever the traffic. Misses
waiting in the queue hold
nothing but their connection.

glibc keeps freed heap memory for reuse; after a large image it may hold hundreds of megabytes that no
one needs until the next large image. `release()` hands them back with `malloc_trim(0)` (as imgproxy
does periodically), called through cffi in ABI mode, so nothing is compiled.
"""
from __future__ import annotations

import os
from functools import cache
from typing import Any

BYTES_PER_PIXEL = 14  # measured peak 6-14 per decoded pixel (docs/operations.md): decoded, converted and resized copies
OUTPUT_BYTES_PER_PIXEL = 36  # measured AVIF peak 21-34 per output pixel (pad and force-up of a small GIF)
HELD_BYTES_PER_PIXEL = 4  # the decoded source while the resize makes the rendition
WORKER_BASE_BYTES = 80 * 1024 * 1024  # an idle worker: interpreter, Pillow, uvloop (measured about 45 MB)


def transform_bytes(max_pixels: int, max_source_bytes: int, max_output_pixels: int = 0) -> int:
    """The most one transform may hold: the original's bytes plus the larger of its decoding (the source's
    pixels) and its encoding (the rendition's pixels, with the source's still held)."""
    decoding = max_pixels * BYTES_PER_PIXEL
    encoding = max_pixels * HELD_BYTES_PER_PIXEL + max_output_pixels * OUTPUT_BYTES_PER_PIXEL
    return max_source_bytes + max(decoding, encoding)


def worker_bytes(threads: int, max_pixels: int, max_source_bytes: int, max_output_pixels: int = 0) -> int:
    """A worker works on two misses per transform thread (one fetching while one transforms): two
    originals, one transform."""
    return WORKER_BASE_BYTES + threads * (max_source_bytes + transform_bytes(max_pixels, max_source_bytes,
                                                                             max_output_pixels))


@cache
def _libc() -> Any:
    from cffi import FFI

    ffi = FFI()
    ffi.cdef("int malloc_trim(size_t pad);")
    return ffi.dlopen(None)  # the C library the interpreter is already linked with


def release() -> bool:
    """Return freed heap memory to the OS (glibc only); True if any was released."""
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return False


def rss_bytes(pid: int | str = "self") -> int:  # for the benchmarks and tests
    """Resident set size of one process, from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0
