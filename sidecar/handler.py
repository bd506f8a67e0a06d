"""A miss, from the request path to the published file: URL -> source -> transform (or info) -> cache."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TypeVar

from . import cascade, url
from .cache import Cache
from .config import Config
from .errors import BadRequest, DeadlineExceeded, Forbidden, MethodNotAllowed, SidecarError
from .fallback import Fallbacks
from .log import log
from .signing import Signer
from .sources import SourceChain
from .transform import info
from .transform.pipeline import Rendered, Settings, Source, transform
from .url import AUTO_VARIANTS
from .variants import Hint, hinted, variant_suffix

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"
#: Liveness, through nginx (only from `internal_networks`): nginx and this process both answer.
HEALTH_PATH = "/healthz"
#: `X-Image-Source` of a rendition derived from a larger cached one (see `sidecar.cascade`).
CASCADE = "cascade"
#: The request headers a client-hint rendition depends on (nginx reads both spellings of each).
HINT_HEADERS = ("Sec-CH-Width", "Width", "Sec-CH-DPR", "DPR")
INFO_CONTENT_TYPE = "application/json"
T = TypeVar("T")


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
                                 watermarks=config.watermarks, max_side=config.max_dimension,
                                 auto_sharpen=config.auto_sharpen)
        self.fallbacks = Fallbacks(config, self.settings)

    async def handle(self, method: str, path: str, variant: str | None = None, hint: str | None = None) -> Response:
        """`variant` is nginx's reading of the Accept header (X-Image-Variant), for `.auto` URLs; `hint`
        its reading of the client hints (X-Image-Hint), for client-hint URLs."""
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        if path == HEALTH_PATH:
            return Response(200, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
                            b"ok\n")
        parsed = url.parse(path, prefix=self.config.url_prefix, signed=self.signer is not None)
        target = parsed.target
        if self.signer is not None and not self.signer.verify(target.payload, parsed.signature or ""):
            raise Forbidden()
        deadline = asyncio.get_running_loop().time() + self.config.request_deadline
        if isinstance(target, url.Info):
            original = await self.sources.fetch(target.key, deadline)
            facts = await self._in_time(deadline, lambda: info.describe(original.data, self.settings))
            data = json.dumps(facts, separators=(",", ":")).encode()
            return await self._publish(target, parsed.signature, "", data, INFO_CONTENT_TYPE, [],
                                       [("X-Image-Source", original.source)])
        ops = target.ops
        self._check(ops, variant)
        client_hint = self._hint(ops, hint)
        resolved = hinted(ops, client_hint)
        try:
            rendered, source = await self._render(target, resolved, variant, deadline)
        except SidecarError as exc:
            return await self._fallback(path, exc, ops, resolved, variant, deadline)
        suffix = variant_suffix(ops, client_hint, rendered.format)
        return await self._publish(target, parsed.signature, suffix, rendered.data, rendered.content_type,
                                   _vary(ops), [("X-Image-Source", source)])

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
        return Response(error.status, [
            ("Content-Type", rendered.content_type),
            ("Cache-Control", f"public, max-age={self.config.fallback_max_age}"),
            *_vary(ops), ("X-Image-Fallback", "1")], rendered.data)

    def _check(self, ops: url.Ops, variant: str | None) -> None:
        for side in (ops.width, ops.height):
            if side is not None and side > self.config.max_dimension:
                raise BadRequest(f"width and height are limited to {self.config.max_dimension}")
        if ops.format == "auto" and variant not in AUTO_VARIANTS:
            raise BadRequest(f"auto renditions need X-Image-Variant: {', '.join(AUTO_VARIANTS)} (from nginx)")
        if ops.client_hints and not self.config.client_hints:
            raise BadRequest("client hints are off (client_hints = false)")
        self.fallbacks.check(ops)

    def _hint(self, ops: url.Ops, hint: str | None) -> Hint | None:
        if not ops.client_hints:
            return None
        if hint is None:
            raise BadRequest("client-hint renditions need X-Image-Hint (from nginx)")
        return Hint.parse(hint, self.config.client_hints_widths, self.config.client_hints_dprs)

    async def _publish(self, target: url.Target, signature: str | None, suffix: str, data: bytes,
                       content_type: str, vary: list[tuple[str, str]],
                       headers: list[tuple[str, str]]) -> Response:
        """Write the file where nginx finds it and hand over to nginx; from memory if the write fails."""
        file_path = target.file_path(self.config.url_prefix, signature) + suffix
        try:
            await asyncio.get_running_loop().run_in_executor(self.io, self.cache.write, file_path, data)
        except OSError as exc:
            # The client still gets its answer; the next request tries the write again.
            log("cache_write_failed", path=file_path, error=str(exc))
            return Response(200, [("Content-Type", content_type), ("Cache-Control", "no-store"),
                                  *vary, *headers], data)
        # No Content-Type or Cache-Control here: they would override what nginx sets for the file.
        redirect = INTERNAL_PREFIX + target.path(self.config.url_prefix, signature) + suffix
        return Response(200, [("X-Accel-Redirect", redirect), *headers])

    async def _render(self, rendition: url.Rendition, ops: url.Ops, variant: str | None,
                      deadline: float) -> tuple[Rendered, str]:
        """The rendition, derived from a larger cached one when the cascade allows, else from the original."""
        loop = asyncio.get_running_loop()
        directory = f"{self.config.url_prefix}/{rendition.original_dir}"
        found = await loop.run_in_executor(self.io, cascade.find, self.cache, directory, ops, variant,
                                           self.settings)
        if found is not None:
            try:
                data = await loop.run_in_executor(self.io, self.cache.path(found.file_path).read_bytes)
            except OSError:
                found = None  # purged in between: go to the original
            else:
                rendered = await self._transform(data, ops, variant, deadline, found.source)
                log("cascade", key=rendition.key, ops=ops.segment, base=found.file_path)
                return rendered, CASCADE
        original = await self.sources.fetch(rendition.key, deadline)
        rendered = await self._transform(original.data, ops, variant, deadline)
        try:
            await loop.run_in_executor(self.io, cascade.record, self.cache, directory, rendered.source)
        except OSError as exc:
            log("cache_write_failed", path=directory, error=str(exc))
        return rendered, original.source

    async def _transform(self, data: bytes, ops: url.Ops, variant: str | None, deadline: float,
                         derived_from: Source | None = None) -> Rendered:
        return await self._in_time(deadline, lambda: transform(
            data, ops, self.settings, variant=variant, derived_from=derived_from))

    async def _in_time(self, deadline: float, work: Callable[[], T]) -> T:
        """Run CPU work in the transform threads, within the request's deadline."""
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.get_running_loop().run_in_executor(self.cpu, work)
        except TimeoutError:
            raise DeadlineExceeded(detail=f"not done within {self.config.request_deadline}s") from None


def _vary(ops: url.Ops) -> list[tuple[str, str]]:
    """`Vary` for a rendition made in memory (nginx adds the same to the files it serves)."""
    names = (["Accept"] if ops.format == "auto" else []) + (list(HINT_HEADERS) if ops.client_hints else [])
    return [("Vary", ", ".join(names))] if names else []
