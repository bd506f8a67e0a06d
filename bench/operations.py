"""Benchmark: what each restyling operation and the info request cost next to a plain resize, in one table.

    make bench-operations        (or: .venv/bin/python -m bench.operations)

Every variant turns the same photos (../shared/corpus/photos, or SIDECAR_PHOTOS) into a JPEG that fits
inside 800x800 (so a quarter turn keeps the pixel count) at quality 82 through the real transform
(pillow-simd), in this process; `pad` makes the whole 800x800 canvas; `info` is the whole info
request's work (facts, ThumbHash, LQIP). The rounds interleave the variants in a rotating order, so a
busy neighbour on a shared machine slows all of them alike; the table shows the median time per image,
its ratio to the baseline (`w800-h800-sh0`: the resize without any sharpening, what the pipeline did
before these operations), and the median output size.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from sidecar.transform import info
from sidecar.transform.pipeline import Settings, transform
from sidecar.url.grammar import Ops
from tests.support.paths import REPO

PHOTOS = Path(os.environ.get("SIDECAR_PHOTOS", REPO.parent / "shared" / "corpus" / "photos"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SETTINGS = Settings(max_pixels=100_000_000, quality=82, background=(255, 255, 255))
BASELINE = "w800-h800-sh0"
VARIANTS = (BASELINE, "w800-h800", "w800-h800-sh1", "w800-h800-bl5", "w800-h800-r90-flip", "w800-h800-bgf0f0f0",
            "w800-h800-pad-bgf0f0f0", "info")


def run(variant: str, data: bytes) -> int:
    """Do the variant's work once; return the output's size in bytes."""
    if variant == "info":
        return len(str(info.describe(data, SETTINGS)))
    return len(transform(data, Ops.parse(variant, "jpg"), SETTINGS).data)


def main() -> None:
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
        if PHOTOS.is_dir() else []
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS} (set SIDECAR_PHOTOS)")
    originals = {p.name: p.read_bytes() for p in photos}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    sizes: dict[str, list[int]] = {v: [] for v in VARIANTS}
    for variant in VARIANTS:  # warm-up: plugins, ICC transforms, code paths
        run(variant, originals[photos[0].name])
    for round_number in range(ROUNDS):
        order = VARIANTS[round_number % len(VARIANTS):] + VARIANTS[:round_number % len(VARIANTS)]
        for data in originals.values():
            for variant in order:
                started = time.perf_counter()
                size = run(variant, data)
                times[variant].append((time.perf_counter() - started) * 1000)
                if round_number == 0:
                    sizes[variant].append(size)
    base = statistics.median(times[BASELINE])
    print(f"{len(photos)} photos from {PHOTOS}, {ROUNDS} interleaved rounds, medians per image "
          "(shared machine: compare the ratios)")
    print(f"{'variant':<26} {'ms':>8} {'x baseline':>11} {'bytes':>9}")
    for variant in VARIANTS:
        median = statistics.median(times[variant])
        label = "info (JSON chars)" if variant == "info" else variant
        print(f"{label:<26} {median:8.1f} {median / base:11.2f} {statistics.median(sizes[variant]):9.0f}")


if __name__ == "__main__":
    main()
