"""Which OpenBLAS kernels NumPy's matrix products run on (read from the loaded library).

OpenBLAS built with ``DYNAMIC_ARCH`` (NumPy's and SciPy's wheels) picks its
kernels for the CPU at load time, unless the environment variable
``OPENBLAS_CORETYPE`` names a core. The choice halves or doubles every GEMM:
on the development machine (AMD Zen 5, AVX-512) a 4096x1024x1024 ``sgemm``
ran at about 420 GFLOP/s on the ``SkylakeX`` (AVX-512) kernels, the ones
OpenBLAS picks there by itself, and at about 230 GFLOP/s with
``OPENBLAS_CORETYPE=Haswell`` (AVX2), which that machine's environment set.
The cost model (:mod:`.plan`) scales its GEMM rate by it, and ``convlab
bench`` prints it beside torch's CPU capability, since torch's oneDNN chooses
its instruction set independently of OpenBLAS.

The core name is what OpenBLAS's own ``openblas_get_corename`` returns (the
function ``threadpoolctl`` reads too); here it is read with :mod:`ctypes` from
the OpenBLAS that NumPy has loaded, so the core needs no other package.
"""

from __future__ import annotations

import ctypes
import functools
import os

__all__ = ["AVX512_CORES", "openblas_core"]

#: OpenBLAS core names whose kernels use 512-bit vectors.
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})

_SYMBOLS = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
            "openblas_get_corename")


@functools.lru_cache(maxsize=1)
def openblas_core() -> str | None:
    """The name of the OpenBLAS core NumPy's BLAS runs on (``'SkylakeX'``, ``'Haswell'``, ...), or None.

    None when NumPy is not linked to OpenBLAS (MKL, Accelerate) or the library
    cannot be read (not Linux, a stripped build).
    """
    import numpy as np  # noqa: F401  (loads the BLAS NumPy was built with)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if "openblas" in line.lower()
                     and len(line.split(None, 5)) == 6}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        for symbol in _SYMBOLS:
            fn = getattr(lib, symbol, None)
            if fn is None:
                continue
            fn.restype = ctypes.c_char_p
            name = fn()
            if name:
                return name.decode("ascii", "replace").strip()
    return None
