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
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import aiofiles.os

from sidecar.cache.store import Cache
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

SOURCE_RECORD = ".source.json"
MIN_RATIO = 2.0


@dataclass(frozen=True)
class Candidate:
    file_path: str  # under the cache root, like Rendition.file_path
    source: Source


async def record(cache: Cache, directory: str, source: Source, fetched_at: float | None = None) -> None:
    """Remember the original's facts beside its renditions (when `recorded` found none). Not if the
    original was purged after `fetched_at` (raises `cache.Superseded`)."""
    await cache.write(f"{directory}/{SOURCE_RECORD}", json.dumps(asdict(source)).encode(), fetched_at=fetched_at)


async def recorded(cache: Cache, directory: str) -> Source | None:
    """The original's facts recorded in `directory`, if they are (and are readable)."""
    try:
        return parse_record(await cache.read(f"{directory}/{SOURCE_RECORD}"))
    except (OSError, ValueError):
        return None


async def find(cache: Cache, directory: str, source: Source, ops: Ops, variant: str | None,
               settings: Settings) -> Candidate | None:
    """The smallest cached rendition in `directory` (the renditions of the original `source` describes)
    that `ops` may be derived from, if any (see `choose`)."""
    try:
        names = await aiofiles.os.listdir(cache.path(directory), executor=cache.io)
    except OSError:
        return None
    return choose(directory, source, names, ops, variant, settings)


def choose(directory: str, source: Source, names: list[str], ops: Ops, variant: str | None,
           settings: Settings) -> Candidate | None:
    """Of the files `names` in `directory`, the smallest rendition that `ops` may be derived from. Pure."""
    width, height = source.size
    target = plan(width, height, ops, max_side=settings.max_side)
    if target.is_identity:
        return None  # the original itself is the answer (passed through or re-encoded)
    target_format = output_format(ops.format, variant, source, opaque=ops.background is not None)
    wanted_quality = quality_for(ops.quality, target_format, settings, source.quality)
    best: tuple[int, str] | None = None
    for name in names:
        candidate = cached_ops(name)
        if candidate is None or not _full_frame(candidate) or (source.alpha and candidate.format == "jpeg"):
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
    return Candidate(f"{directory}/{best[1]}", source)


def _scale(fmt: str) -> str:
    return fmt if fmt in ("avif", "jxl") else "ijg"


def parse_record(data: bytes) -> Source:
    """The original's facts from its record; raises ValueError when it is not one."""
    try:
        raw = json.loads(data)
        return Source(size=(int(raw["size"][0]), int(raw["size"][1])), format=str(raw["format"]),
                      quality=None if raw["quality"] is None else int(raw["quality"]), alpha=bool(raw["alpha"]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a record of an original: {exc}") from None


def _full_frame(ops: Ops) -> bool:
    return ops.fit == "fit" and not ops.enlarge and not ops.restyles
