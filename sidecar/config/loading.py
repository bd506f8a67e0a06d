"""Loading: defaults < TOML file < `SIDECAR_*` environment < command-line flags, each value coerced to its
setting's type (`SETTINGS`), the whole config checked, and every error naming the key the way the user
wrote it (`max_pixels in sidecar.toml`, `SIDECAR_MAX_PIXELS`, `--listen`)."""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sidecar.config.fields import ENV_PREFIX, ConfigError, Setting, nearest, suggestion
from sidecar.config.settings import SETTINGS, Config

_LISTS = (tuple[str, ...], tuple[int, ...], tuple[float, ...])
#: How near an unknown `SIDECAR_*` variable must be to a setting to be taken for its typo (SIDECAR_MAX_PIXEL)
#: rather than for someone else's variable (SIDECAR_IMAGE is not a misspelt SIDECAR_MAX_AGE): the environment
#: is shared, the TOML file is not.
TYPO = 0.8


def load(path: Path | None = None, env: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> Config:
    """Build and check the config. `flags` are command-line values by setting name (None: not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if path is not None:
        _from_toml(path, values, origin)
    _from_env(env, values, origin)
    for name, value in (flags or {}).items():
        if value is not None:
            origin[name] = SETTINGS[name].flag or "--" + name.replace("_", "-")
            values[name] = _coerce(SETTINGS[name], value, origin[name])
    config = Config().replace(**values)

    def where(key: str) -> str:
        return origin.get(key, key)

    config.check(where)
    # nginx and the sidecar may run from other working directories: pin every path now.
    return config.replace(socket=config.server.pinned_socket(where), cache_dir=config.cache.cache_dir.resolve(),
                          access_log=config.observability.access_log.resolve(),
                          metrics_dir=config.observability.metrics_dir.resolve(),
                          sources=tuple(s if "://" in s else os.path.abspath(s) for s in config.fetch.sources))


def to_environ(config: Config) -> dict[str, str]:
    """The config as `SIDECAR_*` variables, as `load` reads them back: every setting but the secrets
    and the tables (presets, which only the URL builder uses, watermarks, routes)."""
    environ = {}
    for row in SETTINGS.values():
        value = getattr(getattr(config, row.section), row.name)
        if row.secret or not row.in_environ or value is None:  # None: the default, which is no variable
            continue
        if isinstance(value, tuple):
            if any("," in str(item) for item in value):
                raise ConfigError(f"{row.name}: {value!r} has a comma, which {row.env} cannot carry")
            text = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif row.octal:
            text = f"{value:04o}"
        else:
            text = str(value)
        environ[row.env] = text
    return environ


def _from_toml(path: Path, values: dict[str, Any], origin: dict[str, str]) -> None:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    base = path.resolve().parent
    for name, raw in data.items():
        where = f"{name} in {path}"
        row = SETTINGS.get(name)
        if row is None:
            raise ConfigError(f"{where}: unknown setting{suggestion(name, SETTINGS)}")
        if row.secret:
            raise ConfigError(f"{where}: set {row.env} in the environment instead")
        origin[name] = where
        if row.table is not None:
            values[name] = row.table(raw, where, base)
            continue
        values[name] = value = _coerce(row, raw, where)
        if isinstance(value, Path) and not value.is_absolute():
            values[name] = base / value  # relative to the file, not to wherever the command runs
        if name == "sources":
            values[name] = tuple(s if "://" in s or os.path.isabs(s) else str(base / s) for s in value)


def _from_env(env: Mapping[str, str], values: dict[str, Any], origin: dict[str, str]) -> None:
    ours = [row.name for row in SETTINGS.values() if row.in_environ]
    for variable, raw in env.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        row = SETTINGS.get(variable[len(ENV_PREFIX):].lower())
        if row is None or row.env != variable:
            near = nearest(variable[len(ENV_PREFIX):].lower(), ours, TYPO)
            if near is not None:  # a SIDECAR_ variable far from every setting is someone else's: say nothing
                raise ConfigError(f"{variable}: unknown setting (did you mean {SETTINGS[near].env}?)")
            continue
        if row.in_environ:
            origin[row.name] = variable
            values[row.name] = _parse_env(row, raw, variable)


def _parse_env(row: Setting, raw: str, where: str) -> Any:
    kind = row.kind
    if kind in _LISTS:
        parts = tuple(part.strip() for part in raw.split(",") if part.strip())
        return parts if kind == tuple[str, ...] else _coerce(row, [_number(part, where) for part in parts], where)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw, 8) if row.octal else int(raw.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if kind == int | str:  # a number or a word (`quality`: 82 or auto)
        return int(raw) if raw.strip().isdigit() else raw.strip()
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected a number of seconds, got {raw!r}") from None
    return _coerce(row, raw, where)


def _number(raw: str, where: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected numbers, got {raw!r}") from None


def _coerce(row: Setting, value: Any, where: str) -> Any:
    kind = row.kind
    if kind == tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return tuple(value)
    if kind in _LISTS:
        allowed = (int,) if kind == tuple[int, ...] else (int, float)
        if not isinstance(value, (list, tuple)) or not all(type(v) in allowed for v in value):
            raise ConfigError(f"{where}: expected a list of {'integers' if allowed == (int,) else 'numbers'}")
        return tuple(v if kind == tuple[int, ...] else float(v) for v in value)
    if kind is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{where}: expected a path")
        return Path(value)
    if kind is int and row.octal and isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            raise ConfigError(f"{where}: expected an octal mode like '0660', got {value!r}") from None
    if kind is float and type(value) in (int, float):
        return float(value)
    if kind in (int, float, bool, str) and type(value) is not kind:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value
