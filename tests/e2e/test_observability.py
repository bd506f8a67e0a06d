"""Metrics, health, logs and the dashboard, through the real nginx path: what operators see must be what
happened, across worker processes, and only from the networks allowed to see it."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support.paths import REPO, SAMPLES
from tests.support.processes import readable_tempdir, wait_for
from tests.support.stack import HANG, Stack, Stacks, make_stack

PHOTO = "redpanda-nikond80-3872x2592.jpg"
DASHBOARD = REPO / "dashboards" / "resize-sidecar.json"


@pytest.fixture(scope="module")
def observed() -> Iterator[Stack]:
    """Two workers over a copy of the samples (the readiness test takes the copy away at the end)."""
    with readable_tempdir() as source:
        for name in os.listdir(SAMPLES):
            shutil.copy(SAMPLES / name, source / name)
        stack = make_stack([source], extra="workers = 2\n")
        yield stack
        stack.close()


SIDECAR_COUNTERS = (
    ("resize_sidecar_requests_total", {"route": "rendition"}),
    ("resize_sidecar_renditions_total", {}),
    ("resize_sidecar_source_requests_total", {}),
    ("resize_sidecar_cache_writes_total", {}),
    ("resize_sidecar_transform_seconds_count", {}),
    ("resize_sidecar_transform_input_bytes_total", {}),
    ("resize_sidecar_transform_output_bytes_total", {}),
)


def sidecar_counts(stack: Stack) -> dict[str, float]:
    scrape = stack.scrape()
    return {name: scrape.value(name, **labels) for name, labels in SIDECAR_COUNTERS}


def nginx_counted(stack: Stack, cache: str, at_least: float) -> float:
    """Wait until the supervisor has counted `at_least` nginx requests of `cache` (it reads the log every
    second, and nginx flushes it every second); return the count."""
    wait_for(lambda: stack.metric("resize_sidecar_nginx_requests_total", cache=cache) >= at_least, HANG,
             f"{at_least} {cache}(es) counted from nginx's access log")
    return stack.metric("resize_sidecar_nginx_requests_total", cache=cache)


def settled(stack: Stack) -> tuple[float, float]:
    """(hits, misses) counted, once the count has caught up with every line in nginx's log so far."""
    def caught_up() -> bool:
        lines = [line["cache"] for line in stack.access_log()]
        scrape = stack.scrape()
        return all(scrape.value("resize_sidecar_nginx_requests_total", cache=c) == lines.count(c)
                   for c in ("hit", "miss"))

    wait_for(caught_up, HANG, "the count to catch up with nginx's log")
    return (stack.metric("resize_sidecar_nginx_requests_total", cache="hit"),
            stack.metric("resize_sidecar_nginx_requests_total", cache="miss"))


def test_a_miss_counts_once_and_a_hit_only_at_nginx(observed: Stack) -> None:
    stack = observed
    hits, misses = settled(stack)
    before = sidecar_counts(stack)
    path = stack.url(PHOTO, width=321)
    miss = stack.get(path)
    assert miss.status == 200 and miss.headers["x-image-source"] == "local"
    assert nginx_counted(stack, "miss", misses + 1) == misses + 1
    after_miss = sidecar_counts(stack)
    moved = {name: after_miss[name] - before[name] for name in after_miss}
    assert moved["resize_sidecar_requests_total"] == 1
    assert moved["resize_sidecar_renditions_total"] == 1
    assert moved["resize_sidecar_source_requests_total"] == 1
    assert moved["resize_sidecar_cache_writes_total"] == 1
    assert moved["resize_sidecar_transform_seconds_count"] == 1
    assert moved["resize_sidecar_transform_input_bytes_total"] == (SAMPLES / PHOTO).stat().st_size
    assert moved["resize_sidecar_transform_output_bytes_total"] == len(miss.body)
    scrape = stack.scrape()
    assert scrape.value("resize_sidecar_renditions_total", kind="resize") >= 1
    assert scrape.value("resize_sidecar_request_seconds_count", route="rendition") >= 1
    # The hit: nginx counts it; nothing in the sidecar moves.
    hit = stack.get(path)
    assert hit.status == 200 and hit.body == miss.body
    assert nginx_counted(stack, "hit", hits + 1) == hits + 1
    assert stack.metric("resize_sidecar_nginx_requests_total", cache="miss") == misses + 1
    assert sidecar_counts(stack) == after_miss
    assert not [r for r in stack.sidecar_requests() if r["path"] == path][1:], "the hit reached the sidecar"
    ratio = stack.metric("resize_sidecar_hit_ratio")
    total_hits = stack.metric("resize_sidecar_nginx_requests_total", cache="hit")
    assert ratio == pytest.approx(total_hits / (total_hits + misses + 1))


def test_misses_spread_over_workers_add_up(observed: Stack) -> None:
    stack = observed
    before = sidecar_counts(stack)
    paths = [stack.url(PHOTO, width=200 + i, format="webp") for i in range(16)]
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def client(mine: list[str]) -> None:
        barrier.wait()
        statuses.extend(stack.get(path).status for path in mine)

    threads = [threading.Thread(target=client, args=(paths[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * len(paths)
    served_by = {r["pid"] for r in stack.sidecar_requests() if r["path"] in paths}
    assert len(served_by) == 2, "both workers should have served some of the misses"
    after = sidecar_counts(stack)
    for name in ("resize_sidecar_requests_total", "resize_sidecar_renditions_total",
                 "resize_sidecar_source_requests_total", "resize_sidecar_cache_writes_total",
                 "resize_sidecar_transform_seconds_count"):
        assert after[name] - before[name] == len(paths), name
    assert stack.metric("resize_sidecar_workers") == 2
    assert stack.metric("resize_sidecar_resident_memory_bytes", process="worker") > 20 * 2**20
    assert stack.metric("resize_sidecar_cpu_seconds_total", process="worker") > 0


def test_errors_are_counted_by_class_and_status(observed: Stack) -> None:
    stack = observed
    scrape = stack.scrape()
    forbidden = scrape.value("resize_sidecar_errors_total", error="Forbidden", status="403")
    not_found = scrape.value("resize_sidecar_errors_total", error="NotFound", status="404")
    forged = stack.url(PHOTO, width=50)[:-20] + "AAAAAAAAAAAAAAAA.jpg"  # a wrong signature
    assert stack.get(forged).status == 403
    assert stack.get(stack.url("nowhere.jpg", width=50)).status == 404
    scrape = stack.scrape()
    assert scrape.value("resize_sidecar_errors_total", error="Forbidden", status="403") == forbidden + 1
    assert scrape.value("resize_sidecar_errors_total", error="NotFound", status="404") == not_found + 1
    assert scrape.value("resize_sidecar_requests_total", route="rendition", status="404") >= 1


def test_access_log_lines_share_the_request_id_with_the_sidecars_log(observed: Stack) -> None:
    stack = observed
    path = stack.url(PHOTO, width=123, format="png")
    made = stack.get(path)
    assert made.status == 200 and made.headers["x-image-source"] in ("local", "cascade")
    assert stack.get(path).status == 200
    wait_for(lambda: len([line for line in stack.access_log() if line["uri"] == path]) == 2, HANG,
             "nginx to flush its log")
    miss, hit = [line for line in stack.access_log() if line["uri"] == path]
    assert miss["cache"] == "miss" and hit["cache"] == "hit"
    assert miss["status"] == hit["status"] == 200 and miss["bytes"] == hit["bytes"] > 0
    assert miss["source"] == made.headers["x-image-source"] and hit["source"] == ""
    assert float(miss["upstream_time"]) > 0 and hit["upstream_time"] == ""
    assert isinstance(miss["request_time"], float) and re.fullmatch(r"[0-9a-f]{32}", str(miss["request_id"]))
    [logged] = [r for r in stack.sidecar_requests() if r["path"] == path]
    assert logged["request_id"] == miss["request_id"]
    assert hit["request_id"] == "-"  # a hit reaches no sidecar: no id to join, and none drawn (bench/hits.py)


def test_hits_are_still_counted_after_the_log_is_rotated(observed: Stack) -> None:
    stack = observed
    path = stack.url(PHOTO, width=99)
    assert stack.get(path).status == 200
    hits, _ = settled(stack)
    log = stack.config.observability.access_log
    log.rename(log.with_suffix(".log.1"))  # logrotate's default: rename, then tell nginx to reopen
    assert stack.nginx is not None
    stack.nginx.send_signal(signal.SIGUSR1)
    for _ in range(3):
        assert stack.get(path).status == 200
    assert nginx_counted(stack, "hit", hits + 3) == hits + 3
    wait_for(log.exists, HANG, "nginx to reopen its log")
    log.write_bytes(b"")  # copytruncate's way: the same file, emptied
    assert stack.get(path).status == 200
    assert nginx_counted(stack, "hit", hits + 4) == hits + 4


def test_the_dashboard_parses_and_queries_only_metrics_that_exist(observed: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for wanted in ("hot/cold", "hit ratio", "miss latency", "source latency", "errors", "memory", "cpu"):
        assert wanted in titles, wanted
    queried = {name for expr in exprs for name in re.findall(r"\bresize_sidecar_[a-z0-9_]+", expr)}
    assert len(queried) >= 15
    scraped = observed.scrape().names()
    assert queried - scraped == set()


def test_health_readiness_and_the_health_command(observed: Stack) -> None:
    stack = observed
    alive = stack.get("/healthz")
    assert alive.status == 200 and json.loads(alive.body)["status"] == "alive"
    ready = stack.get("/readyz")
    assert ready.status == 200, ready.body
    report = json.loads(ready.body)
    assert report["ready"] is True and report["cache"] == "ok" and set(report["sources"].values()) == {"ok"}
    toml = str(stack.root / "sidecar.toml")
    command = [sys.executable, "-m", "sidecar", "health", "--config", toml]
    assert subprocess.run(command, env=stack.env, capture_output=True).returncode == 0
    assert subprocess.run([*command, "--ready"], env=stack.env, capture_output=True).returncode == 0
    # The only source goes away: alive, but not ready.
    [source] = stack.config.fetch.sources
    shutil.rmtree(source)
    unready = stack.get("/readyz")
    assert unready.status == 503 and json.loads(unready.body)["sources"][source] != "ok"
    assert stack.get("/healthz").status == 200
    result = subprocess.run([*command, "--ready"], env=stack.env, capture_output=True, text=True)
    assert result.returncode == 1 and "503" in result.stdout
    # And a sidecar that is not running at all.
    stack.stop_sidecar()
    result = subprocess.run(command, env=stack.env, capture_output=True, text=True)
    assert result.returncode == 1 and "no answer" in result.stderr


def test_readiness_says_when_the_cache_is_not_writable(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], drop_dac=True)  # as root, file modes would not stop us otherwise
    assert stack.get("/readyz").status == 200
    cache = stack.config.cache.cache_dir / "img"
    cache.chmod(0o555)
    try:
        reply = stack.get("/readyz")
        assert reply.status == 503 and json.loads(reply.body)["cache"].startswith("not writable")
    finally:
        cache.chmod(0o755)
    assert stack.get("/readyz").status == 200


def get_from(stack: Stack, path: str, source: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=HANG, source_address=(source, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_metrics_and_health_are_refused_outside_the_allowed_networks(stack_factory: Stacks) -> None:
    # A route that takes any path (issue 10's `/{key}`) must not take these past metrics_allow.
    stack = stack_factory([SAMPLES], extra='metrics_allow = ["127.0.0.2"]\n[routes.anything]\npattern = "/{key}"\n')
    for path in ("/metrics", "/healthz", "/readyz"):
        assert get_from(stack, path, "127.0.0.1") == 403, path
        assert get_from(stack, path, "127.0.0.2") == 200, path
    # Renditions are for everyone.
    assert get_from(stack, stack.url(PHOTO, width=64), "127.0.0.1") == 200


# The parts, with plain values.


