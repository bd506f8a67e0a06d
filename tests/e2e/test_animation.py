"""A 500-frame animation through the transform in a child process with an address-space limit."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image

from tests.support.images import gif, pan
from tests.support.paths import REPO


def test_500_frames_are_resized_one_source_frame_at_a_time(tmp_path: Path) -> None:
    # 500 frames of 400x300 (60 megapixels): all of them decoded at once would take 240 MB as RGBA. The
    # child reports how much its peak RSS grew in the transform, under a 900 MB address-space limit.
    path = tmp_path / "many.gif"
    photo = pan(1, (480, 270))[0].quantize(256)  # paletted already: the GIF writer has nothing to quantise
    frames = [photo.transform((400, 300), Image.Transform.AFFINE, (1, 0, i % 80, 0, 1, 0)) for i in range(500)]
    path.write_bytes(gif(frames, 40, loop=0))
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from sidecar.transform.pipeline import Settings, transform
        from sidecar.url.grammar import Ops
        def peak():  # VmHWM, not ru_maxrss: that one starts at the parent's RSS (fork)
            line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
            return int(line.split()[1])
        data = Path({str(path)!r}).read_bytes()
        settings = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
        transform(data, Ops("png", width=10), settings)  # the codecs loaded before the base is taken
        base = peak()
        resource.setrlimit(resource.RLIMIT_AS, (900 * 2**20, 900 * 2**20))
        out = transform(data, Ops(sys.argv[1], width=320), settings)
        print(len(out.data), out.animation, (peak() - base) // 1024)
    """)
    for fmt, most in (("webp", 60), ("gif", 120)):  # the GIF writer keeps paletted frames: 1 byte a pixel
        result = subprocess.run([sys.executable, "-c", script, fmt], capture_output=True, text=True, timeout=300,
                                cwd=REPO, check=True)
        size, kept, grown_mb = result.stdout.split()
        assert kept == "animated" and int(size) > 0
        assert int(grown_mb) < most, f"{fmt}: the peak grew {grown_mb} MB"
