"""Input-dilated convolution (transposed convolution) by sub-pixel decomposition.

A transposed convolution with stride ``s`` is computed by the primitive as a
correlation of the input *dilated* by ``s`` (``s - 1`` zeros between elements):
with a 3x3 kernel and ``s = 2`` three quarters of the multiplications meet an
inserted zero. The sub-pixel view (Shi et al., "Real-time single image and
video super-resolution using an efficient sub-pixel convolutional neural
network", arXiv:1609.05158; Dumoulin & Visin, arXiv:1603.07285, section 4.5)
splits the output into phases by position, and each phase only ever meets the
taps that land on real input elements.

Derivation, one spatial dimension (the N-d case is the product of phases).
Output ``o`` reads ``z[o*s + k*d]`` of the dilated-and-padded input ``z``,
which is ``x[i]`` when ``o*s + k*d - lo = i*ld`` and zero otherwise. With
``P = ld / gcd(s, ld)`` the residue of ``o*s - lo`` modulo ``ld`` depends only
on ``phi = o mod P``; for phase ``phi`` the useful taps are
``k = k0 + j*D`` (``D = ld / gcd(d, ld)``, ``k0`` the first solution of
``(phi*s - lo + k*d) = 0 mod ld``) and, writing ``o = phi + t*P``,

    y[phi + t*P] = sum_j w[k0 + j*D] * x[t*s' + base + j*d'],
    s' = P*s/ld,  d' = D*d/ld,  base = (phi*s + k0*d - lo)/ld,

a correlation of the *undilated* input with the sub-kernel ``w[k0::D]``,
stride ``s'``, dilation ``d'`` and padding ``-base`` on the left (negative:
crop), which the primitive computes without input dilation, by whichever
algorithm the cost model picks for it. The phases are then interleaved:
``y[..., phi::P] = y_phi``. No multiplication touches an inserted zero, so a
stride-2 transposed 3x3 convolution does a quarter of the work of the dilated
form, and so does the input gradient of a stride-2 convolution, which goes
through the same primitive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import gemm
from ._costs import stream
from ._layout import Call, check_applies, empty_result, padded_channels_last
from ._record import Algorithm, Estimate, Planner

__all__ = ["ALGORITHM", "Phase", "conv_general", "estimate", "phase_call", "phase_calls", "phases", "unsupported"]


class Phase(NamedTuple):
    """One output phase along one dimension: the outputs ``phase::period``, as a stride-``stride`` correlation."""

    phase: int
    period: int
    first_tap: int  # k0
    tap_step: int  # D
    taps: int  # J, 0 when no tap of this phase lands on an input element
    stride: int  # s'
    dilation: int  # d'
    padding: tuple[int, int]  # on the undilated input; negative crops
    outputs: int  # T


def unsupported(call: Call) -> str | None:
    """Sub-pixel decomposition needs some ``input_dilation > 1`` (else there is nothing to decompose)."""
    if all(ld == 1 for ld in call.input_dilation):
        return (f"it needs input_dilation > 1 (a transposed convolution, or the input gradient of a "
                f"strided convolution), got input_dilation={call.input_dilation}")
    return None


def phases(size: int, kernel: int, stride: int, padding: tuple[int, int], dilation: int, input_dilation: int,
           out: int) -> list[Phase]:
    """The phases of one spatial dimension that meet input elements, in phase order (derivation: module docstring).

    Only those phases are listed: every other output phase reads inserted zeros
    only (or has no outputs) and stays zero. They are found in closed form, one
    candidate per kernel tap, so the cost is ``O(kernel)`` whatever the stride
    and the input dilation (a transposed convolution with stride ``s`` has ``s``
    phases per dimension, of which at most ``kernel`` meet the input): tap ``k``
    lands on an input element for the outputs ``o`` with
    ``o*s = lo - k*d (mod ld)``, solvable when ``g = gcd(s, ld)`` divides
    ``lo - k*d``, for the single phase ``phi = ((lo - k*d)/g) * (s/g)^-1 mod P``;
    distinct taps below ``D`` give distinct phases, and the first tap of a phase,
    ``k0``, is the one below ``D`` that gives it.
    """
    lo, _ = padding
    ld = input_dilation
    g = math.gcd(stride, ld)
    period = ld // g
    step = ld // math.gcd(dilation, ld)
    inverse = pow(stride // g, -1, period)  # s/g and P = ld/g are coprime (pow(x, -1, 1) is 0)
    found = {}  # phase -> its first tap k0
    for k0 in range(min(kernel, step)):
        residue = lo - k0 * dilation
        if residue % g:
            continue  # this tap never lands on an input element
        phi = (residue // g) * inverse % period
        if phi < out:  # a phase at or past `out` has no outputs
            found[phi] = k0
    result = []
    for phi in sorted(found):
        k0 = found[phi]
        outputs = len(range(phi, out, period))
        taps = (kernel - 1 - k0) // step + 1
        base = (phi * stride + k0 * dilation - lo) // ld
        sub_stride = period * stride // ld
        sub_dilation = step * dilation // ld
        last = (outputs - 1) * sub_stride + base + (taps - 1) * sub_dilation  # last input index read
        result.append(Phase(phi, period, k0, step, taps, sub_stride, sub_dilation, (-base, last + 1 - size),
                            outputs))
    return result


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
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, for ``input_dilation > 1``.

    ``planner`` chooses and runs the algorithm of each phase (a call without
    input dilation): the cost model of :mod:`convlab.ops.algorithms.plan`, which
    the package binds in; without one, every phase runs ``gemm``. The phases
    given to ``gemm`` share one padded channels-last copy of ``x``. The result
    is channels-last, returned as an NCHW view.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("subpixel", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd = call.nd
    x = x.astype(call.dtype, copy=False)
    weight = weight.astype(call.dtype, copy=False)
    combos = _combos(call)  # the other phases meet no input element: they stay zero
    if planner is None:
        names = ["gemm"] * len(combos)
    else:
        names = [planner.choose(phase_call(call, combo)) for combo in combos]
    y = np.zeros((call.batch,) + call.out_size + (call.c_out,), dtype=call.dtype)  # channels-last
    # A 1x1 phase (a 2x2 stride-2 transposed layer's) runs through gemm's own entry point, which multiplies
    # the NCHW input in place, as gemm's estimate of that call assumes; the others gather windows from one
    # shared padded channels-last copy.
    shared = [combo for combo, name in zip(combos, names, strict=True)
              if name == "gemm" and any(p.taps != 1 for p in combo)]
    if shared:
        # One padded channels-last copy of x serves every GEMM phase: pad by the most any phase needs,
        # and give each phase the window of that buffer its own padding describes.
        lo = tuple(max(combo[i].padding[0] for combo in shared) for i in range(nd))
        hi = tuple(max(combo[i].padding[1] for combo in shared) for i in range(nd))
        xp = padded_channels_last(x, tuple(zip(lo, hi, strict=True)), (1,) * nd)
    for combo, name in zip(combos, names, strict=True):
        sub_weight = np.ascontiguousarray(weight[(slice(None), slice(None)) + tuple(
            slice(p.first_tap, p.first_tap + (p.taps - 1) * p.tap_step + 1, p.tap_step) for p in combo)])
        target = (slice(None),) + tuple(slice(p.phase, None, p.period) for p in combo) + (slice(None),)
        if name == "gemm" and combo in shared:
            window = (slice(None),) + tuple(
                slice(lo[i] - p.padding[0], lo[i] - p.padding[0] + s + p.padding[0] + p.padding[1])
                for i, (p, s) in enumerate(zip(combo, call.size, strict=True))) + (slice(None),)
            y[target] = gemm.channels_last(xp[window], sub_weight, tuple(p.stride for p in combo),
                                           tuple(p.dilation for p in combo), tuple(p.outputs for p in combo),
                                           groups)
            continue
        run = gemm.conv_general if name == "gemm" else planner.primitive(name)
        part = run(x, sub_weight, tuple(p.stride for p in combo), tuple(p.padding for p in combo),
                   tuple(p.dilation for p in combo), (1,) * nd, groups)  # (N, C_out, *T)
        y[target] = np.moveaxis(part, 1, -1)  # (N, *T, C_out)
    return y.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view


def phase_call(call: Call, combo: Sequence[Phase]) -> Call:
    """The call of the primitive that computes one phase (no input dilation)."""
    return Call(call.x_shape, call.w_shape[:2] + tuple(p.taps for p in combo), tuple(p.stride for p in combo),
                tuple(p.padding for p in combo), tuple(p.dilation for p in combo), (1,) * call.nd, call.groups,
                call.dtype)


def _combos(call: Call) -> list[tuple[Phase, ...]]:
    """The N-d phases that meet input elements: the products of each dimension's (:func:`phases`)."""
    return list(itertools.product(*(
        phases(*args) for args in zip(call.size, call.kernel, call.stride, call.padding, call.dilation,
                                      call.input_dilation, call.out_size, strict=True))))


def phase_calls(call: Call) -> list[Call]:
    """The calls of the phases that meet input elements (at most ``min(prod(K), prod(O))`` of them)."""
    return [phase_call(call, combo) for combo in _combos(call)]


def estimate(call: Call, planner: Planner) -> Estimate:
    """The sum of the best estimate of each phase (a call without input dilation) plus the interleaving copies.

    The output is zeroed once (written), and each phase's result is written into its strided,
    channels-last place: read and written, twice that where the phase's algorithm returns it
    channels-first (every phase but gemm's windowed one: :func:`gemm.channels_last`), whose copy
    is a transpose (measured about half the speed of a plain strided copy on U-Net's 2x2/2 layer).
    """
    total, parts = 0.0, []
    b = call.dtype.itemsize
    moved = math.prod(call.out_shape)  # the zeroed output
    for combo in _combos(call):
        name, seconds = planner.best_estimate(phase_call(call, combo))
        total += seconds
        parts.append(name)
        transposed = not (name == "gemm" and any(p.taps != 1 for p in combo))
        moved += (4 if transposed else 2) * call.batch * call.c_out * math.prod(p.outputs for p in combo)
    total += stream(moved * b)
    counts = {name: parts.count(name) for name in dict.fromkeys(parts)}
    listing = ", ".join(f"{k} x{v}" for k, v in counts.items())
    return Estimate(total, f"{len(parts)} phases without inserted zeros ({listing})")


ALGORITHM = Algorithm(
    name="subpixel",
    summary="input dilation split into phases without inserted zeros: input_dilation > 1",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=20e-6,
    composite=True,
)
