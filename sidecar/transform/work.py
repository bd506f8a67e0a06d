"""The transform's values: its settings, what the original is, what comes out, and the state handed
from step to step."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sidecar.config import DEFAULT_CMYK_PROFILE, Watermark
from sidecar.errors import SidecarError, TooLarge, Undecodable
from sidecar.transform.geometry import Box, Plan
from sidecar.url.grammar import Ops

#: The formats whose frames are an animation (Pillow's names).
ANIMATABLE = ("GIF", "WEBP", "PNG", "AVIF")
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
                 "avif": "image/avif", "jxl": "image/jxl"}


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
    #: Frames times pixels per frame: the animations kept whole (over it: their first frame). None: no limit.
    max_animation_pixels: int | None = None
    auto_sharpen: bool = True
    #: The most pixels a rendition may have (a `pad` canvas included). None: no limit.
    max_output_pixels: int | None = None
    #: `quality = "auto"` in the config: renditions whose URL names no quality search for theirs.
    auto_quality: bool = False
    #: What the automatic quality keeps: the SSIM of the output against the unencoded rendition.
    quality_target: float = 0.96
    #: `mb{bytes}` may lower the dimensions too once the lowest quality does not fit.
    max_bytes_resize: bool = False


@dataclass(frozen=True)
class Source:
    """What the original is: kept beside its renditions, so smaller ones can be derived from a larger one."""

    size: tuple[int, int]  # as displayed (after EXIF orientation)
    format: str  # Pillow's name: JPEG, PNG...
    quality: int | None  # estimated, JPEG only
    alpha: bool
    frames: int = 1


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    size: tuple[int, int]
    source: Source
    #: True when `data` is the original's own bytes (less metadata): nothing needed changing, or the
    #: encoded rendition was bigger.
    original: bool = False
    #: Face gravity's faces (fractions of the original as displayed), when it looked for them.
    faces: tuple[Box, ...] | None = None
    #: For an animated original: `animated` (kept), `first-frame` (over the budget), else "".
    animation: str = ""
    #: False when the URL's `mb{bytes}` could not be met: `data` is then the smallest we could make.
    fits: bool = True

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class Work:
    """The state handed from step to step (one per request, never shared)."""

    def __init__(self, data: bytes, ops: Ops, settings: Settings, variant: str | None,
                 derived_from: Source | None, faces: tuple[Box, ...] | None = None) -> None:
        self.data, self.ops, self.settings, self.variant = data, ops, settings, variant
        #: Set when `data` is a larger rendition rather than the original (the cascade).
        self.derived_from = derived_from
        #: The original's faces (fractions of it as displayed): given when known, else found for `gfc`.
        self.faces = faces
        #: What `trim` keeps, as fractions of the turned frame; None: nothing trimmed.
        self.trim_box: Box | None = None
        self.trim_pixels: tuple[int, int, int, int] | None = None  # frame 0's trim, in its stored pixels
        self.image: Image.Image = None  # type: ignore[assignment]  # set by `read`
        #: `image` is not decoded yet: `geometry` decodes it row by row while it resizes (`jpegrows`).
        self.rows_later = False
        self.format = ""
        self.output_format = ""
        self.orientation = 1
        self.frames = 1
        #: An animation kept whole: `encode` pulls `later_frames` (frame 0 is `image`).
        self.animated = False
        self.animation = ""  # Rendered.animation
        self.frame_wanted = 0  # the frame a still shows
        self.frame_index = 0  # the frame the pixel steps are working on
        self.later_frames: Iterator[tuple[Image.Image, int]] = iter(())
        self.loop = 1
        self.delays: tuple[int, ...] = ()  # a GIF's frame delays, from its structure
        self.frame_duration = 0  # frame 0's, in milliseconds
        self.alpha = False
        self.plan: Plan = None  # type: ignore[assignment]  # set by `check_limits`
        self.displayed_size = (0, 0)  # the source's size after orientation
        self.source_quality: int | None = None
        self.icc: bytes | None = None
        self.output = b""
        self.original = False
        self.fits = True
        self.done = False

    @property
    def frame_size(self) -> tuple[int, int]:
        """The source's size after orientation, the URL's rotation and the trim: what `plan` refers to."""
        width, height = self.displayed_size
        if self.ops.turned:
            width, height = height, width
        if self.trim_box is None:
            return width, height
        left, top, right, bottom = self.trim_box
        return max(1, round((right - left) * width)), max(1, round((bottom - top) * height))

    @property
    def source(self) -> Source:
        if self.derived_from is not None:
            return self.derived_from
        frames = self.frames if self.format in ANIMATABLE else 1  # an MPO's second picture is no frame
        return Source(self.displayed_size, self.format, self.source_quality, self.alpha, frames)


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
