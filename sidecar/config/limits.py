"""The `limits` section: the largest original the sidecar takes, checked before it is decoded, and the
largest rendition it makes, checked before any work."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.fields import Where, at_least_zero, positive, setting


@dataclass(frozen=True)
class LimitsSection:
    """How large an original may be: in bytes while it streams, in pixels from its header and structure."""

    max_pixels: int = setting(50_000_000, "largest original, checked from the header before decoding")
    max_source_bytes: int = setting(50 * 1024 * 1024, "largest original file; checked while it streams, before "
                                    "it is all in memory")
    max_animation_pixels: int = setting(500_000_000, "frames × width × height (each frame at least 65,536) an "
                                        "animated original (GIF, WebP, APNG, AVIF) may hold to stay animated, "
                                        "counted from its structure before decoding; over it, renditions are "
                                        "its first frame (X-Image-Animation: first-frame); a multi-page TIFF is "
                                        "a document: only its first page counts")
    max_output_pixels: int = setting(0, "largest rendition in pixels (a `pad` canvas and the DPR included): a "
                                     "400 before any work where the URL alone fixes the size, a 413 from the "
                                     "original's header otherwise; 0: a quarter of `max_pixels`. The memory "
                                     "budget counts the encoders' worst case for it", shown="0 (max_pixels / 4)")

    @property
    def output_pixels(self) -> int:
        """`max_output_pixels`, or a quarter of `max_pixels` when that is 0 (12.5 million by default:
        4096×3052; the default memory budget then holds the encoders' worst case, `sidecar.observe.memory`)."""
        return self.max_output_pixels or self.max_pixels // 4

    def check(self, where: Where) -> None:
        positive(self, where, "max_pixels", "max_source_bytes", "max_animation_pixels")
        at_least_zero(self, where, "max_output_pixels")
