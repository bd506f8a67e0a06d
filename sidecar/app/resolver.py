"""The resolver: an image ID -> where its original lives, from the application's PostgreSQL.

Off unless `resolver_dsn` is set. One parameterised query (`resolver_query`, the ID as `$1`, text) returns
at most one row with the columns

    key        text     the original's key in the sources; NULL (or no row at all): the ID is gone -> 404
    watermark  boolean  optional; true lays `resolver_watermark` over every rendition of this image
    preset     text     optional; a preset from the config whose values override the route's

The database is the application's own, so it is used gently: a small asyncpg pool per worker process
(`resolver_pool_size` connections at most, opened only when needed, none at start), the same number of
queries at a time (a semaphore), `resolver_timeout` for waiting plus querying, and an in-process TTL cache
of answers (gone ones for the shorter `resolver_negative_ttl`), with concurrent lookups of one ID sharing
one query. Behind PgBouncer in transaction mode set `resolver_prepared_statements = false`: asyncpg then
keeps no named server-side statements (`statement_cache_size=0`).

A database that is down or slow is a 503 for misses that need it (`ResolverUnavailable`); hits never
reach Python at all.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.builder import preset_fields
from sidecar.errors import NotFound, ResolverUnavailable
from sidecar.log import log
from sidecar.observe.metrics import Metrics
from sidecar.url.grammar import check_key


@dataclass(frozen=True)
class Resolved:
    """What the database says about one image ID."""

    key: str
    watermark: bool | None = None  # None: the query has no watermark column (the presets decide)
    preset: str | None = None

    def __post_init__(self) -> None:
        check_key(self.key)


def from_row(row: Any, presets: Any) -> Resolved | None:
    """A query's row as a `Resolved`, or None when the image is gone (no row, or a NULL key). Raises
    ResolverUnavailable for rows the config cannot use: that is a data or query error, not the client's."""
    if row is None or row["key"] is None:
        return None
    columns = set(row.keys())
    watermark = bool(row["watermark"]) if "watermark" in columns and row["watermark"] is not None else None
    preset = row["preset"] if "preset" in columns else None
    if preset is not None and preset not in presets:
        raise ResolverUnavailable(detail=f"the row names preset {preset!r}, which the config does not have")
    try:
        return Resolved(str(row["key"]), watermark, preset)
    except Exception as exc:  # a key no URL could carry: the application's data, not the request
        raise ResolverUnavailable(detail=f"the row's key is unusable: {exc}") from None


def with_row(config: Any, resolved: Resolved, fields: dict[str, object],
             given: dict[str, object] | None = None) -> dict[str, object]:
    """`build_url` operations for the row's image: the row's preset over `fields`, then `given` (what the
    URL itself says) over both; the row's watermark flag, when the query has one, decides the watermark."""
    merged = {**fields, **preset_fields(config, resolved.preset), **(given or {})}
    if resolved.watermark is not None:
        merged["watermark"] = (config.resolver.resolver_watermark or None) if resolved.watermark else None
    return merged


class TtlCache:
    """At most `size` answers, each kept for its own time to live; the oldest entries go first."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.clock = size, clock
        self._entries: OrderedDict[str, tuple[float, Resolved | None]] = OrderedDict()

    def get(self, image_id: str) -> tuple[bool, Resolved | None]:
        """(found, answer); an expired entry is not found."""
        entry = self._entries.get(image_id)
        if entry is None:
            return False, None
        expires, answer = entry
        if expires <= self.clock():
            del self._entries[image_id]
            return False, None
        return True, answer

    def put(self, image_id: str, answer: Resolved | None, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[image_id] = (self.clock() + ttl, answer)
        self._entries.move_to_end(image_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, image_id: str) -> None:
        self._entries.pop(image_id, None)


class Resolver:
    """Looks IDs up, counting into `metrics` (the process's one Metrics object, or its own)."""

    def __init__(self, dsn: str, query: str, *, pool_size: int, timeout: float, ttl: float, negative_ttl: float,
                 cache_size: int, prepared_statements: bool, presets: Any,
                 metrics: Metrics | None = None) -> None:
        self.dsn, self.query, self.pool_size, self.timeout = dsn, query, pool_size, timeout
        self.ttl, self.negative_ttl, self.prepared_statements = ttl, negative_ttl, prepared_statements
        self.presets, self.metrics = presets, metrics or Metrics()
        self.cache = TtlCache(cache_size)
        self._gate = asyncio.Semaphore(pool_size)
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[Resolved | None]] = {}

    async def resolve(self, image_id: str) -> Resolved:
        """The image's original; NotFound when it is gone, ResolverUnavailable when the database fails."""
        answer = await self.lookup(image_id)
        if answer is None:
            raise NotFound("no image with this ID")
        return answer

    async def lookup(self, image_id: str) -> Resolved | None:
        """Like `resolve`, but None for a gone image."""
        found, answer = self.cache.get(image_id)
        if found:
            self.metrics.resolver_cache_hits.inc()
            return answer
        pending = self._pending.get(image_id)
        if pending is not None:  # someone is asking the database already: share their answer
            self.metrics.resolver_cache_hits.inc()
            return await asyncio.shield(pending)
        future: asyncio.Future[Resolved | None] = asyncio.get_running_loop().create_future()
        self._pending[image_id] = future
        try:
            answer = await self._query(image_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(answer)
            self.cache.put(image_id, answer, self.ttl if answer is not None else self.negative_ttl)
            if answer is None:
                self.metrics.resolver_gone.inc()
            return answer
        finally:
            del self._pending[image_id]

    async def _query(self, image_id: str) -> Resolved | None:
        """One lookup, answered within `timeout` whatever the database does. The query runs in a task of
        its own: when the time is up the task is cancelled but not awaited, since asyncpg's cleanup of a
        cancelled query (a cancel request, a connection reset) may itself wait on the dead server."""
        import asyncpg

        started = time.perf_counter()
        task = asyncio.ensure_future(self._fetch(image_id))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
            if not done:
                task.cancel()
                self.metrics.resolver_failures.inc()
                log("resolver_failed", id=image_id, error=f"no answer within {self.timeout}s")
                raise ResolverUnavailable(detail=f"no answer within {self.timeout}s")
            row = task.result()
        except asyncpg.DataError:
            return None  # the ID does not fit the ID column's type (`abc` for an integer): no such image
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            self.metrics.resolver_failures.inc()
            log("resolver_failed", id=image_id, error=f"{type(exc).__name__}: {exc}")
            raise ResolverUnavailable(detail=str(exc)) from None
        finally:
            task.cancel()  # also when our caller is cancelled (its deadline): the query must not outlive it
            self.metrics.resolver_query_seconds.observe(time.perf_counter() - started)
        return from_row(row, self.presets)

    async def _fetch(self, image_id: str) -> Any:
        """The row, through the semaphore and the pool (at most `pool_size` queries and connections)."""
        async with self._gate:
            pool = await self._open()
            async with pool.acquire() as connection:
                self.metrics.resolver_queries.inc()
                return await connection.fetchrow(self.query, image_id)

    async def _open(self) -> Any:
        """The pool, made on first use: a sidecar starts (and serves hits' neighbours) with the database down."""
        async with self._pool_lock:
            if self._pool is None:
                import asyncpg

                options: dict[str, Any] = {} if self.prepared_statements else {"statement_cache_size": 0}
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=self.pool_size, max_inactive_connection_lifetime=60,
                    server_settings={"application_name": "resize-sidecar"}, **options)
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.timeout)
            except (TimeoutError, OSError):
                self._pool.terminate()
            self._pool = None


def open_resolver(config: Any, metrics: Metrics | None = None) -> Resolver | None:
    """The config's resolver, or None when it is off (no `resolver_dsn`)."""
    settings = config.resolver
    if not settings.resolver_dsn:
        return None
    return Resolver(settings.resolver_dsn, settings.resolver_query, pool_size=settings.resolver_pool_size,
                    timeout=settings.resolver_timeout, ttl=settings.resolver_ttl,
                    negative_ttl=settings.resolver_negative_ttl, cache_size=settings.resolver_cache_size,
                    prepared_statements=settings.resolver_prepared_statements, presets=config.urls.presets,
                    metrics=metrics)


async def lookup_ids(config: Any, ids: list[str]) -> dict[str, Resolved | None]:
    """Each ID's answer (None: gone), for the command line. Raises ResolverUnavailable."""
    resolver = open_resolver(config)
    if resolver is None:
        raise ResolverUnavailable("image IDs need the resolver (SIDECAR_RESOLVER_DSN)")
    try:
        return {image_id: await resolver.lookup(image_id) for image_id in ids}
    finally:
        await resolver.close()
