"""Facts about an original, for the `info` request: what it is, and placeholders a page can inline.

The pixels come from the transform's own steps (the same reading, limits, reduced JPEG decode,
orientation and colour conversion), asked for a thumbnail of at most `THUMBNAIL` pixels a side, so
the placeholders show what a rendition would. Everything here is CPU work and blocking.
"""
from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from sidecar.transform import colour, pipeline, thumbhash
from sidecar.url.grammar import Ops

THUMBNAIL = 100
#: The steps that read and decode the original into sRGB pixels; nothing is restyled or encoded.
STEPS = (pipeline.read, pipeline.check_limits, pipeline.draft, pipeline.decode, pipeline.normalise,
         pipeline.geometry, pipeline.orient, pipeline.convert_colour)
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
    work = pipeline.Work(data, Ops("png", width=THUMBNAIL, height=THUMBNAIL), settings, None, None)
    for step in STEPS:
        step(work)
    rgba = work.image.convert("RGBA")
    width, height = work.displayed_size
    return {
        "format": _FORMAT_NAMES[work.format],
        "width": width,
        "height": height,
        "alpha": work.alpha,
        # An MPO's second picture (a stereo view, a preview) is no animation frame.
        "animated": work.frames > 1 and work.format != "JPEG",
        "frames": work.frames,
        "colour_profile": colour.profile_name(work.icc),
        "quality": work.source_quality,
        "bytes": len(data),
        "dominant_colour": dominant_colour(rgba),
        "thumbhash": base64.b64encode(_thumbhash(rgba)).decode(),
        "lqip": lqip(rgba),
    }


def dominant_colour(rgba: Image.Image) -> str | None:
    """The colour most of the visible pixels are near, as `#rrggbb`; None if nothing is visible.

    Median cut into a few colours, then the most common: an average would give the grey that a red and
    a blue half make, which is in neither.
    """
    visible = [pixel[:3] for pixel in rgba.get_flattened_data() if pixel[3] >= 128]
    if not visible:
        return None
    opaque = Image.new("RGB", (len(visible), 1))
    opaque.putdata(visible)
    palette = opaque.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    counts = palette.getcolors() or []
    _, index = max(counts)
    red, green, blue = palette.getpalette()[3 * index : 3 * index + 3]  # type: ignore[index]
    return f"#{red:02x}{green:02x}{blue:02x}"


def lqip(rgba: Image.Image) -> str:
    """A `data:image/webp;base64,...` URI of the image at the largest size that fits `LQIP_LIMIT`."""
    uri = ""
    for side in _LQIP_SIDES:
        small = _shrunk(rgba, side)
        if "A" in small.getbands() and small.getextrema()[3][0] == 255:
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


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """At most `side` pixels a side, aspect kept (never below 1 px)."""
    scale = min(1.0, side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.BOX)
