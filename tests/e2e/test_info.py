"""The info document through the real nginx, and the quality estimate of libjpeg-turbo's own encoder (cjpeg)."""
from __future__ import annotations

import json
import subprocess

import pytest
from PIL import Image

from sidecar.builder import build_info_url
from sidecar.transform import info
from sidecar.transform.pipeline import Settings
from tests.support.images import encoded
from tests.support.paths import SAMPLES
from tests.support.stack import Stack, Stacks

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def test_info_through_nginx_is_signed_cached_and_json(stack: Stack) -> None:
    path = build_info_url(stack.config, "road-1920x1080.jpg")
    assert path.endswith(".json") and "/road-1920x1080.jpg/info." in path
    documents, writes = (stack.metric("resize_sidecar_info_documents_total"),
                         stack.metric("resize_sidecar_cache_writes_total", result="written"))
    before = len(stack.sidecar_requests())  # after the scrapes, which the sidecar logs too
    miss = stack.get(path)
    assert miss.status == 200, miss.body
    assert miss.headers["content-type"] == "application/json"
    assert miss.headers["cache-control"].startswith("public, max-age=")
    facts = json.loads(miss.body)
    assert (facts["width"], facts["height"], facts["format"]) == (1920, 1080, "jpeg")
    hit = stack.get(path)
    assert hit.status == 200 and hit.body == miss.body and hit.headers["content-type"] == "application/json"
    assert len(stack.sidecar_requests()) == before + 1, "the second request was not a hit"
    assert stack.metric("resize_sidecar_info_documents_total") == documents + 1
    assert stack.metric("resize_sidecar_cache_writes_total", result="written") == writes + 1
    assert stack.cache_file(path).is_file()  # the URL path names the cache file
    forged = path.rsplit(".", 2)[0] + ".AAAAAAAAAAAAAAAA.json"
    assert stack.get(forged).status == 403
    assert stack.get(build_info_url(stack.config, "missing.jpg")).status == 404


def test_info_of_a_broken_original_is_422_and_nothing_is_cached(stack_factory: Stacks) -> None:
    source = stack_factory.directory()
    (source / "broken.jpg").write_bytes((SAMPLES / "road-1920x1080.jpg").read_bytes()[:3000])
    stack = stack_factory([source])
    reply = stack.get(build_info_url(stack.config, "broken.jpg"))
    assert reply.status == 422 and reply.headers["cache-control"] == "no-store"
    assert not any(stack.config.cache.cache_dir.rglob("info.*"))


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_quality_estimate_is_within_5_of_cjpegs_setting(quality: int) -> None:
    """libjpeg-turbo's own encoder (cjpeg, from libjpeg-turbo-progs), not Pillow's call of it."""
    photo = Image.open(SAMPLES / "road-1920x1080.jpg").convert("RGB").resize((480, 270))
    made = subprocess.run(["cjpeg", "-quality", str(quality)], input=encoded(photo, "PPM"), capture_output=True,
                          check=True).stdout
    assert abs(int(str(info.describe(made, SETTINGS)["quality"])) - quality) <= 5
