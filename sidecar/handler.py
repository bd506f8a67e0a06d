"""A miss, from the request path to the published rendition: URL -> source -> transform -> cache."""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field

from . import url
from .cache import Cache
from .config import Config
from .errors import BadRequest, Forbidden, MethodNotAllowed
from .log import log
from .signing import Signer
from .sources import SourceChain
from .transform.pipeline import Settings, transform

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Handler:
    """Turns one request into a response, or raises a SidecarError for the protocol to report."""

    def __init__(self, config: Config, sources: SourceChain, cpu: Executor, io: Executor) -> None:
        self.config, self.sources, self.cpu, self.io = config, sources, cpu, io
        self.cache = Cache(config.cache_dir)
        self.signer = Signer(config.signing_keys) if config.signed else None
        self.settings = Settings(config.max_pixels, config.quality, config.background_rgb,
                                 avif_quality=config.avif_quality, cmyk_profile=config.cmyk_profile,
                                 watermarks=config.watermarks, max_side=config.max_dimension)

    async def handle(self, method: str, path: str) -> Response:
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
        loop = asyncio.get_running_loop()
        original = await self.sources.fetch(rendition.key)
        rendered = await loop.run_in_executor(self.cpu, transform, original.data, rendition.ops, self.settings)
        source = [("X-Image-Source", original.source)]
        try:
            await loop.run_in_executor(self.io, self.cache.write, file_path, rendered.data)
        except OSError as exc:
            # The client still gets its image; the next request tries the write again.
            log("cache_write_failed", path=file_path, error=str(exc))
            return Response(200, [("Content-Type", rendered.content_type), ("Cache-Control", "no-store"),
                                  *source], rendered.data)
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + rendition.path(self.config.url_prefix, parsed.signature)
        return Response(200, [("X-Accel-Redirect", redirect), *source])
