"""The cost model's rates, measured on this machine when asked: GEMM, memory, cache, FFT, call overheads.

The cost model (:mod:`.plan`, :mod:`._costs`) estimates an algorithm's time as
flops over the GEMM rate, plus bytes moved over the memory bandwidth, plus
NumPy calls times their overhead (and FFT flops over the FFT rate). Those
rates depend on the CPU, its vector width, the BLAS kernels NumPy loaded and
the number of threads. :func:`measure` measures them here (about 10-30 ms on a
quiet machine, plus importing numba for the compiled kernel's rate) instead of
taking constants from one machine; ``set_rates(None)`` makes the cost model
measure them at its next use and use them from then on.

Threads: the GEMM, the FFT and the compiled kernels run on the threads in
effect (:func:`~._costs.threads_in_effect`: OpenBLAS's count, scipy.fft's
workers, numba's threads), and are measured on them; the rates are kept per
thread count, and a count not met before is measured when the cost model
first prices a call at it (``threadpoolctl.threadpool_limits(1)`` around a
training loop gets one-thread rates, measured). The constants describe two
threads (:attr:`~._costs.Machine.threads`) and are scaled to the count in
effect (:func:`~._costs.thread_factor`).

By default the cost model uses the documented constants (:data:`~._costs.CONSTANTS`,
scaled by the BLAS kernels NumPy loaded), not a measurement: rates measured
at run time differ from process to process (timings do), so ``auto`` would pick
different algorithms in different processes, and results that agree only to
rounding would break what must be exact: a training run resumed in a new
process must end with the uninterrupted run's weights bit for bit, a forked
worker must compute what its parent computes. Calibrated or measured planning
(:mod:`.tune`) is therefore a choice the caller makes, per process.

============  ==========================================================================
rate          measurement (each the best of a few runs after a warm-up)
============  ==========================================================================
gemm_flops    ``a @ b`` on float32 (768 x 768) @ (768 x 768): ``2 m k n`` flops (a few ms: waking
              BLAS's threads, which sleep between calls where OPENBLAS_THREAD_TIMEOUT asks, stays small)
stream_bytes  ``np.copyto`` of an 8 MiB float32 array: bytes read + written
cache_bytes   ``np.add(a, b, out=c)`` on 0.5 MiB arrays: bytes read + written
fft_flops     ``scipy.fft.rfft2`` of 16 planes of 128 x 128 float32: ``2.5 n log2 n`` per plane,
              the workers :mod:`.fft` uses
call_seconds  a loop of 200 ``np.add`` calls on 4-element views
row_seconds   ``np.add`` on a (32768, 2) strided view: one inner loop per row
kernel_macs   the compiled direct kernel (:mod:`.direct`, ``flat``) on a 16 -> 64 channel 5x5 layer at
              14x14, batch 8 (numba, the ``fast`` extra; without it the constant stays): multiply-adds/s
threads       the BLAS threads in effect; ``fft_flops`` and ``kernel_macs`` are stored for that many
              workers (measured on their own count, scaled by the ratio where it differs)
============  ==========================================================================

A measurement that fails, or lands more than :data:`PLAUSIBLE` times away
from the documented constants (:data:`~._costs.CONSTANTS`, measured on the
development machine), keeps that constant and warns: a busy machine can slow a
few milliseconds of measurement down a lot, and a wrong rate only costs time,
never accuracy. The rates in use: :func:`rates`; where they came from:
:func:`source`; :func:`set_rates` installs given rates (``set_rates(CONSTANTS)``
turns calibration off, ``set_rates(None)`` measures again at the next use);
:func:`using` does it for a ``with`` block. All of it is explicit: no
environment variable changes it.

>>> from convlab.ops.algorithms import calibrate
>>> with calibrate.using(calibrate.CONSTANTS):
...     calibrate.source(), calibrate.rates().gemm_flops == calibrate.CONSTANTS.gemm_flops
('constants', True)
>>> r = calibrate.measure(repeat=1)
>>> all(v > 0 for v in r.machine)
True
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ._costs import CONSTANTS, Machine, threads_in_effect

__all__ = ["CONSTANTS", "PLAUSIBLE", "Calibration", "describe", "measure", "rates", "set_rates", "source", "using",
           "version"]

#: A measured rate more than this factor away from the constant is not believed (the constant is kept).
PLAUSIBLE = 30.0


class Calibration(NamedTuple):
    """What :func:`measure` found: the rates, the seconds the measurement took, the rates it did not believe."""

    machine: Machine
    seconds: float
    rejected: dict[str, str]  # rate name -> why the constant was kept


def _best(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``fn`` after one warm-up (``time.perf_counter``)."""
    fn()
    best = math.inf
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)


def _gemm_flops(repeat: int) -> float:
    m = k = n = 768
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    return 2 * m * k * n / _best(lambda: np.matmul(a, b, out=out), repeat)


def _stream_bytes(repeat: int) -> float:
    src = np.ones(2 * 2**20, np.float32)  # 8 MiB, beyond the L2 of most CPUs
    dst = np.empty_like(src)
    return 2 * src.nbytes / _best(lambda: np.copyto(dst, src), repeat)


def _cache_bytes(repeat: int) -> float:
    a = np.ones(2**17, np.float32)  # 0.5 MiB each: three fit in an L2
    b, c = np.ones_like(a), np.empty_like(a)

    def add():
        for _ in range(8):
            np.add(a, b, out=c)

    return 8 * 3 * a.nbytes / _best(add, repeat)


def _fft_flops(repeat: int) -> float:
    import scipy.fft

    from .fft import FFT_PLANE_SECONDS, WORKERS

    planes, side = 16, 128
    x = np.random.default_rng(0).standard_normal((planes, side, side), dtype=np.float32)
    seconds = _best(lambda: scipy.fft.rfft2(x, workers=WORKERS), repeat)
    points = side * side
    # the model's count (see fft._fft_seconds): 2.5 n log2 n per real transform, plus a cost per plane
    seconds = max(seconds - planes * FFT_PLANE_SECONDS, seconds / 2)
    return planes * 2.5 * points * math.log2(points) / seconds


def _kernel_macs(repeat: int) -> float:
    from . import direct
    from ._layout import Call

    # 400 multiply-adds per output (16 channels x 25 taps), 14x14 planes in the cache: the kernel's own rate,
    # its copies and launch a few percent of the time (as NUMBA_MACS were measured: kernel time only)
    x = np.random.default_rng(0).standard_normal((8, 16, 14, 14), dtype=np.float32)
    w = np.random.default_rng(1).standard_normal((64, 16, 5, 5), dtype=np.float32)
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
    call = Call.of(x, w, *args)
    if not direct.uses_numba(call):
        raise RuntimeError("numba is not installed (the `fast` extra): the compiled kernels do not run")
    kind = direct.compiled_kernel(call)
    # short runs (under a millisecond), the best of at least ten, like the other rates
    return direct._kernel_macs(call, kind) / _best(lambda: direct.conv_general(x, w, *args), max(repeat, 10))


def _call_seconds(repeat: int) -> float:
    a = np.ones(64, np.float32)
    views = [a[i:i + 4] for i in range(0, 64, 4)]
    zeros = np.zeros(4, np.float32)  # adding zeros: the values stay finite however many runs

    def loop():
        for _ in range(12):
            for v in views:
                np.add(v, zeros, out=v)

    return _best(loop, repeat) / (12 * len(views))


def _row_seconds(repeat: int, call_seconds: float) -> float:
    a = np.ones((32768, 8), np.float32)
    view = a[:, :2]  # 32768 rows of 2 contiguous elements: one inner loop per row
    out = np.empty((32768, 2), np.float32)
    seconds = _best(lambda: np.add(view, view, out=out), repeat)
    return max(seconds - call_seconds, seconds / 2) / view.shape[0]


def measure(repeat: int = 3) -> Calibration:
    """Measure the cost model's rates on this machine now (about 10-30 ms); nothing is installed.

    Each rate is the best of ``repeat`` runs after a warm-up (at least ten: each run takes about a
    millisecond). A rate whose
    measurement raises, is not a positive finite number, or is more than
    :data:`PLAUSIBLE` times away from :data:`~._costs.CONSTANTS` keeps the
    constant, and ``rejected`` says why.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int | np.integer) or not 1 <= repeat <= 1000:
        raise ValueError(f"calibrate.measure: `repeat` (={repeat!r}) must be an integer from 1 to 1000")
    repeat = int(repeat)
    start = time.perf_counter()
    measured: dict[str, float] = {}
    rejected: dict[str, str] = {}
    blas, fft_workers, kernels = threads_in_effect()
    # the GEMM is measured on ``blas`` threads (the machine's ``threads``); the FFT and the kernels on their own
    # counts, stored for ``blas`` threads so that _costs.thread_factor recovers them at any count
    # Each run takes about a millisecond: the best of at least ten, so that on a busy machine some run finds
    # its threads scheduled together (a two-thread GEMM whose second thread waits for a core ran 10x slower)
    short = max(repeat, 10)
    steps = (("gemm_flops", lambda: _gemm_flops(short)), ("stream_bytes", lambda: _stream_bytes(short)),
             ("cache_bytes", lambda: _cache_bytes(short)),
             ("fft_flops", lambda: _fft_flops(short) * blas / fft_workers),
             ("call_seconds", lambda: _call_seconds(short)),
             ("row_seconds", lambda: _row_seconds(short, measured.get("call_seconds", CONSTANTS.call_seconds))),
             ("kernel_macs", lambda: _kernel_macs(short) * blas / kernels))
    for name, step in steps:
        constant = getattr(CONSTANTS, name)
        if name in ("gemm_flops", "fft_flops", "kernel_macs"):
            constant = constant * blas / CONSTANTS.threads  # the constants describe two threads
        try:
            value = float(step())
        except Exception as exc:  # a missing SciPy, a broken BLAS: the constant stays
            rejected[name] = f"the measurement failed ({type(exc).__name__}: {exc})"
            continue
        if not (math.isfinite(value) and value > 0):
            rejected[name] = f"the measurement gave {value!r}"
        elif not constant / PLAUSIBLE <= value <= constant * PLAUSIBLE:
            rejected[name] = f"measured {value:.3g}, over {PLAUSIBLE:g}x away from the constant {constant:.3g}"
        else:
            measured[name] = value
    kept = {name: getattr(CONSTANTS, name) * blas / CONSTANTS.threads for name in rejected
            if name in ("gemm_flops", "fft_flops", "kernel_macs")}  # a constant kept, at this thread count
    machine = CONSTANTS._replace(**kept, **measured, threads=blas)
    return Calibration(machine, time.perf_counter() - start, rejected)


# --------------------------------------------------------------------------- the rates in use

_LOCK = threading.Lock()
_STATE: dict[str, object] = {"machine": CONSTANTS, "source": "constants", "version": 0, "calibration": None,
                             "threads": None}
#: Calibrations per thread count in effect (:func:`~._costs.threads_in_effect`), while calibrated rates are in use.
_BY_THREADS: dict[tuple[int, int, int], tuple[Machine, Calibration | None]] = {}


def rates() -> Machine:
    """The rates the cost model uses: the constants, unless :func:`set_rates` gave others or asked for a measurement.

    Calibrated rates are those measured at the thread count in effect: a count not met
    before is measured now. Thread-safe: concurrent first calls measure once. If the
    measurement raises, the constants are used and a warning says why.
    """
    machine = _STATE["machine"]
    if machine is not None:
        if _STATE["source"] != "calibrated":
            return machine  # type: ignore[return-value]
        key = threads_in_effect()
        if key == _STATE["threads"]:
            return machine  # type: ignore[return-value]
        with _LOCK:
            if _STATE["source"] == "calibrated" and key != _STATE["threads"]:
                found = _BY_THREADS.get(key)
                if found is None:
                    _STATE["machine"] = None  # measured below, at this count
                else:
                    _STATE.update(machine=found[0], calibration=found[1], threads=key,
                                  version=int(_STATE["version"]) + 1)
        if _STATE["machine"] is not None:
            return _STATE["machine"]  # type: ignore[return-value]
    with _LOCK:
        if _STATE["machine"] is None:
            try:
                result = measure()
            except Exception as exc:  # never let a measurement break a convolution
                warnings.warn(f"convlab: calibrating the cost model failed ({type(exc).__name__}: {exc}); "
                              f"using the constants of the development machine", RuntimeWarning, stacklevel=2)
                _install(CONSTANTS, "constants", None)
            else:
                if result.rejected:
                    warnings.warn("convlab: calibrating the cost model kept the constants of "
                                  + "; ".join(f"{k} ({why})" for k, why in result.rejected.items()),
                                  RuntimeWarning, stacklevel=2)
                _install(result.machine, "calibrated", result)
                key = threads_in_effect()
                _STATE["threads"] = key
                _BY_THREADS[key] = (result.machine, result)
    return _STATE["machine"]  # type: ignore[return-value]


def _install(machine: Machine | None, origin: str | None, calibration: Calibration | None,
             threads: tuple[int, int, int] | None = None) -> None:
    if origin != "calibrated":
        _BY_THREADS.clear()  # measured again when calibration is asked again
    _STATE.update(machine=machine, source=origin, calibration=calibration, threads=threads,
                  version=int(_STATE["version"]) + 1)


def source() -> str:
    """Where the rates in use come from: ``'calibrated'``, ``'constants'`` or ``'given'`` (:func:`set_rates`)."""
    rates()
    return str(_STATE["source"])


def version() -> int:
    """A number that changes whenever the rates in use change (the planner's cache key)."""
    rates()
    return int(_STATE["version"])  # type: ignore[call-overload]


def set_rates(machine: Machine | None) -> None:
    """Use ``machine``'s rates from now on (:data:`CONSTANTS`: no calibration); None: measure at the next use."""
    if machine is not None and not isinstance(machine, Machine):
        raise TypeError(f"calibrate.set_rates: `machine` must be a Machine or None, got {type(machine).__name__}")
    if machine is not None:
        bad = [f"{k}={v!r}" for k, v in machine._asdict().items()
               if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0]
        if bad:
            raise ValueError(f"calibrate.set_rates: every rate must be a positive finite number, got {', '.join(bad)}")
    with _LOCK:
        if machine is not None and machine == CONSTANTS:
            machine = CONSTANTS  # the constants themselves: the estimates scale them by the BLAS kernels
        origin = None if machine is None else "constants" if machine is CONSTANTS else "given"
        _install(machine, origin, None)


@contextlib.contextmanager
def using(machine: Machine | None) -> Iterator[Machine]:
    """``with using(CONSTANTS):``: the model uses ``machine`` inside the block, the previous rates after it.

    ``None`` measures anew inside the block. Process-wide, like the rates themselves.
    """
    rates()
    with _LOCK:
        saved = (_STATE["machine"], _STATE["source"], _STATE["calibration"], _STATE["threads"])
        saved_counts = dict(_BY_THREADS)
    set_rates(machine)
    try:
        yield rates()
    finally:
        with _LOCK:
            _install(*saved)  # type: ignore[arg-type]
            if saved[1] == "calibrated":
                _BY_THREADS.update(saved_counts)


def describe() -> dict[str, object]:
    """The rates in use and their source, as plain numbers (what ``convlab bench`` prints and writes).

    ``gemm_flops_effective`` is the float32 GEMM rate the estimates use (the constants' is scaled by the
    BLAS kernels NumPy loaded: :func:`~._costs.gemm_rate`).
    """
    from ._costs import gemm_rate

    machine = rates()
    calibration = _STATE["calibration"]
    out: dict[str, object] = {"source": source(), **machine._asdict(), "threads_in_effect": list(threads_in_effect())}
    # the constants' GEMM rate is scaled where OpenBLAS runs AVX-512 kernels: the rate the estimates use
    out["gemm_flops_effective"] = gemm_rate(np.dtype(np.float32))
    if isinstance(calibration, Calibration):
        out["calibration_seconds"] = round(calibration.seconds, 4)
        out["rejected"] = dict(calibration.rejected)
    return out
