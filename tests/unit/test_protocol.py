"""The HTTP protocol fed raw bytes: a fake transport stands in for the socket (it only records what the
protocol writes and whether it paused, resumed or closed), and behind the protocol is the real handler
over the repo's samples, so every answer here is one the sidecar really gives."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from sidecar.app.handler import Handler
from sidecar.builder import build_url
from sidecar.config import Config, load
from sidecar.server.protocol import HttpProtocol, ServerState
from sidecar.sources import open_chain
from tests.support.paths import SAMPLES
from tests.support.stack import PURGE_TOKEN, SIGNING_KEY

PHOTO = "road-1920x1080.jpg"


class FakeTransport(asyncio.Transport):
    """The socket's side of one connection, in memory. Like asyncio's own transports it holds bytes that
    arrive while reading is paused and hands them over on `resume_reading`, and it reports the closed
    connection to the protocol on the next turn of the loop."""

    def __init__(self, protocol: HttpProtocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.reading, self.closed = True, False
        self.held = b""
        self.changed = asyncio.Event()
        protocol.connection_made(self)

    def receive(self, data: bytes) -> None:
        """Bytes from the client, delivered now or, while reading is paused, on `resume_reading`."""
        if self.reading:
            self.protocol.data_received(data)
        else:
            self.held += data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.written += data
        self.changed.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)
            self.changed.set()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        held, self.held = self.held, b""
        if held:
            asyncio.get_running_loop().call_soon(self.protocol.data_received, held)

    def is_reading(self) -> bool:
        return self.reading

    async def until(self, done: Callable[[], bool], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def answers(data: bytes, methods: list[str]) -> list[Answer]:
    """The responses in `data`, one per request method, framed by Content-Length (none after HEAD);
    fails on bytes left over or missing, so a wrongly framed response cannot pass."""
    found = []
    for method in methods:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, "an incomplete response"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
        length = 0 if method == "HEAD" else int(headers["content-length"])
        body, data = data[:length], data[length:]
        assert len(body) == length, "a body shorter than its Content-Length"
        found.append(Answer(int(status), headers, body))
    assert data == b"", f"bytes after the last response: {data[:100]!r}"
    return found


def request(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: sidecar", *headers, "", ""]).encode("latin-1")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load(None, env={"SIDECAR_CACHE_DIR": str(tmp_path / "cache"), "SIDECAR_SOURCES": str(SAMPLES),
                           "SIDECAR_SIGNING_KEYS": SIGNING_KEY, "SIDECAR_PURGE_TOKEN": PURGE_TOKEN})


@asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[Handler, ServerState, ThreadPoolExecutor]]:
    """The real handler, as a worker builds it (`sidecar.server.worker.running`), without the socket."""
    cpu, io = ThreadPoolExecutor(2), ThreadPoolExecutor(4)
    sources = await open_chain(config)
    try:
        yield Handler(config, sources, cpu, io), ServerState(), io
    finally:
        await sources.close()
        cpu.shutdown()
        io.shutdown()


def exchange(config: Config, *chunks: bytes, methods: list[str],
             before: Callable[[Handler, ServerState, ThreadPoolExecutor], None] | None = None,
             ) -> tuple[list[Answer], FakeTransport]:
    """Send `chunks` on one connection, each once the previous ones are answered (a chunk may hold
    several requests), and read one answer per method."""
    async def run() -> tuple[list[Answer], FakeTransport]:
        async with serving(config) as (handler, state, io):
            if before is not None:
                before(handler, state, io)
            transport = FakeTransport(HttpProtocol(handler, state))
            for count, chunk in enumerate(chunks, 1):
                transport.receive(chunk)
                expected = methods[:len(methods) * count // len(chunks)]
                await transport.until(partial(_answered, transport, expected))
            await asyncio.sleep(0)  # connection_lost, if the transport closed
            assert transport.protocol.idle
            return answers(bytes(transport.written), methods), transport
    return asyncio.run(run())


def _answered(transport: FakeTransport, methods: list[str]) -> bool:
    """Whether `transport` holds one answer per method, or was closed."""
    return transport.closed or _complete(transport.written, methods)


def _complete(data: bytes | bytearray, methods: list[str]) -> bool:
    try:
        answers(bytes(data), methods)
    except (AssertionError, KeyError, ValueError):
        return False
    return True


def test_keep_alive_serves_one_request_after_another_on_one_connection(config: Config) -> None:
    path = build_url(config, PHOTO, width=120)
    got, transport = exchange(config, request("GET", path), request("GET", "/healthz"),
                              methods=["GET", "GET"])
    rendition, health = got
    assert rendition.status == 200 and rendition.headers["x-accel-redirect"].endswith(".jpg")
    assert rendition.headers["x-image-source"] == "local"
    assert health.status == 200 and json.loads(health.body)["status"] == "alive"
    assert "connection" not in rendition.headers and "connection" not in health.headers
    assert not transport.closed and transport.reading


def test_pipelined_requests_are_answered_in_their_order(config: Config) -> None:
    # The first is a miss (a transform in the threads), the others are answered without one: the
    # answers must still come back in the order the requests came.
    slow = build_url(config, PHOTO, width=300, format="png")
    missing = build_url(config, "no/such.jpg", width=10)
    got, transport = exchange(config, request("GET", slow) + request("GET", "/healthz") + request("GET", missing),
                              methods=["GET", "GET", "GET"])
    assert [answer.status for answer in got] == [200, 200, 404]
    assert got[0].headers["x-accel-redirect"].endswith(".png")
    assert got[2].body == b"original not found\n"
    assert not transport.closed


def test_a_malformed_request_is_400_and_the_connection_closes(config: Config) -> None:
    [got], transport = exchange(config, b"GET /healthz HTTP/1.1\r\nHost sidecar\r\n\r\n", methods=["GET"])
    assert got.status == 400 and got.body == b"malformed HTTP request\n"
    assert got.headers["connection"] == "close" and got.headers["cache-control"] == "no-store"
    assert transport.closed


def test_garbage_after_a_pipelined_request_is_answered_after_it(config: Config) -> None:
    slow = build_url(config, PHOTO, width=200, format="png")
    (first, refused), transport = exchange(config, request("GET", slow) + b"\x00\x01 not HTTP\r\n\r\n",
                                           methods=["GET", "GET"])
    assert first.status == 200 and "connection" not in first.headers
    assert refused.status == 400 and refused.headers["connection"] == "close"
    assert transport.closed


def test_head_gets_the_headers_of_get_and_no_body(config: Config) -> None:
    (head, get), _ = exchange(config, request("HEAD", "/healthz") + request("GET", "/healthz"),
                              methods=["HEAD", "GET"])
    assert head.status == get.status == 200 and head.body == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.body))
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def forged(config: Config) -> bytes:
    signed = build_url(config, PHOTO, width=120)
    return request("GET", signed[:-len("AAAAAAAAAAAAAAAA.jpg")] + "AAAAAAAAAAAAAAAA.jpg")


@pytest.mark.parametrize("sent, status, public, header", [
    (forged, 403, "invalid signature", None),
    (lambda config: request("GET", build_url(config, PHOTO, width=120).replace("/w120.", "/w0120.")), 400,
     None, None),
    (lambda config: request("DELETE", "/healthz"), 405, "method not allowed", None),
    (lambda config: request("POST", "/_sidecar/purge/a.jpg", "Authorization: Bearer wrong"), 401,
     "missing or wrong token", ("www-authenticate", 'Bearer realm="resize-sidecar"')),
], ids=["forged signature", "not canonical", "method", "purge token"])
def test_a_sidecar_error_is_its_status_and_public_message(config: Config, sent: Callable[[Config], bytes],
                                                          status: int, public: str | None,
                                                          header: tuple[str, str] | None) -> None:
    [got], transport = exchange(config, sent(config), methods=["GET"])
    assert got.status == status
    assert got.headers["content-type"] == "text/plain; charset=utf-8" and got.headers["cache-control"] == "no-store"
    if public is not None:
        assert got.body == f"{public}\n".encode()
    if header is not None:
        assert got.headers[header[0]] == header[1]
    assert not transport.closed  # an error answer keeps the connection


def test_an_unexpected_exception_is_a_bare_500_and_its_details_go_to_the_log(
        config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    # A real fault, not a planted one: the IO threads are gone (as after a drain), so the readiness probe
    # cannot even be scheduled and asyncio raises a RuntimeError the handler knows nothing about.
    def stop_the_io_threads(handler: Handler, state: ServerState, io: ThreadPoolExecutor) -> None:
        io.shutdown()

    [got], _ = exchange(config, request("GET", "/readyz"), methods=["GET"], before=stop_the_io_threads)
    assert got.status == 500 and got.body == b"internal error\n"
    assert got.headers["content-type"] == "text/plain"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [bug] = [record for record in logged if record["event"] == "bug"]
    assert "RuntimeError" in bug["traceback"] and bug["path"] == "/readyz"
    assert b"RuntimeError" not in got.body and b"shutdown" not in got.body


def test_a_draining_worker_answers_with_connection_close(config: Config) -> None:
    def drain(handler: Handler, state: ServerState, io: ThreadPoolExecutor) -> None:
        state.draining = True

    [got], transport = exchange(config, request("GET", "/healthz"), methods=["GET"], before=drain)
    assert got.status == 200 and got.headers["connection"] == "close"
    assert transport.closed
