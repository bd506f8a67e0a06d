"""The request path's entry: one request in, one response out (or a `SidecarError` for the protocol).

It routes: the application's API (`sidecar.app.admin`), health and metrics (`sidecar.app.health`), old URL
shapes (`sidecar.app.legacy`), then canonical URLs, parsed by the grammar and their signature checked here,
to renditions (`sidecar.app.renditions`) or info documents (`sidecar.app.info`).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from sidecar.app.admin import Admin
from sidecar.app.health import Health
from sidecar.app.info import InfoDocuments
from sidecar.app.legacy import LegacyRoutes
from sidecar.app.renditions import Renditions, transform_settings
from sidecar.app.resolver import Resolver, open_resolver
from sidecar.app.response import Response
from sidecar.app.work import Work
from sidecar.cache.store import Cache
from sidecar.config import Config
from sidecar.errors import Forbidden, MethodNotAllowed
from sidecar.sources import SourceChain
from sidecar.url import grammar as url
from sidecar.url.paths import ADMIN_PREFIX
from sidecar.url.signing import Signer


class Handler:
    """Turns one request into a response, or raises a SidecarError for the protocol to report."""

    def __init__(self, config: Config, sources: SourceChain, cpu: Executor, io: Executor) -> None:
        self.config, self.sources = config, sources
        self.metrics = sources.metrics  # the process's one Metrics object
        self.cache = Cache(config.cache.cache_dir, io)
        self.work = Work(config, self.cache, self.metrics, cpu, io)
        self.signer = Signer(config.urls.signing_keys) if config.urls.signed else None
        settings = transform_settings(config)
        self.renditions = Renditions(self.work, sources, settings, self.signer)
        self.flights = self.renditions.flights
        self.info = InfoDocuments(self.work, sources, settings)
        self.resolver: Resolver | None = open_resolver(config, self.metrics)
        self.legacy = LegacyRoutes(self.renditions, self.resolver)
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
        found = self.legacy.match(path)
        if found is not None:
            return await self.legacy.serve(found)
        parsed = url.parse(path, prefix=self.config.urls.url_prefix, signed=self.signer is not None,
                           max_length=self.config.urls.max_url_length)
        target, signature = parsed.target, parsed.signature
        if self.signer is not None and not self.signer.verify(target.payload, signature or ""):
            raise Forbidden()
        if isinstance(target, url.Info):
            deadline = asyncio.get_running_loop().time() + self.config.processes.request_deadline
            return await self.info.serve(target, signature, deadline)
        assert isinstance(target, url.Rendition)
        response, _ = await self.renditions.serve(path, target, signature, variant, hint)
        return response
