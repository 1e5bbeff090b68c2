"""The primitive as an op calls it: ``'auto'``, a named algorithm (strict or with a fallback), traced.

Every op (:mod:`convlab.ops.conv`) gets its primitive from :func:`choose` and
calls it with the role of the call (``'forward'``, ``'input_grad'``,
``'weight_grad'``); the dispatcher picks the algorithm (the cost model for
``'auto'``, the record's ``why_not`` for a named one), runs it, and reports it
to any open :func:`~.trace.trace`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ._layout import Call
from ._registry import RECORDS
from .plan import plan_call, primitive
from .trace import TraceEvent, active

__all__ = ["Primitive", "choose"]


class Primitive:
    """``conv_general`` with the algorithm ``name`` (``'auto'`` or a key of the records).

    A named algorithm that does not apply to a call raises ``ValueError``
    naming it and the reason, or, with a ``fallback`` (the gradients pass
    ``'gemm'``), runs the fallback there.
    """

    def __init__(self, fn: str, name: str, fallback: str | None = None):
        self.fn, self.name, self.fallback = fn, name, fallback

    def select(self, call: Call) -> str:
        """The algorithm that runs ``call``."""
        if self.name == "auto":
            return plan_call(call).algorithm
        reason = RECORDS[self.name].why_not(call)
        if reason is None:
            return self.name
        if self.fallback is None:
            raise ValueError(f"{self.fn}: `algorithm` {self.name!r} does not apply to this convolution: {reason}")
        return self.fallback

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
        name = self.select(call)
        run = primitive(name)
        traces = active()
        if not traces:
            return run(x, weight, call.stride, call.padding, call.dilation, call.input_dilation, call.groups)
        start = time.perf_counter()
        y = run(x, weight, call.stride, call.padding, call.dilation, call.input_dilation, call.groups)
        event = TraceEvent(self.fn, role, name, call, time.perf_counter() - start)
        for events in traces:
            events.append(event)
        return y

    def run_named(self, name: str, call: Call, role: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Run ``compute`` (algorithm ``name`` on ``call``, called directly by an op), traced like a call."""
        traces = active()
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


def choose(fn: str, algorithm: str, fallback: str | None = None) -> Primitive:
    """The primitive for ``algorithm``: ``'auto'`` (cost model) or a key of :data:`~._registry.RECORDS`.

    A named algorithm raises ``ValueError`` on a call it does not cover, or,
    with ``fallback``, runs that algorithm there. Algorithms that cover every
    call never fall back.
    """
    if not isinstance(algorithm, str):
        raise TypeError(f"{fn}: `algorithm` must be a string ('auto' or one of {tuple(RECORDS)}), got {algorithm!r}")
    if algorithm != "auto" and algorithm not in RECORDS:
        raise ValueError(f"{fn}: `algorithm` (={algorithm!r}) must be 'auto' or one of {tuple(RECORDS)}")
    if algorithm != "auto" and RECORDS[algorithm].covers_every_call:
        fallback = None
    return Primitive(fn, algorithm, fallback)
