"""The `transform` section: how renditions are made when the URL does not say — quality, background,
the CMYK profile, sharpening — and the watermarks a URL may name."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sidecar.config import tables
from sidecar.config.fields import Where, require, setting
from sidecar.config.tables import Watermark
from sidecar.url.grammar import hex_rgb

#: Debian's libgs-common ships it: Artifex's SWOP-like CMYK profile, for CMYK JPEGs without a profile.
DEFAULT_CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


@dataclass(frozen=True)
class TransformSection:
    """The transform's defaults for what a URL leaves open, and the watermark images."""

    quality: int | str = setting(82, "JPEG/WebP/JPEG XL quality when the URL has none (JPEG to JPEG: never above the "
                                 "source's), or `auto`: the lowest that keeps `quality_target`, searched per rendition")
    quality_target: float = setting(0.96, "what `qauto` (and `quality = \"auto\"`) keeps: SSIM on luma of the output "
                                    "against the unencoded rendition, 0.5 to below 1 (on our photos 0.97 is q82's "
                                    "quality and bytes, 0.96 15% fewer bytes, 0.95 25% fewer)")
    max_bytes_resize: bool = setting(False, "`mb{bytes}` may lower the dimensions once the lowest quality does not "
                                     "fit (else the smallest at the asked size, flagged X-Image-Over-Budget)")
    avif_quality: int = setting(60, "AVIF quality when the URL has none (AVIF's scale differs from JPEG's)")
    background: str = setting("ffffff", "colour that transparency is flattened on for JPEG")
    cmyk_profile: Path = setting(DEFAULT_CMYK_PROFILE, "CMYK profile for CMYK/YCCK JPEGs without one (Artifex's "
                                 "SWOP profile, Debian package `libgs-common`)")
    auto_sharpen: bool = setting(True, "a mild unsharp mask after downscales to half the pixels per side or less, "
                                 "unless the URL has `sh`")
    watermarks: Mapping[str, Watermark] = setting(
        factory=dict, table=tables.watermarks,
        doc="`image` (path, required), `position` (`ce`, `n`, … `se`; default `se`), `opacity` (0–1, `0.5`), "
            "`scale` (its width as a fraction of the rendition's, `0.25`), `margin` (fraction of the shorter "
            "side, `0.03`), `min_size` (renditions narrower or shorter than this many pixels get none, `200`)")

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return hex_rgb(self.background)

    def check(self, where: Where) -> None:
        require(self.quality == "auto" or (type(self.quality) is int and 1 <= self.quality <= 100), where("quality"),
                'must be 1 to 100 or "auto"')
        require(0.5 <= self.quality_target < 1, where("quality_target"), "must be from 0.5 to below 1 (an SSIM)")
        require(1 <= self.avif_quality <= 100, where("avif_quality"), "must be 1 to 100")
        require(re.fullmatch(r"[0-9a-fA-F]{6}", self.background) is not None, where("background"),
                "must be six hex digits, like ffffff")
        require(self.cmyk_profile.is_file(), where("cmyk_profile"),
                f"{self.cmyk_profile} is not a file (Debian: apt-get install libgs-common)")
        for name, mark in self.watermarks.items():
            require(mark.image.is_file(), where("watermarks"), f"{name}: {mark.image} is not a file")
