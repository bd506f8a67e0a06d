"""Animations through the real nginx: `.auto` by Accept (hits included), GIF files, the cascade's rule,
purge and info."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from PIL import Image

from sidecar.builder import build_info_url
from tests.support.images import encoded
from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir
from tests.support.stack import Stack, make_stack

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
OLD_FIREFOX = "image/webp,*/*"
CURL = "*/*"


def frames(data: bytes) -> int:
    return getattr(Image.open(io.BytesIO(data)), "n_frames", 1)


def pan_gif() -> bytes:
    with Image.open(SAMPLES / "road-1920x1080.jpg") as photo:
        photo.draft("RGB", (960, 540))
        small = photo.convert("RGB").resize((960, 540))
        small.info = {}
    shots = [small.crop((i * 40, 100, i * 40 + 480, 460)) for i in range(6)]
    return encoded(shots[0], "GIF", save_all=True, append_images=shots[1:], duration=[80, 80, 80, 80, 80, 200],
                   loop=0)


@pytest.fixture(scope="module")
def animated() -> Iterator[Stack]:
    with readable_tempdir() as source:
        (source / "pan.gif").write_bytes(pan_gif())
        stack = make_stack([source])
        yield stack
        stack.close()


@pytest.mark.parametrize("accept, content_type", [
    (CHROME, "image/webp"), (OLD_FIREFOX, "image/webp"), (CURL, "image/gif"),
])
def test_auto_keeps_the_animation_as_webp_or_gif_and_hits_find_the_file(animated: Stack, accept: str,
                                                                         content_type: str) -> None:
    path = animated.url("pan.gif", width=240, format="auto")
    before = len(animated.sidecar_requests())
    for _ in range(2):
        reply = animated.get(path, headers={"Accept": accept})
        assert reply.status == 200 and reply.headers["content-type"] == content_type
        assert reply.headers["vary"] == "Accept"
        assert frames(reply.body) == 6 and reply.image().size == (240, 180)
    assert len(animated.sidecar_requests()) <= before + 1, "the second request was not a hit"


def test_a_gif_rendition_is_a_gif_file(animated: Stack) -> None:
    path = animated.url("pan.gif", width=200, format="gif")
    for _ in range(2):
        reply = animated.get(path)
        assert reply.status == 200 and reply.headers["content-type"] == "image/gif"
        assert frames(reply.body) == 6


def test_the_cascade_derives_animations_from_animations_and_stills_from_stills(animated: Stack) -> None:
    def get(**ops: object) -> tuple[str, bytes]:
        reply = animated.get(animated.url("pan.gif", **ops))
        assert reply.status == 200, reply.body
        return reply.headers["x-image-source"], reply.body

    assert get(width=400, format="webp")[0] != "cascade"  # the first: from the original
    source, body = get(width=100, format="webp")
    assert source == "cascade" and frames(body) == 6
    source, body = get(width=90, format="jpg")  # a still: not from the animation
    assert source != "cascade" and frames(body) == 1
    source, body = get(width=40, format="png")  # but from that still
    assert source == "cascade" and frames(body) == 1
    source, body = get(width=40, format="png", frame=5)  # another frame: not from frame 0
    assert source != "cascade"


def test_info_tells_frames_duration_and_loop(animated: Stack) -> None:
    reply = animated.get(build_info_url(animated.config, "pan.gif"))
    assert reply.status == 200
    facts = json.loads(reply.body)
    assert facts["animated"] and facts["frames"] == 6
    assert facts["duration_ms"] == 5 * 80 + 200 and facts["loop"] == 0
