"""S3 servers that check who is asking, so these prove the sidecar signs its requests as S3 expects.

moto (in-process elsewhere) accepts any credentials. Here, moto runs as a process with its IAM auth on,
which recomputes SigV4 signatures with the user's secret. s3rver (optional: node and npm) is the
issue's choice; its 3.7.1 checks the access key, the SigV4 header's form and the clock skew, but its
own source says the SigV4 signature itself is not computed ("unimplemented"), so it cannot catch a
wrong secret.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.images import small_jpeg
from tests.support.processes import free_port, world_readable_tempdir
from tests.support.servers import MotoS3Process, S3rver, install_s3rver, s3_env, upload
from tests.support.sources import fast
from tests.support.stack import Stacks


@pytest.fixture(scope="module")
def moto_with_auth() -> Iterator[MotoS3Process]:
    server = MotoS3Process(free_port(), check_signatures=True)
    upload(server.env, [("signed/a b.jpg", small_jpeg())], bucket="originals", create=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3rver() -> Iterator[S3rver]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("s3rver needs node and npm, and they are not installed (apt-get install nodejs npm)")
    data = world_readable_tempdir()
    server = S3rver(install_s3rver(), data, free_port())
    upload(server.env, [("signed/a b.jpg", small_jpeg())], bucket="originals", create=True)
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


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


def test_s3rver_accepts_ours(stack_factory: Stacks, s3rver: S3rver) -> None:
    stack = stack_factory(["s3://originals/signed"], env=s3rver.env, extra=fast())
    reply = stack.get(stack.url("a b.jpg", width=40))
    assert reply.status == 200 and reply.headers["x-image-source"] == "s3"
    assert stack.get(stack.url("b.jpg", width=40)).status == 404


def test_s3rver_refuses_an_unknown_access_key_with_a_502(stack_factory: Stacks, s3rver: S3rver) -> None:
    stack = stack_factory(["s3://originals/signed"], env=s3_env(s3rver.endpoint, "NOBODY", "S3RVER"),
                          extra=fast())
    assert stack.get(stack.url("a b.jpg", width=40)).status == 502
    [failure] = stack.sidecar_events("source_failed")
    assert "InvalidAccessKeyId" in str(failure["error"])
