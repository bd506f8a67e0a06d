"""The public URL builder, for the main application's templates and for `resize-sidecar url`."""
from __future__ import annotations

import os
from typing import Literal

from .config import Config
from .errors import BadRequest
from .signing import Signer
from .url import Ops, Rendition

_FORMAT_ALIASES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif", "auto": "auto"}


def build_url(config: Config, key: str, *, width: int | None = None, height: int | None = None,
              fit: str | None = None, gravity: str | None = None, format: str | None = None,
              quality: int | Literal["keep"] | None = None, preset: str | None = None,
              focus: tuple[int, int] | None = None, enlarge: bool | None = None, dpr: float | None = None,
              watermark: str | None = None) -> str:
    """Return the signed path (beginning with `/`) of a rendition; raise BadRequest for bad arguments.

    Arguments override the preset's values. Without a format, the key's extension chooses between the
    output formats (PNG stays PNG, WebP stays WebP, AVIF stays AVIF), and anything else becomes JPEG.
    `focus` is a focal point in thousandths of the width and height (it implies gravity `fp`).
    """
    base = preset_fields(config, preset)
    given = {"width": width, "height": height, "fit": fit, "gravity": gravity, "format": format,
             "quality": quality, "focus": focus, "enlarge": enlarge, "dpr": dpr, "watermark": watermark}
    base.update({k: v for k, v in given.items() if v is not None})
    if focus is not None:
        base["gravity"] = "fp"
    fmt = str(base.pop("format", "") or _format_from_key(key))
    if fmt not in _FORMAT_ALIASES:
        raise BadRequest(f"unknown format {fmt!r}")
    if base.get("watermark") is not None and base["watermark"] not in config.watermarks:
        raise BadRequest(f"no watermark named {base['watermark']!r}")
    rendition = Rendition(key, Ops(format=_FORMAT_ALIASES[fmt], **base))  # type: ignore[arg-type]
    signature = Signer(config.signing_keys).sign(rendition.payload) if config.signed else None
    return rendition.path(config.url_prefix, signature)


def preset_fields(config: Config, preset: str | None) -> dict[str, object]:
    """The values a preset sets, in `build_url`'s terms (none for `None`)."""
    if preset is None:
        return {}
    if preset not in config.presets:
        raise BadRequest(f"unknown preset {preset!r}")
    return {k: v for k, v in vars(config.presets[preset]).items() if v is not None}


def _format_from_key(key: str) -> str:
    fmt = _FORMAT_ALIASES.get(os.path.splitext(key)[1].lower().lstrip("."), "jpeg")
    return "jpeg" if fmt == "auto" else fmt
