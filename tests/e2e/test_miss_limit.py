"""Clients held to their share (issue 16): a per-client limit on misses in nginx, never on hits, 429 with
Retry-After past it, counted in the metrics; shown through real nginx with two loopback clients."""
from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.config import Config, ConfigError, load
from sidecar.render import nginx as nginx_config
from tests.support.paths import SAMPLES
from tests.support.processes import wait_for
from tests.support.stack import Reply, Stack, make_stack

PHOTO = "road-1920x1080.jpg"
GREEDY, OTHER, WARMER = "127.0.0.1", "127.0.0.2", "127.0.0.3"


def get_from(stack: Stack, source: str, path: str, headers: dict[str, str] | None = None) -> Reply:
    """A request from the loopback address `source` (the client nginx sees)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def limited() -> Iterator[Stack]:
    # One miss a minute beyond a burst of 3: nothing refills while the test runs, however slow the misses.
    stack = make_stack([SAMPLES], extra="miss_rate = 0.0167\nmiss_burst = 3\n")
    yield stack
    stack.close()


def test_one_client_past_its_share_gets_429s_while_others_and_hits_get_200(limited: Stack) -> None:
    hit = limited.url(PHOTO, width=90)
    assert get_from(limited, WARMER, hit).status == 200  # now a file in the cache
    greedy = [get_from(limited, GREEDY, limited.url(PHOTO, width=100 + i)) for i in range(10)]
    statuses = [reply.status for reply in greedy]
    # The burst (3) and the one the rate allows at once go through; then only 429s.
    assert statuses == [200] * 4 + [429] * 6, statuses
    refused = [reply for reply in greedy if reply.status == 429]
    assert all(reply.headers.get("retry-after") == "60" for reply in refused)
    assert b"retry later" in refused[0].body and refused[0].headers.get("cache-control") == "no-store"
    # The greedy client's hits still come, from the cache, and so do another client's misses.
    for _ in range(5):
        assert get_from(limited, GREEDY, hit).status == 200
    for i in range(3):
        reply = get_from(limited, OTHER, limited.url(PHOTO, width=300 + i))
        assert reply.status == 200 and reply.image().width == 300 + i
    assert get_from(limited, GREEDY, limited.url(PHOTO, width=400)).status == 429  # still over
    # Counted: nginx's access log marks them, and the supervisor counts them.
    wait_for(lambda: limited.metric("resize_sidecar_nginx_requests_total", cache="limited") >= len(refused) + 1,
             10, "limited requests counted")
    lines = limited.access_log()
    assert sum(1 for line in lines if line["cache"] == "limited" and line["status"] == 429) == len(refused) + 1
    assert all(line["remote_addr"] == GREEDY for line in lines if line["cache"] == "limited")
    paths = [str(r["path"]) for r in limited.sidecar_requests()]
    assert any("w300" in path for path in paths) and not any("w400" in path for path in paths), paths


def test_the_share_comes_back_at_the_configured_rate() -> None:
    stack = make_stack([SAMPLES], extra="miss_rate = 0.5\nmiss_burst = 1\n")
    try:
        widths = iter(range(100, 200))
        statuses = [get_from(stack, OTHER, stack.url(PHOTO, width=next(widths))).status for _ in range(3)]
        while statuses[-1] != 429:  # misses slower than 2 s (a loaded machine) refill as they go
            assert len(statuses) < 20, statuses
            statuses.append(get_from(stack, OTHER, stack.url(PHOTO, width=next(widths))).status)
        refused_at = time.monotonic()
        wait_for(lambda: get_from(stack, OTHER, stack.url(PHOTO, width=next(widths))).status == 200, 5,
                 "a miss allowed again after 1 / miss_rate seconds")
        assert time.monotonic() - refused_at < 5
    finally:
        stack.close()


def test_a_trusted_proxys_forwarded_client_is_the_key() -> None:
    stack = make_stack([SAMPLES], extra=f'miss_rate = 0.5\nmiss_burst = 1\ntrusted_proxies = ["{GREEDY}/32"]\n')
    try:
        def miss(source: str, forwarded: str, width: int) -> int:
            return get_from(stack, source, stack.url(PHOTO, width=width), {"X-Forwarded-For": forwarded}).status

        # Through the proxy: each forwarded client has its own share; what a client claims before the
        # proxy's own entry is ignored.
        assert [miss(GREEDY, "203.0.113.9", 100 + i) for i in range(3)] == [200, 200, 429]
        assert [miss(GREEDY, "6.6.6.6, 198.51.100.7", 110 + i) for i in range(3)] == [200, 200, 429]
        assert miss(GREEDY, "198.51.100.7, 203.0.113.9", 120) == 429
        # Not from the proxy: X-Forwarded-For is the client's own claim and is ignored.
        assert [miss(OTHER, f"192.0.2.{i}", 130 + i) for i in range(3)] == [200, 200, 429]
    finally:
        stack.close()


def test_the_limit_is_off_with_a_zero_rate_and_rendered_as_configured() -> None:
    off = nginx_config.site(Config().replace(miss_rate=0))
    assert "limit_req" not in off.replace("# miss_rate = 0: no per-client limit on misses", "")
    on = nginx_config.site(Config().replace(miss_rate=10, miss_burst=50))
    assert "limit_req_zone $binary_remote_addr zone=resize_sidecar_misses:10m rate=10r/s;" in on
    assert "limit_req zone=resize_sidecar_misses burst=50 nodelay;" in on
    assert "add_header Retry-After 1 always;" in on
    slow = nginx_config.site(Config().replace(miss_rate=0.25))
    assert "rate=15r/m;" in slow and "Retry-After 4 always" in slow
    # Hits never meet the limit: it is only in the sidecar's named location.
    location = on.split("location @resize_sidecar {", 1)[1].split("}", 1)[0]
    assert "limit_req zone" in location and on.count("limit_req zone=") == 1


@pytest.mark.parametrize("extra", ["miss_rate = -1", "miss_rate = 0.001", "miss_burst = -2",
                                   'trusted_proxies = ["not a network"]'])
def test_bad_limit_settings_are_refused(extra: str, tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text(extra + "\n")
    with pytest.raises(ConfigError):
        load(path, env={})
