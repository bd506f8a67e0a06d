"""Encoding: the output format and quality, the encoder's settings, and when the original's own bytes
(less metadata) are the rendition: nothing needs changing, or the encoded result came out bigger."""
from __future__ import annotations

import itertools

from PIL import Image

from sidecar.transform import animation, animencode, autoquality, encoders, passthrough
from sidecar.transform.work import Settings, Source, Work, decoding
from sidecar.url.grammar import Ops

#: The output format an original already is, for passing it through.
_SAME_FORMAT = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
#: A budget-bound rendition is shrunk at most this many times (each by the square root of how far off it is).
_SHRINKS = 3
_SMALLEST_SIDE = 16
#: Sources whose `legacy` auto variant is PNG even without transparency (drawings, screenshots, icons).
_LOSSLESS_SOURCES = ("PNG", "GIF", "BMP", "ICO", "CUR", "SVG")


def untouched(work: Work) -> None:
    """When nothing needs changing, the original's bytes (less metadata) are the rendition: no decode."""
    if not _original_fits(work) or not _quality_allows_original(work) or searches_quality(work.ops, work.settings):
        return
    data = passthrough.stripped(work.data, work.format, animated=work.animated)
    if data is not None and (work.ops.max_bytes is None or len(data) <= work.ops.max_bytes):
        work.output, work.original, work.done = data, True, True


def encode(work: Work) -> None:
    """Encode at the URL's or the default quality; `qauto` searches for the lowest quality that keeps
    the perceptual target, `mb{bytes}` for the highest that fits the budget (after the former)."""
    fmt = work.output_format
    if work.animated:  # every frame, one at a time as the encoder asks (see `animation`)
        frames = itertools.chain([(work.image, work.frame_duration)], work.later_frames)
        with decoding():
            work.output = animencode.encode(frames, fmt, _quality(work), work.loop)
        return
    image = encoders.prepare(work.image, fmt, work.settings.background)
    quality = _quality(work)
    if fmt in encoders.AUTO_SEARCH and searches_quality(work.ops, work.settings):
        search = encoders.AUTO_SEARCH[fmt]
        quality = autoquality.lowest_quality(
            image, lambda sample, q: encoders.probe(sample, fmt, q), work.settings.quality_target,
            auto_ceiling(fmt, work.source.quality), floor=search.floor, probes=search.probes, tiles=search.tiles)
    if work.ops.max_bytes is None:
        work.image, work.output = image, encoders.save(image, fmt, quality)
        return
    work.image, fitted = _within(image, fmt, quality, work.ops.max_bytes, work.settings.max_bytes_resize)
    work.output, work.fits = fitted.data, fitted.fits


def _within(image: Image.Image, fmt: str, quality: int, budget: int,
            resize: bool) -> tuple[Image.Image, autoquality.Fitted]:
    """The best quality under the budget; then, if the operator allows, smaller dimensions. PNG and GIF
    have no quality to lower: only their dimensions."""
    def fit(candidate: Image.Image) -> autoquality.Fitted:
        if fmt not in encoders.AUTO_SEARCH:  # PNG, GIF
            data = encoders.save(candidate, fmt, 0)
            return autoquality.Fitted(data, 0, len(data) <= budget)
        return autoquality.fitting_quality(candidate, lambda img, q: encoders.save(img, fmt, q), budget, quality)

    fitted = fit(image)
    for _ in range(_SHRINKS if resize else 0):
        scale = 0.9 * (budget / len(fitted.data)) ** 0.5
        size = (round(image.width * scale), round(image.height * scale))
        if fitted.fits or min(size) < _SMALLEST_SIDE:
            break
        image = image.resize(size, Image.Resampling.LANCZOS)
        fitted = fit(image)
    return image, fitted


def searches_quality(ops: Ops, settings: Settings) -> bool:
    """Whether the rendition's quality is searched for (the URL's `qauto`, or the config's `quality = "auto"`
    when the URL names none): such a rendition's quality is unknown, so it is no source for a smaller one."""
    return ops.quality == "auto" or (ops.quality is None and settings.auto_quality)


def auto_ceiling(fmt: str, source_quality: int | None) -> int:
    """The top of the automatic quality's search: never above the source's own JPEG quality."""
    top = encoders.AUTO_SEARCH[fmt].top
    return min(top, source_quality) if fmt == "jpeg" and source_quality is not None else top


def never_bigger(work: Work) -> None:
    """If the original fits the request and is smaller than what we encoded, it is the rendition."""
    if not _original_fits(work):
        return
    data = passthrough.stripped(work.data, work.format, animated=work.animated)
    if data is not None and len(data) < len(work.output):
        work.output, work.original = data, True


def output_format(fmt: str, variant: str | None, source: Source, *, opaque: bool = False,
                  frame: int | None = None) -> str:
    """The format to encode: the URL's, or for `auto` the variant's; `legacy` is PNG for sources with
    transparency (unless `opaque`: the URL flattens it on a background) or from lossless formats, JPEG
    for the rest. An animation (no `frame` asked) is WebP for the avif and webp variants (animated AVIF
    costs ten times the time: docs/benchmarks.md), GIF for legacy."""
    if fmt != "auto":
        return fmt
    if animation.animated_auto(source.frames, frame):
        return "webp" if variant in ("jxl", "avif", "webp") else "gif"
    if variant in ("jxl", "avif", "webp"):
        return variant
    return "png" if (source.alpha and not opaque) or source.format in _LOSSLESS_SOURCES else "jpeg"


def _original_fits(work: Work) -> bool:
    """The original already is the requested rendition, but for its metadata."""
    return (work.derived_from is None and _SAME_FORMAT.get(work.format) == work.output_format
            and work.plan.keeps(*work.frame_size) and work.orientation == 1
            and (work.source.frames == 1 or work.animated) and not work.ops.restyles and work.image.mode != "CMYK")


def _quality_allows_original(work: Work) -> bool:
    """Without a decode we cannot lower quality: pass only if the original is not above the target."""
    if work.output_format in ("png", "gif"):
        return True
    if work.output_format == "jpeg" and work.source_quality is not None:
        return work.source_quality <= _quality(work)
    return work.ops.quality is None  # WebP: its quality cannot be read, so only when none was asked


def _quality(work: Work) -> int:
    return quality_for(work.ops.quality, work.output_format, work.settings, work.source.quality)


def quality_for(wanted: int | str | None, fmt: str, settings: Settings, source: int | None) -> int:
    """The URL's quality; `keep` is the source JPEG's; the default never exceeds it for JPEG -> JPEG;
    `auto`, the top of its search."""
    default = settings.avif_quality if fmt == "avif" else settings.quality
    if isinstance(wanted, int):
        return wanted
    if wanted == "auto" or (wanted is None and settings.auto_quality):
        return auto_ceiling(fmt, source)  # the most the search may choose
    if wanted == "keep" and fmt != "avif":  # AVIF's scale is not JPEG's: keep means its default there
        return source or default
    if fmt == "jpeg" and source is not None:
        return min(default, source)
    return default
