"""`.auto` renditions through the real nginx: Accept picks one of four variants, every answer varies."""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

import sidecar.transform.pipeline  # noqa: F401  (registers the AVIF and JPEG XL codecs, to decode the answers)
from sidecar.app.handler import Handler
from sidecar.errors import BadRequest
from sidecar.sources import SourceChain
from tests.support.stack import Stack

PHOTO = "road-1920x1080.jpg"
SCREEN = "device-screen-706x1442.png"  # RGBA
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
OLD_FIREFOX = "image/webp,*/*"
CURL = "*/*"
SAFARI = ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,"
          "image/*;q=0.8,*/*;q=0.5")


@pytest.mark.parametrize("accept, content_type", [
    (SAFARI, "image/jxl"), (CHROME, "image/avif"), (OLD_FIREFOX, "image/webp"), (CURL, "image/jpeg"),
    (None, "image/jpeg"),
    # q=0 refuses a format (issue 21), whatever the spacing; any other q accepts it.
    ("image/avif;q=0, image/webp", "image/webp"), ("image/avif ; q=0.0,image/webp;q=0.000,*/*", "image/jpeg"),
    ("image/webp;q=0;level=1, image/avif;q=0.5", "image/avif"), ("image/avif;q=0.01", "image/avif"),
])
def test_accept_picks_the_variant_and_hits_vary_too(stack: Stack, accept: str | None, content_type: str) -> None:
    path = stack.url(PHOTO, width=320, format="auto")
    assert path.endswith(".auto")
    headers = {"Accept": accept} if accept else {}
    before = len(stack.sidecar_requests())
    miss = stack.get(path, headers=headers)
    assert miss.status == 200, miss.body
    assert miss.headers["content-type"] == content_type
    assert miss.headers["vary"] == "Accept"
    assert miss.image().size == (320, 180)
    hit = stack.get(path, headers=headers)
    assert hit.status == 200 and hit.body == miss.body
    assert hit.headers["vary"] == "Accept" and hit.headers["content-type"] == content_type
    assert hit.headers["cache-control"].startswith("public, max-age=")
    assert len(stack.sidecar_requests()) <= before + 1, "the second request was not a hit"


def test_legacy_variant_of_a_transparent_png_is_png(stack: Stack) -> None:
    path = stack.url(SCREEN, width=100, format="auto")
    for _ in range(2):  # miss, then hit through try_files' second name
        reply = stack.get(path, headers={"Accept": CURL})
        assert reply.status == 200 and reply.headers["content-type"] == "image/png"
        assert reply.image().mode == "RGBA" and reply.headers["vary"] == "Accept"


def test_crafted_accept_headers_make_at_most_four_files(stack: Stack) -> None:
    path = stack.url(PHOTO, width=128, format="auto")
    accepts = [CHROME, OLD_FIREFOX, CURL, "image/avif;q=0.1, image/webp", "IMAGE/WEBP", "text/html",
               "image/avif" + ",x" * 200, "", "image/jxl,image/heic", f"{os.urandom(8).hex()}/*"]
    for accept in accepts:
        assert stack.get(path, headers={"Accept": accept}).status == 200
    directory = stack.cache_file(path).parent
    made = sorted(name for name in os.listdir(directory) if name.startswith("w128."))
    assert [name.rsplit(".", 1)[1] for name in made] == ["avif", "jpg", "jxl", "webp"]


def test_fixed_formats_do_not_vary(stack: Stack) -> None:
    reply = stack.get(stack.url(PHOTO, width=96, format="webp"), headers={"Accept": CHROME})
    assert reply.status == 200 and reply.headers["content-type"] == "image/webp"
    assert "vary" not in reply.headers


def test_auto_without_nginx_variant_is_400(stack: Stack) -> None:

    pool = ThreadPoolExecutor(1)
    handler = Handler(stack.config, SourceChain([]), pool, pool)
    with pytest.raises(BadRequest, match="X-Image-Variant"):
        asyncio.run(handler.handle("GET", stack.url(PHOTO, width=10, format="auto"), None))
    pool.shutdown()

