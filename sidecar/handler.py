"""A miss, from the request path to the published rendition: URL -> source -> transform -> cache.

Identical misses share one flight (`sidecar.singleflight`), new ones wait for a transform slot or are
refused (`sidecar.admission`), and every request has a deadline (`request_deadline`). Purge and stats
requests go to `sidecar.admin`.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from . import cascade, memory, routes, url
from .admission import Admission
from .builder import build_url, preset_fields
from .cache import Cache, Superseded
from .config import Config
from .errors import BadRequest, DeadlineExceeded, Forbidden, MethodNotAllowed, Overloaded
from .log import log
from .resolver import Resolver, open_resolver, with_row
from .signing import Signer
from .singleflight import Flights
from .sources import SourceChain
from .stats import Stats
from .transform.pipeline import Rendered, Settings, Source, transform
from .url import AUTO_VARIANTS, FORMAT_EXTENSION

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"
#: Purge and stats for the main application (see sidecar/admin.py and nginx/sidecar.conf).
ADMIN_PREFIX = "/_sidecar"
#: `X-Image-Source` of a rendition derived from a larger cached one (see `sidecar.cascade`).
CASCADE = "cascade"
#: The names an `.auto` rendition may get per variant, as nginx's try_files looks for them.
AUTO_SUFFIXES = {"avif": (".avif",), "webp": (".webp",), "legacy": (".jpg", ".png")}


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class Made:
    """A leader's miss: published under the name `suffix` ends, or (when the cache refused the file)
    `rendered` to send from memory instead."""

    source: str
    suffix: str
    rendered: Rendered | None = None


def transform_settings(config: Config) -> Settings:
    """The parts of the config the transform needs."""
    return Settings(config.max_pixels, config.quality, config.background_rgb, avif_quality=config.avif_quality,
                    cmyk_profile=config.cmyk_profile, watermarks=config.watermarks, max_side=config.max_dimension)


class Handler:
    """Turns one request into a response, or raises a SidecarError for the protocol to report."""

    def __init__(self, config: Config, sources: SourceChain, cpu: Executor, io: Executor,
                 stats: Stats | None = None) -> None:
        self.config, self.sources, self.cpu, self.io = config, sources, cpu, io
        self.cache = Cache(config.cache_dir)
        self.signer = Signer(config.signing_keys) if config.signed else None
        self.settings = transform_settings(config)
        self.stats = stats or Stats.create(1)
        self.admission = Admission(config.worker_slots, config.queue)
        self.flights: Flights[Made] = Flights(self.cache, io)
        self.routes = tuple(config.routes.values())
        self.resolver: Resolver | None = open_resolver(config, self.stats.add)
        from .admin import Admin

        self.admin = Admin(config, self.cache, io, self.stats)

    async def handle(self, method: str, path: str, variant: str | None = None, authorization: str = "") -> Response:
        """`variant` is nginx's reading of the Accept header (X-Image-Variant), for `.auto` URLs."""
        self.stats.add("requests")
        if path.startswith(ADMIN_PREFIX + "/"):
            return await self.admin.handle(method, path[len(ADMIN_PREFIX):], authorization)
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        if self.routes and not path.startswith(self.config.url_prefix + "/"):
            found = routes.match(self.routes, path)
            if found is not None:
                return await self._route(found)
        parsed = url.parse(path, prefix=self.config.url_prefix, signed=self.signer is not None)
        if self.signer is not None and not self.signer.verify(parsed.rendition.payload, parsed.signature or ""):
            raise Forbidden()
        response, _ = await self._serve(parsed, variant)
        return response

    async def resolve(self, found: routes.RouteMatch) -> str:
        """The canonical path of what an old URL asks for (see `resolver.with_row` for the order)."""
        fields = preset_fields(self.config, found.route.preset)
        if not found.route.by_id:
            return build_url(self.config, found.identity, **{**fields, **found.fields()})  # type: ignore[arg-type]
        assert self.resolver is not None  # the config refuses {id} routes without one
        resolved = await self.resolver.resolve(found.identity)
        return build_url(self.config, resolved.key,
                         **with_row(self.config, resolved, fields, found.fields()))  # type: ignore[arg-type]

    async def _route(self, found: routes.RouteMatch) -> Response:
        """An old URL: the canonical rendition's miss, then a link nginx finds the next time."""
        parsed = url.parse(await self.resolve(found), prefix=self.config.url_prefix, signed=self.signer is not None)
        response, published = await self._serve(parsed, None)
        if published is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(self.io, self.cache.link, found.link_path,
                                                                 published)
                self.stats.add("route_links")
            except OSError as exc:  # the image is served all the same; the next request tries again
                log("route_link_failed", path=found.link_path, error=str(exc))
        return response

    async def _serve(self, parsed: url.ParsedUrl, variant: str | None) -> tuple[Response, str | None]:
        """A canonical rendition's response, and the cache file (as a decoded URL path) it was published
        under, if it was."""
        rendition = parsed.rendition
        for side in (rendition.ops.width, rendition.ops.height):
            if side is not None and side > self.config.max_dimension:
                raise BadRequest(f"width and height are limited to {self.config.max_dimension}")
        auto = rendition.ops.format == "auto"
        if auto and variant not in AUTO_VARIANTS:
            raise BadRequest(f"auto renditions need X-Image-Variant: {', '.join(AUTO_VARIANTS)} (from nginx)")
        variant = variant if auto else None
        base = rendition.file_path(self.config.url_prefix, parsed.signature)
        finals = [self.cache.path(base + suffix) for suffix in (AUTO_SUFFIXES[variant] if variant else ("",))]
        deadline = asyncio.get_running_loop().time() + self.config.request_deadline
        try:
            async with asyncio.timeout_at(deadline):
                lead = await self.flights.run(finals, lambda: self._make(rendition, variant, base, deadline),
                                              deadline)
        except TimeoutError:
            self.stats.add("deadline_exceeded")
            raise DeadlineExceeded(detail=f"not done within {self.config.request_deadline}s") from None
        if lead.joined:
            self.stats.add("joined")
        made = lead.result
        headers = [("X-Image-Source", made.source)] if made else []
        if made is not None and made.rendered is not None:
            vary = [("Vary", "Accept")] if auto else []
            return Response(200, [("Content-Type", made.rendered.content_type), ("Cache-Control", "no-store"),
                                  *vary, *headers], made.rendered.data), None
        # Published by this flight, or by another worker's (then `found` names the file).
        suffix = made.suffix if made else str(lead.found)[len(str(self.cache.path(base))):]
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + rendition.path(self.config.url_prefix, parsed.signature) + suffix
        return Response(200, [("X-Accel-Redirect", redirect), *headers]), base + suffix

    async def _make(self, rendition: url.Rendition, variant: str | None, base: str, deadline: float) -> Made:
        """Wait for a slot, render and publish: the leader's work, run once per rendition."""
        loop = asyncio.get_running_loop()
        try:
            async with self.admission:
                fetched_at = time.time()
                rendered, source = await self._render(rendition, variant, deadline)
        except Overloaded:
            self.stats.add("overloaded")
            raise
        # An auto rendition's file name ends with the format it got, which nginx's try_files tests.
        suffix = f".{FORMAT_EXTENSION[rendered.format]}" if variant else ""
        file_path = base + suffix
        try:
            await loop.run_in_executor(self.io, lambda: self.cache.write(file_path, rendered.data,
                                                                         fetched_at=fetched_at))
        except (OSError, Superseded) as exc:
            # The client still gets its image; the next request tries the write again.
            superseded = isinstance(exc, Superseded)
            self.stats.add("superseded" if superseded else "cache_write_failures")
            log("cache_superseded" if superseded else "cache_write_failed", path=file_path, error=str(exc))
            return Made(source, suffix, rendered)
        return Made(source, suffix)

    async def _render(self, rendition: url.Rendition, variant: str | None,
                      deadline: float) -> tuple[Rendered, str]:
        """The rendition, derived from a larger cached one when the cascade allows, else from the original."""
        loop = asyncio.get_running_loop()
        directory = f"{self.config.url_prefix}/{rendition.original_dir}"
        found = await loop.run_in_executor(self.io, cascade.find, self.cache, directory, rendition.ops,
                                           variant, self.settings)
        if found is not None:
            try:
                data = await loop.run_in_executor(self.io, self.cache.path(found.file_path).read_bytes)
            except OSError:
                found = None  # purged in between: go to the original
            else:
                rendered = await self._transform(data, rendition.ops, variant, found.source)
                log("cascade", key=rendition.key, ops=rendition.ops.segment, base=found.file_path)
                return rendered, CASCADE
        original = await self.sources.fetch(rendition.key, deadline)
        rendered = await self._transform(original.data, rendition.ops, variant)
        try:
            await loop.run_in_executor(self.io, cascade.record, self.cache, directory, rendered.source)
        except OSError as exc:
            log("cache_write_failed", path=directory, error=str(exc))
        return rendered, original.source

    async def _transform(self, data: bytes, ops: url.Ops, variant: str | None,
                         derived_from: Source | None = None) -> Rendered:
        # Not bounded by the deadline: the flight goes on for whoever asks next (the requests themselves
        # stop waiting at their deadline), and a transform's time is bounded by the pixel limits.
        done = await asyncio.get_running_loop().run_in_executor(
            self.cpu, _transform, data, ops, self.settings, variant, derived_from, self.config.release_memory)
        self.stats.add("transforms")
        if done.released:
            self.stats.add("memory_released")
        return done.rendered


@dataclass(frozen=True)
class _Transformed:
    rendered: Rendered
    released: bool


def _transform(data: bytes, ops: url.Ops, settings: Settings, variant: str | None, derived_from: Source | None,
               release: bool) -> _Transformed:
    """The transform, then (in the same thread, at the thread's low priority) freed memory back to the OS.
    malloc_trim measured 0.2-1 ms after a transform here (README, "Under load"): cheap beside it."""
    rendered = transform(data, ops, settings, variant=variant, derived_from=derived_from)
    released = release and memory.release()
    return _Transformed(rendered, released)
