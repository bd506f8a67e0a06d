"""The one place that imports Pillow: checks it is pillow-simd and registers the extra codecs."""
from __future__ import annotations

import importlib.metadata

FIX = (
    "Fix: pip uninstall -y pillow pillow-simd && CC='cc -mavx2' pip install --no-deps pillow-simd "
    "(or run `make install`, which also installs a constraint that keeps plain Pillow out)."
)


class WrongPillow(RuntimeError):
    """PIL is not pillow-simd, or plain Pillow is installed beside it."""


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_simd() -> str:
    """Return pillow-simd's version, or raise WrongPillow saying how to fix the environment."""
    simd, plain = _installed("pillow-simd"), _installed("pillow")
    if plain is not None:
        raise WrongPillow(f"plain Pillow {plain} is installed next to pillow-simd {simd}: it owns PIL/. {FIX}")
    if simd is None:
        raise WrongPillow(f"pillow-simd is not installed. {FIX}")
    import PIL

    if PIL.__version__ != simd or "post" not in PIL.__version__:
        raise WrongPillow(f"PIL {PIL.__version__} is not pillow-simd {simd}. {FIX}")
    return simd
