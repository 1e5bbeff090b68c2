"""The convolution matrix C and its transpose (seed 001).

Seed 001 flattens a 4x4 input into a 16-vector and writes a 3x3 convolution
as a sparse 4x16 matrix ``C``: ``C x Large = Small`` (2x2). Multiplying by
``C^T`` maps a 2x2 array back to 4x4, which is why the transposed convolution
has its name. The seed justifies ``C^T x Small = Large`` by "a matrix times
its transpose is the identity"; that is not so: ``C^T`` gives back the *shape*
of the input (and equals :func:`convlab.functional.conv_transpose2d`), not the
input itself.

>>> result = run(io.StringIO())
>>> result.matrix.shape, result.transpose_equal, result.recovers_input
((4, 16), True, False)
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .stride_padding import INPUT, KERNEL
from .worked import Page, format_matrix

__all__ = ["TITLE", "ConvMatrix", "run"]

TITLE = "The convolution matrix C (4x16) and its transpose (seed 001)"


class ConvMatrix(NamedTuple):
    matrix: np.ndarray  # (4, 16): C for a 3x3 kernel on a 4x4 input
    small: np.ndarray  # (2, 2): C @ vec(input), reshaped
    conv_equal: bool  # small == F.conv2d(input, kernel)
    back: np.ndarray  # (4, 4): C.T @ vec(small), reshaped
    transpose_equal: bool  # back == F.conv_transpose2d(small, kernel)
    recovers_input: bool  # back == input (it does not)
    gram_is_identity: bool  # C @ C.T == I (it is not)
    rank: int  # of C.T @ C (16x16): 4


def run(file: TextIO | None = None, number: int | None = None) -> ConvMatrix:
    """Build C for seed 000's kernel on its 4x4 input, apply C and C^T, compare with the engine."""
    page = Page(file)
    page.title(TITLE, number)
    x = np.array(INPUT)  # (4, 4)
    w = np.array([[KERNEL]])  # (C_out=1, C_in=1, 3, 3)
    matrix = F.conv_matrix(w, (4, 4))  # (C_out * 2 * 2, C_in * 4 * 4) = (4, 16)
    page.line("Seed 000's 3x3 kernel on its 4x4 input. Row p of C holds the kernel where output p's",
              "window lies in the flattened (row-major) input: F.conv_matrix(kernel, (4, 4)).")
    page.array("kernel", w[0, 0])
    page.array(f"C ({matrix.shape[0]}x{matrix.shape[1]})", matrix)

    page.step("C x Large = Small")
    page.line("Large, flattened:", format_matrix(x.reshape(1, -1)))
    small = (matrix @ x.reshape(-1)).reshape(2, 2)  # (4,) -> (2, 2)
    conv_equal = np.array_equal(small, F.conv2d(x[None], w)[0])
    page.array("C @ Large, reshaped to 2x2", small)
    page.line(f"equal to F.conv2d(Large, kernel): {conv_equal}")

    page.step("C^T x Small: back to 4x4")
    back = (matrix.T @ small.reshape(-1)).reshape(4, 4)  # (16,) -> (4, 4)
    transposed = F.conv_transpose2d(small[None], w)[0]  # (4, 4)
    transpose_equal = np.array_equal(back, transposed)
    recovers = np.array_equal(back, x)
    gram = matrix @ matrix.T  # (4, 4)
    rank = int(np.linalg.matrix_rank(matrix.T @ matrix))  # of the (16, 16) product
    page.array("C.T @ Small, reshaped to 4x4", back)
    page.line(f"equal to F.conv_transpose2d(Small, kernel): {transpose_equal}",
              f"equal to Large: {recovers}. The seed's reason, that a matrix times its transpose is the",
              f"identity, does not hold: C.T @ C is 16x16 of rank {rank}, and even C @ C.T (4x4) is")
    page.line(format_matrix(gram))
    page.line("C^T maps 2x2 back to 4x4 with the same connectivity as C (every input element meets the same",
              "weights), so it is an upsampling layer to be trained, not the inverse of the convolution.")
    return ConvMatrix(matrix, small, conv_equal, back, transpose_equal, recovers,
                      bool(np.array_equal(gram, np.eye(4))), rank)


if __name__ == "__main__":  # python -m convlab.examples.conv_matrix
    run()
