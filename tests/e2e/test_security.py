"""Hostile requests through real nginx: expiring URLs, the size limits, long URLs, animation bombs,
keys that try to reach outside the configured sources, and the socket's mode."""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from sidecar import config as config_module
from sidecar.errors import BadRequest
from sidecar.server.listen import bind
from sidecar.transform.animation import MIN_FRAME_PIXELS
from sidecar.url.grammar import Ops, Rendition
from sidecar.url.signing import Signer
from tests.support.images import encoded
from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir
from tests.support.servers import Origin
from tests.support.stack import SIGNING_KEY, Stack, Stacks, make_stack

PHOTO = "road-1920x1080.jpg"
MAX_URL = 300
ANIMATION_LIMIT = MIN_FRAME_PIXELS * 10  # ten 64x64 frames (each counts at least MIN_FRAME_PIXELS)


def signed(stack: Stack, key: str, ops: Ops) -> str:
    """A correctly signed URL the builder itself would refuse to make."""
    rendition = Rendition(key, ops)
    return rendition.path(stack.config.urls.url_prefix, Signer((SIGNING_KEY,)).sign(rendition.payload))


def animation(frames: int) -> bytes:
    images = [Image.new("RGB", (64, 64), (i * 20 % 256, 0, 0)) for i in range(frames)]
    return encoded(images[0], "GIF", save_all=True, append_images=images[1:], duration=40)


@pytest.fixture(scope="module")
def limited() -> Iterator[Stack]:
    with readable_tempdir() as source:
        shutil.copy(SAMPLES / PHOTO, source / PHOTO)
        (source / "ten.gif").write_bytes(animation(10))
        (source / "eleven.gif").write_bytes(animation(11))
        stack = make_stack([source], extra=f'allowed_sizes = ["200x", "64x", "100x100"]\n'
                                           f"max_url_length = {MAX_URL}\nmax_animation_pixels = {ANIMATION_LIMIT}\n")
        yield stack
        stack.close()


def test_an_expiring_url_works_until_its_second_and_is_never_cached_past_it(limited: Stack) -> None:
    expires = int(time.time()) + 600
    url = limited.url(PHOTO, width=200, expires=expires)
    assert re.search(r"/w200-e\d+\.[A-Za-z0-9_-]{16}\.jpg$", url)
    renditions = limited.metric("resize_sidecar_renditions_total")
    for _ in range(2):  # the second is not a plain hit: the sidecar checks the expiry every time
        reply = limited.get(url)
        assert reply.status == 200 and reply.image().width == 200
        found = re.fullmatch(r"public, max-age=(\d+)", reply.headers["cache-control"])
        assert found is not None, reply.headers["cache-control"]
        max_age = int(found[1])
        assert 590 <= max_age <= 600
        assert "x-image-max-age" not in reply.headers
    plain = limited.get(limited.url(PHOTO, width=200))  # the same rendition without expiry: one file
    assert plain.status == 200 and plain.body == reply.body
    assert "immutable" in plain.headers["cache-control"]
    assert limited.metric("resize_sidecar_renditions_total") == renditions + 1
    assert len(limited.sidecar_requests()) >= 2


def test_an_expired_url_is_403_even_when_its_rendition_is_cached(limited: Stack) -> None:
    assert limited.get(limited.url(PHOTO, width=64)).status == 200  # cached now
    expired = limited.url(PHOTO, width=64, expires=int(time.time()) - 5)
    reply = limited.get(expired)
    assert reply.status == 403 and b"expired" in reply.body


def test_changing_the_expiry_breaks_the_signature(limited: Stack) -> None:
    url = limited.url(PHOTO, width=64, expires=int(time.time()) - 5)
    later = re.sub(r"-e(\d+)\.", lambda m: f"-e{int(m[1]) + 10**6}.", url)
    reply = limited.get(later)
    assert reply.status == 403 and b"invalid signature" in reply.body


def test_sizes_outside_allowed_sizes_are_400_even_when_signed(limited: Stack) -> None:
    assert limited.get(limited.url(PHOTO, width=100, height=100, fit="fill")).status == 200
    for ops in (Ops("jpeg", width=201), Ops("jpeg", width=100, height=101, fit="fill"), Ops("jpeg", height=200)):
        reply = limited.get(signed(limited, PHOTO, ops))
        assert reply.status == 400 and b"allowed_sizes" in reply.body, ops


def test_a_url_over_max_url_length_is_414(limited: Stack) -> None:
    key = "/".join(["a" * 100] * 3) + ".jpg"  # over MAX_URL in all, each segment valid
    reply = limited.get(signed(limited, key, Ops("jpeg", width=200)))
    assert reply.status == 414


def test_an_animation_over_its_budget_is_its_first_frame_said_in_a_header_and_counted(limited: Stack) -> None:
    kept = limited.get(limited.url("ten.gif", width=64, format="gif"))
    assert kept.status == 200 and kept.headers["content-type"] == "image/gif"
    assert getattr(Image.open(io.BytesIO(kept.body)), "n_frames", 1) == 10
    assert "x-image-animation" not in kept.headers
    before = limited.metric("resize_sidecar_animations_total", result="first-frame")
    still = limited.get(limited.url("eleven.gif", width=64, format="gif"))
    assert still.status == 200 and still.headers["x-image-animation"] == "first-frame"
    assert getattr(Image.open(io.BytesIO(still.body)), "n_frames", 1) == 1
    assert limited.metric("resize_sidecar_animations_total", result="first-frame") == before + 1
    assert limited.get(limited.url("eleven.gif", width=64, format="png")).status == 200  # a still anyway


def test_presets_only_serves_the_presets_and_nothing_else(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], signed=False,
                          extra='presets_only = true\n[presets.thumb]\nwidth = 120\nheight = 120\nfit = "fill"\n')
    assert stack.get(stack.url(PHOTO, preset="thumb")).status == 200
    assert stack.get(stack.url(PHOTO, preset="thumb", format="webp")).status == 200
    for path in (f"{stack.url(PHOTO, preset='thumb').rsplit('/', 1)[0]}/w121-h120-fill.jpg",
                 f"{stack.url(PHOTO, preset='thumb').rsplit('/', 1)[0]}/w120.jpg"):
        reply = stack.get(path)
        assert reply.status == 400 and b"presets" in reply.body, path


@pytest.fixture(scope="module")
def via_origin(origin: Origin) -> Iterator[Stack]:
    stack = make_stack([origin.base + "/files/"])
    yield stack
    stack.close()


@pytest.mark.parametrize("key", ["http:/evil.example/x.jpg", "a/../../etc/passwd", "x?y=1.jpg", "x#frag.jpg",
                                 "@evil.example/x.jpg", "a\\..\\b.jpg", "%2e%2e/x.jpg", "//evil.example/x.jpg",
                                 "a/./b.jpg", "x\r\nHost: evil.example.jpg"])
def test_keys_map_onto_the_configured_origin_only(via_origin: Stack, origin: Origin, key: str) -> None:
    before = dict(origin.requests)
    try:
        path = signed(via_origin, key, Ops("jpeg", width=50))
    except BadRequest:  # not even a valid key: written out by hand, the grammar refuses it in the sidecar
        path = f"/img/00/00/{quote(key, safe='/')}/w50.AAAAAAAAAAAAAAAA.jpg"
    reply = via_origin.get(path)
    assert reply.status in (400, 404), reply
    asked = {where: n - before.get(where, 0) for where, n in origin.requests.items() if n != before.get(where, 0)}
    assert set(asked) <= {"files"}, asked  # never another path on the origin, never another host


def test_the_default_socket_is_not_world_writable(tmp_path: Path) -> None:
    config = config_module.load(env={"SIDECAR_SOCKET": str(tmp_path / "s.sock"), "SIDECAR_SOURCES": str(SAMPLES),
                                     "SIDECAR_ALLOW_UNSIGNED": "1"})
    listener = bind(config)
    try:
        mode = stat.S_IMODE(os.stat(tmp_path / "s.sock").st_mode)
        assert mode == 0o660 and not mode & stat.S_IWOTH
    finally:
        listener.close()


@pytest.mark.parametrize("key", ["x?y=1.jpg", "x#frag.jpg", "100%.jpg", "a b/c+d.jpg"])
def test_a_key_names_exactly_one_file_on_the_origin(via_origin: Stack, origin: Origin, key: str) -> None:
    for decoy in ("x", "100", "100%25.jpg", "a+b/c+d.jpg", "a%20b/c+d.jpg"):  # what a mis-encoding would ask for
        origin.files[decoy] = encoded(Image.new("RGB", (80, 60), "blue"), "JPEG")
    origin.files[key] = encoded(Image.new("RGB", (80, 60), "red"), "JPEG")
    reply = via_origin.get(via_origin.url(key, width=40))
    assert reply.status == 200
    assert reply.image().getpixel((20, 15))[0] > 200, "fetched another file than the key names"


def test_serve_warns_about_a_world_writable_socket_and_root(limited: Stack) -> None:
    (warning,) = limited.sidecar_events("warning_socket_world_writable")  # the tests' 0666, see tests/support/stack.py
    assert warning["socket_mode"] == "0o666"
    assert bool(limited.sidecar_events("warning_running_as_root")) == (os.geteuid() == 0)
