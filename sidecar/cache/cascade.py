"""Renditions from renditions: a smaller rendition is derived from a larger cached one of the same original.

Every rendition of an original lives in one directory (`Rendition.original_dir`), beside a small record
of the original (`.source.json`: displayed size, format, estimated JPEG quality, alpha; dot-named, so
nginx never serves it). With that record the target's geometry is planned exactly as from the original,
and any crop of it can be cut from a full-frame rendition, without fetching or decoding the original.

Rule against generation loss: the larger rendition must have at least `MIN_RATIO` times the pixels per
original pixel that the target needs (its artefacts shrink to half a pixel or less), must be a plain
`fit` of the whole frame (no crop, stretch, padding, enlargement, rotation, flip, blur, explicit
sharpening, background or watermark; the mild automatic sharpening is allowed: at twice the pixels its
halo shrinks below half a pixel, like the artefacts), and, when lossy, encoded at no lower quality
than the target. A JPEG of an original with transparency is never used: it was flattened. Among those,
the smallest is used.

Crops that look at the picture: face gravity's faces are found once per original and kept beside the
record (`.faces.json`, fractions of the original as displayed), so every later size, from the original
or from a larger rendition, crops around the same faces; face gravity is derived from a rendition only
once they are known. `trim` is never derived: its box is found at the original's resolution, and a
rendition's edges would move it.

An animated original's renditions derive only from renditions that are what they are: an animation from
an animation (never from a GIF: its palette would be quantised twice), a still of frame N from a still of
the same frame (`animation.same_frames`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import aiofiles.os

from sidecar.cache.store import FACES_RECORD, SOURCE_RECORD, Cache
from sidecar.transform import animation
from sidecar.transform.faces import Face
from sidecar.transform.geometry import plan
from sidecar.transform.pipeline import (
    Settings,
    Source,
    output_format,
    quality_for,
    searches_quality,
)
from sidecar.url.grammar import Ops
from sidecar.url.variants import cached_ops

MIN_RATIO = 2.0
T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    file_path: str  # under the cache root, like Rendition.file_path
    source: Source
    #: The original's faces, for face gravity (found before); None for other gravities.
    faces: tuple[Face, ...] | None = None


@dataclass(frozen=True)
class Records:
    """What an original's directory holds about it: its facts, its faces once they were looked for (face
    gravity's), and, when its facts are known, the names of the files beside them (the candidates of
    `find`). None where there is no record (or no readable one)."""

    source: Source | None = None
    faces: tuple[Face, ...] | None = None
    names: tuple[str, ...] = ()


async def read(cache: Cache, directory: str, *, faces: bool) -> Records:
    """The records in `directory`: the original's facts, its faces too when `faces`, the files beside them.
    One trip to the cache's threads, through aiofiles."""
    return await _read(cache.path(directory), faces, executor=cache.io)


@aiofiles.os.wrap
def _read(directory: Path, faces: bool) -> Records:
    source = _parsed(directory / SOURCE_RECORD, parse_record)
    if source is None:
        return Records(faces=_parsed(directory / FACES_RECORD, parse_faces) if faces else None)
    try:
        names = tuple(os.listdir(directory))
    except OSError:
        names = ()
    return Records(source, _parsed(directory / FACES_RECORD, parse_faces) if faces else None, names)


async def record(cache: Cache, directory: str, source: Source, fetched_at: float | None = None) -> None:
    """Remember the original's facts beside its renditions (when `read` found none). Not if the original
    was purged after `fetched_at` (raises `cache.Superseded`)."""
    await cache.write(f"{directory}/{SOURCE_RECORD}", json.dumps(asdict(source)).encode(), fetched_at=fetched_at)


async def record_faces(cache: Cache, directory: str, faces: tuple[Face, ...], fetched_at: float | None = None) -> None:
    """Remember the original's faces beside its renditions (when `read` found none)."""
    await cache.write(f"{directory}/{FACES_RECORD}", json.dumps([list(face) for face in faces]).encode(),
                      fetched_at=fetched_at)


def find(directory: str, records: Records, ops: Ops, variant: str | None, settings: Settings) -> Candidate | None:
    """The smallest rendition in `directory` (of `records.names`) that `ops` may be derived from, if any
    (see `choose`). None without the original's record, for `trim` (its box is found at the original's
    resolution, and a rendition's edges would move it), and for face gravity until the faces are known."""
    if records.source is None or ops.trim is not None or (ops.gravity == "fc" and records.faces is None):
        return None
    return choose(directory, records.source, list(records.names), ops, variant, settings, records.faces)


def choose(directory: str, source: Source, names: list[str], ops: Ops, variant: str | None, settings: Settings,
           faces: tuple[Face, ...] | None = None) -> Candidate | None:
    """Of the files `names` in `directory`, the smallest rendition that `ops` may be derived from (with
    the original's `faces`, for face gravity). Pure."""
    width, height = source.size
    target = plan(width, height, ops, max_side=settings.max_side)
    if target.keeps(width, height):
        return None  # the original itself is the answer (passed through or re-encoded)
    target_format = output_format(ops.format, variant, source, opaque=ops.background is not None, frame=ops.frame)
    wanted_quality = quality_for(ops.quality, target_format, settings, source.quality)
    best: tuple[int, str] | None = None
    for name in names:
        candidate = cached_ops(name)
        if candidate is None or not _full_frame(candidate) or (source.alpha and candidate.format == "jpeg"):
            continue
        if source.frames > 1 and not animation.same_frames(candidate, ops, target_format, source.frames):
            continue
        if candidate.format == "jxl":
            continue  # we write JPEG XL but do not read it (sniff.DECODABLE)
        if candidate.max_bytes is not None or searches_quality(candidate, settings):
            continue  # its quality is whatever fitted or passed: unknown, perhaps low
        size = plan(width, height, candidate, max_side=settings.max_side).size
        if size[0] / width < MIN_RATIO * target.scale or size[1] / height < MIN_RATIO * target.scale:
            continue
        if candidate.format != "png":
            if _scale(candidate.format) != _scale(target_format):
                continue  # AVIF's and JPEG XL's quality scales are not JPEG's and WebP's: no comparing them
            if quality_for(candidate.quality, candidate.format, settings, source.quality) < wanted_quality:
                continue
        pixels = size[0] * size[1]
        if best is None or pixels < best[0]:
            best = (pixels, name)
    if best is None:
        return None
    return Candidate(f"{directory}/{best[1]}", source, faces)


def _scale(fmt: str) -> str:
    return fmt if fmt in ("avif", "jxl") else "ijg"


def parse_record(data: bytes) -> Source:
    """The original's facts from its record; raises ValueError when it is not one."""
    try:
        raw = json.loads(data)
        return Source(size=(int(raw["size"][0]), int(raw["size"][1])), format=str(raw["format"]),
                      quality=None if raw["quality"] is None else int(raw["quality"]), alpha=bool(raw["alpha"]),
                      frames=int(raw.get("frames", 1)))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a record of an original: {exc}") from None


def parse_faces(data: bytes) -> tuple[Face, ...]:
    """The original's faces from their record (fractions of the original); raises ValueError when it is
    not one."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, list):
            raise TypeError("not a list")
        faces = tuple((float(f[0]), float(f[1]), float(f[2]), float(f[3])) for f in raw)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a record of faces: {exc}") from None
    if not all(0 <= a < c <= 1 and 0 <= b < d <= 1 for a, b, c, d in faces):
        raise ValueError("a face outside the picture")
    return faces


def _parsed(path: Path, parse: Callable[[bytes], T]) -> T | None:
    try:
        return parse(path.read_bytes())
    except (OSError, ValueError):
        return None


def _full_frame(ops: Ops) -> bool:
    return ops.fit == "fit" and not ops.enlarge and not ops.restyles
