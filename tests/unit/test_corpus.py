"""The shared corpus of real files the other tests read (../shared/corpus, or SIDECAR_CORPUS)."""
from __future__ import annotations

from tests.support.corpus import corpus_or_skip, manifest


def test_the_manifest_is_there_in_ci() -> None:
    corpus_or_skip()
    assert len(manifest()) > 50
