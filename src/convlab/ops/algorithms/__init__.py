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
depthwise     tap accumulation over shifted views, compiled where numba is     groups == C_in
depthwise_    the same tap loops on NumPy only (never chosen by ``auto``)      groups == C_in
numpy
subpixel      input dilation split into phases without inserted zeros          input_dilation > 1
col2im        one GEMM per input element and tap, then strided adds (Caffe)    every call (made for
                                                                               input_dilation > 1)
space_to_     dilated: one undilated call on the sub-images stacked on the     dilation > 1 (stride 1
batch         batch (TensorFlow's atrous convolution)                          there), no input dilation
depth_to_     input dilation: one call with the phases as output channels,     input_dilation > 1, phases
space         then depth-to-space (pixel shuffle)                              of stride 1, dilation 1
============  ===============================================================  ==========================

Each algorithm is described once, by the ``ALGORITHM`` record at the end of its
module (:class:`~._record.Algorithm`: name, primitive, where it applies and why
not, cost estimate, exactness on integers); :data:`RECORDS` collects them
(:mod:`._registry`), and everything here is derived from them.

``algorithm="auto"`` (the default of every op) picks, per primitive call, the
algorithm with the smallest estimated time (:mod:`.plan`; ``plan(...)`` says
which and why; :func:`trace` records which ran where), with rates measured on
this machine at first use (:mod:`.calibrate`). ``tune(...)``,
``algorithm='tune'``, ``with tuning():`` and ``model.tune(input_shape)`` time
the candidates instead and remember the fastest (:mod:`.tune`); ``plan`` then
says ``measured``. Calling ``ALGORITHMS[name]`` directly on a call the algorithm
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

from . import calibrate, col2im, depthwise, fft, gemm, im2col, matrix, reference, subpixel, winograd
from ._layout import Call
from ._record import Algorithm, Estimate
from ._registry import RECORDS
from .dispatch import Primitive, choose
from .plan import AUTO_ALGORITHMS, Plan, plan, primitive, unsupported
from .trace import TraceEvent, trace
from .tune import Tuned, tune, tuning

__all__ = ["ALGORITHMS", "AUTO_ALGORITHMS", "RECORDS", "Algorithm", "Call", "Estimate", "Plan", "Primitive",
           "TraceEvent", "Tuned", "calibrate", "choose", "col2im", "depthwise", "fft", "gemm", "im2col", "matrix",
           "plan", "reference", "subpixel", "trace", "tune", "tuning", "unsupported", "winograd"]

#: Every algorithm's primitive by name (a composite's sub-calls planned by the cost model).
ALGORITHMS: dict[str, Callable] = {name: primitive(name) for name in RECORDS}
