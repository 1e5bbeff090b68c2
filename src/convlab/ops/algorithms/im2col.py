"""im2col + GEMM: gather every window into a matrix, then one matrix product per group.

The default algorithm. The window matrix is built in batch chunks of at most
:data:`CHUNK_BYTES` so the working set stays bounded whatever the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import dilate_and_pad, primitive_output_size, sliding_windows
from ._record import Algorithm

__all__ = ["ALGORITHM", "CHUNK_BYTES", "conv_general"]

#: Target size of one im2col block.
CHUNK_BYTES = 64 * 2**20


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`."""
    xp = dilate_and_pad(x, input_dilation, padding)
    n, c_in = xp.shape[:2]
    c_out = weight.shape[0]
    kernel = tuple(weight.shape[2:])
    nd = len(kernel)
    out_size = primitive_output_size(xp.shape[2:], kernel, stride, dilation)
    cg, og = c_in // groups, c_out // groups
    positions, taps = math.prod(out_size), math.prod(kernel)
    dtype = np.result_type(x, weight)
    y = np.empty((n, c_out) + out_size, dtype=dtype)
    w_mat = weight.reshape(groups, og, cg * taps).transpose(0, 2, 1)  # (G, Cg*K, Og)
    # Blocks of samples (and, when one sample is too large, of groups) keep the window matrix small.
    per_group = max(positions * cg * taps * dtype.itemsize, 1)
    if groups * per_group <= CHUNK_BYTES:
        sample_block, group_block = max(1, CHUNK_BYTES // (groups * per_group)), groups
    else:
        sample_block, group_block = 1, max(1, CHUNK_BYTES // per_group)
    o_axes = tuple(range(3, 3 + nd))
    k_axes = tuple(range(3 + nd, 3 + 2 * nd))
    for start in range(0, n, sample_block):
        stop = min(n, start + sample_block)
        m = stop - start
        win = sliding_windows(xp[start:stop], kernel, stride, dilation, out_size)  # (m, C, *O, *K)
        win = win.reshape((m, groups, cg) + out_size + kernel)  # (m, G, Cg, *O, *K)
        for g0 in range(0, groups, group_block):
            g1 = min(groups, g0 + group_block)
            cols = win[:, g0:g1].transpose((1, 0) + o_axes + (2,) + k_axes)  # (g, m, *O, Cg, *K)
            cols = cols.reshape(g1 - g0, m * positions, cg * taps)  # (g, m*P, Cg*K), the im2col copy
            out = np.matmul(cols, w_mat[g0:g1])  # (g, m*P, Og)
            out = out.reshape((g1 - g0, m) + out_size + (og,))  # (g, m, *O, Og)
            # (g, m, *O, Og) -> (m, g, Og, *O) -> (m, g*Og, *O)
            y[start:stop, g0 * og:g1 * og] = out.transpose((1, 0, 2 + nd) + tuple(range(2, 2 + nd))).reshape(
                (m, (g1 - g0) * og) + out_size
            )
    return y


ALGORITHM = Algorithm(
    name="im2col",
    summary="gather windows, one GEMM per group (the first fast path)",
    primitive=conv_general,
)
