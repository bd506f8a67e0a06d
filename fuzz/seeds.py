"""Write the fuzzing seeds: the progressive JPEGs of the shared corpus, progressive twins of its other
JPEGs, and every layout the tests make (tests/jpegtools.py). Usage: python fuzz/seeds.py DIR"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import jpegtools  # noqa: E402
from conftest import CORPUS  # noqa: E402


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, data in jpegtools.layouts().items():
        (target / f"layout-{name}.jpg").write_bytes(data)
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
