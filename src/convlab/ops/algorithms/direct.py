"""Direct convolution, compiled: the reference's sum over channels and taps, for layers with few of them.

LeNet's layers (1->6 and 6->16 channels, 5x5 kernels, 28x28 and 14x14 maps)
are too small for the GEMM algorithms to pay: im2col copies the input
``prod(K)`` times to feed a product whose inner dimension is 25 or 150, and
the FFT transforms planes of 14x14 that the kernel nearly covers. Both are
bound by the memory they move, not by their 60-120 million multiply-adds.
Here every output is the direct sum

    y[n, o, *p] = sum over c, *k of  w[o, c, *k] * x_pad[n, g*Cg + c, *(p*s + k*d)]

computed by compiled loops (Numba, the optional ``fast`` extra) over the
input, dilated and zero-padded once by NumPy: no window buffer, no
transform. The loops are in :mod:`._direct_numba`: stride 1 runs each tap
over a whole plane at once (the outputs laid on the padded input's row
pitch), other strides row by row, and the weight gradient's correlation (a
large "kernel", the output gradient, over a small output, the kernel size)
keeps a partial sum per kernel element so that its loops too run over whole
planes. Sums run in the input's dtype.

It applies to every call. float32 and float64 calls run compiled where numba
imports (imported on the first such call, not with convlab); integers,
complex numbers, and every call when numba is absent, run a NumPy loop over
the kernel taps (one ``einsum`` over the channels per tap), exact on
integers. ``auto`` considers it through its estimate (the compiled kernels'
multiply-adds at the rates in :data:`NUMBA_MACS`, measured on LeNet's layers,
plus the padded copy), which is low only where the channels times taps are few.

The weight gradient of a convolution reaches the primitive as that
correlation only where the op does not compute it as im2col + GEMM directly
(:func:`convlab.ops._conv_common.weight_grad_raw`: fewer than four input
channels per group, or where the planner chooses ``direct`` for it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import load_kernels
from ._costs import MACHINE, fmt, gemm_seconds, kernel_speed, kernel_threads, l2_bytes, stream
from ._layout import Call, check_applies, empty_result, padded_channels_first
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM", "NUMBA_MACS", "compiled_kernel", "conv_general", "estimate", "numba_available",
           "unsupported", "uses_numba"]

_kernels = None  # the module ._direct_numba once imported; False when numba does not import
_NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def unsupported(call: Call) -> str | None:
    """None: the direct sum applies to every call (compiled or on NumPy)."""
    return None


def _load_kernels():
    """The compiled kernels' module, imported on first use; None without numba."""
    global _kernels
    _kernels = load_kernels(_kernels, "_direct_numba")
    return _kernels or None


def numba_available() -> bool:
    """Whether numba imports (tries it once, then remembers)."""
    return _load_kernels() is not None


def uses_numba(call: Call) -> bool:
    """Whether :func:`conv_general` runs ``call`` compiled (float32/float64 and numba imports)."""
    return call.dtype in _NUMBA_DTYPES and call.nd <= 3 and numba_available()


def compiled_kernel(call: Call) -> str:
    """Which compiled loop runs ``call`` (finite data): ``'weight_grad'``, ``'flat'`` or ``'rows'``.

    ``weight_grad``: one or two spatial dimensions, kernel dilation 1 and output rows shorter than the
    kernel's (the weight gradient's correlation); ``flat``: stride 1 in the last two dimensions; else ``rows``.
    """
    inner_stride = call.stride[-2:]
    if call.nd <= 2 and all(d == 1 for d in call.dilation) and call.out_size[-1] < call.kernel[-1]:
        return "weight_grad"
    if all(s == 1 for s in inner_stride):
        return "flat"
    return "rows"


def _five_d(a: np.ndarray) -> np.ndarray:
    """``(N, C, *S)`` with 1-3 spatial dimensions as ``(N, C, D, H, W)`` (leading sizes 1), a view."""
    return a.reshape(a.shape[:2] + (1,) * (5 - a.ndim) + a.shape[2:])


def _three(values: Sequence[int], fill: int = 1) -> tuple[int, ...]:
    return (fill,) * (3 - len(values)) + tuple(values)


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, on every call.

    Compiled where :func:`uses_numba` says so, else one NumPy ``einsum`` per kernel tap.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("direct", unsupported(call))
    if call.is_empty:
        return empty_result(call)
    if call.cg == 0:
        return np.zeros(call.out_shape, dtype=call.dtype)
    if uses_numba(call):
        return _compiled(call, x, weight)
    return _per_tap(call, x, weight)


def _padded(call: Call, x: np.ndarray) -> np.ndarray:
    """The input dilated and zero-padded, contiguous, in the call's dtype (no copy when there is nothing to do)."""
    if all(p == (0, 0) for p in call.padding) and all(ld == 1 for ld in call.input_dilation):
        return np.ascontiguousarray(x, dtype=call.dtype)
    return padded_channels_first(x, call.padding, call.input_dilation, dtype=call.dtype)  # (N, C_in, *S_p)


def _compiled(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    kernels = _load_kernels()

    dtype = call.dtype
    w = np.ascontiguousarray(weight, dtype=dtype)
    kind = compiled_kernel(call)
    xp = None if kind == "flat" else _padded(call, x)  # (N, C_in, *S_p)
    if kind == "weight_grad" and not np.isfinite(xp).all():
        # The weight_grad loop multiplies zeros with input elements the reference never reads: only
        # the exact loops put a NaN or an inf where the reference does.
        kind = "rows"
    with kernels.launch():
        if kind == "weight_grad":
            x4 = xp.reshape((xp.shape[0], xp.shape[1], 1) + xp.shape[2:]) if call.nd == 1 else xp
            pitch = x4.shape[3]
            kh, kw = (1,) + call.kernel if call.nd == 1 else call.kernel
            # (C_out, C_in/g, KH, W_p): the kernel's rows on the input's pitch, zeros beyond KW
            k_grid = np.zeros((call.c_out, call.cg, kh, pitch), dtype=dtype)
            k_grid[..., :kw] = w.reshape((call.c_out, call.cg, kh, kw))
            sh, sw = (1,) + call.stride if call.nd == 1 else call.stride
            y = np.empty((call.batch, call.c_out) + ((1,) if call.nd == 1 else ()) + call.out_size, dtype=dtype)
            kernels.weight_grad(x4, k_grid.reshape(call.c_out, call.cg, kh * pitch), y, sh, sw, kw, call.groups)
            return y.reshape(call.out_shape)
        sd, sh, sw = _three(call.stride)
        dd, dh, dw = _three(call.dilation)
        y = np.empty((call.batch, call.c_out) + _three(call.out_size), dtype=dtype)  # (N, C_out, OD, OH, OW)
        if kind == "flat":
            xt = _padded(call, x.swapaxes(0, 1))  # (C_in, N, *S_p): a block of samples per loop
            volume = math.prod(xt.shape[2:])
            block = max(1, min(call.batch, FLAT_BLOCK_ELEMENTS // max(volume, 1)))
            kernels.flat(_five_d(xt), _five_d(w), y, sd, dd, dh, dw, call.groups, block)
        else:
            kernels.rows(_five_d(xp), _five_d(w), y, sd, sh, sw, dd, dh, dw, call.groups)
    return y.reshape(call.out_shape)  # (N, C_out, *O)


def _per_tap(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The NumPy loop: per kernel tap, one product over the channels of a group of the shifted (strided) view."""
    dtype = call.dtype
    n, g, cg, og = call.batch, call.groups, call.cg, call.og
    xp = padded_channels_first(x, call.padding, call.input_dilation, dtype=dtype)  # (N, C_in, *S_p)
    xg = xp.reshape((n, g, cg) + xp.shape[2:])  # (N, G, Cg, *S_p)
    w = weight.astype(dtype, copy=False).reshape((g, og, cg) + call.kernel)  # (G, og, Cg, *K)
    y = np.zeros((n, g, og) + call.out_size, dtype=dtype)  # (N, G, og, *O)
    axes = "uvw"[:call.nd]
    subscripts = f"ngc{axes},goc->ngo{axes}"
    for tap in np.ndindex(*call.kernel):
        view = xg[(Ellipsis,) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s) for k, d, o, s in
                                      zip(tap, call.dilation, call.out_size, call.stride, strict=True))]
        y += np.einsum(subscripts, view, w[(Ellipsis,) + tap])  # (N, G, og, *O)
    return y.reshape(call.out_shape)  # (N, G*og, *O) = (N, C_out, *O)


# --------------------------------------------------------------------------- cost


#: Multiply-adds per second of the compiled kernels, float32, 2 threads (float64: half): twice the rates
#: measured on one core of a 2-core Intel Xeon (Sapphire Rapids, shared) on LeNet's layers, CPU time:
#: ``flat`` 16-17 G/s per core counting the padded planes' extra columns (second layer, forward and input
#: gradient), ``weight_grad`` 4.5-7 G/s counting every kernel-plane element (both layers' weight gradients),
#: ``rows`` 1.7 G/s (a stride-2 3x3 and 5x5 layer).
NUMBA_MACS = {"flat": 30e9, "rows": 3.5e9, "weight_grad": 12e9}

#: Accumulator of one ``flat`` task, in elements (samples x padded plane): about 16 KiB of float32, in L1.
FLAT_BLOCK_ELEMENTS = 4096

#: Cost of one kernel launch on Numba's fork-safe ``workqueue`` layer (see :mod:`._depthwise_numba`).
LAUNCH_SECONDS = 20e-6


def _kernel_macs(call: Call, kind: str) -> int:
    """Multiply-adds the compiled kernel ``kind`` performs (the flat grid's extra columns included)."""
    if kind == "flat":  # the loops run over whole padded planes of a block of samples
        plane = math.prod(call.padded_size[-2:])
        depth = call.out_size[0] if call.nd == 3 else 1
        return call.batch * call.c_out * depth * plane * call.cg * call.taps
    if kind == "weight_grad":
        pitch = call.padded_size[-1]
        kh = call.kernel[-2] if call.nd > 1 else 1
        length = (kh - 1) * pitch + call.kernel[-1]
        return call.batch * call.c_out * call.positions * call.cg * length
    return call.macs


def _flat_spill(call: Call, itemsize: int) -> float:
    """Seconds of the ``flat`` loop's memory traffic where its accumulator outgrows the L2 cache.

    Each task (an output channel, a block of samples) runs one pass over its accumulator
    (read and written) and the input's span (read) per pair of kernel columns. Where the
    two do not fit in the L2 cache (:func:`~._costs.l2_bytes`), every pass streams them
    from memory (a single-channel 1024x1024 image: 4 MiB planes, 66 passes for 11x11),
    on each of the kernels' threads at the memory rate.
    """
    volume = math.prod(call.padded_size[-2:])
    block = max(1, min(call.batch, FLAT_BLOCK_ELEMENTS // max(volume, 1)))
    length = (block - 1) * volume + (call.out_size[-2] - 1) * call.padded_size[-1] + call.out_size[-1] \
        if call.nd > 1 else block * call.padded_size[-1]
    if 2 * length * itemsize <= l2_bytes():
        return 0.0
    tasks = call.c_out * math.ceil(call.batch / block) * (call.out_size[0] if call.nd == 3 else 1)
    passes = call.cg * math.prod(call.kernel[:-1]) * math.ceil(call.kernel[-1] / 2)
    threads = min(kernel_threads(), tasks)
    return tasks * passes * 3 * length * itemsize / (MACHINE.stream_bytes * threads)


def estimate(call: Call) -> Estimate:
    """The compiled kernel's multiply-adds at :data:`NUMBA_MACS`, the padded copy, and the output.

    Without numba (or for integers and complex numbers): one ``einsum`` per tap, a thin product
    (inner dimension ``C_in/groups``) and a pass over the output for the sum.
    """
    b = call.dtype.itemsize
    padded_elements = call.batch * call.c_in * math.prod(call.padded_size)
    padded = stream(2 * padded_elements * b)
    if any(p != (0, 0) for p in call.padding) or any(ld > 1 for ld in call.input_dilation):
        # a fresh zeroed array (written once more) filled row by row: one inner loop per input row
        padded += stream(padded_elements * b) + call.batch * call.c_in * math.prod(call.size[:-1]) * MACHINE.row_seconds
    output = stream(call.batch * call.c_out * call.positions * b)
    if uses_numba(call):
        kind = compiled_kernel(call)
        macs = _kernel_macs(call, kind)
        rate = NUMBA_MACS[kind] / (2 if b == 8 else 1)
        rows = 0.0
        if kind == "rows" and call.out_size[-1] < 32:  # one short inner loop per output row and tap
            rows = 15e-9 * call.batch * call.c_out * (call.positions // max(call.out_size[-1], 1)) * call.cg * call.taps
        compute = (macs / rate + rows) / kernel_speed()
        spill = 0.0
        if kind == "flat":
            spill = _flat_spill(call, b)
            # each task's accumulator zeroed and copied out to the output (read, written), on the kernels' threads:
            # next to few multiply-adds per output (a depthwise layer's 9-49) it is a good part of the time
            compute += stream(3 * call.batch * call.c_out * call.positions * b) / kernel_threads()
        terms = f"compiled ({kind}): {macs:,} multiply-adds {fmt(compute)}"
        if spill > compute:
            terms += f"; its planes outgrow the L2 cache: {fmt(spill)} of memory traffic"
        return Estimate(max(compute, spill) + padded + output + LAUNCH_SECONDS, terms)
    per_tap = gemm_seconds(call.macs // max(call.taps, 1), call.cg, call.og, 1, call.dtype)
    passes = stream(3 * call.batch * call.c_out * call.positions * b) + MACHINE.call_seconds * 4
    seconds = call.taps * (per_tap + passes) + padded
    return Estimate(seconds, f"{call.taps} taps x einsum and sum {fmt(seconds - padded)}")


ALGORITHM = Algorithm(
    name="direct",
    summary="the direct sum over channels and taps, compiled (numba) where it imports: few channels x taps",
    primitive=conv_general,
    unsupported=None,
    estimate=estimate,
    fixed_seconds=25e-6,
    exact_integers=True,
    nonfinite_exact=True,
)
