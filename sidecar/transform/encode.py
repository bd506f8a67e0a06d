"""Encoding: the output format and quality, the encoder's settings, and when the original's own bytes
(less metadata) are the rendition: nothing needs changing, or the encoded result came out bigger."""
from __future__ import annotations

import io

from sidecar.transform import filters, passthrough
from sidecar.transform.work import Settings, Source, Work, decoding

#: The output format an original already is, for passing it through.
_SAME_FORMAT = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
#: Sources whose `legacy` auto variant is PNG even without transparency (drawings, screenshots, icons).
_LOSSLESS_SOURCES = ("PNG", "GIF", "BMP", "ICO", "CUR", "SVG")
_AVIF_SPEED = 8  # libaom speed: 6 (its default) costs three times the time for 4% fewer bytes
#: JPEG: baseline with optimised Huffman tables. Measured on the four photos at 160-1399 px (q82,
#: docs/benchmarks.md): progressive takes 2.9x its time for 3% fewer bytes (and is bigger below ~400 px);
#: plain baseline (libvips' default) is 2.3x faster but 1.3% bigger.
_JPEG_OPTIONS = {"progressive": False, "optimize": True}


def untouched(work: Work) -> None:
    """When nothing needs changing, the original's bytes (less metadata) are the rendition: no decode."""
    if not _original_fits(work) or not _quality_allows_original(work):
        return
    data = passthrough.stripped(work.data, work.format)
    if data is not None:
        work.output, work.original, work.done = data, True, True


def encode(work: Work) -> None:
    image, fmt = work.image, work.output_format
    if fmt == "jpeg":
        image = filters.flatten(image, work.settings.background)
    if fmt in ("webp", "avif") and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    options: dict[str, object]
    if fmt == "jpeg":
        options = {"quality": _quality(work), **_JPEG_OPTIONS}
    elif fmt == "webp":
        options = {"quality": _quality(work), "method": 4}
    elif fmt == "avif":
        options = {"quality": _quality(work), "speed": _AVIF_SPEED, "max_threads": 1}
    else:
        options = {"compress_level": 6}
    image.info = {}  # Pillow copies comments, EXIF and ICC from `info` into the output; we copy nothing
    out = io.BytesIO()
    with decoding():
        image.save(out, format=fmt.upper(), **options)
    work.image, work.output = image, out.getvalue()


def never_bigger(work: Work) -> None:
    """If the original fits the request and is smaller than what we encoded, it is the rendition."""
    if not _original_fits(work):
        return
    data = passthrough.stripped(work.data, work.format)
    if data is not None and len(data) < len(work.output):
        work.output, work.original = data, True


def output_format(fmt: str, variant: str | None, source: Source, *, opaque: bool = False) -> str:
    """The format to encode: the URL's, or for `auto` the variant's; `legacy` is PNG for sources with
    transparency (unless `opaque`: the URL flattens it on a background) or from lossless formats, JPEG
    for the rest."""
    if fmt != "auto":
        return fmt
    if variant in ("avif", "webp"):
        return variant
    return "png" if (source.alpha and not opaque) or source.format in _LOSSLESS_SOURCES else "jpeg"


def _original_fits(work: Work) -> bool:
    """The original already is the requested rendition, but for its metadata."""
    return (work.derived_from is None and _SAME_FORMAT.get(work.format) == work.output_format
            and work.plan.is_identity and work.orientation == 1 and work.frames == 1
            and not work.ops.restyles and work.image.mode != "CMYK")


def _quality_allows_original(work: Work) -> bool:
    """Without a decode we cannot lower quality: pass only if the original is not above the target."""
    if work.output_format == "png":
        return True
    if work.output_format == "jpeg" and work.source_quality is not None:
        return work.source_quality <= _quality(work)
    return work.ops.quality is None  # WebP: its quality cannot be read, so only when none was asked


def _quality(work: Work) -> int:
    return quality_for(work.ops.quality, work.output_format, work.settings, work.source.quality)


def quality_for(wanted: int | str | None, fmt: str, settings: Settings, source: int | None) -> int:
    """The URL's quality; `keep` is the source JPEG's; the default never exceeds it for JPEG -> JPEG."""
    default = settings.avif_quality if fmt == "avif" else settings.quality
    if isinstance(wanted, int):
        return wanted
    if wanted == "keep" and fmt != "avif":  # AVIF's scale is not JPEG's: keep means its default there
        return source or default
    if fmt == "jpeg" and source is not None:
        return min(default, source)
    return default
