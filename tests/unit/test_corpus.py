"""The shared corpus of real files the other tests read (../shared/corpus, or SIDECAR_CORPUS)."""
from __future__ import annotations

from tests.support.corpus import manifest, require_corpus


def test_the_manifest_is_there_in_ci() -> None:
    require_corpus()
    assert len(manifest()) > 50
