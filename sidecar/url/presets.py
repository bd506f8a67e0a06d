"""Presets: named sets of operations from the config, which the URL builder expands into canonical URLs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.url.operations import PRESET_KEYS


@dataclass(frozen=True)
class Preset:
    """A named set of operations. The URL builder expands it, so the URL stays the one canonical spelling.

    A preset with a `fallback_image` adds `fb{name}` to its URLs: the one thing the sidecar looks up by
    the preset's name, to show that image when the original is missing or broken. The other fields are the
    preset keys of the table of operations (`operations.PRESET_KEYS`, checked by the tests), which says what
    each one does.
    """

    width: int | None = None
    height: int | None = None
    fit: str = "fit"
    gravity: str = "ce"
    format: str | None = None
    quality: int | str | None = None
    max_bytes: int | None = None
    enlarge: bool | None = None
    dpr: float | None = None
    client_hints: bool | None = None
    rotate: int | None = None
    flip: bool | None = None
    trim: int | None = None
    blur: float | None = None
    sharpen: float | None = None
    background: str | None = None
    watermark: str | None = None
    frame: int | None = None
    fallback_image: Path | None = None

    def operations(self, name: str) -> dict[str, Any]:
        """The builder's arguments this preset stands for (unset ones left out)."""
        values = {key: getattr(self, key) for key in PRESET_KEYS if getattr(self, key) is not None}
        if self.fallback_image is not None:
            values["fallback"] = name
        return values
