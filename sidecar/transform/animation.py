"""Animations: whether a rendition keeps one, within what budget, and its source frames one at a time.

An animated GIF, WebP, PNG (APNG) or AVIF keeps every frame when the output is `.gif`, `.webp`, `.avif` or
an `.auto` (animated WebP, else GIF) and the URL asks for no single frame (`fr{N}`). Whether it may is
decided from the file's structure before any pixel is decoded: frames times pixels per frame (each frame
counting at least `MIN_FRAME_PIXELS`, the fixed cost of a frame) within `max_animation_pixels`, else the
rendition is the first frame and says so (`FIRST_FRAME`).

Pillow composites each frame over the ones before it (disposal, transparency, frames smaller than the
logical screen): `later_frames` seeks one frame at a time, so only the current composited frame and
Pillow's previous one are ever held at full size. Durations follow what browsers play: a frame of 10 ms
or less (a zero delay, most often) shows for 100 ms.
"""
from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from sidecar.url.canonical import ANIMATED_FORMATS
from sidecar.url.ops import Ops

#: The rendition is the first frame of an animation over `max_animation_pixels` (X-Image-Animation).
FIRST_FRAME = "first-frame"
#: The rendition keeps the animation.
ANIMATED = "animated"
#: Each frame costs at least this many pixels' work (seek, composite, encode), whatever its size: so
#: thousands of tiny frames count as what they cost.
MIN_FRAME_PIXELS = 65_536
#: Browsers show frames of 10 ms or less for 100 ms (a GIF delay of 0 or 1 hundredth).
SHORTEST = 10
STANDARD = 100


@dataclass(frozen=True)
class Budget:
    """What decoding an animation costs, from its structure: frames and the canvas they are drawn on."""

    frames: int
    canvas: tuple[int, int]

    @property
    def pixels(self) -> int:
        return self.frames * max(self.canvas[0] * self.canvas[1], MIN_FRAME_PIXELS)

    def within(self, limit: int | None, frames: int | None = None) -> bool:
        """Whether `frames` of it (default: all) fit `limit` frames x pixels (None: no limit)."""
        counted = self.frames if frames is None else min(frames, self.frames)
        return limit is None or counted * max(self.canvas[0] * self.canvas[1], MIN_FRAME_PIXELS) <= limit


def keeps_animation(fmt: str, frame: int | None) -> bool:
    """Whether an output format (after `auto` is resolved) keeps an animation's frames."""
    return frame is None and fmt in ANIMATED_FORMATS


def animated_auto(frames: int, frame: int | None) -> bool:
    """Whether an `.auto` rendition of a source with `frames` is an animation (WebP or GIF, no AVIF)."""
    return frames > 1 and frame is None


def same_frames(candidate: Ops, target: Ops, target_format: str, frames: int) -> bool:
    """Whether a cached rendition of an animation of `frames` shows what the target does: both the
    animation (and the candidate no GIF), or both a still of the same frame."""
    if keeps_animation(target_format, target.frame):
        return keeps_animation(candidate.format, candidate.frame) and candidate.format != "gif"
    if keeps_animation(candidate.format, candidate.frame):
        return False
    return min(candidate.frame or 0, frames - 1) == min(target.frame or 0, frames - 1)


def duration(milliseconds: object) -> int:
    """A frame's duration as browsers play it (10 ms or less, or none: 100 ms)."""
    if not isinstance(milliseconds, (int, float)) or milliseconds <= SHORTEST:
        return STANDARD
    return min(int(milliseconds), 65_535)


def loop(info: Mapping[Any, object], fmt: str) -> int:
    """Plays before it stops, 0 forever. A GIF or APNG without a loop count plays once, WebP says it, and
    browsers loop AVIF sequences (pillow-avif-plugin does not read their edit list)."""
    if fmt == "AVIF":
        return 0
    value = info.get("loop")
    return value if isinstance(value, int) and 0 <= value <= 65_535 else 1


def timing(data: bytes, fmt: str, frames: int, delays: tuple[int, ...]) -> tuple[int, int]:
    """An animation's total duration in milliseconds as browsers play it, and its loop count (0: forever).
    GIF: from the structure (`delays`); the others' frames are walked (WebP's durations come with each
    frame's pixels)."""
    with Image.open(io.BytesIO(data), formats=[fmt]) as image:
        plays = loop(image.info, fmt)
        if delays:
            return sum(duration(delay) for delay in delays), plays
        total = 0
        for index in range(frames):
            try:
                image.seek(index)
                if fmt == "WEBP":
                    image.load()
            except Exception:  # noqa: BLE001  (a broken frame ends the animation, as in `later_frames`)
                break
            total += duration(image.info.get("duration"))
        return total, plays


def select(image: Image.Image, frame: int) -> int:
    """Seek `image` to `frame` (the last one if there are fewer), decoding the ones before it as Pillow
    composites them; return the frame reached. A broken frame on the way stops at the one before."""
    reached = 0
    for index in range(1, frame + 1):
        try:
            image.seek(index)
            image.load()
        except EOFError:
            break
        except Exception:  # noqa: BLE001  (truncated data, bad LZW...: the frames before it stand)
            image.seek(reached)
            image.load()
            break
        reached = index
    return reached


def later_frames(image: Image.Image, first_size: tuple[int, int], count: int) -> Iterator[tuple[Image.Image, int]]:
    """Frames 1 to `count - 1`, composited, each at `first_size` (the logical screen: browsers clip a frame
    sticking out of it), with its duration. A frame that does not decode (a truncated last frame, bad LZW)
    ends the animation: the frames before it play, as in browsers."""
    for index in range(1, count):
        try:
            image.seek(index)
            image.load()
        except Exception:  # noqa: BLE001  (EOFError: fewer frames than declared; else a broken frame)
            return
        frame = image if image.size == first_size else image.crop((0, 0, *first_size))
        yield frame, duration(image.info.get("duration"))
