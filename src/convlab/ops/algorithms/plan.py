"""``algorithm="auto"``: a cost model over the call's shapes, and :func:`plan`, which says what it chose and why.

Every algorithm of the primitive returns the same numbers to float tolerance,
so the choice only decides the time. For each algorithm that applies to a call
(``unsupported(call)`` is None) the model estimates seconds as

    time = flops / (GEMM rate)  +  bytes moved / (memory bandwidth)  +  NumPy calls * (call overhead)
           (+ FFT flops / (FFT rate) for the FFT)

counting, per algorithm (``P`` output positions, ``K`` taps, ``b`` the item size;
the Winograd tile has ``alpha = m + 2`` points per dimension):

GEMMs
    ``2 * MACs / (rate * efficiency)`` with ``efficiency = min(1, k/128) * min(1, n/16)``
    (at least 0.1) for inner dimension ``k`` and ``n`` output columns: OpenBLAS is
    memory-bound on thin products; plus the call overhead per GEMM call.
``gemm``
    the GEMM of ``N P C_out (C_in/g) K`` MACs with ``k = K C_in/g``, ``n = C_out/g``;
    the padded channels-last copy of the input (a transposing copy, counted twice);
    the window gather, ``N P K C_in`` elements written and read (and the per-group
    transposes when grouped). A 1x1 kernel: the GEMM and the channels-last copy.
``winograd_f2``, ``winograd_f4``
    the ``alpha^d`` GEMMs on ``T = N prod(ceil(O/m))`` tiles (``k = C_in/g``,
    ``n = C_out/g``, at 0.7 of the rate: a block of tiles is a short matrix); the two
    Kronecker-product transforms as GEMMs at half the rate;
    the padded copy, the tile gather and the output scatter; the weight transform in
    float64 (``alpha^d C_out C_in/g`` values: it dominates small images with many
    channels, where Winograd loses).
``fft``
    ``2.5 n log2(n)`` flops per real transform of ``n`` points (``5 n log2 n`` complex), plus
    :data:`FFT_PLANE_SECONDS` per plane (the overhead that decides small maps), for
    the ``N C_in`` input planes, ``C_out C_in/g`` kernel planes (pruned: a fraction of a
    full transform) and ``N C_out`` output planes, at twice the rate for planes of 2^16
    points and more (the workers share a plane); the spectral product as a complex GEMM
    (``8 N C_in/g C_out`` flops per frequency) or, with one input channel per group, a
    streamed elementwise product. A stride is computed at stride 1: all of it is paid.
``depthwise``
    with the compiled kernels (the optional Numba extra, :func:`.depthwise.uses_numba`):
    the multiply-adds (at stride 1 over the padded grid) at the rates of
    :data:`NUMBA_MACS`, plus an overhead per short row when strided, plus reading the
    input and writing the output. With NumPy: ``2 K C_in/g`` passes over the output
    (multiply, add) at cache bandwidth, plus an overhead per contiguous run (stride 1
    runs over whole padded planes; a strided view has runs of one output row), and
    ``2 K C_in/g`` NumPy calls per block.
``subpixel``
    the sum of the best estimate of each phase (a call without input dilation) plus the
    interleaving copy.
``col2im``
    the GEMM ``W^T (K C_out/g, C_in/g) @ x (C_in/g, P_in)`` over the input positions that reach
    an output (``N P_in C_in K C_out/g`` MACs: with input dilation exactly the useful ones, with
    a stride ``s`` the taps of inputs no output reads too), with the efficiency of a product
    whose long axis is ``P_in``: ``min(1, (C_in/g)/64) * min(1, K C_out/g / 16) * min(1, P_in/4096)``
    (measured at the full rate with 64 input channels; short maps stall OpenBLAS's threads); the
    scatter, one strided add per tap, ``E`` elements in all (``N C_out`` times the product over
    dimensions of the taps' run lengths), counted as ``4 E b`` bytes at stream bandwidth (strided
    writes), plus one inner loop per run of the last axis; the zeroed output.

Each algorithm also has a fixed cost per call (:data:`FIXED_SECONDS`: checks, small
arrays, planning), which decides tiny calls.

Rates are those of float32 and are scaled per dtype (float64 GEMMs run at half the
rate, complex GEMMs count 8 real flops per multiply-add, integer matmuls do not use
BLAS). :data:`MACHINE` holds the constants, measured on the development machine
(2-core AMD EPYC Zen 5 VM, OpenBLAS 0.3 on its Haswell (AVX2) kernels, which that
machine's environment selects with ``OPENBLAS_CORETYPE``, NumPy 2.4, SciPy 1.17, 2 threads;
where OpenBLAS runs AVX-512 kernels the GEMM rate is scaled by :data:`AVX512_SPEEDUP`):
large ``sgemm`` calls, ``np.copyto`` and ``np.add`` on 16-64 MiB arrays
(stream) and on 0.5 MiB arrays (cache), ``scipy.fft.rfft2`` of 64x64 to 1024x1024
planes, a loop of small ufunc calls and each algorithm on tiny inputs (the fixed
costs). The model was then checked against the measured times of every applicable
algorithm on 20 calls (ResNet and VGG layers, depthwise 3x3 to 31x31, 1024x1024
single-channel images, a transposed stride-2 layer, a weight gradient, tiny float64
calls): it ranked the fastest first, or within 15% of it, on all of them; the
estimates themselves are within a factor of about 2 of the measured times.
The model only has to rank the algorithms; a wrong ranking costs time, never
accuracy. ``reference``, ``matrix`` and ``im2col`` are never chosen (they are the
oracle, the sparse-matrix view and the historical default).

Winograd F(4x4, 3x3) is allowed in float32: its measured error is four times under
the test suite's float32 tolerance (see :mod:`.winograd`). Integers only ever get
exact algorithms (gemm, depthwise, subpixel): the others refuse them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import col2im, depthwise, fft, gemm, subpixel, winograd
from ._blas import AVX512_CORES, openblas_core
from ._layout import Call, budget_bytes

__all__ = ["AUTO_ALGORITHMS", "FIXED_SECONDS", "MACHINE", "Machine", "Plan", "auto_primitive", "estimate", "plan",
           "plan_call", "unsupported"]


class Machine(NamedTuple):
    """Throughputs of the machine the model describes (float32, all threads)."""

    gemm_flops: float  # flop/s of a large float32 GEMM on OpenBLAS's AVX2 (Haswell) kernels
    stream_bytes: float  # bytes/s read + written by a copy or elementwise pass over a large array
    cache_bytes: float  # bytes/s of an elementwise pass over a block that fits in L2
    fft_flops: float  # flop/s of scipy.fft, counting 5 n log2 n per complex transform of n points
    call_seconds: float  # overhead of one NumPy call in a loop (ufunc on views, copyto, small matmul)
    row_seconds: float  # overhead of one inner loop of a ufunc on a strided view (per contiguous run)


#: Measured on the development machine (see the module docstring).
MACHINE = Machine(
    gemm_flops=180e9,
    stream_bytes=25e9,
    cache_bytes=90e9,
    fft_flops=12e9,
    call_seconds=1.5e-6,
    row_seconds=10e-9,
)

#: Fixed cost of one call of each algorithm (set-up, checks, small arrays), measured on tiny inputs.
FIXED_SECONDS: dict[str, float] = {
    "gemm": 30e-6,
    "winograd_f2": 80e-6,
    "winograd_f4": 80e-6,
    "fft": 80e-6,
    "depthwise": 25e-6,
    "subpixel": 20e-6,
    "col2im": 30e-6,
}

#: The algorithms ``auto`` chooses among.
AUTO_ALGORITHMS = ("gemm", "winograd_f4", "winograd_f2", "fft", "depthwise", "subpixel", "col2im")

_UNSUPPORTED: dict[str, Callable[[Call], str | None]] = {
    "gemm": gemm.unsupported,
    "winograd_f2": winograd.unsupported,
    "winograd_f4": winograd.unsupported,
    "fft": fft.unsupported,
    "depthwise": depthwise.unsupported,
    "subpixel": subpixel.unsupported,
    "col2im": col2im.unsupported,
}


def unsupported(name: str, call: Call) -> str | None:
    """Why algorithm ``name`` does not apply to ``call`` (None when it does, or when it applies to everything)."""
    check = _UNSUPPORTED.get(name)
    return None if check is None else check(call)


class Estimate(NamedTuple):
    """Estimated seconds of one algorithm on one call, and the terms that make it up."""

    seconds: float
    terms: str


class Plan(NamedTuple):
    """What ``algorithm="auto"`` does with one primitive call, and why."""

    algorithm: str
    reason: str
    estimates: dict[str, float]  # seconds per applicable algorithm
    refused: dict[str, str]  # why the others do not apply
    call: Call

    def __str__(self) -> str:
        return f"{self.algorithm}: {self.reason}"


#: How much faster OpenBLAS's AVX-512 kernels ran than its AVX2 ones on the development machine
#: (``sgemm`` 4096x1024x1024: 420 against 230 GFLOP/s; see :mod:`._blas`).
AVX512_SPEEDUP = 1.8


def _blas_speedup() -> float:
    core = openblas_core()
    return AVX512_SPEEDUP if core is not None and core.lower() in AVX512_CORES else 1.0


def _gemm_rate(dtype: np.dtype) -> float:
    if dtype.kind in "iub":
        return 1.5e9  # NumPy's integer matmul is a plain loop, no BLAS
    rate = MACHINE.gemm_flops * _blas_speedup()
    if dtype in (np.float64, np.complex128):
        return rate / 2
    return rate


def _flops_per_mac(dtype: np.dtype) -> int:
    return 8 if dtype.kind == "c" else 2


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _stream(nbytes: float) -> float:
    return nbytes / MACHINE.stream_bytes


def estimate(name: str, call: Call) -> Estimate:
    """Estimated time of algorithm ``name`` on ``call`` (the algorithm must apply)."""
    est = _estimate(name, call)
    return Estimate(est.seconds + FIXED_SECONDS[name], est.terms)


def _estimate(name: str, call: Call) -> Estimate:
    if name == "gemm":
        return _gemm(call)
    if name in ("winograd_f2", "winograd_f4"):
        return _winograd(call, 2 if name == "winograd_f2" else 4)
    if name == "fft":
        return _fft(call)
    if name == "depthwise":
        return _depthwise(call)
    if name == "subpixel":
        return _subpixel(call)
    if name == "col2im":
        return _col2im(call)
    raise ValueError(f"plan: no cost model for algorithm {name!r}; auto chooses among {AUTO_ALGORITHMS}")


def _gemm_seconds(macs: float, k: int, n: int, calls: int, dtype: np.dtype) -> float:
    """GEMMs doing ``macs`` multiply-adds with inner dimension ``k`` and ``n`` columns, in ``calls`` calls.

    Small ``k`` or ``n`` leave the GEMM kernel memory-bound: the efficiency
    ``min(1, k/128) * min(1, n/16)`` (at least 0.1) scales the rate.
    """
    efficiency = max(0.1, min(1.0, k / 128) * min(1.0, n / 16))
    return macs * _flops_per_mac(dtype) / (_gemm_rate(dtype) * efficiency) + calls * MACHINE.call_seconds


def _gemm(call: Call) -> Estimate:
    b = call.dtype.itemsize
    input_bytes = math.prod(call.x_shape) * b
    if all(k == 1 for k in call.kernel):
        compute = _gemm_seconds(call.macs, call.cg, call.og, call.groups, call.dtype)
        padded = any(p != (0, 0) for p in call.padding) or any(ld != 1 for ld in call.input_dilation)
        moved = 4 * input_bytes + (2 * call.batch * call.c_in * math.prod(call.padded_size) * b if padded else 0)
        seconds = compute + _stream(moved)
        return Estimate(seconds, f"1x1: GEMM {_fmt(compute)} + channels-last copy {_fmt(_stream(moved))}")
    padded = call.batch * call.c_in * math.prod(call.padded_size) * b
    gathered = call.batch * call.positions * call.taps * call.c_in * b
    blocks = max(1, gathered // gemm.CHUNK_BYTES)
    compute = _gemm_seconds(call.macs, call.taps * call.cg, call.og, blocks * call.groups, call.dtype)
    moved = 2 * (input_bytes + padded) + 2 * gathered  # the transposing pad copy counts twice
    if call.groups > 1:
        moved += 2 * gathered + 2 * math.prod(call.out_shape) * b  # per-group transposes
    seconds = compute + _stream(moved) + 4 * blocks * MACHINE.call_seconds
    return Estimate(seconds, f"GEMM {_fmt(compute)} + copies {_fmt(_stream(moved))} "
                             f"({gathered / 2**20:.3g} MiB of windows)")


def _winograd(call: Call, m: int) -> Estimate:
    b = call.dtype.itemsize
    nd = call.nd
    alpha = m + 2
    tiles = call.batch * math.prod(-(-o // m) for o in call.out_size)
    elements = alpha ** nd
    transformed_in = elements * tiles * call.c_in
    transformed_out = elements * tiles * call.c_out
    blocks = max(1, max(transformed_in, transformed_out) * b // winograd.BLOCK_BYTES)
    # The alpha^d products have only a block of tiles as rows: measured at 0.7 of the rate of
    # the window GEMM of the same inner dimension.
    compute = _gemm_seconds(elements * tiles * call.c_out * call.cg, call.cg, call.og,
                            elements * call.groups * blocks, call.dtype) / 0.7
    # B^T d B and A^T M A: one GEMM each with the Kronecker product (inner dimension alpha^d,
    # measured at half the large-GEMM rate).
    transform_macs = elements * transformed_in + m ** nd * transformed_out
    transforms = transform_macs * _flops_per_mac(call.dtype) / (0.5 * _gemm_rate(call.dtype))
    input_bytes = math.prod(call.x_shape) * b
    output = tiles * m ** nd * call.c_out * b
    moved = 4 * input_bytes + 2 * transformed_in * b + 2 * output  # padded copy (transposing), gather, scatter
    weights = 6 * elements * call.c_out * call.cg * 8  # the weight transform, in float64
    seconds = compute + transforms + _stream(moved + weights) + 4 * blocks * MACHINE.call_seconds
    return Estimate(seconds, f"F({m}) GEMMs {_fmt(compute)} on {tiles} tiles + transforms "
                             f"{_fmt(transforms + _stream(moved))} + weight transform {_fmt(_stream(weights))}")


#: Overhead of one plane in a batched ``scipy.fft`` transform, beyond its ``n log n`` flops: it decides
#: small maps (measured: ``rfft2`` of 7680 9x9 planes takes 1.44 ms where the flops say 0.82 ms; the
#: whole FFT algorithm on the MobileNetV2 3x3 depthwise layer at 7x7, 960 channels, batch 8, measured
#: 2.4-3.0 ms against 2.3 ms estimated without this term, 2.7 ms with it).
FFT_PLANE_SECONDS = 25e-9


def _fft_seconds(points: int, planes: float, complex_data: bool) -> float:
    per = (5.0 if complex_data else 2.5) * points * math.log2(max(points, 2))
    # Large planes split over the workers (measured about twice the rate from 2**16 points up).
    rate = MACHINE.fft_flops * (2 if points >= 2**16 else 1)
    return planes * (per / rate + FFT_PLANE_SECONDS)


def _fft(call: Call) -> Estimate:
    complex_data = call.dtype.kind == "c"
    single = call.dtype in (np.float32, np.complex64)
    spectral_item = 8 if single else 16
    lengths = fft.fft_lengths(call)
    points = math.prod(lengths)
    freq = points if complex_data else points // lengths[-1] * (lengths[-1] // 2 + 1)
    n, c_in, c_out, cg = call.batch, call.c_in, call.c_out, call.cg
    # The kernel's transform is pruned: the axes not yet transformed keep the kernel's extent.
    extent = call.effective_kernel
    pruned = sum(math.prod(e / length for e, length in zip(extent[:i], lengths[:i], strict=True))
                 for i in range(call.nd)) / call.nd
    transforms = (_fft_seconds(points, n * c_in, complex_data)
                  + pruned * _fft_seconds(points, c_out * cg, complex_data)
                  + _fft_seconds(points, n * c_out, complex_data))
    if cg == 1:
        product = _stream(3 * n * c_out * freq * spectral_item)
        kind = "elementwise product"
    else:
        rate = _gemm_rate(np.dtype(np.complex64 if single else np.complex128))
        gemm_seconds = 8 * n * cg * c_out * freq / rate
        shuffle = _stream(2 * (n * c_in + c_out * cg + 2 * n * c_out) * freq * spectral_item)
        calls = freq * call.groups * MACHINE.call_seconds / 8  # small per-frequency GEMMs
        product = gemm_seconds + shuffle + calls
        kind = "per-frequency GEMMs"
    padded = _stream(2 * n * c_in * points * call.dtype.itemsize)
    seconds = transforms + product + padded
    return Estimate(seconds, f"transforms of {lengths} {_fmt(transforms)} + {kind} {_fmt(product)}"
                             + (f" (stride {call.stride}: computed at stride 1)" if any(s > 1 for s in call.stride)
                                else ""))


#: Multiply-adds per second of the compiled (Numba) depthwise kernels, float32, 2 threads, measured on the
#: MobileNetV2, ConvNeXt and RepLKNet layers of the benchmark: stride 1 (flat planes), strided or input-dilated
#: (row by row), and the weight-gradient shape (a small output per plane, one partial sum per kernel column).
NUMBA_MACS = {"flat": 25e9, "direct": 8e9, "small_output": 5e9}
#: ``small_output`` on a padded plane (a 31x31 kernel over a 28x28 map, RepLKNet stage 2): 13 GMAC/s measured.
NUMBA_SMALL_PADDED_MACS = 13e9


def _depthwise(call: Call) -> Estimate:
    b = call.dtype.itemsize
    flat = all(s == 1 for s in call.stride) and all(ld == 1 for ld in call.input_dilation)
    if flat and call.nd > 1:
        # stride 1: the passes run over the padded grid, in long contiguous runs
        positions = call.out_size[0] * math.prod(call.padded_size[1:])
        run = positions
    else:
        positions = call.positions
        run = call.out_size[-1]
    out_elements = call.batch * call.c_out * positions
    padded = _stream(2 * call.batch * call.c_in * math.prod(call.padded_size) * b)
    if depthwise.uses_numba(call):
        kind = depthwise.compiled_kernel(call)
        rate = NUMBA_MACS[kind] / (2 if b == 8 else 1)
        if kind == "small_output":
            out_elements = call.batch * call.c_out * call.positions
            if all(p == (0, 0) for p in call.padding):
                # a weight gradient: measured 4.5-6 GMAC/s for 7x7 outputs, 35 for 31x31 ones over 28x28
                # planes, 14 over 56x56 planes (the plane no longer stays in the cache)
                rate *= max(1.0, min(8.0, call.positions / 49) * min(1.0, 1024 / call.taps))
            else:
                rate = NUMBA_SMALL_PADDED_MACS / (2 if b == 8 else 1)
        macs = out_elements * call.cg * call.taps
        short_rows = 0.0
        if kind == "direct" and run < 32:
            short_rows = 15e-9 * call.batch * call.c_out * (positions // max(run, 1)) * call.taps * call.cg
        compute = macs / rate + short_rows
        seconds = compute + padded + _stream(call.batch * call.c_out * call.positions * b)
        return Estimate(seconds, f"compiled kernel ({kind}): {macs:,} multiply-adds {_fmt(compute)}")
    passes = 2 * call.taps * call.cg
    rate = MACHINE.cache_bytes if call.dtype.kind in "fc" else MACHINE.cache_bytes / 2
    streamed = passes * 2.5 * out_elements * b / rate
    rows = passes * out_elements / max(run, 1) * MACHINE.row_seconds  # one inner loop per run
    blocks = max(1, out_elements * b // depthwise.BLOCK_BYTES)
    calls = blocks * passes * MACHINE.call_seconds
    seconds = streamed + rows + padded + calls
    return Estimate(seconds, f"{call.taps * call.cg} taps x 2 passes {_fmt(streamed + rows)} + {blocks * passes} "
                             f"NumPy calls {_fmt(calls)}")


def _subpixel(call: Call) -> Estimate:
    total, parts = 0.0, []
    for sub in subpixel.phase_calls(call):
        best = plan_call(sub)
        total += best.estimates[best.algorithm]
        parts.append(best.algorithm)
    total += _stream(2 * math.prod(call.out_shape) * call.dtype.itemsize)
    counts = {name: parts.count(name) for name in dict.fromkeys(parts)}
    listing = ", ".join(f"{k} x{v}" for k, v in counts.items())
    return Estimate(total, f"{len(parts)} phases without inserted zeros ({listing})")


def _col2im(call: Call) -> Estimate:
    b = call.dtype.itemsize
    used, scattered, last_runs = [], 1, 1
    for size, out, kernel, stride, dilation, ld, (lo, _) in zip(
            call.size, call.out_size, call.kernel, call.stride, call.dilation, call.input_dilation, call.padding,
            strict=True):
        first, stop = col2im.used_range(size, out, kernel, stride, dilation, ld, lo)
        used.append(max(0, stop - first))
        runs = [r for k in range(kernel) if (r := col2im.tap_run(0, size, out, k, stride, dilation, ld, lo))]
        scattered *= sum(r.count for r in runs)
        last_runs = max(1, sum(r.count for r in runs) // max(1, len(runs)))
    positions = math.prod(used)
    macs = call.batch * positions * call.c_in * call.taps * call.og
    columns = call.taps * call.og
    # The long axis of the product is P_in: 64 input channels already run at the full rate (measured).
    # Each product covers one sample: OpenBLAS splits a wide product with a short long axis badly over
    # its threads (measured stalls of 10x on 28x28 maps, 576 x 128 @ 128 x 784), so short maps pay.
    efficiency = max(0.1, min(1.0, call.cg / 64) * min(1.0, columns / 16) * min(1.0, positions / 4096))
    sample_columns = positions * call.taps * call.c_out * b
    blocks = call.batch * max(1, sample_columns // col2im.CHUNK_BYTES) if sample_columns > col2im.CHUNK_BYTES \
        else max(1, call.batch * sample_columns // col2im.CHUNK_BYTES)
    compute = (macs * _flops_per_mac(call.dtype) / (_gemm_rate(call.dtype) * efficiency)
               + blocks * call.groups * MACHINE.call_seconds)
    elements = call.batch * call.c_out * scattered  # added by the taps, in all
    scatter = (_stream(4 * elements * b) + elements / last_runs * MACHINE.row_seconds
               + blocks * call.taps * MACHINE.call_seconds)
    zeroed = _stream(math.prod(call.out_shape) * b)
    seconds = compute + scatter + zeroed
    return Estimate(seconds, f"GEMM {_fmt(compute)} + {call.taps} strided adds {_fmt(scatter + zeroed)}")


def plan_call(call: Call) -> Plan:
    """The cost model's choice for ``call`` (see :func:`plan`); cached per call and memory budget."""
    return _plan_cached(call, budget_bytes())


@lru_cache(maxsize=4096)
def _plan_cached(call: Call, budget: int) -> Plan:
    estimates: dict[str, float] = {}
    terms: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name in AUTO_ALGORITHMS:
        reason = unsupported(name, call)
        if reason is not None:
            refused[name] = reason
            continue
        if call.is_empty:
            estimates[name], terms[name] = 0.0, "empty output"
            continue
        est = estimate(name, call)
        estimates[name], terms[name] = est.seconds, est.terms
    if call.is_empty:
        return Plan("gemm", "the output is empty, nothing to compute", estimates, refused, call)
    best = min(estimates, key=estimates.__getitem__)
    others = sorted((name for name in estimates if name != best), key=estimates.__getitem__)
    reason = f"estimated {_fmt(estimates[best])} ({terms[best]})"
    if others:
        reason += "; then " + ", ".join(f"{name} {_fmt(estimates[name])}" for name in others)
    if refused:
        reason += "; not applicable: " + "; ".join(f"{name} ({why})" for name, why in refused.items()
                                                  if name != "winograd_f2")
    return Plan(best, reason, estimates, refused, call)


def plan(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Sequence[tuple[int, int]] = 0,
    dilation: int | Sequence[int] = 1,
    input_dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    dtype: np.dtype | type | str = np.float32,
) -> Plan:
    """Which algorithm ``algorithm="auto"`` uses for one call of the primitive, and why, with the numbers.

    Parameters
    ----------
    x_shape, w_shape : sequence of int
        ``(N, C_in, *S)`` and ``(C_out, C_in/groups, *K)``.
    stride, dilation, input_dilation : int or sequence of int
    padding : int, sequence of int or of ``(lo, hi)`` pairs
        Explicit zero padding of the (input-dilated) input; negative values crop.
    groups : int
    dtype : dtype, default float32

    Returns
    -------
    Plan
        ``algorithm`` (a key of :data:`convlab.ops.algorithms.ALGORITHMS`),
        ``reason`` (the estimate and its terms, the runners-up, and why the
        others do not apply), ``estimates`` (seconds per applicable algorithm),
        ``refused`` and the ``call``. ``str(plan)`` is ``"name: reason"``.

    Examples
    --------
    >>> p = plan((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> p.algorithm
    'winograd_f4'
    >>> plan((8, 64, 56, 56), (64, 64, 3, 3), stride=2, padding=1).algorithm
    'gemm'
    >>> plan((8, 64, 56, 56), (64, 1, 31, 31), padding=15, groups=64).algorithm
    'fft'
    """
    nd = len(w_shape) - 2

    def per_dim(value, name):
        if isinstance(value, (int, np.integer)):
            return (int(value),) * nd
        return tuple(value)

    if isinstance(padding, (int, np.integer)):
        pairs = ((int(padding), int(padding)),) * nd
    else:
        pairs = tuple((int(p), int(p)) if isinstance(p, (int, np.integer)) else (int(p[0]), int(p[1]))
                      for p in padding)
    call = Call.of(x_shape, w_shape, per_dim(stride, "stride"), pairs, per_dim(dilation, "dilation"),
                   per_dim(input_dilation, "input_dilation"), groups, dtype)
    return plan_call(call)


def auto_primitive(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """The primitive with the algorithm :func:`plan` picks for this call."""
    from . import ALGORITHMS

    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    choice = plan_call(call).algorithm
    return ALGORITHMS[choice](x, weight, stride, padding, dilation, input_dilation, groups)
