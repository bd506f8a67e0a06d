"""Progressive JPEGs through the pipeline: normal path, DC path, libvips, side by side.

    make bench-progressive       (installs pyvips and pyvips-binary into .venv first)


For each JPEG camera photo in ../shared/corpus/photos (or $SIDECAR_CORPUS/photos) and its lossless
progressive twin (`jpegtran -copy all -progressive`: same coefficients, same metadata), into a 200 px
and a 400 px box (longest side, as libvips `thumbnail` does by default), JPEG out:
- normal: `transform` with the DC decoder switched off (libjpeg decodes, after `draft`);
- dc:     `transform` as shipped (the DC decoder takes progressive files drafted to 1/8);
- vips:   libvips `thumbnail_buffer` + JPEG save, one thread, operation cache off.
Variants run interleaved, round after round, so a neighbour's load hits them alike; the table gives
the median CPU ms per image. A second table shows where a progressive file's bytes are, by scan.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")

from sidecar.transform import dcjpeg  # noqa: E402
from sidecar.transform.pipeline import STEPS, Settings, Work, draft, transform  # noqa: E402
from sidecar.url.grammar import Ops  # noqa: E402
from tests.support.paths import REPO  # noqa: E402

try:
    import pyvips
except (ImportError, OSError) as exc:  # OSError: libvips itself is missing
    pyvips = None
    VIPS_MISSING = f"libvips unavailable ({exc}): `make bench-progressive` installs pyvips and pyvips-binary"

CORPUS = Path(os.environ.get("SIDECAR_CORPUS", REPO.parent / "shared" / "corpus"))
SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
BOXES = (200, 400)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))


def progressive_twin(data: bytes) -> bytes:
    return subprocess.run(["jpegtran", "-copy", "all", "-progressive"], input=data, capture_output=True, check=True).stdout


def normal(data: bytes, box: int) -> bytes:
    with dcjpeg.disabled():
        return transform(data, Ops("jpeg", width=box, height=box), SETTINGS).data


def dc(data: bytes, box: int) -> bytes:
    return transform(data, Ops("jpeg", width=box, height=box), SETTINGS).data


def vips(data: bytes, box: int) -> bytes:
    image = pyvips.Image.thumbnail_buffer(data, box, height=box, size="down")
    return image.jpegsave_buffer(Q=SETTINGS.quality, strip=True)


def draft_scale(data: bytes, box: int) -> str:
    """The scale libjpeg is set to for this rendition (only 1/8 can take the DC path)."""
    work = Work(data, Ops("jpeg", width=box, height=box), SETTINGS, None, None)
    for step in STEPS[: STEPS.index(draft) + 1]:
        step(work)
    return f"1/{work.image.decoderconfig[0]}" if work.image.decoderconfig else "1"


VARIANTS: dict[str, Callable[[bytes, int], bytes]] = {"normal": normal, "dc": dc}


def time_ms(run: Callable[[bytes, int], bytes], data: bytes, box: int) -> float:
    """CPU time of the process (all its threads): on a shared machine, wall time mostly measures the
    neighbours."""
    started = time.process_time()
    run(data, box)
    return (time.process_time() - started) * 1000


def scans(data: bytes) -> list[tuple[str, int]]:
    """(description, entropy-coded bytes) of each scan, in file order."""
    ids: dict[int, str] = {}
    out, pos = [], 2
    while pos + 4 <= len(data):
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xD9:
            break
        if marker in (0xC0, 0xC1, 0xC2):
            count = data[pos + 9]
            for i in range(count):
                ids[data[pos + 10 + 3 * i]] = {1: ("Y",), 3: ("Y", "Cb", "Cr")}.get(count, ("c1", "c2", "c3", "c4"))[i]
        if marker != 0xDA:
            pos += 2 + length
            continue
        count = data[pos + 4]
        names = ",".join(ids.get(data[pos + 5 + 2 * i], "?") for i in range(count))
        ss, se, approx = data[pos + 5 + 2 * count : pos + 8 + 2 * count]
        start = end = pos + 2 + length
        while True:  # entropy-coded data ends at the first marker that is not a restart marker
            end = data.index(b"\xff", end)
            if data[end + 1] in (0x00, 0xFF) or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
                continue
            break
        out.append((f"{names} {ss}-{se} Ah{approx >> 4} Al{approx & 15}", end - start))
        pos = end
    return out


def main() -> None:
    photos = sorted(p for p in (CORPUS / "photos").glob("*.jpg"))
    if not photos:
        sys.exit(f"no photos in {CORPUS / 'photos'} (set SIDECAR_CORPUS)")
    if not dcjpeg.available():
        sys.exit("the compiled DC decoder is missing: run `make install`")
    variants = dict(VARIANTS)
    if pyvips is not None:
        pyvips.cache_set_max(0)
        variants["vips"] = vips
    else:
        print(VIPS_MISSING)
    inputs = {}
    for path in photos:
        baseline = path.read_bytes()
        inputs[(path.stem, "baseline")] = baseline
        inputs[(path.stem, "progressive")] = progressive_twin(baseline)
    cases = [(key, box, name) for key in inputs for box in BOXES for name in variants]
    for key, box, name in cases:  # warm-up, and a check that every variant makes an image
        assert variants[name](inputs[key], box)[:2] == b"\xff\xd8"
    times: dict[tuple[object, ...], list[float]] = {case: [] for case in cases}
    for round_ in range(ROUNDS):
        # Rotate the order each round: no variant always runs right after the same neighbour.
        shift = round_ % len(cases)
        for key, box, name in cases[shift:] + cases[:shift]:
            times[(key, box, name)].append(time_ms(variants[name], inputs[key], box))
    median = {case: statistics.median(values) for case, values in times.items()}

    print(f"\nCPU ms per image, median of {ROUNDS} interleaved rounds (one thread each; shared machine)\n")
    head = "| photo | box | draft | form | " + " | ".join(variants) + " | prog dc / base normal |"
    head += " vips / dc |" if "vips" in variants else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for (stem, form), data in inputs.items():
        for box in BOXES:
            row = [median[((stem, form), box, name)] for name in variants]
            cells = " | ".join(f"{value:.1f}" for value in row)
            ratio = median[((stem, form), box, "dc")] / median[((stem, "baseline"), box, "normal")]
            line = f"| {stem} | {box} | {draft_scale(data, box)} | {form} | {cells} | {ratio:.2f} |"
            if "vips" in variants:
                line += f" {median[((stem, form), box, 'vips')] / median[((stem, form), box, 'dc')]:.1f}x |"
            print(line)

    print("\nwhere a progressive twin's bytes are (jpegtran's default scan script); the DC path reads the")
    print("DC scans, plus the chroma AC scans of 4:2:0 files (libjpeg's 2x2 chroma IDCT at 1/8 reads them)\n")
    for stem, form in inputs:
        if form != "progressive":
            continue
        data = inputs[(stem, form)]
        parts = "; ".join(f"{name}: {100 * size / len(data):.1f}%" for name, size in scans(data))
        print(f"- {stem} ({len(data) / 1e6:.2f} MB): {parts}")


if __name__ == "__main__":
    main()
