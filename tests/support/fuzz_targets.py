"""The fuzz targets, shared by the short run in `make test` (tests/unit/test_fuzz.py, hypothesis) and the long
one in `make fuzz` (fuzz/sidecar_fuzz.py, coverage-guided). Each takes any bytes and returns normally;
an exception escaping it is a finding. Failures the sidecar means (`SidecarError`: a 4xx) are fine.

- `url_target`: a request path (as the protocol decodes it, latin-1) through the parser, signed and
  unsigned. Whatever it accepts must be canonical: rebuilding the path from the parse gives the input.
- `image_target`: the first byte picks operations, the rest is an original, through the whole
  transform (decode -> transform -> encode) under small limits. Whatever it returns must decode again,
  with sides inside the limits.
"""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from sidecar.errors import SidecarError
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops, parse

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
    try:
        rendered = transform(data[1:], ops, SETTINGS, variant=variant)
    except SidecarError:
        return
    image = Image.open(io.BytesIO(rendered.data))
    image.load()
    assert image.size == rendered.size or rendered.original, (image.size, rendered.size)
    assert rendered.original or max(image.size) <= MAX_SIDE, image.size


def seeds(corpus: Path, max_bytes: int = 100_000) -> list[bytes]:
    """The small files of the shared corpus (../shared/corpus/real), the fuzzers' starting points."""
    return [p.read_bytes() for p in sorted((corpus / "real").rglob("*"))
            if p.is_file() and p.suffix != ".tsv" and p.stat().st_size <= max_bytes]
