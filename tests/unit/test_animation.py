"""Animations, with plain values: every frame resized alike, timing, loop and transparency kept, the
frame budget, stills of one frame, passthrough, the cascade's rule and hostile animations."""
from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageSequence, ImageStat

from sidecar.config import Watermark
from sidecar.errors import SidecarError
from sidecar.transform import animation
from sidecar.transform.headers import gif_layout, gif_stripped
from sidecar.transform.info import describe
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.images import encoded, gif, opened, pan

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255),
                    max_animation_pixels=500_000_000)



def sticker(frames: int = 6, side: int = 96) -> list[Image.Image]:
    """A transparent background with a red disc moving across it."""
    out = []
    for i in range(frames):
        image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        x = 8 + i * (side - 40) // max(1, frames - 1)
        ImageDraw.Draw(image).ellipse((x, 30, x + 32, 62), fill=(220, 20, 20, 255))
        out.append(image)
    return out



def decoded_frames(data: bytes) -> list[tuple[Image.Image, int]]:
    with Image.open(io.BytesIO(data)) as image:
        out = []
        for frame in ImageSequence.Iterator(image):
            frame.load()
            out.append((frame.convert("RGBA"), frame.info.get("duration")))
        return out


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255), both flattened on white."""
    def flat(image: Image.Image) -> Image.Image:
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image.convert("RGBA"))
        return canvas.convert("RGB")
    return sum(ImageStat.Stat(ImageChops.difference(flat(a), flat(b))).mean) / 3


@pytest.mark.parametrize("fmt", ["gif", "webp", "avif"])
def test_every_frame_is_resized_and_keeps_its_duration(fmt: str) -> None:
    source = pan()
    durations = [60, 80, 100, 120, 60, 80, 100, 120]
    data = gif(source, durations, loop=0)
    rendered = transform(data, Ops(fmt, width=80), SETTINGS)
    assert rendered.format == fmt and rendered.size == (80, 60) and rendered.animation == animation.ANIMATED
    frames = decoded_frames(rendered.data)
    assert len(frames) == len(source)
    for (frame, ms), original, wanted in zip(frames, source, durations):
        assert frame.size == (80, 60)
        assert difference(frame, original.resize((80, 60), Image.Resampling.LANCZOS)) < 8
        if fmt != "avif":  # pillow-avif-plugin reads a sequence's timescale in its own rounding
            assert ms == wanted
    if fmt != "avif":
        assert opened(rendered.data).info.get("loop") == 0


def test_the_same_geometry_and_restyling_on_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "mark.png"
    Image.new("RGBA", (20, 20), (0, 0, 255, 255)).save(path)
    mark = Watermark(path, position="se", opacity=1.0, scale=0.2, min_size=0, margin=0.0)
    settings = Settings(max_pixels=50_000_000, quality=90, background=(255, 255, 255), watermarks={"logo": mark})
    data = gif(pan(4, (160, 120)))
    ops = Ops("webp", width=100, height=100, fit="pad", background="00ff00", rotate=90, flip=True, watermark="logo")
    frames = decoded_frames(transform(data, ops, settings).data)
    assert len(frames) == 4
    for frame, _ in frames:
        assert frame.size == (100, 100)
        left, right = frame.getpixel((2, 50)), frame.getpixel((97, 50))
        assert left[1] > 200 and left[0] < 60 and right[1] > 200  # padded sides, in the URL's background
        corner = frame.getpixel((97, 97))
        assert corner[2] > 200 and corner[0] < 60  # the watermark, on every frame


def test_transparency_is_kept_on_every_frame_and_nothing_trails() -> None:
    data = gif(sticker(), 50, loop=0, disposal=2)
    for fmt in ("gif", "webp"):
        frames = decoded_frames(transform(data, Ops(fmt, width=48), SETTINGS).data)
        assert len(frames) == 6
        for index, (frame, _) in enumerate(frames):
            assert frame.getpixel((0, 0))[3] == 0, (fmt, index)  # the corner stays clear
            x = 4 + index * 28 // 5 + 8
            assert frame.getpixel((x, 23))[0] > 150 and frame.getpixel((x, 23))[3] > 200, (fmt, index)
        # the disc's first place is clear again once it has moved on (disposal)
        assert frames[-1][0].getpixel((12, 23))[3] == 0, fmt


def test_disposal_and_partial_frames_play_as_in_the_original() -> None:
    corpus = Path("/work/shared/corpus/real/gif/animated_dispose_bgnd.gif")
    if not corpus.is_file():
        pytest.skip("no shared corpus")
    data = corpus.read_bytes()
    source = decoded_frames(data)
    for fmt in ("gif", "webp"):
        out = decoded_frames(transform(data, Ops(fmt, width=50), SETTINGS).data)
        assert len(out) == len(source)
        for (frame, _), (original, _) in zip(out, source):
            assert difference(frame, original.resize(frame.size, Image.Resampling.LANCZOS)) < 12, fmt


def test_auto_is_animated_webp_for_webp_and_avif_clients_and_gif_for_the_rest() -> None:
    data = gif(pan(4))
    assert transform(data, Ops("auto", width=80), SETTINGS, variant="webp").format == "webp"
    assert transform(data, Ops("auto", width=80), SETTINGS, variant="avif").format == "webp"
    legacy = transform(data, Ops("auto", width=80), SETTINGS, variant="legacy")
    assert legacy.format == "gif" and getattr(opened(legacy.data), "n_frames", 1) == 4
    # a chosen frame is a still: the usual formats
    assert transform(data, Ops("auto", width=80, frame=0), SETTINGS, variant="legacy").format == "png"


def test_jpg_and_png_are_the_first_frame_and_fr_picks_another() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    data = gif([Image.new("RGB", (40, 40), c) for c in colours])
    for fmt in ("jpeg", "png"):
        still = transform(data, Ops(fmt, width=20), SETTINGS)
        assert getattr(opened(still.data), "n_frames", 1) == 1 and still.animation == ""
        assert opened(still.data).convert("RGB").getpixel((10, 10))[0] > 200
    second = transform(data, Ops("webp", width=20, frame=1), SETTINGS)
    assert getattr(opened(second.data), "n_frames", 1) == 1
    assert opened(second.data).convert("RGB").getpixel((10, 10))[1] > 200
    past = opened(transform(data, Ops("png", frame=99), SETTINGS).data).convert("RGB")  # past the end: the last
    assert past.getpixel((10, 10)) == (0, 0, 255)


def test_over_the_budget_the_first_frame_says_so() -> None:
    data = gif(pan(8))  # 8 frames of 160x120, each counted at MIN_FRAME_PIXELS
    tight = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255),
                     max_animation_pixels=7 * animation.MIN_FRAME_PIXELS)
    rendered = transform(data, Ops("gif", width=80), tight)
    assert rendered.animation == animation.FIRST_FRAME and rendered.format == "gif"
    assert getattr(opened(rendered.data), "n_frames", 1) == 1
    # a still of a frame past the budget is the first frame too; within it, the frame asked for
    assert transform(data, Ops("png", width=80, frame=7), tight).animation == animation.FIRST_FRAME
    assert transform(data, Ops("png", width=80, frame=6), tight).animation == ""


def test_budget_counts_frames_times_pixels_with_a_floor_per_frame() -> None:
    assert animation.Budget(10, (1000, 1000)).pixels == 10_000_000
    assert animation.Budget(1000, (1, 1)).pixels == 1000 * animation.MIN_FRAME_PIXELS
    assert animation.Budget(10, (1000, 1000)).within(10_000_000)
    assert not animation.Budget(11, (1000, 1000)).within(10_000_000)
    assert animation.Budget(11, (1000, 1000)).within(10_000_000, frames=10)
    assert animation.Budget(11, (1000, 1000)).within(None)


def test_an_animated_gif_at_its_own_size_and_format_is_passed_untouched() -> None:
    data = gif(pan(4), loop=0)
    data = data[:-1] + b"\x21\xfe\x05hello\x00" + b"\x3b"  # a comment before the trailer: dropped
    rendered = transform(data, Ops("gif"), SETTINGS)
    assert rendered.original and rendered.data == data[:-10] + b"\x3b"
    webp = transform(gif(pan(4)), Ops("webp"), SETTINGS).data
    again = transform(webp, Ops("webp"), SETTINGS)  # an animated WebP at its own size and format
    assert again.original and again.data == webp


def test_gif_stripped_keeps_the_loop_and_refuses_what_does_not_end_well() -> None:
    data = gif(pan(2), loop=3)
    assert gif_stripped(data) == data  # no comment here; the NETSCAPE loop stays
    assert opened(gif_stripped(data) or b"").info["loop"] == 3
    assert gif_stripped(data[:-1]) is None  # no trailer
    assert gif_stripped(data[:-40]) is None  # truncated inside a frame
    assert gif_stripped(data + b"junk") is None


def test_durations_and_loops_as_browsers_play_them() -> None:
    assert [animation.duration(v) for v in (0, 10, 11, 20, None, 70_000)] == [100, 100, 11, 20, 100, 65_535]
    assert animation.loop({}, "GIF") == 1 and animation.loop({"loop": 0}, "GIF") == 0
    assert animation.loop({"loop": 3}, "WEBP") == 3 and animation.loop({}, "AVIF") == 0


def test_the_cascade_derives_animations_from_animations_and_stills_from_the_same_frame() -> None:
    same = animation.same_frames
    assert same(Ops("webp", width=400), Ops("gif", width=100), "gif", 10)
    assert not same(Ops("gif", width=400), Ops("webp", width=100), "webp", 10)  # palette twice
    assert not same(Ops("jpeg", width=400), Ops("webp", width=100), "webp", 10)  # a still is no animation
    assert not same(Ops("webp", width=400), Ops("jpeg", width=100), "jpeg", 10)
    assert same(Ops("jpeg", width=400), Ops("png", width=100), "png", 10)
    assert same(Ops("webp", width=400, frame=0), Ops("jpeg", width=100), "jpeg", 10)
    assert not same(Ops("webp", width=400, frame=3), Ops("jpeg", width=100), "jpeg", 10)
    assert same(Ops("png", width=400, frame=12), Ops("png", width=100, frame=9), "png", 10)  # both the last


def test_info_tells_frames_duration_and_loop() -> None:
    facts = describe(gif(pan(4), [100, 200, 0, 50], loop=0), SETTINGS)
    assert facts["animated"] and facts["frames"] == 4
    assert facts["duration_ms"] == 100 + 200 + 100 + 50 and facts["loop"] == 0
    webp = transform(gif(pan(3), 120, loop=2), Ops("webp", width=60), SETTINGS).data
    facts = describe(webp, SETTINGS)
    assert facts["frames"] == 3 and facts["duration_ms"] == 360 and facts["loop"] == 2
    still = describe(encoded(pan(1)[0], "PNG"), SETTINGS)
    assert still["duration_ms"] is None and still["loop"] is None


# Hostile animations: a clear 4xx or a still, never a hang.

def _tiny_gif(frames: int) -> bytes:
    """`frames` frames of 2x2 pixels: one frame's blocks written by Pillow, repeated."""
    one = gif([Image.new("P", (2, 2), 0), Image.new("P", (2, 2), 1)], 20)
    second = one.rindex(b"\x21\xf9")
    return one[:second] * 0 + one[: one.index(b"\x21\xf9")] + one[second:-1] * frames + b"\x3b"


def _moved(data: bytes, left: int, top: int) -> bytes:
    """The GIF with its last frame's image descriptor moved to (left, top)."""
    last = data.rindex(b"\x2c")
    return data[: last + 1] + struct.pack("<HH", left, top) + data[last + 5 :]


def test_zero_delay_frames_play_at_100_ms() -> None:
    data = gif(pan(3), 0)
    frames = decoded_frames(transform(data, Ops("webp", width=80), SETTINGS).data)
    assert [ms for _, ms in frames] == [100, 100, 100]


def test_frames_outside_the_logical_screen_are_clipped_to_it() -> None:
    data = _moved(gif([Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))]), 15, 15)
    assert gif_layout(data).canvas == (35, 35)
    rendered = transform(data, Ops("webp", width=10), SETTINGS)
    frames = decoded_frames(rendered.data)
    assert all(frame.size == (10, 10) for frame, _ in frames) and rendered.size == (10, 10)


def test_thousands_of_tiny_frames_are_a_still_in_bounded_time() -> None:
    data = _tiny_gif(20_000)
    assert gif_layout(data).frames == 20_000
    started = time.perf_counter()
    rendered = transform(data, Ops("gif"), Settings(max_pixels=50_000_000, quality=82, background=(0, 0, 0),
                                                     max_animation_pixels=100_000_000))
    assert rendered.animation == animation.FIRST_FRAME  # 20,000 frames count as 20,000 x 65,536 pixels
    assert time.perf_counter() - started < 10


def test_a_truncated_last_frame_ends_the_animation_before_it() -> None:
    data = gif(pan(5))
    end = data.rindex(b"\x2c")  # the last frame's image descriptor
    truncated = data[: end + 30]
    rendered = transform(truncated, Ops("webp", width=80), SETTINGS)
    assert len(decoded_frames(rendered.data)) == 4


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("damage", ["code size 12", "garbage codes", "no data"])
def test_bad_lzw_is_a_4xx_or_an_image_never_a_crash(where: str, damage: str) -> None:
    good = gif(pan(3))
    at = good.index(b"\x2c") if where == "first" else good.rindex(b"\x2c")
    size_at = at + 10  # image descriptor, then (no local colour table) the LZW minimum code size
    if damage == "code size 12":
        data = good[:size_at] + b"\x0c" + good[size_at + 1 :]
    elif damage == "garbage codes":
        data = good[: size_at + 2] + bytes(range(250, 0, -1)) + good[size_at + 252 :]
    else:
        data = good[: size_at + 1] + b"\x00\x3b"
    try:
        rendered = transform(data, Ops("webp", width=80), SETTINGS)
    except SidecarError as exc:
        assert 400 <= exc.status < 500
    else:
        assert 1 <= len(decoded_frames(rendered.data)) <= 3


def test_trim_cuts_every_frame_by_the_first_frames_box() -> None:
    # A pan on a white border whose content shrinks: each frame alone would trim to another size.
    framed = []
    for index, frame in enumerate(pan(frames=4, size=(80, 60))):
        canvas = Image.new("RGB", (140, 100), "white")
        canvas.paste(frame.crop((0, 0, 80 - 12 * index, 60 - 8 * index)), (20, 20))
        framed.append(canvas)
    out = transform(gif(framed), Ops("webp", trim=10), SETTINGS)
    shown = decoded_frames(out.data)
    assert len(shown) == 4
    assert {image.size for image, _ in shown} == {out.size}
    # Frame 0's content is 80 wide from x=20: the box is that, within a JPEG-free GIF's exactness.
    assert abs(out.size[0] - 80) <= 2 and abs(out.size[1] - 60) <= 2
