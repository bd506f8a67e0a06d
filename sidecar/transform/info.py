"""Facts about an original, for the `info` request: what it is, and placeholders a page can inline.

The pixels come from the transform's own steps (the same reading, limits, reduced JPEG decode,
orientation and colour conversion), asked for a thumbnail of at most `THUMBNAIL` pixels a side, so
the placeholders show what a rendition would. Everything here is CPU work and blocking.
"""
from __future__ import annotations

import base64
import io
from typing import Any, cast

from PIL import Image

from sidecar.transform import (
    animation,
    colour,
    faces,
    orientation,
    pipeline,
    thumbhash,
    trim,
)
from sidecar.transform.decode import decode_now
from sidecar.transform.geometry import plan
from sidecar.transform.work import decoding
from sidecar.url.grammar import Ops

THUMBNAIL = 100
#: Faces and the trim box are found on the decode before it is shrunk to the thumbnail: at least this
#: many pixels a side (what face gravity's detector looks at), or the original's size.
ANALYSIS_SIDE = faces.DECODE_SIDE
#: The steps that read and decode the original into sRGB pixels; nothing is restyled or encoded.
STEPS = (pipeline.read, pipeline.check_limits, pipeline.draft, decode_now, pipeline.normalise,
         pipeline.geometry, pipeline.orient, pipeline.convert_colour)
_THUMBNAIL_OPS = Ops("png", width=THUMBNAIL, height=THUMBNAIL)
HASH_SIDE = 32  # ThumbHash keeps only the lowest frequencies: more pixels change nothing but the time
#: The LQIP: a tiny WebP as a data URI of at most this many characters, as large as fits.
LQIP_LIMIT = 1024
_LQIP_SIDES = (32, 24, 16, 12, 8)
_LQIP_QUALITY = 40
_FORMAT_NAMES = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tiff", "BMP": "bmp",
                 "AVIF": "avif", "HEIF": "heif", "ICO": "ico", "CUR": "cur", "JPEG2000": "jp2", "SVG": "svg",
                 "PDF": "pdf"}


def describe(data: bytes, settings: pipeline.Settings) -> dict[str, Any]:
    """The original's facts as a JSON-ready dict; raises a SidecarError for bad input, as `transform` does."""
    # Decoded for the analysis (the draft keeps twice the plan's pixels), shrunk to the thumbnail after it.
    work = pipeline.Work(data, Ops("png", width=ANALYSIS_SIDE // 2, height=ANALYSIS_SIDE // 2), settings,
                         None, None)
    found: tuple[faces.Face, ...] = ()
    trimmed: faces.Face = (0.0, 0.0, 1.0, 1.0)
    for step in STEPS:
        if step is pipeline.geometry:  # the stored pixels, not yet turned upright
            upright = orientation.composite(work.orientation)
            found = faces.detect(work.image, upright)
            left, top, right, bottom = trim.box(work.image)
            trimmed = faces.shown_box(upright, (left / work.image.width, top / work.image.height,
                                                right / work.image.width, bottom / work.image.height))
            work.plan = plan(*work.frame_size, _THUMBNAIL_OPS, max_side=settings.max_side)
        step(work)
    rgba = work.image.convert("RGBA")
    width, height = work.displayed_size
    frames = work.source.frames
    duration, loop = None, None
    if frames > 1 and animation.Budget(frames, (width, height)).within(settings.max_animation_pixels):
        with decoding():
            duration, loop = animation.timing(data, work.format, frames, work.delays)
    return {
        "format": _FORMAT_NAMES[work.format],
        "width": width,
        "height": height,
        "alpha": work.alpha,
        # An MPO's second picture (a stereo view, a preview) is no animation frame.
        "animated": work.frames > 1 and work.format != "JPEG",
        "frames": work.frames,
        "duration_ms": duration,
        "loop": loop,
        "colour_profile": colour.profile_name(work.icc),
        "quality": work.source_quality,
        "bytes": len(data),
        "dominant_colour": dominant_colour(rgba),
        "thumbhash": base64.b64encode(_thumbhash(rgba)).decode(),
        "lqip": lqip(rgba),
        # Where to place overlays, in the original's pixels as displayed (from a reduced decode: a few
        # pixels off on large originals).
        "faces": [_pixels(face, width, height) for face in found],
        "trim": _pixels(trimmed, width, height),
    }


def dominant_colour(rgba: Image.Image) -> str | None:
    """The colour most of the visible pixels are near, as `#rrggbb`; None if nothing is visible.

    Median cut into a few colours, then the most common: an average would give the grey that a red and
    a blue half make, which is in neither.
    """
    pixels = cast("list[tuple[int, int, int, int]]", list(rgba.get_flattened_data()))  # RGBA: 4-tuples
    visible = [pixel[:3] for pixel in pixels if pixel[3] >= 128]
    if not visible:
        return None
    opaque = Image.new("RGB", (len(visible), 1))
    opaque.putdata(visible)
    palette = opaque.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    counts = cast("list[tuple[int, int]]", palette.getcolors() or [])  # (count, palette index) of a P image
    _, index = max(counts)
    red, green, blue = (palette.getpalette() or [])[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def lqip(rgba: Image.Image) -> str:
    """A `data:image/webp;base64,...` URI of the image at the largest size that fits `LQIP_LIMIT`."""
    uri = ""
    for side in _LQIP_SIDES:
        small = _shrunk(rgba, side)
        extrema = cast("tuple[tuple[int, int], ...]", small.getextrema())  # per band, for a multi-band image
        if "A" in small.getbands() and extrema[3][0] == 255:
            small = small.convert("RGB")  # no transparency: spare the alpha plane's bytes
        out = io.BytesIO()
        small.save(out, format="WEBP", quality=_LQIP_QUALITY, method=6)
        uri = "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode()
        if len(uri) <= LQIP_LIMIT:
            break
    return uri


def _thumbhash(rgba: Image.Image) -> bytes:
    small = _shrunk(rgba, HASH_SIDE)
    return thumbhash.encode(small.width, small.height, small.tobytes())


def _pixels(box: faces.Face, width: int, height: int) -> list[int]:
    """A box in fractions -> [left, top, right, bottom] in pixels of a `width` x `height` picture."""
    return [round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height)]


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """At most `side` pixels a side, aspect kept (never below 1 px)."""
    scale = min(1.0, side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.BOX)
