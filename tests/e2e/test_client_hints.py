"""Client hints through the real nginx: the hints pick one of a fixed set of widths, and responses vary by them."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from sidecar.app.handler import Handler
from sidecar.errors import BadRequest
from sidecar.sources import SourceChain
from sidecar.url.grammar import Ops, Rendition
from sidecar.url.signing import Signer
from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir
from tests.support.stack import SIGNING_KEY, Stack, make_stack

PHOTO = "road-1920x1080.jpg"
HINT_VARY = "Sec-CH-Width, Width, Sec-CH-DPR, DPR"


@pytest.fixture(scope="module")
def hints() -> Iterator[Stack]:
    """Client hints on, with a fallback image (grey) for missing originals."""
    with readable_tempdir() as other:
        Image.new("RGB", (64, 64), (128, 128, 128)).save(other / "missing.png")
        stack = make_stack([SAMPLES], extra=f'client_hints = true\nfallback_image = "{other / "missing.png"}"\n')
        yield stack
        stack.close()


@pytest.mark.parametrize("headers, width", [
    ({}, 400),                                          # no hints: the URL's width
    ({"Sec-CH-Width": "500"}, 640),                     # physical pixels, up to the next width of the set
    ({"Width": "500"}, 640),                            # the legacy name
    ({"Sec-CH-Width": "320"}, 320),
    ({"Sec-CH-Width": "1921"}, 1920),                   # beyond the set: its largest
    ({"Sec-CH-Width": "99999999999999"}, 1920),
    ({"Sec-CH-DPR": "2"}, 800),                         # no width hint: the DPR times the URL's width
    ({"DPR": "1.25"}, 600),                             # up to the next ratio of the set, 1.5
    ({"Sec-CH-DPR": "2.625"}, 1200),
    ({"Sec-CH-DPR": "9"}, 1200),
    ({"Sec-CH-DPR": "3", "Sec-CH-Width": "700"}, 768),  # the width hint wins
    ({"Sec-CH-Width": "abc", "DPR": "1.5"}, 600),       # nonsense counts as absent
    ({"Sec-CH-Width": "-5"}, 400),
    ({"Sec-CH-DPR": "1e9"}, 400),
])
def test_hints_map_to_the_right_width(hints: Stack, headers: dict[str, str], width: int) -> None:
    reply = hints.get(hints.url(PHOTO, width=400, client_hints=True), headers=headers)
    assert reply.status == 200, reply.body
    assert reply.image().width == width
    assert reply.headers["vary"] == HINT_VARY
    assert reply.headers["accept-ch"] == HINT_VARY


def test_the_same_bucket_is_a_hit_served_by_nginx(hints: Stack) -> None:
    path = hints.url(PHOTO, width=300, height=300, fit="fill", client_hints=True)
    miss = hints.get(path, headers={"Sec-CH-Width": "700"})
    assert miss.status == 200 and miss.image().size == (768, 768)
    before = len(hints.sidecar_requests())
    for value in ("641", "768", "700"):
        hit = hints.get(path, headers={"Sec-CH-Width": value})
        assert hit.status == 200 and hit.body == miss.body
        assert hit.headers["vary"] == HINT_VARY and hit.headers["content-type"] == "image/jpeg"
        assert hit.headers["cache-control"].startswith("public, max-age=")
    assert len(hints.sidecar_requests()) == before, "a hit reached the sidecar"
    assert hints.cache_file(path + ".w768.jpg").is_file()


def test_crafted_hints_make_at_most_one_file_per_width_and_ratio(hints: Stack) -> None:
    path = hints.url(PHOTO, width=100, client_hints=True)
    values = [str(n) for n in (1, 50, 333, 481, 700, 1000, 1300, 1700, 1900, 5000, 10**12)] + \
             ["0.5", "1", "1.01", "1.7", "2.2", "3.5", "07", os.urandom(6).hex(), "1,5", ""]
    for value in values:
        for name in ("Sec-CH-Width", "Width", "Sec-CH-DPR", "DPR"):
            assert hints.get(path, headers={name: value}).status == 200
    directory = hints.cache_file(path).parent
    made = {name.split(".")[-2] for name in os.listdir(directory) if name.startswith("w100-ch.")}
    widths = {f"w{w}" for w in hints.config.urls.client_hints_widths}
    assert made <= widths | {"x1", "x1_5", "x2", "x3"} and len(made) <= 12


def test_auto_format_and_hints_vary_by_both(hints: Stack) -> None:
    path = hints.url(PHOTO, width=200, format="auto", client_hints=True)
    for _ in range(2):  # miss, then hit
        reply = hints.get(path, headers={"Accept": "image/webp,*/*", "Sec-CH-DPR": "2"})
        assert reply.status == 200 and reply.headers["content-type"] == "image/webp"
        assert reply.image().width == 400
        assert reply.headers["vary"] == f"Accept, {HINT_VARY}"
    assert hints.cache_file(path + ".x2.webp").is_file()


def test_a_fallback_for_a_hinted_url_is_hinted_and_varies_too(hints: Stack) -> None:
    reply = hints.get(hints.url("gone.jpg", width=100, client_hints=True), headers={"Sec-CH-DPR": "2"})
    assert reply.status == 404 and reply.headers["x-image-fallback"] == "1"
    assert reply.image().width == 200 and reply.headers["vary"] == HINT_VARY


def test_urls_without_ch_ignore_hints_and_do_not_vary(hints: Stack) -> None:
    reply = hints.get(hints.url(PHOTO, width=250), headers={"Sec-CH-Width": "1000", "Sec-CH-DPR": "3"})
    assert reply.status == 200 and reply.image().width == 250
    assert "vary" not in reply.headers and "accept-ch" not in reply.headers


def test_a_hint_nginx_cannot_make_is_400(hints: Stack) -> None:
    pool = ThreadPoolExecutor(1)
    handler = Handler(hints.config, SourceChain([]), pool, pool)
    path = hints.url(PHOTO, width=400, client_hints=True)
    for hint in (None, "w641", "x2_5", "w640 "):
        with pytest.raises(BadRequest):
            asyncio.run(handler.handle("GET", path, None, hint))
    pool.shutdown()


def test_client_hints_are_off_by_default(stack: Stack) -> None:
    rendition = Rendition(PHOTO, Ops("jpeg", width=400, client_hints=True))
    reply = stack.get(rendition.path("/img", Signer((SIGNING_KEY,)).sign(rendition.payload)),
                      headers={"Sec-CH-Width": "640"})
    assert reply.status == 400 and b"client hints" in reply.body


