"""Sources as plain values: what a `--source` means, the config around it, the circuit breaker."""
from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import load
from sidecar.config.sources import SourceSpec, parse_source
from sidecar.render import nginx as nginx_config
from sidecar.sources.breaker import CircuitBreaker


@pytest.mark.parametrize("text, kind, location, prefix", [
    ("/srv/originals", "local", "/srv/originals", ""),
    ("s3://shop", "s3", "shop", ""),
    ("s3://shop/", "s3", "shop", ""),
    ("s3://shop/media/originals/", "s3", "shop", "media/originals/"),
    ("s3://my.old-bucket/x", "s3", "my.old-bucket", "x/"),
    ("http://origin.internal/images", "http", "http://origin.internal/images/", ""),
    ("https://cdn.example.com:8443/a/b/", "http", "https://cdn.example.com:8443/a/b/", ""),
    ("HTTP://origin", "http", "http://origin/", ""),
])
def test_parse_source(text: str, kind: str, location: str, prefix: str) -> None:
    spec = parse_source(text)
    assert (spec.kind, spec.location, spec.prefix) == (kind, location, prefix)


@pytest.mark.parametrize("text, says", [
    ("ftp://host/x", "a source is a directory"),
    ("s3://", "bucket"),
    ("s3://UPPER/x", "bucket"),
    ("s3://a/x", "bucket"),
    ("s3://bad..name/x", "bucket"),
    ("http:///nohost", "no host"),
    ("http://user:secret@host/x", "credentials"),
    ("http://host/x?y=1", "query"),
    ("http://host:99999/x", "port"),
])
def test_bad_sources_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_source(text)


def test_keys_become_object_keys_and_urls() -> None:
    assert parse_source("s3://shop/media").object_key("a b/c.jpg") == "media/a b/c.jpg"
    assert parse_source("http://o/img").url("a b/ü.jpg") == "http://o/img/a%20b/%C3%BC.jpg"
    assert parse_source("s3://shop/media").name == "s3://shop/media/"


def test_a_spec_is_validated_when_made() -> None:
    with pytest.raises(ValueError):
        SourceSpec("s3", "shop", "/leading")
    with pytest.raises(ValueError):
        SourceSpec("http", "http://no-trailing-slash")


def test_config_takes_source_urls_as_given_and_directories_absolute(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('sources = ["originals", "s3://shop/media", "https://origin/img"]\n')
    config = load(toml, env={})
    assert config.fetch.sources == (str(tmp_path / "originals"), "s3://shop/media", "https://origin/img")
    assert [s.kind for s in config.fetch.specs] == ["local", "s3", "http"]


def test_timeouts_from_toml_and_environment(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("source_connect_timeout = 1\nsource_body_timeout = 2.5\nsource_retries = 2\n")
    config = load(toml, env={"SIDECAR_REQUEST_DEADLINE": "7.5", "SIDECAR_S3_ADDRESSING_STYLE": "path"})
    assert config.fetch.source_connect_timeout == 1.0 and config.fetch.source_body_timeout == 2.5
    assert config.processes.request_deadline == 7.5 and config.fetch.source_retries == 2
    assert config.fetch.s3_addressing_style == "path"
    defaults = load(None, env={})
    assert defaults.fetch.source_retries == 0, "retries must be off unless set"


def test_breaker_marks_down_after_n_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, down_for=10)
    assert not breaker.failed(0) and not breaker.failed(1)
    assert breaker.succeeded() is False  # an answer resets the run
    assert [breaker.failed(t) for t in (2, 3, 4)] == [False, False, True]
    assert breaker.down and not breaker.allow(5) and not breaker.allow(13.9)


def test_breaker_lets_one_probe_through_per_period() -> None:
    breaker = CircuitBreaker(threshold=1, down_for=10)
    assert breaker.failed(0)
    assert breaker.allow(10) and not breaker.allow(10.1), "only one probe at a time"
    assert breaker.failed(10.5) is False  # the probe failed: still down, not marked down again
    assert not breaker.allow(20) and breaker.allow(20.5)
    assert breaker.succeeded() is True  # the probe answered: back up
    assert breaker.allow(20.6) and breaker.allow(20.7)


def test_a_lost_probe_frees_its_slot_after_a_period() -> None:
    breaker = CircuitBreaker(threshold=1, down_for=10)
    breaker.failed(0)
    assert breaker.allow(10)  # this probe's request is cancelled and never reports back
    assert not breaker.allow(19) and breaker.allow(20)


def test_nginx_waits_longer_than_the_sidecar_deadline() -> None:
    # nginx must never give up first: its own 504 would hide the sidecar's reason.
    site = nginx_config.site(load(None, env={"SIDECAR_REQUEST_DEADLINE": "12.5"}))
    assert "proxy_read_timeout 43s;" in site


@pytest.mark.parametrize("threshold, down_for", [(0, 10), (1, 0), (1, -1), (0, 0)])
def test_a_breaker_needs_a_threshold_and_a_period(threshold: int, down_for: float) -> None:
    with pytest.raises(ValueError, match="^threshold must be at least 1 and down_for positive$"):
        CircuitBreaker(threshold, down_for)
    CircuitBreaker(1, 0.001)  # the smallest that works
