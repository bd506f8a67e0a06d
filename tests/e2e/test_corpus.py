"""Every real-world file in the shared corpus, through nginx: the MANIFEST's outcome, never a 5xx or a hang."""
from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.support.corpus import manifest, require_corpus
from tests.support.paths import CORPUS
from tests.support.stack import Stack, make_stack

# Where this build must differ from the MANIFEST (made with Pillow 13's bundled codecs), and why.
DEVIATIONS = {
    # Debian 12's libjpeg-turbo 2.1.5 has no lossless (SOF3) JPEG decoder; Pillow 13's wheel bundles 3.x.
    "jpeg/lossless_8bit_rgb.jpg": "reject",
    # HEIF input is enabled on purpose (pillow-heif); the MANIFEST says these are ok when it is.
    "heic/tiny.heic": "ok",
    "heic/winter_1440x960.heic": "ok",
    # SVG input is enabled on purpose (issue 16): drawn at the rendition's size, so the giant one's
    # declared 10,000,000 px square is only its shape.
    "svg/logo.svg": "ok",
    "svg/giant_10Mx10M.svg": "ok",
}


@pytest.fixture(scope="module")
def corpus_stack() -> Iterator[Stack]:
    require_corpus()
    stack = make_stack([CORPUS / "real"])
    yield stack
    stack.close()


@pytest.mark.parametrize("row", manifest() or [{"file": "(corpus missing)", "expected": ""}],
                         ids=lambda row: row["file"])
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_corpus_file_gets_its_manifest_outcome(corpus_stack: Stack, row: dict[str, str], fmt: str) -> None:
    expected = DEVIATIONS.get(row["file"], row["expected"])
    reply = corpus_stack.get(corpus_stack.url(row["file"], width=160, height=160, format=fmt))
    assert reply.status < 500, (reply.status, reply.body)
    if expected.startswith("ok"):
        assert reply.status == 200, (reply.status, reply.body)
        image = Image.open(io.BytesIO(reply.body))
        image.load()
        assert image.format == fmt.upper()
        assert max(image.size) <= 160 and min(image.size) >= 1
    else:
        assert 400 <= reply.status < 500, reply.status
        if expected == "reject-too-large":
            assert reply.status in (413, 422), reply.status
        if expected == "reject-unsupported":
            assert reply.status in (415, 422), reply.status


