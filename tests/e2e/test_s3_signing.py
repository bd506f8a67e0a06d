"""An S3 server that checks who is asking, so these prove the sidecar signs its requests as S3 expects.

moto (in-process elsewhere) accepts any credentials. Here, moto runs as a process with its IAM auth on,
which recomputes SigV4 signatures with the user's secret and knows its users' access keys. (s3rver, node's
S3 server, was tried here before and dropped: its 3.7.1 does not compute the signature, so it caught
nothing moto does not, and it needed node and an npm install while the tests ran.)
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.images import small_jpeg
from tests.support.processes import free_port
from tests.support.servers import MotoS3Process, s3_env, upload
from tests.support.sources import fast
from tests.support.stack import Stacks


@pytest.fixture(scope="module")
def moto_with_auth() -> Iterator[MotoS3Process]:
    server = MotoS3Process(free_port(), check_signatures=True)
    upload(server.env, [("signed/a b.jpg", small_jpeg())], bucket="originals", create=True)
    yield server
    server.stop()


def test_moto_checking_signatures_accepts_ours(stack_factory: Stacks, moto_with_auth: MotoS3Process) -> None:
    stack = stack_factory(["s3://originals/signed"], env=moto_with_auth.env, extra=fast())
    reply = stack.get(stack.url("a b.jpg", width=40))  # a key that is percent-encoded in the signature
    assert reply.status == 200 and reply.headers["x-image-source"] == "s3"
    assert stack.get(stack.url("b.jpg", width=40)).status == 404


def test_a_wrong_secret_is_a_502_not_a_404(stack_factory: Stacks, moto_with_auth: MotoS3Process) -> None:
    env = s3_env(moto_with_auth.endpoint, moto_with_auth.env["AWS_ACCESS_KEY_ID"], "wrong-secret")
    stack = stack_factory(["s3://originals/signed"], env=env, extra=fast())
    assert stack.get(stack.url("a b.jpg", width=40)).status == 502
    [failure] = stack.sidecar_events("source_failed")
    assert "SignatureDoesNotMatch" in str(failure["error"])


def test_an_unknown_access_key_is_a_502_not_a_404(stack_factory: Stacks, moto_with_auth: MotoS3Process) -> None:
    stack = stack_factory(["s3://originals/signed"], env=s3_env(moto_with_auth.endpoint, "NOBODY", "NOBODY"),
                          extra=fast())
    assert stack.get(stack.url("a b.jpg", width=40)).status == 502
    [failure] = stack.sidecar_events("source_failed")
    assert "InvalidAccessKeyId" in str(failure["error"]), failure
