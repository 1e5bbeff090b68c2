"""Algorithms of the convolution primitive; each returns the same numbers as ``reference``.

Every algorithm implements one function, ``conv_general(x, weight, stride,
padding, dilation, input_dilation, groups)``: a zero-padded, input-dilated,
grouped cross-correlation on batched arrays. Forward convolution, transposed
convolution and both gradients are all expressed through it, so an algorithm
added here speeds up all four.
"""

from __future__ import annotations

from collections.abc import Callable

from . import im2col, matrix, reference

__all__ = ["ALGORITHMS", "choose"]

ALGORITHMS: dict[str, Callable] = {
    "reference": reference.conv_general,
    "im2col": im2col.conv_general,
    "matrix": matrix.conv_general,
}


def choose(fn: str, algorithm: str) -> Callable:
    """The primitive for ``algorithm`` (``'auto'`` is im2col + GEMM for now)."""
    if not isinstance(algorithm, str):
        raise TypeError(f"{fn}: `algorithm` must be a string ('auto' or one of {tuple(ALGORITHMS)}), got {algorithm!r}")
    if algorithm == "auto":
        return ALGORITHMS["im2col"]
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{fn}: `algorithm` (={algorithm!r}) must be 'auto' or one of {tuple(ALGORITHMS)}")
    return ALGORITHMS[algorithm]
