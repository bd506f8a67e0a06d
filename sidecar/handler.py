"""A miss, from the request path to the published rendition: URL -> source -> transform -> cache."""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field

from . import cascade, url
from .cache import Cache
from .config import Config
from .errors import BadRequest, DeadlineExceeded, Forbidden, MethodNotAllowed
from .log import log
from .signing import Signer
from .sources import SourceChain
from .transform.pipeline import Rendered, Settings, Source, transform
from .url import AUTO_VARIANTS, FORMAT_EXTENSION

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"
#: `X-Image-Source` of a rendition derived from a larger cached one (see `sidecar.cascade`).
CASCADE = "cascade"


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

    async def handle(self, method: str, path: str, variant: str | None = None) -> Response:
        """`variant` is nginx's reading of the Accept header (X-Image-Variant), for `.auto` URLs."""
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        parsed = url.parse(path, prefix=self.config.url_prefix, signed=self.signer is not None)
        rendition = parsed.rendition
        if self.signer is not None and not self.signer.verify(rendition.payload, parsed.signature or ""):
            raise Forbidden()
        for side in (rendition.ops.width, rendition.ops.height):
            if side is not None and side > self.config.max_dimension:
                raise BadRequest(f"width and height are limited to {self.config.max_dimension}")
        auto = rendition.ops.format == "auto"
        if auto and variant not in AUTO_VARIANTS:
            raise BadRequest(f"auto renditions need X-Image-Variant: {', '.join(AUTO_VARIANTS)} (from nginx)")
        deadline = asyncio.get_running_loop().time() + self.config.request_deadline
        rendered, source = await self._render(rendition, variant if auto else None, deadline)
        # An auto rendition's file name ends with the format it got, which nginx's try_files tests.
        suffix = f".{FORMAT_EXTENSION[rendered.format]}" if auto else ""
        file_path = rendition.file_path(self.config.url_prefix, parsed.signature) + suffix
        headers = [("X-Image-Source", source)]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.io, self.cache.write, file_path, rendered.data)
        except OSError as exc:
            # The client still gets its image; the next request tries the write again.
            log("cache_write_failed", path=file_path, error=str(exc))
            vary = [("Vary", "Accept")] if auto else []
            return Response(200, [("Content-Type", rendered.content_type), ("Cache-Control", "no-store"),
                                  *vary, *headers], rendered.data)
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + rendition.path(self.config.url_prefix, parsed.signature) + suffix
        return Response(200, [("X-Accel-Redirect", redirect), *headers])

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
                rendered = await self._transform(data, rendition.ops, variant, deadline, found.source)
                log("cascade", key=rendition.key, ops=rendition.ops.segment, base=found.file_path)
                return rendered, CASCADE
        original = await self.sources.fetch(rendition.key, deadline)
        rendered = await self._transform(original.data, rendition.ops, variant, deadline)
        try:
            await loop.run_in_executor(self.io, cascade.record, self.cache, directory, rendered.source)
        except OSError as exc:
            log("cache_write_failed", path=directory, error=str(exc))
        return rendered, original.source

    async def _transform(self, data: bytes, ops: url.Ops, variant: str | None, deadline: float,
                         derived_from: Source | None = None) -> Rendered:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                return await loop.run_in_executor(self.cpu, lambda: transform(
                    data, ops, self.settings, variant=variant, derived_from=derived_from))
        except TimeoutError:
            raise DeadlineExceeded(detail=f"transform not done within {self.config.request_deadline}s") from None
