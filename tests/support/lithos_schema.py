"""Lithos's container config, checked the way lithos_check does it (src/container_config.rs, 0.18).

Only what our files use is modelled: the keys Lithos knows, the volume tags and their fields, sizes with
units, and which `@{variables}` may appear where. A key Lithos does not know, a volume field it does not
take, or a variable it cannot substitute is an error here as it would be there.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

CONTAINER_KEYS = {
    "kind", "variables", "metadata", "volumes", "user-id", "group-id", "memory-limit", "fileno-limit",
    "cpu-shares", "restart-timeout", "kill-timeout", "executable", "arguments", "environ", "secret-environ",
    "workdir", "resolv-conf", "hosts-file", "uid-map", "gid-map", "stdout-stderr-file", "interactive",
    "restart-process-only", "normal-exit-codes", "tcp-ports",
}
VOLUME_FIELDS = {
    "Persistent": {"path", "mkdir", "mode", "user", "group"},
    "Tmpfs": {"size", "mode"},
    "Statedir": {"path", "mode", "user", "group"},
    "Readonly": None,  # a scalar: the sandbox's path
}
BUILTINS = {"lithos:name", "lithos:config_filename"}
UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


class Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.MappingNode):
        return Tagged(suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Tagged(suffix, loader.construct_sequence(node, deep=True))
    return Tagged(suffix, loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tagged)


def load(text: str) -> Any:
    """YAML with Lithos's (and Verwalter's) `!Tags` kept as `Tagged` values."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def size(value: int | str) -> int:
    """A quire integer with an optional unit: 64Mi, 2Gi, 1000."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)(k|M|G|ki|Mi|Gi)?", value)
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(match.group(1)) * UNITS[match.group(2) or ""]


def check_container(config: dict[str, Any]) -> list[str]:
    """Everything lithos_check would reject in a container config (an empty list when it is fine)."""
    errors = [f"unknown key {key!r}" for key in config if key not in CONTAINER_KEYS]
    if config.get("kind", "Daemon") not in ("Daemon", "Command", "CommandOrDaemon"):
        errors.append(f"kind {config['kind']!r}")
    if not str(config.get("executable", "")).startswith("/"):
        errors.append("executable must be an absolute path")
    if not all(isinstance(a, str) for a in config.get("arguments", [])):
        errors.append("arguments must be strings")
    for key in ("user-id", "group-id", "fileno-limit", "cpu-shares"):
        if key in config and type(config[key]) is not int:
            errors.append(f"{key} must be an integer")
    for key in ("restart-timeout", "kill-timeout"):
        if key in config and not (isinstance(config[key], (int, float)) and 0 <= config[key] <= 86400):
            errors.append(f"{key} must be 0 to 86400 seconds")
    if "memory-limit" in config:
        try:
            size(config["memory-limit"])
        except ValueError as exc:
            errors.append(f"memory-limit: {exc}")
    declared = set(config.get("variables") or {})
    for name, value in (config.get("environ") or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            errors.append(f"environ {name!r}: keys and values must be strings")
            continue
        for var in re.findall(r"@\{([^}]*)\}", value):
            if var == "lithos:pid" and value != "@{lithos:pid}":
                errors.append(f"environ {name}: lithos:pid must be the whole value")
            elif var not in declared and var not in BUILTINS and var != "lithos:pid":
                errors.append(f"environ {name}: unknown variable {var!r}")
    for mount, volume in (config.get("volumes") or {}).items():
        if not str(mount).startswith("/"):
            errors.append(f"volume {mount!r}: the mount point must be absolute")
        if not isinstance(volume, Tagged) or volume.tag not in VOLUME_FIELDS:
            errors.append(f"volume {mount!r}: not one of !{', !'.join(VOLUME_FIELDS)}")
            continue
        fields = VOLUME_FIELDS[volume.tag]
        if fields is None:
            if not str(volume.value).startswith("/"):
                errors.append(f"volume {mount!r}: !Readonly takes a sandbox path")
            continue
        if not isinstance(volume.value, dict):
            errors.append(f"volume {mount!r}: !{volume.tag} takes a mapping")  # no scalar shorthand
            continue
        errors += [f"volume {mount!r}: unknown field {key!r}" for key in volume.value if key not in fields]
        if "size" in volume.value:
            try:
                size(volume.value["size"])
            except ValueError as exc:
                errors.append(f"volume {mount!r}: {exc}")
        if "path" in volume.value and not str(volume.value["path"]).startswith("/"):
            errors.append(f"volume {mount!r}: path must be a sandbox path (absolute)")
    return errors
