"""Benchmark: crops that look at the picture. Face gravity against smart, centre and libvips' attention
crop on a labelled set; trim's box against the known one; what detection costs beside the resize.

    make bench-aware        (or: .venv/bin/python bench/aware_crops.py, with requirements-bench.txt)

The labelled set is made here, seeded, from images whose licence allows it: the NASA portrait in
tests/data/astronaut.jpg (public domain) pasted, 1 or 2 heads at a time, at known places and sizes (the
face 8-22% of the longest side) onto the photos of ../shared/corpus/photos (or SIDECAR_PHOTOS), each
scaled to 1600 px; and those photos pasted onto white, black (letterboxing) and transparent canvases.
A crop "keeps" the faces when its box holds every labelled face box whole; only crops whose window can
hold them all are counted. The timing rows interleave the variants in a rotating order on one 12 MP
JPEG (the iPhone photo with two heads), so a busy neighbour slows all of them alike; detection is also
timed alone, in CPU milliseconds of this process (less sensitive to a loaded machine than wall time).
"""
from __future__ import annotations

import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

import pyvips
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sidecar.transform import faces, pipeline, trim  # noqa: E402
from sidecar.transform.pipeline import Settings, transform  # noqa: E402
from sidecar.url.grammar import Ops  # noqa: E402

PHOTOS = Path(os.environ.get("SIDECAR_PHOTOS", HERE.parent.parent / "shared" / "corpus" / "photos"))
ASTRONAUT = HERE.parent / "tests" / "data" / "astronaut.jpg"
FACE, HEAD = (178, 62, 272, 164), (130, 0, 330, 230)  # as labelled in tests/test_aware_crops.py
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SETTINGS = Settings(max_pixels=100_000_000, quality=82, background=(255, 255, 255))
ASPECTS = ((1, 1), (2, 3), (3, 2), (9, 16), (16, 9), (4, 5))
SIDE = 1600
Box = tuple[float, float, float, float]
#: Faces the photos have of their own, labelled by hand (fractions): they count like the pasted ones.
#: The videoframe's other man, in motion-blurred profile, is not labelled (not a frontal face).
OWN_FACES = {"portrait-cmyk-800x533.jpg": [(310 / 800, 84 / 533, 490 / 800, 300 / 533)],
             "videoframe-2558x1348.png": [(0.68, 0.19, 0.785, 0.39)]}


def photos() -> list[tuple[Image.Image, list[Box]]]:
    """The photos at `SIDE` pixels at most, each with its own faces' boxes in pixels."""
    out = []
    for path in sorted(PHOTOS.glob("*.jp*g")) + sorted(PHOTOS.glob("*.png")):
        image = Image.open(path)
        image.draft("RGB", (SIDE, SIDE))
        image = image.convert("RGB")
        image.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
        own = [(a * image.width, b * image.height, c * image.width, d * image.height)
               for a, b, c, d in OWN_FACES.get(path.name, [])]
        out.append((image, own))
    return out


def with_heads(background: tuple[Image.Image, list[Box]], rng: random.Random, count: int
               ) -> tuple[Image.Image, list[Box]]:
    """Heads pasted where they cover no face; every face box in pixels."""
    head = Image.open(ASTRONAUT).convert("RGB").crop(HEAD)
    picture, boxes = background[0].copy(), list(background[1])
    taken = [(round(a), round(b), round(c - a), round(d - b)) for a, b, c, d in boxes]
    longest = max(picture.size)
    for _ in range(count):
        for _ in range(50):
            scale = rng.uniform(0.08, 0.22) * longest / (FACE[2] - FACE[0])
            w, h = round(head.width * scale), round(head.height * scale)
            if w >= picture.width or h >= picture.height:
                continue
            left, top = rng.randrange(0, picture.width - w), rng.randrange(0, picture.height - h)
            if all(left + w <= a or a + aw <= left or top + h <= b or b + ah <= top for a, b, aw, ah in taken):
                break
        else:
            continue
        taken.append((left, top, w, h))
        picture.paste(head.resize((w, h), Image.Resampling.LANCZOS), (left, top))
        boxes.append((left + (FACE[0] - HEAD[0]) * scale, top + (FACE[1] - HEAD[1]) * scale,
                      left + (FACE[2] - HEAD[0]) * scale, top + (FACE[3] - HEAD[1]) * scale))
    return picture, boxes


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def our_box(data: bytes, ops: Ops) -> Box:
    """The crop box (in the original's pixels) the pipeline picks, read from its plan after `geometry`."""
    work = pipeline.Work(data, ops, SETTINGS, None, None)
    for step in pipeline.STEPS:
        step(work)
        if step is pipeline.geometry:
            return work.plan.box
    raise AssertionError("no geometry step")


def vips_box(data: bytes, crop_w: int, crop_h: int) -> Box:
    image = pyvips.Image.new_from_buffer(data, "")
    _, found = image.smartcrop(crop_w, crop_h, interesting="attention", attention_x=True, attention_y=True)
    left = min(max(found["attention_x"] - crop_w // 2, 0), image.width - crop_w)
    top = min(max(found["attention_y"] - crop_h // 2, 0), image.height - crop_h)
    return left, top, left + crop_w, top + crop_h


def holds(box: Box, face: Box) -> bool:
    return box[0] <= face[0] + 1 and box[1] <= face[1] + 1 and face[2] - 1 <= box[2] and face[3] - 1 <= box[3]


def face_table(rng: random.Random) -> list[str]:
    kept = {"centre": [0, 0], "gsm": [0, 0], "gfc": [0, 0], "libvips attention": [0, 0]}
    detected = found = 0
    for background in photos():
        for count in (1, 1, 2, 2):
            picture, boxes = with_heads(background, rng, count)
            data = jpeg(picture)
            faces_found = faces.detect(Image.open(io.BytesIO(data)))
            detected += len(boxes)
            found += sum(any(_iou(f, _frac(b, picture.size)) > 0.4 for f in faces_found) for b in boxes)
            for aw, ah in ASPECTS:
                crop_w = min(picture.width, picture.height * aw / ah)
                crop_h = crop_w * ah / aw
                union = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                         max(b[2] for b in boxes), max(b[3] for b in boxes))
                if union[2] - union[0] > crop_w or union[3] - union[1] > crop_h:
                    continue  # they cannot all fit: not counted
                w, h = aw * 100, ah * 100
                crops = {
                    "centre": our_box(data, Ops("jpeg", width=w, height=h, fit="fill")),
                    "gsm": our_box(data, Ops("jpeg", width=w, height=h, fit="fill", gravity="sm")),
                    "gfc": our_box(data, Ops("jpeg", width=w, height=h, fit="fill", gravity="fc")),
                    "libvips attention": vips_box(data, int(crop_w), int(crop_h)),
                }
                for name, box in crops.items():
                    kept[name][0] += all(holds(box, b) for b in boxes)
                    kept[name][1] += 1
    rows = ["| crop | crops keeping every face | share |", "|---|---|---|"]
    for name, (good, total) in kept.items():
        rows.append(f"| {name} | {good} / {total} | {100 * good / total:.1f}% |")
    rows.append(f"\nDetector recall on the set: {found} / {detected} labelled faces found "
                f"({100 * found / detected:.1f}%).")
    return rows


def trim_table(rng: random.Random) -> list[str]:
    errors: dict[str, list[int]] = {"white, JPEG q90": [], "white, JPEG q75": [], "black letterbox, JPEG q90": [],
                                    "transparent, PNG": []}
    for image, _ in photos():
        for _ in range(3):
            w = rng.randrange(image.width // 4, image.width * 3 // 4)
            h = round(w * image.height / image.width)
            inner = image.resize((w, h), Image.Resampling.LANCZOS)
            canvas_w, canvas_h = w + rng.randrange(40, 800), h + rng.randrange(40, 800)
            left, top = rng.randrange(1, canvas_w - w), rng.randrange(1, canvas_h - h)
            truth = (left, top, left + w, top + h)
            for name, colour, quality in (("white, JPEG q90", "white", 90), ("white, JPEG q75", "white", 75),
                                          ("black letterbox, JPEG q90", "black", 90)):
                canvas = Image.new("RGB", (canvas_w, canvas_h), colour)
                canvas.paste(inner, (left, top))
                found = trim.box(Image.open(io.BytesIO(jpeg(canvas, quality))).convert("RGB"))
                errors[name].append(max(abs(a - b) for a, b in zip(found, truth, strict=True)))
            clear = Image.new("RGBA", (canvas_w, canvas_h), (0, 0, 0, 0))
            clear.paste(inner.convert("RGBA"), (left, top))
            out = io.BytesIO()
            clear.save(out, "PNG")
            found = trim.box(Image.open(io.BytesIO(out.getvalue())))
            errors["transparent, PNG"].append(max(abs(a - b) for a, b in zip(found, truth, strict=True)))
    rows = ["| set (default threshold) | boxes within ±2 px | largest error (px) |", "|---|---|---|"]
    for name, errs in errors.items():
        good = sum(e <= 2 for e in errs)
        rows.append(f"| {name} | {good} / {len(errs)} ({100 * good / len(errs):.0f}%) | {max(errs)} |")
    return rows


def timing_table(rng: random.Random) -> list[str]:
    tree = Image.open(PHOTOS / "tree-iphone7-4032x3024.jpg")
    picture, _ = with_heads((tree.convert("RGB"), []), rng, 2)
    data = jpeg(picture, 92)
    variants = ("w400-h400-fill", "w400-h400-fill-gsm", "w400-h400-fill-gfc", "w400-h400-fill-trim")
    times: dict[str, list[float]] = {v: [] for v in variants}
    detect_cpu, detect_wall = [], []
    for round_ in range(ROUNDS):
        for variant in variants[round_ % len(variants):] + variants[:round_ % len(variants)]:
            ops = Ops.parse(variant, "jpg")
            started = time.perf_counter()
            transform(data, ops, SETTINGS)
            times[variant].append(time.perf_counter() - started)
        image = Image.open(io.BytesIO(data))  # drafted as face gravity drafts it at the least (1/8)
        image.draft("RGB", (faces.DECODE_SIDE, round(faces.DECODE_SIDE * image.height / image.width)))
        image.load()
        cpu, wall = time.process_time(), time.perf_counter()
        faces.detect(image)
        detect_cpu.append(time.process_time() - cpu)
        detect_wall.append(time.perf_counter() - wall)
    base = statistics.median(times[variants[0]])
    rows = ["| 12 MP JPEG -> 400x400 | median ms | ratio to the centre crop |", "|---|---|---|"]
    for variant in variants:
        median = statistics.median(times[variant])
        rows.append(f"| {variant} | {1000 * median:.0f} | {median / base:.2f} |")
    rows.append(f"\nDetection alone on the 12 MP JPEG's draft ({image.size[0]}x{image.size[1]}): median "
                f"{1000 * statistics.median(detect_cpu):.1f} ms CPU, {1000 * statistics.median(detect_wall):.1f} ms wall.")
    return rows


def _frac(box: Box, size: tuple[int, int]) -> Box:
    return box[0] / size[0], box[1] / size[1], box[2] / size[0], box[3] / size[1]


def _iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def main() -> None:
    print(f"uptime: {os.popen('uptime').read().strip()}  (a shared, loaded machine: compare ratios)\n")
    for title, table in (("Face gravity", face_table), ("Trim", trim_table), ("Cost", timing_table)):
        print(f"## {title}\n")
        print("\n".join(table(random.Random(19))))
        print()


if __name__ == "__main__":
    main()
