"""Originals in S3 or any S3-compatible store (MinIO, Ceph), through one long-lived aiobotocore client.

Endpoint, region and credentials come from the standard AWS environment variables and files
(`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `~/.aws/config`, ...), as for any AWS tool.
"""
from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceRefused, SourceTimeout, SourceUnavailable
from sidecar.sources.body import check_length, read_capped

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
#: 4xx answers about the store or our credentials, never about one key: the source's own failures.
_SOURCE_FAULTS = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
                  "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
                  "AccountProblem", "AllAccessDisabled", "NoSuchBucket", "RequestTimeTooSkewed", "RequestTimeout",
                  "AuthorizationHeaderMalformed", "PermanentRedirect"}
CHUNK = 256 * 1024


class S3Source:
    kind = "s3"

    def __init__(self, spec: SourceSpec, client: Any, exit_stack: AsyncExitStack, *, max_bytes: int,
                 first_byte_timeout: float, body_timeout: float) -> None:
        self.spec, self.name = spec, spec.name
        self._client, self._exit_stack = client, exit_stack
        self.max_bytes, self.first_byte_timeout, self.body_timeout = max_bytes, first_byte_timeout, body_timeout

    @classmethod
    async def open(cls, spec: SourceSpec, *, max_bytes: int, connect_timeout: float, first_byte_timeout: float,
                   body_timeout: float, pool_size: int, addressing_style: str) -> S3Source:
        """Create the client (no connection is made yet); `close` releases it and its pool."""
        config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=first_byte_timeout,  # botocore applies it to every socket read
            max_pool_connections=pool_size,
            # `max_attempts` would count *retries*; `total_max_attempts: 1` is the one try, no hidden
            # retries. Our retries (source_retries) happen in the chain, counted, within the deadline.
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": addressing_style},
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(get_session().create_client("s3", config=config))
        return cls(spec, client, stack, max_bytes=max_bytes, first_byte_timeout=first_byte_timeout,
                   body_timeout=body_timeout)

    async def fetch(self, key: str) -> bytes:
        object_key = self.spec.object_key(key)
        try:
            response = await self._client.get_object(Bucket=self.spec.location, Key=object_key)
            async with response["Body"] as body:
                check_length(response.get("ContentLength"), self.max_bytes)
                return await read_capped(body.iter_chunks(CHUNK), max_bytes=self.max_bytes,
                                         timeout=self.body_timeout, what=self.name,
                                         stall=self.first_byte_timeout)
        except _FAILURES as exc:
            raise _failure(exc, f"{self.name}{object_key}") from None

    async def probe(self) -> None:
        """The bucket answers a one-key listing of the prefix (needs s3:ListBucket, as HeadBucket does)."""
        try:
            await self._client.list_objects_v2(Bucket=self.spec.location, Prefix=self.spec.prefix, MaxKeys=1)
        except _FAILURES as exc:
            failure = _failure(exc, self.name)
            raise (SourceUnavailable(detail=str(failure)) if isinstance(failure, NotFound) else failure) from None

    async def close(self) -> None:
        await self._exit_stack.aclose()


_FAILURES = (ClientError, BotoCoreError, aiohttp.ClientError, OSError)


def _failure(exc: BaseException, what: str) -> NotFound | SourceTimeout | SourceUnavailable:
    """What an exception of botocore or aiohttp means for a source. A 4xx about one key (AccessDenied
    for one object) is this key's answer (`SourceRefused`); 5xx, throttling, wrong credentials, a missing
    bucket and transport errors are the store's own failures."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return NotFound()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if 300 <= status < 500 and status != 429 and code not in _SOURCE_FAULTS:
            return SourceRefused(detail=f"{what}: {code or exc} (HTTP {status})")
        return SourceUnavailable(detail=f"{what}: {code or exc}")
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return SourceTimeout(detail=f"{what}: {exc}")
    return SourceUnavailable(detail=f"{what}: {exc}")
