"""Decoding: from the original's bytes to pixels, as few as the rendition needs, in stored orientation
(EXIF orientation is applied to the small result: `orientation`).

Formats are detected from the bytes (`sniff`), limits are checked from the header before any pixel is
decoded, and JPEGs are decoded at a reduced scale (libjpeg's draft, or the DC scans alone). Vector
originals (SVG, PDF) are drawn at the rendition's size instead (`draft` asks for it), so their declared
size is only a shape: the pixel limit applies to what is drawn and planned, not to what they declare.
TIFF and ICO/CUR give their first page and largest entry; PDF its first page.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import replace

import pillow_avif  # noqa: F401  (registers the AVIF codec beside pillow-simd's own plugins)
import pillow_heif
from PIL import Image

from sidecar.errors import BadRequest, TooLarge, Undecodable, Unsupported
from sidecar.transform import animation, dcjpeg, faces, jpegrows, pdf, svg
from sidecar.transform.encode import output_format
from sidecar.transform.geometry import plan
from sidecar.transform.headers import avif_declared_size, gif_layout, ico_largest
from sidecar.transform.quality import estimate_quality
from sidecar.transform.sniff import HEAD, sniff
from sidecar.transform.work import Work, decoding
from sidecar.url.canonical import AWARE_GRAVITIES

# HEIC/HEIF input (libheif + libde265 from the wheel). It applies the file's rotation and mirroring
# itself while decoding and resets the EXIF orientation it reports, so `orient` has nothing left to do.
pillow_heif.register_heif_opener()

# Our own pixel limit is checked from the header before decoding; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
Image.init()  # load every format plugin now: `Image.open(formats=...)` only knows loaded ones

_ORIENTATION_TAG = 0x0112
#: Formats drawn at the size asked for (Pillow plugins of ours: `draft` picks the size, `load` draws).
SCALABLE = (svg.SvgImageFile.format, pdf.PdfImageFile.format)
#: Formats whose every page or frame Pillow would walk to count them, though only the first is used.
_FIRST_PAGE_ONLY = ("GIF", "TIFF")
#: A reduced JPEG decode keeps at least this many times the rendition's pixels per side.
DRAFT_MARGIN = 2.0


def read(work: Work) -> None:
    """Detect the format from the bytes and parse the header (no pixel data yet)."""
    work.format = sniff(work.data[:HEAD])
    declared = _declared_size(work.format, work.data)
    if declared and declared[0] * declared[1] > work.settings.max_pixels:
        raise TooLarge(f"image declares {declared[0]}x{declared[1]} pixels")
    with decoding():
        Image.MAX_IMAGE_PIXELS = work.settings.max_pixels
        try:
            work.image = Image.open(io.BytesIO(work.data), formats=[work.format])
        except Image.UnidentifiedImageError:
            if work.format in SCALABLE:  # markup or a PDF that does not parse: broken, not exotic
                raise Undecodable(f"{work.format} could not be parsed") from None
            # The signature said this format, but Pillow has no decoder for this variant of it
            # (12-bit or lossless JPEG, say).
            raise Unsupported(f"unsupported {work.format} variant") from None
        image = work.image
        work.orientation = _orientation(image, loaded=False)
        work.icc = image.info.get("icc_profile") or None
        work.alpha = "A" in image.mode or "transparency" in image.info
        # GIF frames are counted from the structure in `check_limits`: Pillow would read through them.
        # A multi-page TIFF is a document, not an animation: its first page is the image.
        work.frames = 1 if work.format in _FIRST_PAGE_ONLY else getattr(image, "n_frames", 1)
        if work.format == "JPEG":
            tables = getattr(image, "quantization", None)
            if tables:
                work.source_quality = estimate_quality(tables[0])


def check_limits(work: Work) -> None:
    """Refuse oversized images from the header alone, and plan the geometry in displayed coordinates."""
    width, height = work.image.size
    if width * height > work.settings.max_pixels:
        raise TooLarge(f"image has {width * height} pixels, more than {work.settings.max_pixels}")
    if work.format == "GIF":
        # A later frame may stick out of the logical screen; Pillow would grow the canvas to hold it.
        layout = gif_layout(work.data)
        work.frames, work.delays = layout.frames, layout.delays
        if layout.canvas[0] * layout.canvas[1] > work.settings.max_pixels:
            raise TooLarge(f"a GIF frame reaches {layout.canvas[0]}x{layout.canvas[1]} pixels")
        width, height = max(width, layout.canvas[0]), max(height, layout.canvas[1])
    work.output_format = output_format(work.ops.format, work.variant, work.source,
                                       opaque=work.ops.background is not None, frame=work.ops.frame)
    if work.source.frames > 1:
        _plan_frames(work, animation.Budget(work.frames, (width, height)))
    if work.ops.watermark is not None and work.ops.watermark not in work.settings.watermarks:
        raise BadRequest(f"no watermark named {work.ops.watermark!r}")
    plan_geometry(work)
    if work.format in SCALABLE and work.plan.size[0] * work.plan.size[1] > work.settings.max_pixels:
        raise TooLarge(f"a rendition of {work.plan.size[0]}x{work.plan.size[1]} pixels")


def draft(work: Work) -> None:
    """JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the pixels we need.
    SVG, PDF: draw the whole picture at the scale the plan takes it to, so no pixel is scaled up."""
    if work.format in SCALABLE:
        width, height = work.image.size
        scale = work.plan.scale
        work.image.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
        return
    if work.format != "JPEG":
        return
    width, height = work.image.size
    # The plan is in the original's turned pixels; this file may be a smaller rendition of it.
    shown_w = height if (work.orientation in (5, 6, 7, 8)) != work.ops.turned else width
    scale = min(1.0, DRAFT_MARGIN * work.plan.scale * work.frame_size[0] / shown_w)
    if work.ops.gravity == "fc" and work.faces is None:
        # The detector needs a sharp picture of its own size: libjpeg's 1/8 scale is too soft for it.
        scale = max(scale, min(1.0, faces.DECODE_SIDE / max(width, height)))
    needed = (max(1, round(width * scale)), max(1, round(height * scale)))
    with decoding():
        work.image.draft(work.image.mode, needed)


def decode(work: Work) -> None:
    """The transform's decode step: `decode_now`, or for a big JPEG that is only shrunk, nothing yet:
    `geometry` decodes it while it resizes (`decodes_in_rows`)."""
    if decodes_in_rows(work):
        work.rows_later = True
    else:
        decode_now(work)


def decode_now(work: Work) -> None:
    """Decode the pixels: the first frame of an animation (or the one `fr` asks for; `every_frame` decodes
    the later ones of an animation kept whole, one at a time)."""
    with decoding():
        # A progressive JPEG drafted to 1/8 needs only its DC scans (dcjpeg); None: libjpeg decodes.
        reduced = dcjpeg.reduced(work.image, work.data)
        if reduced is not None:
            work.image = reduced
        else:
            work.image.load()
        if work.frame_wanted:
            animation.select(work.image, work.frame_wanted)
        late = _orientation(work.image, loaded=True)
    if late != work.orientation:
        # A PNG may keep its eXIf chunk after the pixel data, so only now do we know; no draft happened.
        work.orientation = late
        plan_geometry(work)
    work.icc = work.image.info.get("icc_profile") or work.icc


def decodes_in_rows(work: Work) -> bool:
    """Whether `geometry` will decode this original as it resizes it (`jpegrows`): a still, sequential JPEG
    (a progressive one arrives whole anyway) that is shrunk, with no step before the resize that needs its
    pixels (trim, faces, smart crops)."""
    return (jpegrows.available() and work.format == "JPEG" and not work.image.info.get("progressive")
            and work.frames == 1 and not work.frame_wanted and work.ops.trim is None
            and work.ops.gravity not in AWARE_GRAVITIES and work.plan.scale < 1 and work.derived_from is None)


def _plan_frames(work: Work, budget: animation.Budget) -> None:
    """An animated original: keep every frame, or show one (the URL's `fr`, or frame 0 for still formats
    and for animations over `max_animation_pixels`: then the rendition says `first-frame`)."""
    limit = work.settings.max_animation_pixels
    if animation.keeps_animation(work.output_format, work.ops.frame):
        work.animated = budget.within(limit)
        work.animation = animation.ANIMATED if work.animated else animation.FIRST_FRAME
        work.loop = animation.loop(work.image.info, work.format)
    elif work.ops.frame:
        work.frame_wanted = work.ops.frame if budget.within(limit, work.ops.frame + 1) else 0
        work.animation = "" if work.frame_wanted else animation.FIRST_FRAME


def plan_geometry(work: Work) -> None:
    width, height = work.derived_from.size if work.derived_from else work.image.size
    if work.derived_from is None and work.orientation in (5, 6, 7, 8):
        width, height = height, width
    work.displayed_size = (width, height)
    ops = work.ops
    if work.format in SCALABLE and ops.target != (None, None):
        ops = replace(ops, enlarge=True)  # a drawing has no pixels of its own to run out of
    work.plan = plan(*work.frame_size, ops, max_side=work.settings.max_side)
    width, height = work.plan.canvas or work.plan.size
    limit = work.settings.max_output_pixels
    if limit is not None and width * height > limit:  # before any pixel is decoded
        raise TooLarge(f"the rendition would have {width}x{height} pixels; at most {limit}")


def _declared_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """What the structure declares, where Pillow would decode or refuse before telling us."""
    if fmt == "AVIF":
        return avif_declared_size(data)
    if fmt in ("ICO", "CUR"):
        return ico_largest(data)
    return None


def _orientation(image: Image.Image, *, loaded: bool) -> int:
    """EXIF (or XMP) orientation, 1 if absent or invalid. Never decodes: before `load()`, only what the
    header already holds counts (Pillow's PNG `getexif` would otherwise decode the pixels first)."""
    if not loaded and image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except (SyntaxError, ValueError, OSError, KeyError, IndexError, TypeError):
        return 1  # a broken EXIF block must not cost the image
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
