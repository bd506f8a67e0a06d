"""Sources through the whole nginx path: S3 (moto), an HTTP origin, local disks, and each fault.

Every stack here runs with short timeouts (FAST) so that the faults cost well under a second each. The
tests print `time-to-error` lines (run with `-s` to see them): the measured figures for the report.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.images import small_jpeg
from tests.support.paths import SAMPLES
from tests.support.processes import free_port, wait_for
from tests.support.servers import (
    BUCKET,
    BlackHole,
    MotoS3,
    MotoS3Process,
    Origin,
    s3_env,
    upload,
)
from tests.support.sources import FAST, FIRST_BYTE, fast
from tests.support.stack import HANG, Reply, Stack, Stacks

PHOTO = "road-1920x1080.jpg"


def timed_get(stack: Stack, path: str, what: str) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = stack.get(path)
    elapsed = time.monotonic() - started
    said = reply.headers.get("x-image-source") if reply.status == 200 else reply.body.decode().strip()
    print(f"\ntime-to-error {what}: {elapsed:.3f}s -> {reply.status} {said}")
    return reply, elapsed


def files_under(path: Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


@pytest.fixture(scope="module")
def photo_in_s3(moto_s3: MotoS3) -> MotoS3:
    upload(moto_s3.env, [(f"shop/{PHOTO}", (SAMPLES / PHOTO).read_bytes()),
                         ("shop/red shoe.jpg", small_jpeg()), ("fallback/both.jpg", small_jpeg(90, 60))])
    return moto_s3


def test_s3_original_is_served_through_nginx_and_says_so(stack_factory: Stacks, photo_in_s3: MotoS3) -> None:
    stack = stack_factory([f"s3://{BUCKET}/shop"], env=photo_in_s3.env, extra=FAST)
    path = stack.url(PHOTO, width=300, format="webp")
    miss = stack.get(path)
    assert miss.status == 200, miss
    assert miss.image().size == (300, 169)
    # X-Image-Source comes from the sidecar and must survive nginx's internal redirect.
    assert miss.headers["x-image-source"] == "s3"
    assert miss.headers["content-type"] == "image/webp" and "etag" in miss.headers
    hit = stack.get(path)
    assert hit.status == 200 and hit.body == miss.body
    shoe = stack.get(stack.url("red shoe.jpg", width=80))  # a key that needs percent-encoding
    assert shoe.status == 200 and shoe.image().size == (80, 60)
    assert stack.get(stack.url("not-there.jpg", width=80)).status == 404
    scrape = stack.scrape()
    source = f"s3://{BUCKET}/shop/"
    assert {outcome: scrape.value("resize_sidecar_source_requests_total", source=source, outcome=outcome)
            for outcome in ("found", "not_found", "unavailable", "timeout", "skipped_down")} == {
        "found": 2, "not_found": 1, "unavailable": 0, "timeout": 0, "skipped_down": 0}
    assert scrape.value("resize_sidecar_source_request_seconds_count", source=source) == 3
    assert scrape.value("resize_sidecar_source_bytes_total", source=source) > 0
    stack.stop_sidecar()
    log = stack.log_path.read_text()
    assert "Unclosed" not in log, "a client session or connector was not closed at shutdown"


def test_http_origin_is_served_through_nginx_and_says_so(stack_factory: Stacks, origin: Origin) -> None:
    origin.files["products/a b.jpg"] = small_jpeg()
    stack = stack_factory([origin.base + "/files/"], extra=FAST)
    reply = stack.get(stack.url("products/a b.jpg", width=40))
    assert reply.status == 200 and reply.image().size == (40, 30)
    assert reply.headers["x-image-source"] == "http"
    assert stack.get(stack.url("products/missing.jpg", width=40)).status == 404


@pytest.mark.parametrize("fault", ["removed", "unreadable"])
def test_local_disk_gone_falls_through_to_s3_and_says_so(stack_factory: Stacks, photo_in_s3: MotoS3,
                                                          fault: str) -> None:
    local = stack_factory.directory()
    (local / "both.jpg").write_bytes(small_jpeg(90, 60))
    # Not a timeout test: S3 gets roomy timeouts so a loaded machine cannot turn the fall-through into a 504.
    roomy = fast(source_first_byte_timeout=5.0, source_body_timeout=5.0, request_deadline=10.0)
    stack = stack_factory([local, f"s3://{BUCKET}/fallback"], env=photo_in_s3.env, extra=roomy, drop_dac=True)
    assert stack.get(stack.url("both.jpg", width=30)).headers["x-image-source"] == "local"
    if fault == "removed":
        shutil.rmtree(local)
    else:
        local.chmod(0)
    try:
        reply, elapsed = timed_get(stack, stack.url("both.jpg", width=31), f"local {fault}, S3 has it")
        assert reply.status == 200 and reply.image().size == (31, 21)
        assert reply.headers["x-image-source"] == "s3"
        assert elapsed < 2.5  # the dead local disk cost no timeout (5 s) on the way to S3
        [failure] = stack.sidecar_events("source_failed")
        assert failure["source"] == str(local) and failure["status"] == 502
        # The local source only failed: a key that nowhere exists is then a 502, never a false 404.
        assert stack.get(stack.url("nowhere.jpg", width=31)).status == 502
    finally:
        if local.exists():
            local.chmod(0o755)  # for the stack's own stop (the directory goes with the test's stacks)


def test_s3_stopped_is_a_quick_502_and_then_marked_down(stack_factory: Stacks) -> None:
    s3 = MotoS3Process(free_port())
    upload(s3.env, [("a.jpg", small_jpeg())], bucket="doomed", create=True)
    stack = stack_factory(["s3://doomed"], env=s3.env,
                          extra=fast(source_down_after=2, source_down_seconds=30))
    assert stack.get(stack.url("a.jpg", width=50)).status == 200
    s3.stop()
    for attempt in (1, 2):
        reply, _ = timed_get(stack, stack.url("a.jpg", width=50 + attempt), f"S3 stopped, try {attempt}")
        assert reply.status in (502, 504) and b"source" in reply.body
    # Each failed on the source's own connect or first-byte bound, never on the request's deadline.
    failures = stack.sidecar_events("source_failed")
    assert len(failures) == 2 and not any("deadline" in str(f["error"]) for f in failures), failures
    [down] = stack.sidecar_events("source_down")
    assert down["source"] == "s3://doomed/" and down["failures"] == 2
    # Logged while serving a request: with nginx's id for it, as in nginx's access log.
    assert re.fullmatch(r"[0-9a-f]{32}", str(down["request_id"]))
    reply, _ = timed_get(stack, stack.url("a.jpg", width=60), "S3 marked down")
    assert reply.status == 502
    assert len(stack.sidecar_events("source_failed")) == 2, "a source marked down was asked all the same"
    # The fault shows in the metrics: errors counted, the breaker open in the (one) worker.
    scrape = stack.scrape()
    failed = sum(scrape.value("resize_sidecar_source_requests_total", source="s3://doomed/", outcome=outcome)
                 for outcome in ("unavailable", "timeout"))
    assert failed == 2
    assert scrape.value("resize_sidecar_source_requests_total", source="s3://doomed/", outcome="skipped_down") == 1
    assert scrape.value("resize_sidecar_source_marked_down_total", source="s3://doomed/") == 1
    assert scrape.value("resize_sidecar_source_down", source="s3://doomed/") == 1
    assert scrape.value("resize_sidecar_errors_total", error="SourceUnavailable", status="502") >= 1


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_origin_that_accepts_and_never_answers_is_504_in_the_first_byte_timeout(
        stack_factory: Stacks, black_hole: BlackHole, kind: str) -> None:
    if kind == "http":
        stack = stack_factory([black_hole.base + "/images/"], extra=FAST)
    else:
        stack = stack_factory([f"s3://{BUCKET}"], env=s3_env(black_hole.base), extra=FAST)
    reply, elapsed = timed_get(stack, stack.url("a.jpg", width=50), f"{kind} accepts, never answers")
    assert reply.status == 504 and reply.body == b"source timed out\n"
    assert elapsed > FIRST_BYTE * 0.9  # not before the timeout (a loaded machine only adds to it)
    # The source's first-byte timeout ended it, not the request's deadline (DEADLINE, six times as long).
    [failed] = stack.sidecar_events("source_failed")
    assert failed["status"] == 504 and "deadline" not in str(failed["error"]), failed


@pytest.mark.parametrize("case, settings, status, said", [
    # The cap is reached long before a loaded machine's slow stream could reach the body timeout.
    ("past the size cap", dict(max_source_bytes=65536, source_body_timeout=60.0, request_deadline=90.0), 413,
     "is larger than 65536 bytes"),
    ("past the body timeout", {}, 504, "body not complete after"),
    ("past the request deadline", dict(source_body_timeout=10.0, request_deadline=0.8), 504, "request deadline"),
], ids=["size-cap", "body-timeout", "deadline"])
def test_origin_streaming_slowly(stack_factory: Stacks, origin: Origin, case: str, settings: dict[str, object],
                                 status: int, said: str) -> None:
    # Which bound ended the stream is in the answer or the log, so no clock is read: the 10 s body timeout of
    # the deadline case cannot be what ended it, nor the 3 s deadline the body-timeout case.
    stack = stack_factory([origin.base + "/slow/4096/0.02/"], extra=fast(**settings))
    reply, _ = timed_get(stack, stack.url("a.jpg", width=50), f"slow stream {case}")
    assert reply.status == status, reply
    told = reply.body.decode() + " ".join(str(e["error"]) for e in stack.sidecar_events("source_failed"))
    assert said in told, told
    # Nothing cached; the flight's lock file goes as soon as the flight gives up on the source.
    wait_for(lambda: files_under(stack.config.cache.cache_dir) == [], HANG, "the flight to end")


def test_hung_local_disk_costs_one_request_its_timeout_not_the_loop(stack_factory: Stacks, photo_in_s3: MotoS3) -> None:
    # Opening a FIFO blocks until someone writes to it: a read that hangs like a dead NFS mount.
    local = stack_factory.directory()
    os.mkfifo(local / "both.jpg")
    (local / "fine.jpg").write_bytes(small_jpeg())
    hang = 5.0  # the local source's open timeout: the other request must be answered well inside it
    stack = stack_factory([local, f"s3://{BUCKET}/fallback"], env=photo_in_s3.env,
                          extra=fast(source_first_byte_timeout=hang, request_deadline=2 * hang))
    try:
        with ThreadPoolExecutor(1) as pool:
            hung = pool.submit(timed_get, stack, stack.url("both.jpg", width=32), "local hangs, S3 has it")
            wait_for(lambda: stack.metric("resize_sidecar_requests_in_progress") >= 1, HANG, "the hung request")
            fine = stack.get(stack.url("fine.jpg", width=32))
            assert fine.status == 200 and fine.headers["x-image-source"] == "local"
            assert not hung.done(), "the hung read stalled another request"
            reply, elapsed = hung.result()
        assert reply.status == 200 and reply.headers["x-image-source"] == "s3"
        assert elapsed > hang * 0.9  # the local open was given its whole timeout, then S3 asked
        # The read is still stuck in its thread: SIGTERM must stop the sidecar all the same.
        process = stack.sidecar
        assert process is not None
        stack.stop_sidecar()  # waits stack.HANG at most
        assert process.returncode == 0
        [stuck] = stack.sidecar_events("exit_past_stuck_reads")
        assert stuck["threads"] == 1
    finally:
        with contextlib.suppress(OSError):  # ENXIO once nobody is stuck reading it any more
            os.close(os.open(local / "both.jpg", os.O_WRONLY | os.O_NONBLOCK))  # lets a stuck thread go
        shutil.rmtree(local)


def test_not_found_anywhere_is_404_and_nothing_cached(stack_factory: Stacks, photo_in_s3: MotoS3,
                                                      origin: Origin) -> None:
    stack = stack_factory([SAMPLES, f"s3://{BUCKET}/shop", origin.base + "/files/"], env=photo_in_s3.env,
                          extra=FAST)
    reply, elapsed = timed_get(stack, stack.url("no/such/original.jpg", width=100), "404 in every source")
    assert reply.status == 404
    assert files_under(stack.config.cache.cache_dir) == []
    assert stack.sidecar_events("source_failed") == []


@pytest.mark.parametrize("retries", [0, 2])
def test_no_hidden_retries_and_the_retry_setting(stack_factory: Stacks, origin: Origin, retries: int) -> None:
    # The origin answers every S3 request for this bucket with 503 SlowDown, which botocore's own retry
    # policy would retry: every attempt that reaches it is counted.
    stack = stack_factory(["s3://unavailable"], env=s3_env(origin.base),
                          extra=fast(source_retries=retries))
    before = origin.requests["unavailable"]
    reply = stack.get(stack.url("a.jpg", width=50))
    assert reply.status == 502
    assert origin.requests["unavailable"] - before == 1 + retries


def test_thousand_misses_with_a_source_failing_half_the_time(stack_factory: Stacks, photo_in_s3: MotoS3,
                                                            origin: Origin) -> None:
    # The origin fails every other request (a 500 or a reset connection); S3 backs it up.
    origin.files["both.jpg"] = small_jpeg(90, 60)
    stack = stack_factory([origin.base + "/flaky/", f"s3://{BUCKET}/fallback"], env=photo_in_s3.env,
                          extra=FAST)

    def get(i: int) -> tuple[int, str | None, int]:
        key = "both.jpg" if i % 10 else "missing.jpg"
        reply = stack.get(stack.url(key, width=1 + i % 90, height=1 + i // 90, fit="force"))
        return reply.status, reply.headers.get("x-image-source"), i

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, range(2000, 2100)))  # warm every pool: nginx's, the origin's, S3's
        before = stack.sidecar_fds()
        results = list(pool.map(get, range(1000)))
    after = stack.sidecar_fds()
    print(f"\nfds of the sidecar: {before} before, {after} after 1,000 misses")
    assert after - before <= 8, "file descriptors leak"
    assert {(status, source) for status, source, i in results if i % 10} <= {(200, "http"), (200, "s3")}
    # A missing key is a 404, or a 502 when the flaky origin failed instead of saying "not found".
    assert {status for status, _, i in results if i % 10 == 0} <= {404, 502}
    served = [source for status, source, _ in results if status == 200]
    # About half each; fewer for S3 when aiohttp retries a reset on a reused connection by itself, which
    # happens more when fewer fetches run at once (one worker: two misses at a time).
    assert served.count("http") > 200 and served.count("s3") > 200, (served.count("http"), served.count("s3"))
    assert len(stack.sidecar_requests()) == 1100
