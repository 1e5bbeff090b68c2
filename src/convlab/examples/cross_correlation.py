"""Two-dimensional cross-correlation of figure 5.1 (seed 003, Dive into Deep Learning 5.1).

The seed's ``corr2d(X, K)`` with ``X = [[0,1,2],[3,4,5],[6,7,8]]`` and
``K = [[0,1],[2,3]]`` prints ``[[19., 25.], [37., 43.]]`` and writes the four
sums out. The engine computes the same, and :func:`convlab.functional.explain_conv`
writes out each of the four.

>>> run(io.StringIO()).output.tolist()
[[19, 25], [37, 43]]
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .worked import Page, worked_example

__all__ = ["INPUT", "KERNEL", "SEED_OUTPUT", "TITLE", "CrossCorrelation", "run"]

TITLE = "Two-dimensional cross-correlation, figure 5.1 (seed 003)"
INPUT = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
KERNEL = [[0, 1], [2, 3]]
SEED_OUTPUT = [[19, 25], [37, 43]]  # what the seed's corr2d prints


class CrossCorrelation(NamedTuple):
    output: np.ndarray  # (2, 2)
    sums: list[str]  # each output element written out
    agrees_with_seed: bool


def run(file: TextIO | None = None, number: int | None = None) -> CrossCorrelation:
    """Compute the figure 5.1 cross-correlation, write out all four elements, compare with the seed."""
    page = Page(file)
    page.title(TITLE, number)
    page.line("The 2x2 window starts at the top left and slides right, then down; at each position the",
              "window and the kernel are multiplied element by element and summed.")
    example = worked_example([INPUT], [[KERNEL]])
    page.worked(example)
    output = example.output[0]
    sums = [str(F.explain_conv(np.array([INPUT]), np.array([[KERNEL]]), position=(i, j)))
            for i in range(output.shape[0]) for j in range(output.shape[1])]
    page.line("each output element, written out:")
    for text in sums:
        page.line(*(f"  {line}" for line in text.splitlines()))
    agrees = output.tolist() == SEED_OUTPUT
    page.line(f"The seed's corr2d prints {SEED_OUTPUT}; the engine gives {output.tolist()}: "
              f"{'the same' if agrees else 'they DIFFER'}.")
    return CrossCorrelation(output, sums, agrees)


if __name__ == "__main__":  # python -m convlab.examples.cross_correlation
    run()
