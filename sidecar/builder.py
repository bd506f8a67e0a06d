"""The public URL builder, for the main application's templates and for `resize-sidecar url`."""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping

from sidecar.config import Config
from sidecar.errors import BadRequest
from sidecar.url.canonical import FORMAT_NAMES
from sidecar.url.grammar import Info, Ops, Rendition, Target
from sidecar.url.operations import KEYWORDS, check_keywords, keyword_fields
from sidecar.url.signing import Signer


def build_url(config: Config, key: str, *, preset: str | None = None,
              operations: Mapping[str, object] | None = None, **keywords: object) -> str:
    """Return the signed path (beginning with `/`) of a rendition; raise BadRequest for bad arguments.

    The keywords are the operations' (one per row of `sidecar.url.operations`, listed with their meaning in
    docs/operations-table.md); None means not given, and an unknown keyword is a TypeError.
    Arguments override the preset's values. Without a format, the key's extension chooses between the
    output formats (PNG stays PNG, GIF stays GIF, WebP stays WebP, AVIF stays AVIF), and anything else becomes JPEG.
    `focus` is a focal point in thousandths of the width and height (it implies gravity `fp`).
    `rotate` is clockwise; `flip` is `h` (mirror left to right) or `v` (upside down), after the rotation:
    the URL spells a vertical flip as a half turn more plus a mirror, its one canonical spelling.
    `sharpen=0` switches the automatic sharpening off. `background` is `rrggbb`. `expires` (unix time,
    signed deployments only) makes the URL stop working after that second. A URL the deployment would
    refuse (`allowed_sizes`, `presets_only`, `max_dimension`) is refused here too.
    `operations` are values to start from in a preset's terms (`Preset.operations`): routes and the
    resolver layer their presets and the row's watermark this way; a `preset` goes over them.
    """
    check_keywords(keywords)
    base = keyword_fields(keywords, {**(operations or {}), **preset_fields(config, preset)})
    fmt = str(base.pop("format", "") or _format_from_key(key))
    if fmt not in FORMAT_NAMES:
        raise BadRequest(f"unknown format {fmt!r}")
    if base.get("watermark") is not None and base["watermark"] not in config.transform.watermarks:
        raise BadRequest(f"no watermark named {base['watermark']!r}")
    if base.get("client_hints") and not config.urls.client_hints:
        raise BadRequest("client hints are off (client_hints = false)")
    if keywords.get("expires") is not None and not config.urls.signed:
        raise BadRequest("an expiry needs signing keys")
    rendition = Rendition(key, Ops(format=FORMAT_NAMES[fmt], **base))  # type: ignore[arg-type]
    config.url_limits.check(rendition.ops)
    return _signed(config, rendition)


# What help() shows: every keyword by name, as if written out (they are the table's).
_WRITTEN = inspect.signature(build_url)
build_url.__signature__ = _WRITTEN.replace(parameters=[  # type: ignore[attr-defined]
    _WRITTEN.parameters["config"], _WRITTEN.parameters["key"],
    *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in (*KEYWORDS, "preset")),
    _WRITTEN.parameters["operations"]])


def build_info_url(config: Config, key: str) -> str:
    """Return the signed path of the `info` JSON of the original `key`."""
    return _signed(config, Info(key))


def _signed(config: Config, target: Target) -> str:
    signature = Signer(config.urls.signing_keys).sign(target.payload) if config.urls.signed else None
    return target.path(config.urls.url_prefix, signature)


def preset_fields(config: Config, preset: str | None) -> dict[str, object]:
    """The values a preset sets, as `build_url`'s `operations` (none for `None`)."""
    if preset is None:
        return {}
    if preset not in config.urls.presets:
        raise BadRequest(f"unknown preset {preset!r}")
    return config.urls.presets[preset].operations(preset)


def _format_from_key(key: str) -> str:
    fmt = FORMAT_NAMES.get(os.path.splitext(key)[1].lower().lstrip("."), "jpeg")
    return "jpeg" if fmt == "auto" else fmt
