"""Dilated (atrous) convolution by space-to-batch: ordinary convolutions on the interleaved sub-images.

A convolution with dilation ``d`` (stride 1) reads, for output ``o``, the
padded input at ``o + k*d``. Writing ``o = r + t*d`` (``r = o mod d``, the
output's phase),

    y[r + t*d] = sum_k w[k] * x_pad[r + (t + k)*d] = sum_k w[k] * x_r[t + k],   x_r = x_pad[r::d],

an ordinary (undilated, stride-1, unpadded) correlation of the sub-image
``x_r`` with the same kernel. So a dilated convolution is ``d`` undilated
ones per dimension (``prod(d)`` in all) on sub-images ``d`` times smaller,
whose outputs interleave: ``y[..., r::d] = y_r``. This is TensorFlow's
``tf.nn.atrous_conv2d`` / ``space_to_batch_nd`` formulation (Chen et al.,
"DeepLab", arXiv:1606.00915, section 3.1; Yu & Koltun, arXiv:1511.07122).
The sub-images are stacked along the batch axis, so all phases form ONE call
of the primitive without dilation, which the planner gives to its fastest
algorithm (Winograd for a 3x3 kernel), where the dilated call could only run
im2col + GEMM or the direct sum. The input gradient of a dilated convolution
is a dilated stride-1 call too (the transposed correlation), and goes the same way.

Sizes, one dimension of padded length ``L`` and kernel ``K``: the padded
input is extended with zeros to ``d*ceil(L/d)``, so every phase has
``Ls = ceil(L/d)`` elements and ``Ls - K + 1`` outputs; the interleaved
result has ``d*(Ls - K + 1) >= O = L - (K - 1)*d`` outputs, of which the
first ``O`` are the call's (the others read only the appended zeros).
Dimensions with dilation 1 are not split (one phase), and may have any stride.
A dimension with both a stride and a dilation above 1 is refused (its phases
would mix the sub-images); so is input dilation (:mod:`.subpixel`'s case).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from . import gemm
from ._costs import MACHINE, fmt, stream
from ._layout import Call, check_applies, empty_result
from ._record import Algorithm, Estimate, Planner

__all__ = ["ALGORITHM", "conv_general", "estimate", "sub_call", "unsupported"]


def unsupported(call: Call) -> str | None:
    """Space-to-batch needs some dilation > 1, stride 1 where the dilation is > 1, and no input dilation."""
    if any(ld != 1 for ld in call.input_dilation):
        return f"it needs input_dilation 1, got input_dilation={call.input_dilation}"
    if all(d == 1 for d in call.dilation):
        return f"it needs a dilation > 1 (an atrous convolution), got dilation={call.dilation}"
    if any(d > 1 and s > 1 for d, s in zip(call.dilation, call.stride, strict=True)):
        return (f"it needs stride 1 in every dimension whose dilation is > 1, got stride={call.stride}, "
                f"dilation={call.dilation}")
    return None


def _phase_lengths(call: Call) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The phases per dimension (the dilation) and each sub-image's length ``ceil(L/d)``."""
    phases = tuple(call.dilation)
    lengths = tuple(-(-p // d) for p, d in zip(call.padded_size, phases, strict=True))
    return phases, lengths


def sub_call(call: Call) -> Call:
    """The one call without dilation that computes every phase: the sub-images stacked on the batch axis."""
    phases, lengths = _phase_lengths(call)
    nd = call.nd
    return Call((math.prod(phases) * call.batch, call.c_in) + lengths, call.w_shape, call.stride,
                ((0, 0),) * nd, (1,) * nd, (1,) * nd, call.groups, call.dtype)


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
    *,
    planner: Planner | None = None,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, for dilated calls.

    ``planner`` chooses and runs the algorithm of the stacked undilated call
    (the cost model of :mod:`convlab.ops.algorithms.plan`, which the package
    binds in); without one it runs ``gemm``. Where the planner's choice would
    spread NaN or inf (Winograd) and the data holds them, the choice among the
    algorithms that do not is taken instead, so the result has them where the
    reference does.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("space_to_batch", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd, n = call.nd, call.batch
    phases, lengths = _phase_lengths(call)
    stacked = _stack(call, x, phases, lengths)  # (prod(d)*N, C, *Ls)
    w = weight.astype(call.dtype, copy=False)
    sub = sub_call(call)
    if planner is None:
        run = gemm.conv_general
    else:
        name = planner.choose(sub)
        if _spreads(name) and not (_finite(stacked) and _finite(w)):
            # Named (not through auto, which plans NaN and inf itself), the record promises NaN and inf
            # where the reference puts them: a transform algorithm (Winograd) would spread them.
            from .plan import NONFINITE_PLANNER

            planner = NONFINITE_PLANNER
            name = planner.choose(sub)
        run = planner.primitive(name)
    ys = run(stacked, w, call.stride, sub.padding, sub.dilation, sub.input_dilation, groups)  # (prod(d)*N, C_out, *T)
    del stacked
    t = ys.shape[2:]
    interleaved = tuple(v for pair in zip(t, phases, strict=True) for v in pair)  # (T1, d1, T2, d2, ...)
    # (d1, d2, ..., N, C_out, T1, T2, ...) -> (N, C_out, T1, d1, T2, d2, ...): the phases interleaved
    source = ys.reshape(phases + (n, call.c_out) + t).transpose(
        (nd, nd + 1) + tuple(v for i in range(nd) for v in (nd + 2 + i, i)))
    if ys.strides[1] == ys.itemsize and call.c_out > 1:
        # The sub-call's algorithm returned a channels-last view (gemm, Winograd): interleave into a
        # channels-last buffer too, so the copy moves runs of C_out contiguous elements (measured 20x
        # faster than transposing into NCHW), and return its NCHW view, as those algorithms do.
        buffer = np.empty((n,) + interleaved + (call.c_out,), dtype=call.dtype)  # (N, T1, d1, ..., C_out)
        y = buffer.transpose((0, 2 * nd + 1) + tuple(range(1, 2 * nd + 1)))  # (N, C_out, T1, d1, ...), a view
        np.copyto(y, source)
        y = buffer.reshape((n,) + tuple(ti * d for ti, d in zip(t, phases, strict=True)) + (call.c_out,))
        y = y.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *T*d), a view
    else:
        y = np.empty((n, call.c_out) + interleaved, dtype=call.dtype)
        np.copyto(y, source)
        y = y.reshape((n, call.c_out) + tuple(ti * d for ti, d in zip(t, phases, strict=True)))  # (N, C_out, *T*d)
    if y.shape[2:] == call.out_size:
        return y
    return y[(slice(None), slice(None)) + tuple(slice(0, o) for o in call.out_size)]  # (N, C_out, *O), a view


def _spreads(name: str) -> bool:
    """Whether algorithm ``name`` spreads NaN and inf beyond the outputs whose window holds them."""
    from ._registry import RECORDS  # the registry imports this module

    return not RECORDS[name].nonfinite_exact


def _finite(a: np.ndarray) -> bool:
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def _stack(call: Call, x: np.ndarray, phases: tuple[int, ...], lengths: tuple[int, ...]) -> np.ndarray:
    """The zero-padded input's sub-images ``x_pad[r::d]`` stacked on the batch axis, in one pass over ``x``.

    Sub-image ``r`` holds ``x_pad[r + d*t] = x[r + d*t - lo]``: its first input is
    ``i0 = r + d*t0 - lo`` with ``t0`` the first ``t`` that gives ``i0 >= 0`` (a
    negative ``lo`` crops), and it runs to the end of ``x`` or of the sub-image
    (a negative ``hi`` crops); the rest is padding, zero.
    """
    n, c = call.batch, call.c_in
    stacked = np.zeros(phases + (n, c) + lengths, dtype=call.dtype)  # (d1, d2, ..., N, C, *Ls)
    for combo in itertools.product(*(range(d) for d in phases)):
        target, source = [], []
        for r, d, ls, size, (lo, _) in zip(combo, phases, lengths, call.size, call.padding, strict=True):
            t0 = max(0, -((r - lo) // d))  # ceil((lo - r)/d), at least 0
            i0 = r + d * t0 - lo
            count = min(len(range(i0, size, d)), ls - t0) if t0 < ls else 0
            target.append(slice(t0, t0 + max(count, 0)))
            source.append(slice(i0, i0 + d * (max(count, 0) - 1) + 1, d))
        if all(s.stop > s.start for s in target):
            stacked[combo + (slice(None), slice(None)) + tuple(target)] = x[(slice(None), slice(None)) + tuple(source)]
    return stacked.reshape((math.prod(phases) * n, c) + lengths)  # (prod(d)*N, C, *Ls)


def estimate(call: Call, planner: Planner) -> Estimate:
    """The planner's best estimate of the stacked undilated call, plus the two copies around it.

    The stacking copy (the zeroed buffer written, the input read with the phase's
    stride: counted four times the stacked bytes, plus one inner loop per row of a
    sub-image, which are short: ``L/d`` elements) and the copy that interleaves the
    outputs (a transpose, counted four times the output bytes).
    """
    sub = sub_call(call)
    name, seconds = planner.best_estimate(sub)
    b = call.dtype.itemsize
    stacked = math.prod(sub.x_shape) * b
    interleaved = math.prod(sub.out_shape) * b
    rows = math.prod(sub.x_shape[:-1])  # one strided inner loop per row of a sub-image
    copies = stream(4 * stacked + 4 * interleaved) + rows * MACHINE.row_seconds
    phases = math.prod(call.dilation)
    return Estimate(seconds + copies, f"{phases} phases stacked on the batch, one undilated call ({name}, "
                                      f"{fmt(seconds)}) + copies {fmt(copies)}")


ALGORITHM = Algorithm(
    name="space_to_batch",
    summary="dilated convolution as one undilated call on the sub-images stacked on the batch: dilation > 1",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=20e-6,
    composite=True,
)
