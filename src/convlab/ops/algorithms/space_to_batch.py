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


def phases_per_call(call: Call) -> int:
    """How many phases one sub-call stacks: their sub-images at most the input's own bytes (at least one).

    Stacking every phase at once holds a padded copy of the whole input (larger
    than the input: the padding, the extension to whole phases), and the
    sub-call's algorithm its own buffers for it, beside the output. Measured on
    DeepLab's layer (float32, batch 8, one thread; tracemalloc): peaks of 34.5,
    31.0 and 19.2 MiB stacking 4, 3 and 1 phases per call, in the same time
    (142-144 ms). Fewer phases per call would keep less, but the cost model
    charges each Winograd call for its weight transform and fixed costs, and
    would then rank ``gemm`` first where this is faster.
    """
    phases, lengths = _phase_lengths(call)
    per_phase = call.batch * call.c_in * math.prod(lengths)
    return max(1, min(math.prod(phases), math.prod(call.x_shape) // max(per_phase, 1)))


def sub_call(call: Call, count: int | None = None) -> Call:
    """The call without dilation of ``count`` phases (default :func:`phases_per_call`) stacked on the batch."""
    _, lengths = _phase_lengths(call)
    nd = call.nd
    count = phases_per_call(call) if count is None else count
    return Call((count * call.batch, call.c_in) + lengths, call.w_shape, call.stride,
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

    The phases are computed :func:`phases_per_call` at a time. ``planner``
    chooses and runs the algorithm of each stacked undilated call (the cost
    model of :mod:`convlab.ops.algorithms.plan`, which the package binds in);
    without one it runs ``gemm``. Where the planner's choice would spread NaN
    or inf (Winograd) and the data holds them, the choice among the algorithms
    that do not is taken instead, so the result has them where the reference
    does. The result is channels-last (an NCHW view) where the sub-calls' are.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("space_to_batch", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd, n, dtype = call.nd, call.batch, call.dtype
    phases, lengths = _phase_lengths(call)
    combos = list(itertools.product(*(range(d) for d in phases)))
    per = phases_per_call(call)
    w = weight.astype(dtype, copy=False)
    w_finite = _finite(w)
    y = None
    for start in range(0, len(combos), per):
        chunk = combos[start:start + per]
        stacked = _stack(call, x, chunk, lengths)  # (len(chunk)*N, C, *Ls)
        sub = sub_call(call, len(chunk))
        if planner is None:
            run = gemm.conv_general
        else:
            chooser = planner
            name = chooser.choose(sub)
            if _spreads(name) and not (w_finite and _finite(stacked)):
                # Named (not through auto, which plans NaN and inf itself), the record promises NaN and inf
                # where the reference puts them: a transform algorithm (Winograd) would spread them.
                from .plan import NONFINITE_PLANNER

                chooser = NONFINITE_PLANNER
                name = chooser.choose(sub)
            run = chooser.primitive(name)
        ys = run(stacked, w, call.stride, sub.padding, sub.dilation, sub.input_dilation, groups)  # (k*N, C_out, *T)
        del stacked
        if y is None:
            if ys.strides[1] == ys.itemsize and call.c_out > 1:
                # The sub-call's algorithm returned a channels-last view (gemm, Winograd): interleave into a
                # channels-last buffer too, so the copies move runs of C_out contiguous elements (measured 20x
                # faster than transposing into NCHW), and return its NCHW view, as those algorithms do.
                buffer = np.empty((n,) + call.out_size + (call.c_out,), dtype=dtype)  # (N, *O, C_out)
                y = buffer.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view
            else:
                y = np.empty(call.out_shape, dtype=dtype)  # every output belongs to exactly one phase
        for index, combo in enumerate(chunk):
            counts = [len(range(r, o, d)) for r, o, d in zip(combo, call.out_size, phases, strict=True)]
            if min(counts) == 0:
                continue  # this phase has no outputs (an output shorter than the dilation)
            dst = y[(slice(None), slice(None)) + tuple(
                slice(r, r + d * (k - 1) + 1, d) for r, d, k in zip(combo, phases, counts, strict=True))]
            np.copyto(dst, ys[(slice(index * n, (index + 1) * n), slice(None)) + tuple(slice(0, k) for k in counts)])
    return y


def _spreads(name: str) -> bool:
    """Whether algorithm ``name`` spreads NaN and inf beyond the outputs whose window holds them."""
    from ._registry import RECORDS  # the registry imports this module

    return not RECORDS[name].nonfinite_exact


def _finite(a: np.ndarray) -> bool:
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def _stack(call: Call, x: np.ndarray, combos: Sequence[tuple[int, ...]], lengths: tuple[int, ...]) -> np.ndarray:
    """The zero-padded input's sub-images ``x_pad[r::d]`` of the phases ``combos``, stacked on the batch axis.

    Sub-image ``r`` holds ``x_pad[r + d*t] = x[r + d*t - lo]``: its first input is
    ``i0 = r + d*t0 - lo`` with ``t0`` the first ``t`` that gives ``i0 >= 0`` (a
    negative ``lo`` crops), and it runs to the end of ``x`` or of the sub-image
    (a negative ``hi`` crops); the rest is padding, zero.
    """
    n, c = call.batch, call.c_in
    stacked = np.zeros((len(combos), n, c) + lengths, dtype=call.dtype)  # (phases, N, C, *Ls)
    for index, combo in enumerate(combos):
        target, source = [], []
        for r, d, ls, size, (lo, _) in zip(combo, call.dilation, lengths, call.size, call.padding, strict=True):
            t0 = max(0, -((r - lo) // d))  # ceil((lo - r)/d), at least 0
            i0 = r + d * t0 - lo
            count = min(len(range(i0, size, d)), ls - t0) if t0 < ls else 0
            target.append(slice(t0, t0 + max(count, 0)))
            source.append(slice(i0, i0 + d * (max(count, 0) - 1) + 1, d))
        if all(s.stop > s.start for s in target):
            stacked[(index, slice(None), slice(None)) + tuple(target)] = x[(slice(None), slice(None)) + tuple(source)]
    return stacked.reshape((len(combos) * n, c) + lengths)  # (phases*N, C, *Ls)


def estimate(call: Call, planner: Planner) -> Estimate:
    """The planner's best estimates of the stacked undilated calls, plus the copies around them.

    The stacking copies (the zeroed buffers written, the input read with the
    phase's stride: counted four times the stacked bytes, plus one inner loop
    per row of a sub-image, which are short: ``L/d`` elements) and the copies
    that interleave the outputs (strided writes, counted four times the output bytes).
    """
    total = math.prod(call.dilation)
    per = phases_per_call(call)
    full, rest = divmod(total, per)
    name, seconds = planner.best_estimate(sub_call(call, per))
    seconds *= full
    if rest:
        seconds += planner.best_estimate(sub_call(call, rest))[1]
    b = call.dtype.itemsize
    _, lengths = _phase_lengths(call)
    stacked = total * call.batch * call.c_in * math.prod(lengths) * b
    rows = total * call.batch * call.c_in * math.prod(lengths[:-1])  # one strided inner loop per sub-image row
    copies = stream(4 * stacked + 4 * math.prod(call.out_shape) * b) + rows * MACHINE.row_seconds
    calls = full + (1 if rest else 0)
    return Estimate(seconds + copies, f"{total} phases stacked on the batch, {calls} undilated call"
                                      f"{'s' if calls > 1 else ''} ({name}, {fmt(seconds)}) + copies {fmt(copies)}")


ALGORITHM = Algorithm(
    name="space_to_batch",
    summary="dilated convolution as one undilated call on the sub-images stacked on the batch: dilation > 1",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=20e-6,
    composite=True,
)
