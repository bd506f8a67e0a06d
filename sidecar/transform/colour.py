"""Colour: every rendition is sRGB, 8 bits per channel, and carries no ICC profile.

Embedded profiles (Adobe RGB, Display P3, grey, CMYK...) are converted to sRGB with LittleCMS
(`PIL.ImageCms`), relative colorimetric with black-point compensation; CMYK and YCCK JPEGs without a
profile go through a standard CMYK profile (`Config.cmyk_profile`). The result is untagged, which every
browser shows as sRGB, so no profile bytes are spent on the output. Modes are first brought to ones that
resize smoothly: 16-bit is scaled to 8, palette and 1-bit images become RGB(A) or L.

RGB profiles are applied through a 3D lookup table (`_lut`): LittleCMS converts a 33x33x33 grid of
colours once per profile, and Pillow's `Color3DLUT` interpolates every pixel from it, five times faster
than LittleCMS per pixel on 8-bit RGB. Each table is checked against LittleCMS on the colours half-way
between its grid points when it is built: at least 94% of them within 2 levels (of 255) and none beyond
20; a profile the table cannot follow so closely (XYB, say) keeps the exact transform. The colours that
differ by more than 2 are saturated ones at or beyond the edge of sRGB's gamut, where clipping bends the
conversion between two grid points; photos hardly have them (`bench/grid.py` reports SSIM beside time).
"""
from __future__ import annotations

import io
import sys
from functools import lru_cache
from pathlib import Path
from typing import cast

from PIL import Image, ImageChops, ImageCms, ImageFilter

from sidecar.errors import Undecodable
from sidecar.transform import parallel

_SRGB = ImageCms.createProfile("sRGB")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: Modes with a direct conversion to a resizable one (premultiplied alpha is unpremultiplied).
_CONVERT_TO = {
    "1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB", "LAB": "RGB",
    "HSV": "RGB",
}
_RAW_ORDER = {"I;16B": "I;16B", "I;16N": "I;16B" if sys.byteorder == "big" else "I;16"}
RESIZABLE = ("L", "LA", "RGB", "RGBA", "CMYK")
LUT_SIZE = 33
#: How closely a profile's table must follow LittleCMS (8-bit levels, the largest of the channels): this
#: share of the probe's colours within CLOSE, and every one within WORST.
LUT_CLOSE, LUT_CLOSE_SHARE, LUT_WORST = 2, 0.94, 20


def _grid(points: list[int]) -> Image.Image:
    """Every combination of `points` on each channel as one row of RGB pixels, red varying fastest
    (`Color3DLUT`'s table order)."""
    data = bytes(v for b in points for g in points for r in points for v in (r, g, b))
    return Image.frombytes("RGB", (len(points) ** 3, 1), data)


_LUT_GRID = _grid([round(i * 255 / (LUT_SIZE - 1)) for i in range(LUT_SIZE)])
# Half-way between the grid's points: where interpolation is worst.
_LUT_PROBE = _grid([round((i + 0.5) * 255 / (LUT_SIZE - 1)) for i in range(LUT_SIZE - 1)])


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
    if in_mode == out_mode and in_mode in ("RGB", "RGBA"):
        lut = _lut(icc)
        if lut is not None:
            return parallel.filtered(image, lambda part: part.filter(lut))  # alpha passes through untouched
    transform = _transform(icc, in_mode, out_mode)
    if transform is None:
        return image if image.mode == out_mode else image.convert(out_mode)
    return _exact(image, transform)


def _exact(image: Image.Image, transform: ImageCms.ImageCmsTransform) -> Image.Image:
    converted = ImageCms.applyTransform(image, transform)
    assert converted is not None  # None only when applied in place
    return converted


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


@lru_cache(maxsize=64)
def _lut(icc: bytes) -> ImageFilter.Color3DLUT | None:
    """The profile's RGB -> sRGB conversion as a 3D table; None if it has no transform, or the table
    does not follow LittleCMS closely enough between its points (LUT_CLOSE, LUT_WORST)."""
    transform = _transform(icc, "RGB", "RGB")
    if transform is None:
        return None
    table = _exact(_LUT_GRID, transform).tobytes()
    lut = ImageFilter.Color3DLUT(LUT_SIZE, [value / 255 for value in table])
    error = ImageChops.difference(_LUT_PROBE.filter(lut), _exact(_LUT_PROBE, transform))
    red, green, blue = error.split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue).histogram()
    close = sum(worst[: LUT_CLOSE + 1]) >= LUT_CLOSE_SHARE * sum(worst)
    return lut if close and not any(worst[LUT_WORST + 1:]) else None


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

