"""The primitive as an op calls it: ``'auto'``, ``'tune'``, a named algorithm (strict or with a fallback), traced.

Every op (:mod:`convlab.ops.conv`) gets its primitive from :func:`choose` and
calls it with the role of the call (``'forward'``, ``'input_grad'``,
``'weight_grad'``); the dispatcher picks the algorithm (the planner for
``'auto'``: a measurement where the signature was tuned, else the cost model;
``'tune'``: the same after timing the candidates of a signature met for the
first time, as ``'auto'`` does inside :func:`~.tune.tuning`; the record's
``why_not`` for a named one), runs it, and reports it to any open
:func:`~.trace.trace`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ._layout import Call
from ._registry import RECORDS
from .plan import plan_call, primitive
from .trace import TraceEvent, active
from .tune import active as tuning_settings
from .tune import lookup, tune_call

__all__ = ["PLANNED", "Primitive", "choose"]

#: The names that let the planner choose: the cost model or a measurement, and tuning first.
PLANNED = ("auto", "tune")


class Primitive:
    """``conv_general`` with the algorithm ``name`` (``'auto'`` or a key of the records).

    A named algorithm that does not apply to a call raises ``ValueError``
    naming it and the reason, or, with a ``fallback`` (the gradients pass
    ``'gemm'``), runs the fallback there.
    """

    def __init__(self, fn: str, name: str, fallback: str | None = None):
        self.fn, self.name, self.fallback = fn, name, fallback

    def _tune(self, call: Call, role: str, x: np.ndarray | None, weight: np.ndarray | None) -> None:
        """Time the candidates of a signature met for the first time (``'tune'``, or ``'auto'`` in ``tuning()``)."""
        settings = tuning_settings()
        if self.name == "tune" or settings is not None:
            if lookup(call, role) is None and not call.is_empty and call.cg > 0:
                repeat, budget = settings if settings is not None else (3, 2.0)
                tune_call(call, role, x=x, weight=weight, repeat=repeat, budget=budget)

    def direct_weight_grad(self, call: Call) -> bool:
        """Whether a weight gradient the ops can compute as im2col + GEMM directly (``call``) is computed so.

        ``gemm`` always; the planner unless a measurement (:mod:`.tune`) found another algorithm
        faster on the correlation ``call`` describes; other named algorithms never.
        """
        if self.name == "gemm":
            return True
        if self.name not in PLANNED:
            return False
        self._tune(call, "weight_grad", None, None)
        p = plan_call(call, role="weight_grad")
        return p.source != "measured" or p.algorithm == "gemm"

    def select(self, call: Call, x: np.ndarray | None = None, weight: np.ndarray | None = None,
               role: str = "forward") -> tuple[str, bool]:
        """The algorithm that runs ``call``, and whether the data is finite (True when it does not matter).

        ``auto`` reads the data only where its first choice would spread a NaN or an inf
        (or is a composite whose parts might): one pass over the input and the weight.
        """
        if self.name in PLANNED:
            self._tune(call, role, x, weight)
            p = plan_call(call, role=role)
            record = RECORDS[p.algorithm]
            if (record.nonfinite_exact and not record.composite) or x is None or call.dtype.kind not in "fc":
                return p.algorithm, True
            if _finite(x) and _finite(weight):
                return p.algorithm, True
            return p.nonfinite, False
        reason = RECORDS[self.name].why_not(call)
        if reason is None:
            return self.name, True
        if self.fallback is None:
            raise ValueError(f"{self.fn}: `algorithm` {self.name!r} does not apply to this convolution: {reason}")
        return self.fallback, True

    def __call__(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        stride: Sequence[int],
        padding: Sequence[tuple[int, int]],
        dilation: Sequence[int],
        input_dilation: Sequence[int],
        groups: int,
        *,
        role: str = "forward",
    ) -> np.ndarray:
        call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
        name, finite = self.select(call, x, weight, role)
        run = primitive(name, finite)
        return self.run_named(name, call, role, lambda: run(x, weight, call.stride, call.padding, call.dilation,
                                                            call.input_dilation, call.groups))

    def run_named(self, name: str, call: Call, role: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Run ``compute`` (algorithm ``name`` on ``call``), reported to every open trace.

        The ops call it directly where they run an algorithm themselves (the direct GEMM weight gradient).
        NaN and inf propagate as IEEE arithmetic says, by design: NumPy's warnings about them are silenced.
        """
        traces = active()
        with np.errstate(invalid="ignore", over="ignore"):
            if not traces:
                return compute()
            start = time.perf_counter()
            y = compute()
        event = TraceEvent(self.fn, role, name, call, time.perf_counter() - start)
        for events in traces:
            events.append(event)
        return y

    def __repr__(self) -> str:
        tail = f", else {self.fallback!r}" if self.fallback else ""
        return f"<convolution primitive {self.name!r}{tail}>"


def _finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite (one pass; integers always are)."""
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def choose(fn: str, algorithm: str, fallback: str | None = None) -> Primitive:
    """The primitive for ``algorithm``: ``'auto'`` (the planner), ``'tune'`` or a key of :data:`~._registry.RECORDS`.

    ``'tune'`` is ``'auto'`` that first times the candidates of each signature it
    meets for the first time (:mod:`.tune`). A named algorithm raises
    ``ValueError`` on a call it does not cover, or, with ``fallback``, runs that
    algorithm there. Algorithms that cover every call never fall back.
    """
    if not isinstance(algorithm, str):
        raise TypeError(f"{fn}: `algorithm` must be a string ('auto' or one of {tuple(RECORDS)}, or 'tune'), "
                        f"got {algorithm!r}")
    if algorithm not in PLANNED and algorithm not in RECORDS:
        raise ValueError(f"{fn}: `algorithm` (={algorithm!r}) must be 'auto' or one of {tuple(RECORDS)}, or 'tune' "
                         f"(auto after timing each new call)")
    if algorithm not in PLANNED and RECORDS[algorithm].covers_every_call:
        fallback = None
    return Primitive(fn, algorithm, fallback)
