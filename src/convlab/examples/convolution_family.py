"""The convolution family's costs (seed 001): depthwise-separable, spatially separable and grouped convolution.

Seed 001 counts multiplications: a 7x7x3 input and 128 filters of 3x3x3 take
86,400; a depthwise 3x3 convolution followed by a pointwise (1x1) one gives the
same 5x5x128 output shape with 675 + 9,600 = 10,275 ("about 12%"). The 3x3
Sobel kernel is the outer product of [1, 2, 1] (a column) and [-1, 0, 1] (a
row); on a 5x5 image the full kernel takes 81 multiplications, the two 1-D
passes 45 + 27 = 72. Two filter groups halve the parameters. The counts come
from :mod:`convlab.ops.family` and :mod:`convlab.costs`, the outputs from the engine.

>>> result = run(io.StringIO())
>>> result.separable_costs, result.spatial_costs, result.group_param_ratio
((86400, 10275), (81, 72), 0.5)
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from ..costs import conv_cost
from ..ops import family
from .cross_correlation import INPUT as FIGURE_5_1
from .worked import Page, worked_example

__all__ = ["SOBEL", "TITLE", "ConvolutionFamily", "run"]

TITLE = "The convolution family: depthwise-separable, spatially separable and grouped (seed 001)"
SOBEL = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


class ConvolutionFamily(NamedTuple):
    separable_costs: tuple[int, int]  # multiplications: standard, depthwise + pointwise
    separable_parts: tuple[int, int]  # depthwise, pointwise
    separable_ratio: float
    separable_output_shape: tuple[int, ...]  # (128, 5, 5)
    separable_equals_standard: bool  # with the equivalent standard weight
    sobel_factors: tuple[np.ndarray, np.ndarray]  # column [1, 2, 1], row [-1, 0, 1]
    sobel_equal: bool  # separable_conv == conv2d with the full kernel
    spatial_costs: tuple[int, int]  # 81, 72
    spatial_passes: tuple[int, int]  # 45, 27
    grouped: np.ndarray  # (2, 2, 2): the small depthwise example
    group_param_ratio: float  # 0.5
    grouped_equals_split: bool


def run(file: TextIO | None = None, number: int | None = None) -> ConvolutionFamily:
    """Compute the seed's three families with the engine and count their cost."""
    page = Page(file)
    page.title(TITLE, number)
    rng = np.random.default_rng(0)

    page.step("(a) depthwise-separable convolution: 7x7x3 -> 5x5x128")
    page.line("One standard layer (128 filters of 3x3x3), or a depthwise 3x3 layer (one 3x3 kernel per",
              "channel, groups=3) followed by a pointwise 1x1 layer (128 filters of 1x1x3). Computed on",
              "random data; each count is convlab.costs.conv_cost of the layer and its output shape:")
    x = rng.standard_normal((1, 3, 7, 7))  # (N, C_in, H, W)
    standard_w = rng.standard_normal((128, 3, 3, 3))  # (C_out, C_in, 3, 3)
    depthwise_w = rng.standard_normal((3, 1, 3, 3))  # (C_in, 1, 3, 3)
    pointwise_w = rng.standard_normal((128, 3, 1, 1))  # (C_out, C_in, 1, 1)
    standard = F.conv2d(x, standard_w)  # (1, 128, 5, 5)
    middle = F.depthwise_conv(x, depthwise_w)  # (1, 3, 5, 5)
    separable = F.pointwise_conv(middle, pointwise_w)  # (1, 128, 5, 5)
    rows = []
    for label, w, groups, out in [("standard 3x3, 3 -> 128", standard_w, 1, standard),
                                  ("depthwise 3x3, groups=3", depthwise_w, 3, middle),
                                  ("pointwise 1x1, 3 -> 128", pointwise_w, 1, separable)]:
        cost = conv_cost(w.shape[1] * groups, w.shape[0], w.shape[2:], out.shape[2:], groups=groups)
        rows.append((label, "x".join(map(str, w.shape)), "x".join(map(str, out.shape[1:])), cost.params,
                     cost.multiplications))
    header = ("layer", "weight", "output", "params", "multiplications")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        page.line("  " + "  ".join(str(v).ljust(widths[i]) if i < 3 else str(v).rjust(widths[i])
                                   for i, v in enumerate(r)))
    comparison = family.depthwise_separable_cost(3, 128, (3, 3), (7, 7))
    page.line(f"family.depthwise_separable_cost(3, 128, (3, 3), (7, 7)): standard "
              f"{comparison.standard.multiplications}, separable {comparison.variant.multiplications} "
              f"multiplications,",
              f"  ratio {comparison.ratio:.4f} (the seed's \"about 12%\"); parameters {comparison.standard.params} "
              f"vs {comparison.variant.params}")
    equivalent = family.depthwise_separable_equivalent_weight(depthwise_w, pointwise_w, 3)  # (128, 3, 3, 3)
    same = bool(np.allclose(F.conv2d(x, equivalent), separable))
    page.line("The pair is a standard convolution with a constrained weight: F.conv2d with",
              f"family.depthwise_separable_equivalent_weight gives the same output: {same}.")

    page.step("(b) spatially separable: Sobel = [1, 2, 1] (column) x [-1, 0, 1] (row)")
    sobel = np.array(SOBEL, dtype=float)
    column, row = family.separable_factors(sobel)
    page.array("Sobel kernel", sobel)
    page.line(f"family.separable_factors: column {column.tolist()}, row {row.tolist()}; their outer product is",
              f"the kernel: {np.array_equal(np.outer(column, row), sobel)}. Weights: {column.size + row.size} "
              f"instead of {sobel.size}.")
    image = rng.integers(0, 10, size=(1, 1, 5, 5)).astype(float)  # (N, C, 5, 5)
    full = F.conv2d(image, sobel[None, None])  # (1, 1, 3, 3)
    first = F.conv2d(image, column.reshape(1, 1, 3, 1))  # (1, 1, 3, 5): the 3x1 pass
    second = F.conv2d(first, row.reshape(1, 1, 1, 3))  # (1, 1, 3, 3): the 1x3 pass
    sobel_equal = bool(np.array_equal(second, full)) and bool(
        np.array_equal(family.separable_conv(image, [column, row]), full))
    page.array("a 5x5 image", image[0, 0])
    page.array("the 3x1 pass, then the 1x3 pass (= the full kernel)", second[0, 0])
    page.line(f"equal to the full 3x3 kernel and to family.separable_conv: {sobel_equal}")
    passes = (conv_cost(1, 1, (3, 1), first.shape[2:]).multiplications,
              conv_cost(1, 1, (1, 3), second.shape[2:]).multiplications)
    spatial = family.spatially_separable_cost((3, 3), (5, 5))
    page.line(f"multiplications: the 3x1 pass {passes[0]} (output {first.shape[2]}x{first.shape[3]}), "
              f"the 1x3 pass {passes[1]} (output {second.shape[2]}x{second.shape[3]});",
              f"family.spatially_separable_cost((3, 3), (5, 5)): {spatial.standard.multiplications} for the full "
              f"kernel, {spatial.variant.multiplications} separated, as the seed counts.")

    page.step("(c) grouped convolution: two groups halve the parameters")
    grouped = worked_example(
        np.array([FIGURE_5_1, np.eye(3, dtype=np.int64).tolist()]), [[[[1, 0], [0, 1]]], [[[0, 1], [2, 3]]]],
        groups=2, notes=["groups=2 with 2 channels (depthwise): each channel has its own kernel and the channels",
                         "never mix."])
    page.line(grouped.text())
    x4 = rng.standard_normal((1, 4, 6, 6))  # (N, C_in=4, 6, 6)
    w4 = rng.standard_normal((4, 2, 3, 3))  # (C_out=4, C_in/groups=2, 3, 3)
    split = np.concatenate([F.conv2d(x4[:, :2], w4[:2]), F.conv2d(x4[:, 2:], w4[2:])], axis=1)  # (1, 4, 4, 4)
    split_equal = bool(np.allclose(F.conv2d(x4, w4, groups=2), split))
    page.line(f"groups=2 on 4 channels equals two separate convolutions on channels 0-1 and 2-3: {split_equal}")
    groups = family.grouped_cost(64, 128, (3, 3), (32, 32), groups=2, padding=1)
    page.line(f"family.grouped_cost(64, 128, (3, 3), (32, 32), groups=2, padding=1): parameters "
              f"{groups.standard.params} -> {groups.variant.params}",
              f"  (ratio {groups.param_ratio:g}), multiplications {groups.standard.multiplications} -> "
              f"{groups.variant.multiplications} (ratio {groups.ratio:g})")
    return ConvolutionFamily(
        (comparison.standard.multiplications, comparison.variant.multiplications),
        (rows[1][4], rows[2][4]), comparison.ratio, separable.shape[1:], same, (column, row), sobel_equal,
        (spatial.standard.multiplications, spatial.variant.multiplications), passes, grouped.output,
        groups.param_ratio, split_equal)


if __name__ == "__main__":  # python -m convlab.examples.convolution_family
    run()
