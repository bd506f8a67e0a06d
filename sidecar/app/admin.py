"""The HTTP API for the main application, under `/_sidecar/` (nginx passes it to the sidecar).

    POST /_sidecar/purge/{key}    remove every rendition of the original `key` (percent-encoded as in
                                  rendition URLs); answers {"key": ..., "removed": N}

It needs `Authorization: Bearer {purge_token}`. Without a `purge_token` in the config, the API does not
exist (404). Counters are at `/metrics` (`sidecar.app.health`).
"""
from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import Executor
from urllib.parse import unquote

from sidecar.app.response import Response
from sidecar.cache.purge import purge
from sidecar.cache.store import Cache
from sidecar.config import Config
from sidecar.errors import BadRequest, MethodNotAllowed, NotFound, Unauthorized
from sidecar.observe.metrics import Metrics

PURGE = "/purge/"


class Admin:
    def __init__(self, config: Config, cache: Cache, io: Executor, metrics: Metrics) -> None:
        self.config, self.cache, self.io, self.metrics = config, cache, io, metrics

    async def handle(self, method: str, path: str, authorization: str) -> Response:
        """`path` is what follows `/_sidecar`."""
        token = self.config.cache.purge_token
        if not token:
            raise NotFound("not found")
        if not hmac.compare_digest(authorization.encode("latin-1"), f"Bearer {token}".encode("latin-1")):
            raise Unauthorized()
        if path.startswith(PURGE):
            if method != "POST":
                raise MethodNotAllowed()
            try:
                key = unquote(path[len(PURGE):], errors="strict")
            except UnicodeDecodeError:
                raise BadRequest("key is not UTF-8") from None
            loop = asyncio.get_running_loop()
            removed = await loop.run_in_executor(self.io, purge, self.config.cache.cache_dir,
                                                 self.config.urls.url_prefix, key)
            self.metrics.purged_files.inc(removed)
            return Response.json(200, {"key": key, "removed": removed})
        raise NotFound("not found")
