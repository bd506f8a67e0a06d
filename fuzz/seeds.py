"""Write the fuzzing seeds: the shared corpus's small JPEGs and their progressive twins, every layout
the tests make (tests/support/jpegtools.py) and files with random scan scripts. Usage: python -m fuzz.seeds DIR"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from tests.support import jpegtools
from tests.support.paths import CORPUS


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, data in jpegtools.layouts().items():
        (target / f"layout-{name}.jpg").write_bytes(data)
    rng = random.Random(0)
    for i in range(12):
        baseline = jpegtools.encode(jpegtools.photo((96, 64), seed=i), quality=80, subsampling=i % 3)
        (target / f"random-scans-{i}.jpg").write_bytes(
            jpegtools.with_scans(baseline, jpegtools.random_scan_script(rng, 3)))
    for path in sorted((CORPUS / "real" / "jpeg").glob("*.jpg")):
        data = path.read_bytes()
        if len(data) > 200_000:
            continue  # big files make slow runs; their structure is in the small ones too
        (target / f"corpus-{path.name}").write_bytes(data)
        try:
            (target / f"corpus-progressive-{path.name}").write_bytes(jpegtools.progressive(data))
        except Exception:
            pass  # jpegtran refuses some of the broken ones: they are seeds as they are
    print(f"{len(list(target.iterdir()))} seeds in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
