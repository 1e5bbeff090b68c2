"""Transposed convolution as ONE stride-1 convolution with the phases as output channels, then depth-to-space.

:mod:`.subpixel` splits an input-dilated call (a transposed convolution, the
input gradient of a strided one) into its output phases and computes each
as its own call: a stride-2 4x4 transposed convolution is four 2x2
convolutions, four window gathers and four thin GEMMs of ``C_out`` columns.
The phases read the same input: phase ``phi`` (one dimension, see
:mod:`.subpixel`'s derivation) computes

    y[phi + t*P] = sum_{j < J_phi} w[k0_phi + j*D] * x[t + base_phi + j]

(stride and dilation 1 on the undilated input, the usual case). Shifting each
phase's output index by ``e_phi = base_phi - L`` (``L = min base_phi``) makes
every phase read the window ``x[u + L + j]``, ``j < W = max J_phi``, at the
same position ``u = t + e_phi``. So one convolution of ``x`` with a ``W``-tap
kernel, padding ``-L``, whose output channels are the phases times ``C_out``
(the sub-kernels ``w[k0_phi::D]`` stacked, zero beyond ``J_phi`` taps),
computes them all, and the phases interleave back:
``y[..., phi::P] = Y[phi block][..., e_phi : e_phi + T_phi]`` (depth-to-space,
PyTorch's ``pixel_shuffle``; Shi et al., arXiv:1609.05158, the "sub-pixel
convolution layer"; Dumoulin & Visin, arXiv:1603.07285, section 4). One window
gather and one GEMM with ``prod(P)`` times wider output serve every phase; the
price is the zero taps where phases have fewer than ``W`` taps (a 4x4 kernel
at stride 2 has none; a 3x3 kernel at stride 2 computes 16 taps for 9). The
convolution is one call of the primitive without input dilation, which the
planner runs by its fastest algorithm. Those zero taps would meet input
elements their phase never reads, so on an input holding NaN or inf (``0 *
inf`` is NaN) such a call runs :mod:`.subpixel`'s separate phases instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import gemm, subpixel
from ._costs import fmt, stream
from ._layout import Call, check_applies, empty_result
from ._record import Algorithm, Estimate, Planner
from .subpixel import Phase, phases

__all__ = ["ALGORITHM", "Fused", "conv_general", "estimate", "fused", "unsupported"]


class Fused(NamedTuple):
    """The one call that computes every phase, and where each phase's outputs are in its result."""

    call: Call  # x (N, C_in, *S), weight (G * phases * Og, Cg, *W), stride 1, no dilation of either kind
    dims: tuple[tuple[Phase, ...], ...]  # the phases of each dimension that meet input elements
    shifts: tuple[tuple[int, ...], ...]  # e_phi per phase of each dimension
    window: tuple[int, ...]  # W per dimension


def _dims(call: Call) -> list[list[Phase]]:
    return [phases(*args) for args in zip(call.size, call.kernel, call.stride, call.padding, call.dilation,
                                          call.input_dilation, call.out_size, strict=True)]


def unsupported(call: Call) -> str | None:
    """It needs input dilation > 1 whose phases are stride-1 undilated correlations (a transposed convolution)."""
    if all(ld == 1 for ld in call.input_dilation):
        return (f"it needs input_dilation > 1 (a transposed convolution, or the input gradient of a strided "
                f"convolution), got input_dilation={call.input_dilation}")
    if call.is_empty or call.cg == 0:
        return None
    for dim in _dims(call):
        if any(p.stride != 1 or p.dilation != 1 for p in dim):
            return (f"it needs phases of stride 1 and dilation 1 (stride 1 and dilation 1 or a multiple of the "
                    f"input dilation), got stride={call.stride}, dilation={call.dilation}, "
                    f"input_dilation={call.input_dilation}")
    return None


def fused(call: Call) -> Fused:
    """The fused call of ``call`` (which :func:`unsupported` accepts and which has outputs)."""
    dims = [dim for dim in _dims(call)]
    shifts, window, pads, outs = [], [], [], []
    for dim, size in zip(dims, call.size, strict=True):
        if not dim:
            shifts.append(())
            window.append(1)
            pads.append((0, 1 - size))
            outs.append(1)
            continue
        bases = [-p.padding[0] for p in dim]
        low = min(bases)
        width = max(p.taps for p in dim)
        e = tuple(b - low for b in bases)
        u = max(s + p.outputs for s, p in zip(e, dim, strict=True))
        shifts.append(e)
        window.append(width)
        pads.append((-low, u + low + width - 1 - size))
        outs.append(u)
    count = math.prod(len(dim) for dim in dims)
    fused_call = Call(call.x_shape, (call.groups * count * call.og, call.cg) + tuple(window), (1,) * call.nd,
                      tuple(pads), (1,) * call.nd, (1,) * call.nd, call.groups, call.dtype)
    return Fused(fused_call, tuple(tuple(d) for d in dims), tuple(shifts), tuple(window))


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
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, for transposed convolutions.

    ``planner`` chooses and runs the algorithm of the fused call (without one: ``gemm``). The
    result is channels-last (returned as an NCHW view) when the fused call's is.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("depth_to_space", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd, n, dtype = call.nd, call.batch, call.dtype
    f = fused(call)
    combos = list(itertools.product(*(range(len(dim)) for dim in f.dims)))
    if not combos:
        return np.zeros(call.out_shape, dtype=dtype)  # no tap lands on an input element
    x = x.astype(dtype, copy=False)
    padded_taps = any(p.taps < width for dim, width in zip(f.dims, f.window, strict=True) for p in dim)
    if padded_taps and dtype.kind in "fc" and not np.isfinite(x).all():
        # The zero taps of a phase with fewer than W taps meet input elements that phase never reads:
        # a NaN or an inf there would give 0 * inf = NaN where the reference has none. Run the phases apart.
        return subpixel.conv_general(x, weight, stride, padding, dilation, input_dilation, groups, planner=planner)
    g, og, cg = groups, call.og, call.cg
    # (G, phases, Og, Cg, *W): each phase's sub-kernel w[k0::D] at the start of the window, zeros after
    wf = np.zeros((g, len(combos), og, cg) + f.window, dtype=dtype)
    w = weight.astype(dtype, copy=False).reshape((g, og, cg) + call.kernel)  # (G, Og, Cg, *K)
    for index, combo in enumerate(combos):
        ph = [f.dims[i][c] for i, c in enumerate(combo)]
        taps = tuple(slice(p.first_tap, p.first_tap + (p.taps - 1) * p.tap_step + 1, p.tap_step) for p in ph)
        wf[(slice(None), index, slice(None), slice(None)) + tuple(slice(0, p.taps) for p in ph)] = \
            w[(slice(None), slice(None), slice(None)) + taps]
    wf = wf.reshape(f.call.w_shape)  # (G*phases*Og, Cg, *W)
    sub = f.call
    run = gemm.conv_general if planner is None else planner.primitive(planner.choose(sub))
    ys = run(x, wf, sub.stride, sub.padding, sub.dilation, sub.input_dilation, groups)  # (N, G*phases*Og, *U)
    u = ys.shape[2:]
    channels_last = ys.strides[1] == ys.itemsize and call.c_out > 1
    full = len(combos) == math.prod(p.period for p in (dim[0] for dim in f.dims))
    make = np.empty if full else np.zeros  # phases that meet no input stay zero
    if channels_last:
        buffer = make((n,) + call.out_size + (call.c_out,), dtype=dtype)  # (N, *O, C_out)
        y = buffer.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view
    else:
        y = make(call.out_shape, dtype=dtype)
    source = ys.reshape((n, g, len(combos), og) + u)  # (N, G, phases, Og, *U)
    target = y.reshape((n, g, og) + call.out_size) if not channels_last else \
        buffer.reshape((n,) + call.out_size + (g, og)).transpose((0, nd + 1, nd + 2) + tuple(range(1, nd + 1)))
    for index, combo in enumerate(combos):
        ph = [f.dims[i][c] for i, c in enumerate(combo)]
        e = [f.shifts[i][c] for i, c in enumerate(combo)]
        dst = target[(slice(None), slice(None), slice(None)) + tuple(
            slice(p.phase, p.phase + (p.outputs - 1) * p.period + 1, p.period) for p in ph)]  # (N, G, Og, *T)
        src = source[(slice(None), slice(None), index, slice(None)) + tuple(
            slice(s, s + p.outputs) for s, p in zip(e, ph, strict=True))]  # (N, G, Og, *T)
        np.copyto(dst, src)
    return y


def estimate(call: Call, planner: Planner) -> Estimate:
    """The planner's best estimate of the fused call (zero taps included), plus the depth-to-space copy."""
    if call.is_empty or call.cg == 0:
        return Estimate(0.0, "nothing to compute")
    f = fused(call)
    name, seconds = planner.best_estimate(f.call)
    b = call.dtype.itemsize
    # the output read once and written in phase-interleaved runs (counted three times, as subpixel's strided
    # writes), zeroed or allocated: measured on DCGAN's and ResNet's stride-2 layers, where it ranks the two
    copies = stream(6 * math.prod(call.out_shape) * b)
    count = math.prod(len(dim) for dim in f.dims)
    useful = sum(math.prod(p.taps for p in combo) for combo in itertools.product(*f.dims))
    return Estimate(seconds + copies, f"{count} phases as channels of one {'x'.join(map(str, f.window))} call "
                                      f"({name}, {fmt(seconds)}; {useful} of {count * math.prod(f.window)} taps "
                                      f"useful) + depth-to-space {fmt(copies)}")


ALGORITHM = Algorithm(
    name="depth_to_space",
    summary="input dilation as one call with the phases as output channels, then depth-to-space: input_dilation > 1",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=20e-6,
    composite=True,
)
