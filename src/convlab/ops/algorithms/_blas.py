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

__all__ = ["AVX512_CORES", "openblas_core", "openblas_threads"]

#: OpenBLAS core names whose kernels use 512-bit vectors.
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})

@functools.lru_cache(maxsize=1)
def _libraries() -> tuple[ctypes.CDLL, ...]:
    """The OpenBLAS libraries NumPy has loaded (read from ``/proc/self/maps``; empty where unreadable)."""
    import numpy as np  # noqa: F401  (loads the BLAS NumPy was built with)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if "openblas" in line.lower()
                     and len(line.split(None, 5)) == 6}
    except OSError:
        return ()
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL))
        except OSError:
            continue
    return tuple(libraries)


def _function(suffix: str):
    """OpenBLAS's ``openblas_<suffix>`` in any of its symbol spellings, or None."""
    for lib in _libraries():
        for prefix in ("scipy_openblas_", "openblas_"):
            for tail in ("64_", ""):
                fn = getattr(lib, f"{prefix}{suffix}{tail}", None)
                if fn is not None:
                    return fn
    return None


@functools.lru_cache(maxsize=1)
def openblas_core() -> str | None:
    """The name of the OpenBLAS core NumPy's BLAS runs on (``'SkylakeX'``, ``'Haswell'``, ...), or None.

    None when NumPy is not linked to OpenBLAS (MKL, Accelerate) or the library
    cannot be read (not Linux, a stripped build).
    """
    fn = _function("get_corename")
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    name = fn()
    return name.decode("ascii", "replace").strip() if name else None


def openblas_threads() -> int | None:
    """The number of threads NumPy's OpenBLAS runs (``openblas_get_num_threads``, read now), or None."""
    fn = _function("get_num_threads")
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    return int(fn())
