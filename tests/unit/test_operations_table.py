"""The table of operations, with plain values: every row round-trips through the grammar, and the grammar's
order, the builder's keywords, the presets' keys, the `url` command's flags and the docs are the table's."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import time
from pathlib import Path

import pytest

from sidecar.builder import build_url
from sidecar.cli import parser
from sidecar.config import Config, load
from sidecar.errors import BadRequest
from sidecar.url.grammar import Ops
from sidecar.url.operations import (
    FLAGS,
    KEYWORDS,
    OPERATIONS,
    ORDER,
    PRESET_KEYS,
    SLOTS,
    TOKENS,
    Operation,
    flag_keywords,
    markdown,
    read_segment,
)
from sidecar.url.presets import Preset
from tests.support.paths import REPO

#: The grammar's order, written out: a row missing from the table, or out of place, changes it.
GRAMMAR_ORDER = "w, h, fill/force/pad, g, up, x/ch, r, flip, trim, bl, sh, bg, wm, fr, q, mb, fb, e"

#: Every value each token can spell (or a spread of them), with the fields that value needs beside it.
TENTHS: list[object] = [n / 10 for n in range(1, 501)]
VALUES: dict[str, tuple[dict[str, object], list[object]]] = {
    "width": ({}, [1, 2, 9, 10, 99, 300, 1000, 9999, 16383]),
    "height": ({}, [1, 2, 9, 10, 99, 200, 1000, 9999, 16383]),
    "fit": ({"width": 30, "height": 20}, ["fill", "force", "pad"]),
    "gravity": ({"width": 30, "height": 20, "fit": "fill"}, ["n", "s", "e", "w", "ne", "nw", "se", "sw", "sm", "fc"]),
    "focus": ({"width": 30, "height": 20, "fit": "fill"}, [(0, 0), (1000, 1000), (250, 600), (1, 999), (10, 100)]),
    "enlarge": ({"width": 30}, [True]),
    "dpr": ({"width": 30}, TENTHS[10:40]),
    "client_hints": ({"width": 30}, [True]),
    "rotate": ({}, [90, 180, 270]),
    "flip": ({}, [True]),
    "trim": ({}, [0, 1, 9, 10, 20, 29, 31, 99, 100]),
    "blur": ({}, TENTHS),
    "sharpen": ({}, [0, *TENTHS[:100]]),
    "background": ({}, ["000000", "ffffff", "00ff7f", "0a0b0c"]),
    "watermark": ({}, ["logo", "a", "x" * 32, "brand_2"]),
    "frame": ({}, [0, 1, 9, 10, 99, 1000, 9999]),
    "quality": ({}, [*range(1, 101), "keep", "auto"]),
    "max_bytes": ({}, [100, 101, 999, 1000, 20000, 123456789, 10**9 - 1]),
    "fallback": ({}, ["thumb", "a", "z" * 32]),
    "expires": ({}, [1, 9, 1767225600, 10**11 - 1]),
}


def test_the_order_is_the_grammars() -> None:
    assert ORDER == GRAMMAR_ORDER
    assert [op.token.slot for op in TOKENS if op.token] == [
        "w", "h", "fill/force/pad", "g", "g", "up", "x/ch", "x/ch", "r", "flip", "trim", "bl", "sh", "bg", "wm", "fr",
        "q", "mb", "fb", "e"]
    slots = [op.token.slot for op in TOKENS if op.token]
    assert [slot for i, slot in enumerate(slots) if i == 0 or slots[i - 1] != slot] == list(SLOTS)  # side by side


def test_ops_fields_are_the_tables_rows_with_their_defaults() -> None:
    fields = dataclasses.fields(Ops)
    assert [f.name for f in fields] == ["format", *(op.name for op in TOKENS)]
    assert {op.name for op in OPERATIONS} == {f.name for f in fields}
    for f in fields[1:]:
        token = next(op.token for op in TOKENS if op.name == f.name)
        assert token is not None and token.default == f.default, f.name


@pytest.mark.parametrize("op", TOKENS, ids=[op.name for op in TOKENS])
def test_every_value_of_every_operation_round_trips(op: Operation) -> None:
    context, values = VALUES[op.name]
    without = Ops("jpeg", **context).segment  # type: ignore[arg-type]
    for value in values:
        ops = Ops("jpeg", **{**context, **op.fields(value)})  # type: ignore[arg-type]
        assert Ops.parse(ops.segment, "jpg") == ops, (op.name, value)
        assert read_segment(ops.segment)[op.name] == value
        assert len(ops.segment.split("-")) == len(without.split("-")) + (without != "orig")  # one token more


def test_the_round_trips_cover_every_row_and_the_examples_are_canonical() -> None:
    assert list(VALUES) == [op.name for op in TOKENS]
    for op in TOKENS:
        assert op.token is not None and op.token.example
        fields = read_segment(op.token.example)
        assert op.name in fields, op.name
        assert Ops("jpeg", **fields).segment == op.token.example  # type: ignore[arg-type]


def test_each_token_is_read_by_one_row_only() -> None:
    for op in TOKENS:
        assert op.token is not None
        for token in op.token.example.split("-"):
            readers = [other.name for other in TOKENS if other.token and other.token.pattern.fullmatch(token)]
            assert len(readers) == 1, (token, readers)


def test_tokens_out_of_order_or_twice_in_one_place_are_400() -> None:
    for first, second in itertools.pairwise(TOKENS):
        assert first.token is not None and second.token is not None
        one = first.token.example.split("-")[-1]
        other = second.token.example.split("-")[-1]
        with pytest.raises(BadRequest):
            read_segment(f"{other}-{one}")
    with pytest.raises(BadRequest, match="in the order w, h, fill/force/pad, g, up, x/ch"):
        read_segment("w10-x2-ch")


@pytest.mark.parametrize("op", [op for op in TOKENS if op.token and "{" in op.token.spelling],
                         ids=lambda op: op.name)
def test_a_token_without_its_value_or_with_more_is_400(op: Operation) -> None:
    assert op.token is not None
    token = op.token.example.split("-")[-1]
    bare = op.token.spelling.split("{")[0]
    for bad in (bare, f"{token}-", f"{bare}-{token}", token.upper(), f"{token}!", f"{token}%20", f" {token}"):
        with pytest.raises(BadRequest):
            Ops.parse(bad, "jpg")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    toml = tmp_path_factory.mktemp("operations") / "sidecar.toml"
    logo = REPO / "samples" / "device-screen-706x1442.png"
    toml.write_text(f"client_hints = true\n[watermarks.logo]\nimage = '{logo}'\n")
    return load(toml, env={"SIDECAR_SIGNING_KEYS": "k" * 32})


#: Each keyword of `build_url` with a value, and the ops segment and extension it makes of `a.png`.
KEYWORD_URLS: dict[str, tuple[object, str]] = {
    "width": (300, "w300.png"),
    "height": (200, "h200.png"),
    "fit": ("fill", "w30-h20-fill.png"),
    "gravity": ("n", "w30-h20-fill-gn.png"),
    "focus": ((250, 600), "w30-h20-fill-gfp250x600.png"),
    "enlarge": (True, "w30-h20-up.png"),
    "dpr": (1.5, "w30-h20-x1_5.png"),
    "client_hints": (True, "w30-h20-ch.png"),
    "rotate": (90, "r90.png"),
    "flip": ("v", "r180-flip.png"),
    "trim": (True, "trim.png"),
    "blur": (2.5, "bl2_5.png"),
    "sharpen": (0, "sh0.png"),
    "background": ("#00FF7F", "bg00ff7f.png"),
    "watermark": ("logo", "wmlogo.png"),
    "frame": (0, "fr0.png"),
    "format": ("webp", "orig.webp"),
    "quality": ("keep", "qkeep.jpg"),
    "max_bytes": (20000, "mb20000.png"),
    "expires": (1767225600, "e1767225600.png"),
}
#: What each keyword needs beside it (the sides for fill, a lossy format for quality).
NEEDS: dict[str, dict[str, object]] = {"fit": {"width": 30, "height": 20}, "enlarge": {"width": 30, "height": 20},
                                      "dpr": {"width": 30, "height": 20}, "client_hints": {"width": 30, "height": 20},
                                      "gravity": {"width": 30, "height": 20, "fit": "fill"},
                                      "focus": {"width": 30, "height": 20, "fit": "fill"}, "quality": {"format": "jpg"}}


def test_the_builders_keywords_are_the_tables(config: Config) -> None:
    assert KEYWORDS == tuple(KEYWORD_URLS)
    signature = inspect.signature(build_url)
    assert [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY] == \
        [*KEYWORD_URLS, "preset", "operations"]
    for keyword, (value, ending) in KEYWORD_URLS.items():
        path = build_url(config, "a.png", **{**NEEDS.get(keyword, {}), keyword: value})  # type: ignore[arg-type]
        name, signed, extension = path.rsplit("/", 1)[1].split(".")
        assert f"{name}.{extension}" == ending and len(signed) == 16, keyword
    with pytest.raises(TypeError, match="unexpected keyword argument 'fallback'"):
        build_url(config, "a.png", fallback="thumb")


def test_the_url_commands_flags_are_the_tables(config: Config) -> None:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    url = commands.choices["url"]
    options = [option for action in url._actions for option in action.option_strings]
    assert options == ["-h", "--help", "--config", "--info", "--width", "--height", "--fit", "--gravity", "--focus",
                       "--enlarge", "--dpr", "--client-hints", "--rotate", "--flip", "--trim", "--blur", "--sharpen",
                       "--background", "--watermark", "--frame", "--format", "--quality", "--max-bytes", "--expires-in",
                       "--preset"]
    assert [op.name for op, _ in FLAGS] == list(KEYWORDS)
    argv = {"width": ["--width", "300"], "height": ["--height", "200"], "fit": ["--fit", "fill"],
            "gravity": ["--gravity", "n"], "focus": ["--focus", "250,600"], "enlarge": ["--enlarge"],
            "dpr": ["--dpr", "1.5"], "client_hints": ["--client-hints"], "rotate": ["--rotate", "90"],
            "flip": ["--flip", "v"], "trim": ["--trim"], "blur": ["--blur", "2.5"], "sharpen": ["--sharpen", "0"],
            "background": ["--background", "#00FF7F"], "watermark": ["--watermark", "logo"], "frame": ["--frame", "0"],
            "format": ["--format", "webp"], "quality": ["--quality", "keep"],
            "max_bytes": ["--max-bytes", "20000"]}
    for keyword, flags in argv.items():
        needs = NEEDS.get(keyword, {})
        args = parser().parse_args(["url", "a.png", *(f"--{k}={v}" for k, v in needs.items()), *flags])
        keywords = flag_keywords(lambda dest: getattr(args, dest))  # noqa: B023 (called at once)
        assert keywords == {**needs, keyword: KEYWORD_URLS[keyword][0]}, keyword
    args = parser().parse_args(["url", "a.png", "--expires-in", "60"])
    expires = flag_keywords(lambda dest: getattr(args, dest))["expires"]
    assert 0 <= expires - (int(time.time()) + 60) <= 1


def test_the_presets_keys_are_the_tables(tmp_path: Path) -> None:
    assert PRESET_KEYS == ("width", "height", "fit", "gravity", "enlarge", "dpr", "client_hints", "rotate", "flip",
                           "trim", "blur", "sharpen", "background", "watermark", "frame", "format", "quality",
                           "max_bytes")
    assert {f.name for f in dataclasses.fields(Preset)} == {*PRESET_KEYS, "fallback_image"}
    every = Preset(width=300, height=200, fit="pad", gravity="n", enlarge=True, dpr=2, client_hints=True, rotate=90,
                   flip=True, trim=20, blur=1.5, sharpen=0, background="ffffff", watermark="logo", frame=2,
                   format="webp", quality=70, max_bytes=20000,
                   fallback_image=tmp_path / "f.png")
    assert set(every.operations("card")) == {*PRESET_KEYS, "fallback"}
    card = dataclasses.replace(every, dpr=None)  # client hints are the DPR
    assert Ops(**card.operations("card")).segment == \
        "w300-h200-pad-gn-up-ch-r90-flip-trim20-bl1_5-sh0-bgffffff-wmlogo-fr2-q70-mb20000-fbcard"


def test_the_docs_table_is_the_tables() -> None:
    committed = (REPO / "docs" / "operations-table.md").read_text()
    assert committed == markdown(), "regenerate it: python -m sidecar.url > docs/operations-table.md"
    for op in OPERATIONS:  # every row, in its place
        assert f"| `{op.name}` |" in committed or op.name == "fallback", op.name
    assert committed.index("`w{1..16383}`") < committed.index("`fb{preset}`") < committed.index("`.{jpg,")
