"""Receptive fields measured by the engine: which inputs one output's gradient reaches.

:func:`convlab.shapes.receptive_field` computes a stack's receptive field from
its kernel sizes, strides and dilations. :func:`measure` checks it without the
rule: it runs the stack forward with all-ones kernels, sends a gradient of 1
back from one output unit with the engine's vjps, and reports where the input
gradient is non-zero. All weights are positive, so nothing cancels and the
support is exactly the set of inputs that unit depends on.

Average pooling stands in for any pooling here: its gradient reaches every
element of the window, while max pooling's reaches only the maximum -- but any
element of the window could be the maximum, so the field is the same.

>>> stack = [Layer("conv", 3), Layer("conv", 3)]
>>> field = measure(stack, 9)
>>> field.output_position, field.start, field.extent, predicted(stack)
((2, 2), (2, 2), (5, 5), ReceptiveField(size=5, jump=1, start=0))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..shapes import ReceptiveField, receptive_field

__all__ = ["Layer", "MeasuredField", "describe", "format_support", "measure", "predicted"]


class Layer(NamedTuple):
    """One layer of a stack, the same along both spatial dimensions (no padding)."""

    kind: str  # 'conv' or 'pool'
    kernel_size: int
    stride: int = 1
    dilation: int = 1

    def text(self) -> str:
        name = f"{self.kind} {self.kernel_size}x{self.kernel_size}"
        extras = [f"stride {self.stride}"] * (self.stride != 1) + [f"dilation {self.dilation}"] * (self.dilation != 1)
        return name + (f" ({', '.join(extras)})" if extras else "")


class MeasuredField(NamedTuple):
    """Where the input gradient of the chosen output units is non-zero; each pair is (rows, columns)."""

    support: np.ndarray  # (H, W) bool: the inputs that reach the chosen outputs
    output_position: tuple[int, int]  # the middle output unit (the offsets are counted from it)
    start: tuple[int, int]  # first input row and column reached
    extent: tuple[int, int]  # last - first + 1, per dimension
    count: tuple[int, int]  # rows and columns reached (fewer than ``extent`` when the field has holes)


def describe(layers: Sequence[Layer]) -> str:
    """``"conv 3x3 -> pool 2x2 (stride 2) -> conv 3x3"``."""
    return " -> ".join(layer.text() for layer in layers)


def predicted(layers: Sequence[Layer]) -> ReceptiveField:
    """The receptive field from the rule, :func:`convlab.shapes.receptive_field`."""
    return receptive_field([(layer.kernel_size, layer.stride, 0, layer.dilation) for layer in layers])


def measure(layers: Sequence[Layer], input_size: int, offsets: Sequence[int] = (0,)) -> MeasuredField:
    """Run ``layers`` on an ``input_size`` square and back-propagate from output units of the middle row.

    ``offsets`` are the units' columns relative to the middle column:
    ``(0, 1)`` measures what two neighbours see together, ``(1,)`` the right neighbour alone.
    """
    x = np.ones((1, 1, input_size, input_size))
    inputs = []
    for layer in layers:  # forward, keeping each layer's input for its vjp
        inputs.append(x)
        if layer.kind == "conv":
            weight = np.ones((1, 1, layer.kernel_size, layer.kernel_size))
            x = F.conv2d(x, weight, stride=layer.stride, dilation=layer.dilation)
        else:
            x = F.avg_pool2d(x, layer.kernel_size, stride=layer.stride)
    grad = np.zeros_like(x)  # (1, 1, H_out, W_out)
    middle = x.shape[2] // 2
    grad[0, 0, middle, [middle + offset for offset in offsets]] = 1.0
    for layer, layer_input in zip(reversed(layers), reversed(inputs), strict=True):
        if layer.kind == "conv":
            weight = np.ones((1, 1, layer.kernel_size, layer.kernel_size))
            grad = F.conv_vjp(grad, layer_input, weight, stride=layer.stride, dilation=layer.dilation).input
        else:
            window = (layer.kernel_size, layer.kernel_size)
            grad = F.avg_pool_vjp(grad, layer_input, window, stride=(layer.stride, layer.stride))
    support = grad[0, 0] != 0  # (H, W)
    rows = np.flatnonzero(support.any(axis=1))
    columns = np.flatnonzero(support.any(axis=0))
    return MeasuredField(support, (middle, middle), (int(rows[0]), int(columns[0])),
                         (int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)),
                         (len(rows), len(columns)))


def format_support(support: np.ndarray, indent: str = "  ") -> str:
    """A boolean support as rows of ``#`` (reached) and ``.`` (not reached).

    >>> print(format_support(np.array([[True, False, True]])))
      # . #
    """
    return "\n".join(indent + " ".join("#" if v else "." for v in row) for row in np.atleast_2d(support))
