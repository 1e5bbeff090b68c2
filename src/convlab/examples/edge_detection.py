"""Edge detection with the 1x2 kernel ``[[1, -1]]`` (seed 003, Dive into Deep Learning 5.1.3).

A 6x8 image is white (1) with its four middle columns black (0). The kernel
``[[1, -1]]`` answers 0 where horizontal neighbours agree, 1 on the
white-to-black edge and -1 on the black-to-white edge -- the seed's printed
``Y``, a 6x7 array with rows ``[0, 1, 0, 0, 0, -1, 0]``.

>>> run(io.StringIO()).output[0].tolist()
[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .worked import Page, worked_example

__all__ = ["KERNEL", "SEED_ROW", "TITLE", "EdgeDetection", "edge_image", "run"]

TITLE = "Edge detection with the kernel [[1, -1]] (seed 003)"
KERNEL = [[1.0, -1.0]]
SEED_ROW = [0, 1, 0, 0, 0, -1, 0]  # every row of the seed's printed Y


def edge_image() -> np.ndarray:
    """The seed's 6x8 image (float64): ones, with the four middle columns zero."""
    image = np.ones((6, 8))
    image[:, 2:6] = 0.0
    return image


class EdgeDetection(NamedTuple):
    image: np.ndarray  # (6, 8)
    kernel: np.ndarray  # (1, 2)
    output: np.ndarray  # (6, 7)
    agrees_with_seed: bool
    on_transposed_image: np.ndarray  # (8, 5): the kernel on image.T -- all zeros
    transposed_kernel_on_transposed_image: np.ndarray  # (7, 6): [[1], [-1]] on image.T


def run(file: TextIO | None = None, number: int | None = None) -> EdgeDetection:
    """Detect the two vertical edges of the seed's image; return the image, kernel and output."""
    page = Page(file)
    page.title(TITLE, number)
    page.line("A 6x8 image of ones with the four middle columns zero (black). The kernel [[1, -1]] gives",
              "x[i, j] - x[i, j+1]: 0 where neighbours agree, 1 where white meets black, -1 where black",
              "meets white.")
    image = edge_image()
    example = worked_example(image[None], np.array([[KERNEL]]), explain=(0, 1))
    page.worked(example)
    output = example.output[0]
    agrees = output.tolist() == [SEED_ROW] * 6
    page.line(f"Every row of the seed's Y is {SEED_ROW}: {'the same' if agrees else 'they DIFFER'}.")
    turned = F.conv2d(image.T[None], np.array([[KERNEL]]))[0]  # (8, 5): the edges are now horizontal
    found = F.conv2d(image.T[None], np.array([[KERNEL]]).transpose(0, 1, 3, 2))[0]  # (7, 6): kernel [[1], [-1]]
    page.line("The kernel sees only vertical edges. On the transposed image (horizontal edges) it gives",
              f"all zeros: {not turned.any()}. Its transpose [[1], [-1]] finds them:")
    page.array("F.conv2d(image.T, [[1], [-1]])", found)
    return EdgeDetection(image, np.array(KERNEL), output, agrees, turned, found)


if __name__ == "__main__":  # python -m convlab.examples.edge_detection
    run()
