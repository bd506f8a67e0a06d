"""Where the tests' files are: the repo, its samples, the shared corpus (SIDECAR_CORPUS overrides)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
CORPUS = Path(os.environ.get("SIDECAR_CORPUS", REPO.parent / "shared" / "corpus"))
TESTS = REPO / "tests"
#: Files the tests keep: fuzz findings, the C decoder's crashes.
DATA = TESTS / "data"
