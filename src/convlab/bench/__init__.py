"""``convlab bench``: the project's benchmark, convlab against PyTorch and SciPy on real layer shapes.

A measurement, not a test (no test asserts a time). For every layer of a named
suite (``--suite``; the default ``full`` holds 30 convolutions of real
networks: ResNet-18/50, VGG-16, MobileNetV2, ConvNeXt, RepLKNet, wav2vec 2.0,
3-D, transposed, dilated and single-channel 1024x1024 layers; batch 8,
float32) it times four passes:

* ``forward``: ``convlab.functional.conv{1,2,3}d`` / ``conv_transpose{1,2,3}d``
  against ``torch.nn.functional``'s (under ``torch.no_grad``);
* ``backward``: both gradients together, ``convlab.functional.conv_vjp`` /
  ``conv_transpose_vjp`` against ``torch.ops.aten.convolution_backward`` with
  ``output_mask=[True, True, False]`` (what autograd runs);
* ``input_grad``: the input gradient alone. convlab: ``conv_input_grad``
  (``conv_transpose_vjp(..., wrt="input")`` for a transposed layer); torch:
  ``convolution_backward`` with ``output_mask=[True, False, False]`` (as
  ``torch.nn.grad.conv2d_input``);
* ``weight_grad``: the weight gradient alone. convlab: ``conv_weight_grad``
  (``conv_transpose_vjp(..., wrt="weight")``); torch:
  ``output_mask=[False, True, False]`` (as ``torch.nn.grad.conv2d_weight``).

Each pass runs in torch twice: NCHW (contiguous) and channels-last
(``torch.channels_last`` / ``channels_last_3d``; not for 1-D). For the
single-channel layers the forward pass also runs ``scipy.signal.correlate``,
``scipy.signal.fftconvolve`` (with the flipped kernel) and
``scipy.ndimage.correlate`` (single-threaded, as SciPy runs them).

``--analysis`` measures the symbolic analysis instead: the wall time and
extra peak memory of what ``convlab summary MODEL`` computes, for every zoo
model (:mod:`.analysis`).

The package, one job per module:

* :mod:`.suites`: the layers, the suites and the targets, as data;
* :mod:`.measure`: FLOPs, time, peak memory, load, relative error, the algorithms that ran;
* :mod:`.runner`: running a suite (warm-up, memory, interleaved timed rounds, medians, targets);
* :mod:`.analysis`: the analysis section;
* :mod:`.report`: the tables, in Markdown or Rich;
* :mod:`.cli`: the options, the fair environment, printing.
"""

from __future__ import annotations

from .analysis import run_analysis
from .cli import add_arguments, main
from .measure import conv_flops
from .report import format_analysis, format_report
from .runner import run
from .suites import CLASSES, LAYERS, PASSES, SUITES, TARGETS, Layer, Target

__all__ = [
    "CLASSES",
    "LAYERS",
    "PASSES",
    "SUITES",
    "TARGETS",
    "Layer",
    "Target",
    "add_arguments",
    "conv_flops",
    "format_analysis",
    "format_report",
    "main",
    "run",
    "run_analysis",
]
