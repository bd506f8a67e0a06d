"""A 500-frame GIF through the transform in a child process with an address-space limit."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.paths import REPO
from tests.support.stack import HANG


def test_500_frame_gif_stays_bounded_in_time_and_memory(tmp_path: Path) -> None:
    # 500 frames of 600x600: 180 megapixels if every frame were decoded. The child process has
    # 700 MB of address space; the timeout only guards against a hang, it does not measure speed.
    path = tmp_path / "many.gif"
    make = textwrap.dedent(f"""
        from PIL import Image
        frames = (Image.new("P", (600, 600), i % 200) for i in range(1, 500))
        Image.new("P", (600, 600), 0).save({str(path)!r}, save_all=True, append_images=frames, duration=20)
    """)  # in a child: Pillow's GIF writer keeps every frame, and pytest's memory should not grow by that
    subprocess.run([sys.executable, "-c", make], check=True, timeout=HANG)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (700 * 2**20, 700 * 2**20))
        from sidecar.transform.pipeline import Settings, transform
        from sidecar.url.grammar import Ops
        data = open({str(path)!r}, "rb").read()
        out = transform(data, Ops("png", width=100), Settings(50_000_000, 82, (255, 255, 255)))
        peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
        print(out.size, peak)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, done.stderr
    size, peak_kb = done.stdout.rsplit(")", 1)
    assert size.strip() == "(100, 100" and int(peak_kb) < 250_000
