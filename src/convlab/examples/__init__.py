"""The tutorials' worked examples, each computed by the engine, printed, and returned as data.

Every example is a module with a ``TITLE`` and a function
``run(file=None, number=None)`` that prints the example (input, kernel,
settings, output, and each output size with its formula and numbers from
:mod:`convlab.shapes`) to ``file`` -- standard output by default -- and returns
its numbers as a named tuple, so tests and notebooks can check them. The
walk-through ``convlab demo`` (:mod:`convlab.demo`) runs them in :data:`ORDER`;
``convlab demo NAME`` or ``python -m convlab.examples.NAME`` runs one, and
``convlab demo --list`` lists them with their titles.

>>> from convlab.examples import cross_correlation
>>> import io
>>> cross_correlation.run(io.StringIO()).output.tolist()
[[19, 25], [37, 43]]

Shared pieces: :mod:`convlab.examples.worked` (aligned matrices, one
convolution computed and explained, :class:`~convlab.examples.worked.Page`)
and :mod:`convlab.examples.fields` (receptive fields measured by the engine).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["ORDER", "load"]

ORDER = (
    "stride_padding",  # seed 000: a 3x3 kernel on a 4x4 input, stride 1 and 2, padding 1
    "cross_correlation",  # seed 003: figure 5.1, [[19, 25], [37, 43]]
    "correlation_vs_convolution",  # seed 003: the flipped kernel; z's receptive field
    "by_hand",  # seed 002: a 3x3 input and a 2x2 kernel worked by hand
    "channels",  # seed 004: several input and output channels, 1x1 as a matrix product
    "edge_detection",  # seed 003: [[1, -1]] on the 6x8 image
    "learn_kernel",  # seed 003: gradient descent with conv_vjp recovers [1, -1]
    "padding",  # seeds 000, 004: 'same', 'same_tf', the padding modes
    "dilation",  # seeds 000, 001: holes in the kernel; receptive fields 3, 7, 15
    "pooling",  # seeds 004, 000: max/avg pooling; pooling and the receptive field
    "transposed",  # seeds 000, 001: 3x3 -> 5x5 and the zero-insertion recipe
    "conv_matrix",  # seed 001: C (4x16) and C^T
    "convolution_family",  # seed 001: depthwise-separable, spatially separable, grouped
    "erf",  # seed 000: the effective receptive field (Luo et al. 2016)
    "tensorboard_conv",  # seed 000: Conv2d(3, 6, 3) on images, inputs and each feature map in TensorBoard
    "lenet_d2l",  # seed 004, d2l 7.6: LeNet on Fashion-MNIST with the book's recipe
    "augmentation",  # seed 000: invariance by data augmentation (trains two small networks)
)


def load(name: str) -> ModuleType:
    """The example module called ``name`` (one of :data:`ORDER`).

    >>> load("edge_detection").TITLE
    'Edge detection with the kernel [[1, -1]] (seed 003)'
    """
    if name not in ORDER:
        raise ValueError(f"convlab.examples.load: `name` (={name!r}) must be one of {', '.join(ORDER)}")
    return importlib.import_module(f"{__name__}.{name}")
