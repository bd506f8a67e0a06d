"""The URL grammar, with plain values: one canonical spelling per rendition."""
from __future__ import annotations

import pytest

from sidecar.builder import build_url
from sidecar.config import load
from sidecar.errors import BadRequest, Forbidden, UriTooLong
from sidecar.url.canonical import is_decimal
from sidecar.url.grammar import Info, Ops, Rendition, check_key, parse, shard


def test_round_trip_signed() -> None:
    ops = Ops("webp", width=300, height=200, fit="fill", gravity="n", quality=70)
    rendition = Rendition("products/red shoe.jpg", ops)
    path = rendition.path("/img", "A" * 16)
    assert path == (f"/img/{shard('products/red shoe.jpg')}/products/red%20shoe.jpg/"
                    f"w300-h200-fill-gn-q70.{'A' * 16}.webp")
    parsed = parse(path, prefix="/img", signed=True)
    assert parsed.target == rendition and parsed.signature == "A" * 16
    assert rendition.file_path("/img", "A" * 16).endswith(
        "/products/red%20shoe.jpg/=/w300-h200-fill-gn-q70.AAAAAAAAAAAAAAAA.webp")


def test_round_trip_unsigned_and_no_ops() -> None:
    rendition = Rendition("a.png", Ops("png"))
    path = rendition.path("/img", None)
    assert path.endswith("/a.png/orig.png")
    assert parse(path, prefix="/img", signed=False).target == rendition


def test_shard_is_two_hex_levels_of_the_key() -> None:
    assert len(shard("a.jpg")) == 5 and shard("a.jpg")[2] == "/"
    assert shard("a.jpg") != shard("b.jpg")
    assert all(c in "0123456789abcdef/" for c in shard("x"))


def test_shards_spread_keys_evenly() -> None:
    counts: dict[str, int] = {}
    for i in range(200_000):
        level = shard(f"{i}.jpg")[:2]
        counts[level] = counts.get(level, 0) + 1
    assert len(counts) == 256 and max(counts.values()) < 2 * 200_000 / 256


def signed(ops: str, key: str = "k.jpg", ext: str = "jpg") -> str:
    return f"/img/{shard(key)}/{key}/{ops}.{'B' * 16}.{ext}"


@pytest.mark.parametrize("ops", [
    "h100-w100",       # order
    "w100-w100",       # twice
    "w100-fit",        # default written
    "w100-h100-fill-gce",
    "w0",
    "w0100",
    "w100-q0",
    "w100-q101",
    "w100-q080",
    "w100-Q80",
    "gn-w100",
    "w100-gn",         # gravity without fill
    "w100-fill",       # fill without both sides
    "w100-force",
    "w99999",          # beyond MAX_SIDE
    "",
    "w100-",
    "-w100",
    "orig-w100",
    "resize",
])
def test_non_canonical_or_invalid_ops_are_400(ops: str) -> None:
    with pytest.raises(BadRequest):
        parse(signed(ops), prefix="/img", signed=True)


@pytest.mark.parametrize("path", [
    "/img/00/00/k.jpg/w100.BBBBBBBBBBBBBBBB.jpg",                 # wrong shard
    f"/img/{shard('k.jpg')}/k.jpg/w100.BBBBBBBBBBBBBBBB.jpeg",     # non-canonical extension
    f"/img/{shard('k.jpg')}/k.jpg/w100.BBBBBBBBBBBBBBBB.tif",
    f"/img/{shard('a b')}/a+b/w100.BBBBBBBBBBBBBBBB.jpg",
    f"/img/{shard('a b')}/a%20b/w100.BBBBBBBBBBBBBBBB.jpg.jpg",
    f"/img/{shard('A')}/%41/w100.BBBBBBBBBBBBBBBB.jpg",           # needless escape
    f"/img/{shard('a/b')}/a%2Fb/w100.BBBBBBBBBBBBBBBB.jpg",       # encoded slash
    f"/img/{shard('é')}/%c3%a9/w100.BBBBBBBBBBBBBBBB.jpg",        # lowercase hex
    f"/img/{shard('x')}/%ff/w100.BBBBBBBBBBBBBBBB.jpg",           # not UTF-8
    f"/img/{shard('..')}/../w100.BBBBBBBBBBBBBBBB.jpg",
    f"/img/{shard('a/../b')}/a/../b/w100.BBBBBBBBBBBBBBBB.jpg",
    f"/img/{shard('.env')}/.env/w100.BBBBBBBBBBBBBBBB.jpg",
    f"/img/{shard('a//b')}/a//b/w100.BBBBBBBBBBBBBBBB.jpg",
    "/img/k.jpg/w100.jpg",
    "/other/00/00/k.jpg/w100.jpg",
])
def test_bad_paths_are_400(path: str) -> None:
    with pytest.raises(BadRequest):
        parse(path, prefix="/img", signed=True)


def test_signature_problems_are_403() -> None:
    base = f"/img/{shard('k.jpg')}/k.jpg/w100"
    with pytest.raises(Forbidden):
        parse(base + ".jpg", prefix="/img", signed=True)
    with pytest.raises(Forbidden):
        parse(base + ".short.jpg", prefix="/img", signed=True)
    with pytest.raises(BadRequest):
        parse(base + ".BBBBBBBBBBBBBBBB.jpg", prefix="/img", signed=False)


def test_unicode_key_round_trips() -> None:
    rendition = Rendition("каталог/фото 1.jpg", Ops("jpeg", width=10))
    assert parse(rendition.path("/img", None), prefix="/img", signed=False).target == rendition


def test_ops_validate_at_construction() -> None:
    with pytest.raises(BadRequest):
        Ops("png", width=10, quality=80)
    with pytest.raises(BadRequest):
        Ops("tiff", width=10)
    with pytest.raises(BadRequest):
        Ops("gif", width=10, quality=80)  # GIF is not lossy
    with pytest.raises(BadRequest):
        Ops("gif", frame=10_000)
    with pytest.raises(BadRequest):
        Ops("jpeg", width=True)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        Rendition("", Ops("jpeg"))
    assert Ops("jpeg", width=5, quality="keep").segment == "w5-qkeep"


def test_new_tokens_round_trip_in_their_fixed_order() -> None:
    ops = Ops("avif", width=300, height=200, fit="fill", gravity="fp", focus=(250, 0), enlarge=True, dpr=1.5,
              watermark="logo", quality=60)
    assert ops.segment == "w300-h200-fill-gfp250x0-up-x1_5-wmlogo-q60"
    assert Ops.parse(ops.segment, "avif") == ops
    assert Ops.parse("w100-h100-fill-gsm", "auto") == Ops("auto", width=100, height=100, fit="fill", gravity="sm")
    assert Ops.parse("w100-x2", "jpg").target == (200, None)
    assert Ops.parse("w101-h33-x2_5", "webp").target == (252, 82)


@pytest.mark.parametrize("ops, ext", [
    ("w100-x1", "jpg"),            # DPR 1 is the default
    ("w100-x2_0", "jpg"),
    ("w100-x4_5", "jpg"),          # above 4
    ("w100-x0_5", "jpg"),
    ("x2", "jpg"),                 # DPR without a size
    ("up", "jpg"),                 # enlarge without a size
    ("w100-x2-up", "jpg"),         # order
    ("w100-h100-fill-gfp0500x1", "jpg"),   # leading zero
    ("w100-h100-fill-gfp1001x1", "jpg"),   # beyond 1000
    ("w100-h100-gfp500x500", "jpg"),       # focal point without fill
    ("w100-h100-fill-gce", "jpg"),
    ("w100-wmLogo", "jpg"),
    ("w100-q80", "png"),
    ("w100-h100-fill-gsm-gn", "jpg"),
])
def test_new_tokens_have_one_spelling(ops: str, ext: str) -> None:
    with pytest.raises(BadRequest):
        parse(signed(ops, ext=ext), prefix="/img", signed=True)


@pytest.mark.parametrize("ext", ["avif", "auto"])
def test_avif_and_auto_extensions(ext: str) -> None:
    assert parse(signed("w10", ext=ext), prefix="/img", signed=True).target.ops.extension == ext


def test_restyling_tokens_round_trip_in_their_fixed_order() -> None:
    ops = Ops("png", width=300, height=200, fit="pad", gravity="n", rotate=90, flip=True, blur=2.5, sharpen=0,
              background="00ff7f", watermark="logo", fallback="thumb")
    assert ops.segment == "w300-h200-pad-gn-r90-flip-bl2_5-sh0-bg00ff7f-wmlogo-fbthumb"
    assert Ops.parse(ops.segment, "png") == ops
    assert Ops.parse("w10-bl0_5-sh1_5", "jpg") == Ops("jpeg", width=10, blur=0.5, sharpen=1.5)
    assert Ops.parse("r270", "webp").turned and not Ops.parse("r180", "webp").turned
    assert Ops.parse("w400-ch-q70", "auto") == Ops("auto", width=400, client_hints=True, quality=70)


@pytest.mark.parametrize("ops, ext", [
    ("r0", "jpg"), ("r45", "jpg"), ("r360", "jpg"), ("r-90", "jpg"),
    ("flip-r90", "jpg"),             # order
    ("bl0", "jpg"), ("bl2_0", "jpg"), ("bl02", "jpg"), ("bl51", "jpg"), ("bl1.5", "jpg"),
    ("sh11", "jpg"), ("sh0_0", "jpg"), ("sh00", "jpg"),
    ("bgFFFFFF", "jpg"), ("bgfff", "jpg"), ("bgffffff00", "jpg"),
    ("w100-pad", "jpg"),             # pad needs both sides
    ("w100-h100-pad-gsm", "jpg"),    # smart gravity is for fill only
    ("w100-h100-pad-gfp1x1", "jpg"),
    ("ch", "jpg"), ("h100-ch", "jpg"),  # client hints need a width
    ("w100-x2-ch", "jpg"), ("w100-ch-x2", "jpg"),
    ("fbThumb", "jpg"), ("w100-fbthumb-q80", "jpg"),
    ("w100-sh2-bl1", "jpg"),
])
def test_restyling_tokens_have_one_spelling(ops: str, ext: str) -> None:
    with pytest.raises(BadRequest):
        parse(signed(ops, ext=ext), prefix="/img", signed=True)


def test_info_url_is_signed_like_a_rendition_and_has_one_spelling() -> None:
    parsed = parse(f"/img/{shard('a b.jpg')}/a%20b.jpg/info.{'C' * 16}.json", prefix="/img", signed=True)
    assert parsed.target == Info("a b.jpg") and parsed.signature == "C" * 16
    assert Info("a b.jpg").payload == "a%20b.jpg/info.json"
    assert Info("k.jpg").path("/img", None) == f"/img/{shard('k.jpg')}/k.jpg/info.json"
    for bad in ("w100.BBBBBBBBBBBBBBBB.json", "info.BBBBBBBBBBBBBBBB.jpg", "orig.BBBBBBBBBBBBBBBB.json"):
        with pytest.raises(BadRequest):
            parse(f"/img/{shard('k.jpg')}/k.jpg/{bad}", prefix="/img", signed=True)
    with pytest.raises(Forbidden):
        parse(f"/img/{shard('k.jpg')}/k.jpg/info.json", prefix="/img", signed=True)


def test_a_long_url_is_414_at_the_configured_length() -> None:
    path = signed("w100")
    assert parse(path, prefix="/img", signed=True, max_length=len(path)).target.ops.width == 100
    with pytest.raises(UriTooLong):
        parse(path, prefix="/img", signed=True, max_length=len(path) - 1)
    with pytest.raises(UriTooLong):
        parse("/img/" + "a" * 3000, prefix="/img", signed=True)


def test_expiry_is_the_last_token_and_has_one_spelling() -> None:
    ops = parse(signed("w100-q80-e1767225600"), prefix="/img", signed=True).target.ops
    assert ops.expires == 1767225600 and ops.segment == "w100-q80-e1767225600"
    assert Ops.parse("e5", "jpg") == Ops("jpeg", expires=5)  # orig with an expiry
    for bad in ("e1767225600-w100", "w100-e0", "w100-e01767225600", "w100-e123456789012", "w100-e1-e2"):
        with pytest.raises(BadRequest):
            parse(signed(bad), prefix="/img", signed=True)


def test_expiry_needs_a_signed_deployment() -> None:
    with pytest.raises(BadRequest, match="signed"):
        parse(f"/img/{shard('k.jpg')}/k.jpg/w100-e99.jpg", prefix="/img", signed=False)


def test_expiring_renditions_share_the_file_of_the_unexpiring_one() -> None:
    expiring = Rendition("k.jpg", Ops("jpeg", width=100, expires=99))
    assert expiring.payload != expiring.without_expiry().payload  # the signature covers the expiry
    assert expiring.without_expiry() == Rendition("k.jpg", Ops("jpeg", width=100))


@pytest.mark.parametrize("segment", ["w100-x1", "w100-up-x1", "w100-h100-fill-x1", "h50-x1", "w100-x1-q80",
                                     "w100-x1-r90-flip"])
def test_a_default_written_out_is_not_canonical(segment: str) -> None:
    # Every token here is well-formed and in order: only the canonical form (defaults are never written)
    # tells these from the URLs that omit `x1`, and each would be a second file for one rendition.
    with pytest.raises(BadRequest, match="not canonical"):
        Ops.parse(segment, "jpg")
    with pytest.raises(BadRequest, match="not canonical"):
        parse(signed(segment), prefix="/img", signed=True)
    assert parse(signed(segment.replace("-x1", "")), prefix="/img", signed=True).target.name == \
        segment.replace("-x1", "")


def test_the_builder_spells_each_flip_one_way() -> None:
    config = load(None, env={"SIDECAR_ALLOW_UNSIGNED": "1"})
    assert build_url(config, "k.jpg", width=100, flip="h").endswith("/k.jpg/w100-flip.jpg")
    assert build_url(config, "k.jpg", width=100, flip="v").endswith("/k.jpg/w100-r180-flip.jpg")
    assert build_url(config, "k.jpg", width=100, rotate=90, flip="v").endswith("/k.jpg/w100-r270-flip.jpg")
    assert build_url(config, "k.jpg", width=100, rotate=180, flip="v").endswith("/k.jpg/w100-flip.jpg")
    for wrong in ("H", "x", "hv", True):
        with pytest.raises(BadRequest, match="^flip must be h or v$"):
            build_url(config, "k.jpg", width=100, flip=wrong)


def test_a_background_is_written_lowercase_without_its_hash() -> None:
    config = load(None, env={"SIDECAR_ALLOW_UNSIGNED": "1"})
    assert build_url(config, "k.png", width=10, background="#FFaa00").endswith("/w10-bgffaa00.png")


def test_file_paths_are_the_url_paths_in_the_renditions_namespace() -> None:
    rendition = Rendition("a b/ü.jpg", Ops("jpeg", width=10, expires=99))
    assert rendition.path("/img", "S" * 16) == f"/img/{shard('a b/ü.jpg')}/a%20b/%C3%BC.jpg/w10-e99.{'S' * 16}.jpg"
    assert rendition.file_path("/img", None) == f"/img/{shard('a b/ü.jpg')}/a%20b/%C3%BC.jpg/=/w10-e99.jpg"
    assert rendition.without_expiry() == Rendition("a b/ü.jpg", Ops("jpeg", width=10))
    plain = Rendition("k.jpg", Ops("jpeg", width=10))
    assert plain.without_expiry() is plain


def test_a_background_that_is_not_text_is_refused_as_a_colour() -> None:
    config = load(None, env={"SIDECAR_ALLOW_UNSIGNED": "1"})
    with pytest.raises(BadRequest, match="background"):
        build_url(config, "k.png", width=10, background=0xFFFFFF)


def test_a_key_segment_may_have_200_bytes_and_no_more() -> None:
    check_key("a" * 200 + "/" + "é" * 42)  # 200 bytes; 84 bytes that are 252 when percent-encoded
    for key in ("a" * 201, "b/" + "é" * 43):  # 201 bytes; 258 percent-encoded, past a file name's 255
        with pytest.raises(BadRequest, match="200 bytes"):
            check_key(key)


def test_a_key_segment_may_be_255_characters_percent_encoded_and_no_more() -> None:
    check_key("é" * 40 + "a" * 15)  # 95 bytes, 255 characters percent-encoded: a file name's limit exactly
    with pytest.raises(BadRequest):
        check_key("é" * 40 + "a" * 16)  # 256


@pytest.mark.parametrize("expires", [2.0, True, 0, -5])
def test_an_expiry_is_a_whole_positive_number_of_type_int(expires: object) -> None:
    with pytest.raises(BadRequest, match="expiry"):
        Ops("jpeg", width=10, expires=expires)  # type: ignore[arg-type]


def test_build_url_trims_at_a_threshold_at_the_default_or_not_at_all() -> None:
    config = load(None, env={"SIDECAR_ALLOW_UNSIGNED": "1"})
    assert build_url(config, "k.jpg", width=100, trim=20).endswith("/w100-trim20.jpg")
    assert build_url(config, "k.jpg", width=100, trim=True).endswith("/w100-trim.jpg")
    assert build_url(config, "k.jpg", width=100, trim=False) == build_url(config, "k.jpg", width=100)


@pytest.mark.parametrize("field, value", [
    ("quality", 101), ("quality", 50.0), ("trim", 20.0), ("max_bytes", 20000.0), ("expires", 2.0),
    ("watermark", "Logo"), ("fallback", "card-1"), ("fallback", "x" * 33),
])
def test_a_number_of_the_wrong_type_or_out_of_range_is_refused(field: str, value: object) -> None:
    with pytest.raises(BadRequest):
        Ops("jpeg", width=10, **{field: value})  # type: ignore[arg-type]


def test_a_decimal_has_one_digit_after_the_point_at_most() -> None:
    assert is_decimal(1.5, 0, 10) and is_decimal(2, 0, 10)
    assert not is_decimal(1.25, 0, 10) and not is_decimal(1.05, 0, 10)
