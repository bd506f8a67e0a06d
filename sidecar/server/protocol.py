"""HTTP/1.1 over the socket nginx connects to: httptools parsing, keep-alive, one request at a time.

This is the only place that turns exceptions into responses: a SidecarError becomes its status and
public message; anything else is a bug, logged with its traceback, and answered with a bare 500.
"""
from __future__ import annotations

import asyncio
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

from sidecar import log as logging
from sidecar.app.handler import Handler
from sidecar.app.response import Response
from sidecar.errors import BadRequest, SidecarError
from sidecar.log import log
from sidecar.url.paths import ADMIN_PREFIX, HEALTH_PATHS


@dataclass
class ServerState:
    """Shared by a worker's connections: who is connected, and whether the worker is draining."""

    connections: set[HttpProtocol] = field(default_factory=set)
    draining: bool = False


@dataclass(frozen=True)
class _Request:
    """One parsed request, waiting for its turn: answers leave in the order the requests came."""

    method: str
    url: bytes
    keep_alive: bool
    variant: str | None = None
    hint: str | None = None
    authorization: str = ""
    request_id: str = ""
    refused: SidecarError | None = None  # the parser's verdict on a request it could not read


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, state: ServerState) -> None:
        self.handler, self.state = handler, state
        self.connections = state.connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.request_id = ""
        self.authorization = ""
        self.variant: str | None = None
        self.hint: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.pending: deque[_Request] = deque()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._queue(_Request("", b"", False, refused=BadRequest("upgrade not supported")))
        except httptools.HttpParserError:
            self._queue(_Request("", b"", False, refused=BadRequest("malformed HTTP request")))

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url, self.request_id, self.variant, self.hint, self.authorization = b"", "", None, None, ""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"x-request-id":
            self.request_id = value.decode("latin-1")
        elif name == b"x-image-variant":  # set by nginx from Accept, for `.auto` renditions
            self.variant = value.decode("latin-1")
        elif name == b"x-image-hint":  # set by nginx from the client hints, for `ch` renditions
            self.hint = value.decode("latin-1")
        elif name == b"authorization":  # the purge API (sidecar/admin.py)
            self.authorization = value.decode("latin-1")

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive() and not self.state.draining
        self._queue(_Request(self.parser.get_method().decode("latin-1"), self.url, keep_alive, self.variant,
                             self.hint, self.authorization, self.request_id))

    def _queue(self, request: _Request) -> None:
        """nginx never pipelines to an upstream, but a client might: requests that arrived together wait
        in order for one task to answer them, and nothing more is read until all are answered."""
        assert self.transport is not None
        self.transport.pause_reading()
        self.pending.append(request)
        if self.idle:
            self.task = asyncio.get_running_loop().create_task(self._answer_pending())

    # the request

    @property
    def idle(self) -> bool:
        return self.task is None or self.task.done()

    async def _answer_pending(self) -> None:
        while self.pending:
            request = self.pending.popleft()
            if request.refused is not None:
                self._send(self._error(request.refused), keep_alive=False)
                keep_alive = False
            else:
                keep_alive = await self._respond(request)
            if not keep_alive:  # closed: whatever else was sent on this connection goes unanswered
                self.pending.clear()
                return
            if not self.pending and self.transport is not None:
                self.transport.resume_reading()  # what it hands over now is answered by this loop too

    async def _respond(self, request: _Request) -> bool:
        """Answer one request; whether the connection stays open."""
        method, raw_url = request.method, request.url
        started = time.perf_counter()
        logging.request_id.set(request.request_id)  # this task's own context: records carry the id
        metrics = self.handler.metrics
        path = ""
        try:
            path = httptools.parse_url(raw_url).path.decode("latin-1")
        except httptools.HttpParserInvalidURLError:
            pass
        route = _route(path)
        if route:
            metrics.in_progress.inc()
        try:
            if not path:
                raise BadRequest("malformed URL")
            response = await self.handler.handle(method, path, request.variant, request.hint, request.authorization)
        except SidecarError as exc:
            response = self._error(exc)
            metrics.count_error(exc)
            if exc.status >= 500:
                log("source_error", path=path, status=exc.status, error=str(exc))
        except Exception:
            log("bug", path=path, traceback=traceback.format_exc())
            metrics.errors.labels("bug", "500").inc()
            response = Response(500, [("Content-Type", "text/plain")], b"internal error\n")
        seconds = time.perf_counter() - started
        if route:
            metrics.in_progress.dec()
            metrics.requests.labels(route, str(response.status)).inc()
            metrics.request_seconds.labels(route).observe(seconds)
        log("request", method=method, path=path, status=response.status, ms=round(seconds * 1000, 2))
        keep_alive = request.keep_alive and not self.state.draining
        self._send(response, keep_alive, head=method == "HEAD")
        return keep_alive and self.transport is not None

    def _error(self, exc: SidecarError) -> Response:
        return Response(exc.status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"),
                                     *exc.headers], f"{exc.public}\n".encode())

    def _send(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        if self.transport is None:
            return
        lines = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        lines.append(f"Content-Length: {len(response.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head_bytes if head else head_bytes + response.body)
        if not keep_alive:
            self.transport.close()


def _route(path: str) -> str:
    """The route a request counts under in the metrics; "" for scrapes and health checks (not counted)."""
    if path in HEALTH_PATHS:
        return ""
    return "admin" if path.startswith(ADMIN_PREFIX + "/") else "rendition"
