"""bench/scoreboard.py's helper in bench/.venv (vanilla Pillow, numpy, matplotlib: never in .venv).

    python -m bench.scoreboard_judge ssim < outputs.json     -> the same list with `bytes`, `size` and `ssim` added
    python -m bench.scoreboard_judge chart OUT.png < rows.json

SSIM is bench/pipeline.py's (luma, Gaussian window) against its reference: the photo fully decoded,
oriented, converted to sRGB and LANCZOS-resized by vanilla Pillow to the output's size.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from bench.pipeline import Reference, ssim


def judge(items: list[dict[str, object]]) -> list[dict[str, object]]:
    import numpy as np
    from PIL import Image

    reference = Reference()
    for item in items:
        data = Path(str(item["file"])).read_bytes()
        image = Image.open(io.BytesIO(data))
        ref = reference.get(str(item["photo"]), int(item["width"]), None, image.size)  # type: ignore[arg-type]
        item.update(bytes=len(data), size=list(image.size),
                    ssim=ssim(np.asarray(image.convert("L"), dtype=np.float64), ref))
    return items


def chart(data: dict[str, object], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, dict[str, float]] = data["rows"]  # type: ignore[assignment]
    columns: list[str] = data["columns"]  # type: ignore[assignment]
    better = {"cold p99 ms": "lower", "warm p99 ms": "lower", "peak RSS MiB": "lower", "bytes @800w": "lower"}
    names = list(rows)
    colours = ["#d62728" if name == "resize-sidecar" else "#7f7f7f" for name in names]
    figure, axes = plt.subplots(2, 4, figsize=(16, 7))
    for axis, column in zip(axes.flat, columns):
        values = [rows[name][column] for name in names]
        axis.barh(names, values, color=colours)
        axis.invert_yaxis()
        axis.set_title(f"{column} ({better.get(column, 'higher')} is better)", fontsize=10)
        if column in ("warm p99 ms", "warm req/s"):
            axis.set_xscale("log")
        if column.startswith("SSIM"):
            axis.set_xlim(min(values) - 0.02, 1.0)
        for index, value in enumerate(values):
            label = f"{value:,.0f}" if value >= 100 else f"{value:.4g}"
            axis.text(value, index, f" {label}", va="center", fontsize=8)
        axis.tick_params(labelsize=8)
    axes.flat[-1].axis("off")
    figure.suptitle("resize-sidecar and its peers, one run on loopback (JPEG q82)")
    figure.tight_layout(w_pad=4, rect=(0, 0.05, 1, 1))
    figure.text(0.01, 0.01, str(data["note"]), fontsize=8)
    figure.savefig(out, dpi=80)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


if __name__ == "__main__":
    if sys.argv[1] == "ssim":
        json.dump(judge(json.load(sys.stdin)), sys.stdout)
    else:
        chart(json.load(sys.stdin), Path(sys.argv[2]))
