"""Colour: every rendition is sRGB, 8 bits per channel, and carries no ICC profile.

Embedded profiles (Adobe RGB, Display P3, grey, CMYK...) are converted to sRGB with LittleCMS
(`PIL.ImageCms`), relative colorimetric with black-point compensation; CMYK and YCCK JPEGs without a
profile go through a standard CMYK profile (`Config.cmyk_profile`). The result is untagged, which every
browser shows as sRGB, so no profile bytes are spent on the output. Modes are first brought to ones that
resize smoothly: 16-bit is scaled to 8, palette and 1-bit images become RGB(A) or L.
"""
from __future__ import annotations

import io
import sys
from functools import lru_cache
from pathlib import Path
from typing import cast

from PIL import Image, ImageCms

from sidecar.errors import Undecodable

_SRGB = ImageCms.createProfile("sRGB")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: Modes with a direct conversion to a resizable one (premultiplied alpha is unpremultiplied).
_CONVERT_TO = {
    "1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB", "LAB": "RGB",
    "HSV": "RGB",
}
_RAW_ORDER = {"I;16B": "I;16B", "I;16N": "I;16B" if sys.byteorder == "big" else "I;16"}
RESIZABLE = ("L", "LA", "RGB", "RGBA", "CMYK")


def resizable(image: Image.Image) -> Image.Image:
    """The same pixels in a mode that resizes by interpolation: L, LA, RGB, RGBA or CMYK.

    Every mode Pillow decodes to has a way here; one it does not know (a future one) is Undecodable
    (422), never an error of ours.
    """
    mode = image.mode
    if mode in RESIZABLE:
        return image
    if mode in _SIXTEEN_BIT or mode == "I":
        # 16-bit greyscale (and 32-bit integers, read as 16-bit): scale to 8 bits instead of clipping
        # at 255. `point` takes only I and I;16, and Pillow's I;16N -> I conversion clips, so the
        # byte-order variants are reread as I;16 from their raw bytes.
        wide = image if mode in ("I", "I;16") else Image.frombytes(
            "I;16", image.size, image.tobytes(), "raw", _RAW_ORDER.get(mode, "I;16"))
        return wide.point(lambda value: value * (1 / 256)).convert("L")
    if mode == "F":
        # Floating point: 0..1 is the usual convention for normalised data; anything else is clipped.
        low, high = cast("tuple[float, float]", image.getextrema())  # one band: two floats
        scale = 255.0 if 0.0 <= low and high <= 1.0 else 1.0
        return image.point(lambda value: value * scale).convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    target = _CONVERT_TO.get(mode, "RGBA" if "A" in mode.upper() else "RGB")
    try:
        return image.convert(target)
    except ValueError as exc:
        raise Undecodable(f"pixel mode {mode} is not supported", detail=str(exc)) from None


def is_srgb(icc: bytes | None) -> bool:
    """No profile, or one that describes sRGB: nothing to convert, and nothing lost by dropping it."""
    return icc is None or _description(icc).startswith("sRGB")


def profile_name(icc: bytes | None) -> str | None:
    """The embedded profile's description ("Display P3", "sRGB IEC61966-2.1"...); None without one, or
    when it does not parse."""
    return (_description(icc) or None) if icc else None


def needs_conversion(mode: str, icc: bytes | None) -> bool:
    """Whether `to_srgb` would change the pixels of an image in `mode` with this profile."""
    return mode == "CMYK" or not is_srgb(icc)


def to_srgb(image: Image.Image, icc: bytes | None, cmyk_profile: Path) -> Image.Image:
    """Convert L, LA, RGB, RGBA or CMYK pixels described by `icc` (None: sRGB, or the default CMYK
    profile for CMYK) to sRGB in L, LA, RGB or RGBA."""
    if image.mode == "CMYK":
        source = icc if icc is not None and _space(icc) == "CMYK" else cmyk_profile.read_bytes()
        return _apply(image, source, "CMYK", "RGB")
    if is_srgb(icc):
        return image
    assert icc is not None
    space, mode = _space(icc), image.mode
    if space == "GRAY" and mode in ("L", "LA"):
        # sRGB has no grey variant in LittleCMS: convert through RGB, whose channels come out equal.
        grey = _apply(image.getchannel("L") if mode == "LA" else image, icc, "L", "RGB").convert("L")
        if mode == "LA":
            grey = Image.merge("LA", (grey, image.getchannel("A")))
        return grey
    if space == "RGB" and mode in ("RGB", "RGBA"):
        return _apply(image, icc, mode, mode)
    return image  # a profile that does not fit the pixels (an RGB profile on grey, say) is ignored


def _apply(image: Image.Image, icc: bytes, in_mode: str, out_mode: str) -> Image.Image:
    transform = _transform(icc, in_mode, out_mode)
    if transform is None:
        return image if image.mode == out_mode else image.convert(out_mode)
    return ImageCms.applyTransform(image, transform)


@lru_cache(maxsize=64)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform | None:
    # Building a transform costs milliseconds, and the same few profiles come back all the time.
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(source, _SRGB, in_mode, out_mode,
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                       flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile: the pixels as they are beat no image at all


def _description(icc: bytes) -> str:
    return _info(icc)[0]


def _space(icc: bytes) -> str:
    return _info(icc)[1]


@lru_cache(maxsize=64)
def _info(icc: bytes) -> tuple[str, str]:
    """The profile's description and colour space ("RGB", "CMYK", "GRAY"); empty if it does not parse."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.getProfileDescription(profile).strip(), profile.profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return "", ""

