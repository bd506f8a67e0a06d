"""A short fuzz run inside `make test` (hypothesis, `FUZZ_SECONDS` per target, default 4), and every
finding of earlier runs (tests/data/fuzz-findings/) replayed. `make fuzz` runs the coverage-guided atheris
fuzzer (fuzz/sidecar_fuzz.py) on the same targets for longer; what it finds lands there too."""
from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sidecar.errors import BadRequest
from sidecar.url.grammar import COMPASS, FORMAT_EXTENSION, Ops, Rendition
from tests.support.corpus import require_corpus
from tests.support.fuzz_targets import (
    OPS,
    hostile_animations,
    image_target,
    seeds,
    url_target,
)
from tests.support.paths import DATA

SECONDS = float(os.environ.get("FUZZ_SECONDS", "4"))
FINDINGS = DATA / "fuzz-findings"
BATCH = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def for_a_while(run: Callable[[], None]) -> None:
    """Run a hypothesis test in batches until SECONDS have passed (each batch draws new examples)."""
    end = time.monotonic() + SECONDS
    while True:
        run()
        if time.monotonic() > end:
            return


@st.composite
def renditions(draw: st.DrawFn) -> Rendition:
    key = draw(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
                        min_size=1, max_size=3).map("/".join))
    fill = draw(st.sampled_from(("fit", "fill", "force")))
    width = draw(st.none() | st.integers(1, 20000)) if fill == "fit" else draw(st.integers(1, 20000))
    height = draw(st.none() | st.integers(1, 20000)) if fill == "fit" else draw(st.integers(1, 20000))
    fmt = draw(st.sampled_from(sorted(FORMAT_EXTENSION)))
    gravity = draw(st.sampled_from((*COMPASS, "sm"))) if fill == "fill" else "ce"
    try:
        ops = Ops(fmt, width=width, height=height, fit=fill, gravity=gravity,  # type: ignore[arg-type]
                  enlarge=draw(st.booleans()) and (width or height) is not None,
                  dpr=draw(st.sampled_from((1, 1.5, 2, 4))) if (width or height) else 1,
                  quality=draw(st.none() | st.integers(1, 100)) if fmt in ("jpeg", "webp", "avif") else None,
                  expires=draw(st.none() | st.integers(1, 10**11 - 1)))
        return Rendition(key, ops)
    except BadRequest:
        assume(False)
        raise


def test_the_url_parser_takes_any_text() -> None:
    @BATCH
    @given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: "/img/" + b.decode("latin-1")))
    def run(path: str) -> None:
        url_target(path.encode("latin-1", "replace"))

    for_a_while(run)


def test_built_urls_round_trip_and_their_mutants_are_canonical_or_refused() -> None:
    @BATCH
    @given(renditions(), st.sampled_from((None, "A" * 16, "b-_9" * 4)), st.data())
    def run(rendition: Rendition, signature: str | None, data: st.DataObject) -> None:
        path = rendition.path("/img", signature)
        url_target(path.encode("latin-1", "replace") if path.isascii() else path.encode())
        chars = list(path)
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(chars)))
            edit = data.draw(st.sampled_from(("insert", "delete", "replace")))
            char = data.draw(st.sampled_from("-._/%2Aawhqefx0159~ ") )
            if edit == "insert":
                chars.insert(at, char)
            elif at < len(chars):
                chars[at:at + 1] = [] if edit == "delete" else [char]
        url_target("".join(chars).encode("utf-8"))

    for_a_while(run)


def mutated(seed: bytes, data: st.DataObject, changes: int) -> bytes:
    """`seed` with up to `changes` bytes changed, and maybe cut short."""
    out = bytearray(seed)
    for _ in range(data.draw(st.integers(0, changes))):
        at = data.draw(st.integers(0, len(out) - 1))
        out[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del out[data.draw(st.integers(0, len(out))):]
    return bytes(out)


def test_the_transform_takes_mutated_corpus_files() -> None:
    originals = seeds(require_corpus())

    @BATCH
    @given(st.sampled_from(originals), st.integers(0, 255), st.data())
    def run(seed: bytes, pick: int, data: st.DataObject) -> None:
        image_target(bytes([pick]) + mutated(seed, data, 8))

    for_a_while(run)


def test_the_transform_takes_mutated_hostile_animations() -> None:
    animations = list(hostile_animations().values())

    @BATCH
    @given(st.sampled_from(animations), st.integers(0, 255), st.data())
    def run(seed: bytes, pick: int, data: st.DataObject) -> None:
        image_target(bytes([pick]) + mutated(seed, data, 6))

    for_a_while(run)


SVG_ELEMENTS = ("svg", "g", "rect", "circle", "path", "text", "use", "image", "filter", "feGaussianBlur",
                "linearGradient", "pattern", "mask", "clipPath", "script", "foreignObject", "style", "a")
SVG_ATTRIBUTES = ("width", "height", "viewBox", "x", "y", "r", "d", "href", "xlink:href", "style", "fill",
                  "stdDeviation", "transform", "onload", "patternUnits", "id")
SVG_VALUES = ("0", "1", "-1", "1e9", "100%", "0 0 1 1", "0 0 0 0", "#a", "url(#a)", "url(http://127.0.0.1:9/)",
              "/etc/passwd", "file:///etc/hostname", "data:image/png;base64,iVBORw0KGgo=", "M0 0L1e9 1e9Z",
              "scale(1e30)", "@import url(x.css)", "&#x41;", "999999")


@st.composite
def svg_documents(draw: st.DrawFn, depth: int = 0) -> str:
    """SVG-like markup: real elements, hostile and ordinary attribute values, nested a few levels."""
    tag = "svg" if depth == 0 else draw(st.sampled_from(SVG_ELEMENTS))
    attributes = draw(st.dictionaries(st.sampled_from(SVG_ATTRIBUTES), st.sampled_from(SVG_VALUES) | st.text(
        st.characters(codec="ascii", exclude_characters='"<&'), max_size=12), max_size=5))
    namespaces = ' xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"' if depth == 0 else ""
    children = draw(st.lists(svg_documents(depth + 1), max_size=3)) if depth < 3 else []
    text = " ".join(f'{name}="{value}"' for name, value in attributes.items())
    return f"<{tag}{namespaces} {text}>{''.join(children)}</{tag}>"


def test_the_svg_decoder_takes_hostile_markup() -> None:
    @BATCH
    @given(svg_documents(), st.integers(0, 255), st.booleans())
    def run(markup: str, pick: int, doctype: bool) -> None:
        prolog = '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY e "x">]>' if doctype else ""
        image_target(bytes([pick]) + (prolog + markup).encode())

    for_a_while(run)


@pytest.mark.parametrize("name", sorted(hostile_animations()))
def test_every_hostile_animation_with_every_operation_is_an_image_or_a_4xx(name: str) -> None:
    data = hostile_animations()[name]
    for pick in range(len(OPS)):
        image_target(bytes([pick]) + data)




DC_CRASHES = DATA / "dcjpeg-crashes"


def replays() -> list[tuple[str, str, bytes]]:
    """Inputs that once broke something: the fuzzers' findings (`url/` or `image/`, stored as the target
    takes them), and the C decoder's crashes sent down the whole image path with every rendition shape."""
    found = [(p.parent.name, f"{p.parent.name}/{p.name}", p.read_bytes())
             for p in sorted(FINDINGS.rglob("*")) if p.is_file()]
    found += [("image", f"dcjpeg/{p.name}/op{pick}", bytes([pick]) + p.read_bytes())
              for p in sorted(DC_CRASHES.iterdir()) if p.is_file() for pick in range(len(OPS))]
    return found


REPLAYS = replays()


def test_there_is_something_to_replay() -> None:
    assert REPLAYS, "no findings and no decoder crashes: the replay below would test nothing"


@pytest.mark.parametrize("target, data", [(t, d) for t, _, d in REPLAYS], ids=[i for _, i, _ in REPLAYS])
def test_earlier_findings_stay_fixed(target: str, data: bytes) -> None:
    {"url": url_target, "image": image_target}[target](data)
