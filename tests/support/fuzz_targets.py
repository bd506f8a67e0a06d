"""The fuzz targets, shared by the short run in `make test` (tests/unit/test_fuzz.py, hypothesis) and the long
one in `make fuzz` (fuzz/sidecar_fuzz.py, coverage-guided). Each takes any bytes and returns normally;
an exception escaping it is a finding. Failures the sidecar means (`SidecarError`: a 4xx) are fine.

- `url_target`: a request path (as the protocol decodes it, latin-1) through the parser, signed and
  unsigned. Whatever it accepts must be canonical: rebuilding the path from the parse gives the input.
- `image_target`: the first byte picks operations, the rest is an original, through the whole
  transform (decode -> transform -> encode) under small limits. Whatever it returns must decode again,
  with sides inside the limits. Each decode is also held to a time and a memory limit (`DECODE_SECONDS`,
  `PEAK_RSS`): the SVG and PDF decoders draw within a pixel budget derived from `max_pixels` and PDFium
  stops at its own timeout, so a slow or bloated decode is a finding, not just slowness.
  An animation must decode again frame by frame; `hostile_animations` adds seeds.
"""
from __future__ import annotations

import io
import resource
import struct
import time
from pathlib import Path

from PIL import Image, ImageSequence

from sidecar.errors import SidecarError
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops, parse
from tests.support.paths import DATA

ODD = DATA / "odd"
#: Per decode, under SETTINGS: a miss that takes longer, or a process that grows larger, is a finding.
DECODE_SECONDS = 15.0
PEAK_RSS = 3 * 1024**3
PREFIX = "/img"
MAX_SIDE = 256
SETTINGS = Settings(max_pixels=4_000_000, quality=75, background=(255, 255, 255), max_side=MAX_SIDE,
                    max_animation_pixels=40_000_000)
#: (operations, auto variant): small outputs, every fit and format, so each example stays cheap.
OPS: tuple[tuple[Ops, str | None], ...] = (
    (Ops("jpeg", width=64), None),
    (Ops("png", width=48, height=48, fit="fill"), None),
    (Ops("webp", height=40, fit="fit"), None),
    (Ops("jpeg", width=30, height=50, fit="force"), None),
    (Ops("jpeg", width=60, height=60, fit="fill", gravity="sm"), None),
    (Ops("auto", width=32), "legacy"),
    (Ops("auto", width=32), "webp"),
    (Ops("jpeg", width=300, enlarge=True, dpr=2, quality=40), None),
    (Ops("png"), None),
    (Ops("png", width=40, height=40, fit="pad", rotate=90, flip=True, background="00ff7f"), None),
    (Ops("webp", width=48, blur=2.5, sharpen=1), None),
    # animations: kept whole, a chosen frame, GIF out
    (Ops("gif", width=40), None),
    (Ops("webp", width=40, height=40, fit="fill", gravity="sm"), None),
    (Ops("auto", width=36), "avif"),
    (Ops("png", width=40, frame=2), None),
)


def url_target(data: bytes) -> None:
    path = data.decode("latin-1")
    for signed in (True, False):
        try:
            parsed = parse(path, prefix=PREFIX, signed=signed)
        except SidecarError:
            continue
        rebuilt = parsed.target.path(PREFIX, parsed.signature)
        assert rebuilt == path, f"accepted a non-canonical spelling: {path!r} is {rebuilt!r}"


def image_target(data: bytes) -> None:
    if not data:
        return
    ops, variant = OPS[data[0] % len(OPS)]
    started = time.monotonic()
    try:
        rendered = transform(data[1:], ops, SETTINGS, variant=variant)
    except SidecarError:
        return
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < DECODE_SECONDS, f"one transform took {elapsed:.1f} s"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert peak < PEAK_RSS, f"the process reached {peak >> 20} MiB"
    image = Image.open(io.BytesIO(rendered.data))
    image.load()
    assert image.size == rendered.size or rendered.original, (image.size, rendered.size)
    assert rendered.original or max(image.size) <= MAX_SIDE, image.size
    if rendered.animation == "animated" and not rendered.original:
        for frame in ImageSequence.Iterator(image):  # every frame decodes again, at the rendition's size
            frame.load()
            assert frame.size == rendered.size, (frame.size, rendered.size)


def hostile_animations() -> dict[str, bytes]:
    """Animations made to hurt: zero delays, a frame outside the logical screen, thousands of tiny
    frames, a truncated last frame, bad LZW; and an animated WebP and APNG. Seeds for both fuzzers."""
    colours = [Image.new("RGB", (24, 16), (40 * i, 255 - 40 * i, 90)) for i in range(5)]
    plain = _gif(colours, duration=0, loop=0)
    last = plain.rindex(b"\x2c")
    tiny = _gif([Image.new("P", (2, 2), 0), Image.new("P", (2, 2), 1)], duration=20)
    tiny_frame = tiny.rindex(b"\x21\xf9")
    transparent = [Image.new("RGBA", (20, 20), (0, 0, 0, 0)) for _ in range(3)]
    for i, frame in enumerate(transparent):
        frame.paste((255, 0, 0, 255), (i * 5, 5, i * 5 + 8, 13))
    return {
        "zero-delay.gif": plain,
        "outside-screen.gif": plain[: last + 1] + struct.pack("<HH", 200, 150) + plain[last + 5 :],
        "tiny-frames.gif": tiny[: tiny.index(b"\x21\xf9")] + tiny[tiny_frame:-1] * 5000 + b"\x3b",
        "truncated-last.gif": plain[: last + 20],
        "bad-lzw.gif": plain[: last + 10] + b"\x0c" + plain[last + 11 :],
        "garbage-lzw.gif": plain[: last + 12] + bytes(range(200, 0, -1)) + plain[last + 212 :],
        "sticker.gif": _gif(transparent, duration=50, loop=0, disposal=2),
        "animated.webp": _saved(colours, "WEBP", duration=40, loop=0),
        "animated.png": _saved(transparent, "PNG", duration=[30, 0, 60], loop=2),
    }


def _gif(frames: list[Image.Image], **options: object) -> bytes:
    return _saved(frames, "GIF", **options)


def _saved(frames: list[Image.Image], fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], **options)
    return out.getvalue()


def seeds(corpus: Path, max_bytes: int = 100_000) -> list[bytes]:
    """The small files of the shared corpus (../shared/corpus/real) and of tests/data/odd, plus one of
    each input of issue 16 made here (SVG, PDF, ICO, JPEG 2000, BigTIFF): the fuzzers' starting points."""
    files = [*sorted((corpus / "real").rglob("*")), *sorted(ODD.iterdir())]
    found = [p.read_bytes() for p in files
             if p.is_file() and p.suffix not in (".tsv", ".md") and p.stat().st_size <= max_bytes]
    return found + made_seeds() + list(hostile_animations().values())


def made_seeds() -> list[bytes]:
    """Small files of the newer formats, so the fuzzers start inside their decoders."""
    image = Image.new("RGB", (24, 16), (200, 30, 90))
    made = []
    for fmt, options in (("PDF", {}), ("ICO", {"sizes": [(16, 16)]}), ("JPEG2000", {}),
                         ("JPEG2000", {"no_jp2": True}), ("TIFF", {"big_tiff": True})):
        out = io.BytesIO()
        image.save(out, format=fmt, **options)
        made.append(out.getvalue())
    made.append(b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                b'width="30" height="20" viewBox="0 0 3 2"><defs><linearGradient id="g"><stop offset="0" '
                b'stop-color="red"/></linearGradient></defs><rect width="3" height="2" fill="url(#g)"/>'
                b'<use xlink:href="#g"/><text x="0" y="1" style="font-size:1px">a</text></svg>')
    return made
