"""The cascade's choice of a base: which cached renditions a smaller one may be made from, and the
records of an original it reads."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sidecar.cache import cascade
from sidecar.cache.store import Cache
from sidecar.transform.pipeline import Settings, Source
from sidecar.url.grammar import Ops

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255), max_side=8192)


def test_restyled_renditions_are_no_base_but_hinted_ones_are() -> None:
    directory, photo = "/img/ab/cd/photo.jpg", Source((4000, 2000), "JPEG", 90, False)
    target = Ops("jpeg", width=400)
    names = [cascade.SOURCE_RECORD, ".lock-w400.jpg"]
    for name in ("w2000-r90.jpg", "w2000-flip.jpg", "w2000-bl2.jpg", "w2000-sh1.jpg", "w2000-bg000000.jpg",
                 "w2000-h1000-pad.jpg", f"info.{'B' * 16}.json"):
        names.append(name)
        assert cascade.choose(directory, photo, names, target, None, SETTINGS) is None, name
    names += [f"w100-ch.{'B' * 16}.jpg.w1920.jpg", "w2000-sh0.jpg"]  # a 1920-wide plain fit, a 2000-wide one
    found = cascade.choose(directory, photo, names, target, None, SETTINGS)
    assert found == cascade.Candidate(f"{directory}/w100-ch.{'B' * 16}.jpg.w1920.jpg", photo)  # the smaller
    assert cascade.choose(directory, photo, names, Ops("jpeg"), None, SETTINGS) is None  # the original's size
    # A JPEG of an original with transparency was flattened: no base for anything.
    logo = Source((4000, 2000), "PNG", None, True)
    assert cascade.choose("/img/ab/cd/logo.png", logo, ["w2000.jpg"], Ops("png", width=400), None, SETTINGS) is None
    assert cascade.choose("/img/ab/cd/logo.png", logo, ["w2000.png"], Ops("png", width=400), None, SETTINGS)


def test_the_records_of_an_original_round_trip_and_refuse_anything_else(tmp_path: Path) -> None:
    photo, directory = Source((4000, 2000), "JPEG", None, False), "/img/ab/cd/photo.jpg"
    faces = ((0.25, 0.1, 0.5, 0.4),)
    cache = Cache(tmp_path)

    async def scenario() -> None:
        assert await cascade.read(cache, directory, faces=True) == cascade.Records()
        await cascade.record(cache, directory, photo)
        await cascade.record_faces(cache, directory, faces)
        records = {cascade.SOURCE_RECORD, cascade.FACES_RECORD}
        known = await cascade.read(cache, directory, faces=False)
        assert (known.source, known.faces, set(known.names)) == (photo, None, records)
        await cache.write(f"{directory}/w2000.jpg", b"x")
        known = await cascade.read(cache, directory, faces=True)
        assert (known.source, known.faces, set(known.names)) == (photo, faces, {*records, "w2000.jpg"})
        found = cascade.find(directory, known, Ops("jpeg", width=400), None, SETTINGS)
        assert found == cascade.Candidate(f"{directory}/w2000.jpg", photo, faces)
        assert cascade.find(directory, known, Ops("jpeg", width=400, trim=10), None, SETTINGS) is None
        fc = Ops("jpeg", width=400, height=400, fit="fill", gravity="fc")
        assert cascade.find(directory, cascade.Records(photo, None, known.names), fc, None, SETTINGS) is None

    asyncio.run(scenario())
    for bad in (b"", b"[]", b'{"size": [1]}', b'{"size": [1, 2], "format": "JPEG"}', b"\xff"):
        with pytest.raises(ValueError):
            cascade.parse_record(bad)
    for bad in (b"{}", b"[[0.1]]", b"[[0.5, 0.1, 0.2, 0.4]]", b'[["a", 0, 1, 1]]'):
        with pytest.raises(ValueError):
            cascade.parse_faces(bad)
