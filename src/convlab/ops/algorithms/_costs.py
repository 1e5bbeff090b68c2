"""The machine the cost model describes, and the cost terms every algorithm's estimate is built from.

An algorithm's estimate (its record's ``estimate``, see :mod:`.plan`) adds up

    time = flops / (GEMM rate)  +  bytes moved / (memory bandwidth)  +  NumPy calls * (call overhead)

with the rates of :data:`MACHINE`. Rates are those of float32 and are scaled
per dtype (float64 GEMMs run at half the rate, complex GEMMs count 8 real
flops per multiply-add, integer matmuls do not use BLAS).

:data:`MACHINE` reads the rates in use (:func:`.calibrate.rates`). By default
they are :data:`CONSTANTS`, the rates measured on the development machine
(the GEMM rate scaled where OpenBLAS runs AVX-512 kernels), so that every
process plans every call alike: a resumed training run or a forked worker
computes bit for bit what the original would have. Rates measured on this
machine are used only when asked, per process: ``calibrate.set_rates(None)``
measures them at the next estimate (a few milliseconds) and uses them from
then on; ``calibrate.set_rates(CONSTANTS)`` goes back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._blas import AVX512_CORES, openblas_core

__all__ = ["AVX512_SPEEDUP", "CONSTANTS", "MACHINE", "Machine", "flops_per_mac", "fmt", "gemm_rate", "gemm_seconds",
           "rates", "stream"]


class Machine(NamedTuple):
    """Throughputs of the machine the model describes (float32, all threads)."""

    gemm_flops: float  # flop/s of a large float32 GEMM on OpenBLAS's AVX2 (Haswell) kernels
    stream_bytes: float  # bytes/s read + written by a copy or elementwise pass over a large array
    cache_bytes: float  # bytes/s of an elementwise pass over a block that fits in L2
    fft_flops: float  # flop/s of scipy.fft, counting 5 n log2 n per complex transform of n points
    call_seconds: float  # overhead of one NumPy call in a loop (ufunc on views, copyto, small matmul)
    row_seconds: float  # overhead of one inner loop of a ufunc on a strided view (per contiguous run)


#: Measured on the development machine (see :mod:`.plan`): the rates in use by default, and the fallback of a
#: calibration (:mod:`.calibrate`) whose measurement fails or is implausible.
CONSTANTS = Machine(
    gemm_flops=180e9,
    stream_bytes=25e9,
    cache_bytes=90e9,
    fft_flops=12e9,
    call_seconds=1.5e-6,
    row_seconds=10e-9,
)


class _Rates:
    """The rates in use, attribute by attribute (``MACHINE.gemm_flops``): :func:`rates` at each read."""

    __slots__ = ()

    def __getattr__(self, name: str) -> float:
        return getattr(rates(), name)

    def __repr__(self) -> str:
        return f"<rates in use: {rates()!r}>"


def rates() -> Machine:
    """The rates in use (:func:`.calibrate.rates`): :data:`CONSTANTS` unless other rates or a measurement were asked."""
    from . import calibrate

    return calibrate.rates()


#: The rates the estimates use: :data:`CONSTANTS` or the calibrated ones (:mod:`.calibrate`).
MACHINE = _Rates()

#: How much faster OpenBLAS's AVX-512 kernels ran than its AVX2 ones on the development machine
#: (``sgemm`` 4096x1024x1024: 420 against 230 GFLOP/s; see :mod:`._blas`).
AVX512_SPEEDUP = 1.8


def _blas_speedup() -> float:
    """The constants' GEMM rate was measured on AVX2 kernels: scale it where OpenBLAS runs AVX-512 ones.

    Calibrated rates were measured on the kernels that run: no scaling.
    """
    if rates() is not CONSTANTS:
        return 1.0
    core = openblas_core()
    return AVX512_SPEEDUP if core is not None and core.lower() in AVX512_CORES else 1.0


def gemm_rate(dtype: np.dtype) -> float:
    """Flop/s of a large GEMM in ``dtype`` on the BLAS kernels NumPy runs."""
    if dtype.kind in "iub":
        return 1.5e9  # NumPy's integer matmul is a plain loop, no BLAS
    rate = rates().gemm_flops * _blas_speedup()
    if dtype in (np.float64, np.complex128):
        return rate / 2
    return rate


def flops_per_mac(dtype: np.dtype) -> int:
    return 8 if dtype.kind == "c" else 2


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def stream(nbytes: float) -> float:
    """Seconds to move ``nbytes`` through memory (read + written) at stream bandwidth."""
    return nbytes / MACHINE.stream_bytes


def gemm_seconds(macs: float, k: int, n: int, calls: int, dtype: np.dtype) -> float:
    """GEMMs doing ``macs`` multiply-adds with inner dimension ``k`` and ``n`` columns, in ``calls`` calls.

    Small ``k`` or ``n`` leave the GEMM kernel memory-bound: the efficiency
    ``min(1, k/128) * min(1, n/16)`` (at least 0.1) scales the rate. BLAS first
    packs both operands, ``(m, k)`` (``m k = macs / n``) and each call's ``(k, n)``,
    into panel buffers (Goto & van de Geijn, "Anatomy of high-performance matrix
    multiplication", 2008): each element read and written once, at the cache rate.
    That is a few percent of a square GEMM and most of a skinny one (LeNet's first
    weight gradient as im2col: 25 rows, 6 columns, an inner dimension of 200704).
    """
    efficiency = max(0.1, min(1.0, k / 128) * min(1.0, n / 16))
    size = np.dtype(dtype).itemsize
    packed = 2 * (macs / max(n, 1) + calls * k * n) * size  # (m, k) once, (k, n) per call: read and written
    return (macs * flops_per_mac(dtype) / (gemm_rate(dtype) * efficiency) + packed / MACHINE.cache_bytes
            + calls * MACHINE.call_seconds)
