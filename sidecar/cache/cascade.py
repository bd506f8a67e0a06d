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
from dataclasses import asdict, dataclass

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


@dataclass(frozen=True)
class Candidate:
    file_path: str  # under the cache root, like Rendition.file_path
    source: Source
    #: The original's faces, for face gravity (found before); None for other gravities.
    faces: tuple[Face, ...] | None = None


def record(cache: Cache, directory: str, source: Source, fetched_at: float | None = None) -> None:
    """Remember the original's facts beside its renditions (blocking; once per original). Not if the
    original was purged after `fetched_at` (raises `cache.Superseded`)."""
    path = f"{directory}/{SOURCE_RECORD}"
    if not cache.exists(path):
        cache.write(path, json.dumps(asdict(source)).encode(), fetched_at=fetched_at)


def record_faces(cache: Cache, directory: str, faces: tuple[Face, ...], fetched_at: float | None = None) -> None:
    """Remember the original's faces beside its renditions (blocking; once per original)."""
    path = f"{directory}/{FACES_RECORD}"
    if not cache.exists(path):
        cache.write(path, json.dumps([list(face) for face in faces]).encode(), fetched_at=fetched_at)


def read_faces(cache: Cache, directory: str) -> tuple[Face, ...] | None:
    """The original's faces as recorded, or None when not looked for yet (blocking)."""
    try:
        raw = json.loads(cache.path(f"{directory}/{FACES_RECORD}").read_bytes())
        faces = tuple((float(f[0]), float(f[1]), float(f[2]), float(f[3])) for f in raw)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return faces if all(0 <= a < c <= 1 and 0 <= b < d <= 1 for a, b, c, d in faces) else None


def find(cache: Cache, directory: str, ops: Ops, variant: str | None, settings: Settings) -> Candidate | None:
    """The smallest cached rendition in `directory` that `ops` may be derived from, if any (blocking)."""
    if ops.trim is not None:
        return None
    faces = read_faces(cache, directory) if ops.gravity == "fc" else None
    if ops.gravity == "fc" and faces is None:
        return None
    source = _read_source(cache, directory)
    if source is None:
        return None
    width, height = source.size
    target = plan(width, height, ops, max_side=settings.max_side)
    if target.is_identity:
        return None  # the original itself is the answer (passed through or re-encoded)
    target_format = output_format(ops.format, variant, source, opaque=ops.background is not None, frame=ops.frame)
    wanted_quality = quality_for(ops.quality, target_format, settings, source.quality)
    best: tuple[int, str] | None = None
    try:
        names = os.listdir(cache.path(directory))
    except OSError:
        return None
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


def _read_source(cache: Cache, directory: str) -> Source | None:
    try:
        raw = json.loads(cache.path(f"{directory}/{SOURCE_RECORD}").read_bytes())
        return Source(size=(int(raw["size"][0]), int(raw["size"][1])), format=str(raw["format"]),
                      quality=None if raw["quality"] is None else int(raw["quality"]), alpha=bool(raw["alpha"]),
                      frames=int(raw.get("frames", 1)))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _full_frame(ops: Ops) -> bool:
    return ops.fit == "fit" and not ops.enlarge and not ops.restyles
