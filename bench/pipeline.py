"""Benchmark: our pipeline against plain Pillow, libvips and ImageMagick, interleaved, in one table.

    make bench-pipeline          (builds bench/.venv with vanilla Pillow, pyvips + its libvips, numpy)

Every variant turns the same photos (../shared/corpus/photos, or SIDECAR_PHOTOS) into a 200x200 centre
crop and an 800-wide fit, JPEG at quality 82. Each runs as its own long-lived worker process (ours in
the project's .venv with pillow-simd, the others in bench/.venv; ImageMagick is one `convert` per
image, so its time includes starting the process), and the rounds interleave the variants in a
rotating order, so a busy neighbour on a shared machine slows all of them alike. A worker times its own
work, reading the file to writing the bytes, and the table shows medians.

SSIM (on luma, Gaussian window, sigma 1.5) compares each output with a reference: the photo fully
decoded, oriented, converted to sRGB and LANCZOS-resized in one step by vanilla Pillow. It makes a
fast-but-ugly (or a wrongly oriented, or wrongly coloured) result visible.
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
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
QUALITY = 82
SIZES = (("200x200 fill", 200, 200), ("800 wide", 800, None))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
VARIANTS = ("ours", "pillow", "vips", "magick")
# Debian's ImageMagick itself: a `convert` earlier on PATH may be a wrapper whose start-up would be timed.
CONVERT = "/usr/bin/convert" if Path("/usr/bin/convert").exists() else "convert"


# --- workers: one request per line on stdin, one JSON answer per line on stdout -----------------------

def work_ours(path: str, width: int, height: int | None) -> bytes:
    from sidecar.transform.pipeline import Settings, transform
    from sidecar.url.grammar import Ops

    settings = Settings(max_pixels=100_000_000, quality=QUALITY, background=(255, 255, 255))
    ops = Ops("jpeg", width=width, height=height, fit="fill" if height else "fit")
    return transform(Path(path).read_bytes(), ops, settings).data


def work_pillow(path: str, width: int, height: int | None) -> bytes:
    # The talk's loop: open, resize, save. Orientation is applied too, or SSIM would only measure that.
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    box = crop_box(image.size, width, height)
    size = (width, height) if height else (width, round(image.height * width / image.width))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS, box=box).save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def work_vips(path: str, width: int, height: int | None) -> bytes:
    import pyvips

    data = Path(path).read_bytes()
    if height:
        thumb = pyvips.Image.thumbnail_buffer(data, width, height=height, crop="centre", size="down",
                                              export_profile="srgb")
    else:
        thumb = pyvips.Image.thumbnail_buffer(data, width, height=10_000_000, size="down", export_profile="srgb")
    if thumb.hasalpha():
        thumb = thumb.flatten(background=[255, 255, 255])
    return thumb.jpegsave_buffer(Q=QUALITY, keep="none")


def worker(name: str, work: Callable[[str, int, int | None], bytes] | None = None) -> None:
    """Answer jobs from stdin: wall and CPU ms (all threads), bytes, and where the output is."""
    work = work or {"ours": work_ours, "pillow": work_pillow, "vips": work_vips}[name]
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    for number, line in enumerate(sys.stdin):
        job = json.loads(line)
        started, cpu = time.perf_counter(), time.process_time()
        data = work(job["path"], job["width"], job.get("height"))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        out = out_dir / f"{number}.jpg"
        out.write_bytes(data)
        print(json.dumps({"ms": elapsed * 1000, "cpu": cpu * 1000, "bytes": len(data), "out": str(out)}), flush=True)


# --- the driver (bench/.venv: vanilla Pillow, numpy) ---------------------------------------------------

def crop_box(size: tuple[int, int], width: int, height: int | None) -> tuple[float, float, float, float]:
    w, h = size
    if height is None:
        return (0, 0, w, h)
    crop_w = min(float(w), h * width / height)
    crop_h = crop_w * height / width
    left, top = (w - crop_w) / 2, (h - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h)


def run_magick(path: str, width: int, height: int | None, out: Path) -> float:
    geometry = ["-thumbnail", f"{width}x{height}^", "-gravity", "center", "-extent", f"{width}x{height}"] \
        if height else ["-thumbnail", f"{width}x"]
    started = time.perf_counter()
    subprocess.run([CONVERT, path, "-auto-orient", *geometry, "-quality", str(QUALITY), str(out)], check=True,
                   stderr=subprocess.DEVNULL)  # it warns about the XMP of camera photos
    return (time.perf_counter() - started) * 1000


class Reference:
    """The high-quality downscale every output is compared with, per photo and output size."""

    def __init__(self) -> None:
        self.full: dict[str, object] = {}
        self.cache: dict[tuple[str, int, int | None, tuple[int, int]], object] = {}

    def get(self, path: str, width: int, height: int | None, size: tuple[int, int]):
        import numpy as np
        from PIL import Image, ImageCms, ImageOps

        key = (path, width, height, size)
        if key not in self.cache:
            if path not in self.full:
                image = Image.open(path)
                icc = image.info.get("icc_profile")
                image = ImageOps.exif_transpose(image)
                # Relative colorimetric with black-point compensation, Photoshop's default for photos.
                options = {"renderingIntent": ImageCms.Intent.RELATIVE_COLORIMETRIC, "outputMode": "RGB",
                           "flags": ImageCms.Flags.BLACKPOINTCOMPENSATION}
                srgb = ImageCms.createProfile("sRGB")
                if icc:
                    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                    mode = "CMYK" if image.mode == "CMYK" else "RGB"
                    image = ImageCms.profileToProfile(image.convert(mode), source, srgb, **options)
                elif image.mode == "CMYK":
                    cmyk = ImageCms.getOpenProfile("/usr/share/color/icc/ghostscript/default_cmyk.icc")
                    image = ImageCms.profileToProfile(image, cmyk, srgb, **options)
                elif image.mode in ("RGBA", "LA", "P"):
                    rgba = image.convert("RGBA")
                    image = Image.new("RGB", rgba.size, (255, 255, 255))
                    image.paste(rgba, mask=rgba.getchannel("A"))
                self.full[path] = image.convert("RGB")
            full = self.full[path]
            box = crop_box(full.size, width, height)  # type: ignore[attr-defined]
            resized = full.resize(size, Image.Resampling.LANCZOS, box=box)  # type: ignore[attr-defined]
            self.cache[key] = np.asarray(resized.convert("L"), dtype=np.float64)
        return self.cache[key]


def ssim(a, b) -> float:
    """SSIM of two luma arrays (Gaussian window, sigma 1.5; separable, on sliding windows)."""
    import numpy as np

    radius, sigma = 5, 1.5
    kernel = np.exp(-((np.arange(-radius, radius + 1)) ** 2) / (2 * sigma * sigma))
    kernel /= kernel.sum()
    if min(a.shape) <= 2 * radius:
        return float("nan")

    def blur(x):  # noqa: ANN001, ANN202
        """A 'valid' separable convolution, as sums of shifted slices (fast on whole arrays)."""
        n = 2 * radius
        rows = sum(k * x[:, i:x.shape[1] - n + i] for i, k in enumerate(kernel))
        return sum(k * rows[i:rows.shape[0] - n + i, :] for i, k in enumerate(kernel))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(value.mean())


def main() -> None:
    import numpy as np
    from PIL import Image

    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS} (set SIDECAR_PHOTOS)")
    workers = {
        name: subprocess.Popen([str(python), "-m", "bench.pipeline", "--worker", name], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=REPO)
        for name, python in (("ours", OURS_PYTHON), ("pillow", sys.executable), ("vips", sys.executable))
    }
    magick_dir = Path(tempfile.mkdtemp(prefix="bench-magick-"))
    results: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    jobs = [(photo, label, width, height) for photo in photos for label, width, height in SIZES]
    # Round 0 warms every worker up (imports, first decode) and is not counted.
    for round_number in range(ROUNDS + 1):
        for index, (photo, label, width, height) in enumerate(jobs):
            order = VARIANTS[(index + round_number) % 4:] + VARIANTS[: (index + round_number) % 4]
            for variant in order:
                if variant == "magick":
                    out = magick_dir / f"{index}.jpg"
                    ms = run_magick(str(photo), width, height, out)
                    answer = {"ms": ms, "bytes": out.stat().st_size, "out": str(out)}
                else:
                    proc = workers[variant]
                    proc.stdin.write(json.dumps({"path": str(photo), "width": width, "height": height}) + "\n")
                    proc.stdin.flush()
                    answer = json.loads(proc.stdout.readline())
                if round_number:
                    if round_number == 1:  # judge the image once; its bytes do not change between rounds
                        answer["image"] = Path(answer["out"]).read_bytes()
                    results.setdefault((photo.name, label, variant), []).append(answer)
        print(f"round {round_number}/{ROUNDS} done", file=sys.stderr, flush=True)
    for proc in workers.values():
        proc.stdin.close()
        proc.wait()

    reference = Reference()
    print(f"\nJPEG q{QUALITY} output; median of {ROUNDS} interleaved rounds; SSIM against a full-decode LANCZOS "
          f"reference (1.0 = identical)\n")
    header = f"| {'photo':<33} | {'size':<12} | {'variant':<7} | {'ms/image':>9} | {'bytes':>8} | {'SSIM':>6} | {'ms vs vips':>10} |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for photo in photos:
        for label, width, height in SIZES:
            vips_ms = statistics.median(r["ms"] for r in results[(photo.name, label, "vips")])  # type: ignore[misc]
            for variant in VARIANTS:
                runs = results[(photo.name, label, variant)]
                ms = statistics.median(r["ms"] for r in runs)  # type: ignore[misc]
                image = Image.open(io.BytesIO(runs[0]["image"]))  # type: ignore[arg-type]
                ref = reference.get(str(photo), width, height, image.size)
                score = ssim(np.asarray(image.convert("L"), dtype=np.float64), ref)
                print(f"| {photo.name:<33} | {label:<12} | {variant:<7} | {ms:>9.1f} "
                      f"| {runs[0]['bytes']:>8} | {score:>6.4f} | {ms / vips_ms:>9.2f}x |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
