"""The new input formats through the real nginx."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.images import SQUARE_SVG, encoded, marked, pdf_of
from tests.support.paths import DATA
from tests.support.stack import Stack, make_stack

ODD = DATA / "odd"


@pytest.fixture(scope="module")
def odd_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("odd")
    for path in ODD.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "square.svg").write_bytes(SQUARE_SVG)
    (folder / "doc.pdf").write_bytes(pdf_of(marked(300, 150), resolution=72))
    (folder / "icon.ico").write_bytes(encoded(marked(64, 64), "ICO", sizes=[(16, 16), (64, 64)]))
    (folder / "pic.jp2").write_bytes(encoded(marked(100, 50), "JPEG2000"))
    (folder / "big.tif").write_bytes(encoded(marked(100, 50), "TIFF", big_tiff=True))
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    stack = make_stack([folder])
    yield stack
    stack.close()


@pytest.mark.parametrize("name,status", [
    ("16bit.MM.cropped.tif", 200), ("cmx3g8_wv_1998.260_0745_mcidas.tiff", 200), ("hopper_bigtiff.tif", 200),
    ("multipage.tiff", 200), ("deerstalker.cur", 200), ("16bit.cropped.j2k", 200), ("square.svg", 200),
    ("doc.pdf", 200), ("icon.ico", 200), ("pic.jp2", 200), ("big.tif", 200), ("decompression_bomb.ico", 413),
])
def test_new_formats_through_nginx(odd_stack: Stack, name: str, status: int) -> None:
    started = time.monotonic()
    reply = odd_stack.get(odd_stack.url(name, width=120, format="png"))
    assert reply.status == status, (reply.status, reply.body)
    assert time.monotonic() - started < 20
    if status == 200:
        assert reply.image().format == "PNG" and reply.image().width <= 120
        again = odd_stack.get(odd_stack.url(name, width=120, format="png"))
        assert again.status == 200 and again.body == reply.body  # the hit
