"""The encoders: an image and a quality -> bytes, one function per output format, with the settings
chosen by measurement (docs/benchmarks.md, `make bench-bytes`)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import pillow_jxl  # noqa: F401  (registers the JPEG XL encoder, libjxl in the wheel, beside pillow-simd)
from PIL import Image

from sidecar.transform import filters
from sidecar.transform.work import decoding

#: JPEG: baseline with optimised Huffman tables. Measured on the four photos at 160-1399 px (q82,
#: docs/benchmarks.md): progressive takes 2.9x its time for 3% fewer bytes (and is bigger below ~400 px);
#: plain baseline (libvips' default) is 2.3x faster but 1.3% bigger.
JPEG_OPTIONS = {"progressive": False, "optimize": True}
#: libaom speed: 6 (its default) costs three times the time for 4% fewer bytes.
AVIF_SPEED = 8
#: libwebp method: 6 saves 1-3% over 4 for about twice the time (bench-bytes); 4 is the balance.
WEBP_METHOD = 4
PNG_COMPRESS_LEVEL = 6
#: libjxl effort (1-9, its default 7).
JXL_EFFORT = 7


@dataclass(frozen=True)
class Search:
    """How the automatic quality searches a format: its quality range (AVIF's scale is not JPEG's and
    WebP's; the top is never above the source's own JPEG quality for JPEG -> JPEG), the encodes it may
    spend and the tiles per side of its sample. WebP encodes about 50 times slower than JPEG and AVIF
    150 times (bench-bytes): they search a smaller sample, in fewer steps."""

    floor: int
    top: int
    probes: int
    tiles: int


AUTO_SEARCH = {"jpeg": Search(30, 90, 5, 4), "webp": Search(30, 90, 4, 2), "avif": Search(20, 80, 3, 2),
               "jxl": Search(30, 90, 3, 2)}


def prepare(image: Image.Image, fmt: str, background: tuple[int, int, int]) -> Image.Image:
    """The image in a mode the format takes: JPEG flattened on the background, WebP and AVIF in RGB(A)."""
    if fmt == "jpeg":
        image = filters.flatten(image, background)
    if fmt in ("webp", "avif", "jxl") and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    image.info = {}  # Pillow copies comments, EXIF and ICC from `info` into the output; we copy nothing
    return image


def save(image: Image.Image, fmt: str, quality: int) -> bytes:
    """The rendition's bytes (`quality` is ignored for PNG)."""
    return _save(image, fmt, quality, final=True)


def probe(image: Image.Image, fmt: str, quality: int) -> bytes:
    """Bytes for the quality search: the same pixels as `save` makes, as cheaply as possible (a JPEG
    without optimised Huffman tables quantizes exactly like one with them)."""
    return _save(image, fmt, quality, final=False)


def _save(image: Image.Image, fmt: str, quality: int, *, final: bool) -> bytes:
    options: dict[str, object]
    if fmt == "jpeg":
        options = {"quality": quality, **(JPEG_OPTIONS if final else {})}
    elif fmt == "webp":
        options = {"quality": quality, "method": WEBP_METHOD}
    elif fmt == "avif":
        options = {"quality": quality, "speed": AVIF_SPEED, "max_threads": 1}
    elif fmt == "jxl":
        options = {"quality": quality, "effort": JXL_EFFORT}
    else:
        options = {"compress_level": PNG_COMPRESS_LEVEL}
    out = io.BytesIO()
    with decoding():
        image.save(out, format=fmt.upper(), **options)
    return out.getvalue()
