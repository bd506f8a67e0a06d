"""Under load, through the real nginx path: single-flight across workers, a crashed leader, the bounded
queue, deadlines, graceful shutdown and nginx reloads."""
from __future__ import annotations

import os
import signal
import socket as sockets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.support.paths import SAMPLES
from tests.support.processes import wait_for
from tests.support.servers import BlackHole, Origin
from tests.support.stack import HANG, Reply, Stack, Stacks

PHOTO = "redpanda-nikond80-3872x2592.jpg"


def concurrently(stack: Stack, paths: list[str], timeout: float = 60) -> list[tuple[Reply, float]]:
    """Send every path at the same moment (one connection each); (reply, seconds taken) in order."""
    barrier = threading.Barrier(len(paths))

    def one(path: str) -> tuple[Reply, float]:
        barrier.wait()
        started = time.monotonic()
        return stack.get(path, timeout=timeout), time.monotonic() - started

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths))


def test_identical_misses_make_one_fetch_and_one_transform(stack_factory: Stacks, origin: Origin) -> None:
    origin.files["load/" + PHOTO] = (SAMPLES / PHOTO).read_bytes()
    # 200 requests in flight from one address: more than nginx_limit_conn lets one client hold.
    stack = stack_factory([origin.base + "/files/load/"], extra="workers = 2\nnginx_limit_conn = 0\n")
    assert len(stack.worker_pids()) == 2
    fetched = origin.requests["files"]  # the origin counts every GET it answers: none can merge
    path = stack.url(PHOTO, width=640, format="webp")
    results = concurrently(stack, [path] * 200)
    assert [r.status for r, _ in results] == [200] * 200
    assert len({r.body for r, _ in results}) == 1 and results[0][0].image().size == (640, 428)
    assert origin.requests["files"] - fetched == 1, "the original was fetched more than once"
    assert stack.metric("resize_sidecar_renditions_total") == 1
    # Every request that reached the sidecar but the one leader waited for a flight (its worker's) or
    # found the file published (by the other worker); the ones in the leader's own worker joined it.
    reached = len([r for r in stack.sidecar_requests() if r["path"] == path])
    joined = stack.metric("resize_sidecar_singleflight_joined_total")
    elsewhere = stack.metric("resize_sidecar_singleflight_published_elsewhere_total")
    assert joined + elsewhere == reached - 1
    assert joined > 0, "identical misses in one worker did not share its flight"


def held_locks(directory: Path) -> dict[int, int]:
    """inode -> pid of every flock in /proc/locks on files in `directory`."""
    inodes = {os.stat(directory / n).st_ino for n in os.listdir(directory) if n.startswith(".lock-")}
    holders = {}
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and int(fields[5].split(":")[2]) in inodes:
            holders[int(fields[5].split(":")[2])] = int(fields[4])
    return holders


def test_a_crashed_leader_does_not_hold_the_others_past_their_deadline(stack_factory: Stacks) -> None:
    # The deadline outlasts the work on a loaded machine: the others must get the image, not a 504.
    stack = stack_factory([SAMPLES], extra="workers = 2\nrequest_deadline = 300\n")
    path = stack.url(PHOTO, width=1800, format="png")  # a 4 MB PNG: most of a second of work
    directory = stack.cache_file(path).parent
    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(stack.get, path) for _ in range(40)]
        wait_for(lambda: directory.is_dir() and bool(held_locks(directory)), HANG, "a leader's lock")
        leader = next(iter(held_locks(directory).values()))
        os.kill(leader, signal.SIGKILL)
        replies = [f.result() for f in futures]
    # The leader's own requests die with it (nginx answers 502); everyone else gets the image in time.
    statuses = [r.status for r in replies]
    assert set(statuses) <= {200, 502}
    assert statuses.count(200) >= 1
    assert all(r.image().size == (1800, 1205) for r in replies if r.status == 200)
    assert (stack.cache_file(path)).is_file()
    # nginx still sends misses to the sidecar (one dead worker must not mark the upstream down)...
    assert stack.get(stack.url(PHOTO, width=123)).status == 200
    # ...and the supervisor replaced the dead worker.
    wait_for(lambda: len(stack.worker_pids()) == 2 and leader not in stack.worker_pids(), HANG, "a new worker")
    assert stack.metric("resize_sidecar_worker_restarts_total") == 1


def test_a_full_queue_answers_503_with_retry_after_at_once(stack_factory: Stacks, black_hole: BlackHole) -> None:
    # A source that never answers holds every admitted miss for its whole timeout: two at work (one slot
    # per fetch, two per transform thread), one queued, and the rest must be refused before any of those ends.
    stack = stack_factory([black_hole.base + "/"], extra="workers = 1\nthreads = 1\nqueue = 1\n"
                          "source_first_byte_timeout = 8\nrequest_deadline = 8\n")
    paths = [stack.url(f"hung-{i}.jpg", width=100) for i in range(6)]  # distinct misses: no shared flight
    results = concurrently(stack, paths)
    held = [seconds for reply, seconds in results if reply.status != 503]
    refused = [(reply, seconds) for reply, seconds in results if reply.status == 503]
    assert len(held) == 3 and len(refused) == 3, [r.status for r, _ in results]
    for reply, seconds in refused:
        assert reply.headers["retry-after"] == "1" and reply.headers["cache-control"] == "no-store"
        assert seconds < min(held), "a refusal waited for a slot"
    assert stack.metric("resize_sidecar_errors_total", error="Overloaded", status="503") == 3


def test_a_request_past_its_deadline_gets_504_and_the_work_still_lands(stack_factory: Stacks) -> None:
    # Decoding the 3872x2592 photo and encoding a 2500-wide PNG takes a few times the deadline on an idle
    # machine (the original's read, bounded by the deadline too, takes milliseconds), and a loaded one
    # only takes longer.
    stack = stack_factory([SAMPLES], extra="request_deadline = 0.5\n")
    path = stack.url(PHOTO, width=2500, format="png")
    reply = stack.get(path)
    assert reply.status == 504 and reply.headers["retry-after"] == "1"
    assert b"deadline" in reply.body
    final = stack.cache_file(path)
    wait_for(final.is_file, 240, "the rendition to land after the deadline")  # a hang's bound, not a speed
    assert stack.get(path).status == 200
    assert stack.metric("resize_sidecar_errors_total", error="DeadlineExceeded", status="504") == 1


def test_sigterm_drains_requests_in_flight(stack_factory: Stacks) -> None:
    # A drain that waits as long as the work takes: what is asserted is that nothing is lost, not how fast.
    stack = stack_factory([SAMPLES], extra="workers = 2\ndrain_timeout = 600\nrequest_deadline = 600\n")
    paths = [stack.url(PHOTO, width=1500 + i, format="png") for i in range(4)]
    with ThreadPoolExecutor(len(paths)) as pool:
        futures = [pool.submit(stack.get, path) for path in paths]
        wait_for(lambda: stack.metric("resize_sidecar_requests_in_progress") >= len(paths), HANG,
                 "the requests to arrive")
        assert stack.sidecar is not None
        stack.sidecar.send_signal(signal.SIGTERM)
        replies = [f.result() for f in futures]
        code = stack.sidecar.wait(HANG)
    assert [r.status for r in replies] == [200] * len(paths)
    assert all(r.image().size[0] == 1500 + i for i, r in enumerate(replies))
    assert code == 0 and not stack.config.server.socket.exists()
    assert stack.worker_pids() == []


@contextmanager
def steady_load(stack: Stack, clients: int, hit: str | None = None) -> Iterator[list[int]]:
    """Clients sending misses (alternating with `hit`, if given) until the block ends; yields the
    statuses, -1 for a connection that failed."""
    stop = threading.Event()
    statuses: list[int] = []

    def client(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            path = hit if hit and n % 2 else stack.url(PHOTO, width=100 + index * 100 + n)
            try:
                statuses.append(stack.get(path).status)
            except OSError:
                statuses.append(-1)

    with ThreadPoolExecutor(clients) as pool:
        for index in range(clients):
            pool.submit(client, index)
        try:
            yield statuses
        finally:
            stop.set()


def answered_before(statuses: list[int], count: int) -> None:
    """Wait until `count` more requests of a steady load were answered: the next step then happens under
    load on any machine, however slow (a count, not a time)."""
    target = len(statuses) + count
    wait_for(lambda: len(statuses) >= target, 120, f"{count} more answers")


def test_nginx_reload_under_load_loses_nothing(stack_factory: Stacks) -> None:
    stack = stack_factory([SAMPLES], extra="workers = 2\n")
    hit = stack.url(PHOTO, width=100)
    assert stack.get(hit).status == 200
    assert stack.nginx is not None
    with steady_load(stack, 8, hit) as statuses:
        for _ in range(3):
            answered_before(statuses, 5)
            stack.nginx.send_signal(signal.SIGHUP)  # nginx -s reload
        answered_before(statuses, 5)
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def test_restart_on_a_socket_that_outlives_the_sidecar_loses_nothing(stack_factory: Stacks) -> None:

    stack = stack_factory([SAMPLES], extra="workers = 2\n")
    stack.stop_sidecar()
    # What systemd's socket activation does: the socket stays open while the service restarts.
    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    listener.bind(str(stack.config.server.socket))
    os.chmod(stack.config.server.socket, 0o666)
    listener.listen(1024)
    stack.listen_socket = listener
    try:
        stack.start_sidecar()
        with steady_load(stack, 4) as statuses:
            answered_before(statuses, 5)
            stack.stop_sidecar()  # SIGTERM: drain, exit
            time.sleep(0.5)  # nobody accepts now: nginx's connections wait in the socket's backlog
            stack.start_sidecar()
            answered_before(statuses, 5)
        assert stack.config.server.socket.exists(), "the sidecar removed a socket it did not create"
        assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    finally:
        stack.stop_sidecar()
        listener.close()
