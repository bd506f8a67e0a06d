"""JPEGs decoded row by row (`jpegrows`): Pillow's pixels, Pillow's answer for files it declines, and a
resize while decoding that is the plain resize within rounding."""
from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

from sidecar.errors import Undecodable
from sidecar.transform import jpegrows, parallel
from sidecar.transform.decode import decode as decode_step
from sidecar.transform.decode import decodes_in_rows
from sidecar.transform.pipeline import STEPS, Settings, transform
from sidecar.transform.work import Work
from sidecar.url.grammar import Ops
from tests.support.corpus import require_corpus
from tests.support.jpegtools import encode, photo

pytestmark = pytest.mark.skipif(not jpegrows.available(), reason="the C module is built by `make install`")
SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def _pillow(data: bytes, denominator: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (image.width // denominator, image.height // denominator))
    image.load()
    return image


def _decoded(data: bytes, denominator: int) -> Image.Image:
    rows = jpegrows.Rows(data, denominator)
    try:
        assert rows.read(7) == 7  # a few rows at a time, as the resize asks for them
        while rows.read(100) < rows.size[1]:
            pass
        return rows.image.convert("RGB")
    finally:
        rows.close()


def _largest_difference(one: Image.Image, other: Image.Image) -> int:
    return max(high for _, high in ImageChops.difference(one, other).getextrema())


KINDS = {
    "4:2:0": lambda: encode(photo((613, 411)), quality=90),
    "4:2:2": lambda: encode(photo((613, 411), seed=1), quality=90, subsampling=1),
    "4:4:4": lambda: encode(photo((613, 411), seed=2), quality=90, subsampling=0),
    "RGB-coded": lambda: encode(photo((613, 411), seed=3), quality=90, keep_rgb=True),
    "progressive": lambda: encode(photo((613, 411), seed=4), quality=90, progressive=True),
    "restart markers": lambda: encode(photo((613, 411), seed=5), restart_marker_blocks=3),
    "arithmetic": lambda: (require_corpus() / "real" / "jpeg" / "arithmetic_testimgari.jpg").read_bytes(),
}


@pytest.mark.parametrize("denominator", [1, 2, 4, 8])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_rows_are_the_pixels_pillow_decodes(kind: str, denominator: int) -> None:
    data = KINDS[kind]()
    ours, pillows = _decoded(data, denominator), _pillow(data, denominator)
    assert ours.size == pillows.size and pillows.mode == "RGB"
    assert _largest_difference(ours, pillows) == 0


@pytest.mark.parametrize("name", ["jpeg/gray_hopper.jpg", "jpeg/cmyk_plain_noicc.jpg", "jpeg/ycck_adobe.jpg",
                                  "jpeg/its_truncated.jpg", "jpeg/its_broken_stream.jpg",
                                  "jpeg/truncated_pillow.jpg", "jpeg/lossless_8bit_rgb.jpg"])
def test_what_it_does_not_decode_as_pillow_would_is_declined(name: str) -> None:
    data = (require_corpus() / "real" / name).read_bytes()
    with pytest.raises(jpegrows.Declined):
        _decoded(data, 1)


def test_a_truncated_photo_is_still_reported_as_undecodable() -> None:
    whole = encode(photo((1600, 1200)), quality=90)
    for cut in (len(whole) // 2, len(whole) - 40):
        with pytest.raises(Undecodable):
            transform(whole[:cut], Ops("jpeg", width=400), SETTINGS)


@pytest.mark.parametrize("size, box", [
    ((400, 268), (0.0, 0.0, 1600.0, 1072.0)),        # a plain downscale, many rows per band
    ((700, 701), (300.5, 10.25, 1500.0, 1011.0)),    # a crop: rows below the box are decoded and unused
    ((1600, 1072), (0.0, 0.0, 1600.0, 1072.0)),      # no pre-reduction at all
    ((301, 9), (0.0, 500.0, 1600.0, 530.0)),         # fewer rows than one band
])
def test_resizing_while_decoding_is_the_resize_within_rounding(size: tuple[int, int],
                                                               box: tuple[float, float, float, float]) -> None:
    data = encode(photo((1600, 1072), seed=7), quality=92)
    calls: list[int] = []
    rows = jpegrows.Rows(data, 1)

    def fill(count: int) -> int:
        calls.append(count)
        return rows.read(count)

    try:
        streamed = parallel.resize_while(rows.image, size, box, fill)
    finally:
        rows.close()
    whole = parallel.resize(_pillow(data, 1), size, box, bands=False)
    assert streamed.size == size and rows.image.size == (1600, 1072)
    difference = ImageChops.difference(streamed.convert("RGB"), whole)
    assert max(ImageStat.Stat(difference).mean) < 0.05 and _largest_difference(streamed.convert("RGB"), whole) <= 2
    assert sum(calls) >= 1072 and (len(calls) > 2 or size[1] < 2 * parallel.MIN_BAND_ROWS)


def test_a_decode_that_fails_half_way_raises_and_leaves_the_helper_free() -> None:
    data = encode(photo((1600, 1072), seed=8), quality=92)
    rows = jpegrows.Rows(data[: len(data) * 2 // 3], 1)

    with pytest.raises(jpegrows.Declined):
        parallel.resize_while(rows.image, (400, 268), (0.0, 0.0, 1600.0, 1072.0), rows.read)
    rows.close()
    small = parallel.resize(_pillow(data, 1), (400, 268), (0.0, 0.0, 1600.0, 1072.0), bands=True)
    assert small.size == (400, 268)


def _planned(ops: Ops, data: bytes) -> Work:
    """The work as `decode` sees it: read, limits checked, drafted."""
    work = Work(data, ops, SETTINGS, None, None)
    for step in STEPS[:STEPS.index(decode_step)]:
        step(work)
    return work


@pytest.mark.parametrize("ops, expected", [
    (Ops("jpeg", width=400), True), (Ops("jpeg", width=400, height=400, fit="fill"), True),
    (Ops("webp", width=400, rotate=90), True),
    (Ops("jpeg", width=4000, enlarge=True), False),                     # an enlargement: nothing to overlap
    (Ops("jpeg", width=400, trim=30), False),                           # trim reads the pixels before the resize
    (Ops("jpeg", width=400, height=400, fit="fill", gravity="sm"), False),
    (Ops("jpeg", width=400, height=400, fit="fill", gravity="fc"), False),
    (Ops("jpeg", width=1600), False),                                   # the plan keeps every pixel
])
def test_which_originals_decode_while_resizing(ops: Ops, expected: bool) -> None:
    assert decodes_in_rows(_planned(ops, encode(photo((1600, 1072)), quality=90))) is expected


def test_a_png_never_decodes_in_rows() -> None:
    buffer = io.BytesIO()
    photo((1600, 1072)).save(buffer, "PNG")
    assert decodes_in_rows(_planned(Ops("jpeg", width=400), buffer.getvalue())) is False


def _split_decoded(data: bytes, denominator: int) -> tuple[Image.Image, int]:
    rows = jpegrows.Rows(data, denominator)
    try:
        assert rows.split()
        parallel.both(lambda: rows.read(rows.limit), rows.read_lower)
        return rows.image.convert("RGB"), rows.limit
    finally:
        rows.close()


@pytest.mark.parametrize("denominator", [1, 2, 4, 8])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_a_file_cut_at_a_restart_marker_decodes_as_a_whole(subsampling: int, denominator: int) -> None:
    data = encode(photo((1203, 917), seed=subsampling), quality=90, subsampling=subsampling,
                  restart_marker_blocks=5)
    ours, cut = _split_decoded(data, denominator)
    pillows = _pillow(data, denominator)
    assert ours.size == pillows.size and 0.35 * ours.height <= cut <= 0.65 * ours.height
    assert _largest_difference(ours, pillows) == 0


@pytest.mark.parametrize("kind", ["no markers", "progressive", "arithmetic"])
def test_what_has_no_marker_to_cut_at_is_not_split(kind: str) -> None:
    data = KINDS["4:2:0" if kind == "no markers" else kind]()
    rows = jpegrows.Rows(data, 1)
    try:
        assert rows.split() is False and rows.limit == rows.size[1]
    finally:
        rows.close()


def test_markers_too_far_apart_are_not_cut_at() -> None:
    # One marker per 40 MCU rows of 8 (320 px) on a 400 px tall image: none near the middle.
    data = encode(photo((64, 400)), quality=90, subsampling=0, restart_marker_blocks=8 * 40)
    rows = jpegrows.Rows(data, 1)
    try:
        assert rows.split() is False
    finally:
        rows.close()


def test_a_damaged_lower_half_declines_the_whole_so_pillow_decodes_it_as_before() -> None:
    data = bytearray(encode(photo((1600, 1200), seed=9), quality=90, restart_marker_blocks=4))
    markers = [i for i in range(len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    data[markers[len(markers) * 3 // 4] + 1] = 0x00  # a marker three quarters down is gone: corrupt data
    image = Image.open(io.BytesIO(bytes(data)))
    assert jpegrows.resized(image, bytes(data), (400, 300), (0.0, 0.0, 1600.0, 1200.0), overlap=True) is None


@pytest.mark.parametrize("restart", [None, 4])
def test_both_cores_give_the_one_core_rendition(restart: int | None) -> None:
    options = {"restart_marker_blocks": restart} if restart else {}
    data = encode(photo((1600, 1200), seed=10), quality=90, **options)
    box = (100.0, 50.0, 1500.0, 1100.0)
    one = jpegrows.resized(Image.open(io.BytesIO(data)), data, (700, 525), box, overlap=False)
    two = jpegrows.resized(Image.open(io.BytesIO(data)), data, (700, 525), box, overlap=True)
    assert one is not None and two is not None and one.mode == two.mode == "RGB"
    difference = ImageChops.difference(one, two)
    assert max(ImageStat.Stat(difference).mean) < 0.05 and _largest_difference(one, two) <= 3


_MARKED = encode(photo((160, 144), seed=11), quality=85, restart_marker_blocks=2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_MARKED) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 40))
def test_damaged_files_are_declined_or_decoded_never_a_crash(changes: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_MARKED)
    for position, value in changes:
        data[position] = value
    damaged = bytes(data[: len(data) - cut])
    try:
        rows = jpegrows.Rows(damaged, 1)
    except jpegrows.Declined:
        return
    try:
        if rows.split():
            parallel.both(lambda: rows.read(rows.limit), rows.read_lower)
        else:
            rows.read(rows.size[1])
    except jpegrows.Declined:
        pass
    finally:
        rows.close()
