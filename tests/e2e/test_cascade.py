"""The cascade through the real nginx: a smaller rendition made from a larger cached one, when allowed."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from sidecar.cache import cascade
from sidecar.cache.store import Cache
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.heads import with_heads
from tests.support.images import jpeg, photo
from tests.support.paths import SAMPLES
from tests.support.stack import Stack, Stacks

PHOTO = "redpanda-nikond80-3872x2592.jpg"
SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255), max_side=8192)


def direct(ops: Ops) -> Image.Image:
    image = Image.open(io.BytesIO(transform((SAMPLES / PHOTO).read_bytes(), ops, SETTINGS).data))
    image.load()
    return image.convert("RGB")


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    pa, pb = a.convert("RGB").tobytes(), b.convert("RGB").tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb)) / len(pa)


def source_of(stack: Stack, path: str) -> tuple[str, Image.Image]:
    reply = stack.get(path)
    assert reply.status == 200, reply.body
    return reply.headers["x-image-source"], reply.image()


def test_smaller_renditions_come_from_a_larger_cached_one(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES])
    assert source_of(stack, stack.url(PHOTO, width=1000))[0] == "local"  # the base, from the original
    # 400 wide needs 400/3872 of the original: 1000 px is 2.5 times that.
    kind, image = source_of(stack, stack.url(PHOTO, width=400))
    assert kind == "cascade" and image.size == (400, 268)
    assert mean_abs_diff(image, direct(Ops("jpeg", width=400))) < 3
    # Any crop of the full frame can be cut from it, at the same size and place as from the original.
    kind, image = source_of(stack, stack.url(PHOTO, width=200, height=200, fit="fill", gravity="e"))
    assert kind == "cascade" and image.size == (200, 200)
    assert mean_abs_diff(image, direct(Ops("jpeg", width=200, height=200, fit="fill", gravity="e"))) < 3
    kind, image = source_of(stack, stack.url(PHOTO, width=300, format="webp"))
    assert kind == "cascade" and image.format == "WEBP"
    lines = [r for r in stack.sidecar_requests() if r["status"] == 200]
    assert len(lines) == 4


def test_the_generation_rule_sends_close_sizes_to_the_original(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES])
    assert source_of(stack, stack.url(PHOTO, width=1000))[0] == "local"
    assert source_of(stack, stack.url(PHOTO, width=600))[0] == "local"          # 1000 < 2 x 600
    assert source_of(stack, stack.url(PHOTO, width=400, quality=95))[0] == "local"  # base is q82 < 95
    assert source_of(stack, stack.url(PHOTO, width=300, height=300, fit="force"))[0] == "cascade"
    assert source_of(stack, stack.url(PHOTO, width=200, fit="fill", height=100))[0] == "cascade"
    # A crop is no base for others: a 1000x1000 fill has lost the sides.
    other = stack_factory([SAMPLES])
    assert source_of(other, other.url(PHOTO, width=1000, height=1000, fit="fill"))[0] == "local"
    assert source_of(other, other.url(PHOTO, width=100))[0] == "local"


def test_face_gravity_reuses_the_faces_and_trim_never_derives(stack_factory: Stacks, tmp_path: Path) -> None:
    picture, _ = with_heads(photo(), [(1300, 250, 3.0)])
    (tmp_path / "face.jpg").write_bytes(jpeg(picture))
    stack = stack_factory([tmp_path])
    assert source_of(stack, stack.url("face.jpg", width=1000))[0] == "local"
    assert source_of(stack, stack.url("face.jpg", width=200, height=400, fit="fill", gravity="fc"))[0] == "local"
    directory = next(stack.config.cache.cache_dir.rglob(cascade.FACES_RECORD)).parent
    faces = asyncio.run(cascade.read(Cache(directory), ".", faces=True)).faces
    assert faces is not None and len(faces) == 1
    kind, image = source_of(stack, stack.url("face.jpg", width=100, height=200, fit="fill", gravity="fc"))
    assert kind == "cascade"
    direct_ops = Ops("jpeg", width=100, height=200, fit="fill", gravity="fc")
    direct_image = Image.open(io.BytesIO(transform(jpeg(picture), direct_ops, SETTINGS).data)).convert("RGB")
    assert mean_abs_diff(image, direct_image) < 4
    assert source_of(stack, stack.url("face.jpg", width=300, trim=True))[0] == "local"
