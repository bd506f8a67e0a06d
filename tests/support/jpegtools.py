"""Test JPEGs: photo-like content in every layout the DC decoder must handle, made with the real tools
(Pillow's libjpeg, `cjpeg`, lossless `jpegtran`). Used by the tests and as fuzzing seeds."""
from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from tests.support.images import encoded

# A scan script with non-interleaved DC scans and spectral selection only (no successive approximation).
SPECTRAL_ONLY = "0: 0 0 0 0;\n1: 0 0 0 0;\n2: 0 0 0 0;\n0: 1 9 0 0;\n0: 10 63 0 0;\n1: 1 63 0 0;\n2: 1 63 0 0;\n"
# Interleaved DC with two refinements and AC bands split differently for each component.
DC_REFINED_TWICE = (
    "0 1 2: 0 0 0 2;\n0: 1 5 0 1;\n1: 1 63 0 0;\n2: 1 63 0 0;\n0 1 2: 0 0 2 1;\n"
    "0: 6 63 0 1;\n0 1 2: 0 0 1 0;\n0: 1 63 1 0;\n"
)
# Chroma AC refined band by band while a higher band is already known (4:2:0 chroma needs its AC).
CHROMA_BANDS_REFINED = (
    "0 1 2: 0 0 0 0;\n0: 1 63 0 0;\n1: 1 5 0 1;\n1: 6 63 0 0;\n2: 1 63 0 2;\n1: 1 5 1 0;\n"
    "2: 1 63 2 1;\n2: 1 63 1 0;\n"
)
# Only DC scans: libjpeg smooths such images (its block smoothing), so the DC decoder must decline.
DC_ONLY = "0 1 2: 0 0 0 0;\n"


def random_scan_script(rng: random.Random, components: int) -> str:
    """A valid progressive scan script: DC interleaved or not, each component's AC split into random
    bands, each band and the DC with random successive approximation, the scans in random order."""
    dc_al = rng.randint(0, 3)
    interleaved = rng.random() < 0.5
    Scan = tuple[tuple[int, ...], int, int, int, int]  # components, Ss, Se, Ah, Al
    scans: list[Scan] = [(tuple(range(components)), 0, 0, 0, dc_al)] if interleaved else [
        ((c,), 0, 0, 0, dc_al) for c in range(components)]
    chains: list[list[Scan]] = [[(tuple(range(components)), 0, 0, al + 1, al) for al in range(dc_al - 1, -1, -1)]]
    for c in range(components):
        bounds = [1, *sorted(rng.sample(range(2, 63), rng.randint(0, 3))), 64]
        for start, stop in zip(bounds, bounds[1:]):
            al = rng.randint(0, 2)
            first: Scan = ((c,), start, stop - 1, 0, al)
            chains.append([first] +
                          [((c,), start, stop - 1, a + 1, a) for a in range(al - 1, -1, -1)])
    while any(chains):
        scans.append(rng.choice([chain for chain in chains if chain]).pop(0))
    return "".join(f"{' '.join(map(str, comps))}: {ss} {se} {ah} {al};\n" for comps, ss, se, ah, al in scans)


def photo(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Gradients, shapes and noise: every frequency band of every channel carries something."""
    width, height = size
    bands = []
    for i in range(len(Image.new(mode, (1, 1)).getbands())):
        base = Image.linear_gradient("L").resize(size).rotate(37 * i + seed, expand=False)
        noise = Image.effect_noise(size, 30 + 10 * i)
        layer = Image.blend(base, noise, 0.35)
        draw = ImageDraw.Draw(layer)
        for k in range(6):
            x, y = (width * (k + 1 + i)) // 9 % max(1, width), (height * (k + 2 * i + seed)) // 7 % max(1, height)
            box = (x - width // 8, y - height // 8, x + width // 8, y + height // 8)
            draw.ellipse(box, fill=(40 * k + 60 * i) % 256)
        bands.append(layer)
    return Image.merge(mode, bands)


def encode(image: Image.Image, **options: object) -> bytes:
    return encoded(image, "JPEG", **options)


def jpegtran(data: bytes, *args: str) -> bytes:
    """Lossless rewrite of `data` (`-progressive`, `-restart N`, `-scans FILE`, `-arithmetic`...)."""
    return subprocess.run(["jpegtran", *args], input=data, capture_output=True, check=True).stdout


def progressive(data: bytes, *args: str) -> bytes:
    return jpegtran(data, "-copy", "all", "-progressive", *args)


def with_scans(data: bytes, script: str) -> bytes:
    """`data` rewritten losslessly with the given scan script."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write(script)
        file.flush()
        return jpegtran(data, "-scans", file.name)


def cjpeg(image: Image.Image, *args: str) -> bytes:
    """Encode with libjpeg's `cjpeg` (it can make sampling layouts Pillow cannot, like 4:4:0 and 4:1:1)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / ("in.pgm" if image.mode == "L" else "in.ppm")
        image.save(source)
        return subprocess.run(["cjpeg", *args, str(source)], capture_output=True, check=True).stdout


def layouts() -> dict[str, bytes]:
    """Progressive JPEGs by name, covering sampling, colour spaces, restarts, scan scripts and odd sizes."""
    rgb, odd = photo((320, 240)), photo((203, 157), seed=5)
    baseline = encode(rgb, quality=90, subsampling=2)
    return {
        "444": progressive(encode(rgb, quality=90, subsampling=0)),
        "422": progressive(encode(rgb, quality=90, subsampling=1)),
        "420": progressive(baseline),
        "420-odd-size": progressive(encode(odd, quality=85, subsampling=2)),
        "422-odd-size": progressive(encode(odd, quality=85, subsampling=1)),
        "440": cjpeg(rgb, "-progressive", "-sample", "1x2", "-quality", "90"),
        "411": cjpeg(odd, "-progressive", "-sample", "4x1", "-quality", "90"),
        "rgb-colour-space": cjpeg(rgb, "-progressive", "-rgb", "-quality", "90"),
        "pillow-progressive": encode(rgb, quality=75, subsampling=2, progressive=True),
        "grey": progressive(encode(photo((250, 130), "L"), quality=90)),
        "grey-2x2-sampling": cjpeg(photo((130, 250), "L"), "-progressive", "-sample", "2x2"),
        "cmyk": progressive(encode(photo((120, 96), "CMYK"), quality=90)),
        "restart-every-row": progressive(baseline, "-restart", "1"),
        "restart-every-5-blocks": progressive(baseline, "-restart", "5B"),
        "restart-odd-size": progressive(encode(odd, quality=85, subsampling=2), "-restart", "3B"),
        "spectral-selection-only": with_scans(encode(rgb, quality=90, subsampling=0), SPECTRAL_ONLY),
        "dc-refined-twice": with_scans(baseline, DC_REFINED_TWICE),
        "chroma-bands-refined": with_scans(baseline, CHROMA_BANDS_REFINED),
        "quality-100": progressive(encode(rgb, quality=100, subsampling=2)),
        "quality-5": progressive(encode(rgb, quality=5, subsampling=2)),
    }
