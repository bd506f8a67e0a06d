"""Real servers for the source tests: moto's S3 server, an aiohttp origin, and a port that never answers.

Each runs in a thread of the test process; the sidecar under test reaches them over loopback TCP.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from aiohttp import web

BUCKET = "originals"


def s3_env(endpoint: str, key_id: str = "test", secret: str = "test") -> dict[str, str]:
    """The standard AWS variables a sidecar (or any AWS tool) needs to reach `endpoint`, and nothing from
    the machine's own ~/.aws or instance metadata."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}


async def _upload(env: dict[str, str], bucket: str, files: Iterable[tuple[str, bytes]], create: bool) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        if create:
            await client.create_bucket(Bucket=bucket)
        for key, data in files:
            await client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")


def upload(env: dict[str, str], files: Iterable[tuple[str, bytes]], *, bucket: str = BUCKET,
           create: bool = False) -> None:
    """Put originals into a bucket with aiobotocore, as an application would."""
    asyncio.run(_upload(env, bucket, list(files), create))


class MotoS3:
    """moto's S3 in server mode on a loopback port of its own."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = s3_env(self.endpoint)

    def stop(self) -> None:
        """Stop serving and close the listening socket: new connections are refused, as for a dead host."""
        self.server.stop()
        assert self.server._server is not None
        self.server._server.server_close()


class MotoS3Process:
    """moto's S3 server as its own process, so that stopping it is a real death: every connection goes,
    including those kept alive in a client's pool (a thread's server would keep serving those)."""

    def __init__(self, port: int, *, check_signatures: bool = False) -> None:
        # With INITIAL_NO_AUTH_ACTION_COUNT, moto checks IAM permissions and SigV4 signatures (computed
        # with the user's secret) after that many requests: we spend them making a user and its key.
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"} if check_signatures else None
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = s3_env(self.endpoint)
        _wait_for_port(port, self.process, self.stop)
        if check_signatures:
            self.env = asyncio.run(self._make_user())

    async def _make_user(self) -> dict[str, str]:
        from aiobotocore.session import get_session

        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        async with get_session().create_client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                                                aws_access_key_id="setup", aws_secret_access_key="setup") as iam:
            await iam.create_user(UserName="sidecar")
            await iam.put_user_policy(UserName="sidecar", PolicyName="s3", PolicyDocument=json.dumps(policy))
            key = (await iam.create_access_key(UserName="sidecar"))["AccessKey"]
        return s3_env(self.endpoint, key["AccessKeyId"], key["SecretAccessKey"])

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], stop: Callable[[], None]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop()
                raise RuntimeError(f"{process.args!r} did not start listening") from None
            time.sleep(0.05)


class Origin:
    """An aiohttp origin in a thread. Paths (the first segment picks the behaviour):

    /files/{key}                    the originals in `files`, else 404
    /flaky/{key}                    like /files, but of every 4 requests one is a 500 and one a reset
    /slow/{chunk}/{every}/{key}     streams `chunk` bytes every `every` seconds, without end
    /files/moved/{key}              301 to the key with a slash (how an origin answers for a directory)
    /files/forbidden/{key}          403 (one object the origin will not give out)
    /denied/{key}                   403 AccessDenied, as S3 answers for one key the credentials may not read
    /{bucket}/{key}                 any other bucket: 503 SlowDown, as S3 says when it is overloaded
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self._flaky = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.base = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{where}/{tail:.+}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        where, tail = request.match_info["where"], request.match_info["tail"]
        self.requests[where] += 1
        if where == "flaky":
            self._flaky += 1
            if self._flaky % 4 == 2:
                raise web.HTTPInternalServerError()
            if self._flaky % 4 == 0:
                assert request.transport is not None
                request.transport.abort()  # a reset connection, mid-request
                return web.Response()
            where = "files"
        if where == "files" and tail.startswith("moved/"):
            raise web.HTTPMovedPermanently(f"/files/{tail}/")
        if where == "files" and tail.startswith("forbidden/"):
            raise web.HTTPForbidden()
        if where == "files":
            if tail not in self.files:
                raise web.HTTPNotFound()
            return web.Response(body=self.files[tail], content_type="image/jpeg")
        if where == "slow":
            chunk, every, _ = tail.split("/", 2)
            response = web.StreamResponse()
            response.content_type = "image/jpeg"
            await response.prepare(request)
            try:
                for _ in range(100_000):
                    await response.write(b"\xff" * int(chunk))
                    await asyncio.sleep(float(every))
            except (ConnectionError, RuntimeError):
                pass  # the sidecar hung up, as it should
            return response
        if where == "denied":
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            return web.Response(status=403, body=body, content_type="application/xml")
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return web.Response(status=503, body=body, content_type="application/xml")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class BlackHole:
    """A TCP port that accepts connections and never answers: a hung origin or a wedged S3 gateway."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.held:
            conn.close()
