"""The TOML-only tables: `[presets.NAME]`, `[watermarks.NAME]`, `[routes.NAME]`, each checked on its own.

Paths in them are relative to the config file, like every path in it. Whether a preset's watermark
exists, or a route's preset, is checked later with the whole config (`sidecar.config.settings`).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sidecar.config.fields import ConfigError, require, suggestion
from sidecar.errors import BadRequest
from sidecar.url.grammar import COMPASS, Ops
from sidecar.url.presets import Preset
from sidecar.url.routes import Route

T = TypeVar("T")


@dataclass(frozen=True)
class Watermark:
    """An image laid over renditions whose URL names it (`wm{name}`, usually through a preset)."""

    image: Path
    position: str = "se"
    opacity: float = 0.5
    #: The watermark's width as a fraction of the rendition's width.
    scale: float = 0.25
    #: Renditions whose width or height is below this many pixels get no watermark.
    min_size: int = 200
    #: Distance from the edges, as a fraction of the rendition's shorter side.
    margin: float = 0.03


def presets(value: Any, where: str, base: Path) -> dict[str, Preset]:
    """`[presets.NAME]` tables: named sets of operations, each one a valid URL's."""
    return _tables("presets", value, where, lambda name, body, at: _preset(name, body, at, base))


def watermarks(value: Any, where: str, base: Path) -> dict[str, Watermark]:
    """`[watermarks.NAME]` tables: an image and how to lay it over a rendition."""
    return _tables("watermarks", value, where, lambda name, body, at: _watermark(body, at, base))


def routes(value: Any, where: str, base: Path) -> dict[str, Route]:
    """`[routes.NAME]` tables: an old URL shape and the preset it implies."""
    return _tables("routes", value, where, _route)


def _tables(section: str, value: Any, where: str, parse: Callable[[str, dict[str, Any], str], T]) -> dict[str, T]:
    require(isinstance(value, dict), where, f"expected a table of {section}")
    parsed = {}
    for name, body in value.items():
        at = f"{section}.{name} ({where})"
        require(re.fullmatch(r"[a-z0-9_]{1,32}", name) is not None, at, "names are 1-32 of a-z, 0-9, _")
        require(isinstance(body, dict), at, "expected a table")
        parsed[name] = parse(name, body, at)
    return parsed


def known_keys(body: dict[str, Any], known: list[str], where: str) -> None:
    """Refuse a key that is not in `known`, suggesting the nearest one that is."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{suggestion(unknown[0], known)}")


def _preset(name: str, body: dict[str, Any], where: str, base: Path) -> Preset:
    known_keys(body, [f.name for f in dataclasses.fields(Preset)], where)
    image = body.get("fallback_image")
    require(image is None or isinstance(image, str), where, "fallback_image must be a path")
    preset = Preset(**{**body, "fallback_image": None if image is None else base / image})
    try:
        Ops(**{"format": "jpeg", **preset.operations(name)})
    except (BadRequest, TypeError) as exc:
        raise ConfigError(f"{where}: {exc.public if isinstance(exc, BadRequest) else exc}") from None
    return preset


def _watermark(body: dict[str, Any], where: str, base: Path) -> Watermark:
    known_keys(body, [f.name for f in dataclasses.fields(Watermark)], where)
    require(isinstance(body.get("image"), str), where, "image (a path) is required")
    mark = Watermark(**{**body, "image": base / body["image"]})
    numbers = (mark.opacity, mark.scale, mark.margin)
    require(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
            and 0 < mark.opacity <= 1 and 0 < mark.scale <= 1 and 0 <= mark.margin < 0.5, where,
            "opacity and scale must be in (0, 1], margin in [0, 0.5)")
    require(mark.position in COMPASS, where, f"position must be one of {', '.join(COMPASS)}")
    require(type(mark.min_size) is int and mark.min_size >= 1, where, "min_size must be a positive integer")
    return mark


def _route(name: str, body: dict[str, Any], where: str) -> Route:
    known_keys(body, ["pattern", "preset"], where)
    require(isinstance(body.get("pattern"), str) and isinstance(body.get("preset", ""), str), where,
            "pattern (a string) is required; preset is a name")
    try:
        return Route(name, body["pattern"], body.get("preset"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
