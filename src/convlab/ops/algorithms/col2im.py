"""Input-dilated convolution (transposed convolution, input gradient) as the adjoint of im2col: GEMM, then col2im.

The "backward data" formulation of Caffe (Jia et al., "Caffe: Convolutional
architecture for fast feature embedding", arXiv:1408.5093; ``col2im_cpu`` in
``src/caffe/util/im2col.cpp`` and ``BaseConvolutionLayer::backward_cpu_gemm``),
also how cuDNN and PyTorch's ``slow_conv_transpose2d`` compute a transposed
convolution: instead of gathering the windows of a zero-stuffed input, every
*input* element is multiplied by the whole kernel in one GEMM, and each of the
``prod(K)`` taps of the product is added (scattered) into the output where
that tap sends it. No multiplication meets an inserted zero, and the GEMM has
the input channels as its inner dimension, so when the output has few
channels (the input gradient of an RGB stem: ``C_out = 3``) it does only the
useful ``N P_in C_in prod(K) C_out / g`` multiply-adds, where im2col of the
dilated input would gather ``prod(K) C_in`` values per output position.

Derivation, one spatial dimension (the N-d case is the product of the dimensions).
The primitive reads ``y[o] = sum_k w[k] z[o*s + k*d]`` from the input ``z``
dilated by ``ld`` and padded by ``(lo, hi)`` (:func:`._common.dilate_and_pad`),
where ``z[q] = x[i]`` for ``q = i*ld + lo`` and zero elsewhere (a negative
``lo`` crops: the ``i`` with ``i*ld + lo < 0`` are never read, and no window
reaches past the padded end, so ``hi`` only sets the output length ``O``).
Element ``x[i]`` therefore reaches output ``o`` through tap ``k`` exactly when

    o*s = i*ld + lo - k*d,    0 <= o < O.

With ``g = gcd(ld, s)`` the ``i`` that solve it form an arithmetic progression
``i = i0 + t*(s/g)`` (``i0`` the first with ``i*ld + lo - k*d = 0 mod s``; none
when ``g`` does not divide ``lo - k*d``), and their outputs another,
``o = o0 + t*(ld/g)``. So, with ``cols[i, k] = sum_c x[c, i] w[:, c, k]``
(the GEMM ``W^T (prod(K) C_out/g, C_in/g) @ x (C_in/g, P_in)`` per sample and
group), tap ``k`` is one strided add of a view onto a view::

    y[:, o0 :: ld/g][:T] += cols[:, k, i0 :: s/g][:T]

The usual call (a transposed convolution, or the input gradient of a strided
convolution) has ``s = 1``: every input element feeds every tap, and the
output view steps by ``ld``. A stride > 1 is covered by the same formula
(each tap then uses only every ``s/g``-th input), but the GEMM computes the
taps of every input element, so it pays ``(s/g)^d`` times the useful work;
the cost model weighs that. Input rows that reach no output at all (cropped by
a negative padding) are dropped before the GEMM.

Layout: the GEMM is ``W^T @ x[n]`` on the channels-first input, so ``x`` is
not copied (a channels-last view, as ``gemm`` returns, is read in place: the
product takes either orientation), and the output is channels-first, so the
inner loop of each add runs over a row of the last spatial axis. The columns
of a block of samples (or of rows of the first spatial axis of one large
sample) are computed into one reused buffer of about :data:`CHUNK_BYTES`.
Integers are exact (NumPy's matmul and adds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import gemm
from ._costs import MACHINE, flops_per_mac, fmt, gemm_rate, stream
from ._layout import Call, as_view, check_applies, empty_result
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM", "CHUNK_BYTES", "TapRun", "conv_general", "estimate", "tap_run", "unsupported", "used_range"]

#: Target size of the column buffer of one block (measured on a 2-core Zen 5: 4-16 MiB within a few
#: percent for the ResNet stem's input gradient; splitting a sample into row blocks is slower).
CHUNK_BYTES = 8 * 2**20


class TapRun(NamedTuple):
    """Where one tap sends the inputs ``start + first :: step`` along one dimension: outputs ``out0 :: out_step``."""

    first: int  # of the inputs, relative to the start of the range
    step: int  # s / gcd(ld, s)
    out0: int
    out_step: int  # ld / gcd(ld, s)
    count: int


def unsupported(call: Call) -> str | None:
    """GEMM + col2im covers every call of the primitive (integers are exact: NumPy's matmul and adds)."""
    return None


def tap_run(start: int, stop: int, out: int, k: int, stride: int, dilation: int, input_dilation: int,
            lo: int) -> TapRun | None:
    """The inputs ``i`` in ``[start, stop)`` that tap ``k`` sends to an output ``o`` in ``[0, out)``.

    Solves ``o*stride = i*input_dilation + lo - k*dilation`` (see the module
    docstring) in closed form: O(1) arithmetic, whatever the stride, the
    dilations and the padding. None when no input of the range reaches an
    output through ``k``.
    """
    r = lo - k * dilation
    g = math.gcd(input_dilation, stride)
    step, out_step = stride // g, input_dilation // g
    # i*ld + r = 0 (mod s) has a solution only when g divides r; then i = (-r/g) * (ld/g)^-1 (mod s/g),
    # in closed form (O(1) whatever the stride), and i0 is the first such i at or after `start`.
    if r % g:
        return None
    residue = (-r // g) * pow(out_step, -1, step) % step  # ld/g and s/g are coprime (pow(x, -1, 1) is 0)
    i0 = start + (residue - start) % step
    o0 = (i0 * input_dilation + r) // stride
    t_min = 0 if o0 >= 0 else -(o0 // out_step)  # the first t with o0 + t*out_step >= 0
    t_max = min((stop - 1 - i0) // step if stop - 1 >= i0 else -1, (out - 1 - o0) // out_step)
    if t_max < t_min:
        return None
    return TapRun(i0 + t_min * step - start, step, o0 + t_min * out_step, out_step, t_max - t_min + 1)


def used_range(size: int, out: int, kernel: int, stride: int, dilation: int, input_dilation: int,
               lo: int) -> tuple[int, int]:
    """The range ``[first, stop)`` of inputs along one dimension that reach some output (empty: ``(0, 0)``)."""
    runs = [run for k in range(kernel)
            if (run := tap_run(0, size, out, k, stride, dilation, input_dilation, lo)) is not None]
    if not runs:
        return 0, 0
    return min(r.first for r in runs), max(r.first + (r.count - 1) * r.step for r in runs) + 1


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`."""
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("col2im", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd, n, dtype = call.nd, call.batch, call.dtype
    x = x.astype(dtype, copy=False)
    weight = weight.astype(dtype, copy=False)
    dims = list(zip(call.size, call.out_size, call.kernel, call.stride, call.dilation, call.input_dilation,
                    (lo for lo, _ in call.padding), strict=True))
    used = [used_range(*dim) for dim in dims]
    y = np.zeros(call.out_shape, dtype=dtype)  # (N, C_out, *O)
    if any(stop <= first for first, stop in used):
        return y  # no input element reaches an output
    if any(u != (0, s) for u, s in zip(used, call.size, strict=True)):
        x = x[(slice(None), slice(None)) + tuple(slice(first, stop) for first, stop in used)]
    # The cropped input keeps the geometry: input i' = i - first sits at (i' + first)*ld + lo.
    lows = [lo + first * ld for (first, _), ld, (lo, _) in zip(used, call.input_dilation, call.padding, strict=True)]
    size = x.shape[2:]
    groups, cg, og, kernel, taps = call.groups, call.cg, call.og, call.kernel, call.taps
    # Weight rows ordered (tap, output channel) per group: (C_out, Cg, *K) -> (G, *K, Og, Cg) -> (G, K*Og, Cg).
    k_axes = tuple(range(3, 3 + nd))
    # (G, *K, Og, Cg)
    w_t = np.ascontiguousarray(weight.reshape((groups, og, cg) + kernel).transpose((0,) + k_axes + (1, 2)))
    w_t = w_t.reshape(groups, taps * og, cg)  # (G, K*Og, Cg)
    inner = math.prod(size[1:])
    item = dtype.itemsize
    row_bytes = taps * call.c_out * inner * item  # columns of one row of the first axis
    blocks = list(gemm._blocks(n, size[0], row_bytes * size[0], row_bytes, taps * call.c_out * item,
                               chunk=CHUNK_BYTES))
    longest = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks)
    buffer = np.empty(longest * groups * taps * og * inner, dtype=dtype)
    # Tap runs of the dimensions after the first, the same for every block.
    rest = [[tap_run(0, s, o, k, st, d, ld, lo) for k in range(kk)]
            for s, o, kk, st, d, ld, lo in zip(size[1:], call.out_size[1:], kernel[1:], call.stride[1:],
                                              call.dilation[1:], call.input_dilation[1:], lows[1:], strict=True)]
    y_groups = as_view(y, (n, groups, og) + call.out_size)  # (N, G, Og, *O)
    for n0, n1, r0, r1 in blocks:
        b, rows = n1 - n0, r1 - r0
        xb = x[n0:n1, :, r0:r1]  # (b, C_in, rows, *S[1:])
        try:
            xm = as_view(xb, (b, groups, cg, rows * inner))  # (b, G, Cg, P_block)
        except (AttributeError, ValueError):  # a view whose spatial axes do not merge: copy this block
            xm = np.ascontiguousarray(xb).reshape(b, groups, cg, rows * inner)  # (b, G, Cg, P_block)
        # (b, G, K*Og, P_block)
        cols = as_view(buffer[:b * groups * taps * og * rows * inner], (b, groups, taps * og, rows * inner))
        np.matmul(w_t, xm, out=cols)  # (b, G, K*Og, P_block): every input times every tap
        cols = as_view(cols, (b, groups) + kernel + (og, rows) + size[1:])  # (b, G, *K, Og, rows, *S[1:])
        first = [tap_run(r0, r1, call.out_size[0], k, call.stride[0], call.dilation[0], call.input_dilation[0],
                         lows[0]) for k in range(kernel[0])]
        for tap in itertools.product(*(range(k) for k in kernel)):
            runs = [first[tap[0]]] + [rest[i][k] for i, k in enumerate(tap[1:])]
            if any(run is None for run in runs):
                continue  # this tap sends no input of the block to an output
            src = cols[(slice(None), slice(None)) + tap + (slice(None),) + tuple(
                slice(r.first, r.first + (r.count - 1) * r.step + 1, r.step) for r in runs)]  # (b, G, Og, *T)
            dst = y_groups[(slice(n0, n1), slice(None), slice(None)) + tuple(
                slice(r.out0, r.out0 + (r.count - 1) * r.out_step + 1, r.out_step) for r in runs)]
            np.add(dst, src, out=dst)  # col2im: the tap's products land on their outputs
    return y


def estimate(call: Call) -> Estimate:
    """The GEMM over the input positions that reach an output, the strided tap adds, the zeroed output.

    The GEMM ``W^T (K C_out/g, C_in/g) @ x (C_in/g, P_in)`` over the input
    positions that reach an output (``N P_in C_in K C_out/g`` MACs: with input
    dilation exactly the useful ones, with a stride ``s`` the taps of inputs no
    output reads too), with the efficiency of a product whose long axis is
    ``P_in``: ``min(1, (C_in/g)/64) * min(1, K C_out/g / 16) * min(1, P_in/4096)``
    (measured at the full rate with 64 input channels; short maps stall
    OpenBLAS's threads); the scatter, one strided add per tap, ``E`` elements
    in all (``N C_out`` times the product over dimensions of the taps' run
    lengths), counted as ``4 E b`` bytes at stream bandwidth (strided writes),
    plus one inner loop per run of the last axis; the zeroed output.
    """
    b = call.dtype.itemsize
    used, scattered, last_runs = [], 1, 1
    for size, out, kernel, stride, dilation, ld, (lo, _) in zip(
            call.size, call.out_size, call.kernel, call.stride, call.dilation, call.input_dilation, call.padding,
            strict=True):
        first, stop = used_range(size, out, kernel, stride, dilation, ld, lo)
        used.append(max(0, stop - first))
        runs = [r for k in range(kernel) if (r := tap_run(0, size, out, k, stride, dilation, ld, lo))]
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
    blocks = call.batch * max(1, sample_columns // CHUNK_BYTES) if sample_columns > CHUNK_BYTES \
        else max(1, call.batch * sample_columns // CHUNK_BYTES)
    compute = (macs * flops_per_mac(call.dtype) / (gemm_rate(call.dtype) * efficiency)
               + blocks * call.groups * MACHINE.call_seconds)
    elements = call.batch * call.c_out * scattered  # added by the taps, in all
    scatter = (stream(4 * elements * b) + elements / last_runs * MACHINE.row_seconds
               + blocks * call.taps * MACHINE.call_seconds)
    zeroed = stream(math.prod(call.out_shape) * b)
    seconds = compute + scatter + zeroed
    return Estimate(seconds, f"GEMM {fmt(compute)} + {call.taps} strided adds {fmt(scatter + zeroed)}")


ALGORITHM = Algorithm(
    name="col2im",
    summary="one GEMM per input element and tap, then strided adds (Caffe's backward-data)",
    primitive=conv_general,
    estimate=estimate,
    fixed_seconds=30e-6,
)
