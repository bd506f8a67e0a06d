"""Peak RSS of one transform per output pixel: pad / force-up of a small GIF to S×S, each format, fresh process."""
import io, subprocess, sys, json
CHILD = r'''
import io, sys, resource
from PIL import Image
from sidecar.transform.pipeline import transform, Settings
from sidecar.url.grammar import Ops
fmt, fit, side, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
img = Image.new("P", (200, 150)); img.putpalette([i % 256 for i in range(768)])
for x in range(200):
    for y in range(0, 150, 7): img.putpixel((x, y), (x * y) % 256)
buf = io.BytesIO(); img.save(buf, src); data = buf.getvalue()
settings = Settings(50_000_000, 82, (255, 255, 255), max_side=16383)
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"): return int(line.split()[1]) * 1024
base = hwm()
kw = dict(width=side, height=side, fit=fit, enlarge=(fit == "force"))
if fit == "pad": kw["background"] = "336699"
r = transform(data, Ops(fmt, **kw), settings)
print(base, hwm(), len(r.data))
'''
side = int(sys.argv[1])
for src in ("GIF",):
    for fmt in ("jpeg", "png", "webp", "avif"):
        for fit in ("pad", "force"):
            out = subprocess.run([sys.executable, "-c", CHILD, fmt, fit, str(side), src], capture_output=True, text=True)
            if out.returncode:
                print(fmt, fit, "ERR", out.stderr[-300:]); continue
            base, peak, size = map(int, out.stdout.split())
            print(f"{fmt:5} {fit:5} {side}x{side}: base {base/2**20:.0f} MiB peak {peak/2**20:.0f} MiB, "
                  f"{(peak-base)/side/side:.1f} B/output px, file {size/2**20:.1f} MiB", flush=True)
