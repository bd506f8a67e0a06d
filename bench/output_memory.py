"""What one rendition costs per *output* pixel, by encoder: the figures behind `OUTPUT_BYTES_PER_PIXEL`
(sidecar/observe/memory.py) and the default `max_output_pixels`.

The worst URLs a client can send (issue 21): `pad` (the canvas is built at full size whatever the
original) and `force-up` of a small GIF to S×S, in every output format. Each case runs in a fresh process
(peak RSS is `VmHWM`, which only grows), rounds interleaved (every case once per round, in turn), so a
loaded machine slows all cases alike. Quality: SSIM of the rendition against the same geometry made with
Pillow from the fully decoded original (for `pad`, over the canvas: the padding counts). Prints one table.

    make bench-output-memory        # or: python bench/output_memory.py [--side 3000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import io, json, sys, time
import numpy as np
from PIL import Image
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops

fmt, fit, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = Image.new("P", (200, 150))
source.putpalette([(i * 37) % 256 for i in range(768)])
source.putdata([(x * 7 + y * 3) % 256 for y in range(150) for x in range(200)])
buffer = io.BytesIO()
source.save(buffer, "GIF")

def peak() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))

base = peak()
options = {"width": side, "height": side, "fit": fit, "enlarge": fit == "force"}
if fit == "pad":
    options["background"] = "336699"
started = time.perf_counter()
rendered = transform(buffer.getvalue(), Ops(fmt, **options), Settings(10**9, 82, (255, 255, 255), max_side=16383))
seconds = time.perf_counter() - started
top = peak()
# The reference: the same geometry from the fully decoded original, with Pillow alone.
rgb = source.convert("RGB")
if fit == "pad":
    reference = Image.new("RGB", (side, side), (0x33, 0x66, 0x99))
    scale = min(1.0, side / 200, side / 150)
    reference.paste(rgb.resize((round(200 * scale), round(150 * scale)), Image.Resampling.LANCZOS),
                    ((side - round(200 * scale)) // 2, (side - round(150 * scale)) // 2))
else:
    reference = rgb.resize((side, side), Image.Resampling.LANCZOS)
import pillow_avif  # noqa: F401
got = Image.open(io.BytesIO(rendered.data)).convert("RGB")
small = (min(side, 1000), min(side, 1000))  # SSIM on a 1000-pixel view: the comparison, not the bench, would dominate
a = np.asarray(got.resize(small, Image.Resampling.BOX).convert("L"), dtype=np.float64)
b = np.asarray(reference.resize(small, Image.Resampling.BOX).convert("L"), dtype=np.float64)
def blur(x):
    k = np.exp(-np.arange(-5, 6) ** 2 / 4.5); k /= k.sum()
    x = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, x)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, x)
c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
ma, mb = blur(a), blur(b)
va, vb, cov = blur(a * a) - ma ** 2, blur(b * b) - mb ** 2, blur(a * b) - ma * mb
ssim = float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))).mean())
print(json.dumps({"base": base, "peak": top, "seconds": seconds, "bytes": len(rendered.data), "ssim": ssim}))
"""

FORMATS = ("jpeg", "png", "webp", "avif")
FITS = ("pad", "force")


def run(fmt: str, fit: str, side: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, fmt, fit, str(side)], capture_output=True, text=True,
                         env=os.environ, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (a loaded, shared 2-core machine: "
          "compare ratios, not absolutes)")
    cases = [(fmt, fit) for fit in FITS for fmt in FORMATS]
    results: dict[tuple[str, str], list[dict[str, float]]] = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            results[case].append(run(*case, args.side))
    pixels = args.side * args.side
    jpeg_pad = statistics.median(r["peak"] - r["base"] for r in results[("jpeg", "pad")])
    print(f"\n{args.side}x{args.side} output ({pixels / 1e6:.1f} MP) from a 200x150 GIF, median of {args.rounds} rounds")
    print("| fit | format | peak RSS over base (MiB) | bytes / output pixel | × JPEG pad | seconds | file (KiB) | SSIM |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for fmt, fit in cases:
        rows = results[(fmt, fit)]
        grown = statistics.median(r["peak"] - r["base"] for r in rows)
        print(f"| {fit} | {fmt} | {grown / 2**20:.0f} | {grown / pixels:.1f} | {grown / jpeg_pad:.2f} | "
              f"{statistics.median(r['seconds'] for r in rows):.2f} | "
              f"{statistics.median(r['bytes'] for r in rows) / 1024:.0f} | "
              f"{statistics.median(r['ssim'] for r in rows):.4f} |")
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
