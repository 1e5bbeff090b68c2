"""Algorithms of the convolution primitive; each returns the same numbers as ``reference``.

Every algorithm implements one function, ``conv_general(x, weight, stride,
padding, dilation, input_dilation, groups)``: a zero-padded, input-dilated,
grouped cross-correlation. Forward convolution, transposed convolution and both
gradients are all expressed through it, so an algorithm added here speeds up
all four.

============  ===============================================================  ==========================
name          what it is                                                       applies to
============  ===============================================================  ==========================
reference     loops written to be read; the oracle of the tests                every call
matrix        one sparse matrix product (the convolution matrix)               every call
im2col        gather windows, one GEMM per group (the first fast path)         every call
gemm          im2col tuned: channels-last windows, blocked, 1x1 as a GEMM      every call
winograd_f2   Winograd F(2x2, 3x3) (Lavin & Gray 2016)                         3-tap kernels, stride 1,
winograd_f4   Winograd F(4x4, 3x3)                                             no dilations, floats
fft           FFT convolution (scipy.fft)                                      floats and complex
depthwise     tap accumulation over shifted views                              groups == C_in
subpixel      input dilation split into phases without inserted zeros          input_dilation > 1
col2im        one GEMM per input element and tap, then strided adds (Caffe)    every call (made for
                                                                               input_dilation > 1)
============  ===============================================================  ==========================

``algorithm="auto"`` (the default of every op) picks, per primitive call, the
algorithm with the smallest estimated time (:mod:`.plan`; ``plan(...)`` says
which and why). Calling ``ALGORITHMS[name]`` directly on a call the algorithm
does not cover raises ``ValueError`` naming it and the reason.

Through the ops, a named algorithm is strict where the op is one primitive call
(``conv``, ``conv_transpose``: a ``ValueError`` if it does not apply), and a
preference in the gradients (``conv_vjp``, ``conv_transpose_vjp``): each of
their primitive calls uses the named algorithm where it applies and ``gemm``
where it does not. The weight gradient of a 3x3 convolution, for instance, is a
correlation whose "kernel" is the output gradient, which Winograd F(., 3x3)
does not cover.
"""

from __future__ import annotations

from collections.abc import Callable

from . import col2im, depthwise, fft, gemm, im2col, matrix, reference, subpixel, winograd
from ._layout import Call
from .plan import AUTO_ALGORITHMS, Plan, auto_primitive, plan, unsupported

__all__ = ["ALGORITHMS", "AUTO_ALGORITHMS", "Plan", "choose", "plan", "unsupported"]

ALGORITHMS: dict[str, Callable] = {
    "reference": reference.conv_general,
    "im2col": im2col.conv_general,
    "matrix": matrix.conv_general,
    "gemm": gemm.conv_general,
    "winograd_f2": winograd.conv_general_f2,
    "winograd_f4": winograd.conv_general_f4,
    "fft": fft.conv_general,
    "depthwise": depthwise.conv_general,
    "subpixel": subpixel.conv_general,
    "col2im": col2im.conv_general,
}


class _Named:
    """The primitive of a named algorithm, as the ops call it: strict, or with a ``gemm`` fallback."""

    def __init__(self, fn: str, name: str, fallback: str | None):
        self.fn, self.name, self.fallback = fn, name, fallback

    def __call__(self, x, weight, stride, padding, dilation, input_dilation, groups):
        call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
        reason = unsupported(self.name, call)
        if reason is None:
            return ALGORITHMS[self.name](x, weight, stride, padding, dilation, input_dilation, groups)
        if self.fallback is None:
            raise ValueError(f"{self.fn}: `algorithm` {self.name!r} does not apply to this convolution: {reason}")
        return ALGORITHMS[self.fallback](x, weight, stride, padding, dilation, input_dilation, groups)

    def __repr__(self) -> str:
        tail = f", else {self.fallback!r}" if self.fallback else ""
        return f"<convolution primitive {self.name!r}{tail}>"


def choose(fn: str, algorithm: str, fallback: str | None = None) -> Callable:
    """The primitive for ``algorithm``: ``'auto'`` (cost model) or a key of :data:`ALGORITHMS`.

    A named algorithm raises ``ValueError`` on a call it does not cover, or,
    with ``fallback`` (the gradients pass ``'gemm'``), runs that algorithm there.
    """
    if not isinstance(algorithm, str):
        raise TypeError(f"{fn}: `algorithm` must be a string ('auto' or one of {tuple(ALGORITHMS)}), got {algorithm!r}")
    if algorithm == "auto":
        return auto_primitive
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{fn}: `algorithm` (={algorithm!r}) must be 'auto' or one of {tuple(ALGORITHMS)}")
    if algorithm in ("reference", "im2col", "matrix", "gemm"):
        return ALGORITHMS[algorithm]  # these cover every call
    return _Named(fn, algorithm, fallback)
