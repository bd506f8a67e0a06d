import importlib.metadata

import PIL

from sidecar.transform.pillow import require_simd


def test_pil_is_pillow_simd_alone() -> None:
    assert require_simd() == PIL.__version__
    assert "post" in PIL.__version__
    try:
        importlib.metadata.version("pillow")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise AssertionError("plain Pillow is installed next to pillow-simd")
