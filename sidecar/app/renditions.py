"""A rendition's miss: URL -> (cascade or source) -> transform -> cache, once per file.

Identical misses share one flight (`sidecar.cache.singleflight`), new ones wait for a transform slot or are
refused (`sidecar.app.admission`), and every request has a deadline (`request_deadline`). A failed rendition
may be answered with a fallback image (`sidecar.app.fallback`).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sidecar.app.admission import Admission
from sidecar.app.fallback import STATUSES as FALLBACK_STATUSES
from sidecar.app.fallback import Fallbacks
from sidecar.app.response import Response
from sidecar.app.work import Work
from sidecar.cache import cascade
from sidecar.cache.singleflight import Flights
from sidecar.cache.store import Superseded
from sidecar.config import Config
from sidecar.errors import BadRequest, DeadlineExceeded, Expired, SidecarError
from sidecar.log import log
from sidecar.observe import memory
from sidecar.observe.metrics import rendition_kind
from sidecar.sources import SourceChain
from sidecar.transform.animation import FIRST_FRAME
from sidecar.transform.faces import Face
from sidecar.transform.pipeline import Rendered, Settings, Source, transform
from sidecar.url import grammar as url
from sidecar.url.grammar import AUTO_VARIANTS
from sidecar.url.paths import HINT_HEADERS, internal_path
from sidecar.url.signing import Signer
from sidecar.url.variants import Hint, hinted, variant_suffix

#: `X-Image-Source` of a rendition derived from a larger cached one (see `sidecar.cache.cascade`).
CASCADE = "cascade"
#: The formats an `.auto` rendition may get per variant: its file name ends with the one it got (an
#: animation is WebP for the jxl and avif variants, named `.anim.webp`, GIF for legacy).
AUTO_FORMATS = {"jxl": ("jxl", "webp"), "avif": ("avif", "webp"), "webp": ("webp",), "legacy": ("jpeg", "png", "gif")}


@dataclass(frozen=True)
class Made:
    """A leader's miss: published under the name `suffix` ends, or (when the cache refused the file)
    `rendered` to send from memory instead."""

    source: str
    suffix: str
    rendered: Rendered | None = None
    #: `X-Image-Animation`: an animated original's rendition is its first frame (over the budget).
    animation: str = ""
    #: False when the URL's `mb{bytes}` could not be met (the file is the smallest we could make).
    fits: bool = True


#: On the response that made a rendition whose `mb{bytes}` could not be met (nginx serves later hits
#: from its cache without it): the file is the smallest the sidecar could make, over the budget.
OVER_BUDGET_HEADER = "X-Image-Over-Budget"


def transform_settings(config: Config) -> Settings:
    """The parts of the config the transform needs."""
    made = config.transform
    auto = made.quality == "auto"
    return Settings(config.limits.max_pixels, 82 if auto else made.quality,  # type: ignore[arg-type]
                    made.background_rgb, avif_quality=made.avif_quality,
                    cmyk_profile=made.cmyk_profile, watermarks=made.watermarks, max_side=config.urls.max_dimension,
                    max_animation_pixels=config.limits.max_animation_pixels, auto_sharpen=made.auto_sharpen,
                    auto_quality=auto, quality_target=made.quality_target, max_bytes_resize=made.max_bytes_resize,
                    max_output_pixels=config.limits.output_pixels)


def file_names(base: str, ops: url.Ops, hint: Hint | None, variant: str | None) -> list[str]:
    """Every name the rendition at `base` (its URL's file path) may be published under, as nginx's
    `try_files` looks for them: an `.auto` one ends with the format it got, a client-hint one with its hint."""
    formats = AUTO_FORMATS[variant] if variant else (ops.format,)
    return [base + variant_suffix(ops, hint, fmt, variant) for fmt in formats]


class Renditions:
    """Serves canonical rendition URLs (signature already checked)."""

    def __init__(self, work: Work, sources: SourceChain, settings: Settings, signer: Signer | None) -> None:
        self.work, self.sources, self.settings, self.signer = work, sources, settings, signer
        self.config, self.cache, self.metrics = work.config, work.cache, work.metrics
        self.limits = self.config.url_limits
        self.fallbacks = Fallbacks(self.config, settings)
        for status in FALLBACK_STATUSES:  # series at zero before the first fallback (see Metrics.initialise)
            self.metrics.fallback_images.labels(str(status))
        self.admission = Admission(self.config.processes.worker_slots, self.config.processes.queue, self.metrics)
        self.flights: Flights[Made] = Flights(self.cache, work.io)

    async def serve(self, path: str, target: url.Rendition, signature: str | None, variant: str | None,
                     hint: str | None) -> tuple[Response, str | None]:
        """A canonical rendition's response, and the cache file (as a decoded URL path) it was published
        under, if it was. `path` is the request's, for the logs."""
        deadline = asyncio.get_running_loop().time() + self.config.processes.request_deadline
        self.limits.check(target.ops)
        expiry_headers: list[tuple[str, str]] = []
        if target.ops.expires is not None and self.signer is not None:
            left = target.ops.expires - int(time.time())
            if left < 0:
                raise Expired()
            # Every expiry of a rendition shares the file of its URL without one. That URL's signature
            # never leaves nginx (X-Accel-Redirect is internal), so this grants nothing new.
            target = target.without_expiry()
            signature = self.signer.sign(target.payload)
            # nginx's Cache-Control for this response: no cache keeps it past the expiry.
            expiry_headers = [("X-Image-Max-Age", str(min(left, self.config.cache.max_age)))]
        ops = target.ops
        self._check(ops, variant)
        variant = variant if ops.format == "auto" else None
        client_hint = self._hint(ops, hint)
        resolved = hinted(ops, client_hint)
        base = target.file_path(self.config.urls.url_prefix, signature)
        finals = [self.cache.path(name) for name in file_names(base, ops, client_hint, variant)]
        try:
            async with asyncio.timeout_at(deadline):
                lead = await self.flights.run(
                    finals, lambda: self._make(target, resolved, client_hint, variant, base, deadline), deadline)
        except TimeoutError:
            error: SidecarError = DeadlineExceeded(detail=f"not done within {self.config.processes.request_deadline}s")
            return await self._fallback(path, error, ops, resolved, variant, deadline), None
        except SidecarError as exc:
            return await self._fallback(path, exc, ops, resolved, variant, deadline), None
        if lead.joined:
            self.metrics.joined.inc()
        elif lead.found is not None:
            self.metrics.published_elsewhere.inc()
        made = lead.result
        headers = [*expiry_headers, *([("X-Image-Source", made.source)] if made else []),
                   *([("X-Image-Animation", made.animation)] if made and made.animation == FIRST_FRAME else []),
                   *([(OVER_BUDGET_HEADER, "1")] if made and not made.fits else [])]
        if made is not None and made.rendered is not None:
            return Response(200, [("Content-Type", made.rendered.content_type), ("Cache-Control", "no-store"),
                                  *_vary(ops), *headers], made.rendered.data), None
        # Published by this flight, or by another worker's (then `found` names the file).
        suffix = made.suffix if made else str(lead.found)[len(str(self.cache.path(base))):]
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = internal_path(base + suffix)
        return Response(200, [("X-Accel-Redirect", redirect), *headers]), base + suffix

    def _check(self, ops: url.Ops, variant: str | None) -> None:
        if ops.format == "auto" and variant not in AUTO_VARIANTS:
            raise BadRequest(f"auto renditions need X-Image-Variant: {', '.join(AUTO_VARIANTS)} (from nginx)")
        if ops.client_hints and not self.config.urls.client_hints:
            raise BadRequest("client hints are off (client_hints = false)")
        self.fallbacks.check(ops)

    def _hint(self, ops: url.Ops, hint: str | None) -> Hint | None:
        if not ops.client_hints:
            return None
        if hint is None:
            raise BadRequest("client-hint renditions need X-Image-Hint (from nginx)")
        return Hint.parse(hint, self.config.urls.client_hints_widths, self.config.urls.client_hints_dprs)

    async def _make(self, rendition: url.Rendition, ops: url.Ops, hint: Hint | None, variant: str | None,
                    base: str, deadline: float) -> Made:
        """Wait for a slot, render `ops` (hints resolved) and publish: the leader's work, once per file."""
        async with self.admission:
            fetched_at = time.time()
            rendered, source, known = await self._render(rendition, ops, variant, deadline)
        kind = rendition_kind(source, rendered.original, ops.watermark is not None)
        self.metrics.renditions.labels(kind).inc()
        self.metrics.bytes_out.inc(len(rendered.data))
        suffix = variant_suffix(rendition.ops, hint, rendered.format, variant)
        if rendered.animation:
            self.metrics.animations.labels(rendered.animation).inc()
        published, _ = await asyncio.gather(self.work.publish(base + suffix, rendered.data, fetched_at=fetched_at),
                                            self._record(rendition, rendered, known, fetched_at))
        if published:
            return Made(source, suffix, animation=rendered.animation, fits=rendered.fits)
        # The client still gets its image, from memory.
        return Made(source, suffix, rendered, rendered.animation, fits=rendered.fits)

    async def _render(self, rendition: url.Rendition, ops: url.Ops, variant: str | None,
                      deadline: float) -> tuple[Rendered, str, cascade.Records]:
        """The rendition, derived from a larger cached one when the cascade allows, else from the original;
        where it came from (`X-Image-Source`); and what the original's directory recorded already."""
        directory = self._directory(rendition)
        known = await cascade.read(self.cache, directory, faces=ops.gravity == "fc")
        found = cascade.find(directory, known, ops, variant, self.settings)
        if found is not None:
            try:
                data = await self.cache.read(found.file_path)
            except OSError:
                pass  # purged in between: go to the original
            else:
                rendered = await self._transform(data, ops, variant, found.source, found.faces)
                log("cascade", key=rendition.key, ops=ops.segment, base=found.file_path)
                return rendered, CASCADE, known
        original = await self.sources.fetch(rendition.key, deadline)
        return await self._transform(original.data, ops, variant, known_faces=known.faces), original.source, known

    async def _record(self, rendition: url.Rendition, rendered: Rendered, known: cascade.Records,
                      fetched_at: float) -> None:
        """Write what the original's directory lacks (its facts, the faces found), beside the rendition."""
        directory = self._directory(rendition)
        try:
            if known.source is None:
                await cascade.record(self.cache, directory, rendered.source, fetched_at)
            if rendered.faces is not None and known.faces is None:
                await cascade.record_faces(self.cache, directory, rendered.faces, fetched_at)
        except (OSError, Superseded) as exc:
            log("cache_write_failed", path=directory, error=str(exc))

    def _directory(self, rendition: url.Rendition) -> str:
        """Where every rendition of `rendition`'s original lives, with the original's records."""
        return f"{self.config.urls.url_prefix}/{rendition.original_dir}"

    async def _transform(self, data: bytes, ops: url.Ops, variant: str | None, derived_from: Source | None = None,
                         known_faces: tuple[Face, ...] | None = None) -> Rendered:
        # Not bounded by the deadline: the flight goes on for whoever asks next (the requests themselves
        # stop waiting at their deadline), and a transform's time is bounded by the pixel limits.
        done = await asyncio.get_running_loop().run_in_executor(
            self.work.cpu, _transform, data, ops, self.settings, variant, derived_from,
            self.config.processes.release_memory, known_faces)
        kind = rendition_kind(CASCADE if derived_from else "", done.rendered.original, ops.watermark is not None)
        self.metrics.transform_seconds.labels(kind).observe(done.seconds)
        self.metrics.bytes_in.inc(len(data))
        if done.released:
            self.metrics.memory_released.inc()
        return done.rendered

    async def _fallback(self, path: str, error: SidecarError, ops: url.Ops, resolved: url.Ops,
                        variant: str | None, deadline: float) -> Response:
        """The fallback image for a failed rendition, with the failure's status; or the failure itself."""
        image = self.fallbacks.image_for(ops, error)
        if image is None:
            raise error
        try:
            rendered = await self.work.in_time(deadline, lambda: self.fallbacks.render(image, resolved, variant))
        except (OSError, SidecarError) as exc:
            log("fallback_failed", path=path, image=str(image), error=str(exc))
            raise error from None
        log("fallback", path=path, status=error.status, error=str(error), image=str(image))
        # The protocol never sees this error, so it is counted here, with the other errors.
        self.metrics.count_error(error)
        self.metrics.fallback_images.labels(str(error.status)).inc()
        return Response(error.status, [
            ("Content-Type", rendered.content_type),
            ("Cache-Control", f"public, max-age={self.config.cache.fallback_max_age}"),
            *_vary(ops), ("X-Image-Fallback", "1")], rendered.data)


@dataclass(frozen=True)
class _Transformed:
    rendered: Rendered
    released: bool
    seconds: float  # the transform alone, in its thread (not the wait for one)


def _transform(data: bytes, ops: url.Ops, settings: Settings, variant: str | None, derived_from: Source | None,
               release: bool, known_faces: tuple[Face, ...] | None = None) -> _Transformed:
    """The transform, then (in the same thread, at the thread's low priority) freed memory back to the OS.
    malloc_trim measured 0.2-1 ms after a transform here (docs/benchmarks.md): cheap beside it."""
    started = time.perf_counter()
    rendered = transform(data, ops, settings, variant=variant, derived_from=derived_from, known_faces=known_faces)
    seconds = time.perf_counter() - started
    released = release and memory.release()
    return _Transformed(rendered, released, seconds)


def _vary(ops: url.Ops) -> list[tuple[str, str]]:
    """`Vary` for a rendition made in memory (nginx adds the same to the files it serves)."""
    names = (["Accept"] if ops.format == "auto" else []) + (list(HINT_HEADERS) if ops.client_hints else [])
    return [("Vary", ", ".join(names))] if names else []
