"""Smallest bytes: the original when it already fits (no decode), never bigger than it, no metadata."""
from __future__ import annotations

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from sidecar.transform.pipeline import Rendered, Settings, transform
from sidecar.url.grammar import Ops
from tests.support.images import encoded, opened
from tests.support.paths import SAMPLES

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def photo(width: int = 300, height: int = 200) -> Image.Image:
    with Image.open(SAMPLES / "road-1920x1080.jpg") as image:
        image.draft("RGB", (width * 2, height * 2))
        return image.convert("RGB").resize((width, height))


def exif(orientation: int = 1) -> bytes:
    tags = Image.Exif()
    tags[0x0112] = orientation
    tags[0x010F] = "CameraMaker"
    return tags.tobytes()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts pixel decodes (Pillow's ImageFile.load), to show that a pass-through decodes nothing."""
    calls: list[str] = []
    original = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile):
        calls.append(self.format or "")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return calls


def test_untouched_jpeg_is_the_original_less_metadata_without_a_decode(decodes: list[str]) -> None:
    with Image.open(SAMPLES / "redpanda-nikond80-3872x2592.jpg") as source:
        icc = source.info["icc_profile"]
    data = encoded(photo(), "JPEG", quality=60, exif=exif(1), comment=b"secret comment", icc_profile=icc)
    decodes.clear()
    result = transform(data, Ops("jpeg", width=400), SETTINGS)  # bigger than the original: nothing to do
    assert result.original and decodes == []
    assert b"CameraMaker" not in result.data and b"secret comment" not in result.data
    assert len(result.data) < len(data) and result.size == (300, 200)
    out = opened(result.data)
    assert out.info.get("icc_profile") == icc  # the one piece of metadata colour needs
    assert out.tobytes() == opened(data).tobytes()  # the very same compressed pixels


def test_untouched_png_drops_text_and_exif_chunks(decodes: list[str]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret comment")
    data = encoded(photo(60, 40), "PNG", pnginfo=info, exif=exif(1))
    decodes.clear()
    result = transform(data, Ops("png", width=60, height=40, fit="fill"), SETTINGS)
    assert result.original and decodes == []
    assert b"secret comment" not in result.data and b"CameraMaker" not in result.data
    assert opened(result.data).tobytes() == opened(data).tobytes()


@pytest.mark.parametrize("why, data, ops", [
    ("orientation to apply", encoded(photo(), "JPEG", quality=60, exif=exif(6)), Ops("jpeg", width=400)),
    ("smaller size", encoded(photo(), "JPEG", quality=60), Ops("jpeg", width=150)),
    ("other format", encoded(photo(), "JPEG", quality=60), Ops("webp", width=400)),
    ("lower quality asked", encoded(photo(), "JPEG", quality=90), Ops("jpeg", width=400, quality=50)),
    ("default below the source", encoded(photo(), "JPEG", quality=95), Ops("jpeg", width=400)),
    ("CMYK", encoded(photo().convert("CMYK"), "JPEG", quality=60), Ops("jpeg", width=400)),
])
def test_the_original_is_not_passed_when_something_must_change(why: str, data: bytes, ops: Ops) -> None:
    result = transform(data, ops, SETTINGS)
    assert not result.original, why
    assert b"CameraMaker" not in result.data


def test_quality_keep_passes_a_fitting_jpeg_through() -> None:
    data = encoded(photo(), "JPEG", quality=95)
    assert transform(data, Ops("jpeg", quality="keep"), SETTINGS).original


def test_never_bigger_serves_the_smaller_original(decodes: list[str]) -> None:
    # A q40 WebP re-encoded at an explicit q95 (say, a preset's) would grow several times over. WebP's
    # quality cannot be read from the file, so it is encoded first, then compared.
    data = encoded(photo(), "WEBP", quality=40)
    decodes.clear()
    result = transform(data, Ops("webp", width=300, quality=95), SETTINGS)
    assert decodes, "this case must go the encoding way"
    assert result.original and result.data == data
    forced = transform(data, Ops("webp", width=299, quality=95), SETTINGS)  # does not fit: no swap
    assert not forced.original and len(forced.data) > len(result.data)


def test_never_bigger_keeps_the_smaller_encoding() -> None:
    data = encoded(photo(), "PNG")  # a photo as PNG: any JPEG of it is smaller
    result = transform(data, Ops("png", width=300), SETTINGS)
    assert result.original  # PNG -> PNG at the same size: untouched
    as_jpeg = transform(data, Ops("jpeg", width=300), SETTINGS)
    assert not as_jpeg.original and len(as_jpeg.data) < len(data) / 3


def test_broken_original_is_not_passed_through_unchecked() -> None:
    data = encoded(photo(), "JPEG", quality=60)
    with pytest.raises(Exception) as caught:
        transform(data[: len(data) * 2 // 3], Ops("jpeg", width=400), SETTINGS)
    assert getattr(caught.value, "status", None) == 422


def test_rendered_metadata_is_stripped_on_every_format() -> None:
    data = encoded(photo(), "JPEG", quality=90, exif=exif(1), comment=b"secret comment")
    for fmt in ("jpeg", "png", "webp", "avif"):
        result: Rendered = transform(data, Ops(fmt, width=120), SETTINGS)
        assert b"CameraMaker" not in result.data and b"secret comment" not in result.data, fmt
        assert not opened(result.data).getexif(), fmt
