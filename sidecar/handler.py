"""A miss, from the request path to the published rendition: URL -> source -> transform -> cache.

Identical misses share one flight (`sidecar.singleflight`), new ones wait for a transform slot or are
refused (`sidecar.admission`), and every request has a deadline (`request_timeout`).
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from . import memory, url
from .admission import Admission
from .cache import Cache, Superseded
from .config import Config
from .errors import BadRequest, DeadlineExceeded, Forbidden, MethodNotAllowed, Overloaded
from .log import log
from .signing import Signer
from .singleflight import Flights
from .sources import SourceChain
from .stats import Stats
from .transform.pipeline import Rendered, Settings, transform
from .url import Ops

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"
#: Purge and stats for the main application (see sidecar/admin.py and nginx/sidecar.conf).
ADMIN_PREFIX = "/_sidecar"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class Made:
    """A leader's miss: `published`, or (when the cache refused the file) the bytes to send instead."""

    source: str
    rendered: Rendered | None = None


class Handler:
    """Turns one request into a response, or raises a SidecarError for the protocol to report."""

    def __init__(self, config: Config, sources: SourceChain, cpu: Executor, io: Executor,
                 stats: Stats | None = None) -> None:
        self.config, self.sources, self.cpu, self.io = config, sources, cpu, io
        self.cache = Cache(config.cache_dir)
        self.signer = Signer(config.signing_keys) if config.signed else None
        self.settings = Settings(config.max_pixels, config.quality, config.background_rgb)
        self.stats = stats or Stats.create(1)
        self.admission = Admission(config.worker_threads, config.queue)
        self.flights: Flights[Made] = Flights(self.cache, io)
        from .admin import Admin

        self.admin = Admin(config, self.cache, io, self.stats)

    async def handle(self, method: str, path: str, authorization: str = "") -> Response:
        self.stats.add("requests")
        if path.startswith(ADMIN_PREFIX + "/"):
            return await self.admin.handle(method, path[len(ADMIN_PREFIX):], authorization)
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        parsed = url.parse(path, prefix=self.config.url_prefix, signed=self.signer is not None)
        rendition = parsed.rendition
        if self.signer is not None and not self.signer.verify(rendition.payload, parsed.signature or ""):
            raise Forbidden()
        for side in (rendition.ops.width, rendition.ops.height):
            if side is not None and side > self.config.max_dimension:
                raise BadRequest(f"width and height are limited to {self.config.max_dimension}")
        file_path = rendition.file_path(self.config.url_prefix, parsed.signature)
        timeout = self.config.request_timeout
        try:
            async with asyncio.timeout(timeout):
                lead = await self.flights.run(self.cache.path(file_path),
                                              lambda: self._make(rendition.key, rendition.ops, file_path), timeout)
        except TimeoutError:
            self.stats.add("deadline_exceeded")
            raise DeadlineExceeded(detail=f"{timeout}s") from None
        if lead.joined:
            self.stats.add("joined")
        made = lead.result
        source = [("X-Image-Source", made.source)] if made else []
        if made and made.rendered is not None:
            return Response(200, [("Content-Type", made.rendered.content_type), ("Cache-Control", "no-store"),
                                  *source], made.rendered.data)
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + rendition.path(self.config.url_prefix, parsed.signature)
        return Response(200, [("X-Accel-Redirect", redirect), *source])

    async def _make(self, key: str, ops: Ops, file_path: str) -> Made:
        """Fetch, transform and publish: the leader's work, run once per rendition."""
        loop = asyncio.get_running_loop()
        try:
            async with self.admission:
                fetched_at = time.time()
                original = await self.sources.fetch(key)
                done = await loop.run_in_executor(self.cpu, _transform, original.data, ops, self.settings,
                                                  self.config.release_memory)
        except Overloaded:
            self.stats.add("overloaded")
            raise
        self.stats.add("transforms")
        if done.released:
            self.stats.add("memory_released")
        rendered = done.rendered
        try:
            await loop.run_in_executor(self.io, lambda: self.cache.write(file_path, rendered.data,
                                                                         fetched_at=fetched_at))
        except (OSError, Superseded) as exc:
            # The client still gets its image; the next request tries the write again.
            superseded = isinstance(exc, Superseded)
            self.stats.add("superseded" if superseded else "cache_write_failures")
            log("cache_superseded" if superseded else "cache_write_failed", path=file_path, error=str(exc))
            return Made(original.source, rendered)
        return Made(original.source)


@dataclass(frozen=True)
class _Transformed:
    rendered: Rendered
    released: bool


def _transform(data: bytes, ops: Ops, settings: Settings, release: bool) -> _Transformed:
    """The transform, then (in the same thread, at the thread's low priority) freed memory back to the OS.
    malloc_trim measured 0.2-1 ms after a transform here (README, "Memory"): cheap beside the transform."""
    rendered = transform(data, ops, settings)
    released = release and memory.release()
    return _Transformed(rendered, released)
