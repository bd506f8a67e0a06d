"""The `resolver` section: looking image IDs up in the application's PostgreSQL database (old URLs with
an `{id}`, `purge --id`, `warm --id`)."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.fields import Where, positive, require, setting


@dataclass(frozen=True)
class ResolverSection:
    """The ID lookup: the database, the query, its pool and timeout, and what each worker remembers."""

    resolver_dsn: str = setting("", "PostgreSQL DSN (`postgresql://user:password@host:port/db`) of the "
                                "application's database; turns the resolver on. A secret: it usually holds a password",
                                secret=True)
    resolver_query: str = setting("", "one SQL query taking the ID as `$1` (text) and returning `key`, "
                                  "optionally `watermark` and `preset`; required with a DSN")
    resolver_pool_size: int = setting(2, "connections per worker process, opened on demand (none at start), and "
                                      "queries at a time (a semaphore)")
    resolver_timeout: float = setting(1.0, "seconds for a lookup, waiting for a connection included; then 503 with "
                                      "`Retry-After: 1`")
    resolver_ttl: float = setting(300.0, "seconds a worker remembers an ID's answer")
    resolver_negative_ttl: float = setting(30.0, "seconds a worker remembers that an ID is gone (404)")
    resolver_cache_size: int = setting(100_000, "answers remembered per worker; the oldest go first")
    resolver_prepared_statements: bool = setting(True, "set `false` behind PgBouncer in transaction (or statement) "
                                                 "mode: asyncpg then keeps no named server-side statements "
                                                 "(`statement_cache_size=0`)")
    resolver_watermark: str = setting("", "the `[watermarks.NAME]` laid over images whose row says "
                                      "`watermark = true`")

    @property
    def enabled(self) -> bool:
        """A DSN turns the resolver on."""
        return bool(self.resolver_dsn)

    def check(self, where: Where) -> None:
        positive(self, where, "resolver_pool_size", "resolver_timeout", "resolver_cache_size")
        for key in ("resolver_ttl", "resolver_negative_ttl"):
            require(getattr(self, key) >= 0, where(key), "must be 0 (no caching) or more seconds")
        require(self.resolver_timeout <= 60, where("resolver_timeout"), "must be at most 60 seconds")
        require(not self.enabled or "$1" in self.resolver_query, where("resolver_query"),
                "must be one SQL query taking the ID as $1 (and returning a key column)")
