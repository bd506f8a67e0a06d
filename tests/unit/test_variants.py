"""Client hints and auto formats with plain values: what nginx's variant makes of a URL, and of a file name."""
from __future__ import annotations

import pytest

from sidecar.errors import BadRequest
from sidecar.url.grammar import Ops
from sidecar.url.variants import Hint, cached_ops, hinted, variant_suffix


@pytest.mark.parametrize("ops, hint, width, height, dpr", [
    (Ops("jpeg", width=400, height=300, fit="fill", client_hints=True), Hint(width=640), 640, 480, 1.0),
    (Ops("jpeg", width=400, client_hints=True), Hint(width=320), 320, None, 1.0),
    (Ops("jpeg", width=400, height=300, client_hints=True), Hint(dpr=1.5), 400, 300, 1.5),
    (Ops("jpeg", width=400, client_hints=True), Hint(dpr=1.0), 400, None, 1.0),
])
def test_hints_turn_a_client_hint_url_into_plain_operations(ops: Ops, hint: Hint, width: int,
                                                            height: int | None, dpr: float) -> None:
    resolved = hinted(ops, hint)
    assert (resolved.width, resolved.height, resolved.dpr, resolved.client_hints) == (width, height, dpr, False)
    assert resolved.fit == ops.fit


def test_hint_values_and_the_cache_file_suffix() -> None:
    widths, dprs = (320, 640), (1.0, 1.5, 2.0)
    assert Hint.parse("w640", widths, dprs) == Hint(width=640)
    assert Hint.parse("x1_5", widths, dprs) == Hint(dpr=1.5) and Hint(dpr=1.5).suffix == "x1_5"
    for bad in ("w641", "x3", "x1_0", "w0640", "", "w640 ", "x"):
        with pytest.raises(BadRequest):
            Hint.parse(bad, widths, dprs)
    ch = Ops("jpeg", width=400, client_hints=True)
    assert variant_suffix(ch, Hint(width=640), "jpeg") == ".w640.jpg"
    assert variant_suffix(Ops("auto", width=400, client_hints=True), Hint(dpr=2.0), "webp") == ".x2.webp"
    assert variant_suffix(Ops("auto", width=400), None, "avif") == ".avif"
    assert variant_suffix(Ops("png", width=400), None, "png") == ""


def test_cached_file_names_give_the_operations_they_were_made_with() -> None:
    assert cached_ops(f"w400-ch.{'B' * 16}.jpg.w640.jpg") == Ops("jpeg", width=640)
    assert cached_ops(f"w400-h300-ch.{'B' * 16}.auto.x2.webp") == Ops("webp", width=400, height=300, dpr=2.0)
    assert cached_ops(f"w400.{'B' * 16}.auto.avif") == Ops("avif", width=400)
    assert cached_ops("w400.png") == Ops("png", width=400)
    for other in (".source.json", f"info.{'B' * 16}.json", ".tmp-abc", "w400.auto", "junk.jpg"):
        assert cached_ops(other) is None
