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

import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pillow_avif  # noqa: F401  (registers the AVIF codec beside pillow-simd's own plugins)
import pillow_heif
from PIL import Image

from sidecar.config import DEFAULT_CMYK_PROFILE, Watermark
from sidecar.errors import BadRequest, SidecarError, TooLarge, Undecodable, Unsupported
from sidecar.transform import colour, dcjpeg, filters, passthrough, smart, watermark
from sidecar.transform.geometry import COMPASS_FRACTIONS, Plan, plan
from sidecar.transform.headers import avif_declared_size, gif_layout
from sidecar.transform.quality import estimate_quality
from sidecar.transform.sniff import sniff
from sidecar.url.grammar import Ops, hex_rgb

# HEIC/HEIF input (libheif + libde265 from the wheel). It applies the file's rotation and mirroring
# itself while decoding and resets the EXIF orientation it reports, so `orient` has nothing left to do.
pillow_heif.register_heif_opener()

# Our own pixel limit is checked from the header before decoding; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
Image.init()  # load every format plugin now: `Image.open(formats=...)` only knows loaded ones

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
#: The output format an original already is, for passing it through.
_SAME_FORMAT = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
#: Sources whose `legacy` auto variant is PNG even without transparency (drawings, screenshots).
_LOSSLESS_SOURCES = ("PNG", "GIF", "BMP")
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,), 3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,), 5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,), 7: (Image.Transpose.TRANSVERSE,), 8: (Image.Transpose.ROTATE_90,),
}
_ORIENTATION_TAG = 0x0112
_AVIF_SPEED = 8  # libaom speed: 6 (its default) costs three times the time for 4% fewer bytes
#: Automatic sharpening follows downscales to this fraction of the source's pixels per side, or less.
AUTO_SHARPEN_SCALE = 0.5


@dataclass(frozen=True)
class Settings:
    """The parts of the config the transform needs (picklable, for worker processes)."""

    max_pixels: int
    quality: int
    background: tuple[int, int, int]
    avif_quality: int = 60
    cmyk_profile: Path = DEFAULT_CMYK_PROFILE
    watermarks: Mapping[str, Watermark] = field(default_factory=dict)
    max_side: int | None = None
    #: Frames times pixels per frame: what an animation may hold (only its first frame is decoded, but
    #: counting and walking frames costs too). None: no limit.
    max_animation_pixels: int | None = None
    auto_sharpen: bool = True


@dataclass(frozen=True)
class Source:
    """What the original is: kept beside its renditions, so smaller ones can be derived from a larger one."""

    size: tuple[int, int]  # as displayed (after EXIF orientation)
    format: str  # Pillow's name: JPEG, PNG...
    quality: int | None  # estimated, JPEG only
    alpha: bool


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    size: tuple[int, int]
    source: Source
    #: True when `data` is the original's own bytes (less metadata): nothing needed changing, or the
    #: encoded rendition was bigger.
    original: bool = False

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class Work:
    """The state handed from step to step (one per request, never shared)."""

    def __init__(self, data: bytes, ops: Ops, settings: Settings, variant: str | None,
                 derived_from: Source | None) -> None:
        self.data, self.ops, self.settings, self.variant = data, ops, settings, variant
        #: Set when `data` is a larger rendition rather than the original (the cascade).
        self.derived_from = derived_from
        self.image: Image.Image = None  # type: ignore[assignment]  # set by `read`
        self.format = ""
        self.output_format = ""
        self.orientation = 1
        self.frames = 1
        self.alpha = False
        self.plan: Plan = None  # type: ignore[assignment]  # set by `check_limits`
        self.displayed_size = (0, 0)  # the source's size after orientation
        self.source_quality: int | None = None
        self.icc: bytes | None = None
        self.output = b""
        self.original = False
        self.done = False

    @property
    def frame_size(self) -> tuple[int, int]:
        """The source's size after orientation and the URL's rotation: what `plan` refers to."""
        width, height = self.displayed_size
        return (height, width) if self.ops.turned else (width, height)

    @property
    def source(self) -> Source:
        if self.derived_from is not None:
            return self.derived_from
        return Source(self.displayed_size, self.format, self.source_quality, self.alpha)


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
    return Rendered(work.output, work.output_format, size, work.source, work.original)


@contextmanager
def decoding() -> Iterator[None]:
    """Pillow raises many kinds of exceptions on hostile files; all of them mean "undecodable"."""
    try:
        yield
    except SidecarError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(detail=str(exc)) from None
    except Exception as exc:  # OSError, ValueError, IndexError, SyntaxError, struct.error, EOFError...
        raise Undecodable(detail=f"{type(exc).__name__}: {exc}") from None


def read(work: Work) -> None:
    """Detect the format from the bytes and parse the header (no pixel data yet)."""
    work.format = sniff(work.data[:64])
    declared = avif_declared_size(work.data) if work.format == "AVIF" else None
    if declared and declared[0] * declared[1] > work.settings.max_pixels:
        raise TooLarge(f"image declares {declared[0]}x{declared[1]} pixels")
    with decoding():
        Image.MAX_IMAGE_PIXELS = work.settings.max_pixels
        try:
            work.image = Image.open(io.BytesIO(work.data), formats=[work.format])
        except Image.UnidentifiedImageError:
            # The signature said this format, but Pillow has no decoder for this variant of it
            # (12-bit or lossless JPEG, say).
            raise Unsupported(f"unsupported {work.format} variant") from None
        image = work.image
        work.orientation = _orientation(image, loaded=False)
        work.icc = image.info.get("icc_profile") or None
        work.alpha = "A" in image.mode or "transparency" in image.info
        # GIF frames are counted from the structure in `check_limits`: Pillow would read through them.
        work.frames = 1 if work.format == "GIF" else getattr(image, "n_frames", 1)
        if work.format == "JPEG":
            tables = getattr(image, "quantization", None)
            if tables:
                work.source_quality = estimate_quality(tables[0])
    work.output_format = output_format(work.ops.format, work.variant, work.source,
                                       opaque=work.ops.background is not None)


def check_limits(work: Work) -> None:
    """Refuse oversized images from the header alone, and plan the geometry in displayed coordinates."""
    width, height = work.image.size
    if width * height > work.settings.max_pixels:
        raise TooLarge(f"image has {width * height} pixels, more than {work.settings.max_pixels}")
    if work.format == "GIF":
        # A later frame may stick out of the logical screen; Pillow would grow the canvas to hold it.
        layout = gif_layout(work.data)
        work.frames = layout.frames
        if layout.canvas[0] * layout.canvas[1] > work.settings.max_pixels:
            raise TooLarge(f"a GIF frame reaches {layout.canvas[0]}x{layout.canvas[1]} pixels")
        width, height = max(width, layout.canvas[0]), max(height, layout.canvas[1])
    limit = work.settings.max_animation_pixels
    if limit is not None and work.frames > 1 and work.frames * width * height > limit:
        raise TooLarge(f"animation of {work.frames} frames of {width}x{height} pixels is over {limit}")
    if work.ops.watermark is not None and work.ops.watermark not in work.settings.watermarks:
        raise BadRequest(f"no watermark named {work.ops.watermark!r}")
    _plan(work)


def untouched(work: Work) -> None:
    """When nothing needs changing, the original's bytes (less metadata) are the rendition: no decode."""
    if not _original_fits(work) or not _quality_allows_original(work):
        return
    data = passthrough.stripped(work.data, work.format)
    if data is not None:
        work.output, work.original, work.done = data, True, True


def draft(work: Work) -> None:
    """JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the pixels we need."""
    if work.format != "JPEG":
        return
    width, height = work.image.size
    # The plan is in the original's turned pixels; this file may be a smaller rendition of it.
    shown_w = height if (work.orientation in (5, 6, 7, 8)) != work.ops.turned else width
    scale = min(1.0, 2 * work.plan.scale * work.frame_size[0] / shown_w)
    needed = (max(1, round(width * scale)), max(1, round(height * scale)))
    with decoding():
        work.image.draft(work.image.mode, needed)


def decode(work: Work) -> None:
    """Decode the pixels (the first frame of an animation: renditions are still images)."""
    with decoding():
        # A progressive JPEG drafted to 1/8 needs only its DC scans (dcjpeg); None: libjpeg decodes.
        reduced = dcjpeg.reduced(work.image, work.data)
        if reduced is not None:
            work.image = reduced
        else:
            work.image.load()
        late = _orientation(work.image, loaded=True)
    if late != work.orientation:
        # A PNG may keep its eXIf chunk after the pixel data, so only now do we know; no draft happened.
        work.orientation = late
        _plan(work)
    work.icc = work.image.info.get("icc_profile") or work.icc


def orient(work: Work) -> None:
    """Apply EXIF orientation (values outside 1-8 count as 1); the output carries no EXIF at all."""
    for method in _TRANSPOSE.get(work.orientation, ()):
        work.image = work.image.transpose(method)


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


def encode(work: Work) -> None:
    image, fmt = work.image, work.output_format
    if fmt == "jpeg":
        image = filters.flatten(image, work.settings.background)
    if fmt in ("webp", "avif") and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    options: dict[str, object]
    if fmt == "jpeg":
        options = {"quality": _quality(work), "progressive": True}
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


STEPS: tuple[Callable[[Work], None], ...] = (
    read, check_limits, untouched, draft, decode, orient, turn, normalise, geometry, blur, sharpen,
    convert_colour, background, add_watermark, encode, never_bigger,
)


def _plan(work: Work) -> None:
    width, height = work.derived_from.size if work.derived_from else work.image.size
    if work.derived_from is None and work.orientation in (5, 6, 7, 8):
        width, height = height, width
    work.displayed_size = (width, height)
    work.plan = plan(*work.frame_size, work.ops, max_side=work.settings.max_side)


def auto_sharpens(planned: Plan, ops: Ops, settings: Settings) -> bool:
    """Whether the automatic sharpening applies: on, not overridden by the URL, and a strong downscale."""
    return settings.auto_sharpen and ops.sharpen is None and planned.scale <= AUTO_SHARPEN_SCALE


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
