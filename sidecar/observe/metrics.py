"""Every count the sidecar keeps, as Prometheus metrics (prometheus-client), in one place.

Several worker processes serve misses, so the metrics use prometheus-client's multiprocess mode: each
process writes its values into its own memory-mapped files in one directory (`metrics_dir`), which the
supervisor empties at start and hands to its workers (`PROMETHEUS_MULTIPROC_DIR`); a scrape, answered
by whichever worker nginx picks, adds up every file. Counters of a worker that died stay in the sum;
the gauges of live work (`livesum`) are dropped with their process (`process_died`). Without a
directory (the `warm` command, unit tests) the values live in this process only.

Hits never reach Python: nginx's hits and misses are counted from its access log by the supervisor
(`sidecar.observe.accesslog`) into the same metrics. Memory and CPU of the supervisor and its workers are read
from /proc at scrape time (`Processes`).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from sidecar.errors import SidecarError
from sidecar.observe.memory import rss_bytes

NAMESPACE = "resize_sidecar"
DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Renditions by how they were made (see `rendition_kind`).
KINDS = ("resize", "watermark", "passthrough", "cascade")
SOURCE_OUTCOMES = ("found", "not_found", "refused", "unavailable", "timeout", "skipped_down")
ROUTES = ("rendition", "admin")
#: Miss latencies: from a cascade's few milliseconds to a deadline's tens of seconds.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Resolver queries: a local database's fraction of a millisecond up to `resolver_timeout`'s limit.
QUERY_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
#: Errno names of failed cache writes worth their own label; anything else is "other".
WRITE_ERRNOS = ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EACCES", "EIO")


def use_directory(path: Path) -> None:
    """Make this process, and every process it starts, keep its metrics in `path`, emptied first."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[DIRECTORY_ENV] = str(path)
    # prometheus-client picks its value storage when it is imported, which may have been before the
    # supervisor knew the directory; the library reads `values.ValueClass` anew for every metric.
    values.ValueClass = values.get_value_class()


def directory() -> str | None:
    return os.environ.get(DIRECTORY_ENV) or None


def process_died(pid: int) -> None:
    """Drop the live gauges (queue, work in progress) of a worker that exited; its counters stay."""
    if directory():
        mark_process_dead(pid)


def rendition_kind(source: str, original: bool, watermarked: bool) -> str:
    """How a rendition was made: from a cached larger rendition, the original's own bytes, or pixels."""
    if source == "cascade":
        return "cascade"
    if original:
        return "passthrough"
    return "watermark" if watermarked else "resize"


def write_failure_reason(exc: BaseException) -> str:
    """The label of a failed cache write: the errno's name when it is one operators act on."""
    name = errno.errorcode.get(getattr(exc, "errno", None) or -1, "")
    return name if name in WRITE_ERRNOS else "other"


class Metrics:
    """The metric objects. One per process; `exposition()` answers a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, list(labels), namespace=NAMESPACE, registry=self.registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = (), mode: str = "livesum") -> Gauge:
            return Gauge(name, doc, list(labels), namespace=NAMESPACE, registry=self.registry,
                         multiprocess_mode=mode)  # type: ignore[arg-type]

        def histogram(name: str, doc: str, labels: Iterable[str] = (),
                      buckets: tuple[float, ...] = SECONDS) -> Histogram:
            return Histogram(name, doc, list(labels), namespace=NAMESPACE, registry=self.registry,
                             buckets=buckets)

        # Requests the sidecar answered (misses and the admin API; not scrapes or health checks).
        self.requests = counter("requests", "Requests answered by the sidecar, by route and status",
                                ("route", "status"))
        self.request_seconds = histogram("request_seconds", "Time to answer a request in the sidecar",
                                         ("route",))
        self.in_progress = gauge("requests_in_progress", "Requests the workers are answering now")
        self.errors = counter("errors", "Error responses, by error class and status", ("error", "status"))
        # The miss path.
        self.renditions = counter("renditions", "Renditions made, by kind", ("kind",))
        self.animations = counter("animations", "Renditions of animated originals: animated (kept whole) or "
                                  "first-frame (over max_animation_pixels)", ("result",))
        self.transform_seconds = histogram("transform_seconds", "Time of one transform (in its thread)",
                                           ("kind",))
        self.bytes_in = counter("transform_input_bytes", "Bytes of originals (or cascade bases) transformed")
        self.bytes_out = counter("transform_output_bytes", "Bytes of renditions made")
        self.queue_depth = gauge("queue_depth", "Misses waiting for a transform slot")
        self.in_flight = gauge("in_flight", "Misses holding a slot (fetching or transforming)")
        self.joined = counter("singleflight_joined", "Requests that waited for an identical miss in their worker")
        self.published_elsewhere = counter(
            "singleflight_published_elsewhere",
            "Misses answered with the file another worker published while they waited for its lock")
        self.cache_writes = counter("cache_writes", "Renditions written to the cache; failed ones were served "
                                    "from memory (reason: errno name)", ("result", "reason"))
        self.memory_released = counter("memory_released", "Transforms after which malloc_trim gave memory back")
        self.fallback_images = counter("fallback_images", "Failed renditions answered with the fallback image "
                                       "(also counted in errors), by status", ("status",))
        self.info_documents = counter("info_documents", "Info JSON documents made from originals")
        # Sources.
        self.source_requests = counter("source_requests", "Fetches from each source, by outcome",
                                       ("source", "outcome"))
        self.source_seconds = histogram("source_request_seconds", "Time of one fetch attempt from a source",
                                        ("source",))
        self.source_bytes = counter("source_bytes", "Bytes of originals fetched, by source", ("source",))
        self.source_retries = counter("source_retries", "Retries of a failed source", ("source",))
        self.source_marked_down = counter("source_marked_down", "Times a source's circuit breaker opened",
                                          ("source",))
        self.source_down = gauge("source_down", "Worker processes that have the source marked down "
                                 "(circuit breaker open)", ("source",))
        # The resolver (image IDs -> originals, from the application's PostgreSQL) and the old URLs' routes.
        self.resolver_queries = counter("resolver_queries", "Queries sent to the database")
        self.resolver_cache_hits = counter("resolver_cache_hits", "Lookups answered without a query of their "
                                           "own: from the TTL cache, or by sharing a query in flight")
        self.resolver_gone = counter("resolver_gone", "Queries that found no image for the ID (404)")
        self.resolver_failures = counter("resolver_failures", "Queries that failed or timed out (503)")
        self.resolver_query_seconds = histogram("resolver_query_seconds", "Time of one query, waiting for a "
                                                "pool connection included", buckets=QUERY_SECONDS)
        self.route_links = counter("route_links", "Links left in the cache for an old URL's route (its next "
                                   "request is a hit)")
        # The supervisor: cache budget, crashes; nginx's hits and misses from its access log.
        self.gc_evicted_files = counter("gc_evicted_files", "Renditions evicted by the cache's size budget")
        self.gc_evicted_bytes = counter("gc_evicted_bytes", "Disk bytes freed by evictions")
        self.gc_stale_removed = counter("gc_stale_removed", "Temporary or lock files left by a crash, removed")
        self.cache_bytes = gauge("cache_bytes", "Disk bytes of renditions at the last collector pass", mode="max")
        self.cache_files = gauge("cache_files", "Renditions on disk at the last collector pass", mode="max")
        self.purged_files = counter("purged_files", "Renditions removed by purges")
        self.worker_restarts = counter("worker_restarts", "Worker processes that died and were started again")
        self.nginx_requests = counter("nginx_requests", "Rendition requests at nginx: hit (served from the "
                                      "cache, never seen by Python), miss (sent to the sidecar) or limited "
                                      "(a miss over its client's miss_rate, answered 429)", ("cache",))
        self.hit_ratio = gauge("hit_ratio", "Hits / (hits + misses) at nginx over the last 5 minutes",
                               mode="max")

    def initialise(self, sources: Iterable[str] = ()) -> None:
        """Create every label set known in advance at zero, so dashboards and alerts see series before
        the first event (a counter that does not exist yet cannot be rated)."""
        for route in ROUTES:
            self.request_seconds.labels(route)
        for kind in KINDS:
            self.renditions.labels(kind)
        for result in ("animated", "first-frame"):
            self.animations.labels(result)
        for error in _error_classes():
            self.errors.labels(error.__name__, str(error.status))
        self.errors.labels("bug", "500")
        self.cache_writes.labels("written", "")
        for source in sources:
            for outcome in SOURCE_OUTCOMES:
                self.source_requests.labels(source, outcome)
            for metric in (self.source_bytes, self.source_retries, self.source_marked_down):
                metric.labels(source)
            self.source_seconds.labels(source)
            self.source_down.labels(source).set(0)

    def count_error(self, exc: SidecarError) -> None:
        """One error answered: by the protocol, or by the handler with the fallback image."""
        self.errors.labels(type(exc).__name__, str(exc.status)).inc()

    def initialise_supervisor(self) -> None:
        for cache in ("hit", "miss", "limited"):
            self.nginx_requests.labels(cache)
        self.worker_restarts.inc(0)

    def exposition(self) -> bytes:
        """The text a scrape gets: every process's values added up. Blocking (reads files)."""
        path = directory()
        if path is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Own(self.registry))
        else:
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path)
        registry.register(Processes())
        return generate_latest(registry)


class _Own:
    """This process's own registry, for a sidecar without a metrics directory."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def _error_classes() -> Iterator[type[SidecarError]]:
    pending = list(SidecarError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        yield cls


class Processes:
    """Memory and CPU of the supervisor and its workers, from /proc, when scraped.

    Workers run with the supervisor as their parent; without a metrics directory there is no supervisor,
    and this process reports itself as one."""

    def collect(self) -> Iterator[Metric]:
        memory = GaugeMetricFamily(f"{NAMESPACE}_resident_memory_bytes", "Resident memory, by process role",
                                   labels=["process"])
        cpu = CounterMetricFamily(f"{NAMESPACE}_cpu_seconds", "CPU time (user and system) since each process "
                                  "started, by process role", labels=["process"])
        workers = GaugeMetricFamily(f"{NAMESPACE}_workers", "Worker processes running")
        supervisor = os.getppid() if directory() else os.getpid()
        pids = worker_pids(supervisor) if directory() else []
        for role, members in (("supervisor", [supervisor]), ("worker", pids)):
            memory.add_metric([role], sum(rss_bytes(pid) for pid in members))
            cpu.add_metric([role], sum(filter(None, map(cpu_seconds, members))))
        workers.add_metric([], len(pids))
        yield from (memory, cpu, workers)


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes (its other children, nginx under `run`, are left out)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{supervisor}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{supervisor}/task/{task}/children") as file:
                children = [int(pid) for pid in file.read().split()]
        except OSError:
            continue
        for pid in children:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    if b"sidecar.server.worker" in file.read():
                        found.append(pid)
            except OSError:
                continue
    return sorted(found)


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None
