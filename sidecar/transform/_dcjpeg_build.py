"""Builds `sidecar.transform._dcjpeg` (the C decoder of `dcjpeg_decoder.c`) with cffi, in API mode.

setup.py runs this through `cffi_modules`; `python sidecar/transform/_dcjpeg_build.py DIR` builds a
copy into DIR with whatever CC and CFLAGS say (the fuzzing targets use it for an ASan build).
"""
from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
MODULE = "sidecar.transform._dcjpeg"


def builder(extra_compile_args: tuple[str, ...] = ("-O3",), root: str = ".") -> FFI:
    """The cffi builder; `root` is the project directory (setuptools wants it relative, ".")."""
    ffi = FFI()
    header = (HERE / "dcjpeg_decoder.h").read_text()
    ffi.cdef("\n".join(line for line in header.splitlines() if not line.startswith("#")))
    ffi.set_source(MODULE, '#include "dcjpeg_decoder.h"', sources=[f"{root}/sidecar/transform/dcjpeg_decoder.c"],
                   include_dirs=[f"{root}/sidecar/transform"], extra_compile_args=list(extra_compile_args))
    return ffi


ffibuilder = builder()

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/dcjpeg").resolve()
    print(builder((), root=str(HERE.parent.parent)).compile(tmpdir=str(target)))
