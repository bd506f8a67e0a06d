"""The info request: facts about an original and its placeholders, with plain values and through nginx.

The ThumbHash is checked by decoding it here, with a decoder written from the format's description
(independent of the encoder's code paths): aspect ratio, average colour and the blurry picture itself.
"""
from __future__ import annotations

import base64
import io
import json
import math

import pytest
from PIL import Image, ImageDraw

from sidecar.transform import info
from sidecar.transform.pipeline import Settings
from tests.support.corpus import manifest, require_corpus
from tests.support.images import encoded, opened
from tests.support.paths import CORPUS, SAMPLES

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def thumbhash_decode(hash_bytes: bytes) -> tuple[int, int, list[tuple[float, float, float, float]]]:
    """ThumbHash -> (width, height, RGBA pixels as 0..1 floats), at most 32 px a side."""
    header24 = hash_bytes[0] | hash_bytes[1] << 8 | hash_bytes[2] << 16
    header16 = hash_bytes[3] | hash_bytes[4] << 8
    l_dc, l_scale = (header24 & 63) / 63, (header24 >> 18 & 31) / 31
    p_dc, q_dc = (header24 >> 6 & 63) / 31.5 - 1, (header24 >> 12 & 63) / 31.5 - 1
    has_alpha, landscape = bool(header24 >> 23), bool(header16 >> 15)
    p_scale, q_scale = (header16 >> 3 & 63) / 63, (header16 >> 9 & 63) / 63
    long_side = 5 if has_alpha else 7
    lx = long_side if landscape else header16 & 7
    ly = header16 & 7 if landscape else long_side
    a_dc, a_scale = ((hash_bytes[5] & 15) / 15, (hash_bytes[5] >> 4) / 15) if has_alpha else (1.0, 0.0)
    nibbles = [b >> shift & 15 for b in hash_bytes[6 if has_alpha else 5:] for shift in (0, 4)]

    def terms(nx: int, ny: int, scale: float) -> list[tuple[int, int, float]]:
        out = []
        for cy in range(ny):
            for cx in range(nx):
                if cx * ny >= nx * (ny - cy):
                    break
                if cx or cy:
                    out.append((cx, cy, (nibbles.pop(0) / 7.5 - 1) * scale))
        return out

    l_ac = terms(max(3, lx), max(3, ly), l_scale)
    p_ac, q_ac = terms(3, 3, p_scale * 1.25), terms(3, 3, q_scale * 1.25)
    a_ac = terms(5, 5, a_scale) if has_alpha else []
    ratio = lx / ly
    width, height = (32, round(32 / ratio)) if ratio > 1 else (round(32 * ratio), 32)
    pixels = []
    for y in range(height):
        for x in range(width):
            def value(dc: float, ac: list[tuple[int, int, float]], x: int = x, y: int = y) -> float:
                return dc + sum(2 * f * math.cos(math.pi / width * (x + 0.5) * cx)
                                * math.cos(math.pi / height * (y + 0.5) * cy) for cx, cy, f in ac)
            lum, p, q, a = value(l_dc, l_ac), value(p_dc, p_ac), value(q_dc, q_ac), value(a_dc, a_ac)
            blue = lum - 2 / 3 * p
            red = (3 * lum - blue + q) / 2
            pixels.append((red, red - q, blue, a))
    return width, height, pixels


def describe(image: Image.Image, fmt: str = "PNG", **options: object) -> dict[str, object]:
    return info.describe(encoded(image, fmt, **options), SETTINGS)


def scene() -> Image.Image:
    """A 600x300 landscape: blue sky over green ground, a yellow sun top left."""
    image = Image.new("RGB", (600, 300), (40, 90, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 180, 600, 300), fill=(30, 160, 40))
    draw.ellipse((40, 30, 120, 110), fill=(250, 220, 30))
    return image


def smooth() -> Image.Image:
    """A 600x300 picture of gentle gradients: what a ThumbHash's few frequencies can hold."""
    image = Image.new("RGB", (600, 300))
    image.putdata([(int(40 + 180 * x / 600), int(200 - 150 * y / 300), int(120 + 80 * math.sin(x / 100)))
                   for y in range(300) for x in range(600)])
    return image


def mean_error(image: Image.Image) -> float:
    """Mean channel error (0-255) between the decoded ThumbHash and the image at the decoded size."""
    width, height, pixels = thumbhash_decode(base64.b64decode(str(describe(image)["thumbhash"])))
    thumb = image.resize((width, height), Image.Resampling.BOX)
    errors = [abs(255 * min(1, max(0, got[c])) - want[c]) for got, want in zip(pixels, thumb.get_flattened_data())
              for c in range(3)]
    return sum(errors) / len(errors)


def test_thumbhash_decodes_to_the_aspect_ratio_and_the_picture() -> None:
    width, height, pixels = thumbhash_decode(base64.b64decode(str(describe(scene())["thumbhash"])))
    assert abs(width / height - 2.0) < 0.25  # ThumbHash keeps the ratio to about a seventh
    top, bottom = pixels[width // 2], pixels[-width // 2]
    assert top[2] > top[1] and bottom[1] > bottom[2]  # blue above, green below
    # Blurry but faithful: 13.5 measured; a halved scale of the varying terms gives 21, a half-pixel
    # shift of the vertical cosines 17, swapped colour channels 33.
    assert mean_error(smooth()) < 15.5
    assert mean_error(Image.new("RGB", (300, 200), (200, 100, 50))) < 2


@pytest.mark.parametrize("size", [(100, 400), (300, 300), (1000, 200), (10, 50)])
def test_thumbhash_aspect_ratio_follows_the_image(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (200, 50, 50))
    image.paste((20, 20, 200), (0, 0, size[0] // 2 or 1, size[1]))
    width, height, _ = thumbhash_decode(base64.b64decode(str(describe(image)["thumbhash"])))
    want = size[0] / size[1]
    assert abs(math.log((width / height) / want)) < math.log(1.5), (width, height, want)


def test_thumbhash_of_a_transparent_image_carries_alpha() -> None:
    image = Image.new("RGBA", (200, 200), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 100, 200))
    facts = describe(image)
    width, height, pixels = thumbhash_decode(base64.b64decode(str(facts["thumbhash"])))
    assert facts["alpha"] is True and (width, height) == (32, 32)
    left, right = pixels[16 * width + 3], pixels[16 * width + width - 4]
    assert left[3] > 0.8 and right[3] < 0.2 and left[2] > left[0]


def test_lqip_is_a_small_webp_of_the_same_aspect_ratio() -> None:
    for image in (scene(), scene().rotate(90, expand=True), Image.open(SAMPLES / "redpanda-nikond80-3872x2592.jpg")):
        facts = describe(image.convert("RGB"), "JPEG", quality=90)
        uri = str(facts["lqip"])
        assert uri.startswith("data:image/webp;base64,") and len(uri) <= 1024
        lqip = opened(base64.b64decode(uri.split(",", 1)[1]))
        assert lqip.format == "WEBP" and max(lqip.size) >= 16
        assert abs(lqip.width / lqip.height - image.width / image.height) < 0.1 * image.width / image.height


def test_dominant_colour_is_the_largest_area_not_the_average() -> None:
    image = Image.new("RGB", (100, 100), (220, 30, 30))
    image.paste((30, 30, 220), (0, 0, 100, 35))  # 35% blue, 65% red: the average is a purple in neither
    facts = describe(image)
    red, green, blue = (int(str(facts["dominant_colour"])[i:i + 2], 16) for i in (1, 3, 5))
    assert red > 200 and green < 50 and blue < 50
    clear = Image.new("RGBA", (100, 100), (0, 255, 0, 0))  # invisible green everywhere but a blue strip
    clear.paste((0, 0, 255, 255), (0, 0, 20, 100))
    assert describe(clear)["dominant_colour"] == "#0000ff"
    assert describe(Image.new("RGBA", (10, 10), (0, 0, 0, 0)))["dominant_colour"] is None


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_quality_estimate_is_within_5_of_the_encoder_setting(quality: int) -> None:
    photo = Image.open(SAMPLES / "road-1920x1080.jpg").convert("RGB").resize((480, 270))
    assert abs(int(str(describe(photo, "JPEG", quality=quality)["quality"])) - quality) <= 5


def test_facts_of_a_plain_jpeg() -> None:
    data = encoded(scene(), "JPEG", quality=80)
    facts = info.describe(data, SETTINGS)
    assert {k: facts[k] for k in ("format", "width", "height", "alpha", "animated", "frames", "colour_profile",
                                  "bytes")} == {
        "format": "jpeg", "width": 600, "height": 300, "alpha": False, "animated": False, "frames": 1,
        "colour_profile": None, "bytes": len(data)}
    assert json.loads(json.dumps(facts)) == facts


MANIFEST_OK = [row for row in manifest() if row["expected"].startswith("ok") and row["exif_transpose_size"]
               and not row["file"].startswith("heic/") and row["file"] != "jpeg/lossless_8bit_rgb.jpg"]


@pytest.mark.parametrize("row", MANIFEST_OK or [{"file": "(corpus missing)"}], ids=lambda row: row["file"])
def test_corpus_facts_match_the_manifest(row: dict[str, str]) -> None:
    """Size after EXIF orientation, frames, ICC name and alpha, for every readable file in the corpus."""
    require_corpus()
    data = (CORPUS / "real" / row["file"]).read_bytes()
    facts = info.describe(data, SETTINGS)
    # An unreadable EXIF block (the MANIFEST records the error) counts as no orientation.
    shown = row["exif_transpose_size"] if row["exif_transpose_size"][0].isdigit() else f"{row['width']}x{row['height']}"
    width, height = (int(v) for v in shown.split("x"))
    assert (facts["width"], facts["height"]) == (width, height)
    assert facts["frames"] == int(row["frames"])
    assert facts["animated"] == (int(row["frames"]) > 1 and row["pillow_format"] != "MPO")
    assert facts["colour_profile"] == (row["icc_profile"] or None)
    if row["pillow_mode"] in ("RGBA", "LA"):
        assert facts["alpha"] is True
    assert facts["bytes"] == len(data) and str(facts["lqip"]).startswith("data:image/webp;base64,")


def test_info_image_sample_json_is_what_a_page_needs() -> None:
    data = (SAMPLES / "device-screen-706x1442.png").read_bytes()
    facts = info.describe(data, SETTINGS)
    assert facts["alpha"] is True and facts["format"] == "png"
    image = Image.open(io.BytesIO(data))
    assert (facts["width"], facts["height"]) == image.size
