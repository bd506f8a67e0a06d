"""The inputs of issue 16: BigTIFF, multi-page TIFF, ICO/CUR, JPEG 2000, SVG and PDF, sniffed from bytes,
limited from their headers, and through the transform and real nginx."""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from sidecar.errors import SidecarError, TooLarge, Undecodable, Unsupported
from sidecar.transform import info, pdf, svg
from sidecar.transform.headers import ico_largest
from sidecar.transform.pipeline import Settings, transform
from sidecar.transform.sniff import DECODABLE, HEAD, sniff
from sidecar.url.grammar import Ops
from tests.support.images import SQUARE_SVG, encoded, marked, opened, pdf_of
from tests.support.paths import DATA

ODD = DATA / "odd"
SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))


def rendered(data: bytes, ops: Ops, settings: Settings = SETTINGS) -> Image.Image:
    return opened(transform(data, ops, settings).data)



# -- sniffing ---------------------------------------------------------------------------------------

def test_each_new_format_is_sniffed_from_its_bytes() -> None:
    image = marked(64, 32)
    assert sniff(encoded(image, "TIFF", big_tiff=True)[:HEAD]) == "TIFF"
    assert sniff((ODD / "hopper_bigtiff.tif").read_bytes()[:HEAD]) == "TIFF"
    assert sniff(encoded(image, "ICO")[:HEAD]) == "ICO"
    assert sniff((ODD / "deerstalker.cur").read_bytes()[:HEAD]) == "CUR"
    assert sniff(encoded(image, "JPEG2000")[:HEAD]) == "JPEG2000"
    assert sniff(encoded(image, "JPEG2000", no_jp2=True)[:HEAD]) == "JPEG2000"
    assert sniff(pdf_of(image)[:HEAD]) == "PDF"
    assert sniff(SQUARE_SVG) == "SVG"
    long_prolog = b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- ' + b"x" * 300 + b" -->\n<svg>"
    assert sniff(long_prolog) == "SVG"
    for other in (b"<html><body></body></html>", b"\x00\x00\x01\x00\x00\x00", b"%!PS-Adobe-3.0"):
        with pytest.raises(Unsupported):
            sniff(other)


# -- TIFF ------------------------------------------------------------------------------------------

def test_16_bit_big_endian_tiffs_give_images_not_errors() -> None:
    for name in ("16bit.MM.cropped.tif", "cmx3g8_wv_1998.260_0745_mcidas.tiff"):
        source = Image.open(ODD / name)
        assert source.mode == "I;16B"
        out = rendered((ODD / name).read_bytes(), Ops("png"))
        assert out.mode == "L" and out.size == source.size
        for xy in ((0, 0), (source.width // 2, source.height // 3), (source.width - 1, source.height - 1)):
            # Scaled from 16 bits (a value of 40000 becomes 156), not clipped at 255.
            assert abs(out.getpixel(xy) - source.getpixel(xy) / 256) <= 1, (name, xy)


def test_bigtiff_is_read() -> None:
    data = encoded(marked(300, 200), "TIFF", big_tiff=True)
    assert data[:4] == b"II+\x00"
    out = rendered(data, Ops("png", width=150))
    assert out.size == (150, 100)
    assert rendered((ODD / "hopper_bigtiff.tif").read_bytes(), Ops("jpeg", width=64)).size == (64, 64)


def test_multi_page_tiff_gives_its_first_page_and_is_not_an_animation() -> None:
    pages = [Image.new("RGB", (80, 40), colour) for colour in ("red", "lime", "blue")]
    out_buffer = io.BytesIO()
    pages[0].save(out_buffer, format="TIFF", save_all=True, append_images=pages[1:])
    out = rendered(out_buffer.getvalue(), Ops("png", width=40))
    assert out.size == (40, 20) and out.convert("RGB").getpixel((20, 10)) == (255, 0, 0)
    limited = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255),
                       max_animation_pixels=80 * 40)  # pages are not frames: no animation limit
    assert rendered(out_buffer.getvalue(), Ops("png", width=40), limited).size == (40, 20)


# -- ICO / CUR -------------------------------------------------------------------------------------

def test_ico_gives_its_largest_entry() -> None:
    icon = Image.new("RGBA", (128, 128), (0, 128, 255, 255))
    data = encoded(icon, "ICO", sizes=[(16, 16), (32, 32), (128, 128)])
    assert ico_largest(data) == (128, 128)
    out = rendered(data, Ops("png"))
    assert out.size == (128, 128) and out.getpixel((64, 64)) == (0, 128, 255, 255)


def test_cur_is_read() -> None:
    out = rendered((ODD / "deerstalker.cur").read_bytes(), Ops("png"))
    assert out.size == (32, 32) and out.mode == "RGBA"


def test_ico_bomb_is_refused_from_its_directory() -> None:
    data = (ODD / "decompression_bomb.ico").read_bytes()
    with pytest.raises(TooLarge):
        transform(data, Ops("png", width=10), SETTINGS)


def test_a_png_entry_larger_than_its_directory_says_is_measured() -> None:
    big = encoded(Image.new("L", (3000, 3000)), "PNG")
    directory = b"\x00\x00\x01\x00\x01\x00" + bytes([16, 16, 0, 0, 1, 0, 32, 0]) + len(big).to_bytes(4, "little") \
        + (22).to_bytes(4, "little")
    data = directory + big
    assert ico_largest(data) == (3000, 3000)
    with pytest.raises(TooLarge):
        transform(data, Ops("png", width=10), Settings(max_pixels=1_000_000, quality=82,
                                                       background=(255, 255, 255)))


# -- JPEG 2000 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"no_jp2": True}], ids=["jp2", "j2k"])
def test_jpeg_2000_is_read(options: dict[str, object]) -> None:
    source = marked(200, 100)
    out = rendered(encoded(source, "JPEG2000", irreversible=False, **options), Ops("png", width=100))
    assert out.size == (100, 50)
    reference = source.convert("RGB").resize((100, 50), Image.Resampling.LANCZOS)
    difference = ImageChops.difference(out.convert("RGB"), reference)
    assert max(high for _, high in difference.getextrema()) < 40


def test_16_bit_jpeg_2000_is_read() -> None:
    out = rendered((ODD / "16bit.cropped.j2k").read_bytes(), Ops("png"))
    assert out.size == (64, 64) and out.mode == "L"


# -- SVG -------------------------------------------------------------------------------------------

def test_svg_is_drawn_at_the_renditions_size_not_scaled_up() -> None:
    out = rendered(SQUARE_SVG, Ops("png", width=800))
    assert out.size == (800, 400)
    row = [out.getpixel((x, 200)) for x in range(390, 410)]
    # Drawn at 800 px, the red/blue edge is one pixel wide; scaled up from 40 px it would be ~20.
    mixed = [p for p in row if p[0] not in (0, 255) or p[2] not in (0, 255)]
    assert len(mixed) <= 1, row


def test_svg_sizes_come_from_width_height_or_viewbox() -> None:
    assert svg.intrinsic_size(svg.sanitised(SQUARE_SVG, 10**9)) == (40, 20)
    only_box = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 30 10"/>'
    assert svg.intrinsic_size(svg.sanitised(only_box, 10**9)) == (30, 10)
    in_units = b'<svg xmlns="http://www.w3.org/2000/svg" width="1in" height="72pt"/>'
    assert svg.intrinsic_size(svg.sanitised(in_units, 10**9)) == (96, 96)
    nothing = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    assert svg.intrinsic_size(svg.sanitised(nothing, 10**9)) == svg.DEFAULT_SIZE


def test_svg_without_size_in_the_url_keeps_its_own_and_has_transparency() -> None:
    result = transform(SQUARE_SVG, Ops("auto"), SETTINGS)
    assert result.format == "png" and opened(result.data).size == (40, 20)


def test_svg_never_reads_files_or_urls_it_names(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (10, 10), (0, 255, 0)).save(secret)
    hostile = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
               f'width="10" height="10"><image href="{secret}" width="10" height="10"/>'
               f'<image xlink:href="file://{secret}" width="10" height="10"/>'
               f'<rect width="10" height="10" fill="none" style="stroke: url(http://127.0.0.1:9/x)"/></svg>').encode()
    out = rendered(hostile, Ops("png"))
    assert out.getextrema()[3] == (0, 0), "something was drawn from outside the file"


def test_svg_keeps_embedded_images_and_internal_references() -> None:
    dot = base64.b64encode(encoded(Image.new("RGB", (4, 4), (0, 255, 0)), "PNG")).decode()
    markup = (f'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><defs>'
              f'<linearGradient id="g"><stop offset="0" stop-color="#00f"/></linearGradient></defs>'
              f'<rect width="8" height="4" fill="url(#g)"/>'
              f'<image href="data:image/png;base64,{dot}" y="4" width="8" height="4"/></svg>').encode()
    out = rendered(markup, Ops("png"))
    assert out.getpixel((4, 1))[:3] == (0, 0, 255) and out.getpixel((4, 6))[:3] == (0, 255, 0)


def test_svg_scripts_and_entities_are_refused_or_removed() -> None:
    scripted = (b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4" onload="alert(1)">'
                b'<script>alert(1)</script><foreignObject><p>x</p></foreignObject></svg>')
    root = svg.sanitised(scripted, 10**9)
    assert root.get("onload") is None and [svg._local(e.tag) for e in root.iter()] == ["svg"]
    laughs = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
              b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>')
    with pytest.raises(Undecodable):
        transform(laughs, Ops("png"), SETTINGS)


def use_bomb(levels: int) -> bytes:
    """Ten uses of ten uses of ... a rectangle: 10**levels rectangles drawn from a few hundred bytes."""
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="9" '
             'height="9"><defs><g id="l0"><rect width="1" height="1"/></g>']
    for level in range(1, levels + 1):
        uses = "".join(f'<use xlink:href="#l{level - 1}" x="{x}"/>' for x in range(10))
        parts.append(f'<g id="l{level}">{uses}</g>')
    return "".join([*parts, f'</defs><use xlink:href="#l{levels}"/></svg>']).encode()


def test_svg_reference_bombs_are_refused_before_drawing() -> None:
    assert rendered(use_bomb(2), Ops("png")).size == (9, 9)  # a few hundred copies are fine
    started = time.monotonic()
    with pytest.raises(TooLarge):
        transform(use_bomb(9), Ops("png", width=10), SETTINGS)  # a billion copies
    assert time.monotonic() - started < 1
    patterns = ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><defs>'
                '<pattern id="p0" width="1" height="1"><rect width="1" height="1"/></pattern>'
                + "".join(f'<pattern id="p{i}" width="1" height="1">'
                          + f'<rect width="1" height="1" fill="url(#p{i - 1})"/>' * 10 + "</pattern>"
                          for i in range(1, 9))
                + '</defs><rect width="9" height="9" fill="url(#p8)"/></svg>').encode()
    with pytest.raises(TooLarge):
        transform(patterns, Ops("png", width=10), SETTINGS)
    deep = b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * 5000 + b"</g>" * 5000 + b"</svg>"
    with pytest.raises(TooLarge):
        transform(deep, Ops("png", width=10), SETTINGS)


def test_svg_declaring_an_absurd_size_is_drawn_within_the_pixel_budget() -> None:
    giant = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" width="10000000" height="10000000"/>'
    assert rendered(giant, Ops("png", width=100, height=100)).size == (100, 100)
    with pytest.raises(TooLarge):  # asked for more than max_pixels
        transform(giant, Ops("png", width=9000, height=9000, fit="force"), SETTINGS)


@pytest.mark.parametrize("data", [b"<svg ", b"<svg xmlns='x'><unclosed></svg>", b"<?xml version='1.0'?><svg/",
                                  b"<html><svg></svg></html>"])
def test_broken_svg_is_a_422(data: bytes) -> None:
    with pytest.raises(Undecodable):
        transform(data, Ops("png", width=10), SETTINGS)


# -- PDF -------------------------------------------------------------------------------------------

def test_pdf_first_page_is_drawn_at_the_renditions_size() -> None:
    pages = [marked(400, 200), Image.new("RGB", (100, 100), "black")]
    buffer = io.BytesIO()
    pages[0].convert("RGB").save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=72)
    result = transform(buffer.getvalue(), Ops("png", width=800), SETTINGS)
    out = opened(result.data)
    assert out.size == (800, 400)  # 400 pt (px) wide: drawn at 800 px, not the black second page
    reference = marked(800, 400).convert("RGB")
    difference = ImageChops.difference(out.convert("RGB"), reference)
    assert sum(high for _, high in difference.getextrema()) < 3 * 120
    assert result.source.format == "PDF" and result.format == "png"


def test_pdf_page_size_limits() -> None:
    huge = pdf_of(Image.new("RGB", (30, 30)), resolution=0.1)  # 30 px at 0.1 dpi: 21600 points
    with pytest.raises(Undecodable):
        transform(huge, Ops("png", width=10), SETTINGS)


def test_pdf_drawing_has_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "RENDER_SECONDS", -1.0)  # already over: the first pause gives up
    many = io.BytesIO()
    Image.new("RGB", (50, 50), "red").save(many, format="PDF", resolution=72)
    with pytest.raises(TooLarge):
        transform(many.getvalue(), Ops("png", width=1000), SETTINGS)


@pytest.mark.parametrize("data", [b"%PDF-1.4\n", b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF",
                                  b"%PDF-" + b"\x00" * 100])
def test_broken_pdf_is_a_422(data: bytes) -> None:
    with pytest.raises(Undecodable):
        transform(data, Ops("png", width=10), SETTINGS)


def test_a_real_world_quirky_pdf_is_read() -> None:
    assert rendered((ODD / "duplicate_xref_entry.pdf").read_bytes(), Ops("png", width=100)).width == 100


# -- through nginx ---------------------------------------------------------------------------------


def test_info_describes_every_new_format() -> None:
    made = {"ico": encoded(marked(64, 64), "ICO", sizes=[(64, 64)]), "jp2": encoded(marked(80, 40), "JPEG2000"),
            "svg": SQUARE_SVG, "pdf": pdf_of(marked(80, 40), resolution=72),
            "cur": (ODD / "deerstalker.cur").read_bytes(), "tiff": (ODD / "hopper_bigtiff.tif").read_bytes()}
    for name, data in made.items():
        facts = info.describe(data, SETTINGS)
        assert facts["format"] == name and facts["width"] > 0 and facts["thumbhash"], (name, facts)
    assert set(info._FORMAT_NAMES) == set(DECODABLE)  # every format read has a name to report


def test_every_transform_error_is_a_sidecar_error() -> None:
    # Whatever the new decoders meet, a SidecarError (4xx) comes out, never anything else (a 500).
    for data in (SQUARE_SVG[:30], pdf_of(marked(10, 10))[:200], encoded(marked(), "ICO")[:40],
                 encoded(marked(), "JPEG2000")[:60], encoded(marked(), "TIFF", big_tiff=True)[:100]):
        with pytest.raises(SidecarError):
            transform(data, Ops("png", width=10), SETTINGS)
