"""Config: defaults < TOML < environment < flags, and every error names its key."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sidecar.builder import build_url
from sidecar.config import ConfigError, instance_name, load, to_environ


def test_defaults_are_valid_and_paths_absolute() -> None:
    config = load(None, env={})
    assert config.server.listen == "127.0.0.1:8080" and config.limits.max_pixels == 50_000_000
    assert config.cache.cache_dir.is_absolute() and config.server.socket.is_absolute()
    assert not config.urls.signed


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('quality = 70\nmax_pixels = 1000\ncache_dir = "cache"\nsources = ["originals"]\n')
    config = load(toml, env={"SIDECAR_QUALITY": "60"}, flags={"listen": "127.0.0.1:9000", "quality": None})
    assert config.transform.quality == 60 and config.limits.max_pixels == 1000
    assert config.server.listen == "127.0.0.1:9000"
    assert config.cache.cache_dir == tmp_path / "cache"  # relative to the file
    assert config.fetch.sources == (str(tmp_path / "originals"),)


def test_env_lists_bools_and_modes() -> None:
    config = load(None, env={"SIDECAR_SOURCES": "/a, /b", "SIDECAR_ALLOW_UNSIGNED": "yes",
                             "SIDECAR_SOCKET_MODE": "0666", "SIDECAR_SIGNING_KEYS": "k" * 16 + ",old-" + "k" * 16})
    assert config.fetch.sources == ("/a", "/b") and config.urls.allow_unsigned and config.server.socket_mode == 0o666
    assert config.urls.signing_keys == ("k" * 16, "old-" + "k" * 16) and config.urls.signed


@pytest.mark.parametrize("env, named", [
    ({"SIDECAR_MAX_PIXELS": "lots"}, "SIDECAR_MAX_PIXELS"),
    ({"SIDECAR_MAX_PIXELS": "0"}, "SIDECAR_MAX_PIXELS"),
    ({"SIDECAR_QUALITY": "101"}, "SIDECAR_QUALITY"),
    ({"SIDECAR_LISTEN": "8080"}, "SIDECAR_LISTEN"),
    ({"SIDECAR_URL_PREFIX": "img/"}, "SIDECAR_URL_PREFIX"),
    ({"SIDECAR_ALLOW_UNSIGNED": "maybe"}, "SIDECAR_ALLOW_UNSIGNED"),
    ({"SIDECAR_SIGNING_KEYS": "short"}, "SIDECAR_SIGNING_KEYS"),
    ({"SIDECAR_BACKGROUND": "white"}, "SIDECAR_BACKGROUND"),
    ({"SIDECAR_SOURCES": "ftp://x"}, "SIDECAR_SOURCES"),
    ({"SIDECAR_SOURCES": "s3://UPPER"}, "SIDECAR_SOURCES"),
    ({"SIDECAR_SOURCES": "/a,/a"}, "SIDECAR_SOURCES"),
    ({"SIDECAR_SOURCE_CONNECT_TIMEOUT": "soon"}, "SIDECAR_SOURCE_CONNECT_TIMEOUT"),
    ({"SIDECAR_SOURCE_FIRST_BYTE_TIMEOUT": "0"}, "SIDECAR_SOURCE_FIRST_BYTE_TIMEOUT"),
    ({"SIDECAR_REQUEST_DEADLINE": "inf"}, "SIDECAR_REQUEST_DEADLINE"),
    ({"SIDECAR_REQUEST_DEADLINE": "nan"}, "SIDECAR_REQUEST_DEADLINE"),
    ({"SIDECAR_SOURCE_RETRIES": "-1"}, "SIDECAR_SOURCE_RETRIES"),
    ({"SIDECAR_SOURCE_DOWN_AFTER": "0"}, "SIDECAR_SOURCE_DOWN_AFTER"),
    ({"SIDECAR_S3_ADDRESSING_STYLE": "dns"}, "SIDECAR_S3_ADDRESSING_STYLE"),
    ({"SIDECAR_AUTO_SHARPEN": "sometimes"}, "SIDECAR_AUTO_SHARPEN"),
    ({"SIDECAR_FALLBACK_IMAGE": "/no/such.png"}, "SIDECAR_FALLBACK_IMAGE"),
    ({"SIDECAR_FALLBACK_MAX_AGE": "-1"}, "SIDECAR_FALLBACK_MAX_AGE"),
    ({"SIDECAR_CLIENT_HINTS_WIDTHS": "640,320"}, "SIDECAR_CLIENT_HINTS_WIDTHS"),
    ({"SIDECAR_CLIENT_HINTS_WIDTHS": "320,wide"}, "SIDECAR_CLIENT_HINTS_WIDTHS"),
    ({"SIDECAR_CLIENT_HINTS_WIDTHS": "320,9000"}, "SIDECAR_CLIENT_HINTS_WIDTHS"),
    ({"SIDECAR_CLIENT_HINTS_WIDTHS": ""}, "SIDECAR_CLIENT_HINTS_WIDTHS"),
    ({"SIDECAR_CLIENT_HINTS_DPRS": "1,1.25"}, "SIDECAR_CLIENT_HINTS_DPRS"),
    ({"SIDECAR_CLIENT_HINTS_DPRS": "1.5,2"}, "SIDECAR_CLIENT_HINTS_DPRS"),
    ({"SIDECAR_CLIENT_HINTS_DPRS": "1,5"}, "SIDECAR_CLIENT_HINTS_DPRS"),
    ({"SIDECAR_SOCKET": "/run/s/{instance}.sock"}, "SIDECAR_SOCKET"),  # and no SIDECAR_INSTANCE
    ({"SIDECAR_SOCKET": "/run/s/{instance}.sock", "SIDECAR_INSTANCE": "..."}, "SIDECAR_SOCKET"),
    ({"SIDECAR_SOCKET": "/run/" + "s" * 100 + ".sock"}, "SIDECAR_SOCKET"),  # above AF_UNIX's 107 bytes
])
def test_env_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(None, env=env)


@pytest.mark.parametrize("text, named", [
    ("max_pixels = 'x'\n", "max_pixels in"),
    ("no_such_setting = 1\n", "no_such_setting in"),
    ("signing_keys = ['x']\n", "SIDECAR_SIGNING_KEYS"),
    ("[presets.thumb]\nwidth = 0\n", "presets.thumb"),
    ("[presets.thumb]\nwidht = 10\n", "presets.thumb"),
    ("[presets.thumb]\nwidth = 10\nfit = 'fill'\n", "presets.thumb"),
    ("quality = [\n", "config file"),
    ("[watermarks.logo]\nimage = 'missing.png'\n", "watermarks"),
    ("[watermarks.logo]\nposition = 'se'\n", "watermarks.logo"),
    ("[watermarks.logo]\nimage = 'x.png'\nopacity = 2\n", "watermarks.logo"),
    ("[watermarks.logo]\nimage = 'x.png'\nposition = 'top'\n", "watermarks.logo"),
    ("[presets.p]\nwidth = 10\nwatermark = 'nope'\n", "presets"),
    ("[presets.p]\nwidth = 10\ndpr = 9\n", "presets.p"),
    ("avif_quality = 0\n", "avif_quality"),
    ("cmyk_profile = '/no/such.icc'\n", "cmyk_profile"),
    ("source_body_timeout = true\n", "source_body_timeout in"),
    ("fallback_image = 'missing.png'\n", "fallback_image in"),
    ("client_hints_widths = [320, 'x']\n", "client_hints_widths in"),
    ("client_hints_dprs = [1, true]\n", "client_hints_dprs in"),
    ("[presets.p]\nwidth = 10\nfallback_image = 'missing.png'\n", "presets"),
    ("[presets.p]\nwidth = 10\nfallback_image = 3\n", "presets.p"),
    ("[presets.p]\nwidth = 10\nrotate = 45\n", "presets.p"),
    ("[presets.p]\nwidth = 10\nbackground = 'white'\n", "presets.p"),
    ("[presets.p]\nwidth = 10\nclient_hints = true\n", "presets"),
    ("[presets.p]\nwidth = 10\nfit = 'pad'\n", "presets.p"),
])
def test_file_errors_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("[", r"\[")):
        load(toml, env={})


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--listen"):
        load(None, env={}, flags={"listen": "nowhere"})


def test_presets(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("[presets.thumb]\nwidth = 200\nheight = 200\nfit = 'fill'\nformat = 'webp'\n")
    preset = load(toml, env={}).urls.presets["thumb"]
    assert (preset.width, preset.height, preset.fit, preset.format) == (200, 200, "fill", "webp")


def test_watermarks_and_new_preset_fields(tmp_path: Path) -> None:
    Image.new("RGBA", (10, 10)).save(tmp_path / "logo.png")
    toml = tmp_path / "s.toml"
    toml.write_text("[watermarks.logo]\nimage = 'logo.png'\nposition = 'ne'\nopacity = 0.3\n"
                    "[presets.hero]\nwidth = 800\ndpr = 2.0\nenlarge = true\nwatermark = 'logo'\nformat = 'auto'\n")
    config = load(toml, env={})
    mark = config.transform.watermarks["logo"]
    assert mark.image == tmp_path / "logo.png" and mark.position == "ne" and mark.opacity == 0.3
    preset = config.urls.presets["hero"]
    assert (preset.dpr, preset.enlarge, preset.watermark, preset.format) == (2.0, True, "logo", "auto")

    assert build_url(config, "a.jpg", preset="hero").endswith("/a.jpg/w800-up-x2-wmlogo.auto")


@pytest.mark.parametrize("lithos_name, file_name", [
    ("resize-sidecar/sidecar.0", "resize-sidecar_sidecar.0"),
    ("a b/c:d.1", "a_b_c_d.1"),
    ("../x", "_x"),
    ("..hidden", "hidden"),
])
def test_instance_names_become_one_safe_file_name(lithos_name: str, file_name: str) -> None:
    assert instance_name(lithos_name) == file_name
    config = load(None, env={"SIDECAR_SOCKET": "/run/s/{instance}.sock", "SIDECAR_INSTANCE": lithos_name})
    assert config.server.socket == Path(f"/run/s/{file_name}.sock")


def test_the_environment_form_of_a_config_loads_back_the_same(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('sources = ["/srv/a", "s3://bucket/prefix"]\nsocket_mode = "0640"\nallow_unsigned = true\n'
                    "request_deadline = 12.5\nquality = 70\nsource_retries = 2\n[presets.p]\nwidth = 10\n")
    config = load(toml, env={"SIDECAR_SIGNING_KEYS": "k" * 16})
    environ = to_environ(config)
    assert "SIDECAR_SIGNING_KEYS" not in environ and "SIDECAR_PRESETS" not in environ  # secrets and tables stay out
    assert environ["SIDECAR_SOCKET_MODE"] == "0640" and environ["SIDECAR_ALLOW_UNSIGNED"] == "true"
    assert load(None, env=environ) == config.replace(signing_keys=(), presets={})
    with pytest.raises(ConfigError, match="comma"):
        to_environ(config.replace(sources=("/srv/a,b",)))


def test_fallbacks_hints_and_restyling_presets(tmp_path: Path) -> None:

    Image.new("RGB", (10, 10)).save(tmp_path / "missing.png")
    toml = tmp_path / "s.toml"
    toml.write_text("fallback_image = 'missing.png'\nclient_hints = true\nclient_hints_widths = [400, 800]\n"
                    "client_hints_dprs = [1, 2]\nauto_sharpen = false\n"
                    "[presets.card]\nwidth = 300\nheight = 300\nfit = 'pad'\nbackground = 'f0f0f0'\n"
                    "client_hints = true\nrotate = 90\nsharpen = 0.5\nfallback_image = 'missing.png'\n")
    config = load(toml, env={})
    assert config.cache.fallback_image == tmp_path / "missing.png"  # relative to the file, like every path
    assert config.urls.presets["card"].fallback_image == tmp_path / "missing.png"
    urls = config.urls
    assert (urls.client_hints, urls.client_hints_widths, urls.client_hints_dprs, config.transform.auto_sharpen) == \
        (True, (400, 800), (1.0, 2.0), False)
    assert build_url(config, "a.jpg", preset="card").endswith("/a.jpg/w300-h300-pad-ch-r90-sh0_5-bgf0f0f0-fbcard.jpg")
    env = load(None, env={"SIDECAR_CLIENT_HINTS_WIDTHS": "100, 200", "SIDECAR_CLIENT_HINTS_DPRS": "1,1.5"})
    assert env.urls.client_hints_widths == (100, 200) and env.urls.client_hints_dprs == (1.0, 1.5)
