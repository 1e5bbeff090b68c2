"""``algorithm="auto"``: a cost model over the call's shapes, and :func:`plan`, which says what it chose and why.

Every algorithm of the primitive returns the same numbers to float tolerance,
so the choice only decides the time. For each algorithm whose record has an
estimate and that applies to a call (``record.why_not(call)`` is None), the
model estimates seconds as

    time = flops / (GEMM rate)  +  bytes moved / (memory bandwidth)  +  NumPy calls * (call overhead)
           (+ FFT flops / (FFT rate) for the FFT)  +  the record's fixed cost per call

with the terms each algorithm counts written in its own ``estimate`` (``gemm``,
``winograd``, ``fft``, ``depthwise``, ``subpixel``, ``col2im``) and the machine's
rates in :mod:`._costs`. GEMMs cost ``2 * MACs / (rate * efficiency)`` with
``efficiency = min(1, k/128) * min(1, n/16)`` (at least 0.1) for inner dimension
``k`` and ``n`` output columns: OpenBLAS is memory-bound on thin products; plus the
packing of both operands into BLAS's panel buffers (read and written once, at the cache
rate: most of a skinny product's time) and the call overhead per GEMM call. The fixed
cost per call (checks, small arrays, planning) decides tiny calls.

By default :data:`~._costs.MACHINE` holds the constants (so every process plans alike;
``calibrate.set_rates(None)`` measures this machine's rates instead: :mod:`.calibrate`),
measured on the development machine (2-core AMD EPYC Zen 5 VM, OpenBLAS 0.3 on its Haswell (AVX2) kernels, which that
machine's environment selects with ``OPENBLAS_CORETYPE``, NumPy 2.4, SciPy 1.17, 2 threads;
where OpenBLAS runs AVX-512 kernels the GEMM rate is scaled by :data:`~._costs.AVX512_SPEEDUP`; at another
thread count the GEMM, FFT and compiled-kernel rates are scaled to the threads in effect, and calibrated rates
are measured at them: :func:`~._costs.thread_factor`; the plans are cached per thread count):
large ``sgemm`` calls, ``np.copyto`` and ``np.add`` on 16-64 MiB arrays
(stream) and on 0.5 MiB arrays (cache), ``scipy.fft.rfft2`` of 64x64 to 1024x1024
planes, a loop of small ufunc calls and each algorithm on tiny inputs (the fixed
costs). The model was then checked against the measured times of every applicable
algorithm on 20 calls (ResNet and VGG layers, depthwise 3x3 to 31x31, 1024x1024
single-channel images, a transposed stride-2 layer, a weight gradient, tiny float64
calls): it ranked the fastest first, or within 15% of it, on all of them; the
estimates themselves are within a factor of about 2 of the measured times.
The model only has to rank the algorithms; a wrong ranking costs time, never
accuracy. Records without an estimate (``reference``, ``matrix``, ``im2col``,
``depthwise_numpy``) are never chosen (the oracle, the sparse-matrix view, the
historical default, the compiled kernels' fallback).

Winograd F(4x4, 3x3) is allowed in float32: its measured error is four times under
the test suite's float32 tolerance (see :mod:`.winograd`). Integers only ever get
exact algorithms (gemm, depthwise, subpixel, col2im): the others refuse them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ...spec import MAX_INT, ConvSpec, as_shape, as_tuple, padding_pairs
from . import calibrate
from ._costs import MACHINE, Machine, fmt, threads_in_effect
from ._layout import Call, budget_bytes
from ._record import Algorithm, Estimate
from ._registry import RECORDS
from .tune import lookup

__all__ = ["AUTO_ALGORITHMS", "FIXED_SECONDS", "MACHINE", "PLANNER", "Machine", "Plan", "estimate", "estimate_call",
           "plan", "plan_call", "primitive", "unsupported"]

#: The algorithms ``auto`` chooses among: the records with a cost estimate.
AUTO_ALGORITHMS: tuple[str, ...] = tuple(name for name, record in RECORDS.items() if record.automatic)

#: Fixed cost of one call of each algorithm ``auto`` considers (from the records).
FIXED_SECONDS: dict[str, float] = {name: RECORDS[name].fixed_seconds for name in AUTO_ALGORITHMS}


def unsupported(name: str, call: Call) -> str | None:
    """Why algorithm ``name`` does not apply to ``call`` (None when it does, or when it applies to everything)."""
    return RECORDS[name].why_not(call)


class Plan(NamedTuple):
    """What ``algorithm="auto"`` does with one primitive call, and why.

    ``nonfinite`` is the algorithm ``auto`` runs instead when the call's input
    or weight holds NaN or inf and ``algorithm`` would spread them (FFT,
    Winograd: see :attr:`~._record.Algorithm.nonfinite_exact`); it equals
    ``algorithm`` otherwise.
    """

    algorithm: str
    reason: str
    estimates: dict[str, float]  # seconds per applicable algorithm
    refused: dict[str, str]  # why the others do not apply
    call: Call
    nonfinite: str = ""
    source: str = "estimated"  # 'measured' where tuning timed the candidates (:mod:`.tune`)

    def __str__(self) -> str:
        return f"{self.algorithm}: {self.reason}"


class _CostModel:
    """The planner composite algorithms receive: the cost model's choice, estimate and primitives.

    With ``finite=False`` (the data holds NaN or inf) it chooses only among the
    algorithms that put them where the reference does.
    """

    def __init__(self, finite: bool = True):
        self.finite = finite

    def choose(self, call: Call) -> str:
        return plan_call(call, finite=self.finite).algorithm

    def best_estimate(self, call: Call) -> tuple[str, float]:
        best = plan_call(call, finite=self.finite)
        return best.algorithm, best.estimates[best.algorithm]

    def primitive(self, name: str) -> Callable[..., np.ndarray]:
        return primitive(name, finite=self.finite)


#: The cost model as a :class:`~._record.Planner`, for finite data and for data with NaN or inf.
PLANNER = _CostModel()
NONFINITE_PLANNER = _CostModel(finite=False)


@functools.cache
def primitive(name: str, finite: bool = True) -> Callable[..., np.ndarray]:
    """The primitive of algorithm ``name``, with a composite's sub-calls planned by the cost model."""
    record = RECORDS[name]
    if record.composite:
        return functools.partial(record.primitive, planner=PLANNER if finite else NONFINITE_PLANNER)
    return record.primitive


def _estimate_record(record: Algorithm, call: Call, finite: bool = True) -> Estimate:
    if record.estimate is None:
        raise ValueError(f"plan: algorithm {record.name!r} has no cost estimate; auto chooses among "
                         f"{AUTO_ALGORITHMS}")
    if record.composite:
        est = record.estimate(call, PLANNER if finite else NONFINITE_PLANNER)
    else:
        est = record.estimate(call)
    return Estimate(est.seconds + record.fixed_seconds, est.terms)


def estimate(name: str, call: Call) -> Estimate:
    """Estimated time of algorithm ``name`` on ``call`` (the algorithm must apply)."""
    if name not in RECORDS:
        raise ValueError(f"plan: no algorithm {name!r}; the algorithms are {tuple(RECORDS)}")
    return _estimate_record(RECORDS[name], call)


def plan_call(call: Call, finite: bool = True, role: str | None = None) -> Plan:
    """The cost model's choice for ``call`` (see :func:`plan`); cached per call and memory budget.

    ``finite=False``: the choice for data holding NaN or inf, among the algorithms that
    put them where the reference does. A signature tuned on this machine (:mod:`.tune`;
    ``role`` None: in any role) is answered by its measurement (``source='measured'``);
    the others by the cost model (:func:`estimate_call`).
    """
    estimated = _plan_cached(call, budget_bytes(), finite, _rates_key())
    tuned = lookup(call, role)
    if tuned is None or tuned.algorithm not in estimated.estimates:
        return estimated
    name = tuned.algorithm
    nonfinite = name
    if finite and (not RECORDS[name].nonfinite_exact or RECORDS[name].composite):
        nonfinite = _plan_cached(call, budget_bytes(), False, _rates_key()).algorithm
    timed = ", ".join(f"{other} {fmt(s)}" for other, s in sorted(tuned.seconds.items(), key=lambda i: i[1])
                      if other != name)
    reason = f"measured {fmt(tuned.seconds.get(name, math.nan))} on this machine ({tuned.role})"
    if timed:
        reason += f"; then {timed}"
    best = estimated.algorithm
    reason += f"; the cost model estimated {best} fastest ({fmt(estimated.estimates[best])})"
    return Plan(name, reason, estimated.estimates, estimated.refused, call, nonfinite, "measured")


def estimate_call(call: Call, finite: bool = True) -> Plan:
    """The cost model's choice for ``call``, whatever tuning measured (see :func:`plan_call`)."""
    return _plan_cached(call, budget_bytes(), finite, _rates_key())


def _rates_key() -> tuple[int, tuple[int, int, int]]:
    """What the estimates depend on besides the call: the rates in use and the threads in effect."""
    version = calibrate.version()  # first: a calibration measures at the threads in effect
    return version, threads_in_effect()


@lru_cache(maxsize=4096)
def _plan_cached(call: Call, budget: int, finite: bool, rates_version: tuple) -> Plan:
    if call.is_empty or call.cg == 0:
        # Nothing to compute (gemm returns the zeros at once, as every algorithm would): no record is asked,
        # so sizes that only an empty array can have (a huge padding of no samples or no channels) never
        # reach a cost model.
        what = "the output is empty" if call.is_empty else "the input has no channels, so the output is zeros"
        return Plan("gemm", f"{what}, nothing to compute", {"gemm": 0.0}, {}, call, "gemm")
    estimates: dict[str, float] = {}
    terms: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name in AUTO_ALGORITHMS:
        record = RECORDS[name]
        reason = record.why_not(call)
        if reason is None and not finite and not record.nonfinite_exact:
            reason = "the inputs hold NaN or inf, which it would spread beyond the outputs they reach"
        if reason is not None:
            refused[name] = reason
            continue
        est = _estimate_record(record, call, finite)
        estimates[name], terms[name] = est.seconds, est.terms
    best = min(estimates, key=estimates.__getitem__)
    others = sorted((name for name in estimates if name != best), key=estimates.__getitem__)
    reason = f"estimated {fmt(estimates[best])} ({terms[best]})"
    if others:
        reason += "; then " + ", ".join(f"{name} {fmt(estimates[name])}" for name in others)
    if refused:
        reason += "; not applicable: " + "; ".join(f"{name} ({why})" for name, why in refused.items()
                                                  if name != "winograd_f2")
    nonfinite = best
    if finite and (not RECORDS[best].nonfinite_exact or RECORDS[best].composite):
        nonfinite = _plan_cached(call, budget, False, rates_version).algorithm
        if not RECORDS[best].nonfinite_exact:
            reason += (f"; if the input or the weight holds NaN or inf, {nonfinite} instead ({best} would spread "
                       f"them beyond the outputs whose window holds them)")
    return Plan(best, reason, estimates, refused, call, nonfinite)


def _shape(fn: str, name: str, value: object, rank: int | None = None) -> tuple[int, ...]:
    shape = as_shape(fn, name, value)  # a sequence of ints in [0, 2**62]
    if rank is not None and len(shape) != rank:
        raise ValueError(f"{fn}: `{name}` (={shape}) must have {rank} entries")
    if len(shape) < 3:
        raise ValueError(f"{fn}: `{name}` (={shape}) must have at least 3 entries (N or C_out, C, *spatial)")
    return shape


def plan(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Sequence[tuple[int, int]] | str = 0,
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
        Each ``>= 1``, one per spatial dimension (an int is repeated).
    padding : int, sequence of int or of ``(lo, hi)`` pairs, or a padding string
        Explicit zero padding of the (input-dilated) input; negative values
        crop (the primitive's calls in the gradients crop). The strings of
        :class:`convlab.spec.ConvSpec` (``'same'``, ``'full'``, ...) resolve
        against ``x_shape``.
    groups : int
    dtype : dtype, default float32

    The hyperparameters are validated by the same rules as every op's
    (:class:`convlab.spec.ConvSpec`): ``stride=True`` or a wrong number of
    entries raise ``TypeError``/``ValueError`` naming ``plan``, the parameter
    and the value.

    Returns
    -------
    Plan
        ``algorithm`` (a key of :data:`convlab.ops.algorithms.ALGORITHMS`),
        ``reason`` (the estimate and its terms, the runners-up, and why the
        others do not apply), ``estimates`` (seconds per applicable algorithm),
        ``refused`` and the ``call``; ``source``: ``'estimated'`` (the cost model)
        or ``'measured'`` (the call was tuned on this machine: :func:`~.tune.tune`).
        ``str(plan)`` is ``"name: reason"``.

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
    fn = "plan"
    w = _shape(fn, "w_shape", w_shape)
    nd = len(w) - 2
    x = _shape(fn, "x_shape", x_shape, nd + 2)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{fn}: `dtype` (={dtype!r}) is not a NumPy dtype") from None
    if isinstance(padding, str):
        from ...shapes import resolve_padding

        spec = ConvSpec(w[2:], stride, padding, dilation, groups, ndim=nd, name=fn)
        pairs = resolve_padding(spec, x[2:])
    else:
        spec = ConvSpec(w[2:], stride, 0, dilation, groups, ndim=nd, name=fn)
        pairs = padding_pairs(fn, padding, nd, allow_crop=True)
    ld = as_tuple(fn, "input_dilation", input_dilation, nd, minimum=1)
    if x[1] != w[1] * spec.groups:
        raise ValueError(f"{fn}: `x_shape[1]` (={x[1]}) must equal w_shape[1] * groups "
                         f"(={w[1]} * {spec.groups})")
    if w[0] % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the output channels (w_shape[0]={w[0]})")
    call = Call(x, w, spec.stride, tuple(pairs), spec.dilation, ld, spec.groups, dt)
    _check_sizes(fn, call)
    return plan_call(call)


def _check_sizes(fn: str, call: Call) -> None:
    """Refuse a call whose arrays no machine could hold: more than ``2**62`` elements (:data:`~convlab.spec.MAX_INT`).

    The engine never plans such a call (the memory budget refuses its buffers
    first); :func:`plan` is given shapes, not arrays, so it checks them here,
    which keeps every size the cost model computes inside int64.
    """
    sizes = (("`x_shape`", call.x_shape), ("`w_shape`", call.w_shape),
             ("the input dilated and padded", call.x_shape[:2] + call.padded_size), ("the output", call.out_shape))
    for what, shape in sizes:
        elements = math.prod(max(v, 0) for v in shape)
        if elements > MAX_INT:
            raise ValueError(f"{fn}: {what} (shape {shape}) would have {elements} elements, more than any array "
                             f"can hold (2**62 = {MAX_INT})")

