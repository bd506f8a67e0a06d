"""The transform: bytes of an original + operations -> bytes of the rendition.

One explicit ordered list of steps (`STEPS`), each a function of the `Work` in progress:

    read -> check_limits -> untouched -> draft -> decode -> orient -> turn -> normalise -> geometry
         -> blur -> sharpen -> convert_colour -> background -> add_watermark -> encode -> never_bigger

`untouched` ends the work early when the original already is the rendition (its bytes minus metadata,
no pixel decoded); `never_bigger` swaps the encoded result for the original when that is smaller and
fits. Colour is converted after the resize, on the fewest pixels, and before padding, so the padding's
colour is sRGB as written. Everything here is CPU work and
blocking: the server runs `transform` in its worker pool, never on the event loop.
"""
from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from sidecar.transform import colour, filters, smart, watermark
from sidecar.transform.decode import check_limits, decode, draft, orient, read
from sidecar.transform.encode import (
    encode,
    never_bigger,
    output_format,
    quality_for,
    searches_quality,
    untouched,
)
from sidecar.transform.geometry import COMPASS_FRACTIONS, Plan, plan
from sidecar.transform.work import Rendered, Settings, Source, Work
from sidecar.url.grammar import Ops, hex_rgb

__all__ = ["STEPS", "Rendered", "Settings", "Source", "Work", "output_format", "quality_for", "searches_quality",
           "transform"]

#: Automatic sharpening follows downscales to this fraction of the source's pixels per side, or less.
AUTO_SHARPEN_SCALE = 0.5


def transform(data: bytes, ops: Ops, settings: Settings, *, variant: str | None = None,
              derived_from: Source | None = None) -> Rendered:
    """Run every step; raise a SidecarError (never anything else) for bad input.

    `variant` (avif, webp, legacy) picks the format of `auto` renditions. `derived_from` says that
    `data` is a larger rendition of the original it describes, not the original itself.
    """
    work = Work(data, ops, settings, variant, derived_from)
    for step in STEPS:
        step(work)
        if work.done:
            break
    size = work.displayed_size if work.original else work.image.size
    return Rendered(work.output, work.output_format, size, work.source, work.original, work.fits)


def turn(work: Work) -> None:
    """The URL's rotation (clockwise) and flip, after EXIF orientation and before the geometry."""
    work.image = filters.turn(work.image, work.ops.rotate, work.ops.flip)


def normalise(work: Work) -> None:
    """Bring every mode to L, LA, RGB, RGBA or CMYK, so that resizing interpolates (alpha premultiplied)."""
    work.image = colour.resizable(work.image)


def geometry(work: Work) -> None:
    """Crop and resize (LANCZOS after an integer `reduce()`), on whatever size the decode produced."""
    width, height = work.image.size
    shown_w, shown_h = work.frame_size
    if work.ops.gravity == "sm":
        left, top, right, bottom = work.plan.box
        crop = ((right - left) / shown_w, (bottom - top) / shown_h)
        work.plan = plan(shown_w, shown_h, work.ops, max_side=work.settings.max_side,
                         focus=smart.focus(work.image, crop))
    # A reduced decode (draft, or a smaller rendition in the cascade) shrinks the source: scale the box.
    planned = work.plan.scaled(width / shown_w, height / shown_h)
    if planned.is_identity:
        return
    work.image = work.image.resize(planned.size, Image.Resampling.LANCZOS, box=planned.box, reducing_gap=3.0)


def blur(work: Work) -> None:
    if work.ops.blur is not None:
        work.image = filters.blur(work.image, work.ops.blur)


def sharpen(work: Work) -> None:
    """The URL's unsharp mask; without one, a mild one after a strong downscale (unless switched off)."""
    if work.ops.sharpen:
        work.image = filters.sharpen(work.image, work.ops.sharpen)
    elif auto_sharpens(work.plan, work.ops, work.settings):
        work.image = filters.sharpen(work.image, *filters.AUTO_SHARPEN)


def convert_colour(work: Work) -> None:
    """Convert to sRGB by the embedded ICC profile (CMYK: its own or the default CMYK profile)."""
    work.image = colour.to_srgb(work.image, work.icc, work.settings.cmyk_profile)


def background(work: Work) -> None:
    """`pad`: place the image on its canvas, filled with the URL's background (else transparent if the
    image has alpha, else the configured background). Then, with a URL background, flatten on it."""
    canvas, ops = work.plan.canvas, work.ops
    if canvas is not None:
        fill = hex_rgb(ops.background) if ops.background else (
            None if "A" in work.image.mode else work.settings.background)
        work.image = filters.pad(work.image, canvas, COMPASS_FRACTIONS[ops.gravity], fill)
    if ops.background is not None:
        work.image = filters.flatten(work.image, hex_rgb(ops.background))


def add_watermark(work: Work) -> None:
    if work.ops.watermark is not None:
        mark = work.settings.watermarks[work.ops.watermark]
        work.image = watermark.apply(work.image, mark, work.settings.cmyk_profile)


def auto_sharpens(planned: Plan, ops: Ops, settings: Settings) -> bool:
    """Whether the automatic sharpening applies: on, not overridden by the URL, and a strong downscale."""
    return settings.auto_sharpen and ops.sharpen is None and planned.scale <= AUTO_SHARPEN_SCALE


STEPS: tuple[Callable[[Work], None], ...] = (
    read, check_limits, untouched, draft, decode, orient, turn, normalise, geometry, blur, sharpen,
    convert_colour, background, add_watermark, encode, never_bigger,
)
