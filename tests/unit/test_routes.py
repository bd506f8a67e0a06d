"""Routes and the resolver's pure parts: patterns, matching, the id shard, the TTL cache, rows, config errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from sidecar.app.resolver import Resolved, TtlCache, from_row, with_row
from sidecar.builder import build_url, preset_fields
from sidecar.config import ConfigError, load
from sidecar.errors import BadRequest, ResolverUnavailable
from sidecar.url.presets import Preset
from sidecar.url.routes import Route, id_shard, match

LEGACY = Route("legacy", "/{id}_w{w}_h{h}_{name}.{ext}", "product")
THUMBS = Route("thumbs", "/thumbs/{w}x{h}/{key}")


def test_an_old_url_taken_apart() -> None:
    found = match((LEGACY, THUMBS), "/7_w200_h150_test_empty.jpg")
    assert found is not None and found.route is LEGACY
    assert (found.identity, found.width, found.height, found.format) == ("7", 200, 150, "jpeg")
    assert found.link_path == "/_routes/legacy/_7/__/7/7_w200_h150_test_empty.jpg"
    assert found.fields() == {"width": 200, "height": 150, "format": "jpeg"}
    by_key = match((LEGACY, THUMBS), "/thumbs/40x30/products/red%20shoe.jpg")
    assert by_key is not None and by_key.identity == "products/red shoe.jpg" and by_key.format is None
    assert by_key.link_path == "/_routes/thumbs/thumbs/40x30/products/red shoe.jpg"


@pytest.mark.parametrize("path", [
    "/img/3f/a9/x.jpg/w10.jpg",          # not an old shape
    "/7_w0_h150_x.jpg",                  # no zero sizes
    "/7_w200_h150_x.gif",                # not an output format
    "/7_w200_h150_x/y.jpg",              # a name has no slash
    "/a_b_w200_h150_x.jpg",              # an ID has no underscore
    "/thumbs/40x30/.hidden/x.jpg",       # no dot-named segment, as nginx refuses them
    "/thumbs/40x30/a/../b.jpg",
])
def test_paths_that_are_no_route(path: str) -> None:
    assert match((LEGACY, THUMBS), path) is None


def test_a_path_that_is_not_utf8_is_400() -> None:
    with pytest.raises(BadRequest):
        match((LEGACY,), "/7_w1_h1_%ff.jpg")


@pytest.mark.parametrize("image_id, shard", [
    ("7", "_7/__"), ("42", "42/__"), ("123", "23/_1"), ("1234", "34/12"), ("1234567", "67/45"), ("ab-9", "-9/ab"),
])
def test_id_shard_is_the_last_four_characters_last_two_first(image_id: str, shard: str) -> None:
    assert id_shard(image_id) == shard


def test_nginx_regex_captures_only_the_identity() -> None:
    python, nginx = LEGACY.regex(), LEGACY.regex(nginx=True)
    assert nginx.count("(?<") == 1 and "(?<resize_sidecar_route_id>" in nginx
    # Same language: the PCRE spelling differs only in its group syntax.
    as_python = re.sub(r"\(\?<resize_sidecar_route_id>", "(?P<id>", nginx)
    for path in ("/7_w2_h3_x.jpg", "/7_w2_h3_x.gif", "/x7_w2_h3_a_b.c.png", "/_w2_h3_x.jpg"):
        assert bool(re.fullmatch(python, path)) == bool(re.fullmatch(as_python, path))


@pytest.mark.parametrize("pattern, error", [
    ("7_w{w}.jpg", "start with /"),
    ("/_x/{id}.jpg", "start with /"),
    ("/{w}x{h}.jpg", "exactly one of {id} and {key}"),
    ("/{id}/{key}", "exactly one of {id} and {key}"),
    ("/{id}_{size}.jpg", "unknown placeholders"),
    ("/{id}{name}.jpg", "separated"),
    ("/{id}_w{w}_w{w}.jpg", "at most once"),
    ('/{id}".jpg', "between placeholders"),
])
def test_bad_patterns_say_why(pattern: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        Route("r", pattern)


def test_ttl_cache_keeps_answers_for_their_own_time_and_a_bounded_number() -> None:
    now = [0.0]
    cache = TtlCache(2, clock=lambda: now[0])
    cache.put("1", Resolved("a.jpg"), 300)
    cache.put("2", None, 30)  # gone: the shorter negative time
    assert cache.get("1") == (True, Resolved("a.jpg")) and cache.get("2") == (True, None)
    now[0] = 31
    assert cache.get("2") == (False, None) and cache.get("1")[0]
    cache.put("3", None, 30)
    cache.put("4", None, 30)  # a third entry: the oldest goes
    assert cache.get("1") == (False, None) and cache.get("4") == (True, None)


def test_rows_mean_gone_watermark_and_preset() -> None:
    presets = {"banner": Preset(width=900, height=300, fit="fill")}
    assert from_row(None, presets) is None
    assert from_row({"key": None, "watermark": True}, presets) is None
    assert from_row({"key": "a.jpg"}, presets) == Resolved("a.jpg", None, None)
    assert from_row({"key": "a.jpg", "watermark": True, "preset": "banner"}, presets) == \
        Resolved("a.jpg", True, "banner")
    with pytest.raises(ResolverUnavailable):
        from_row({"key": "a.jpg", "preset": "nope"}, presets)
    with pytest.raises(ResolverUnavailable):
        from_row({"key": "../etc/passwd"}, presets)


def test_the_rows_preset_and_watermark_over_the_routes_under_the_urls(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"")
    toml = tmp_path / "c.toml"
    toml.write_text(f'resolver_query = "select key from images where id = $1"\nresolver_watermark = "logo"\n'
                    f'[watermarks.logo]\nimage = "{logo}"\n[presets.wide]\nwidth = 900\nheight = 300\n'
                    f'fit = "fill"\nquality = 70\nwatermark = "logo"\n')
    config = load(toml, env={"SIDECAR_RESOLVER_DSN": "postgresql://db/app"})
    fields = with_row(config, Resolved("a.jpg", False, "wide"), {"fit": "fit", "quality": 90}, {"width": 200})
    assert fields == {"fit": "fill", "gravity": "ce", "quality": 70, "width": 200, "height": 300, "watermark": None}
    assert with_row(config, Resolved("a.jpg", True), {}, {})["watermark"] == "logo"
    assert "watermark" not in with_row(config, Resolved("a.jpg"), {}, {})


def test_a_route_builds_with_presets_that_flip_and_fall_back(tmp_path: Path) -> None:
    """Issue 9's preset fields (flip, fallback_image) reach a route's and a row's URL as they reach a
    preset's: the route layers them as operations, not as builder arguments."""


    Image.new("RGB", (10, 10)).save(tmp_path / "missing.png")
    toml = tmp_path / "c.toml"
    toml.write_text('resolver_query = "select key from images where id = $1"\n'
                    "[presets.card]\nwidth = 300\nheight = 300\nfit = 'fill'\nflip = true\n"
                    "fallback_image = 'missing.png'\n")
    config = load(toml, env={"SIDECAR_RESOLVER_DSN": "postgresql://db/app"})
    by_preset = build_url(config, "a.jpg", preset="card", width=200)
    by_route = build_url(config, "a.jpg", operations={**preset_fields(config, "card"), "width": 200})
    by_row = build_url(config, "a.jpg", operations=with_row(config, Resolved("a.jpg", None, "card"), {},
                                                            {"width": 200}))
    assert by_preset == by_route == by_row and by_route.endswith("/a.jpg/w200-h300-fill-flip-fbcard.jpg")


def test_a_route_is_held_to_the_deployments_limits(tmp_path: Path) -> None:
    """Issue 8's allowed_sizes and presets_only refuse an old URL's rendition as they refuse any other."""

    toml = tmp_path / "c.toml"
    toml.write_text('allowed_sizes = ["200x150"]\n')
    config = load(toml, env={})
    assert build_url(config, "a.jpg", operations={"width": 200, "height": 150})
    with pytest.raises(BadRequest, match="allowed_sizes"):
        build_url(config, "a.jpg", operations={"width": 201, "height": 150})


@pytest.mark.parametrize("toml, env, named", [
    ('[routes.old]\npattern = "/{id}.jpg"\n', {}, "routes"),  # an {id} route without the resolver
    ('[routes.old]\npattern = "/{key}"\npreset = "nope"\n', {}, "routes"),
    ('[routes.old]\npattern = "/img/{key}"\n', {}, "routes"),  # inside url_prefix
    ('[routes.old]\npattern = "/{w}.jpg"\n', {}, "routes.old"),
    ('[routes.old]\npattern = "/{key}"\nfit = "fill"\n', {}, "routes.old"),
    ('resolver_dsn = "postgresql://db/app"\n', {}, "SIDECAR_RESOLVER_DSN"),  # a secret: environment only
    ('resolver_query = "select key from images"\n', {"SIDECAR_RESOLVER_DSN": "postgresql://db"}, "resolver_query"),
    ('resolver_watermark = "nope"\n', {}, "resolver_watermark"),
    ("", {"SIDECAR_RESOLVER_TIMEOUT": "0"}, "SIDECAR_RESOLVER_TIMEOUT"),
    ("", {"SIDECAR_RESOLVER_NEGATIVE_TTL": "-1"}, "SIDECAR_RESOLVER_NEGATIVE_TTL"),
    ("", {"SIDECAR_RESOLVER_POOL_SIZE": "0"}, "SIDECAR_RESOLVER_POOL_SIZE"),
])
def test_resolver_and_route_errors_name_the_key(tmp_path: Path, toml: str, env: dict[str, str], named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load(path, env=env)
