"""The cascade through the real nginx: a smaller rendition made from a larger cached one, when allowed."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from conftest import SAMPLES, Stack
from PIL import Image

from sidecar.cache import cascade
from sidecar.cache.store import Cache
from sidecar.transform.pipeline import Settings, Source, transform
from sidecar.url.grammar import Ops

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


def test_smaller_renditions_come_from_a_larger_cached_one(stack_factory) -> None:  # type: ignore[no-untyped-def]
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


def test_the_generation_rule_sends_close_sizes_to_the_original(stack_factory) -> None:  # type: ignore[no-untyped-def]
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


def test_restyled_renditions_are_no_base_but_hinted_ones_are() -> None:
    directory, photo = "/img/ab/cd/photo.jpg", Source((4000, 2000), "JPEG", 90, False)
    target = Ops("jpeg", width=400)
    names = [cascade.SOURCE_RECORD, ".lock-w400.jpg"]
    for name in ("w2000-r90.jpg", "w2000-flip.jpg", "w2000-bl2.jpg", "w2000-sh1.jpg", "w2000-bg000000.jpg",
                 "w2000-h1000-pad.jpg", f"info.{'B' * 16}.json"):
        names.append(name)
        assert cascade.choose(directory, photo, names, target, None, SETTINGS) is None, name
    names += [f"w100-ch.{'B' * 16}.jpg.w1920.jpg", "w2000-sh0.jpg"]  # a 1920-wide plain fit, a 2000-wide one
    found = cascade.choose(directory, photo, names, target, None, SETTINGS)
    assert found == cascade.Candidate(f"{directory}/w100-ch.{'B' * 16}.jpg.w1920.jpg", photo)  # the smaller
    assert cascade.choose(directory, photo, names, Ops("jpeg"), None, SETTINGS) is None  # the original's size
    # A JPEG of an original with transparency was flattened: no base for anything.
    logo = Source((4000, 2000), "PNG", None, True)
    assert cascade.choose("/img/ab/cd/logo.png", logo, ["w2000.jpg"], Ops("png", width=400), None, SETTINGS) is None
    assert cascade.choose("/img/ab/cd/logo.png", logo, ["w2000.png"], Ops("png", width=400), None, SETTINGS)


def test_the_records_of_an_original_round_trip_and_refuse_anything_else(tmp_path: Path) -> None:
    photo, directory = Source((4000, 2000), "JPEG", None, False), "/img/ab/cd/photo.jpg"
    faces = ((0.25, 0.1, 0.5, 0.4),)
    cache = Cache(tmp_path)

    async def scenario() -> None:
        assert await cascade.read(cache, directory, faces=True) == cascade.Records()
        await cascade.record(cache, directory, photo)
        await cascade.record_faces(cache, directory, faces)
        assert await cascade.read(cache, directory, faces=False) == cascade.Records(photo)
        known = await cascade.read(cache, directory, faces=True)
        assert known == cascade.Records(photo, faces)
        await cache.write(f"{directory}/w2000.jpg", b"x")
        found = await cascade.find(cache, directory, known, Ops("jpeg", width=400), None, SETTINGS)
        assert found == cascade.Candidate(f"{directory}/w2000.jpg", photo, faces)
        assert await cascade.find(cache, directory, known, Ops("jpeg", width=400, trim=10), None, SETTINGS) is None
        fc = Ops("jpeg", width=400, height=400, fit="fill", gravity="fc")
        assert await cascade.find(cache, directory, cascade.Records(photo), fc, None, SETTINGS) is None

    asyncio.run(scenario())
    for bad in (b"", b"[]", b'{"size": [1]}', b'{"size": [1, 2], "format": "JPEG"}', b"\xff"):
        with pytest.raises(ValueError):
            cascade.parse_record(bad)
    for bad in (b"{}", b"[[0.1]]", b"[[0.5, 0.1, 0.2, 0.4]]", b'[["a", 0, 1, 1]]'):
        with pytest.raises(ValueError):
            cascade.parse_faces(bad)


def test_face_gravity_reuses_the_faces_and_trim_never_derives(stack_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_aware_crops import jpeg, photo, with_heads

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
