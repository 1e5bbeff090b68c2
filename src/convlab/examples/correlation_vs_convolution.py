"""Cross-correlation versus convolution, and the receptive field of a stacked element (seed 003).

Seed 003 (Dive into Deep Learning 5.1) explains why a convolutional layer may
compute cross-correlation: flipping the kernel up-down and left-right turns
one into the other, and a kernel that is learned simply comes out flipped. It
then stacks a second 2x2 kernel on figure 5.1's 2x2 output ``Y`` to get a
single element ``z`` whose receptive field is all 9 input elements.

>>> result = run(io.StringIO())
>>> result.convolution.tolist(), result.input_field_elements
([[5, 11], [23, 29]], 9)
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from . import fields
from .cross_correlation import INPUT, KERNEL
from .worked import Page, worked_example

__all__ = ["TITLE", "CorrelationVsConvolution", "run"]

TITLE = "Cross-correlation vs. convolution; the receptive field of a stacked element (seed 003)"


class CorrelationVsConvolution(NamedTuple):
    correlation: np.ndarray  # (2, 2): figure 5.1, [[19, 25], [37, 43]]
    convolution: np.ndarray  # (2, 2): the same arrays, kernel flipped
    flipped_kernel: np.ndarray  # (2, 2)
    learned_flipped: np.ndarray  # (2, 2): convolution with the flipped kernel = the correlation
    field_on_y: int  # elements of Y that z reads (rule)
    field_on_input: int  # elements of X that z depends on (rule)
    input_field_elements: int  # elements of X that z's gradient reaches (engine)


def run(file: TextIO | None = None, number: int | None = None) -> CorrelationVsConvolution:
    """Compare cross-correlation and convolution on figure 5.1, then measure z's receptive field."""
    page = Page(file)
    page.title(TITLE, number)
    x, k = np.array([INPUT]), np.array([[KERNEL]])  # (1, 3, 3), (1, 1, 2, 2)
    correlation = F.conv2d(x, k)[0]
    convolution = worked_example(
        x, k, flip_kernel=True, explain=(0, 0),
        title="(a) the true (flipped-kernel) convolution of figure 5.1's arrays",
        notes=["flip_kernel=True flips the kernel up-down and left-right before sliding it, as the",
               f"mathematical convolution does. Cross-correlation gave {correlation.tolist()}."])
    page.worked(convolution)

    flipped = k[0, 0, ::-1, ::-1]
    learned = F.conv2d(x, np.ascontiguousarray(flipped)[None, None], flip_kernel=True)[0]
    page.step("(b) a learned kernel comes out flipped")
    page.line("If the layer computed convolution, training would find the flipped kernel; convolving",
              "with it gives back figure 5.1's output, so the layer's predictions do not change:")
    page.array("flipped kernel", flipped)
    page.line("call: F.conv2d(input, flipped kernel, flip_kernel=True)")
    page.array("output", learned)
    page.line(f"Equal to the cross-correlation with the original kernel: {np.array_equal(learned, correlation)}.")

    page.step("(c) the receptive field of z")
    page.line("Y is figure 5.1's 2x2 output; a second 2x2 kernel on Y gives a single element z.",
              "z reads all four elements of Y, and through them all nine elements of the input.")
    one = fields.predicted([fields.Layer("conv", 2)])
    stack = [fields.Layer("conv", 2), fields.Layer("conv", 2)]
    two = fields.predicted(stack)
    page.line(f"convlab.shapes.receptive_field, one 2x2 layer: {one}",
              f"  -> z's field on Y: {one.size}x{one.size} = {one.size ** 2} elements",
              f"convlab.shapes.receptive_field, {fields.describe(stack)}: {two}",
              f"  -> z's field on the input: {two.size}x{two.size} = {two.size ** 2} elements")
    measured = fields.measure(stack, len(INPUT))
    page.line("Measured by the engine: the gradient of z with respect to the input (all-ones kernels),",
              "# where it is non-zero:")
    page.line(fields.format_support(measured.support))
    count = int(measured.support.sum())
    page.line(f"It reaches {count} input elements: {'as the rule says' if count == two.size ** 2 else 'DIFFERENT'}.")
    return CorrelationVsConvolution(correlation, convolution.output[0], flipped, learned, one.size ** 2,
                                    two.size ** 2, count)


if __name__ == "__main__":  # python -m convlab.examples.correlation_vs_convolution
    run()
