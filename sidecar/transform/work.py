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
from sidecar.transform.geometry import Plan
from sidecar.url.grammar import Ops

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif",
                 "jxl": "image/jxl"}


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


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    size: tuple[int, int]
    source: Source
    #: True when `data` is the original's own bytes (less metadata): nothing needed changing, or the
    #: encoded rendition was bigger.
    original: bool = False
    #: False when the URL's `mb{bytes}` could not be met: `data` is then the smallest we could make.
    fits: bool = True

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
        self.fits = True
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
