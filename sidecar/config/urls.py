"""The `urls` section: what URLs the deployment serves — prefix, signatures, sizes, presets, old URL
shapes (routes) and client hints."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.config import tables
from sidecar.config.fields import ConfigError, Where, require, setting
from sidecar.url.grammar import FORMAT_EXTENSION, MAX_DPR
from sidecar.url.limits import Limits, parse_size
from sidecar.url.paths import ADMIN_PREFIX, HEALTH_PATHS, INTERNAL_PREFIX
from sidecar.url.presets import Preset
from sidecar.url.routes import Route

#: Paths the sidecar answers itself, which renditions cannot live under.
RESERVED_PREFIXES = (*sorted(HEALTH_PATHS), ADMIN_PREFIX, INTERNAL_PREFIX)


@dataclass(frozen=True)
class UrlsSection:
    """What URLs this deployment serves, and how they are signed."""

    url_prefix: str = setting("/img", "where renditions live in URL space")
    signing_keys: tuple[str, ...] = setting((), "comma-separated, each at least 16 characters; the first signs, "
                                            "all verify", secret=True)
    allow_unsigned: bool = setting(False, "let `serve` run without keys")
    max_url_length: int = setting(2048, "longest request path (64 to 8000); longer is a 414")
    max_dimension: int = setting(8192, "largest requested width or height")
    allowed_sizes: tuple[str, ...] = setting((), "if set, the only `w`/`h` pairs served: `[\"200x200\", \"800x\", "
                                             "\"x300\"]` (comma-separated in the variable). URLs without a size "
                                             "(`orig`) stay allowed", shown="none (any size)")
    presets_only: bool = setting(False, "serve only URLs whose operations are exactly one preset's (a preset "
                                 "without `format` allows every format); exclusive with `allowed_sizes`")
    presets: Mapping[str, Preset] = setting(
        factory=dict, table=tables.presets,
        doc="`width`, `height`, `fit`, `gravity`, `format`, `quality`, `max_bytes`, `enlarge`, `dpr`, `client_hints`, "
            "`rotate`, `flip`, `blur`, `sharpen`, `background`, `watermark`, `fallback_image` (a path; adds "
            "`fb{NAME}` to the preset's URLs)")
    routes: Mapping[str, Route] = setting(
        factory=dict, table=tables.routes,
        doc="an old URL shape: `pattern` (required) and `preset` (optional); see "
            "[urls.md](urls.md#image-ids-and-old-urls-routes)")
    client_hints: bool = setting(False, "allow `ch` URLs, sized by the browser's client hints; see "
                                 "[urls.md](urls.md#client-hints)")
    client_hints_widths: tuple[int, ...] = setting((320, 480, 640, 768, 1024, 1280, 1600, 1920),
                                                   "the widths width hints are rounded up to (1 to 16, increasing, "
                                                   "at most `max_dimension`)")
    client_hints_dprs: tuple[float, ...] = setting((1.0, 1.5, 2.0, 3.0), "the ratios DPR hints are rounded up to "
                                                   "(the first must be 1, up to 4, steps of 0.1)")

    @property
    def signed(self) -> bool:
        return bool(self.signing_keys)

    @property
    def limits(self) -> Limits:
        """What URLs this deployment serves (sizes, presets), checked before any work."""
        return Limits.build(self.max_dimension, self.allowed_sizes, self.presets, self.presets_only)

    def check(self, where: Where) -> None:
        require(re.fullmatch(r"(/[a-z0-9_-]+)+", self.url_prefix) is not None, where("url_prefix"),
                "must look like /img (lowercase segments, no trailing slash)")
        require(self.url_prefix not in RESERVED_PREFIXES, where("url_prefix"), "is a path the sidecar itself answers")
        require(all(len(k) >= 16 for k in self.signing_keys), where("signing_keys"),
                "every key must be at least 16 characters")
        require(self.max_dimension > 0, where("max_dimension"), "must be positive")
        require(64 <= self.max_url_length <= 8000, where("max_url_length"),
                "must be 64 to 8000 (nginx refuses request lines over 8k itself)")
        self._check_sizes(where)
        self._check_client_hints(where)
        self._check_tables(where)

    def _check_sizes(self, where: Where) -> None:
        for size in self.allowed_sizes:
            try:
                width, height = parse_size(size)
            except ValueError as exc:
                raise ConfigError(f"{where('allowed_sizes')}: {exc}") from None
            require(max(width or 0, height or 0) <= self.max_dimension, where("allowed_sizes"),
                    f"{size} is over max_dimension ({self.max_dimension})")
        require(not self.presets_only or bool(self.presets), where("presets_only"), "needs at least one [presets.NAME]")
        require(not (self.presets_only and self.allowed_sizes), where("allowed_sizes"),
                "presets_only already fixes the sizes; set one or the other")

    def _check_client_hints(self, where: Where) -> None:
        widths, dprs = self.client_hints_widths, self.client_hints_dprs
        require(0 < len(widths) <= 16 and list(widths) == sorted(set(widths))
                and all(1 <= w <= self.max_dimension for w in widths), where("client_hints_widths"),
                f"must be 1 to 16 increasing widths from 1 to max_dimension ({self.max_dimension})")
        require(0 < len(dprs) <= 8 and dprs[0] == 1 and list(dprs) == sorted(set(dprs))
                and all(1 <= d <= MAX_DPR and abs(d * 10 - round(d * 10)) < 1e-6 for d in dprs),
                where("client_hints_dprs"),
                f"must be 1 to 8 increasing ratios, the first 1 (no hint), up to {MAX_DPR} in steps of 0.1")

    def _check_tables(self, where: Where) -> None:
        for name, preset in self.presets.items():
            require(preset.format is None or preset.format in FORMAT_EXTENSION, where("presets"),
                    f"{name}: unknown format")
            require(preset.fallback_image is None or preset.fallback_image.is_file(), where("presets"),
                    f"{name}: fallback_image {preset.fallback_image} is not a file")
            require(not preset.client_hints or self.client_hints, where("presets"),
                    f"{name}: client_hints needs client_hints = true")
        for name, route in self.routes.items():
            require(not route.pattern.startswith(self.url_prefix + "/"), where("routes"),
                    f"{name}: the pattern is inside url_prefix, which canonical URLs own")
            require(route.preset is None or route.preset in self.presets, where("routes"),
                    f"{name}: no preset named {route.preset!r} in [presets]")
