"""The `limits` section: the largest original the sidecar takes, checked before it is decoded."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.fields import Where, positive, setting


@dataclass(frozen=True)
class LimitsSection:
    """How large an original may be: in bytes while it streams, in pixels from its header and structure."""

    max_pixels: int = setting(50_000_000, "largest original, checked from the header before decoding")
    max_source_bytes: int = setting(50 * 1024 * 1024, "largest original file; checked while it streams, before "
                                    "it is all in memory")
    max_animation_pixels: int = setting(500_000_000, "frames × width × height an animated original (GIF, WebP, "
                                        "APNG, AVIF) may hold, counted from its structure before decoding (a "
                                        "multi-page TIFF is a document: only its first page counts)")

    def check(self, where: Where) -> None:
        positive(self, where, "max_pixels", "max_source_bytes", "max_animation_pixels")
