"""What a deployment serves (sizes, presets), with plain values, and the config keys that set it."""
from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config as config_module
from sidecar.builder import build_url
from sidecar.config import ConfigError
from sidecar.errors import BadRequest
from sidecar.url.grammar import Ops
from sidecar.url.limits import Limits, parse_size
from sidecar.url.presets import Preset


def test_sizes_parse_with_either_side_optional() -> None:
    assert parse_size("400x300") == (400, 300)
    assert parse_size("400x") == (400, None)
    assert parse_size("x300") == (None, 300)
    for bad in ("x", "400", "0x10", "400X300", "04x3", "-1x2"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_max_dimension_is_checked_on_both_sides() -> None:
    limits = Limits.build(500)
    limits.check(Ops("jpeg", width=500, height=500))
    with pytest.raises(BadRequest, match="500"):
        limits.check(Ops("jpeg", height=501))


def test_output_pixels_are_capped_where_the_url_alone_fixes_them() -> None:
    limits = Limits.build(8192, max_output_pixels=1_000_000)
    for ops in (Ops("avif", width=8192, height=8192),  # fit: a box; the source decides (the pipeline checks)
                Ops("png", width=8192, height=8192, fit="force"),  # never enlarged without up
                Ops("jpeg", width=1000, height=1000, fit="pad"), Ops("jpeg", width=500, height=500, dpr=2, fit="pad")):
        limits.check(ops)
    for ops in (Ops("avif", width=8192, height=8192, fit="pad", background="336699"),  # pad builds its canvas
                Ops("png", width=2000, height=1000, fit="force", enlarge=True),
                Ops("jpeg", width=1000, height=1001, fit="fill", enlarge=True),
                Ops("jpeg", width=800, height=800, dpr=1.5, fit="pad")):  # the DPR counts
        with pytest.raises(BadRequest, match="pixels"):
            limits.check(ops)


def test_output_pixels_default_to_a_quarter_of_max_pixels_and_count_in_the_memory_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path)})
    assert config.limits.output_pixels == config.limits.max_pixels // 4
    assert config.processes.memory_budget // config.worker_bytes == 2, \
        "the defaults still hold two workers in the default budget"
    larger = config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path), "SIDECAR_MAX_OUTPUT_PIXELS": "50000000",
                                     "SIDECAR_WORKERS": "1", "SIDECAR_MEMORY_BUDGET": str(4 * 1024**3)})
    assert larger.worker_bytes > config.worker_bytes + 50_000_000 * 20  # the AVIF encoder's worst case
    with pytest.raises(ConfigError, match="max_output_pixels"):
        config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path), "SIDECAR_MAX_OUTPUT_PIXELS": "50000000",
                                "SIDECAR_WORKERS": "2"})


def test_allowed_sizes_admit_only_the_listed_pairs() -> None:
    limits = Limits.build(8192, ["200x200", "800x", "x300"])
    for ops in (Ops("jpeg", width=200, height=200, fit="fill"), Ops("webp", width=800, dpr=2),
                Ops("jpeg", height=300), Ops("png")):  # no size at all: one per format, no flood
        limits.check(ops)
    for ops in (Ops("jpeg", width=200), Ops("jpeg", width=801), Ops("jpeg", width=800, height=300)):
        with pytest.raises(BadRequest, match="allowed_sizes"):
            limits.check(ops)


PRESETS = {"thumb": Preset(width=200, height=200, fit="fill", format="webp"), "hero": Preset(width=1200)}


def test_presets_only_admits_exactly_a_presets_operations() -> None:
    limits = Limits.build(8192, presets=PRESETS, presets_only=True)
    limits.check(Ops("webp", width=200, height=200, fit="fill"))
    limits.check(Ops("jpeg", width=1200))
    limits.check(Ops("avif", width=1200))  # hero names no format: any
    limits.check(Ops("jpeg", width=1200, expires=99))  # an expiry is not an operation
    for ops in (Ops("jpeg", width=200, height=200, fit="fill"),   # thumb is WebP only
                Ops("webp", width=200, height=200, fit="fill", quality=80),
                Ops("jpeg", width=1201), Ops("jpeg", width=1200, dpr=2), Ops("jpeg")):
        with pytest.raises(BadRequest, match="presets"):
            limits.check(ops)
    Limits.build(8192, presets=PRESETS).check(Ops("jpeg", width=1201))  # off: anything goes


def test_the_builder_refuses_what_the_sidecar_would(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('allowed_sizes = ["200x200", "400x"]\n')
    config = config_module.load(toml, env={"SIDECAR_ALLOW_UNSIGNED": "1"})
    assert build_url(config, "a.jpg", width=400).endswith("/w400.jpg")
    with pytest.raises(BadRequest, match="allowed_sizes"):
        build_url(config, "a.jpg", width=401)
    with pytest.raises(BadRequest, match="signing keys"):
        build_url(config, "a.jpg", width=400, expires=2_000_000_000)


@pytest.mark.parametrize("toml, env, message", [
    ('allowed_sizes = ["200x200", "wide"]\n', {}, "allowed_sizes in .*'wide' is not a size"),
    ('allowed_sizes = ["9000x"]\n', {}, "allowed_sizes in .*over max_dimension"),
    ("presets_only = true\n", {}, "presets_only in .*needs at least one"),
    ('presets_only = true\nallowed_sizes = ["2x"]\n[presets.a]\nwidth = 2\n', {},
     "allowed_sizes in .*one or the other"),
    ("", {"SIDECAR_MAX_URL_LENGTH": "10"}, "SIDECAR_MAX_URL_LENGTH: must be 64 to 8000"),
    ("max_animation_pixels = 0\n", {}, "max_animation_pixels in .*must be positive"),
])
def test_limit_settings_are_validated_by_name(tmp_path: Path, toml: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        config_module.load(path, env=env)


def test_a_preset_is_matched_by_its_own_operations_and_format() -> None:
    presets = {"card": Preset(width=300, height=200, fit="fill", format="webp", quality=70),
               "plain": Preset(width=640)}
    limits = Limits.build(8192, presets=presets, presets_only=True)
    card, plain = limits.presets
    assert card.ops == Ops("webp", width=300, height=200, fit="fill", quality=70) and not card.any_format
    assert plain.ops == Ops("jpeg", width=640) and plain.any_format
    assert card.matches(Ops("webp", width=300, height=200, fit="fill", quality=70))
    assert not card.matches(Ops("avif", width=300, height=200, fit="fill", quality=70))  # its format only
    assert plain.matches(Ops("png", width=640)) and plain.matches(Ops("avif", width=640))
    assert not plain.matches(Ops("png", width=641))
    # A format-free preset with a quality cannot be a lossless format: not a match, not an error.
    lossy = Limits.build(8192, presets={"q": Preset(width=10, quality=50)}, presets_only=True)
    assert not lossy.presets[0].matches(Ops("png", width=10))
    with pytest.raises(BadRequest, match="^only the configured presets are served$"):
        lossy.check(Ops("png", width=10))


def test_limit_errors_say_which_limit() -> None:
    with pytest.raises(BadRequest, match="^width and height are limited to 500$"):
        Limits.build(500).check(Ops("jpeg", width=501))
    with pytest.raises(BadRequest, match="^this width and height are not in allowed_sizes$"):
        Limits.build(8192, ["10x10"]).check(Ops("jpeg", width=11))
    assert Limits.build(8192).allowed_sizes == frozenset() and not Limits.build(8192).presets_only


def test_a_preset_with_a_fallback_image_matches_urls_that_name_it(tmp_path: Path) -> None:
    presets = {"card": Preset(width=200, fallback_image=tmp_path / "missing.png")}
    [card] = Limits.build(8192, presets=presets, presets_only=True).presets
    assert card.ops == Ops("jpeg", width=200, fallback="card")
