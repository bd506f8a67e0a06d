"""Benchmark: bytes at equal perceptual quality. Our fixed q82, our qauto and libvips' q82 side by side,
then each encoder candidate at libvips' score, in one run.

    make bench-bytes             (bench/.venv: vanilla Pillow, pyvips, ssimulacra2, pyjpegli, mozjpeg, jxl)

Inputs: the photos and PNG screenshots of ../shared/corpus/photos (or SIDECAR_PHOTOS) and samples/,
at 200, 400 and 800 px wide (BENCH_SIZES). Every output is scored against the same reference as
`make bench-pipeline`'s: the original fully decoded by vanilla Pillow, oriented, converted to sRGB and
LANCZOS-resized in one step. Scores: SSIMULACRA2 (the `ssimulacra2` package; 90 is visually lossless,
70 high quality, 50 medium) and SSIM on luma (bench-pipeline's: Gaussian window, sigma 1.5).

"at libvips' score" means: the lowest quality of that encoder whose SSIMULACRA2 is at least libvips'
q82 JPEG's for the same picture and size (a bisection over the quality, six encodes). Our own JPEG, WebP
and AVIF at that score run through our whole transform (ours `qN` per probe); the encoder candidates
encode our unencoded rendition (the transform's PNG of the same URL) so that only the encoder differs.

Ours runs in the project's .venv (pillow-simd) as a worker process, libvips and the candidates here;
timing rounds interleave ours and libvips in a rotating order. The machine is shared: compare ratios.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PHOTOS = Path(os.environ.get("SIDECAR_PHOTOS", REPO.parent / "shared" / "corpus" / "photos"))
OURS_PYTHON = Path(os.environ.get("SIDECAR_PYTHON", REPO / ".venv" / "bin" / "python"))
SIZES = tuple(int(s) for s in os.environ.get("BENCH_SIZES", "200,400,800").split(","))
CANDIDATE_SIZES = tuple(int(s) for s in os.environ.get("BENCH_CANDIDATE_SIZES", "400").split(","))
COST_PHOTO = "tree-iphone7-4032x3024.jpg"  # 12 MP: what qauto's cost target names
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


# --- our worker (the project's .venv) -------------------------------------------------------------------

def worker() -> None:
    sys.path.insert(0, str(REPO))
    from sidecar.transform.pipeline import Settings, transform
    from sidecar.url.grammar import Ops

    settings = Settings(max_pixels=100_000_000, quality=82, background=(255, 255, 255))
    out_dir = Path(tempfile.mkdtemp(prefix="bench-bytes-"))
    for number, line in enumerate(sys.stdin):
        job = json.loads(line)
        data = Path(job["path"]).read_bytes()
        started = time.perf_counter()
        rendered = transform(data, Ops(**{"format": "jpeg", "width": job["width"], **job["ops"]}), settings)
        elapsed = time.perf_counter() - started
        out = out_dir / str(number)
        out.write_bytes(rendered.data)
        print(json.dumps({"ms": elapsed * 1000, "out": str(out)}), flush=True)


# --- the driver (bench/.venv) ---------------------------------------------------------------------------

class Ours:
    def __init__(self) -> None:
        self.process = subprocess.Popen([str(OURS_PYTHON), __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=REPO)

    def __call__(self, path: str, width: int, **ops: object) -> tuple[bytes, float]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"path": path, "width": width, "ops": ops}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        out = Path(answer["out"])
        data = out.read_bytes()
        out.unlink()
        return data, answer["ms"]


def vips_q82(path: str, width: int) -> tuple[bytes, float]:
    import pipeline

    started = time.perf_counter()
    data = pipeline.work_vips(path, width, None)
    return data, (time.perf_counter() - started) * 1000


def decode(data: bytes):
    import pillow_jxl  # noqa: F401  (registers JXL)
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


class Scorer:
    """SSIMULACRA2 and SSIM of outputs against the reference downscale, per picture and width."""

    def __init__(self) -> None:
        import pipeline

        self.references = pipeline.Reference()
        self.images: dict[tuple[str, tuple[int, int]], object] = {}

    def reference(self, path: str, width: int, size: tuple[int, int]):
        from PIL import Image

        key = (path, size)
        if key not in self.images:
            self.references.get(path, width, None, size)  # fills `full`
            full = self.references.full[path]
            self.images[key] = full.resize(size, Image.Resampling.LANCZOS)  # type: ignore[attr-defined]
        return self.images[key]

    def __call__(self, path: str, width: int, data: bytes) -> tuple[float, float]:
        import numpy as np
        import pipeline
        from ssimulacra2 import compute_ssimulacra2

        image = decode(data)
        reference = self.reference(path, width, image.size)
        buffers = [_png(_mirrored(x)) for x in (reference, image)]
        s2 = compute_ssimulacra2(*buffers)
        luma = [np.asarray(x.convert("L"), dtype=np.float64) for x in (reference, image)]
        return float(s2), pipeline.ssim(*luma)


#: SSIMULACRA2 works on six scales, halving each time, and stops at a side under 8 pixels: pictures with
#: a side under 8 * 2**5 lose scales and their scores jump (the package scores a 200x112 JPEG q82 at 27,
#: the same at 200x113 at 71). Both images are mirrored out to this side first, alike.
MIN_SCORED_SIDE = 256


def _mirrored(image):
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image.convert("RGB"))
    pad_h, pad_w = max(0, MIN_SCORED_SIDE - pixels.shape[0]), max(0, MIN_SCORED_SIDE - pixels.shape[1])
    if not pad_h and not pad_w:
        return image
    return Image.fromarray(np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric"))


def _png(image) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, "PNG")
    out.seek(0)
    return out


def at_score(encode: Callable[[int], bytes], score: Callable[[bytes], float], target: float,
             low: int, high: int) -> tuple[int, bytes, float]:
    """The lowest quality from `low` to `high` whose score reaches `target` (bisection); `high` if none."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        data = encode(middle)
        value = score(data)
        if value >= target:
            best, high = (middle, data, value), middle - 1
        else:
            low = middle + 1
    if best is None:
        data = encode(max(high, 1))
        best = (high, data, score(data))
    return best


# The encoder candidates: our unencoded pixels (RGB) and a quality -> bytes. Each names its quality range.
def _pillow(fmt: str, **options: object) -> Callable:
    def encode(image, quality: int) -> bytes:
        out = io.BytesIO()
        image.save(out, fmt, quality=quality, **options)
        return out.getvalue()
    return encode


def _jpegli(image, quality: int) -> bytes:
    import pyjpegli

    return pyjpegli.encode(image.tobytes(), image.width, image.height, quality)


def _mozjpeg(image, quality: int) -> bytes:
    import mozjpeg_lossless_optimization

    return mozjpeg_lossless_optimization.optimize(_pillow("JPEG", progressive=True)(image, quality))


def _jxl(image, quality: int) -> bytes:
    import pillow_jxl  # noqa: F401

    return _pillow("JXL", effort=7)(image, quality)


CANDIDATES: dict[str, tuple[Callable, int, int]] = {
    "JPEG libjpeg-turbo progressive (ours)": (_pillow("JPEG", progressive=True), 20, 98),
    "JPEG turbo + mozjpeg lossless": (_mozjpeg, 20, 98),
    "JPEG jpegli (pyjpegli)": (_jpegli, 20, 98),
    "WebP method 4 (ours)": (_pillow("WEBP", method=4), 20, 98),
    "WebP method 6": (_pillow("WEBP", method=6), 20, 98),
    "AVIF speed 8 (ours)": (_pillow("AVIF", speed=8, max_threads=1), 10, 95),
    "AVIF speed 6": (_pillow("AVIF", speed=6, max_threads=1), 10, 95),
    "JXL effort 7": (_jxl, 10, 98),
}


def timed(function: Callable[[], bytes], rounds: int = 3) -> tuple[bytes, float]:
    times, data = [], b""
    for _ in range(rounds):
        started = time.perf_counter()
        data = function()
        times.append((time.perf_counter() - started) * 1000)
    return data, statistics.median(times)


def pictures() -> list[Path]:
    found = sorted(PHOTOS.glob("*.jpg")) + sorted(PHOTOS.glob("*.png"))
    names = {p.name for p in found}
    return found + [p for p in sorted((REPO / "samples").glob("*.png")) if p.name not in names]


def main() -> None:
    sys.path.insert(0, str(HERE))
    load = os.getloadavg()
    print(f"# bench-bytes  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared: compare ratios)")
    ours, score = Ours(), Scorer()
    rows: dict[str, dict[int, list[dict[str, float]]]] = {}
    equal: list[tuple[str, int, float, float, float, float]] = []
    candidates: dict[str, list[tuple[float, float]]] = {name: [] for name in CANDIDATES}

    def add(name: str, width: int, data: bytes, ms: float, path: str) -> tuple[float, float]:
        s2, ssim = score(str(path), width, data)
        rows.setdefault(name, {}).setdefault(width, []).append(
            {"bytes": len(data), "s2": s2, "ssim": ssim, "ms": ms})
        return s2, ssim

    for path in pictures():
        p = str(path)
        for width in SIZES:
            vips, vips_ms = vips_q82(p, width)
            vips_s2, _ = add("libvips q82 JPEG", width, vips, vips_ms, p)
            for name, ops in (("ours q82 JPEG", {}), ("ours q82 JPEG, no auto sharpening", {"sharpen": 0}),
                              ("ours qauto JPEG", {"quality": "auto"}),
                              ("ours qauto JPEG, no auto sharpening", {"quality": "auto", "sharpen": 0}),
                              ("ours qauto WebP", {"format": "webp", "quality": "auto"}),
                              ("ours qauto AVIF", {"format": "avif", "quality": "auto"})):
                data, ms = ours(p, width, **ops)
                add(name, width, data, ms, p)

            def scored(data: bytes) -> float:
                return score(p, width, data)[0]  # noqa: B023  (called at once)

            found = {}
            for fmt, low, high in (("jpeg", 20, 98), ("webp", 20, 98), ("avif", 10, 95)):
                _, data, _ = at_score(lambda q: ours(p, width, format=fmt, quality=q)[0],  # noqa: B023
                                      scored, vips_s2, low, high)
                found[fmt] = len(data)
            equal.append((path.name, width, vips_s2, len(vips), found["jpeg"] / len(vips),
                          min(found["avif"], found["webp"]) / len(vips)))
            if width in CANDIDATE_SIZES:
                pixels = decode(ours(p, width, format="png")[0])
                for name, (encode, low, high) in CANDIDATES.items():
                    quality, data, _ = at_score(lambda q: encode(pixels, q), scored, vips_s2, low, high)  # noqa: B023
                    _, ms = timed(lambda: encode(pixels, quality))  # noqa: B023
                    candidates[name].append((len(data) / len(vips), ms))
            print(f"  done {path.name} {width}", file=sys.stderr, flush=True)

    print("\n## Each variant, averaged over the pictures (bytes; SSIMULACRA2; SSIM; transform ms, median)\n")
    print("| variant | " + " | ".join(f"{w} px: bytes / S2 / SSIM / ms" for w in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for name, by_width in rows.items():
        cells = []
        for width in SIZES:
            runs = by_width[width]
            cells.append(f"{statistics.mean(r['bytes'] for r in runs):,.0f} / "
                         f"{statistics.mean(r['s2'] for r in runs):.1f} / "
                         f"{statistics.mean(r['ssim'] for r in runs):.4f} / "
                         f"{statistics.median(r['ms'] for r in runs):.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("\n## At libvips' q82 score: our bytes / libvips' bytes, per picture and width\n")
    print("| picture | width | libvips S2 | libvips bytes | ours JPEG | ours best of WebP/AVIF (.auto, modern) |")
    print("|---|---|---|---|---|---|")
    for name, width, s2, size, jpeg, modern in equal:
        print(f"| {name} | {width} | {s2:.1f} | {size:,} | {jpeg:.2f} | {modern:.2f} |")
    jpeg_ratios = [row[4] for row in equal]
    modern_ratios = [row[5] for row in equal]
    print(f"\nours JPEG at equal score: mean {statistics.mean(jpeg_ratios):.2f}, worst {max(jpeg_ratios):.2f} "
          f"(target: mean <= 0.80, worst <= 1.00)")
    print(f"ours .auto for a modern browser at equal score: mean {statistics.mean(modern_ratios):.2f}, "
          f"worst {max(modern_ratios):.2f} (target: mean <= 0.60)")

    print(f"\n## Encoder candidates at libvips' q82 score ({', '.join(map(str, CANDIDATE_SIZES))} px): "
          "bytes / libvips' bytes, encode ms (median)\n")
    print("| encoder | mean ratio | worst ratio | encode ms |")
    print("|---|---|---|---|")
    for name, results in candidates.items():
        if results:
            ratios = [r for r, _ in results]
            print(f"| {name} | {statistics.mean(ratios):.2f} | {max(ratios):.2f} | "
                  f"{statistics.median(ms for _, ms in results):.1f} |")

    cost = str(PHOTOS / COST_PHOTO)
    if Path(cost).exists():
        times: dict[str, list[float]] = {"q82": [], "qauto": []}
        for number in range(ROUNDS):
            order = [("q82", {}), ("qauto", {"quality": "auto"})]
            for name, ops in order[number % 2:] + order[:number % 2]:
                times[name].append(ours(cost, 800, **ops)[1])
        added = statistics.median(times["qauto"]) - statistics.median(times["q82"])
        print(f"\nqauto's cost, {COST_PHOTO} -> 800 px JPEG, {ROUNDS} interleaved rounds: q82 "
              f"{statistics.median(times['q82']):.0f} ms, qauto {statistics.median(times['qauto']):.0f} ms "
              f"(median), added {added:.0f} ms (target <= 30)")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        main()
