"""How a setting is declared: a section's dataclass field carrying its metadata (doc line, flag, secret,
table), so that loading, the environment form and the settings reference all read one declaration."""
from __future__ import annotations

import dataclasses
import difflib
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SIDECAR_"

#: A flat setting name -> how the user wrote it: `max_pixels in sidecar.toml`, `SIDECAR_MAX_PIXELS`, `--listen`.
Where = Callable[[str], str]
#: Parses a TOML table (`[presets.NAME]`, ...): (the table, where it was written, the file's directory).
TableParser = Callable[[Any, str, Path], Any]


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


def setting(default: Any = None, doc: str = "", *, factory: Callable[[], Any] | None = None,
            shown: str | None = None, flag: str | None = None, secret: bool = False, octal: bool = False,
            table: TableParser | None = None) -> Any:
    """A section field that is a setting. `doc` is its line in docs/settings.md; `shown` replaces the
    default there when the value alone would mislead; `flag` is its command-line option; a `secret` is
    read from the environment only; an `octal` integer is spelled in octal (`0660`); a `table` is
    TOML only (`[presets.NAME]`), parsed by the given function."""
    metadata = {"doc": doc, "shown": shown, "flag": flag, "secret": secret, "octal": octal, "table": table}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: a setting's names, type, default and doc, read off its field."""

    name: str
    section: str
    kind: Any  # the field's type, `X | None` read as X (None is only ever the default)
    default: Any
    doc: str
    shown: str | None = None
    flag: str | None = None
    secret: bool = False
    octal: bool = False
    table: TableParser | None = None

    @property
    def env(self) -> str:
        """The variable that sets it: `SIDECAR_` and the name in capitals."""
        return ENV_PREFIX + self.name.upper()

    @property
    def in_environ(self) -> bool:
        """Whether a variable can carry it (tables cannot); secrets only come that way."""
        return self.table is None


def require(ok: bool, where: str, message: str) -> None:
    """Raise ConfigError(`where: message`) unless `ok`."""
    if not ok:
        raise ConfigError(f"{where}: {message}")


def nearest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name nearest to `name`, if one is near enough (difflib's ratio) to be what was meant."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def suggestion(name: str, known: Iterable[str]) -> str:
    """` (did you mean NAME?)` for the nearest known name, or nothing when none is near."""
    near = nearest(name, known)
    return f" (did you mean {near}?)" if near else ""


def positive(section: object, where: Where, *names: str) -> None:
    """Each named field of `section` is above zero."""
    for name in names:
        require(getattr(section, name) > 0, where(name), "must be positive")


def at_least_zero(section: object, where: Where, *names: str) -> None:
    """Each named field of `section` is zero or more."""
    for name in names:
        require(getattr(section, name) >= 0, where(name), "must be 0 or more")


def networks(section: object, where: Where, name: str) -> None:
    """Each entry of the named field is an address or a network (`10.0.0.0/8`)."""
    for network in getattr(section, name):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"{where(name)}: {network!r} is not an address or network (like 10.0.0.0/8)") from None
