"""A 3x3 kernel slides over a 4x4 input: stride 1, stride 2, and stride 1 with padding 1 (seed 000).

The seed runs ``F.conv2d(input, kernel, stride=1)``, ``stride=2`` and
``stride=1, padding=1`` in PyTorch and leaves the printed results to the reader
("可自己算一算"); here the engine computes them, one element is written out as
products and a sum, and every output size comes with its formula.

>>> result = run(io.StringIO())
>>> result.stride_1.tolist(), result.stride_2.tolist()
([[12, 10], [8, 18]], [[12]])
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .worked import Page, worked_example

__all__ = ["INPUT", "KERNEL", "TITLE", "StridePadding", "run"]

TITLE = "A 3x3 kernel on a 4x4 input: stride 1, stride 2, padding 1 (seed 000)"
INPUT = [[0, 1, 2, 3], [2, 1, 3, 2], [0, 1, 3, 0], [0, 4, 1, 2]]
KERNEL = [[2, 1, 0], [2, 1, 0], [1, 0, 2]]


class StridePadding(NamedTuple):
    stride_1: np.ndarray  # (2, 2)
    stride_2: np.ndarray  # (1, 1)
    padding_1: np.ndarray  # (4, 4)
    output_sizes: tuple[int, int, int]  # H_out of the three, from convlab.shapes


def run(file: TextIO | None = None, number: int | None = None) -> StridePadding:
    """Compute and print the three convolutions; return their outputs."""
    page = Page(file)
    page.title(TITLE, number)
    page.line("Each output element is the sum of the window times the kernel (cross-correlation, as in",
              "PyTorch). The seed's call F.conv2d(input, kernel, ...) takes (N, C, H, W); here the arrays",
              "are (C, H, W) with one channel.")
    x, w = np.array([INPUT]), np.array([[KERNEL]])  # (1, 4, 4), (1, 1, 3, 3)
    examples = [
        worked_example(x, w, explain=(0, 0), title="(a) stride 1",
                       notes=["The window moves one position at a time: 2 x 2 positions fit."]),
        worked_example(x, w, stride=2, title="(b) stride 2",
                       notes=["The window jumps two positions; only one position fits."]),
        worked_example(x, w, padding=1, explain=(0, 0), title="(c) stride 1, padding 1",
                       notes=["A ring of zeros around the input keeps the 4x4 size; the first element",
                              "reads five zeros of the padding (pad[...] below)."]),
    ]
    for example in examples:
        page.worked(example)
    sizes = tuple(int(e.sizes[0]) for e in examples)
    return StridePadding(examples[0].output[0], examples[1].output[0], examples[2].output[0], sizes)


if __name__ == "__main__":  # python -m convlab.examples.stride_padding
    run()
