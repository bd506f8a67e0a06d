"""The fallback image through the real nginx: the real status, a short lifetime, never cached as the rendition."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sidecar.url.grammar import Ops, Rendition
from sidecar.url.signing import Signer
from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir
from tests.support.stack import SIGNING_KEY, Stack, make_stack

PHOTO = "road-1920x1080.jpg"
MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)


@pytest.fixture(scope="module")
def fallback_stack() -> Iterator[tuple[Stack, Path]]:
    """A stack with a global fallback (magenta) and a preset `card` with its own (cyan)."""
    with readable_tempdir() as root:
        source = root / "originals"
        source.mkdir()
        source.chmod(0o755)
        Image.new("RGB", (300, 200), MAGENTA).save(root / "missing.png")
        Image.new("RGB", (100, 100), CYAN).save(root / "card-missing.png")
        (source / "broken.jpg").write_bytes((SAMPLES / PHOTO).read_bytes()[:5000])
        stack = make_stack([source], extra=(
            f'fallback_image = "{root / "missing.png"}"\n'
            "fallback_max_age = 30\n"
            "[presets.card]\nwidth = 200\nheight = 200\nfit = 'fill'\n"
            f'fallback_image = "{root / "card-missing.png"}"\n'
            "[presets.plain]\nwidth = 50\n"))
        yield stack, source
        stack.close()


def centre(stack: Stack, path: str, status: int, **headers: str) -> tuple[int, int, int]:
    reply = stack.get(path, headers=headers)
    assert reply.status == status, reply.body[:200]
    image = reply.image().convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2))


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) < 12 for x, y in zip(a, b))


def test_missing_original_gets_the_fallback_with_404_a_short_lifetime_and_no_file(
        fallback_stack: tuple[Stack, Path]) -> None:
    stack, source = fallback_stack
    path = stack.url("later.jpg", width=150)
    reply = stack.get(path)
    assert reply.status == 404
    assert reply.headers["content-type"] == "image/jpeg"
    assert reply.headers["cache-control"] == "public, max-age=30"
    assert reply.image().size == (150, 100) and near(reply.image().getpixel((75, 50)), MAGENTA)
    assert "vary" not in reply.headers
    # A failed miss leaves nothing on disk, not even the directories its lock needed (issue 21).
    renditions = stack.config.cache.cache_dir / "img"
    assert not renditions.exists() or not any(renditions.rglob("*"))
    # The original turns up: the same URL is now the real image, never the fallback from before.
    shutil.copy(SAMPLES / PHOTO, source / "later.jpg")
    real = stack.get(path)
    assert real.status == 200 and real.headers["x-image-source"] == "local"
    assert real.image().size == (150, 84) and not near(real.image().getpixel((75, 42)), MAGENTA)
    assert stack.cache_file(path).is_file()


def test_a_fallback_answer_counts_once_as_a_fallback_and_as_its_error(fallback_stack: tuple[Stack, Path]) -> None:
    stack, _ = fallback_stack
    before = stack.scrape()
    assert stack.get(stack.url("nowhere.jpg", width=90)).status == 404
    after = stack.scrape()
    for name, labels in (("resize_sidecar_fallback_images_total", {"status": "404"}),
                         ("resize_sidecar_errors_total", {"error": "NotFound", "status": "404"}),
                         ("resize_sidecar_requests_total", {"route": "rendition", "status": "404"})):
        assert after.value(name, **labels) == before.value(name, **labels) + 1, name
    assert after.value("resize_sidecar_fallback_images_total", status="422") == \
        before.value("resize_sidecar_fallback_images_total", status="422")
    assert after.value("resize_sidecar_renditions_total") == before.value("resize_sidecar_renditions_total")


def test_undecodable_original_gets_the_fallback_with_422(fallback_stack: tuple[Stack, Path]) -> None:
    stack, _ = fallback_stack
    path = stack.url("broken.jpg", width=120, format="png")
    reply = stack.get(path)
    assert reply.status == 422 and reply.headers["content-type"] == "image/png"
    assert near(reply.image().convert("RGB").getpixel((60, 40)), MAGENTA)
    assert not stack.cache_file(path).exists()


def test_a_preset_fallback_is_found_by_its_token(fallback_stack: tuple[Stack, Path]) -> None:
    stack, _ = fallback_stack
    path = stack.url("nowhere.jpg", preset="card")
    assert "/w200-h200-fill-fbcard." in path
    assert near(centre(stack, path, 404), CYAN)
    image = stack.get(path).image()
    assert image.size == (200, 200)  # the preset's own box, filled with its own fallback
    assert "-fb" not in stack.url("nowhere.jpg", preset="plain")  # a preset without one adds no token
    assert near(centre(stack, stack.url("nowhere.jpg", preset="plain"), 404), MAGENTA)  # the global one


def test_auto_fallback_varies_by_accept(fallback_stack: tuple[Stack, Path]) -> None:
    stack, _ = fallback_stack
    reply = stack.get(stack.url("gone.jpg", width=64, format="auto"), headers={"Accept": "image/webp,*/*"})
    assert reply.status == 404 and reply.headers["content-type"] == "image/webp"
    assert reply.headers["vary"] == "Accept"


def test_other_failures_keep_their_plain_error(fallback_stack: tuple[Stack, Path]) -> None:
    stack, _ = fallback_stack
    path = stack.url("later2.jpg", width=150)
    head, _, tail = path.rpartition("/")
    ops, _, ext = tail.split(".")
    forged = stack.get(f"{head}/{ops}.AAAAAAAAAAAAAAAA.{ext}")
    assert forged.status == 403 and forged.headers["content-type"].startswith("text/plain")


def test_a_token_naming_no_fallback_is_400(fallback_stack: tuple[Stack, Path]) -> None:

    stack, _ = fallback_stack
    for name in ("plain", "nosuch"):
        rendition = Rendition(PHOTO, Ops("jpeg", width=10, fallback=name))
        reply = stack.get(rendition.path("/img", Signer((SIGNING_KEY,)).sign(rendition.payload)))
        assert reply.status == 400 and b"fallback" in reply.body


def test_off_by_default(stack: Stack) -> None:
    reply = stack.get(stack.url("no/such.jpg", width=100))
    assert reply.status == 404 and reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["cache-control"] == "no-store"


