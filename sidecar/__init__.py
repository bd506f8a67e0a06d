"""resize-sidecar: nginx serves renditions from its cache; this sidecar makes the missing ones.

The public Python API is small: `load_config` and `build_url` (for the main application's templates).
"""
from sidecar._version import __version__
from sidecar.builder import build_info_url, build_url
from sidecar.config import Config
from sidecar.config import load as load_config

__all__ = ["Config", "__version__", "build_info_url", "build_url", "load_config"]
