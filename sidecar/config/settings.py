"""One typed configuration, from defaults < TOML file < `SIDECAR_*` environment < command-line flags.

Every value is checked when the config is built; an error names the key the way the user wrote it
(`max_pixels in sidecar.toml`, `SIDECAR_MAX_PIXELS`, `--listen`). The nginx config is rendered from this
same object (`sidecar.render.nginx`), so the two cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.config.sources import SourceSpec, parse_source
from sidecar.errors import BadRequest
from sidecar.observe.memory import worker_bytes
from sidecar.url.grammar import COMPASS, FORMAT_EXTENSION, MAX_DPR, Ops, hex_rgb
from sidecar.url.limits import Limits, parse_size
from sidecar.url.presets import Preset
from sidecar.url.routes import Route

ENV_PREFIX = "SIDECAR_"
#: Debian's libgs-common ships it: Artifex's SWOP-like CMYK profile, for CMYK JPEGs without a profile.
DEFAULT_CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")
SECRET_KEYS = frozenset({"signing_keys", "purge_token", "resolver_dsn"})  # environment only: secrets stay out of config files
TABLES = frozenset({"presets", "watermarks", "routes"})  # TOML only: no variable can carry a table
SOCKET_INSTANCE = "{instance}"
MAX_SOCKET_PATH = 107  # bytes: Linux's sun_path holds 108, the terminating NUL included


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""



@dataclass(frozen=True)
class Watermark:
    """An image laid over renditions whose URL names it (`wm{name}`, usually through a preset)."""

    image: Path
    position: str = "se"
    opacity: float = 0.5
    #: The watermark's width as a fraction of the rendition's width.
    scale: float = 0.25
    #: Renditions whose width or height is below this many pixels get no watermark.
    min_size: int = 200
    #: Distance from the edges, as a fraction of the rendition's shorter side.
    margin: float = 0.03


@dataclass(frozen=True)
class Config:
    """All settings. See docs/settings.md for each one."""

    sources: tuple[str, ...] = ()
    cache_dir: Path = Path("var/cache")
    socket: Path = Path("var/run/sidecar.sock")
    socket_mode: int = 0o660
    instance: str = ""
    listen: str = "127.0.0.1:8080"
    url_prefix: str = "/img"
    signing_keys: tuple[str, ...] = ()
    allow_unsigned: bool = False
    max_pixels: int = 50_000_000
    max_source_bytes: int = 50 * 1024 * 1024
    max_dimension: int = 8192
    max_animation_pixels: int = 500_000_000
    max_output_pixels: int = 0
    max_url_length: int = 2048
    allowed_sizes: tuple[str, ...] = ()
    presets_only: bool = False
    quality: int = 82
    avif_quality: int = 60
    background: str = "ffffff"
    cmyk_profile: Path = DEFAULT_CMYK_PROFILE
    workers: int = 0
    threads: int = 1
    transform_nice: int = 10
    queue: int = 64
    drain_timeout: int = 20
    memory_budget: int = 2 * 1024**3
    release_memory: bool = True
    cache_max_bytes: int = 10 * 1024**3
    gc_interval: int = 60
    open_file_cache_valid: int = 5
    purge_token: str = ""
    max_age: int = 365 * 24 * 3600
    nginx_workers: str = "auto"
    #: Connection hygiene in the rendered nginx config (docs/security.md, "Connections").
    nginx_worker_connections: int = 0  # 0: sized to the machine's open-file limit
    nginx_limit_conn: int = 128  # requests in progress per client address; 0: no limit
    nginx_client_header_timeout: int = 10
    nginx_client_body_timeout: int = 10
    nginx_reset_timedout_connection: bool = True
    source_connect_timeout: float = 2.0
    source_first_byte_timeout: float = 5.0
    source_body_timeout: float = 20.0
    request_deadline: float = 30.0
    source_retries: int = 0
    source_pool_size: int = 16
    source_down_after: int = 5
    source_down_seconds: float = 10.0
    s3_addressing_style: str = "auto"
    auto_sharpen: bool = True
    fallback_image: Path | None = None
    fallback_max_age: int = 60
    client_hints: bool = False
    client_hints_widths: tuple[int, ...] = (320, 480, 640, 768, 1024, 1280, 1600, 1920)
    client_hints_dprs: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    resolver_dsn: str = ""
    resolver_query: str = ""
    resolver_pool_size: int = 2
    resolver_timeout: float = 1.0
    resolver_ttl: float = 300.0
    resolver_negative_ttl: float = 30.0
    resolver_cache_size: int = 100_000
    resolver_prepared_statements: bool = True
    resolver_watermark: str = ""
    access_log: Path = Path("var/log/access.log")
    metrics_dir: Path = Path("var/run/metrics")
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    presets: Mapping[str, Preset] = field(default_factory=dict)
    watermarks: Mapping[str, Watermark] = field(default_factory=dict)
    routes: Mapping[str, Route] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return bool(self.signing_keys)

    @property
    def limits(self) -> Limits:
        """What URLs this deployment serves (sizes, presets), checked before any work."""
        return Limits.build(self.max_dimension, self.allowed_sizes, self.presets, self.presets_only,
                            max_output_pixels=self.output_pixels)

    @property
    def output_pixels(self) -> int:
        """The most pixels a rendition may have: `max_output_pixels`, or a quarter of `max_pixels` when
        that is 0 (12.5 million by default: 4096×3052; the memory budget of the defaults then holds
        the encoders' worst case, see `sidecar.observe.memory`)."""
        return self.max_output_pixels or self.max_pixels // 4

    @property
    def worker_threads(self) -> int:
        """Transforms at a time in one worker process."""
        return self.threads

    @property
    def worker_slots(self) -> int:
        """Misses a worker works on at once: two per transform thread, so that one can wait for its
        source (a slow or hung one included) while another transforms."""
        return 2 * self.threads

    @property
    def worker_bytes(self) -> int:
        """The most one worker process may hold: its base plus `threads` transforms at the pixel limits."""
        return worker_bytes(self.threads, self.max_pixels, self.max_source_bytes, self.output_pixels)

    @property
    def worker_processes(self) -> int:
        """`workers`, or one per core but never more than `memory_budget` holds."""
        if self.workers:
            return self.workers
        return max(1, min(os.cpu_count() or 1, self.memory_budget // self.worker_bytes))

    @property
    def source_specs(self) -> tuple[SourceSpec, ...]:
        """`sources`, parsed (they were validated when the config was loaded)."""
        return tuple(parse_source(source) for source in self.sources)

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return hex_rgb(self.background)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def load(path: Path | None = None, env: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> Config:
    """Build and validate the config. `flags` are command-line values (None means not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if path is not None:
        _from_toml(path, values, origin)
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and name not in TABLES:
            origin[name] = ENV_PREFIX + name.upper()
            values[name] = _parse_env(name, raw, origin[name])
    for name, value in (flags or {}).items():
        if value is not None:
            origin[name] = "--" + name.replace("_", "-")
            values[name] = _coerce(name, value, origin[name])
    config = Config(**values)
    _validate(config, lambda key: origin.get(key, key))
    socket = Path(str(config.socket).replace(SOCKET_INSTANCE, instance_name(config.instance)))
    # nginx and the sidecar may run from other working directories: pin every path now.
    config = config.replace(cache_dir=config.cache_dir.resolve(), socket=socket.resolve(),
                            access_log=config.access_log.resolve(), metrics_dir=config.metrics_dir.resolve(),
                            sources=tuple(s if "://" in s else os.path.abspath(s) for s in config.sources))
    if len(bytes(config.socket)) > MAX_SOCKET_PATH:
        raise ConfigError(f"{origin.get('socket', 'socket')}: {config.socket} is longer than the "
                          f"{MAX_SOCKET_PATH} bytes a Unix socket path may have")
    return config


def instance_name(raw: str) -> str:
    """A process's name made safe as a file name, for `{instance}` in `socket`.

    Lithos names instances `sandbox/process.N` (`resize-sidecar/sidecar.0`); the slash would make a
    directory, so every character outside letters, digits, `_`, `.` and `-` becomes `_`, and leading
    dots go (no hidden files): `resize-sidecar_sidecar.0`.
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw).lstrip(".")


def to_environ(config: Config) -> dict[str, str]:
    """The config as `SIDECAR_*` variables, as `load` reads them back: every setting but the secrets
    (`SECRET_KEYS`) and the tables (`TABLES`: presets, which only the URL builder uses, watermarks, routes)."""
    environ = {}
    for name in _TYPES:
        value = getattr(config, name)
        if name in SECRET_KEYS or name in TABLES or value is None:  # None: the default, which is no variable
            continue
        if isinstance(value, tuple):
            if any("," in str(item) for item in value):
                raise ConfigError(f"{name}: {value!r} has a comma, which {ENV_PREFIX}{name.upper()} cannot carry")
            text = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif name == "socket_mode":
            text = f"{value:04o}"
        else:
            text = str(value)
        environ[ENV_PREFIX + name.upper()] = text
    return environ


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_TYPES = typing.get_type_hints(Config)


def _from_toml(path: Path, values: dict[str, Any], origin: dict[str, str]) -> None:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    base = path.resolve().parent
    for name, raw in data.items():
        where = f"{name} in {path}"
        if name in SECRET_KEYS:
            raise ConfigError(f"{where}: set {ENV_PREFIX}{name.upper()} in the environment instead")
        if name not in _FIELDS:
            raise ConfigError(f"{where}: unknown setting")
        origin[name] = where
        values[name] = _coerce(name, raw, where)
        if isinstance(values[name], Path) and not values[name].is_absolute():
            values[name] = base / values[name]  # relative to the file, not to wherever the command runs
        if name == "watermarks":
            values[name] = {wm: dataclasses.replace(spec, image=base / spec.image)
                            for wm, spec in values[name].items()}
        if name == "presets":
            values[name] = {preset: dataclasses.replace(spec, fallback_image=base / spec.fallback_image)
                            if spec.fallback_image is not None else spec for preset, spec in values[name].items()}
        if name == "sources":
            values[name] = tuple(s if "://" in s or os.path.isabs(s) else str(base / s) for s in values[name])


def _kind(name: str) -> Any:
    """The field's type, with `X | None` read as X (None is only ever the default)."""
    kind = _TYPES[name]
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1 else kind


def _parse_env(name: str, raw: str, where: str) -> Any:
    kind = _kind(name)
    if kind in (tuple[str, ...], tuple[int, ...], tuple[float, ...]):
        parts = tuple(part.strip() for part in raw.split(",") if part.strip())
        return parts if kind == tuple[str, ...] else _coerce(name, [_number(part, where) for part in parts], where)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw, 8) if name == "socket_mode" else int(raw.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected a number of seconds, got {raw!r}") from None
    return _coerce(name, raw, where)


def _number(raw: str, where: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected numbers, got {raw!r}") from None


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _kind(name)
    if name == "presets":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of presets")
        return {preset: _preset(preset, body, where) for preset, body in value.items()}
    if name == "watermarks":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of watermarks")
        return {mark: _watermark(mark, body, where) for mark, body in value.items()}
    if name == "routes":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of routes")
        return {route: _route(route, body, where) for route, body in value.items()}
    if kind == tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return tuple(value)
    if kind in (tuple[int, ...], tuple[float, ...]):
        allowed = (int,) if kind == tuple[int, ...] else (int, float)
        if not isinstance(value, (list, tuple)) or not all(type(v) in allowed for v in value):
            raise ConfigError(f"{where}: expected a list of {'integers' if allowed == (int,) else 'numbers'}")
        return tuple(v if kind == tuple[int, ...] else float(v) for v in value)
    if kind is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{where}: expected a path")
        return Path(value)
    if kind is int and name == "socket_mode" and isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            raise ConfigError(f"{where}: expected an octal mode like '0660', got {value!r}") from None
    if kind is float and type(value) in (int, float):
        return float(value)
    if kind in (int, float, bool, str) and (type(value) is not kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _named_table(section: str, name: str, body: Any, where: str, kind: type) -> str:
    """Check a `[section.name]` table's name and keys against the dataclass `kind`; return its `where`."""
    where = f"{section}.{name} ({where})"
    if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
        raise ConfigError(f"{where}: names are 1-32 of a-z, 0-9, _")
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(body) - {f.name for f in dataclasses.fields(kind)}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    return where


def _preset(name: str, body: Any, where: str) -> Preset:
    where = _named_table("presets", name, body, where, Preset)
    image = body.get("fallback_image")
    if image is not None and not isinstance(image, str):
        raise ConfigError(f"{where}: fallback_image must be a path")
    preset = Preset(**{**body, "fallback_image": None if image is None else Path(image)})
    operations = preset.operations(name)
    try:
        Ops(**{"format": "jpeg", **operations})
    except (BadRequest, TypeError) as exc:
        raise ConfigError(f"{where}: {exc.public if isinstance(exc, BadRequest) else exc}") from None
    return preset


def _watermark(name: str, body: Any, where: str) -> Watermark:
    where = _named_table("watermarks", name, body, where, Watermark)
    if not isinstance(body.get("image"), str):
        raise ConfigError(f"{where}: image (a path) is required")
    mark = Watermark(**{**body, "image": Path(body["image"])})
    numbers = (mark.opacity, mark.scale, mark.margin)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers) \
            or not 0 < mark.opacity <= 1 or not 0 < mark.scale <= 1 or not 0 <= mark.margin < 0.5:
        raise ConfigError(f"{where}: opacity and scale must be in (0, 1], margin in [0, 0.5)")
    if mark.position not in COMPASS:
        raise ConfigError(f"{where}: position must be one of {', '.join(COMPASS)}")
    if type(mark.min_size) is not int or mark.min_size < 1:
        raise ConfigError(f"{where}: min_size must be a positive integer")
    return mark


def is_host_port(value: str) -> bool:
    """`HOST:PORT` as nginx's `listen` and `server` take it: an IPv4 address, [IPv6] or a name."""
    match = re.fullmatch(r"(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[a-z0-9.-]+):(\d{1,5})", value)
    return match is not None and 0 < int(match.group(3)) < 65536


def _route(name: str, body: Any, where: str) -> Route:
    if not isinstance(body, dict):
        raise ConfigError(f"routes.{name} ({where}): expected a table")
    unknown = set(body) - {"pattern", "preset"}
    if unknown:
        raise ConfigError(f"routes.{name} ({where}): unknown keys {sorted(unknown)}")
    if not isinstance(body.get("pattern"), str) or not isinstance(body.get("preset", ""), str):
        raise ConfigError(f"routes.{name} ({where}): pattern (a string) is required; preset is a name")
    try:
        return Route(name, body["pattern"], body.get("preset"))
    except ValueError as exc:
        raise ConfigError(f"routes.{name} ({where}): {exc}") from None


def _validate(config: Config, name: Any) -> None:
    def check(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{name(key)}: {message}")

    for key in ("max_pixels", "max_source_bytes", "max_dimension", "max_animation_pixels", "max_age", "source_connect_timeout",
                "source_first_byte_timeout", "source_body_timeout", "request_deadline", "source_pool_size",
                "source_down_after", "source_down_seconds", "threads", "drain_timeout", "memory_budget"):
        check(getattr(config, key) > 0, key, "must be positive")
    for key in ("source_connect_timeout", "source_first_byte_timeout", "source_body_timeout", "request_deadline",
                "source_down_seconds"):
        check(getattr(config, key) <= 3600, key, "must be at most 3600 seconds")
    check(config.source_retries >= 0, "source_retries", "must be 0 (no retries) or more")
    check(config.s3_addressing_style in ("auto", "path", "virtual"), "s3_addressing_style",
          "must be auto, path or virtual")
    for key in ("resolver_pool_size", "resolver_timeout", "resolver_cache_size"):
        check(getattr(config, key) > 0, key, "must be positive")
    for key in ("resolver_ttl", "resolver_negative_ttl"):
        check(getattr(config, key) >= 0, key, "must be 0 (no caching) or more seconds")
    check(config.resolver_timeout <= 60, "resolver_timeout", "must be at most 60 seconds")
    check(not config.resolver_dsn or "$1" in config.resolver_query, "resolver_query",
          "must be one SQL query taking the ID as $1 (and returning a key column)")
    check(not config.resolver_watermark or config.resolver_watermark in config.watermarks, "resolver_watermark",
          f"no watermark named {config.resolver_watermark!r} in [watermarks]")
    for route_name, route in config.routes.items():
        check(not route.by_id or bool(config.resolver_dsn), "routes",
              f"{route_name}: an {{id}} route needs the resolver (SIDECAR_RESOLVER_DSN)")
        check(not route.pattern.startswith(config.url_prefix + "/"), "routes",
              f"{route_name}: the pattern is inside url_prefix, which canonical URLs own")
        check(route.preset is None or route.preset in config.presets, "routes",
              f"{route_name}: no preset named {route.preset!r} in [presets]")
    for key in ("workers", "queue", "cache_max_bytes", "gc_interval", "open_file_cache_valid", "max_output_pixels",
                "nginx_limit_conn"):
        check(getattr(config, key) >= 0, key, "must be 0 or more")
    mib = 1024 * 1024
    check(config.worker_processes * config.worker_bytes <= config.memory_budget, "memory_budget",
          f"{config.memory_budget // mib} MiB cannot hold {config.worker_processes} worker(s) of "
          f"{config.worker_bytes // mib} MiB each ({config.threads} transform(s) of max_pixels="
          f"{config.max_pixels} and max_output_pixels={config.output_pixels}); raise it, or lower workers, "
          "threads, max_pixels or max_output_pixels")
    check(64 <= config.max_url_length <= 8000, "max_url_length",
          "must be 64 to 8000 (nginx refuses request lines over 8k itself)")
    for size in config.allowed_sizes:
        try:
            width, height = parse_size(size)
        except ValueError as exc:
            check(False, "allowed_sizes", str(exc))
        check(max(width or 0, height or 0) <= config.max_dimension, "allowed_sizes",
              f"{size} is over max_dimension ({config.max_dimension})")
    check(not config.presets_only or bool(config.presets), "presets_only", "needs at least one [presets.NAME]")
    check(not (config.presets_only and config.allowed_sizes), "allowed_sizes",
          "presets_only already fixes the sizes; set one or the other")
    check(not config.purge_token or len(config.purge_token) >= 16, "purge_token", "must be at least 16 characters")
    check(0 <= config.transform_nice <= 19, "transform_nice", "must be 0 to 19")
    check(1 <= config.quality <= 100, "quality", "must be 1 to 100")
    check(1 <= config.avif_quality <= 100, "avif_quality", "must be 1 to 100")
    check(config.cmyk_profile.is_file(), "cmyk_profile",
          f"{config.cmyk_profile} is not a file (Debian: apt-get install libgs-common)")
    check(0 <= config.socket_mode <= 0o777, "socket_mode", "must be a file mode such as 0660")
    check(re.fullmatch(r"[0-9a-fA-F]{6}", config.background) is not None, "background",
          "must be six hex digits, like ffffff")
    check(re.fullmatch(r"(/[a-z0-9_-]+)+", config.url_prefix) is not None, "url_prefix",
          "must look like /img (lowercase segments, no trailing slash)")
    check(config.url_prefix not in ("/metrics", "/healthz", "/readyz", "/_sidecar", "/_rendition"), "url_prefix",
          "is a path the sidecar itself answers")
    for network in config.metrics_allow:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            check(False, "metrics_allow", f"{network!r} is not an address or network (like 10.0.0.0/8)")
    check(is_host_port(config.listen), "listen", "must be HOST:PORT")
    check(SOCKET_INSTANCE not in str(config.socket) or bool(instance_name(config.instance)), "socket",
          f"has {SOCKET_INSTANCE} but no instance name is set ({ENV_PREFIX}INSTANCE)")
    check(config.nginx_workers == "auto" or config.nginx_workers.isdigit(), "nginx_workers",
          "must be auto or a number")
    check(config.nginx_worker_connections == 0 or 64 <= config.nginx_worker_connections <= 1_048_576,
          "nginx_worker_connections", "must be 0 (sized to the machine) or 64 to 1048576")
    for key in ("nginx_client_header_timeout", "nginx_client_body_timeout"):
        check(1 <= getattr(config, key) <= 3600, key, "must be 1 to 3600 seconds")
    check(all(len(k) >= 16 for k in config.signing_keys), "signing_keys",
          "every key must be at least 16 characters")
    names = []
    for source in config.sources:
        try:
            names.append(parse_source(source).name)
        except ValueError as exc:
            check(False, "sources", str(exc))
    check(len(set(names)) == len(names), "sources", "the same source is listed twice")
    check(config.fallback_max_age >= 0, "fallback_max_age", "must be 0 or more")
    check(config.fallback_image is None or config.fallback_image.is_file(), "fallback_image",
          f"{config.fallback_image} is not a file")
    widths, dprs = config.client_hints_widths, config.client_hints_dprs
    check(0 < len(widths) <= 16 and list(widths) == sorted(set(widths))
          and all(1 <= w <= config.max_dimension for w in widths), "client_hints_widths",
          f"must be 1 to 16 increasing widths from 1 to max_dimension ({config.max_dimension})")
    check(0 < len(dprs) <= 8 and dprs[0] == 1 and list(dprs) == sorted(set(dprs))
          and all(1 <= d <= MAX_DPR and abs(d * 10 - round(d * 10)) < 1e-6 for d in dprs),
          "client_hints_dprs", f"must be 1 to 8 increasing ratios, the first 1 (no hint), up to {MAX_DPR} in steps of 0.1")
    for preset_name, preset in config.presets.items():
        check(preset.format is None or preset.format in FORMAT_EXTENSION, "presets",
              f"{preset_name}: unknown format")
        check(preset.watermark is None or preset.watermark in config.watermarks, "presets",
              f"{preset_name}: no watermark named {preset.watermark!r} in [watermarks]")
        check(preset.fallback_image is None or preset.fallback_image.is_file(), "presets",
              f"{preset_name}: fallback_image {preset.fallback_image} is not a file")
        check(not preset.client_hints or config.client_hints, "presets",
              f"{preset_name}: client_hints needs client_hints = true")
    for mark_name, mark in config.watermarks.items():
        check(mark.image.is_file(), "watermarks", f"{mark_name}: {mark.image} is not a file")
