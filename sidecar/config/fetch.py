"""The `fetch` section: where originals are (`sources`) and how they are fetched — timeouts, retries,
connection pools, the circuit breaker and S3's addressing style."""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.fields import ConfigError, Where, positive, require, setting
from sidecar.config.sources import SourceSpec, parse_source

#: Timeouts, in seconds, that must stay below an hour.
TIMEOUTS = ("source_connect_timeout", "source_first_byte_timeout", "source_body_timeout", "source_down_seconds")


@dataclass(frozen=True)
class FetchSection:
    """The sources of originals, tried in order, and the timeouts, retries and breaker around each."""

    sources: tuple[str, ...] = setting((), "where originals are, tried in order (comma-separated in the "
                                       "variable): directories, `s3://bucket/prefix`, `http(s)://host/prefix`. "
                                       "See [configuration.md](configuration.md#sources)",
                                       shown="`run`: `samples/`; `serve`: required", flag="--source")
    source_connect_timeout: float = setting(2.0, "seconds to get a connection to S3 or an origin (waiting for a "
                                            "free pooled one included)")
    source_first_byte_timeout: float = setting(5.0, "seconds for the answer to start, and for every read while "
                                               "the body streams; for a directory, for opening the file and "
                                               "for every read of it")
    source_body_timeout: float = setting(20.0, "seconds for the whole body; for a directory, for reading the "
                                         "whole file")
    source_retries: int = setting(0, "extra tries of a source that *failed* (refused, reset, 5xx), never of one "
                                  "that timed out; within the deadline. Off unless set")
    source_pool_size: int = setting(16, "connections per S3 or HTTP source; threads per directory source")
    source_down_after: int = setting(5, "consecutive failures or timeouts that mark a source down")
    source_down_seconds: float = setting(10.0, "how long a down source is skipped before one request probes it "
                                         "again")
    s3_addressing_style: str = setting("auto", "`path` (`endpoint/bucket/key`, usual for MinIO and Ceph), "
                                       "`virtual` (`bucket.endpoint/key`) or `auto` (botocore decides)")

    @property
    def specs(self) -> tuple[SourceSpec, ...]:
        """`sources`, parsed (they were validated when the config was loaded)."""
        return tuple(parse_source(source) for source in self.sources)

    def check(self, where: Where) -> None:
        positive(self, where, *TIMEOUTS, "source_pool_size", "source_down_after")
        for key in TIMEOUTS:
            require(getattr(self, key) <= 3600, where(key), "must be at most 3600 seconds")
        require(self.source_retries >= 0, where("source_retries"), "must be 0 (no retries) or more")
        require(self.s3_addressing_style in ("auto", "path", "virtual"), where("s3_addressing_style"),
                "must be auto, path or virtual")
        names = []
        for source in self.sources:
            try:
                names.append(parse_source(source).name)
            except ValueError as exc:
                raise ConfigError(f"{where('sources')}: {exc}") from None
        require(len(set(names)) == len(names), where("sources"), "the same source is listed twice")
