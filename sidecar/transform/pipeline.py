"""The transform: bytes of an original + operations -> bytes of the rendition.

One explicit ordered list of steps (`STEPS`), each a function of the `Work` in progress. Everything here
is CPU work and blocking: the server runs `transform` in its worker pool, never on the event loop.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image

from ..errors import SidecarError, TooLarge, Undecodable, Unsupported
from ..url import Ops
from . import dcjpeg
from .geometry import Plan, plan
from .headers import avif_declared_size, gif_layout
from .quality import estimate_quality
from .sniff import DECODABLE, sniff

import pillow_avif  # noqa: F401  (registers the AVIF codec beside pillow-simd's own plugins)

# Our own pixel limit is checked from the header before decoding; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
Image.init()  # load every format plugin now: `Image.open(formats=...)` only knows loaded ones

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,), 3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,), 5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,), 7: (Image.Transpose.TRANSVERSE,), 8: (Image.Transpose.ROTATE_90,),
}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Settings:
    """The parts of the config the transform needs (picklable, for worker processes)."""

    max_pixels: int
    quality: int
    background: tuple[int, int, int]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    size: tuple[int, int]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class Work:
    """The state handed from step to step (one per request, never shared)."""

    def __init__(self, data: bytes, ops: Ops, settings: Settings) -> None:
        self.data, self.ops, self.settings = data, ops, settings
        self.image: Image.Image = None  # type: ignore[assignment]  # set by `read`
        self.format = ""
        self.orientation = 1
        self.plan: Plan = None  # type: ignore[assignment]  # set by `check_limits`
        self.displayed_size = (0, 0)  # the header's size after orientation, which `plan` refers to
        self.source_quality: int | None = None
        self.icc: bytes | None = None
        self.output = b""


def transform(data: bytes, ops: Ops, settings: Settings) -> Rendered:
    """Run every step; raise a SidecarError (never anything else) for bad input."""
    work = Work(data, ops, settings)
    for step in STEPS:
        step(work)
    return Rendered(work.output, ops.format, work.image.size)


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
        work.orientation = _orientation(work.image, loaded=False)
        if work.format == "JPEG":
            tables = getattr(work.image, "quantization", None)
            if tables:
                work.source_quality = estimate_quality(tables[0])


def check_limits(work: Work) -> None:
    """Refuse oversized images from the header alone, and plan the geometry in displayed coordinates."""
    width, height = work.image.size
    if width * height > work.settings.max_pixels:
        raise TooLarge(f"image has {width * height} pixels, more than {work.settings.max_pixels}")
    if work.format == "GIF":
        # A later frame may stick out of the logical screen; Pillow would grow the canvas to hold it.
        canvas = gif_layout(work.data).canvas
        if canvas[0] * canvas[1] > work.settings.max_pixels:
            raise TooLarge(f"a GIF frame reaches {canvas[0]}x{canvas[1]} pixels")
    _plan(work)


def _plan(work: Work) -> None:
    width, height = work.image.size
    if work.orientation in (5, 6, 7, 8):
        width, height = height, width
    work.displayed_size = (width, height)
    work.plan = plan(width, height, work.ops)


def draft(work: Work) -> None:
    """JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the pixels we need."""
    if work.format != "JPEG":
        return
    scale = min(1.0, 2 * work.plan.scale)
    width, height = work.image.size
    needed = (max(1, round(width * scale)), max(1, round(height * scale)))
    with decoding():
        work.image.draft(work.image.mode, needed)


def decode(work: Work) -> None:
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
    work.icc = work.image.info.get("icc_profile") or None


def orient(work: Work) -> None:
    """Apply EXIF orientation (values outside 1-8 count as 1); the output carries no EXIF at all."""
    for method in _TRANSPOSE.get(work.orientation, ()):
        work.image = work.image.transpose(method)
    # A reduced decode shrinks the source: scale the planned box with it.
    (width, height), (planned_w, planned_h) = work.image.size, work.displayed_size
    if (width, height) != (planned_w, planned_h):
        work.plan = work.plan.scaled(width / planned_w, height / planned_h)


def normalize_mode(work: Work) -> None:
    """Bring every mode to L, LA, RGB or RGBA so that resizing is smooth and alpha premultiplied."""
    image = work.image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
        work.icc = None  # a CMYK profile does not describe RGB pixels
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    work.image = image


def resize(work: Work) -> None:
    if work.plan.is_identity:
        return
    work.image = work.image.resize(work.plan.size, Image.Resampling.LANCZOS, box=work.plan.box)


def encode(work: Work) -> None:
    image, fmt = work.image, work.ops.format
    if fmt == "jpeg" and image.mode in ("LA", "RGBA"):
        image = _flatten(image, work.settings.background)
    if fmt == "webp" and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    options: dict[str, object] = {"icc_profile": work.icc} if work.icc else {}
    if fmt == "jpeg":
        options.update(quality=_quality(work), progressive=True)
    elif fmt == "webp":
        options.update(quality=_quality(work), method=4)
    else:
        options.update(compress_level=6)
    image.info = {}  # Pillow copies comments and EXIF from `info` into the output; we copy nothing
    out = io.BytesIO()
    image.save(out, format=fmt.upper(), **options)
    work.image, work.output = image, out.getvalue()


STEPS: tuple[Callable[[Work], None], ...] = (
    read, check_limits, draft, decode, orient, normalize_mode, resize, encode,
)


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


def _has_alpha(image: Image.Image) -> bool:
    return image.mode == "PA" or "transparency" in image.info


def _flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = image.convert("RGBA")
    base = Image.new("RGB", rgba.size, background)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def _quality(work: Work) -> int:
    wanted = work.ops.quality
    if wanted == "keep":
        return work.source_quality or work.settings.quality
    return wanted or work.settings.quality
