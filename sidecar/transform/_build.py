"""Builds the C modules of the transform with cffi, in API mode: `_dcjpeg` (the DC-scan decoder of
`dcjpeg_decoder.c`, self-contained) and `_jpegrows` (libjpeg-turbo read row by row, `jpegrows.c`).

setup.py runs these through `cffi_modules`; `python sidecar/transform/_build.py DIR [MODULE]` builds a
copy into DIR with whatever CC and CFLAGS say (the fuzzing targets use it for an ASan build).
"""
from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
#: module name -> (C file, header, libraries it links)
MODULES = {
    "_dcjpeg": ("dcjpeg_decoder.c", "dcjpeg_decoder.h", ()),
    "_jpegrows": ("jpegrows.c", "jpegrows.h", ("jpeg",)),
}


def builder(name: str, extra_compile_args: tuple[str, ...] = ("-O3",), root: str = ".") -> FFI:
    """The cffi builder of module `name`; `root` is the project directory (setuptools wants it relative, ".")."""
    source, header, libraries = MODULES[name]
    ffi = FFI()
    declarations = (HERE / header).read_text()
    ffi.cdef("\n".join(line for line in declarations.splitlines() if not line.startswith("#")))
    ffi.set_source(f"sidecar.transform.{name}", f'#include "{header}"',
                   sources=[f"{root}/sidecar/transform/{source}"], include_dirs=[f"{root}/sidecar/transform"],
                   libraries=list(libraries), extra_compile_args=list(extra_compile_args))
    return ffi


dcjpeg = builder("_dcjpeg")
jpegrows = builder("_jpegrows")

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/dcjpeg").resolve()
    name = sys.argv[2] if len(sys.argv) > 2 else "_dcjpeg"
    print(builder(name, (), root=str(HERE.parent.parent)).compile(tmpdir=str(target)))
