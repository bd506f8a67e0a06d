"""Trim and face gravity on real pictures: a NASA portrait (tests/data/astronaut.jpg, public domain) put
onto the repo's sample photos at known places, and sample photos put onto white or transparent canvases."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from sidecar.errors import BadRequest
from sidecar.transform import faces, info, trim
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.heads import ASTRONAUT, FACE, with_heads
from tests.support.images import jpeg, opened, photo
from tests.support.paths import SAMPLES

SETTINGS = Settings(max_pixels=50_000_000, quality=90, background=(255, 255, 255))


def overlap(a: faces.Face, b: faces.Face) -> float:
    """Intersection over union."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


# Trim


def test_trim_finds_a_photo_on_white_to_two_pixels() -> None:
    canvas = Image.new("RGB", (1600, 1200), "white")
    canvas.paste(photo("redpanda-nikond80-3872x2592.jpg").resize((700, 469)), (512, 301))
    found = trim.box(opened(jpeg(canvas, 85)))
    assert all(abs(a - b) <= 2 for a, b in zip(found, (512, 301, 1212, 770), strict=True)), found


def test_trim_cuts_letterboxing_and_transparency() -> None:
    letterboxed = Image.new("RGB", (1920, 1440), "black")
    letterboxed.paste(photo(), (0, 180))
    found = trim.box(opened(jpeg(letterboxed)))
    assert all(abs(a - b) <= 2 for a, b in zip(found, (0, 180, 1920, 1260), strict=True)), found
    clear = Image.new("RGBA", (800, 600), (255, 0, 0, 0))  # transparent, whatever colour hides under it
    clear.paste(photo().resize((300, 200)).convert("RGBA"), (250, 100))
    assert trim.box(clear, 0) == (250, 100, 550, 300)


def test_trim_leaves_a_photo_without_borders_and_a_blank_image_whole() -> None:
    road = photo()
    assert trim.box(road, 10) == (0, 0, 1920, 1080)
    assert trim.box(Image.new("L", (40, 30), 200), 10) == (0, 0, 40, 30)


def test_trim_takes_the_colour_most_corners_share() -> None:
    canvas = Image.new("RGB", (400, 300), "white")
    canvas.paste(photo().resize((300, 200)), (100, 100))  # reaches the bottom right corner
    assert trim.box(canvas, 10) == (100, 100, 400, 300)


@pytest.mark.parametrize("segment, size", [("trim", (700, 469)), ("w350-trim", (350, 234)),
                                           ("w300-h300-fill-trim", (300, 300)), ("w300-h300-pad-trim", (300, 300))])
def test_trimmed_renditions_hold_no_white_margin(segment: str, size: tuple[int, int]) -> None:
    canvas = Image.new("RGB", (1600, 1200), "white")
    canvas.paste(photo("redpanda-nikond80-3872x2592.jpg").resize((700, 469)), (512, 301))
    rendered = opened(transform(jpeg(canvas), Ops.parse(segment, "png"), SETTINGS).data).convert("RGB")
    assert abs(rendered.width - size[0]) <= 2 and abs(rendered.height - size[1]) <= 2
    if "pad" not in segment:  # the photo's own edges are dark; a white margin's are all but 255
        grey = rendered.convert("L")
        w, h = grey.size  # 2 px in: JPEG's ringing may leave a pale line at the very edge
        for box in ((0, 2, w, 3), (0, h - 3, w, h - 2), (2, 0, 3, h), (w - 3, 0, w - 2, h)):
            strip = grey.crop(box)
            assert sum(strip.get_flattened_data()) / (strip.width * strip.height) < 200, box


def test_trim_threshold_zero_keeps_jpeg_noise_as_content() -> None:
    canvas = Image.new("RGB", (800, 600), "white")
    canvas.paste(photo().resize((300, 200)), (250, 200))
    data = jpeg(canvas, 60)
    loose = transform(data, Ops.parse("trim40", "png"), SETTINGS).size
    assert abs(loose[0] - 300) <= 2 and abs(loose[1] - 200) <= 2
    strict = transform(data, Ops.parse("trim0", "png"), SETTINGS).size
    assert strict[0] > 304 and strict[1] > 204  # JPEG's ringing is not the border's colour exactly
    with pytest.raises(BadRequest):
        Ops.parse("trim30", "png")  # `trim` is its spelling
    with pytest.raises(BadRequest):
        Ops.parse("trim101", "png")


# Face gravity


def test_the_detector_finds_the_labelled_face() -> None:
    found = faces.detect(Image.open(ASTRONAUT))
    # The lenient cascade may add one more box (the suit's orange passes for skin); the face is found.
    assert 1 <= len(found) <= 2
    assert max(overlap(face, tuple(c / 512 for c in FACE)) for face in found) > 0.6  # type: ignore[arg-type]


def test_face_gravity_keeps_a_face_the_centre_and_smart_crops_cut() -> None:
    picture, (label,) = with_heads(photo(), [(1400, 400, 2.5)])
    data = jpeg(picture)
    kept = {}
    for gravity in ("ce", "sm", "fc"):
        segment = "w300-h600-fill" + ("" if gravity == "ce" else f"-g{gravity}")
        rendered = transform(data, Ops.parse(segment, "png"), SETTINGS)
        kept[gravity] = len(faces.detect(opened(rendered.data)))
        if gravity == "fc":
            assert rendered.faces is not None and overlap(rendered.faces[0], label) > 0.5
    assert kept == {"ce": 0, "sm": kept["sm"], "fc": 1}


def test_face_gravity_keeps_every_face_that_fits_else_the_largest() -> None:
    two = [(0.10, 0.30, 0.16, 0.40), (0.60, 0.35, 0.64, 0.42)]
    centre = faces.focus(two, (0.8, 1.0))
    assert centre is not None and 0.3 < centre[0] < 0.45
    alone = faces.focus(two, (0.3, 1.0))  # holds the largest, as near the other as it can
    assert alone is not None and alone[0] - 0.15 <= 0.10 and alone[0] + 0.15 >= 0.16 and alone[0] > 0.2
    assert faces.focus([], (0.5, 0.5)) is None


def test_face_gravity_leaves_headroom_above_the_face() -> None:
    face = (0.45, 0.40, 0.55, 0.50)
    x, y = faces.focus([face], (0.5, 0.5)) or (0, 0)
    assert x == pytest.approx(0.5) and y < 0.45  # the room above is larger than below


def test_known_faces_are_used_instead_of_looking() -> None:
    picture, _ = with_heads(photo(), [(1400, 400, 2.5)])
    ops = Ops.parse("w300-h600-fill-gfc", "png")
    told = ((0.0, 0.4, 0.05, 0.5),)  # the left edge: the crop follows what it is told
    rendered = transform(jpeg(picture), ops, SETTINGS, known_faces=told)
    assert rendered.faces == told
    assert len(faces.detect(opened(rendered.data))) == 0


def test_face_gravity_without_a_face_is_smart_gravity() -> None:
    data = jpeg(photo())
    smart = opened(transform(data, Ops.parse("w300-h600-fill-gsm", "png"), SETTINGS).data)
    face = transform(data, Ops.parse("w300-h600-fill-gfc", "png"), SETTINGS)
    assert face.faces == ()
    assert opened(face.data).tobytes() == smart.tobytes()


def test_face_gravity_follows_a_rotation_and_a_trim() -> None:
    picture, _ = with_heads(photo(), [(1300, 250, 3.0)])
    framed = Image.new("RGB", (2120, 1280), "white")
    framed.paste(picture, (100, 100))
    undo = {  # each rendition turned back upright, for the detector
        "w300-h600-fill-gfc-r90": lambda image: image.rotate(90, expand=True),
        "w300-h600-fill-gfc-trim": lambda image: image,
        "w300-h600-fill-gfc-r270-flip-trim":
            lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(-90, expand=True),
    }
    for segment, upright in undo.items():
        rendered = opened(transform(jpeg(framed), Ops.parse(segment, "png"), SETTINGS).data)
        assert len(faces.detect(upright(rendered))) == 1, segment


def test_face_gravity_is_for_fill_only() -> None:
    with pytest.raises(BadRequest):
        Ops.parse("w300-h300-pad-gfc", "png")
    with pytest.raises(BadRequest):
        Ops.parse("w300-gfc", "png")


def test_the_info_document_has_the_faces_and_the_trim_box() -> None:
    picture, (label,) = with_heads(photo(), [(1300, 250, 3.0)])
    framed = Image.new("RGB", (2120, 1280), "white")
    framed.paste(picture, (100, 100))
    facts = info.describe(jpeg(framed), SETTINGS)
    assert all(abs(a - b) <= 10 for a, b in zip(facts["trim"], (100, 100, 2020, 1180), strict=True)), facts["trim"]
    (face,) = facts["faces"]
    shown = ((label[0] * 1920 + 100) / 2120, (label[1] * 1080 + 100) / 1280,
             (label[2] * 1920 + 100) / 2120, (label[3] * 1080 + 100) / 1280)
    assert overlap((face[0] / 2120, face[1] / 1280, face[2] / 2120, face[3] / 1280), shown) > 0.5
    plain = info.describe(jpeg(photo()), SETTINGS)
    assert plain["trim"] == [0, 0, 1920, 1080]


def test_face_gravity_and_trim_follow_the_exif_orientation() -> None:
    picture, _ = with_heads(photo(), [(1300, 250, 3.0)])
    framed = Image.new("RGB", (2120, 1280), "white")
    framed.paste(picture, (100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left: shown upright after a quarter turn right
    out = io.BytesIO()
    framed.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif.tobytes())
    rendered = transform(out.getvalue(), Ops.parse("w300-h600-fill-gfc-trim", "png"), SETTINGS)
    assert rendered.size == (300, 600) and len(faces.detect(opened(rendered.data))) == 1
    facts = info.describe(out.getvalue(), SETTINGS)
    assert all(abs(a - b) <= 10 for a, b in zip(facts["trim"], (100, 100, 2020, 1180), strict=True)), facts["trim"]
    assert len(facts["faces"]) == 1
    trimmed = transform(out.getvalue(), Ops.parse("trim", "png"), SETTINGS).size
    assert abs(trimmed[0] - 1920) <= 4 and abs(trimmed[1] - 1080) <= 4


@pytest.mark.parametrize("mode", ["P", "L", "I;16", "RGBA", "CMYK"])
def test_face_gravity_takes_every_mode(mode: str) -> None:
    picture, _ = with_heads(photo(), [(1300, 250, 3.0)])
    converted = picture.convert("I;16") if mode == "I;16" else picture.convert(mode)
    out = io.BytesIO()
    converted.save(out, "JPEG" if mode == "CMYK" else "PNG")
    rendered = transform(out.getvalue(), Ops.parse("w150-h300-fill-gfc", "png"), SETTINGS)
    assert rendered.size == (150, 300) and rendered.faces is not None


def test_face_gravity_keeps_the_cmyk_portraits_face() -> None:
    data = (SAMPLES / "portrait-cmyk-800x533.jpg").read_bytes()
    rendered = transform(data, Ops.parse("w200-h100-fill-gfc", "jpg"), SETTINGS)
    assert rendered.faces and len(faces.detect(opened(transform(
        data, Ops.parse("w400-h200-fill-gfc", "jpg"), SETTINGS).data))) == 1
