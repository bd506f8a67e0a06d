"""Colour: every rendition is sRGB, 8 bits per channel, and carries no ICC profile.

Embedded profiles (Adobe RGB, Display P3, grey, CMYK...) are converted to sRGB with LittleCMS
(`PIL.ImageCms`), relative colorimetric with black-point compensation; CMYK and YCCK JPEGs without a
profile go through a standard CMYK profile (`Config.cmyk_profile`). The result is untagged, which every
browser shows as sRGB, so no profile bytes are spent on the output. Modes are first brought to ones that
resize smoothly: 16-bit is scaled to 8, palette and 1-bit images become RGB(A) or L.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageCms

_SRGB = ImageCms.createProfile("sRGB")
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def resizable(image: Image.Image) -> Image.Image:
    """The same pixels in a mode that resizes by interpolation: L, LA, RGB, RGBA or CMYK."""
    if image.mode in _WIDE_MODES:
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        return image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA"):
        alpha = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if alpha else "RGB")
    if image.mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image.convert("RGBA" if "A" in image.mode else "RGB")
    return image


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

