"""Originals behind another HTTP server, through one long-lived aiohttp session with a bounded pool.

`GET {base URL}{key}`: 200 is the original, 404 and 410 mean not found. A redirect or another 4xx (403
for one object) is the origin refusing this key (`SourceRefused`): a client picks keys, so such answers
never mark the origin down. 5xx, 408 and 429 (the origin timing out or throttling us), a refused or reset connection and
timeouts mean the origin is unavailable. Redirects are not followed: a source is one place, and its
timeouts would not cover a second host.
"""
from __future__ import annotations

import aiohttp

from sidecar.config.sources import SourceSpec
from sidecar.errors import NotFound, SourceRefused, SourceTimeout, SourceUnavailable
from sidecar.sources.body import check_length, read_capped

CHUNK = 256 * 1024


class HttpSource:
    kind = "http"

    def __init__(self, spec: SourceSpec, session: aiohttp.ClientSession, *, max_bytes: int,
                 first_byte_timeout: float, body_timeout: float) -> None:
        self.spec, self.name, self._session = spec, spec.name, session
        self.max_bytes, self.first_byte_timeout, self.body_timeout = max_bytes, first_byte_timeout, body_timeout

    @classmethod
    async def open(cls, spec: SourceSpec, *, max_bytes: int, connect_timeout: float, first_byte_timeout: float,
                   body_timeout: float, pool_size: int) -> HttpSource:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size),
            # `connect` includes waiting for a free pooled connection; `sock_read` bounds the wait for
            # the response to start and for every read after it. The whole body has its own limit.
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_connect=connect_timeout,
                                          sock_read=first_byte_timeout),
            headers={"User-Agent": "resize-sidecar"},
        )
        return cls(spec, session, max_bytes=max_bytes, first_byte_timeout=first_byte_timeout,
                   body_timeout=body_timeout)

    async def fetch(self, key: str) -> bytes:
        url = self.spec.url(key)
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status in (404, 410):
                    raise NotFound()
                if 300 <= response.status < 500 and response.status not in (408, 429):
                    raise SourceRefused(detail=f"{url}: HTTP {response.status}")
                if response.status != 200:
                    raise SourceUnavailable(detail=f"{url}: HTTP {response.status}")
                check_length(response.content_length, self.max_bytes)
                return await read_capped(response.content.iter_chunked(CHUNK), max_bytes=self.max_bytes,
                                         timeout=self.body_timeout, what=url, stall=self.first_byte_timeout)
        except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors too
            raise SourceTimeout(detail=f"{url}: {type(exc).__name__} {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SourceUnavailable(detail=f"{url}: {type(exc).__name__} {exc}") from None

    async def probe(self) -> None:
        """The origin answers a HEAD of the base URL with anything but a server error."""
        try:
            async with self._session.head(self.spec.location, allow_redirects=False) as response:
                if response.status >= 500:
                    raise SourceUnavailable(detail=f"{self.spec.location}: HTTP {response.status}")
        except TimeoutError as exc:
            raise SourceTimeout(detail=f"{self.spec.location}: {type(exc).__name__} {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SourceUnavailable(detail=f"{self.spec.location}: {type(exc).__name__} {exc}") from None

    async def close(self) -> None:
        await self._session.close()
