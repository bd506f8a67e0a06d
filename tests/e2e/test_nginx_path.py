"""The whole path through a real nginx: miss -> sidecar -> X-Accel-Redirect, hit from disk, errors."""
from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

import pytest

from sidecar.cache.cascade import SOURCE_RECORD
from sidecar.url.grammar import Ops, Rendition, parse
from sidecar.url.signing import Signer
from tests.support.paths import SAMPLES
from tests.support.signing import other_character
from tests.support.stack import SIGNING_KEY, Stack, Stacks

PHOTO = "redpanda-nikond80-3872x2592.jpg"  # 3872x2592


def files_under(path: os.PathLike[str]) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


def test_miss_is_rendered_then_hit_is_served_by_nginx_alone(stack: Stack) -> None:
    path = stack.url(PHOTO, width=300, format="webp")
    before = len(stack.sidecar_requests())
    miss = stack.get(path)
    assert miss.status == 200
    assert miss.headers["content-type"] == "image/webp"
    assert miss.image().size == (300, 201)
    assert miss.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "etag" in miss.headers and "last-modified" in miss.headers
    assert miss.headers["x-image-source"] == "local"
    assert len(stack.sidecar_requests()) == before + 1

    hit = stack.get(path)
    assert hit.status == 200 and hit.body == miss.body
    assert hit.headers["etag"] == miss.headers["etag"]
    assert len(stack.sidecar_requests()) == before + 1, "the hit reached the sidecar"


def test_hit_needs_no_sidecar_at_all(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES])
    path = stack.url(PHOTO, width=120, height=120, fit="fill")
    assert stack.get(path).status == 200
    stack.stop_sidecar()
    assert not stack.config.server.socket.exists()
    hit = stack.get(path)
    assert hit.status == 200 and hit.image().size == (120, 120)
    other = stack.get(stack.url(PHOTO, width=121))
    assert other.status == 502  # a real miss does need it: proves the first was a hit


def test_rendition_bytes_support_ranges_and_conditional_requests(stack: Stack) -> None:
    path = stack.url(PHOTO, width=200)
    full = stack.get(path)
    part = stack.get(path, headers={"Range": "bytes=0-99"})
    assert part.status == 206 and part.body == full.body[:100]
    assert stack.get(path, headers={"If-None-Match": full.headers["etag"]}).status == 304


def test_first_request_with_range_still_gets_its_range(stack: Stack) -> None:
    path = stack.url(PHOTO, width=210)
    part = stack.get(path, headers={"Range": "bytes=0-9"})
    assert part.status == 206 and len(part.body) == 10


def test_head_on_a_miss(stack: Stack) -> None:
    # Decided (issue 21): a HEAD renders and publishes like a GET, so its headers are the GET's own
    # (docs/urls.md, "HEAD"), and the GET that usually follows is a hit.
    path = stack.url(PHOTO, width=220)
    reply = stack.get(path, method="HEAD")
    assert reply.status == 200 and reply.body == b""
    assert int(reply.headers["content-length"]) > 1000
    misses = len(stack.sidecar_requests())
    get = stack.get(path)
    assert len(get.body) == int(reply.headers["content-length"]) and get.headers["etag"] == reply.headers["etag"]
    assert len(stack.sidecar_requests()) == misses, "the GET after a HEAD was not a hit"


@pytest.mark.parametrize("bad", ["wrong", "missing", "other-key", *(f"position-{i}" for i in range(16))])
def test_bad_signature_is_403_and_nothing_is_written(stack: Stack, bad: str) -> None:
    path = stack.url(PHOTO, width=230)
    head, _, tail = path.rpartition("/")
    ops, signature, ext = tail.split(".")
    payload = parse(path, prefix=stack.config.urls.url_prefix, signed=True).target.payload
    forged = {"wrong": "A" * 16, "missing": None,
              "other-key": Signer(("a-key-this-deployment-does-not-have",)).sign(payload),  # well-formed, wrong
              **{f"position-{i}": other_character(signature, i) for i in range(16)}}[bad]
    assert forged != signature
    request = f"{head}/{ops}.{forged}.{ext}" if forged else f"{head}/{ops}.{ext}"
    before = files_under(stack.config.cache.cache_dir)
    reply = stack.get(request)
    assert reply.status == 403
    assert b"signature" in reply.body
    assert files_under(stack.config.cache.cache_dir) == before
    # Same answer every time: a forged URL can never become a hit.
    assert stack.get(request).status == 403


def test_signature_made_with_a_retired_key_still_verifies(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES])
    old_path = stack.url(PHOTO, width=90)
    stack.stop_sidecar()
    stack.env["SIDECAR_SIGNING_KEYS"] = "new-signing-key-abcdefghijkl," + stack.env["SIDECAR_SIGNING_KEYS"]
    stack.start_sidecar()
    assert stack.get(old_path).status == 200


@pytest.mark.parametrize("path", [
    "/img/../../../etc/passwd",
    "/img/%2e%2e/%2e%2e/etc/passwd",
    "/img/ab/cd/..%2f..%2f..%2fetc%2fpasswd/w100.jpg",
    "/img/ab/cd/%2e%2e/%2e%2e/%2e%2e/etc/passwd/w100.jpg",
    "/img/ab/cd/%252e%252e/etc/passwd/w100.jpg",
    "/img/ab/cd/..\\..\\etc\\passwd/w100.jpg",
    "/img/ab/cd//etc/passwd/w100.jpg",
    "/img/ab/cd/%00/w100.jpg",
    "/img/ab/cd/.hidden/w100.jpg",
    "/img/ab/cd/./x/w100.jpg",
    "/_rendition/../../etc/passwd",
    "/_rendition/img/",
    "/etc/passwd",
])
def test_path_traversal_in_any_spelling_is_refused(stack: Stack, path: str) -> None:
    reply = stack.get(path)
    assert reply.status in (400, 403, 404), reply
    assert b"root:" not in reply.body


def test_symlink_out_of_the_source_root_is_not_followed(stack_factory: Stacks, tmp_path: Path) -> None:

    source = stack_factory.directory()
    secret = stack_factory.directory() / "secret.jpg"
    shutil.copy(SAMPLES / PHOTO, secret)
    (source / "link.jpg").symlink_to(secret)
    shutil.copy(SAMPLES / PHOTO, source / "inside.jpg")
    stack = stack_factory([source])
    assert stack.get(stack.url("inside.jpg", width=50)).status == 200
    assert stack.get(stack.url("link.jpg", width=50)).status == 404


def test_non_canonical_spellings_are_400(stack: Stack) -> None:
    good = stack.url(PHOTO, width=240, height=100, fit="fill")
    head, _, tail = good.rpartition("/")
    _, signature, _ = tail.split(".")
    for ops in ("h100-w240-fill", "w240-h100-fill-gce", "w0240-h100-fill", "w240-h100-FILL"):
        assert stack.get(f"{head}/{ops}.{signature}.jpg").status == 400, ops
    assert stack.get(f"{head}/w240-h100-fill.{signature}.jpeg").status == 400
    assert stack.get(good).status == 200


def test_missing_original_is_404_and_nothing_cached(stack: Stack) -> None:
    before = files_under(stack.config.cache.cache_dir)
    reply = stack.get(stack.url("no/such/original.jpg", width=100))
    assert reply.status == 404
    assert files_under(stack.config.cache.cache_dir) == before


def test_oversized_request_is_400(stack: Stack) -> None:

    rendition = Rendition(PHOTO, Ops("jpeg", width=9000))
    path = rendition.path("/img", Signer((SIGNING_KEY,)).sign(rendition.payload))
    reply = stack.get(path)
    assert reply.status == 400 and b"8192" in reply.body


def test_failed_write_serves_from_memory_and_leaves_no_file(stack_factory: Stacks) -> None:
    # The sidecar may write no file over 256 KiB (its metrics files need 64 KiB): the rendition, a PNG
    # of about 700 KB, fails part-way (EFBIG).
    stack = stack_factory([SAMPLES], limits={resource.RLIMIT_FSIZE: (256 * 1024, 256 * 1024)})
    path = stack.url(PHOTO, width=800, format="png")
    reply = stack.get(path)
    assert reply.status == 200 and reply.image().size == (800, 536) and len(reply.body) > 256 * 1024
    assert reply.headers["cache-control"] == "no-store"
    renditions = [f for f in files_under(stack.config.cache.cache_dir) if not f.endswith("/" + SOURCE_RECORD)]
    assert renditions == [], "a partial or temporary file was left behind"
    assert stack.get(path).status == 200  # and the next request is another miss, not a broken hit
    assert len([r for r in stack.sidecar_requests() if r["path"] == path]) == 2
    assert stack.metric("resize_sidecar_cache_writes_total", result="failed", reason="EFBIG") == 2


def test_unsigned_deployment(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], signed=False)
    path = stack.url(PHOTO, width=64)
    assert path.endswith("/w64.jpg")
    assert stack.get(path).image().size == (64, 43)
