"""A miss, from the request path to the published file: URL -> source -> transform (or info) -> cache.

Identical misses share one flight (`sidecar.cache.singleflight`), new ones wait for a transform slot or are
refused (`sidecar.app.admission`), and every request has a deadline (`request_deadline`). A failed rendition
may be answered with a fallback image (`sidecar.app.fallback`). Purge requests go to `sidecar.app.admin`;
`/metrics`, `/healthz` and `/readyz` to `sidecar.app.health`.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from sidecar.app.admin import Admin
from sidecar.app.admission import Admission
from sidecar.app.fallback import STATUSES as FALLBACK_STATUSES
from sidecar.app.fallback import Fallbacks
from sidecar.app.health import Health
from sidecar.app.resolver import Resolver, open_resolver, with_row
from sidecar.app.response import Response
from sidecar.builder import build_url, preset_fields
from sidecar.cache import cascade
from sidecar.cache.singleflight import Flights
from sidecar.cache.store import Cache, Superseded
from sidecar.config import Config
from sidecar.errors import (
    BadRequest,
    DeadlineExceeded,
    Expired,
    Forbidden,
    MethodNotAllowed,
    SidecarError,
)
from sidecar.log import log
from sidecar.observe import memory
from sidecar.observe.metrics import rendition_kind, write_failure_reason
from sidecar.sources import SourceChain
from sidecar.transform import info
from sidecar.transform.pipeline import Rendered, Settings, Source, transform
from sidecar.url import grammar as url
from sidecar.url import routes
from sidecar.url.grammar import AUTO_VARIANTS
from sidecar.url.paths import ADMIN_PREFIX, HINT_HEADERS, INTERNAL_PREFIX
from sidecar.url.signing import Signer
from sidecar.url.variants import Hint, hinted, variant_suffix

#: `X-Image-Source` of a rendition derived from a larger cached one (see `sidecar.cache.cascade`).
CASCADE = "cascade"
#: The formats an `.auto` rendition may get per variant: its file name ends with the one it got.
AUTO_FORMATS = {"avif": ("avif",), "webp": ("webp",), "legacy": ("jpeg", "png")}
INFO_CONTENT_TYPE = "application/json"
T = TypeVar("T")



@dataclass(frozen=True)
class Made:
    """A leader's miss: published under the name `suffix` ends, or (when the cache refused the file)
    `rendered` to send from memory instead."""

    source: str
    suffix: str
    rendered: Rendered | None = None


def transform_settings(config: Config) -> Settings:
    """The parts of the config the transform needs."""
    made = config.transform
    return Settings(config.limits.max_pixels, made.quality, made.background_rgb, avif_quality=made.avif_quality,
                    cmyk_profile=made.cmyk_profile, watermarks=made.watermarks, max_side=config.urls.max_dimension,
                    max_animation_pixels=config.limits.max_animation_pixels, auto_sharpen=made.auto_sharpen)


def file_names(base: str, ops: url.Ops, hint: Hint | None, variant: str | None) -> list[str]:
    """Every name the rendition at `base` (its URL's file path) may be published under, as nginx's
    `try_files` looks for them: an `.auto` one ends with the format it got, a client-hint one with its hint."""
    formats = AUTO_FORMATS[variant] if variant else (ops.format,)
    return [base + variant_suffix(ops, hint, fmt) for fmt in formats]


class Handler:
    """Turns one request into a response, or raises a SidecarError for the protocol to report."""

    def __init__(self, config: Config, sources: SourceChain, cpu: Executor, io: Executor) -> None:
        self.config, self.sources, self.cpu, self.io = config, sources, cpu, io
        self.metrics = sources.metrics  # the process's one Metrics object
        self.cache = Cache(config.cache.cache_dir)
        self.signer = Signer(config.urls.signing_keys) if config.urls.signed else None
        self.settings = transform_settings(config)
        self.limits = config.urls.limits
        self.fallbacks = Fallbacks(config, self.settings)
        for status in FALLBACK_STATUSES:  # series at zero before the first fallback (see Metrics.initialise)
            self.metrics.fallback_images.labels(str(status))
        self.admission = Admission(config.processes.worker_slots, config.processes.queue, self.metrics)
        self.flights: Flights[Made] = Flights(self.cache, io)
        self.routes = tuple(config.urls.routes.values())
        self.resolver: Resolver | None = open_resolver(config, self.metrics)
        self.admin = Admin(config, self.cache, io, self.metrics)
        self.health = Health(config, sources, self.cache, io)

    async def handle(self, method: str, path: str, variant: str | None = None, hint: str | None = None,
                     authorization: str = "") -> Response:
        """`variant` is nginx's reading of the Accept header (X-Image-Variant), for `.auto` URLs; `hint`
        its reading of the client hints (X-Image-Hint), for client-hint URLs."""
        if path.startswith(ADMIN_PREFIX + "/"):
            return await self.admin.handle(method, path[len(ADMIN_PREFIX):], authorization)
        if path in self.health.paths:
            return await self.health.handle(method, path)
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        if self.routes and not path.startswith(self.config.urls.url_prefix + "/"):
            url.check_length(path, self.config.urls.max_url_length)
            found = routes.match(self.routes, path)
            if found is not None:
                return await self._route(found)
        parsed = url.parse(path, prefix=self.config.urls.url_prefix, signed=self.signer is not None,
                           max_length=self.config.urls.max_url_length)
        target, signature = parsed.target, parsed.signature
        if self.signer is not None and not self.signer.verify(target.payload, signature or ""):
            raise Forbidden()
        if isinstance(target, url.Info):
            deadline = asyncio.get_running_loop().time() + self.config.processes.request_deadline
            return await self._info(target, signature, deadline)
        assert isinstance(target, url.Rendition)
        response, _ = await self._serve(path, target, signature, variant, hint)
        return response

    async def resolve(self, found: routes.RouteMatch) -> str:
        """The canonical path of what an old URL asks for (see `resolver.with_row` for the order)."""
        fields = preset_fields(self.config, found.route.preset)
        if not found.route.by_id:
            return build_url(self.config, found.identity, operations={**fields, **found.fields()})
        assert self.resolver is not None  # the config refuses {id} routes without one
        resolved = await self.resolver.resolve(found.identity)
        return build_url(self.config, resolved.key,
                         operations=with_row(self.config, resolved, fields, found.fields()))

    async def _route(self, found: routes.RouteMatch) -> Response:
        """An old URL: the canonical rendition's miss, then a link nginx finds the next time."""
        parsed = url.parse(await self.resolve(found), prefix=self.config.urls.url_prefix,
                           signed=self.signer is not None)
        assert isinstance(parsed.target, url.Rendition)
        response, published = await self._serve(found.path, parsed.target, parsed.signature, None, None)
        if published is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(self.io, self.cache.link, found.link_path,
                                                                 published)
                self.metrics.route_links.inc()
            except OSError as exc:  # the image is served all the same; the next request tries again
                log("route_link_failed", path=found.link_path, error=str(exc))
        return response

    async def _serve(self, path: str, target: url.Rendition, signature: str | None, variant: str | None,
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
        headers = [*expiry_headers, *([("X-Image-Source", made.source)] if made else [])]
        if made is not None and made.rendered is not None:
            return Response(200, [("Content-Type", made.rendered.content_type), ("Cache-Control", "no-store"),
                                  *_vary(ops), *headers], made.rendered.data), None
        # Published by this flight, or by another worker's (then `found` names the file).
        suffix = made.suffix if made else str(lead.found)[len(str(self.cache.path(base))):]
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + target.path(self.config.urls.url_prefix, signature) + suffix
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
            rendered, source = await self._render(rendition, ops, variant, deadline, fetched_at)
        kind = rendition_kind(source, rendered.original, ops.watermark is not None)
        self.metrics.renditions.labels(kind).inc()
        self.metrics.bytes_out.inc(len(rendered.data))
        suffix = variant_suffix(rendition.ops, hint, rendered.format)
        if await self._publish(base + suffix, rendered.data, fetched_at=fetched_at):
            return Made(source, suffix)
        return Made(source, suffix, rendered)  # the client still gets its image, from memory

    async def _publish(self, file_path: str, data: bytes, *, fetched_at: float | None = None) -> bool:
        """Write to the cache (in the IO threads) and count it; False when the cache refused the file,
        in which case the caller answers from memory and the next request tries the write again."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.io, lambda: self.cache.write(file_path, data, fetched_at=fetched_at))
        except Superseded as exc:
            self.metrics.cache_writes.labels("superseded", "").inc()
            log("cache_superseded", path=file_path, error=str(exc))
            return False
        except OSError as exc:
            self.metrics.cache_writes.labels("failed", write_failure_reason(exc)).inc()
            log("cache_write_failed", path=file_path, error=str(exc))
            return False
        self.metrics.cache_writes.labels("written", "").inc()
        return True

    async def _render(self, rendition: url.Rendition, ops: url.Ops, variant: str | None, deadline: float,
                      fetched_at: float) -> tuple[Rendered, str]:
        """The rendition, derived from a larger cached one when the cascade allows, else from the original."""
        loop = asyncio.get_running_loop()
        directory = f"{self.config.urls.url_prefix}/{rendition.original_dir}"
        found = await loop.run_in_executor(self.io, cascade.find, self.cache, directory, ops, variant,
                                           self.settings)
        if found is not None:
            try:
                data = await loop.run_in_executor(self.io, self.cache.path(found.file_path).read_bytes)
            except OSError:
                found = None  # purged in between: go to the original
            else:
                rendered = await self._transform(data, ops, variant, found.source)
                log("cascade", key=rendition.key, ops=ops.segment, base=found.file_path)
                return rendered, CASCADE
        original = await self.sources.fetch(rendition.key, deadline)
        rendered = await self._transform(original.data, ops, variant)
        try:
            await loop.run_in_executor(self.io, cascade.record, self.cache, directory, rendered.source, fetched_at)
        except (OSError, Superseded) as exc:
            log("cache_write_failed", path=directory, error=str(exc))
        return rendered, original.source

    async def _transform(self, data: bytes, ops: url.Ops, variant: str | None,
                         derived_from: Source | None = None) -> Rendered:
        # Not bounded by the deadline: the flight goes on for whoever asks next (the requests themselves
        # stop waiting at their deadline), and a transform's time is bounded by the pixel limits.
        done = await asyncio.get_running_loop().run_in_executor(
            self.cpu, _transform, data, ops, self.settings, variant, derived_from, self.config.processes.release_memory)
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
            rendered = await self._in_time(deadline, lambda: self.fallbacks.render(image, resolved, variant))
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

    async def _info(self, target: url.Info, signature: str | None, deadline: float) -> Response:
        """The original's facts as JSON, written where nginx finds them next time."""
        original = await self.sources.fetch(target.key, deadline)
        facts = await self._in_time(deadline, lambda: info.describe(original.data, self.settings))
        self.metrics.info_documents.inc()
        data = json.dumps(facts, separators=(",", ":")).encode()
        file_path = target.file_path(self.config.urls.url_prefix, signature)
        headers = [("X-Image-Source", original.source)]
        if not await self._publish(file_path, data):
            return Response(200, [("Content-Type", INFO_CONTENT_TYPE), ("Cache-Control", "no-store"),
                                  *headers], data)
        redirect = INTERNAL_PREFIX + target.path(self.config.urls.url_prefix, signature)
        return Response(200, [("X-Accel-Redirect", redirect), *headers])

    async def _in_time(self, deadline: float, work: Callable[[], T]) -> T:
        """Run CPU work in the transform threads, within the request's deadline."""
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.get_running_loop().run_in_executor(self.cpu, work)
        except TimeoutError:
            raise DeadlineExceeded(detail=f"not done within {self.config.processes.request_deadline}s") from None


@dataclass(frozen=True)
class _Transformed:
    rendered: Rendered
    released: bool
    seconds: float  # the transform alone, in its thread (not the wait for one)


def _transform(data: bytes, ops: url.Ops, settings: Settings, variant: str | None, derived_from: Source | None,
               release: bool) -> _Transformed:
    """The transform, then (in the same thread, at the thread's low priority) freed memory back to the OS.
    malloc_trim measured 0.2-1 ms after a transform here (README, "Under load"): cheap beside it."""
    started = time.perf_counter()
    rendered = transform(data, ops, settings, variant=variant, derived_from=derived_from)
    seconds = time.perf_counter() - started
    released = release and memory.release()
    return _Transformed(rendered, released, seconds)


def _vary(ops: url.Ops) -> list[tuple[str, str]]:
    """`Vary` for a rendition made in memory (nginx adds the same to the files it serves)."""
    names = (["Accept"] if ops.format == "auto" else []) + (list(HINT_HEADERS) if ops.client_hints else [])
    return [("Vary", ", ".join(names))] if names else []
