"""Fuzz the DC-scan JPEG decoder (sidecar/transform/dcjpeg_decoder.c) with atheris/libFuzzer.

Each input goes the way an upload would: Pillow parses the header (the pipeline only reaches the
decoder with files Pillow opened), then the C decoder gets the bytes and the 1/8 size Pillow expects.
It must return an image or decline; a crash, a sanitizer report or an exception other than Declined
is a finding. libFuzzer arguments pass through, e.g.:

    python -m fuzz.dcjpeg_fuzz -max_total_time=60 build/fuzz/corpus build/fuzz/seeds

With DCJPEG_MODULE=path/to/_dcjpeg.so the decoder is loaded from that build instead (an ASan build
made by `make fuzz-dc-asan`).
"""
from __future__ import annotations

import importlib.util
import io
import os
import sys
import warnings

import atheris

if os.environ.get("DCJPEG_MODULE"):
    spec = importlib.util.spec_from_file_location("sidecar.transform._dcjpeg", os.environ["DCJPEG_MODULE"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["sidecar.transform._dcjpeg"] = module

with atheris.instrument_imports():
    from sidecar.transform import dcjpeg

from PIL import Image

assert dcjpeg.available(), "the compiled decoder is missing: run `make install`"
warnings.simplefilter("ignore")
Image.MAX_IMAGE_PIXELS = 4_000_000  # the pipeline checks its own limit first; keep each run small


def test_one_input(data: bytes) -> None:
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Exception:
        return
    width, height = image.size
    if width * height > Image.MAX_IMAGE_PIXELS or image.mode not in ("L", "RGB", "CMYK"):
        return
    try:
        dcjpeg.decode(data, ((width + 7) // 8, (height + 7) // 8), image.mode)
    except dcjpeg.Declined:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
