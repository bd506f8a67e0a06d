"""The configuration: typed sections, loaded from defaults < TOML < `SIDECAR_*` environment < flags, validated at start.

`Config` is made of frozen sections (`config.server`, `.processes`, `.urls`, `.limits`, `.transform`,
`.fetch`, `.cache`, `.resolver`, `.observability`), each checking itself; `settings.Config.check` adds
what spans sections. Every setting is declared once, as a section's field with its metadata (`fields`),
and `SETTINGS` is read off those fields for loading (`loading`), the environment form and the
settings reference (`docs`). Operators see flat names only.
"""
from sidecar.config.fields import ENV_PREFIX, ConfigError, Setting
from sidecar.config.loading import load, to_environ
from sidecar.config.server import SOCKET_INSTANCE, instance_name, is_host_port
from sidecar.config.settings import SECRET_KEYS, SECTIONS, SETTINGS, TABLES, Config
from sidecar.config.tables import Watermark
from sidecar.config.transform import DEFAULT_CMYK_PROFILE

__all__ = ["DEFAULT_CMYK_PROFILE", "ENV_PREFIX", "SECRET_KEYS", "SECTIONS", "SETTINGS", "SOCKET_INSTANCE", "TABLES",
           "Config", "ConfigError", "Setting", "Watermark", "instance_name", "is_host_port", "load", "to_environ"]
