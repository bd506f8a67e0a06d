"""The HTTP API for the main application, under `/_sidecar/` (nginx passes it to the sidecar).

    POST /_sidecar/purge/{key}    remove every rendition of the original `key` (percent-encoded as in
                                  rendition URLs); answers {"key": ..., "removed": N}
    GET  /_sidecar/stats          counters of all workers, as JSON

Both need `Authorization: Bearer {purge_token}`. Without a `purge_token` in the config, the API does not
exist (404).
"""
from __future__ import annotations

import asyncio
import hmac
import json
from concurrent.futures import Executor
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .cache import Cache
from .config import Config
from .errors import BadRequest, MethodNotAllowed, NotFound, Unauthorized
from .purge import purge
from .stats import Stats

if TYPE_CHECKING:
    from .handler import Response

PURGE = "/purge/"
STATS = "/stats"


class Admin:
    def __init__(self, config: Config, cache: Cache, io: Executor, stats: Stats) -> None:
        self.config, self.cache, self.io, self.stats = config, cache, io, stats

    async def handle(self, method: str, path: str, authorization: str) -> Response:
        """`path` is what follows `/_sidecar`."""
        token = self.config.purge_token
        if not token:
            raise NotFound("not found")
        if not hmac.compare_digest(authorization.encode("latin-1"), f"Bearer {token}".encode("latin-1")):
            raise Unauthorized()
        if path == STATS:
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed()
            return _json(self.stats.totals())
        if path.startswith(PURGE):
            if method != "POST":
                raise MethodNotAllowed()
            try:
                key = unquote(path[len(PURGE):], errors="strict")
            except UnicodeDecodeError:
                raise BadRequest("key is not UTF-8") from None
            loop = asyncio.get_running_loop()
            removed = await loop.run_in_executor(self.io, purge, self.config.cache_dir, self.config.url_prefix, key)
            self.stats.add("purged_files", removed)
            return _json({"key": key, "removed": removed})
        raise NotFound("not found")


def _json(value: object) -> Response:
    from .handler import Response

    return Response(200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                    json.dumps(value).encode() + b"\n")
