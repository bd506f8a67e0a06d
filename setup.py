"""resize-sidecar: on-the-fly image resizing behind nginx."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "sidecar" / "_version.py").read_text()).group(1)

setup(
    name="resize-sidecar",
    version=VERSION,
    description="On-the-fly image resizing: nginx serves the cache, a uvloop sidecar fills it",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[*find_packages(include=["sidecar", "sidecar.*"]), "sidecar.nginx", "sidecar.deploy", "sidecar.samples"],
    # The templates live at the top of the repo (nginx/, deploy/) and ship inside the package.
    package_dir={"sidecar.nginx": "nginx", "sidecar.deploy": "deploy", "sidecar.samples": "samples"},
    package_data={"sidecar.nginx": ["*.conf"], "sidecar.deploy": ["*.in", "sidecar.toml"],
                  "sidecar.samples": ["*.jpg", "*.png", "*.md"],
                  "sidecar.transform": ["dcjpeg_decoder.c", "dcjpeg_decoder.h", "jpegrows.c", "jpegrows.h"]},
    # pillow-simd is deliberately not listed: pip would fetch a wheel or build it without AVX2, and a
    # listed "pillow-simd" cannot stop another package from pulling plain Pillow. See README, "Install".
    install_requires=[line for line in (HERE / "requirements.txt").read_text().splitlines()
                      if line and not line.startswith("#")],
    entry_points={"console_scripts": ["resize-sidecar = sidecar.cli:main"]},
    # The C modules: the DC-scan decoder for progressive JPEGs at 1/8 scale, and libjpeg-turbo read
    # row by row (sidecar/transform/dcjpeg.py and jpegrows.py fall back to Pillow when they are missing).
    cffi_modules=["sidecar/transform/_build.py:dcjpeg", "sidecar/transform/_build.py:jpegrows"],
)
