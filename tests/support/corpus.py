"""The shared corpus of real files (../shared/corpus): its manifest; missing, a failure in CI (`needs`)."""
from __future__ import annotations

import csv
from pathlib import Path

from tests.support.needs import missing
from tests.support.paths import CORPUS


def manifest() -> list[dict[str, str]]:
    """The rows of the shared corpus's MANIFEST.tsv (none without the corpus)."""
    path = CORPUS / "real" / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open() as file:
        return list(csv.DictReader(file, delimiter="\t"))


def require_corpus() -> Path:
    """The corpus's root; without it, the test fails in CI and skips elsewhere."""
    if not (CORPUS / "real" / "MANIFEST.tsv").is_file():
        missing(f"the shared corpus ({CORPUS})", "set SIDECAR_CORPUS to it")
    return CORPUS
