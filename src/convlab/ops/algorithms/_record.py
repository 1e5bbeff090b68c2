"""One record per algorithm of the convolution primitive: what it is, where it applies, what it costs.

Every algorithm module of :mod:`convlab.ops.algorithms` ends with one
:class:`Algorithm` record; the package collects them (``RECORDS``), and the
public table ``ALGORITHMS``, the candidates of ``algorithm='auto'``, the
planner, the fallback of a named algorithm, the benchmark and the tests all
read them. Nothing else lists the algorithms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ._layout import Call

__all__ = ["Algorithm", "Estimate", "Planner"]


class Estimate(NamedTuple):
    """Estimated seconds of one algorithm on one call, and the terms that make it up (a sentence)."""

    seconds: float
    terms: str


class Planner(Protocol):
    """What a composite algorithm (one that splits a call into sub-calls) asks of the planner."""

    def choose(self, call: Call) -> str:
        """The name of the algorithm ``auto`` runs on ``call``."""

    def best_estimate(self, call: Call) -> tuple[str, float]:
        """The algorithm ``auto`` runs on ``call`` and its estimated seconds."""

    def primitive(self, name: str) -> Callable[..., np.ndarray]:
        """The primitive of algorithm ``name`` (composites bound to this planner)."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm of the primitive ``conv_general(x, weight, stride, padding, dilation, input_dilation, groups)``.

    Attributes
    ----------
    name : str
        The key users pass as ``algorithm=``.
    summary : str
        What it is, in one line (the table of :mod:`convlab.ops.algorithms`).
    primitive : callable
        ``conv_general``; a composite one also takes ``planner=`` (a :class:`Planner`).
    unsupported : callable or None
        ``unsupported(call)`` returns why the algorithm does not apply to a
        :class:`~._layout.Call` (a sentence), or None when it does; None here
        means the algorithm covers every call.
    estimate : callable or None
        ``estimate(call)`` (a composite: ``estimate(call, planner)``) returns an
        :class:`Estimate` of the variable cost; None keeps it out of ``auto``.
    fixed_seconds : float
        Cost of one call beyond the estimate (checks, small arrays), measured on tiny inputs.
    exact_integers : bool
        Whether integer inputs are computed exactly (the others refuse them).
    composite : bool
        Whether the algorithm splits a call into sub-calls that the planner
        computes (``subpixel``): its primitive and estimate take the planner.
    nonfinite_exact : bool
        Whether NaN and inf come out where the reference puts them (the
        direct sum: a NaN in a window makes that output NaN, ``inf * 0`` is
        NaN). Transform algorithms (FFT, Winograd) mix every input of a plane
        or tile into every output, so one non-finite value spreads; ``auto``
        does not choose them for calls whose inputs hold NaN or inf.
    """

    name: str
    summary: str
    primitive: Callable[..., np.ndarray]
    unsupported: Callable[[Call], str | None] | None = None
    estimate: Callable[..., Estimate] | None = None
    fixed_seconds: float = 0.0
    exact_integers: bool = True
    composite: bool = False
    nonfinite_exact: bool = True

    @property
    def covers_every_call(self) -> bool:
        return self.unsupported is None

    @property
    def automatic(self) -> bool:
        """Whether ``algorithm='auto'`` considers it (it has a cost estimate)."""
        return self.estimate is not None

    def why_not(self, call: Call) -> str | None:
        """Why this algorithm does not apply to ``call``, or None."""
        return None if self.unsupported is None else self.unsupported(call)
