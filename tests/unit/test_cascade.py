"""The cascade's choice of a base: which cached renditions a smaller one may be made from."""
from __future__ import annotations

from pathlib import Path

from sidecar.cache import cascade
from sidecar.cache.store import Cache
from sidecar.transform.pipeline import Settings, Source
from sidecar.url.grammar import Ops

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255), max_side=8192)


def test_restyled_renditions_are_no_base_but_hinted_ones_are(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    directory = "/img/ab/cd/photo.jpg"
    cascade.record(cache, directory, Source((4000, 2000), "JPEG", 90, False))
    target = Ops("jpeg", width=400)
    for name in ("w2000-r90.jpg", "w2000-flip.jpg", "w2000-bl2.jpg", "w2000-sh1.jpg", "w2000-bg000000.jpg",
                 "w2000-h1000-pad.jpg", f"info.{'B' * 16}.json"):
        cache.write(f"{directory}/{name}", b"x")
        assert cascade.find(cache, directory, target, None, SETTINGS) is None, name
    cache.write(f"{directory}/w100-ch.{'B' * 16}.jpg.w1920.jpg", b"x")  # a 1920-wide plain fit
    cache.write(f"{directory}/w2000-sh0.jpg", b"x")
    found = cascade.find(cache, directory, target, None, SETTINGS)
    assert found is not None and found.file_path.endswith(".w1920.jpg")  # the smaller of the two
    # A JPEG of an original with transparency was flattened: no base for anything.
    cascade_dir = "/img/ab/cd/logo.png"
    cascade.record(cache, cascade_dir, Source((4000, 2000), "PNG", None, True))
    cache.write(f"{cascade_dir}/w2000.jpg", b"x")
    assert cascade.find(cache, cascade_dir, Ops("png", width=400), None, SETTINGS) is None
