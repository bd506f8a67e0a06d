"""Vector inputs drawn at the rendition's size against drawn at their own size and then resized.

    make bench-vector                  # or: .venv/bin/python bench/vector.py [--rounds N]

For each SVG (the corpus logo, a made drawing of thin lines and text, and the same drawing declared at
24 px, like an icon) and each width, three ways to a PNG rendition of that width, interleaved round by
round because the machine is shared:
  drawn      the sidecar's transform: resvg draws the whole picture at the rendition's size
  resized    resvg draws at the SVG's own size, then LANCZOS to the width (what a pipeline that treats
             SVG as a raster does)
and a reference drawn at 4x the width and reduced with LANCZOS (supersampled). Quality is SSIM against
the reference (8x8 windows, on luma over white, pure Python); bytes are the PNG's; time is the median.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import resvg_py  # noqa: E402
from PIL import Image  # noqa: E402

from sidecar.transform import svg  # noqa: E402
from sidecar.transform.pipeline import Settings, transform  # noqa: E402
from sidecar.url.grammar import Ops  # noqa: E402

CORPUS = Path(os.environ.get("SIDECAR_CORPUS", REPO.parent / "shared" / "corpus"))
SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
WIDTHS = (200, 800, 1600)


def detail(size: int) -> bytes:
    lines = "".join(f'<line x1="{i}" y1="0" x2="{i * 0.7}" y2="100" stroke="#123" stroke-width="0.15"/>'
                    for i in range(0, 100, 3))
    circles = "".join(f'<circle cx="50" cy="50" r="{r}" fill="none" stroke="#c03" stroke-width="0.2"/>'
                      for r in range(2, 48, 4))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 100 100">'
            f'<rect width="100" height="100" fill="#fff"/>{lines}{circles}'
            '<text x="10" y="90" font-size="6" font-family="sans-serif">Shop logo 12</text></svg>').encode()


def draw(markup: str, width: int) -> Image.Image:
    return Image.open(io.BytesIO(bytes(resvg_py.svg_to_bytes(svg_string=markup, width=width)))).convert("RGBA")


def drawn(data: bytes, width: int) -> tuple[Image.Image, int]:
    result = transform(data, Ops("png", width=width), SETTINGS)
    return Image.open(io.BytesIO(result.data)).convert("RGBA"), len(result.data)


def resized(data: bytes, width: int) -> tuple[Image.Image, int]:
    root = svg.sanitised(data, SETTINGS.max_pixels)
    own = round(svg.intrinsic_size(root)[0])
    image = draw(svg.ET.tostring(root, encoding="unicode"), own)
    height = max(1, round(image.height * width / image.width))
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return image, len(out.getvalue())


def reference(data: bytes, width: int, height: int) -> Image.Image:
    markup = svg.ET.tostring(svg.sanitised(data, SETTINGS.max_pixels), encoding="unicode")
    return draw(markup, width * 4).resize((width, height), Image.Resampling.LANCZOS)


def luma(image: Image.Image) -> list[int]:
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return list(Image.alpha_composite(white, image).convert("L").tobytes())


def ssim(a: Image.Image, b: Image.Image, block: int = 8) -> float:
    """Mean SSIM over non-overlapping block x block windows (Wang et al.'s constants), on luma."""
    width, height = a.size
    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for top in range(0, height - block + 1, block):
        for left in range(0, width - block + 1, block):
            idx = [(top + j) * width + left + i for j in range(block) for i in range(block)]
            xs, ys = [x[k] for k in idx], [y[k] for k in idx]
            n = len(idx)
            mx, my = sum(xs) / n, sum(ys) / n
            vx = sum((v - mx) ** 2 for v in xs) / n
            vy = sum((v - my) ** 2 for v in ys) / n
            cov = sum((p - mx) * (q - my) for p, q in zip(xs, ys)) / n
            scores.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return statistics.fmean(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    inputs = {"detail.svg (100 px)": detail(100), "icon.svg (24 px)": detail(24)}
    logo = CORPUS / "real" / "svg" / "logo.svg"
    if logo.exists():
        inputs = {"logo.svg (736 px)": logo.read_bytes(), **inputs}
    ways = {"drawn": drawn, "resized": resized}
    times: dict[tuple[str, int, str], list[float]] = {}
    results: dict[tuple[str, int, str], tuple[Image.Image, int]] = {}
    for _ in range(args.rounds):
        for name, data in inputs.items():
            for width in WIDTHS:
                for way, run in ways.items():
                    started = time.perf_counter()
                    results[name, width, way] = run(data, width)
                    times.setdefault((name, width, way), []).append(time.perf_counter() - started)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (a shared, loaded machine: compare "
          f"ratios, not absolutes); {args.rounds} rounds, interleaved\n")
    print("| SVG | width | way | ms (median) | SSIM vs 4x reference | PNG bytes |\n|---|---|---|---|---|---|")
    for name, data in inputs.items():
        for width in WIDTHS:
            image = results[name, width, "drawn"][0]
            truth = reference(data, width, image.height)
            for way in ways:
                out, size = results[name, width, way]
                out = out if out.size == truth.size else out.resize(truth.size, Image.Resampling.LANCZOS)
                print(f"| {name} | {width} | {way} | {statistics.median(times[name, width, way]) * 1000:.1f} | "
                      f"{ssim(out, truth):.4f} | {size:,} |")


if __name__ == "__main__":
    main()
