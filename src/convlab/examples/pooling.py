"""Max and average pooling, with stride and padding, and how pooling grows the receptive field (seed 004).

Seed 004 (notes on Dive into Deep Learning 6.5) gives ``pool2d(X, pool_size,
mode)``, which slides the window with stride 1, and says pooling has a window
size, padding and stride. It prints no numbers; the book's are used: the 3x3
input 0..8 with a 2x2 window gives max ``[[4, 5], [7, 8]]`` and average
``[[2, 3], [5, 6]]``, and the 4x4 input 0..15 shows the stride and padding
variants. Seed 000 adds that a pooling layer makes the receptive field grow
faster, and that VGG's units see 212 input pixels before its fully connected
layers; both are computed by :func:`convlab.shapes.receptive_field` and measured
by the engine.

>>> result = run(io.StringIO())
>>> result.max.tolist(), result.avg.tolist()
([[4.0, 5.0], [7.0, 8.0]], [[2.0, 3.0], [5.0, 6.0]])
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from ..shapes import pool_output_shape
from ..spec import PoolSpec
from . import fields
from .fields import Layer
from .worked import Page, format_matrix

__all__ = ["TITLE", "VGG16", "Pooling", "run"]

TITLE = "Max and average pooling; pooling and the receptive field (seeds 004, 000)"
# VGG-16's convolutions and poolings before the fully connected layers (its padding 1 is left out:
# padding moves a receptive field but does not change its size).
VGG16 = ([Layer("conv", 3)] * 2 + [Layer("pool", 2, 2)] + [Layer("conv", 3)] * 2 + [Layer("pool", 2, 2)]
         + ([Layer("conv", 3)] * 3 + [Layer("pool", 2, 2)]) * 3)
VGG16_INPUT = 224


class Pooling(NamedTuple):
    max: np.ndarray  # (2, 2): 2x2 window, stride 1, on 0..8
    avg: np.ndarray  # (2, 2)
    variants: dict[str, np.ndarray]  # the call -> its output on the 4x4 input 0..15
    fields: dict[str, tuple[int, int]]  # stack -> (receptive field by the rule, measured by the engine)


def _show(page: Page, x: np.ndarray, call: str, mode: str, kernel, stride, padding=0) -> np.ndarray:
    """Pool ``x`` (C, H, W), print the call, output and output size; return the output (H_out, W_out)."""
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    y = pool(x, kernel, stride=stride, padding=padding)  # (C, H_out, W_out)
    spec = PoolSpec(kernel, stride, padding, ndim=2, name=f"{mode}_pool2d")
    sizes = pool_output_shape(spec, x.shape[1:])
    page.line(f"call: {call}", "output:", format_matrix(y[0]),
              f"output size: O = {sizes[0].formula}",
              *[f"  {d}_out = {size.explanation}" for d, size in zip(("H", "W"), sizes, strict=True)])
    return y[0]


def run(file: TextIO | None = None, number: int | None = None) -> Pooling:
    """Pool the book's inputs, then compute and measure receptive fields with pooling."""
    page = Page(file)
    page.title(TITLE, number)
    page.line("A pooling window has no weights: it returns the maximum or the mean of what it covers.")

    page.step("(a) a 2x2 window with stride 1 on 0..8 (seed 004's pool2d)")
    x = np.arange(9.0).reshape(1, 3, 3)  # (C, H, W)
    page.array("input (1 channel, 3x3)", x[0])
    maximum = _show(page, x, "F.max_pool2d(input, 2, stride=1)", "max", 2, 1)
    average = _show(page, x, "F.avg_pool2d(input, 2, stride=1)", "avg", 2, 1)
    page.line("the first element of each, written out:")
    for mode in ("max", "avg"):
        text = str(F.explain_pool(x, (2, 2), stride=1, position=(0, 0), mode=mode))
        page.line(*(f"  {line}" for line in text.splitlines()))
    page.line("Seed 004's pool2d always slides by 1; PyTorch's (and convlab's) default stride is the window size.")

    page.step("(b) stride and padding on the 4x4 input 0..15")
    x16 = np.arange(16.0).reshape(1, 4, 4)  # (C, H, W)
    page.array("input (1 channel, 4x4)", x16[0])
    variants = {}
    for call, kernel, stride, padding in [
        ("F.max_pool2d(input, 3)", 3, None, 0),
        ("F.max_pool2d(input, 3, stride=2, padding=1)", 3, 2, 1),
        ("F.max_pool2d(input, (2, 3), stride=(2, 3), padding=(0, 1))", (2, 3), (2, 3), (0, 1)),
        ("F.avg_pool2d(input, 2)", 2, None, 0),
    ]:
        page.line("")
        mode = "max" if "max" in call else "avg"
        variants[call] = _show(page, x16, call, mode, kernel, stride, padding)
    page.line("", "Without a stride the window jumps by its own size; max pooling never picks the padding",
              "(it counts as -infinity), average pooling counts padded zeros in the mean by default.")

    page.step("(c) pooling makes the receptive field grow faster (seed 000)")
    page.line("convlab.shapes.receptive_field, and the engine's measurement (the gradient of one output",
              "with respect to the input, all-ones kernels, average pooling for the window):")
    results = {}
    stacks = [("conv3-conv3", [Layer("conv", 3)] * 2, 16),
              ("conv3-pool2-conv3", [Layer("conv", 3), Layer("pool", 2, 2), Layer("conv", 3)], 16),
              ("VGG-16", VGG16, VGG16_INPUT)]
    for name, stack, size in stacks:
        field, measured = fields.predicted(stack), fields.measure(stack, size)
        results[name] = (field.size, measured.extent[0])
        convs = sum(layer.kind == "conv" for layer in stack)
        label = (f"{convs} 3x3 convolutions and {len(stack) - convs} 2x2 poolings, input {size}x{size}"
                 if name == "VGG-16" else fields.describe(stack))
        page.line(f"{name} ({label}):",
                  f"  rule: {field}; engine: {measured.extent[0]}x{measured.extent[1]} inputs reached")
    page.line("The 2x2 pooling with stride 2 doubles the jump (the distance in input pixels between",
              "neighbouring units), so each later layer widens the field twice as much: "
              f"{results['conv3-pool2-conv3'][0]} instead of {results['conv3-conv3'][0]}.",
              f"Seed 000's {results['VGG-16'][0]} for VGG before its fully connected layers is what the rule "
              "and the engine give.")
    return Pooling(maximum, average, variants, results)


if __name__ == "__main__":  # python -m convlab.examples.pooling
    run()
