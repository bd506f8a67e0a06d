"""Benchmark: every photo at every width, ours against libvips in-process, and a 48 MP phone photo.

    make bench-grid              (builds bench/.venv with vanilla Pillow, pyvips + its libvips, numpy)

The grid of issue 15: the four photos of ../shared/corpus/photos (or SIDECAR_PHOTOS) plus a 48 MP JPEG
made here from the iPhone photo (upscaled 2x, saved at quality 90 with the photo's own ICC profile,
EXIF orientation and restart interval, as a phone writes it; and a copy without restart markers, which
we cannot cut for two threads to decode; both in a temporary directory, never committed), each at widths 160 to 1399 px (a `fit`),
JPEG at quality 82, every job cold (the original's bytes in, the rendition's bytes out; nothing cached).

Ours is `sidecar.transform.pipeline.transform` in the project's .venv (pillow-simd); libvips is
`thumbnail_buffer` + `jpegsave_buffer` through pyvips in bench/.venv, with its own threads. Each runs as a
long-lived worker process that times its own work, wall and CPU (all its threads: libvips uses several);
the rounds interleave the variants in rotating order, so a busy neighbour on the shared machine slows
all alike, and the table shows medians. With BENCH_BASELINE=/path/to/another/checkout (say main), a third
column runs that checkout's transform, so before and after sit side by side. SSIM (luma,
Gaussian window) compares each output with a full-decode reference (vanilla Pillow: decode, orient, sRGB,
one LANCZOS resize), so a fast-but-worse result shows. Run `uptime` is printed: absolute figures from a
shared machine are not comparable between runs; the ratios within one run are.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from bench.pipeline import OURS_PYTHON, PHOTOS, QUALITY, REPO, Reference, ssim
from bench.pipeline import worker as pipeline_worker

WIDTHS = tuple(int(w) for w in os.environ.get("BENCH_WIDTHS", "160,320,480,640,800,1024,1280,1399").split(","))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BIG_FROM = "tree-iphone7-4032x3024.jpg"
BIG_NAME = "phone-48mp-8064x6048.jpg"
#: Optionally a third column: the transform of another checkout (say main before this branch), same venv.
BASELINE = os.environ.get("BENCH_BASELINE")
VARIANTS = ("ours", "vips", "before") if BASELINE else ("ours", "vips")
T = TypeVar("T")


def work_ours(path: str, width: int, height: int | None = None) -> bytes:
    from sidecar.transform.pipeline import Settings, transform
    from sidecar.url.grammar import Ops

    settings = Settings(max_pixels=100_000_000, quality=QUALITY, background=(255, 255, 255))
    return transform(Path(path).read_bytes(), Ops("jpeg", width=width), settings).data


def work_vips(path: str, width: int, height: int | None = None) -> bytes:
    import pyvips

    data = Path(path).read_bytes()
    thumb = pyvips.Image.thumbnail_buffer(data, width, height=10_000_000, size="down", export_profile="srgb")
    if thumb.hasalpha():
        thumb = thumb.flatten(background=[255, 255, 255])
    return thumb.jpegsave_buffer(Q=QUALITY, keep="none")


def worker(name: str) -> None:
    if name == "before":
        sys.path.insert(0, str(BASELINE))
    pipeline_worker(name, {"ours": work_ours, "before": work_ours, "vips": work_vips}[name])


def make_big(directory: Path, markers: bool = True) -> Path:
    """A 48 MP phone-like JPEG from a real photo: 2x LANCZOS upscale, its ICC profile and EXIF kept, and
    its restart interval (phones and cameras write restart markers: the iPhone photo one every 10 MCUs);
    `markers=False`: without any, as Pillow writes by default."""
    from PIL import Image

    data = (PHOTOS / BIG_FROM).read_bytes()
    source = Image.open(io.BytesIO(data))
    icc, exif = source.info.get("icc_profile"), source.info.get("exif")
    big = source.resize((source.width * 2, source.height * 2), Image.Resampling.LANCZOS)
    restart = data.find(b"\xff\xdd")
    options = {"restart_marker_blocks": int.from_bytes(data[restart + 4:restart + 6], "big")} \
        if markers and restart > 0 else {}
    path = directory / (BIG_NAME if markers else BIG_NAME.replace(".jpg", "-no-markers.jpg"))
    big.save(path, "JPEG", quality=90, icc_profile=icc, exif=exif, **options)
    return path


def big_photos(directory: Path) -> list[Path]:
    """The 48 MP photos of the grid, made in `directory`: with the phone's restart markers and without."""
    return [make_big(directory), make_big(directory, markers=False)]


def uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def start_worker(name: str, python: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A long-lived `worker(name)` under `python`: one job per line in, one JSON answer per line out."""
    return subprocess.Popen([str(python), "-m", "bench.grid", "--worker", name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)


def ask(proc: subprocess.Popen[str], photo: Path, width: int) -> dict[str, object]:
    """One job of a worker: its wall and CPU ms, the output's bytes and where it wrote them (`out`)."""
    proc.stdin.write(json.dumps({"path": str(photo), "width": width}) + "\n")  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]
    return json.loads(proc.stdout.readline())  # type: ignore[union-attr,no-any-return]


def stop_worker(proc: subprocess.Popen[str]) -> None:
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait()


def interleaved(jobs: list[T], variants: tuple[str, ...], rounds: int) -> Iterator[tuple[int, T, str]]:
    """(round, job, variant) in the order to run them: round 0 warms up (imports, first decode; not to be
    counted), then `rounds` rounds in which each job's variants rotate, so a busy neighbour on a shared
    machine slows all alike."""
    for round_number in range(rounds + 1):
        for index, job in enumerate(jobs):
            shift = (index + round_number) % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                yield round_number, job, variant
        print(f"round {round_number}/{rounds} done", file=sys.stderr, flush=True)


def main() -> None:
    import numpy as np
    from PIL import Image

    uptime_before = uptime()
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS} (set SIDECAR_PHOTOS)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    if os.environ.get("BENCH_BIG", "1") == "1":
        photos += big_photos(scratch)
    workers = {"ours": start_worker("ours", OURS_PYTHON), "vips": start_worker("vips", Path(sys.executable))}
    if BASELINE:
        # This checkout's bench, the other's sidecar: the worker puts BASELINE first on its path.
        workers["before"] = start_worker("before", OURS_PYTHON, env={**os.environ, "PYTHONPATH": str(REPO)})
    jobs = [(photo, width) for photo in photos for width in WIDTHS]
    results: dict[tuple[str, int, str], list[dict[str, object]]] = {}
    for round_number, (photo, width), variant in interleaved(jobs, VARIANTS, ROUNDS):
        answer = ask(workers[variant], photo, width)
        if round_number:
            if round_number == 1:
                answer["image"] = Path(answer["out"]).read_bytes()
            results.setdefault((photo.name, width, variant), []).append(answer)
    for proc in workers.values():
        stop_worker(proc)
    uptime_after = uptime()

    reference = Reference()
    print(f"\nJPEG q{QUALITY}, `fit` to each width, cold; median of {ROUNDS} interleaved rounds, in-process "
          f"(bytes in, bytes out): wall ms and CPU ms (all threads); SSIM against a full-decode LANCZOS reference")
    print(f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\n")
    head = ["photo", "width", "ours ms", "vips ms", "vips/ours", "ours CPU ms", "vips CPU ms", "ours bytes",
            "vips bytes", "ours SSIM", "vips SSIM"]
    if BASELINE:
        head += ["before ms", "before CPU ms", "before bytes", "before SSIM"]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    totals = {v: [0.0, 0.0] for v in VARIANTS}
    per_photo: dict[str, dict[str, list[float]]] = {}
    lost = []
    for photo in photos:
        for width in WIDTHS:
            cells = {}
            for variant in VARIANTS:
                runs = results[(photo.name, width, variant)]
                image = Image.open(io.BytesIO(runs[0]["image"]))  # type: ignore[arg-type]
                ref = reference.get(str(photo), width, None, image.size)
                score = ssim(np.asarray(image.convert("L"), dtype=np.float64), ref)
                ms = statistics.median(float(r["ms"]) for r in runs)  # type: ignore[arg-type]
                cpu = statistics.median(float(r["cpu"]) for r in runs)  # type: ignore[arg-type]
                cells[variant] = (ms, cpu, int(runs[0]["bytes"]), score)  # type: ignore[call-overload]
                totals[variant][0] += ms
                totals[variant][1] += cpu
                mine = per_photo.setdefault(photo.name, {v: [0.0, 0.0] for v in VARIANTS})[variant]
                mine[0] += ms
                mine[1] += cpu
            ours, vips = cells["ours"], cells["vips"]
            if ours[0] > vips[0]:
                lost.append(f"{photo.name} @{width}")
            row = [photo.name, str(width), f"{ours[0]:.1f}", f"{vips[0]:.1f}", f"{vips[0] / ours[0]:.2f}",
                   f"{ours[1]:.1f}", f"{vips[1]:.1f}", str(ours[2]), str(vips[2]), f"{ours[3]:.4f}", f"{vips[3]:.4f}"]
            if BASELINE:
                before = cells["before"]
                row += [f"{before[0]:.1f}", f"{before[1]:.1f}", str(before[2]), f"{before[3]:.4f}"]
            print("| " + " | ".join(row) + " |")
    print("\n| photo | megapixels | ours ms/MP | vips ms/MP | ours CPU ms/MP | vips CPU ms/MP | vips/ours (wall) |"
          + (" before ms/MP |" if BASELINE else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if BASELINE else ""))
    for photo in photos:
        with Image.open(photo) as image:
            megapixels = image.width * image.height / 1e6
        mine = per_photo[photo.name]
        scale = len(WIDTHS) * megapixels
        print(f"| {photo.name} | {megapixels:.1f} | {mine['ours'][0] / scale:.2f} | {mine['vips'][0] / scale:.2f} "
              f"| {mine['ours'][1] / scale:.2f} | {mine['vips'][1] / scale:.2f} "
              f"| {mine['vips'][0] / mine['ours'][0]:.2f} |" + (f" {mine['before'][0] / scale:.2f} |" if BASELINE else ""))
    print(f"\nwhole mix, wall: ours {totals['ours'][0]:.0f} ms, vips {totals['vips'][0]:.0f} ms: speed vs libvips "
          f"{totals['vips'][0] / totals['ours'][0]:.2f}x (target >= 1.2x)")
    print(f"whole mix, CPU: ours {totals['ours'][1]:.0f} ms, vips {totals['vips'][1]:.0f} ms: "
          f"{totals['vips'][1] / totals['ours'][1]:.2f}x")
    if BASELINE:
        print(f"before this branch: {totals['before'][0]:.0f} ms wall, {totals['before'][1]:.0f} ms CPU")
    print(f"cells where libvips is faster (wall): {len(lost)} of {len(jobs)}" + (f": {', '.join(lost)}" if lost else ""))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
