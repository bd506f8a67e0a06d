"""The `cache` section: the renditions on disk (where, how much, collected how often, purged how) and how
long clients may keep an answer — a rendition, or the fallback image sent instead of one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.config.fields import Where, at_least_zero, positive, require, setting


@dataclass(frozen=True)
class CacheSection:
    """The rendition cache, its collector and purge API, and the lifetimes answers carry."""

    cache_dir: Path = setting(Path("var/cache"), "where renditions live; nginx's `root` for hits", flag="--cache")
    cache_max_bytes: int = setting(10 * 1024**3, "disk the renditions may use; `0`: no limit",
                                   shown="`10737418240` (10 GiB)")
    gc_interval: int = setting(60, "seconds between background passes of the collector; `0`: only the pass at start")
    open_file_cache_valid: int = setting(5, "nginx re-checks an open cached file after this many seconds, so a "
                                         "purged rendition is served at most that long; `0` turns nginx's "
                                         "`open_file_cache` off")
    purge_token: str = setting("", "at least 16 characters; enables the HTTP purge API", secret=True)
    max_age: int = setting(365 * 24 * 3600, "`Cache-Control: public, max-age=…, immutable` on renditions")
    fallback_image: Path | None = setting(None, "image served, with the real status, when the original is missing "
                                          "or broken; see [configuration.md](configuration.md#fallback-image)",
                                          shown="none (off)")
    fallback_max_age: int = setting(60, "`Cache-Control: public, max-age=…` on fallback answers")

    def check(self, where: Where) -> None:
        positive(self, where, "max_age")
        at_least_zero(self, where, "cache_max_bytes", "gc_interval", "open_file_cache_valid", "fallback_max_age")
        require(not self.purge_token or len(self.purge_token) >= 16, where("purge_token"),
                "must be at least 16 characters")
        require(self.fallback_image is None or self.fallback_image.is_file(), where("fallback_image"),
                f"{self.fallback_image} is not a file")
