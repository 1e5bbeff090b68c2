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
from ._record import Algorithm

__all__ = ["ALGORITHM", "conv_general"]


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
                slice(p * s, p * s + d * (k - 1) + 1, d)
                for p, s, d, k in zip(pos, stride, dilation, kernel, strict=True)
            )]  # (N, Cg, *K)
            y[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(window, w_group, axes=(axes, axes))
    return y


# --------------------------------------------------------------------------- pooling, unfold and fold
#
# The oracles of convlab.ops.pool and convlab.ops.unfold: one scalar loop per
# output element, in the order PyTorch's CPU kernels visit them
# (aten/src/ATen/native/cpu/MaxPoolKernel.cpp, AvgPoolKernel.cpp, Im2Col.h).

__all__ += ["avg_pool_general", "fold_general", "max_pool_general", "unfold_general"]


def _tap(out_index, tap, stride, dilation, padding) -> tuple[int, ...]:
    """Input coordinate read by kernel tap ``tap`` of output ``out_index`` (negative: left padding)."""
    return tuple(
        o * s + k * d - lo for o, k, s, d, (lo, _) in zip(out_index, tap, stride, dilation, padding, strict=True)
    )


def _inside(position, spatial) -> bool:
    return all(0 <= p < n for p, n in zip(position, spatial, strict=True))


def max_pool_general(
    x: np.ndarray,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    output_size: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of ``x`` ``(N, C, *S)`` and the flat index of each maximum in its ``(n, c)`` plane.

    For every output position, the taps that land inside the input are visited in
    row-major order, and the running maximum is replaced when
    ``value > best or isnan(value)`` (PyTorch's rule): ties keep the first
    maximum, a NaN wins and the last NaN of the window is reported. Padding is
    never visited, so it never wins.
    """
    n_batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    values = np.zeros((n_batch, channels) + tuple(output_size), dtype=x.dtype)
    indices = np.zeros((n_batch, channels) + tuple(output_size), dtype=np.int64)
    for n, c in np.ndindex(n_batch, channels):
        plane = x[n, c]
        for out in np.ndindex(*output_size):
            best_value, best_index = None, None
            for tap in np.ndindex(*kernel_size):
                position = _tap(out, tap, stride, dilation, padding)
                if not _inside(position, spatial):
                    continue
                value = plane[position]
                if best_index is None or value > best_value or value != value:  # value != value: NaN
                    best_value, best_index = value, int(np.ravel_multi_index(position, spatial))
            values[(n, c) + out] = best_value
            indices[(n, c) + out] = best_index
    return values, indices


def avg_pool_general(
    x: np.ndarray,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    output_size: Sequence[int],
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Average pooling of ``x`` ``(N, C, *S)`` with PyTorch's divisor.

    The window of output ``o`` is ``[o*s - lo, o*s - lo + k)`` clipped on the
    right at ``S + hi`` (a ceil-mode window may hang over the right padding).
    The divisor is ``divisor_override`` if given, else the clipped window's size
    when ``count_include_pad``, else the number of input elements in it.
    Integers are summed exactly and divided with truncation toward zero (C's
    integer division, as PyTorch does for int64).
    """
    n_batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    integer = x.dtype.kind in "iu"
    y = np.zeros((n_batch, channels) + tuple(output_size), dtype=x.dtype)
    for out in np.ndindex(*output_size):
        start = [o * s - lo for o, s, (lo, _) in zip(out, stride, padding, strict=True)]
        end = [min(b + k, n + hi) for b, k, n, (_, hi) in zip(start, kernel_size, spatial, padding, strict=True)]
        pool_size = int(np.prod([e - b for b, e in zip(start, end, strict=True)]))
        first = [max(b, 0) for b in start]
        last = [min(e, n) for e, n in zip(end, spatial, strict=True)]
        inside = int(np.prod([e - b for b, e in zip(first, last, strict=True)]))
        if divisor_override is not None:
            divisor = divisor_override
        else:
            divisor = pool_size if count_include_pad else inside
        for n, c in np.ndindex(n_batch, channels):
            total = 0
            for position in np.ndindex(*(e - b for b, e in zip(first, last, strict=True))):
                total += x[(n, c) + tuple(p + b for p, b in zip(position, first, strict=True))].item()
            if integer:
                quotient = abs(total) // abs(divisor)
                y[(n, c) + out] = quotient if (total >= 0) == (divisor > 0) else -quotient
            else:
                y[(n, c) + out] = total / divisor
    return y


def unfold_general(
    x: np.ndarray,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    output_size: Sequence[int],
) -> np.ndarray:
    """im2col: ``cols[n, c*K + k, l] = x_padded[n, c, *(o*stride + k*dilation)]``.

    ``k`` is the row-major index of the kernel tap, ``l`` that of the output
    position ``o``, ``K`` the number of taps (PyTorch's ``unfold`` layout in 2-D).
    """
    n_batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    taps = int(np.prod(kernel_size))
    cols = np.zeros((n_batch, channels * taps, int(np.prod(output_size))), dtype=x.dtype)
    for n, c in np.ndindex(n_batch, channels):
        for k, tap in enumerate(np.ndindex(*kernel_size)):
            for l, out in enumerate(np.ndindex(*output_size)):
                position = _tap(out, tap, stride, dilation, padding)
                if _inside(position, spatial):
                    cols[n, c * taps + k, l] = x[(n, c) + position]
    return cols


def fold_general(
    cols: np.ndarray,
    spatial: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    output_size: Sequence[int],
) -> np.ndarray:
    """col2im, the adjoint of :func:`unfold_general`: every column entry is added back where it was read.

    ``cols`` is ``(N, C*K, L)``; the result is ``(N, C, *spatial)``; entries
    that were read from the padding are dropped.
    """
    n_batch = cols.shape[0]
    taps = int(np.prod(kernel_size))
    channels = cols.shape[1] // taps
    x = np.zeros((n_batch, channels) + tuple(spatial), dtype=cols.dtype)
    for n, c in np.ndindex(n_batch, channels):
        for k, tap in enumerate(np.ndindex(*kernel_size)):
            for l, out in enumerate(np.ndindex(*output_size)):
                position = _tap(out, tap, stride, dilation, padding)
                if _inside(position, spatial):
                    x[(n, c) + position] += cols[n, c * taps + k, l]
    return x


ALGORITHM = Algorithm(
    name="reference",
    summary="loops written to be read; the oracle of the tests",
    primitive=conv_general,
)
