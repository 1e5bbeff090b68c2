"""Transposed convolution (deconvolution): 3x3 -> 5x5 at s=2, p=1, k=3, and the zero-insertion recipe (seeds 000, 001).

Seed 000's recipe: insert ``s-1`` rows and columns of zeros between the input
elements, pad ``k-p-1`` rows and columns of zeros around them, flip the kernel
up-down and left-right, and run an ordinary convolution with stride 1 and no
padding. For ``s=2, p=1, k=3`` on a 3x3 input it computes
``(3-1)x2 - 2x1 + 3 = 5``. Seed 001 draws a 2x2 input upsampled to 4x4
(stride 1, padding 2 around it) and to 5x5 (one zero between the elements).

The engine's :func:`convlab.functional.conv_transpose2d` gives the output, and
:func:`convlab.shapes.conv_transpose_output_length` its size; the zero-inserted
picture comes from the engine too: zero insertion is itself a transposed
convolution with the 1x1 kernel ``[[1]]``.

>>> result = run(io.StringIO())
>>> result.output.shape, result.recipe_equal, result.seed001_sizes
((5, 5), True, (4, 5))
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from ..ops import transposed
from .stride_padding import KERNEL
from .worked import Page, format_matrix, worked_example

__all__ = ["TITLE", "Transposed", "run", "zero_insertion"]

TITLE = "Transposed convolution: 3x3 -> 5x5 at s=2, p=1, k=3, and the zero-insertion recipe (seeds 000, 001)"


class Transposed(NamedTuple):
    output: np.ndarray  # (5, 5): conv_transpose2d of 1..9 with seed 000's kernel, s=2, p=1
    padded: np.ndarray  # (7, 7): the zero-inserted, zero-padded input of the recipe
    recipe: np.ndarray  # (5, 5): the recipe's stride-1 convolution with the flipped kernel
    recipe_equal: bool  # recipe == output == ops.transposed.by_zero_insertion
    seed001_sizes: tuple[int, int]  # 2x2 at stride 1 and at stride 2, k=3, p=0


def zero_insertion(x: np.ndarray, kernel_size: int, stride: int, padding: int) -> np.ndarray:
    """The recipe's input: ``stride - 1`` zeros between elements, ``k - p - 1`` zeros around (groups 1, dilation 1).

    The zeros between the elements come from the engine, as the transposed
    convolution of ``x`` (``(C, H, W)``) with the 1x1 kernel ``[[1]]`` at ``stride``.
    """
    spread = F.conv_transpose2d(x, np.ones((x.shape[0], 1, 1, 1), dtype=x.dtype), stride=stride)  # (C, H', W')
    border = kernel_size - padding - 1
    return F.pad(spread, (border,) * 4)  # (C, H' + 2*border, W' + 2*border)


def _recipe(page: Page, x: np.ndarray, w: np.ndarray, stride: int, padding: int,
            show_kernel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Print and compute the recipe for ``x`` (1, H, W) and ``w`` (1, 1, k, k); return (padded, output)."""
    k = w.shape[-1]
    padded = zero_insertion(x, k, stride, padding)
    page.line(f"step 1: s-1 = {stride - 1} zero(s) between neighbouring elements; step 2: k-p-1 = {k}-{padding}-1 = "
              f"{k - padding - 1} ring(s) of zeros around:")
    page.line(format_matrix(padded[0]))
    page.line("step 3: flip the kernel up-down and left-right" + (":" if show_kernel else " (as above);"))
    if show_kernel:
        page.line(format_matrix(w[0, 0, ::-1, ::-1]))
    page.line("step 4: an ordinary convolution, stride 1, no padding: F.conv2d(padded, kernel, flip_kernel=True)")
    result = F.conv2d(padded, w, flip_kernel=True)  # (1, H_out, W_out)
    page.line(format_matrix(result[0]))
    return padded[0], result[0]


def run(file: TextIO | None = None, number: int | None = None) -> Transposed:
    """The seed's 3x3 -> 5x5 transposed convolution, by the engine and by the recipe; seed 001's two sizes."""
    page = Page(file)
    page.title(TITLE, number)
    x = np.arange(1, 10).reshape(1, 3, 3)  # (C_in=1, 3, 3): 1..9, so that inserted zeros stand out
    w = np.array([[KERNEL]])  # (C_in=1, C_out=1, 3, 3): seed 000's kernel, not symmetric
    example = worked_example(
        x, w, stride=2, padding=1, transposed=True, explain=(1, 1),
        title="(a) F.conv_transpose2d, stride 2, padding 1, 3x3 kernel: 3x3 -> 5x5 (seed 000)",
        notes=["Every input element stamps the kernel, scaled by its value, into the output at 2*i - 1;",
               "the seed computes the size as (3-1)x2 - 2x1 + 3 = 5, the engine's rule says the same:"])
    page.worked(example)

    page.step("(b) the seed's recipe, computed by the engine")
    padded, recipe = _recipe(page, x, w, 2, 1)
    by_zero_insertion = transposed.by_zero_insertion(x[None], w, stride=2, padding=1)[0, 0]  # (5, 5)
    equal = np.array_equal(recipe, example.output[0]) and np.array_equal(by_zero_insertion, recipe)
    page.line(f"Equal to F.conv_transpose2d and to convlab.ops.transposed.by_zero_insertion: {equal}.")

    page.step("(c) seed 001: a 2x2 input upsampled to 4x4 and to 5x5 by a 3x3 kernel")
    small = np.array([[[1, 2], [3, 4]]])  # (1, 2, 2)
    sizes = []
    for stride in (1, 2):
        upsampled = worked_example(small, w, stride=stride, transposed=True)
        if sizes:
            page.line("")
        page.line(f"stride {stride}: H_out = {upsampled.sizes[0].explanation}")
        _, recipe_small = _recipe(page, small, w, stride, 0, show_kernel=False)
        page.line(f"equal to F.conv_transpose2d(input, kernel, stride={stride}): "
                  f"{np.array_equal(recipe_small, upsampled.output[0])}")
        sizes.append(int(upsampled.sizes[0]))
    return Transposed(example.output[0], padded, recipe, equal, (sizes[0], sizes[1]))


if __name__ == "__main__":  # python -m convlab.examples.transposed
    run()
