"""Dilated (atrous) convolution: a kernel with holes, and how stacked dilations grow the receptive field.

Seed 000 writes the 2x2 kernel ``[[2, 1], [2, 1]]`` at dilation 2 as the 3x3
kernel ``[[2, 0, 1], [0, 0, 0], [2, 0, 1]]`` and says a 3x3 kernel at
dilation 2 covers 5x5. Seed 001 stacks 3x3 convolutions with dilations 1, 2
and 4: receptive fields 3x3, 7x7 and 15x15, with the same 9 weights per layer.
Seed 000 then compares two neighbouring units after three 3x3 layers: 8
inputs wide together without dilation, 14 with dilation 2, and no overlap.

Every receptive field is computed by :func:`convlab.shapes.receptive_field`
and measured by the engine (:mod:`convlab.examples.fields`).

>>> result = run(io.StringIO())
>>> result.stacked_sizes, result.measured_stacked_sizes
((3, 7, 15), (3, 7, 15))
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from ..costs import conv_cost
from . import fields
from .fields import Layer
from .stride_padding import INPUT
from .worked import Page, worked_example

__all__ = ["DILATED_KERNEL", "INSERTED_KERNEL", "TITLE", "Dilation", "run"]

TITLE = "Dilation (atrous convolution): a kernel with holes, and stacked receptive fields (seeds 000, 001)"
DILATED_KERNEL = [[2, 1], [2, 1]]
INSERTED_KERNEL = [[2, 0, 1], [0, 0, 0], [2, 0, 1]]
DILATIONS = (1, 2, 4)
INPUT_SIZE = 33  # large enough that every field below lies inside the input


class Dilation(NamedTuple):
    dilated: np.ndarray  # (2, 2): [[2, 1], [2, 1]] at dilation 2 on seed 000's 4x4 input
    inserted: np.ndarray  # (2, 2): the 3x3 kernel with zeros inserted, dilation 1
    single_spans: tuple[int, ...]  # one 3x3 layer at dilation 1, 2, 4 (rule)
    single_reached: tuple[int, ...]  # inputs per row it actually reads (engine): 3 for every dilation
    parameters: tuple[int, ...]  # weights of each of those layers
    stacked_sizes: tuple[int, ...]  # after 1, 2, 3 layers with dilations 1, 2, 4 (rule)
    measured_stacked_sizes: tuple[int, ...]  # the same, measured by the engine
    neighbours: dict[int, tuple[int, int, int]]  # dilation -> (field of one, of two neighbours, overlap), 3 layers


def run(file: TextIO | None = None, number: int | None = None) -> Dilation:
    """Compare the dilated and the zero-inserted kernel, then compute and measure receptive fields."""
    page = Page(file)
    page.title(TITLE, number)
    x = np.array([INPUT])  # (1, 4, 4), seed 000's input
    dilated = worked_example(x, [[DILATED_KERNEL]], dilation=2, title="(a) a 2x2 kernel at dilation 2",
                             notes=["Dilation 2 puts one hole between neighbouring taps: [[2, 1], [2, 1]] covers 3x3."])
    inserted = worked_example(x, [[INSERTED_KERNEL]], title="(b) ... equals the 3x3 kernel with zeros in the holes",
                              notes=["The seed's picture of the dilated kernel, at dilation 1."])
    page.worked(dilated)
    page.worked(inserted)
    same = np.array_equal(dilated.output, inserted.output)
    per_output = [conv_cost(1, 1, k, (1, 1)).multiplications for k in ((2, 2), (3, 3))]
    page.line(f"Equal to (a): {same}. The holes are not multiplied in (a): {per_output[0]} multiplications per",
              f"output element against {per_output[1]} in (b) (convlab.costs).")

    page.step("(c) one 3x3 layer at dilation 1, 2, 4: what it covers")
    page.line("convlab.shapes.receptive_field of the layer, and what the engine measures:")
    spans, reached, params = [], [], []
    for d in DILATIONS:
        layer = [Layer("conv", 3, dilation=d)]
        field, measured = fields.predicted(layer), fields.measure(layer, INPUT_SIZE)
        spans.append(field.size)
        reached.append(measured.count[0])
        params.append(conv_cost(1, 1, (3, 3), (1, 1)).params)
        row = measured.support[measured.start[0]]
        picture = fields.format_support(row[measured.start[1] - 1:measured.start[1] + field.size + 1], indent="")
        page.line(f"dilation {d}: {field}: {field.size}x{field.size}, {params[-1]} weights;",
                  f"  one input row as the engine's gradient reaches it (# = read): {picture}")
    page.line("Seed 000: a 3x3 kernel at dilation 2 covers 5x5, reading 3x3 of it; the weights stay 9.")

    page.step("(d) stacked 3x3 layers with dilations 1, 2, 4 (seed 001)")
    stacked, measured_sizes = [], []
    for depth in range(1, len(DILATIONS) + 1):
        stack = [Layer("conv", 3, dilation=d) for d in DILATIONS[:depth]]
        field, measured = fields.predicted(stack), fields.measure(stack, INPUT_SIZE)
        stacked.append(field.size)
        measured_sizes.append(measured.extent[0])
        page.line(f"{fields.describe(stack)}:",
                  f"  rule {field.size}x{field.size}; engine: the gradient of one output reaches "
                  f"{measured.extent[0]}x{measured.extent[1]} inputs, {int(measured.support.sum())} of them"
                  f" ({'no holes' if measured.support.sum() == measured.extent[0] * measured.extent[1] else 'holes'})")
    page.line("Seed 001 says 3x3 for l=1, 7x7 for l=2 and 15x15 for \"l=3\"; its figure and its own list",
              "(l = 1, 2, 4) have dilation 4 for the third layer, which is what gives 15.")

    page.step("(e) two neighbouring units after three 3x3 layers (seed 000)")
    neighbours = {}
    for d in (1, 2):
        stack = [Layer("conv", 3, dilation=d)] * 3
        one, right = fields.measure(stack, INPUT_SIZE, (0,)), fields.measure(stack, INPUT_SIZE, (1,))
        both = fields.measure(stack, INPUT_SIZE, (0, 1))
        overlap = one.support & right.support
        shared = int(overlap.any(axis=0).sum())
        neighbours[d] = (one.extent[1], both.extent[1], shared)
        page.line(f"dilation {d}: one unit's field is {one.extent[1]} wide (rule: {fields.predicted(stack).size}),",
                  f"  two horizontal neighbours together {both.extent[1]} wide, columns read by both: {shared}")
    (w1, u1, s1), (_, u2, s2) = neighbours[1], neighbours[2]
    page.line(f"Seed 000: {u1}x{u1} together without dilation and {u2}x{u2} with dilation 2, about 3 times the",
              f"area ({u2 * u2 / (u1 * u1):.2f}); with dilation 2 each field reads every other input, so "
              f"neighbours share {s2}.",
              f"The seed also says that without dilation \"7x7\" of the {u1}x{u1} is shared; the engine finds "
              f"{s1} of the {u1}",
              f"columns shared by horizontal neighbours ({s1}x{w1}), and {s1}x{s1} by diagonal ones.")
    return Dilation(dilated.output[0], inserted.output[0], tuple(spans), tuple(reached), tuple(params),
                    tuple(stacked), tuple(measured_sizes), neighbours)


if __name__ == "__main__":  # python -m convlab.examples.dilation
    run()
