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

import numpy as np

__all__ = ["AVX512_CORES", "gemm_add", "openblas_core", "openblas_threads"]

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


def _fortran_operand(m: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(array, trans)`` with ``op(array) == m`` for a Fortran BLAS call, without a copy; None where ``m``
    is neither C- nor Fortran-contiguous (f2py would copy it)."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return None


def gemm_add(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c += a @ b`` for 2-d arrays, in place: BLAS ``gemm`` with ``beta = 1``, no temporary product.

    ``np.matmul`` has no accumulating form, so ``c += a @ b`` holds a second array
    of ``c``'s size; a weight gradient summed over blocks of windows held two copies
    of the gradient that way. Here SciPy's ``?gemm`` (:mod:`scipy.linalg.blas`)
    writes into ``c`` itself when ``c`` is C- or Fortran-contiguous, ``a`` and ``b``
    either too (a transposed operand is read in place: ``trans``), and the dtype is
    float32 or float64; otherwise it is ``c += np.matmul(a, b)``. Returns ``c``.

    >>> import numpy as np
    >>> c = np.ones((2, 2), dtype=np.float32)
    >>> gemm_add(c, np.eye(2, dtype=np.float32), np.full((2, 2), 2, dtype=np.float32))
    array([[3., 3.],
           [3., 3.]], dtype=float32)
    """
    if a.shape[1] == 0 or c.size == 0:
        return c
    dtype = c.dtype
    if dtype not in (np.float32, np.float64) or a.dtype != dtype or b.dtype != dtype:
        c += np.matmul(a, b)
        return c
    # C-contiguous c: compute c^T (Fortran-contiguous) = b^T a^T; Fortran-contiguous c: c = a b
    if c.flags.f_contiguous:
        target, first, second = c, a, b
    elif c.flags.c_contiguous:
        target, first, second = c.T, b.T, a.T
    else:
        c += np.matmul(a, b)
        return c
    fa, fb = _fortran_operand(first), _fortran_operand(second)
    if fa is None or fb is None:
        c += np.matmul(a, b)
        return c
    from scipy.linalg import blas  # SciPy is a core dependency; imported on first use

    fn = blas.sgemm if dtype == np.float32 else blas.dgemm
    r = fn(1.0, fa[0], fb[0], beta=1.0, c=target, trans_a=fa[1], trans_b=fb[1], overwrite_c=True)
    if not np.shares_memory(r, target):  # f2py copied the target after all
        target[...] = r
    return c
