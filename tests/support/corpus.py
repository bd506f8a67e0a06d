"""The shared corpus of real files (../shared/corpus): its manifest, and a skip when it is not there."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.support.paths import CORPUS


def manifest() -> list[dict[str, str]]:
    """The rows of the shared corpus's MANIFEST.tsv (none without the corpus)."""
    path = CORPUS / "real" / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open() as file:
        return list(csv.DictReader(file, delimiter="\t"))


def corpus_or_skip() -> Path:
    if not (CORPUS / "real" / "MANIFEST.tsv").is_file():
        pytest.skip(f"the shared corpus is not at {CORPUS} (set SIDECAR_CORPUS)")
    return CORPUS
