"""The whole config: its sections, the checks that span sections, and the settings table read off the
sections' fields (one row per setting: its names, section, type, default, doc line and flags)."""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from sidecar.config.cache import CacheSection
from sidecar.config.fetch import FetchSection
from sidecar.config.fields import Setting, Where, require
from sidecar.config.limits import LimitsSection
from sidecar.config.observability import ObservabilitySection
from sidecar.config.processes import ProcessesSection
from sidecar.config.resolver import ResolverSection
from sidecar.config.server import ServerSection
from sidecar.config.transform import TransformSection
from sidecar.config.urls import UrlsSection
from sidecar.observe.memory import worker_bytes
from sidecar.url.limits import Limits


@dataclass(frozen=True)
class Config:
    """All settings, in sections; docs/settings.md lists them (`python -m sidecar.config.docs`).

    Operators never see the sections: TOML keys and `SIDECAR_*` variables are flat, and each flat name
    belongs to exactly one section (`SETTINGS[name].section`). Code reads `config.limits.max_pixels`.
    """

    server: ServerSection = field(default_factory=ServerSection)
    processes: ProcessesSection = field(default_factory=ProcessesSection)
    urls: UrlsSection = field(default_factory=UrlsSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    transform: TransformSection = field(default_factory=TransformSection)
    fetch: FetchSection = field(default_factory=FetchSection)
    cache: CacheSection = field(default_factory=CacheSection)
    resolver: ResolverSection = field(default_factory=ResolverSection)
    observability: ObservabilitySection = field(default_factory=ObservabilitySection)

    @property
    def worker_bytes(self) -> int:
        """The most one worker process may hold: its base plus `threads` transforms at the pixel limits."""
        return worker_bytes(self.processes.threads, self.limits.max_pixels, self.limits.max_source_bytes,
                            self.limits.output_pixels)

    @property
    def url_limits(self) -> Limits:
        """What URLs this deployment serves (`urls.limits`), with the output-pixel cap of `limits`."""
        return dataclasses.replace(self.urls.limits, max_output_pixels=self.limits.output_pixels)

    @property
    def worker_processes(self) -> int:
        """`workers`, or one per core but never more than `memory_budget` holds."""
        if self.processes.workers:
            return self.processes.workers
        return max(1, min(os.cpu_count() or 1, self.processes.memory_budget // self.worker_bytes))

    def replace(self, **changes: Any) -> Config:
        """A copy with settings changed, named flat as in the TOML file: `config.replace(max_pixels=10**6)`."""
        by_section: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if name not in SETTINGS:
                raise TypeError(f"Config.replace: unknown setting {name!r}")
            by_section.setdefault(SETTINGS[name].section, {})[name] = value
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **values)
                                            for section, values in by_section.items()})

    def check(self, where: Where) -> None:
        """Every section checks itself; then what spans sections. Raises ConfigError naming the key by `where`."""
        for section in SECTIONS:
            getattr(self, section).check(where)
        self._check_across(where)

    def _check_across(self, where: Where) -> None:
        mib = 1024 * 1024
        processes, watermarks = self.processes, self.transform.watermarks
        require(self.worker_processes * self.worker_bytes <= processes.memory_budget, where("memory_budget"),
                f"{processes.memory_budget // mib} MiB cannot hold {self.worker_processes} worker(s) of "
                f"{self.worker_bytes // mib} MiB each ({processes.threads} transform(s) of max_pixels="
                f"{self.limits.max_pixels} and max_output_pixels={self.limits.output_pixels}); raise it, or "
                "lower workers, threads, max_pixels or max_output_pixels")
        for name, preset in self.urls.presets.items():
            require(preset.watermark is None or preset.watermark in watermarks, where("presets"),
                    f"{name}: no watermark named {preset.watermark!r} in [watermarks]")
        for name, route in self.urls.routes.items():
            require(not route.by_id or self.resolver.enabled, where("routes"),
                    f"{name}: an {{id}} route needs the resolver (SIDECAR_RESOLVER_DSN)")
        mark = self.resolver.resolver_watermark
        require(not mark or mark in watermarks, where("resolver_watermark"),
                f"no watermark named {mark!r} in [watermarks]")


def _settings() -> dict[str, Setting]:
    rows: dict[str, Setting] = {}
    for section, kind in typing.get_type_hints(Config).items():
        hints = typing.get_type_hints(kind)
        for f in dataclasses.fields(kind):
            if f.name in rows:
                raise TypeError(f"{f.name} is in two sections: one flat name, one setting")
            rows[f.name] = Setting(f.name, section, _optional_as_plain(hints[f.name]), _default(f), **f.metadata)
    return rows


def _default(f: dataclasses.Field[Any]) -> Any:
    factory = f.default_factory
    return f.default if factory is dataclasses.MISSING else factory()


def _optional_as_plain(kind: Any) -> Any:
    """`X | None` read as X: None is only ever a default, never something a user writes."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1 else kind


#: The section names, in the order their checks run.
SECTIONS = tuple(f.name for f in dataclasses.fields(Config))
#: Every setting, by its flat name (the TOML key).
SETTINGS = _settings()
#: Environment only: secrets stay out of config files.
SECRET_KEYS = frozenset(name for name, row in SETTINGS.items() if row.secret)
#: TOML only: no variable can carry a table.
TABLES = frozenset(name for name, row in SETTINGS.items() if not row.in_environ)
