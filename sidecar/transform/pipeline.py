"""The transform: bytes of an original + operations -> bytes of the rendition.

One explicit ordered list of steps (`STEPS`), each a function of the `Work` in progress:

    read -> check_limits -> untouched -> draft -> decode -> every_frame -> encode -> never_bigger
    every_frame: normalise -> find_faces -> trim_borders -> geometry -> orient -> blur -> sharpen
                 -> convert_colour -> background -> add_watermark  (`FRAME_STEPS`; on each frame of an
                 animation kept whole, with frame 0's faces, trim box and smart crop)

`untouched` ends the work early when the original already is the rendition (its bytes minus metadata,
no pixel decoded); `never_bigger` swaps the encoded result for the original when that is smaller and
fits. Nothing is done to the full-size pixels that can be done to the small ones: the crop is planned in
displayed coordinates and cut from the stored pixels, and the EXIF orientation with the URL's rotation
and flip is one transpose of the resized image (`orientation`); sharpening and colour conversion
follow the resize too. Colour is converted after the resize, on the fewest pixels, and before padding, so the padding's
colour is sRGB as written. Everything here is CPU work and
blocking: the server runs `transform` in its worker pool, never on the event loop.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from PIL import Image

from sidecar.transform import (
    animation,
    colour,
    faces,
    filters,
    jpegrows,
    orientation,
    parallel,
    smart,
    trim,
    watermark,
)
from sidecar.transform.decode import check_limits, decode, draft, read
from sidecar.transform.encode import (
    encode,
    never_bigger,
    output_format,
    quality_for,
    searches_quality,
    untouched,
)
from sidecar.transform.geometry import COMPASS_FRACTIONS, Plan, plan
from sidecar.transform.work import Rendered, Settings, Source, Work, decoding
from sidecar.url.canonical import AWARE_GRAVITIES
from sidecar.url.grammar import Ops, hex_rgb

__all__ = ["STEPS", "Rendered", "Settings", "Source", "Work", "output_format", "quality_for", "searches_quality",
           "transform"]

#: Automatic sharpening follows downscales to this fraction of the source's pixels per side, or less.
AUTO_SHARPEN_SCALE = 0.5


def transform(data: bytes, ops: Ops, settings: Settings, *, variant: str | None = None,
              derived_from: Source | None = None, known_faces: tuple[faces.Face, ...] | None = None
              ) -> Rendered:
    """Run every step; raise a SidecarError (never anything else) for bad input.

    `variant` (avif, webp, legacy) picks the format of `auto` renditions. `derived_from` says that
    `data` is a larger rendition of the original it describes, not the original itself. `known_faces`
    are the original's, found before: face gravity does not look again.
    """
    work = Work(data, ops, settings, variant, derived_from, known_faces)
    for step in STEPS:
        step(work)
        if work.done:
            break
    size = work.displayed_size if work.original else work.image.size
    found = work.faces if ops.gravity == "fc" else None
    return Rendered(work.output, work.output_format, size, work.source, work.original, faces=found,
                    animation=work.animation, fits=work.fits)


def every_frame(work: Work) -> None:
    """The pixel steps (`FRAME_STEPS`), on the decoded image; for an animation kept whole, then on each
    later frame in turn, as `encode` pulls them (one source frame decoded at a time)."""
    source = work.image
    if work.animated:
        work.frame_duration = animation.duration(source.info.get("duration"))
    for step in FRAME_STEPS:
        step(work)
    if work.animated:
        if work.image is source:
            work.image = source.copy()  # seeking to the next frame changes the file's image in place
        work.later_frames = _later_frames(work, source)


def _later_frames(work: Work, source: Image.Image) -> Iterator[tuple[Image.Image, int]]:
    """Frames 1 and on, through the same steps with the same plan (a smart crop stays where frame 0 put it)."""
    for index, (frame, duration) in enumerate(animation.later_frames(source, source.size, work.frames), 1):
        each = copy.copy(work)
        each.image, each.frame_index = frame, index
        for step in FRAME_STEPS:
            step(each)
        yield (each.image.copy() if each.image is source else each.image), duration


def find_faces(work: Work) -> None:
    """Face gravity: the faces of the original as displayed, unless already known (cheap: on a thumbnail
    of the reduced decode, turned upright)."""
    if work.ops.gravity == "fc" and work.faces is None:
        exif = 1 if work.derived_from is not None else work.orientation
        work.faces = faces.detect(work.image, orientation.composite(exif))


def normalise(work: Work) -> None:
    """Bring every mode to L, LA, RGB, RGBA or CMYK, so that resizing interpolates (alpha premultiplied)."""
    work.image = colour.resizable(work.image)


def trim_borders(work: Work) -> None:
    """`trim`: cut the uniform borders off the decoded pixels, and plan the geometry on what is left."""
    if work.ops.trim is None:
        return
    if work.frame_index:  # a later frame of an animation: frame 0's box, so that every frame has one size
        if work.trim_pixels is not None:
            work.image = work.image.crop(work.trim_pixels)
        return
    width, height = work.image.size
    box = trim.box(work.image, work.ops.trim)
    if box == (0, 0, width, height):
        return
    work.trim_pixels = box
    work.image = work.image.crop(box)
    stored = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
    work.trim_box = faces.shown_box(_turn(work), stored)
    work.plan = plan(*work.frame_size, work.ops, max_side=work.settings.max_side)


def geometry(work: Work) -> None:
    """Crop and resize (LANCZOS after an integer `reduce()`) the stored pixels, on whatever size the decode
    produced. The plan is in displayed coordinates (after EXIF orientation and the URL's rotation); its
    box is mapped back into the stored image, and `orient` turns the result."""
    method = _turn(work)
    swapped = orientation.swaps_axes(method)
    width, height = work.image.size
    shown = (height, width) if swapped else (width, height)
    frame_w, frame_h = work.frame_size
    if work.ops.gravity in AWARE_GRAVITIES and work.frame_index == 0:
        left, top, right, bottom = work.plan.box
        crop = ((right - left) / frame_w, (bottom - top) / frame_h)
        focus = _faces_focus(work, crop)
        if focus is None:
            stored_crop = (crop[1], crop[0]) if swapped else crop
            focus = orientation.shown_point(method, smart.focus(work.image, stored_crop))
        work.plan = plan(frame_w, frame_h, work.ops, max_side=work.settings.max_side, focus=focus)
    # A reduced decode (draft, or a smaller rendition in the cascade) shrinks the source: scale the box.
    planned = work.plan.scaled(shown[0] / frame_w, shown[1] / frame_h)
    box = orientation.stored_box(method, planned.box, shown)
    size = (planned.size[1], planned.size[0]) if swapped else planned.size
    identity = Plan(box, size).keeps(width, height)
    if work.rows_later:
        work.rows_later = False
        resized = None if identity else jpegrows.resized(work.image, work.data, size, box)
        if resized is not None:
            work.image = resized
            return
        with decoding():  # declined: Pillow decodes it, and reports what is wrong with it
            work.image.load()
    if not identity:
        work.image = parallel.resize(work.image, size, box)


def orient(work: Work) -> None:
    """EXIF orientation (values outside 1-8 count as 1), then the URL's clockwise rotation and flip: one
    transpose of the resized image. The output carries no EXIF at all."""
    method = _turn(work)
    if method is not None:
        work.image = work.image.transpose(method)


def _faces_focus(work: Work, crop: tuple[float, float]) -> tuple[float, float] | None:
    """Face gravity's crop centre, as fractions of the (turned, trimmed) frame; None: no face there."""
    if work.ops.gravity != "fc" or not work.faces:
        return None
    shown = faces.turned(work.faces, work.ops.rotate, work.ops.flip)
    if work.trim_box is not None:
        shown = faces.within(shown, work.trim_box)
    return faces.focus(shown, crop)


def _turn(work: Work) -> Image.Transpose | None:
    # A cascade's larger rendition is upright already and never rotated (`cache.cascade`).
    exif = 1 if work.derived_from is not None else work.orientation
    return orientation.composite(exif, work.ops.rotate, work.ops.flip)


def blur(work: Work) -> None:
    if work.ops.blur is not None:
        work.image = filters.blur(work.image, work.ops.blur)


def sharpen(work: Work) -> None:
    """The URL's unsharp mask; without one, a mild one after a strong downscale of a still (unless switched
    off)."""
    if work.ops.sharpen:
        work.image = filters.sharpen(work.image, work.ops.sharpen)
    elif auto_sharpens(work.plan, work.ops, work.settings) and not work.animated:
        # Not on animations: their frames are mostly paletted GIFs, whose dithering sharpening amplifies
        # in every frame (11% more bytes, and the time, on a pan over a photo: docs/benchmarks.md).
        work.image = filters.auto_sharpen(work.image)


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


#: What is done to the pixels of each frame (of a still: of its one image), in order.
FRAME_STEPS: tuple[Callable[[Work], None], ...] = (
    normalise, find_faces, trim_borders, geometry, orient, blur, sharpen, convert_colour, background, add_watermark,
)
STEPS: tuple[Callable[[Work], None], ...] = (
    read, check_limits, untouched, draft, decode, every_frame, encode, never_bigger,
)
