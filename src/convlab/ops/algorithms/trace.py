"""Record the primitive calls an op runs: which algorithm ran where, on what shapes, for how long.

>>> import numpy as np
>>> import convlab.functional as F
>>> from convlab.ops.algorithms import trace
>>> with trace() as events:
...     _ = F.conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3)), algorithm="gemm")
>>> [(e.op, e.role, e.algorithm) for e in events]
[('conv2d', 'forward', 'gemm')]
>>> events[0].call.out_shape
(1, 4, 6, 6)

Every convolution op (forward, transposed, both gradients, and the layers and
models built on them) runs the primitive through one dispatcher, which appends
a :class:`TraceEvent` to every active trace. The benchmark uses it to say
which algorithm ran; training and the explorer use it to show it per layer.
Only the outermost primitive calls are recorded (the phases of ``subpixel``
are part of its call). Tracing costs one clock read per call; without an
active trace, nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple

from ._layout import Call

__all__ = ["ROLES", "TraceEvent", "active", "trace"]

#: What a primitive call computes for its op.
ROLES = ("forward", "input_grad", "weight_grad")


class TraceEvent(NamedTuple):
    """One primitive call: the op that made it, its role, the algorithm that ran, its shapes, its seconds."""

    op: str  # the public function or layer, e.g. 'conv2d', 'conv_vjp', 'Conv2d.backward'
    role: str  # one of ROLES
    algorithm: str  # the algorithm that ran (what 'auto' chose, or the fallback)
    call: Call  # shapes and hyperparameters of the call
    seconds: float

    def __str__(self) -> str:
        return f"{self.op} {self.role}: {self.algorithm} {self.seconds * 1e3:.3g} ms ({self.call.describe()})"


_ACTIVE: contextvars.ContextVar[tuple[list[TraceEvent], ...]] = contextvars.ContextVar("convlab_trace", default=())


def active() -> tuple[list[TraceEvent], ...]:
    """The event lists of the traces open in this context (empty when none)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def trace() -> Iterator[list[TraceEvent]]:
    """``with trace() as events:`` collects a :class:`TraceEvent` per primitive call made inside.

    Traces nest: an inner trace's events also reach the outer ones.
    """
    events: list[TraceEvent] = []
    token = _ACTIVE.set(_ACTIVE.get() + (events,))
    try:
        yield events
    finally:
        _ACTIVE.reset(token)
