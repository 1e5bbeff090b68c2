"""The machine the cost model describes, and the cost terms every algorithm's estimate is built from.

An algorithm's estimate (its record's ``estimate``, see :mod:`.plan`) adds up

    time = flops / (GEMM rate)  +  bytes moved / (memory bandwidth)  +  NumPy calls * (call overhead)

with the rates of :data:`MACHINE`. Rates are those of float32 and are scaled
per dtype (float64 GEMMs run at half the rate, complex GEMMs count 8 real
flops per multiply-add, integer matmuls do not use BLAS).

The rates describe :attr:`Machine.threads` threads. The work that runs on
several threads (BLAS, scipy.fft's workers, the compiled kernels) is priced
at the thread count it will use now (:func:`blas_threads`, :func:`fft_threads`,
:func:`kernel_threads`): rates measured by :mod:`.calibrate` are measured at
that count (a calibration is taken again when the count changes), and the
constants (two threads) and given rates are scaled by the ratio of the counts
(:func:`thread_factor`), the threads capped at the CPUs this process may run
on. NumPy's own copies and ufuncs run on one thread whatever the count: the
memory, cache and call rates are not scaled. Without it, one thread priced
GEMMs at two threads' speed against memory-bound work that does not speed up
with threads, and chose them where they lose.

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

import contextlib
import functools
import os
import sys
from typing import NamedTuple

import numpy as np

from ._blas import AVX512_CORES, openblas_core, openblas_threads

__all__ = ["AVX512_SPEEDUP", "CONSTANTS", "MACHINE", "Machine", "blas_threads", "cpus", "fft_threads", "flops_per_mac",
           "fmt", "gemm_rate", "gemm_seconds", "kernel_speed", "kernel_threads", "l2_bytes", "rates", "stream",
           "thread_factor", "threads_in_effect"]


class Machine(NamedTuple):
    """Throughputs of the machine the model describes (float32, at ``threads`` threads)."""

    gemm_flops: float  # flop/s of a large float32 GEMM on OpenBLAS's AVX2 (Haswell) kernels
    stream_bytes: float  # bytes/s read + written by a copy or elementwise pass over a large array
    cache_bytes: float  # bytes/s of an elementwise pass over a block that fits in L2
    fft_flops: float  # flop/s of scipy.fft, counting 5 n log2 n per complex transform of n points
    call_seconds: float  # overhead of one NumPy call in a loop (ufunc on views, copyto, small matmul)
    row_seconds: float  # overhead of one inner loop of a ufunc on a strided view (per contiguous run)
    #: multiply-adds/s of the compiled direct kernel (``direct``'s ``flat`` loop on small planes): the
    #: compiled kernels' rates (``direct.NUMBA_MACS``, ``depthwise.NUMBA_MACS``...) scale by it (:func:`kernel_speed`)
    kernel_macs: float = 30e9
    threads: int = 2  # the threads the GEMM, FFT and compiled-kernel rates were measured on


#: Measured on the development machine (see :mod:`.plan`): the rates in use by default, and the fallback of a
#: calibration (:mod:`.calibrate`) whose measurement fails or is implausible.
CONSTANTS = Machine(
    gemm_flops=180e9,
    stream_bytes=25e9,
    cache_bytes=90e9,
    fft_flops=12e9,
    call_seconds=1.5e-6,
    row_seconds=10e-9,
    kernel_macs=30e9,
    threads=2,
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


# --------------------------------------------------------------------------- threads


def cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _env_threads(*names: str) -> int | None:
    for name in names:
        try:
            value = int(os.environ[name])
        except (KeyError, ValueError):
            continue
        if value > 0:
            return value
    return None


def blas_threads() -> int:
    """The threads NumPy's BLAS runs a large product on now (OpenBLAS's count, else ``OMP_NUM_THREADS``)."""
    count = openblas_threads()
    if not count or count < 1:
        count = _env_threads("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") or cpus()
    return max(1, min(count, cpus()))


def kernel_threads() -> int:
    """The threads the compiled (numba) kernels run on: numba's setting once numba is imported (as
    :func:`._common.numba_threads` reads it), else what it will be (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``,
    the CPUs)."""
    numba = sys.modules.get("numba")
    if numba is not None and hasattr(numba, "config"):
        from ._common import numba_threads

        count = numba_threads(numba)
    else:
        count = _env_threads("NUMBA_NUM_THREADS")
        if count is None:
            count = min(cpus(), _env_threads("OMP_NUM_THREADS") or cpus())
    return max(1, min(int(count), cpus()))


def fft_threads() -> int:
    """The workers scipy.fft runs the FFT algorithm's transforms on (:func:`.fft.workers`)."""
    from .fft import workers

    return max(1, min(workers(), cpus()))


@functools.cache
def l2_bytes() -> int:
    """The L2 (per-core) cache of CPU 0, from Linux's sysfs; 1 MiB where it cannot be read."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    with contextlib.suppress(OSError, ValueError):
        for entry in sorted(os.listdir(root)):
            folder = os.path.join(root, entry)
            with open(os.path.join(folder, "level")) as f:
                level = int(f.read())
            with open(os.path.join(folder, "type")) as f:
                kind = f.read().strip()
            if level == 2 and kind in ("Unified", "Data"):
                with open(os.path.join(folder, "size")) as f:
                    text = f.read().strip().upper()
                scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
                return int(text.rstrip("KMG")) * scale
    return 2**20


def threads_in_effect() -> tuple[int, int, int]:
    """``(BLAS, FFT, compiled kernels)`` threads now: the planner's cache key, the calibration's."""
    return blas_threads(), fft_threads(), kernel_threads()


def thread_factor(count: int) -> float:
    """How much faster work on ``count`` threads runs than on the threads the rates describe (``count / threads``).

    Rates measured by :mod:`.calibrate` were measured at the count in effect (the factor is then 1); the
    constants and given rates are scaled linearly, which holds for the compute-bound work these rates price
    (a large GEMM, a transform, a kernel's multiply-adds on cached planes).
    """
    return count / max(1, rates().threads)


def kernel_speed() -> float:
    """The compiled kernels' speed against the rates written in their modules (measured on two threads of the
    development machine, like :data:`CONSTANTS`): the measured ``kernel_macs`` over the constant one, at the
    kernels' thread count (:func:`thread_factor`). Divide a compiled kernel's seconds by it."""
    return rates().kernel_macs / CONSTANTS.kernel_macs * thread_factor(kernel_threads())


def gemm_rate(dtype: np.dtype) -> float:
    """Flop/s of a large GEMM in ``dtype`` on the BLAS kernels NumPy runs, at the threads BLAS runs on now."""
    if dtype.kind in "iub":
        return 1.5e9  # NumPy's integer matmul is a plain loop, no BLAS
    rate = rates().gemm_flops * _blas_speedup() * thread_factor(blas_threads())
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
