"""The reference convolution: loops written to be read, and the oracle for every faster path.

This is the ``corr2d`` of the tutorials (slide the kernel, multiply, sum)
generalized to N spatial dimensions, channels, groups, stride, dilation and
input dilation::

    def corr2d(X, K):
        h, w = K.shape
        Y = zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import dilate_and_pad, primitive_output_size

__all__ = ["conv_general"]


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Cross-correlate ``x`` ``(N, C_in, *S)`` with ``weight`` ``(C_out, C_in/groups, *K)``.

    The input is first dilated (``input_dilation - 1`` zeros between elements)
    and zero-padded by ``padding`` (negative values crop). Then, for each group
    ``g`` and output position ``o``::

        y[n, g*Og + j, *o] = sum over c, *k of
            weight[g*Og + j, c, *k] * x_padded[n, g*Cg + c, *(o*stride + k*dilation)]
    """
    xp = dilate_and_pad(x, input_dilation, padding)
    n, c_in = xp.shape[:2]
    c_out = weight.shape[0]
    kernel = weight.shape[2:]
    out_size = primitive_output_size(xp.shape[2:], kernel, stride, dilation)
    cg, og = c_in // groups, c_out // groups
    y = np.zeros((n, c_out) + out_size, dtype=np.result_type(x, weight))
    axes = list(range(1, len(kernel) + 2))  # the channel axis and every kernel axis
    for g in range(groups):
        x_group = xp[:, g * cg:(g + 1) * cg]  # (N, Cg, *S)
        w_group = weight[g * og:(g + 1) * og]  # (Og, Cg, *K)
        for pos in np.ndindex(*out_size):
            window = x_group[(Ellipsis,) + tuple(
                slice(p * s, p * s + d * (k - 1) + 1, d) for p, s, d, k in zip(pos, stride, dilation, kernel, strict=True)
            )]  # (N, Cg, *K)
            y[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(window, w_group, axes=(axes, axes))
    return y
