"""Benchmark: animations resized by us, by libvips and by gifsicle, interleaved, in one table.

    make bench-animation       (bench/.venv: vanilla Pillow, pyvips + its libvips, numpy; apt gifsicle)

The inputs are made here from real photos (../shared/corpus/photos, or SIDECAR_PHOTOS), nothing big is
committed: `pan`, a 640x480, 60-frame pan over a photo, and `sticker`, a transparent 320x320 animation of
a disc cut from a photo that turns and bounces (GIF, disposal 2); plus the animated files of
../shared/corpus/real (GIF, WebP, APNG, AVIF). Each is resized to 320 and 160 pixels wide (never up:
widths at or above the source's are left out) as GIF and as animated WebP (quality 82) by:

- ours: `sidecar.transform.pipeline.transform` in the project's .venv (pillow-simd);
- vips: `pyvips.Image.thumbnail_buffer(data, width, option_string="n=-1")` then `gifsave_buffer` /
  `webpsave_buffer(Q=82)` (libvips from pyvips-binary; `n=-1` loads every frame);
- gifsicle: `gifsicle --resize-width W` (thumbor's engine for animations; GIF to GIF only).

Each variant is a long-lived worker process (gifsicle: one process per animation, its start-up timed
too); the rounds interleave the variants in a rotating order, so a busy neighbour slows all alike. The
table shows the median ms per animation, the output bytes, and the lowest SSIM (luma, Gaussian window
sigma 1.5) of any frame against a frame-by-frame reference: vanilla Pillow's composited source frame,
flattened on white, LANCZOS-resized. `gif/webp` is our GIF's bytes over our WebP's at the same size.

Then `peak RSS`: a 500-frame 400x300 animation resized to 320 wide in a fresh process per variant, the
growth of the peak resident set over the process's own before the call.
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
from pathlib import Path

from pipeline import ssim  # the same SSIM as the pipeline benchmark

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
PHOTOS = Path(os.environ.get("SIDECAR_PHOTOS", SHARED / "corpus" / "photos"))
REAL = Path(os.environ.get("SIDECAR_CORPUS", SHARED / "corpus")) / "real"
CORPUS_FILES = ("gif/animated_10frames.gif", "gif/animated_dispose_bgnd.gif", "webp/animated.webp",
                "webp/animated_99frames_tall.webp", "png/apng_ball.png", "avif/animated_star.avifs")
OURS_PYTHON = Path(os.environ.get("SIDECAR_PYTHON", REPO / ".venv" / "bin" / "python"))
QUALITY = 82
WIDTHS = (320, 160)
FORMATS = ("gif", "webp")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
VARIANTS = ("ours", "vips", "gifsicle")
GIFSICLE = "gifsicle"


# --- workers: one request per line on stdin, one JSON answer per line on stdout -----------------------

def work_ours(data: bytes, width: int, fmt: str) -> bytes:
    from sidecar.transform.pipeline import Settings, transform
    from sidecar.url.grammar import Ops

    settings = Settings(max_pixels=100_000_000, quality=QUALITY, background=(255, 255, 255),
                        max_animation_pixels=2_000_000_000)
    return transform(data, Ops(fmt, width=width), settings).data


def work_vips(data: bytes, width: int, fmt: str) -> bytes:
    import pyvips

    thumb = pyvips.Image.thumbnail_buffer(data, width, height=10_000_000, size="down", option_string="n=-1")
    if fmt == "gif":
        return thumb.gifsave_buffer(keep="none")
    return thumb.webpsave_buffer(Q=QUALITY, keep="none")


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def worker(name: str) -> None:
    if name == "ours":
        sys.path.insert(0, str(REPO))
    work = {"ours": work_ours, "vips": work_vips}[name]
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-anim-{name}-"))
    for number, line in enumerate(sys.stdin):
        job = json.loads(line)
        data = Path(job["path"]).read_bytes()
        if job.get("memory"):
            base = peak_rss_kb()
            started = time.perf_counter()
            out = work(data, job["width"], job["fmt"])
            elapsed = time.perf_counter() - started
            grown = peak_rss_kb() - base
            print(json.dumps({"ms": elapsed * 1000, "bytes": len(out), "peak_mb": grown / 1024}), flush=True)
            continue
        started = time.perf_counter()
        out = work(data, job["width"], job["fmt"])
        elapsed = time.perf_counter() - started
        path = out_dir / f"{number}.{job['fmt']}"
        path.write_bytes(out)
        print(json.dumps({"ms": elapsed * 1000, "bytes": len(out), "out": str(path)}), flush=True)


def run_gifsicle(path: str, width: int, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([GIFSICLE, "--no-warnings", "--resize-width", str(width), path, "-o", str(out)], check=True)
    return (time.perf_counter() - started) * 1000


# --- the inputs, made from real photos (vanilla Pillow, in the driver) --------------------------------

def make_pan(photo: Path, out: Path, frames: int = 60, size: tuple[int, int] = (640, 480)) -> None:
    from PIL import Image

    with Image.open(photo) as image:
        image.draft("RGB", (1600, 900))
        wide = image.convert("RGB").resize((1280, 720), Image.Resampling.LANCZOS)
    step = (wide.width - size[0]) / (frames - 1)
    shots = [wide.crop((round(i * step), 120, round(i * step) + size[0], 120 + size[1])) for i in range(frames)]
    shots[0].save(out, "GIF", save_all=True, append_images=shots[1:], duration=50, loop=0)


def make_sticker(photo: Path, out: Path, frames: int = 30, side: int = 320) -> None:
    from PIL import Image, ImageDraw

    with Image.open(photo) as image:
        image.draft("RGB", (800, 600))
        face = image.convert("RGB").resize((800, 536)).crop((300, 100, 500, 300))
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, *face.size), fill=255)
    disc = face.convert("RGBA")
    disc.putalpha(mask)
    shots = []
    for i in range(frames):
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        turned = disc.rotate(i * 360 / frames, Image.Resampling.BICUBIC)
        bounce = round(abs((i % 15) - 7) * 12)
        canvas.alpha_composite(turned, (60, 20 + bounce))
        shots.append(canvas)
    shots[0].save(out, "GIF", save_all=True, append_images=shots[1:], duration=60, loop=0, disposal=2)


def make_many(photo: Path, out: Path, frames: int = 500) -> None:
    from PIL import Image

    with Image.open(photo) as image:
        image.draft("RGB", (960, 540))
        small = image.convert("RGB").resize((960, 540)).quantize(256)
    shots = [small.crop((i % 500, 100, i % 500 + 400, 400)) for i in range(frames)]
    shots[0].save(out, "GIF", save_all=True, append_images=shots[1:], duration=40, loop=0)


# --- quality -------------------------------------------------------------------------------------------

def frames_of(data: bytes) -> list:
    """Every frame as Pillow composites it, flattened on white, as RGB."""
    from PIL import Image, ImageSequence

    out = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            rgba = frame.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            out.append(flat)
    return out


def lowest_ssim(source: list, output: bytes) -> tuple[float, int]:
    """The lowest SSIM of any output frame against the LANCZOS-resized source frame, and the frames out."""
    import numpy as np
    from PIL import Image

    frames = frames_of(output)
    if len(frames) != len(source):
        return float("nan"), len(frames)
    scores = []
    for made, original in zip(frames, source):
        reference = original.resize(made.size, Image.Resampling.LANCZOS)
        scores.append(ssim(np.asarray(made.convert("L"), dtype=np.float64),
                           np.asarray(reference.convert("L"), dtype=np.float64)))
    return min(scores), len(frames)


# --- the driver ------------------------------------------------------------------------------------------

def inputs(work: Path) -> dict[str, Path]:
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS} (set SIDECAR_PHOTOS)")
    road = next((p for p in photos if "road" in p.name), photos[0])
    panda = next((p for p in photos if "panda" in p.name), photos[-1])
    made = {"pan 640x480x60.gif": work / "pan.gif", "sticker 320x320x30.gif": work / "sticker.gif"}
    make_pan(road, made["pan 640x480x60.gif"])
    make_sticker(panda, made["sticker 320x320x30.gif"])
    made.update({name: REAL / name for name in CORPUS_FILES if (REAL / name).is_file()})
    return made


def main() -> None:
    from PIL import Image

    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-anim-"))
    files = inputs(work)
    workers = {name: subprocess.Popen([str(OURS_PYTHON) if name == "ours" else sys.executable, __file__,
                                       "--worker", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, cwd=REPO) for name in ("ours", "vips")}

    def ask(variant: str, job: dict[str, object]) -> dict[str, object]:
        proc = workers[variant]
        proc.stdin.write(json.dumps(job) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

    jobs = []
    for name, path in files.items():
        with Image.open(path) as image:
            width = image.width
        for target in WIDTHS:
            if target < width:
                jobs += [(name, path, target, fmt) for fmt in FORMATS]
    results: dict[tuple[str, int, str, str], list[dict[str, object]]] = {}
    gif_dir = Path(tempfile.mkdtemp(prefix="bench-anim-gifsicle-"))
    for round_number in range(ROUNDS + 1):  # round 0 warms up and is not counted
        for index, (name, path, target, fmt) in enumerate(jobs):
            turn = (index + round_number) % len(VARIANTS)
            for variant in VARIANTS[turn:] + VARIANTS[:turn]:
                if variant == "gifsicle":
                    if fmt != "gif" or path.suffix != ".gif":
                        continue
                    out = gif_dir / f"{index}.gif"
                    answer: dict[str, object] = {"ms": run_gifsicle(str(path), target, out), "out": str(out)}
                    answer["bytes"] = out.stat().st_size
                else:
                    answer = ask(variant, {"path": str(path), "width": target, "fmt": fmt})
                if round_number:
                    if round_number == 1:
                        answer["data"] = Path(str(answer["out"])).read_bytes()
                    results.setdefault((name, target, fmt, variant), []).append(answer)
        print(f"round {round_number}/{ROUNDS} done", file=sys.stderr, flush=True)

    many = work / "many.gif"
    make_many(next(p for p in sorted(PHOTOS.iterdir()) if p.suffix.lower() == ".jpg"), many)
    memory = {}
    for variant in ("ours", "vips"):
        for fmt in FORMATS:  # a fresh process for each, so the peak is this call's
            proc = subprocess.Popen([str(OURS_PYTHON) if variant == "ours" else sys.executable, __file__, "--worker",
                                     variant], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            answer_text, _ = proc.communicate(json.dumps({"path": str(many), "width": 320, "fmt": fmt,
                                                          "memory": True}) + "\n")
            memory[(variant, fmt)] = json.loads(answer_text)
    for proc in workers.values():
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait()

    print(f"\nload average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (2 shared cores: compare ratios, not absolutes)")
    print(f"median of {ROUNDS} interleaved rounds; SSIM: the lowest of any frame against a frame-by-frame "
          "LANCZOS reference\n")
    header = (f"| {'input':<34} | {'width':>5} | {'out':<4} | {'variant':<8} | {'ms/anim':>8} | {'vs vips':>7} "
              f"| {'bytes':>9} | {'frames':>6} | {'min SSIM':>8} | {'gif/webp':>8} |")
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    sources: dict[str, list] = {}
    for name, path, target, fmt in jobs:
        if name not in sources:
            sources[name] = frames_of(path.read_bytes())
        vips = results.get((name, target, fmt, "vips"))
        vips_ms = statistics.median(float(r["ms"]) for r in vips) if vips else None  # type: ignore[arg-type]
        for variant in VARIANTS:
            runs = results.get((name, target, fmt, variant))
            if not runs:
                continue
            ms = statistics.median(float(r["ms"]) for r in runs)  # type: ignore[arg-type]
            data = runs[0]["data"]
            score, count = lowest_ssim(sources[name], data)  # type: ignore[arg-type]
            ratio = ""
            if fmt == "webp" and variant == "ours":
                ratio = f"{int(results[(name, target, 'gif', 'ours')][0]['bytes']) / len(data):.1f}x"  # type: ignore[arg-type]
            versus = f"{ms / vips_ms:.2f}x" if vips_ms else "—"
            print(f"| {name:<34} | {target:>5} | {fmt:<4} | {variant:<8} | {ms:>8.1f} | {versus:>7} "
                  f"| {len(data):>9} | {count:>6} | {score:>8.4f} | {ratio:>8} |")  # type: ignore[arg-type]
    print("\n500 frames of 400x300 (GIF) to 320 wide, a fresh process each: peak RSS growth during the call\n")
    print("| variant | out  | ms      | bytes     | peak RSS growth |")
    print("|---------|------|---------|-----------|-----------------|")
    for (variant, fmt), answer in memory.items():
        print(f"| {variant:<7} | {fmt:<4} | {answer['ms']:>7.0f} | {answer['bytes']:>9} | {answer['peak_mb']:>12.0f} MB |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
