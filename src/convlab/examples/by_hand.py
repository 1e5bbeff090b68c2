"""A 3x3 input and a 2x2 kernel, computed by hand in the tutorial (seed 002).

Seed 002 slides ``[[1, 0], [0, 1]]`` over ``[[1, 0, 1], [2, 1, 0], [0, 1, 1]]``
and prints ``[[2, 0], [3, 2]]``, which the engine confirms. Its hand computation
of the first element, ``1*1 + 0*2 + 0*1 + 1*0 = 1``, disagrees with its own
printed 2: the window ``[[1, 0], [2, 1]]`` meets the kernel as written out below.

>>> result = run(io.StringIO())
>>> result.output.tolist(), result.agrees_with_seed
([[2, 0], [3, 2]], True)
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .worked import Page, worked_example

__all__ = ["INPUT", "KERNEL", "SEED_HAND_FIRST", "SEED_OUTPUT", "TITLE", "ByHand", "run"]

TITLE = "A 3x3 input and a 2x2 kernel, by hand (seed 002)"
INPUT = [[1, 0, 1], [2, 1, 0], [0, 1, 1]]
KERNEL = [[1, 0], [0, 1]]
SEED_OUTPUT = [[2, 0], [3, 2]]  # the seed's printed result
SEED_HAND_FIRST = 1  # the seed's hand computation of the first element: 1*1 + 0*2 + 0*1 + 1*0


class ByHand(NamedTuple):
    output: np.ndarray  # (2, 2)
    agrees_with_seed: bool  # the printed result
    first_element: int
    first_element_flipped: int  # the true convolution's first element


def run(file: TextIO | None = None, number: int | None = None) -> ByHand:
    """Compute the seed's example, write out its first element and compare with the seed."""
    page = Page(file)
    page.title(TITLE, number)
    example = worked_example([INPUT], [[KERNEL]], explain=(0, 0))
    page.worked(example)
    output = example.output[0]
    first = int(output[0, 0])
    agrees = output.tolist() == SEED_OUTPUT
    page.line(f"The seed prints {SEED_OUTPUT}; the engine gives {output.tolist()}"
              f" ({'the same' if agrees else 'they DIFFER'}).",
              f"The seed's hand computation of the first element, 1*1+0*2+0*1+1*0 = {SEED_HAND_FIRST}, disagrees",
              f"with its own printed {SEED_OUTPUT[0][0]}. It says F(1,1) meets G(2,2), which is the true (flipped)",
              "convolution; the engine's flipped convolution pairs them like this:")
    flipped = F.explain_conv(np.array([INPUT]), np.array([[KERNEL]]), position=(0, 0), flip_kernel=True)
    page.line(*(f"  {line}" for line in str(flipped).splitlines()))
    page.line("The seed's last two products, 0*1 and 1*0, read the wrong input elements. This kernel is",
              "unchanged by the 180-degree flip, so convolution and cross-correlation agree here.")
    return ByHand(output, agrees, first, int(flipped.result))


if __name__ == "__main__":  # python -m convlab.examples.by_hand
    run()
