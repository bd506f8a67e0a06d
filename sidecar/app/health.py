"""What operators and supervisors ask the sidecar, through nginx (allowed networks only) or its socket
(`resize-sidecar health`, with `ask`):

    GET /healthz    200 while the worker's event loop answers (alive)
    GET /readyz     200 when the cache is writable and at least one source answers, else 503; the JSON body
                    says what each one answered
    GET /metrics    Prometheus text, every worker's values added up (`sidecar.observe.metrics`)

None of them counts as a request in the metrics: watching must not move what is watched.
"""
from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import Executor
from pathlib import Path

import aiofiles.os

from sidecar.app.response import Response
from sidecar.cache.store import Cache
from sidecar.config import Config
from sidecar.errors import MethodNotAllowed
from sidecar.observe.metrics import CONTENT_TYPE
from sidecar.sources import SourceChain
from sidecar.url.paths import HEALTH_PATHS, HEALTHZ, METRICS

#: The cache probe: a dot-name (nginx never serves it), written the way renditions are, then removed.
PROBE_NAME = ".readyz-probe"


class Health:
    paths = HEALTH_PATHS

    def __init__(self, config: Config, sources: SourceChain, cache: Cache, io: Executor) -> None:
        self.config, self.sources, self.cache, self.io = config, sources, cache, io
        # Each source's probe has its own timeouts; this bounds the whole answer whatever they do.
        self.timeout = config.fetch.source_connect_timeout + config.fetch.source_first_byte_timeout + 1

    async def handle(self, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        loop = asyncio.get_running_loop()
        if path == METRICS:
            text = await loop.run_in_executor(self.io, self.sources.metrics.exposition)
            return Response(200, [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")], text)
        if path == HEALTHZ:
            return Response.json(200, {"status": "alive", "pid": os.getpid()})
        report = await self.readiness()
        return Response.json(200 if report["ready"] else 503, report)

    async def readiness(self) -> dict[str, object]:
        """Cache writable and sources reachable, probed now."""
        cache = asyncio.ensure_future(self._cache_writable())
        try:
            async with asyncio.timeout(self.timeout):
                sources = await self.sources.probe()
        except TimeoutError:
            sources = {source.name: f"no answer within {self.timeout}s" for source in self.sources.sources}
        cache_state = await cache
        ready = cache_state == "ok" and "ok" in sources.values()
        return {"ready": ready, "cache": cache_state, "sources": sources}

    async def _cache_writable(self) -> str:
        probe = f"{self.config.urls.url_prefix}/{PROBE_NAME}"
        try:
            await self.cache.write(probe, b"ok\n")
            await aiofiles.os.unlink(self.cache.path(probe), executor=self.cache.io)
        except OSError as exc:
            return f"not writable: {exc.strerror or exc}"
        return "ok"


def ask(socket_path: Path, path: str, timeout: float) -> tuple[int, bytes]:
    """GET `path` from the sidecar over its own Unix socket, as nginx would: (status, body). Blocking;
    raises OSError (refused, no socket, timed out) or ValueError (not an HTTP answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: resize-sidecar\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {head[:80]!r}")
    return int(parts[1]), body
