"""The public URL builder, for the main application's templates and for `resize-sidecar url`."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from sidecar.config import Config
from sidecar.errors import BadRequest
from sidecar.url.grammar import Info, Ops, Rendition, Target
from sidecar.url.signing import Signer

_FORMAT_ALIASES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif", "auto": "auto"}
_FLIPS = ("h", "v")


def build_url(config: Config, key: str, *, width: int | None = None, height: int | None = None,
              fit: str | None = None, gravity: str | None = None, format: str | None = None,
              quality: int | Literal["keep"] | None = None, preset: str | None = None,
              focus: tuple[int, int] | None = None, enlarge: bool | None = None, dpr: float | None = None,
              client_hints: bool | None = None, rotate: int | None = None, flip: str | None = None,
              blur: float | None = None, sharpen: float | None = None, background: str | None = None,
              watermark: str | None = None, expires: int | None = None,
              operations: Mapping[str, object] | None = None) -> str:
    """Return the signed path (beginning with `/`) of a rendition; raise BadRequest for bad arguments.

    Arguments override the preset's values. Without a format, the key's extension chooses between the
    output formats (PNG stays PNG, WebP stays WebP, AVIF stays AVIF), and anything else becomes JPEG.
    `focus` is a focal point in thousandths of the width and height (it implies gravity `fp`).
    `rotate` is clockwise; `flip` is `h` (mirror left to right) or `v` (upside down), after the rotation:
    the URL spells a vertical flip as a half turn more plus a mirror, its one canonical spelling.
    `sharpen=0` switches the automatic sharpening off. `background` is `rrggbb`. `expires` (unix time,
    signed deployments only) makes the URL stop working after that second. A URL the deployment would
    refuse (`allowed_sizes`, `presets_only`, `max_dimension`) is refused here too.
    `operations` are values to start from in a preset's terms (`Preset.operations`): routes and the
    resolver layer their presets and the row's watermark this way; a `preset` goes over them.
    """
    base: dict[str, object] = {**(operations or {}), **preset_fields(config, preset)}
    given = {"width": width, "height": height, "fit": fit, "gravity": gravity, "format": format,
             "quality": quality, "focus": focus, "enlarge": enlarge, "dpr": dpr, "client_hints": client_hints,
             "rotate": rotate, "blur": blur, "sharpen": sharpen, "background": background, "watermark": watermark,
             "expires": expires}
    base.update({k: v for k, v in given.items() if v is not None})
    if focus is not None:
        base["gravity"] = "fp"
    if isinstance(base.get("background"), str):
        base["background"] = str(base["background"]).lower().lstrip("#")
    if flip is not None:
        if flip not in _FLIPS:
            raise BadRequest("flip must be h or v")
        base["flip"] = True
        if flip == "v":
            base["rotate"] = (int(base.get("rotate") or 0) + 180) % 360  # type: ignore[call-overload]
    fmt = str(base.pop("format", "") or _format_from_key(key))
    if fmt not in _FORMAT_ALIASES:
        raise BadRequest(f"unknown format {fmt!r}")
    if base.get("watermark") is not None and base["watermark"] not in config.transform.watermarks:
        raise BadRequest(f"no watermark named {base['watermark']!r}")
    if base.get("client_hints") and not config.urls.client_hints:
        raise BadRequest("client hints are off (client_hints = false)")
    if expires is not None and not config.urls.signed:
        raise BadRequest("an expiry needs signing keys")
    rendition = Rendition(key, Ops(format=_FORMAT_ALIASES[fmt], **base))  # type: ignore[arg-type]
    config.urls.limits.check(rendition.ops)
    return _signed(config, rendition)


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
    fmt = _FORMAT_ALIASES.get(os.path.splitext(key)[1].lower().lstrip("."), "jpeg")
    return "jpeg" if fmt == "auto" else fmt
