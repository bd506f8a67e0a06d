"""The settings table: one declaration per setting, from which loading, the environment form, the
suggestions for unknown names and docs/settings.md are derived."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sidecar.cli import parser
from sidecar.config import SECTIONS, SETTINGS, Config, ConfigError, load, to_environ
from sidecar.config.docs import render
from sidecar.config.processes import ProcessesSection
from sidecar.config.server import ServerSection
from tests.support.paths import REPO

DOCS = REPO / "docs" / "settings.md"


def test_docs_settings_md_is_what_the_table_renders() -> None:
    assert DOCS.read_text() == render(), "regenerate it: python -m sidecar.config.docs > docs/settings.md"


def test_every_setting_is_documented_once_in_a_section() -> None:
    assert len(SETTINGS) == 74 and {row.section for row in SETTINGS.values()} == set(SECTIONS)
    for row in SETTINGS.values():
        assert row.doc and not row.doc.endswith("."), row.name
        assert getattr(getattr(Config(), row.section), row.name) == row.default
    text = render()
    assert all(f"`{row.env}`" in text for row in SETTINGS.values() if row.in_environ)


def test_flags_in_the_table_are_the_command_lines() -> None:
    subcommands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    run = {option: action.dest for action in subcommands.choices["run"]._actions for option in action.option_strings}
    flagged = {row.flag: row.name for row in SETTINGS.values() if row.flag}
    assert flagged == {"--source": "sources", "--listen": "listen", "--cache": "cache_dir"}
    assert all(run[flag] == name for flag, name in flagged.items())
    with pytest.raises(ConfigError, match="^--cache: expected a path"):
        load(None, env={}, flags={"cache_dir": ""})


def test_each_section_checks_itself_and_the_config_what_spans_sections() -> None:
    ServerSection().check(str)
    with pytest.raises(ConfigError, match="^--threads: must be positive$"):
        ProcessesSection(threads=0).check(lambda key: f"--{key}")
    processes = ProcessesSection(threads=64)
    processes.check(str)  # fine on its own; too much for the memory budget with the default max_pixels
    with pytest.raises(ConfigError, match="^memory_budget in x.toml: .* worker"):
        Config(processes=processes).check(lambda key: f"{key} in x.toml")


def test_replace_takes_flat_names_and_keeps_the_other_settings() -> None:
    config = Config().replace(max_pixels=10, listen="127.0.0.1:1", sources=("/a",))
    assert (config.limits.max_pixels, config.server.listen, config.fetch.sources) == (10, "127.0.0.1:1", ("/a",))
    assert config.limits.max_source_bytes == Config().limits.max_source_bytes and config.urls == Config().urls
    with pytest.raises(TypeError, match="max_pixel"):
        Config().replace(max_pixel=10)


@pytest.mark.parametrize("text, message", [
    ("max_pixel = 1\n", r"max_pixel in .*: unknown setting \(did you mean max_pixels\?\)"),
    ("s3_adressing_style = 'path'\n", r"unknown setting \(did you mean s3_addressing_style\?\)"),
    ("colour = 'red'\n", r"colour in .*: unknown setting$"),  # nothing near: no guess
    ("[presets.thumb]\nwidht = 10\n", r"presets\.thumb \(.*\): unknown key 'widht' \(did you mean width\?\)"),
    ("[watermarks.logo]\nimage = 'x.png'\nopacty = 0.5\n", r"unknown key 'opacty' \(did you mean opacity\?\)"),
    ("[routes.old]\npatern = '/{key}'\n", r"routes\.old \(.*\): unknown key 'patern' \(did you mean pattern\?\)"),
    ("[preset.thumb]\nwidth = 10\n", r"preset in .*: unknown setting \(did you mean presets\?\)"),
])
def test_unknown_file_keys_suggest_the_nearest(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(toml, env={})


def test_unknown_sidecar_variables_suggest_the_nearest_and_others_are_left_alone() -> None:
    with pytest.raises(ConfigError, match=r"^SIDECAR_MAX_PIXEL: unknown setting \(did you mean SIDECAR_MAX_PIXELS\?\)"):
        load(None, env={"SIDECAR_MAX_PIXEL": "1000"})
    with pytest.raises(ConfigError, match=r"^SIDECAR_SIGNING_KEY: .*did you mean SIDECAR_SIGNING_KEYS\?"):
        load(None, env={"SIDECAR_SIGNING_KEY": "k" * 16})
    with pytest.raises(ConfigError, match=r"^SIDECAR_max_pixels: .*did you mean SIDECAR_MAX_PIXELS\?"):
        load(None, env={"SIDECAR_max_pixels": "1000"})
    # Someone else's variables: the test and bench helpers' own, and ours without the prefix.
    quiet = load(None, env={"SIDECAR_CORPUS": "/x", "SIDECAR_PHOTOS": "/y", "SIDECAR_IMAGE": "shop/sidecar:1",
                            "SIDECAR_BUCKET": "media", "SIDECAR_CACHE": "/c", "MAX_PIXELS": "1", "SIDECAR_": ""})
    assert quiet == load(None, env={})


def test_the_environment_form_covers_every_setting_but_secrets_and_tables() -> None:
    environ = to_environ(load(None, env={}))
    assert set(environ) == {row.env for row in SETTINGS.values()
                            if not row.secret and row.in_environ and row.default is not None}
