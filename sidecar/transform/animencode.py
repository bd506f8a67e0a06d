"""Encoding an animation, one frame at a time: each resized frame goes to the encoder as it is made, so
only the encoder's own state grows with the number of frames.

WebP and AVIF go straight to libwebp's and libavif's animation encoders (the C encoders Pillow's and
pillow-avif-plugin's `save_all` drive, which would first want every frame in a list). GIF goes through
Pillow's GIF writer, which takes the frames as a generator and keeps each one as 8-bit palette pixels
(or only the part that changed): a palette per frame, quantised from the frame's own colours; alpha
below half is transparent, the rest opaque (GIF has no partial transparency).
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from PIL import Image, ImageChops, ImageStat, _webp
from pillow_avif import _avif  # type: ignore[attr-defined,import-untyped]

#: No keyframes but the first (libvips' default): each keyframe candidate is one more encode of the frame,
#: and browsers play from the start anyway (a 6-frame WebP: 15 ms instead of 39 with gif2webp's 3 and 5).
_WEBP_KMIN, _WEBP_KMAX = 2**31 - 2, 2**31 - 1
#: libwebp's effort for animations: 2 takes 55% of the time of 4 (stills' setting) for 2% more bytes
#: (60 frames of a pan over a photo at 320x240: docs/benchmarks.md).
_WEBP_METHOD = 2
_AVIF_SPEED = 8
_GIF_ALPHA_THRESHOLD = 128
_GIF_COLOURS = 256
#: Mean error per channel above which a frame gets a palette of its own (a first frame's palette
#: typically leaves 2-4 on photos).
_GIF_PALETTE_ERROR = 6.0


def encode(frames: Iterable[tuple[Image.Image, int]], fmt: str, quality: int, loop: int) -> bytes:
    """The animation of `frames` (image, milliseconds; all the first one's size) as `fmt`: gif, webp or
    avif. `loop`: plays, 0 forever (AVIF sequences always loop)."""
    frames = iter(frames)
    first, first_ms = next(frames)
    mode = "RGBA" if "A" in first.mode else "RGB"
    converted = ((_mode(image, mode), ms) for image, ms in _chain((first, first_ms), frames))
    if fmt == "webp":
        return _webp_animation(converted, first.size, quality, loop)
    if fmt == "avif":
        return _avif_animation(converted, first.size, quality)
    return _gif_animation(converted, loop, transparent=mode == "RGBA")


def _chain(first: tuple[Image.Image, int],
           rest: Iterator[tuple[Image.Image, int]]) -> Iterator[tuple[Image.Image, int]]:
    yield first
    yield from rest


def _mode(image: Image.Image, mode: str) -> Image.Image:
    return image if image.mode == mode else image.convert(mode)


def _webp_animation(frames: Iterable[tuple[Image.Image, int]], size: tuple[int, int], quality: int,
                    loop: int) -> bytes:
    encoder = _webp.WebPAnimEncoder(size, 0, loop, False, _WEBP_KMIN, _WEBP_KMAX, False, False)
    timestamp = 0
    for image, ms in frames:
        image.load()
        encoder.add(image.getim(), timestamp, False, quality, 100, _WEBP_METHOD)
        timestamp += ms
    encoder.add(None, timestamp, False, quality, 100, 0)
    data = encoder.assemble(b"", b"", b"")
    if data is None:
        raise OSError("the WebP animation encoder returned nothing")
    return bytes(data)


def _avif_animation(frames: Iterable[tuple[Image.Image, int]], size: tuple[int, int], quality: int) -> bytes:
    encoder = _avif.AvifEncoder(size[0], size[1], "4:2:0", -1, -1, quality, _AVIF_SPEED, 1, "auto", "full",
                                0, 0, False, True, b"", b"", 1, b"", None)
    for image, ms in frames:
        encoder.add(image.tobytes("raw", image.mode), ms, image.width, image.height, image.mode, False)
    data = encoder.finish()
    if data is None:
        raise OSError("the AVIF encoder returned nothing")
    return bytes(data)


def _gif_animation(frames: Iterable[tuple[Image.Image, int]], loop: int, *, transparent: bool) -> bytes:
    palette = _Palette(transparent)
    paletted = (palette.frame(image, ms) for image, ms in frames)
    first = next(paletted)
    options: dict[str, object] = {"disposal": 2 if transparent else 1}
    if loop != 1:  # no loop extension: plays once
        options["loop"] = loop
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=paletted, **options)
    return out.getvalue()


class _Palette:
    """One palette for the frames, made from the first: unchanged pixels keep their index from frame to
    frame (no dithering), so the GIF writer stores only what changed. A frame the palette does not suit
    gets its own, which the next frames then share. With transparency, the last index
    is transparent, and alpha below half is transparent, the rest opaque."""

    def __init__(self, transparent: bool) -> None:
        self.transparent = transparent
        self.image: Image.Image | None = None

    def frame(self, image: Image.Image, ms: int) -> Image.Image:
        rgb = image.convert("RGB") if self.transparent else image
        paletted = None if self.image is None else rgb.quantize(palette=self.image, dither=Image.Dither.NONE)
        if paletted is None or _error(rgb, paletted) > _GIF_PALETTE_ERROR:
            # The first frame, or one whose colours the palette misses: a palette of its own, kept for the next.
            colours = _GIF_COLOURS - 1 if self.transparent else _GIF_COLOURS
            paletted = self.image = rgb.quantize(colours, method=Image.Quantize.MEDIANCUT)
            paletted = paletted.copy()
        if self.transparent:
            clear = image.getchannel("A").point(lambda a: 255 if a < _GIF_ALPHA_THRESHOLD else 0, "1")
            paletted.paste(_GIF_COLOURS - 1, mask=clear)
            paletted.info["transparency"] = _GIF_COLOURS - 1
        paletted.info["duration"] = ms
        return paletted


def _error(rgb: Image.Image, paletted: Image.Image) -> float:
    """The mean difference per channel (0-255) between a frame and its paletted version."""
    return sum(ImageStat.Stat(ImageChops.difference(rgb, paletted.convert("RGB"))).mean) / 3
