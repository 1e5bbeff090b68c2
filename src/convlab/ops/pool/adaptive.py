"""Adaptive and global pooling, N-d, forward and backward: the output size is given, the windows follow.

Output ``i`` of ``O`` along an input of size ``I`` pools the window
``[floor(i*I/O), ceil((i+1)*I/O))`` (:func:`convlab.shapes.adaptive_pool_window`);
neighbouring windows may overlap. The maximum follows PyTorch's CPU scan
``if (val > maxval || isnan(val))`` (aten/src/ATen/native/cpu/AdaptiveMaxPoolKernel.cpp):
ties keep the first maximum in row-major window order and a NaN wins, indexed
at the last NaN of the window, as in :func:`convlab.ops.pool.max_pool`. Global
pooling is adaptive pooling to size 1 in every spatial dimension.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ...shapes import adaptive_pool_window
from ...spec import as_int, as_ndim, entries
from .._checks import as_array, check_budget, compute_dtype, split_batch
from ..unfold import check_grad_output
from ._common import (
    Clipped,
    along,
    average,
    check_bool,
    check_inexact_for_average,
    check_real,
    check_spatial,
    gathered_taps,
    scan_max,
    scatter_to_argmax,
    unbatch,
)

__all__ = [
    "adaptive_avg_pool",
    "adaptive_avg_pool_vjp",
    "adaptive_max_pool",
    "adaptive_max_pool_vjp",
    "global_avg_pool",
    "global_avg_pool_vjp",
    "global_max_pool",
    "global_max_pool_vjp",
]


# --------------------------------------------------------------------------- adaptive pooling


class _Adaptive(NamedTuple):
    x: np.ndarray  # batched (N, C, *S)
    unbatched: bool
    out_size: tuple[int, ...]
    windows: tuple[tuple[np.ndarray, np.ndarray], ...]  # per dimension, the starts and ends of the windows, (O,)
    clipped: tuple[Clipped, ...] | None  # the windows tap by tap, where that takes fewer steps than the outputs


def _adaptive_output_size(fn: str, output_size: object, spatial: tuple[int, ...]) -> tuple[int, ...]:
    nd = len(spatial)
    items = _output_size_entries(fn, output_size)
    if items is not None:
        if len(items) != nd:
            raise ValueError(
                f"{fn}: `output_size` has {len(items)} entries {items!r}, but the input has "
                f"{nd} spatial dimension{'s' if nd != 1 else ''}"
            )
    else:
        items = (output_size,) * nd
    sizes = []
    for i, (value, n) in enumerate(zip(items, spatial, strict=True)):
        if value is None:  # PyTorch: None keeps the input size
            sizes.append(n)
            continue
        where = "output_size" if nd == 1 else f"output_size[{i}]"
        size = as_int(fn, where, value)  # type and range (+/-2**62)
        if size < 1:
            raise ValueError(f"{fn}: `{where}` (={size}) must be >= 1 (or None to keep the input size)")
        sizes.append(size)
    return tuple(sizes)


def _output_size_entries(fn: str, output_size: object) -> tuple | None:
    """The per-dimension entries of ``output_size`` (a list, a tuple, a 1-D integer array), None for one value."""
    return entries(fn, "output_size", output_size,
                   forms="an int, None, or one int or None per spatial dimension (a list, a tuple or a 1-D integer "
                         "NumPy array)")


def _prepare_adaptive(fn: str, kind: str, input, output_size, ndim) -> _Adaptive:
    x = as_array(fn, "input", input)
    if kind == "max":
        check_real(fn, x)
    items = _output_size_entries(fn, output_size)
    if ndim is not None:
        nd = as_ndim(fn, ndim)
    elif items is not None:
        nd = len(items)
        if nd < 1:
            raise ValueError(f"{fn}: `output_size` must have one entry per spatial dimension, got ()")
    else:
        raise ValueError(f"{fn}: `ndim` is needed when `output_size` (={output_size!r}) is a single value")
    xb, unbatched = split_batch(fn, "input", x, nd)
    check_spatial(fn, xb)
    spatial = tuple(int(s) for s in xb.shape[2:])
    out_size = _adaptive_output_size(fn, output_size, spatial)
    itemsize = compute_dtype(x.dtype).itemsize
    check_budget(fn, "output", xb.shape[:2] + out_size, itemsize)
    if kind == "max":
        check_budget(fn, "indices", xb.shape[:2] + out_size, 8)
    # Every window at once (the rule accepts an array of indices); int64 holds (i + 1)*I for any input and
    # output that fit in memory, Python ints beyond.
    windows = tuple(
        tuple(np.asarray(v, dtype=np.int64) for v in adaptive_pool_window(
            n, o, np.arange(o, dtype=np.int64 if (o + 1) * n < 2**62 else object)))
        for n, o in zip(spatial, out_size, strict=True)
    )
    return _Adaptive(xb, unbatched, out_size, windows, _by_tap(windows))


def _by_tap(windows: tuple[tuple[np.ndarray, np.ndarray], ...]) -> tuple[Clipped, ...] | None:
    """The windows as :class:`~._common.Clipped` taps, where there are fewer taps than outputs, else None.

    The work is vectorized over one of two axes: one step per output position
    (each over its window), or one step per tap of the widest window (each over
    all outputs). The windows are about ``I/O`` long, so the steps are the
    fewer of ``prod(O)`` and about ``prod(I/O + 1)``: an output larger than the
    input (``output_size=10**6`` on a few elements) takes a few steps, not a
    million.
    """
    starts = [start for start, _ in windows]
    lengths = [end - start for start, end in windows]
    widest = [int(length.max()) for length in lengths]
    if math.prod(widest) >= math.prod(len(start) for start in starts):
        return None
    clipped = []
    for start, length, t in zip(starts, lengths, widest, strict=True):
        steps = np.arange(t, dtype=np.int64)
        valid = steps[None, :] < length[:, None]  # (O, T)
        clipped.append(Clipped(np.where(valid, start[:, None] + steps[None, :], 0), valid))
    return tuple(clipped)


def _counts(a: _Adaptive) -> np.ndarray:
    """The size of every window, ``(*O)``: the product of its lengths along each dimension."""
    nd = len(a.out_size)
    return functools.reduce(np.multiply, (along(end - start, i, nd) for i, (start, end) in enumerate(a.windows)))


def _window(a: _Adaptive, out_index: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(int(a.windows[dim][0][i]), int(a.windows[dim][1][i])) for dim, i in enumerate(out_index))


def _first_max_last_nan(flat: np.ndarray) -> np.ndarray:
    """Window position of PyTorch's maximum along the last axis: the first maximum, or the last NaN.

    ``np.argmax`` already returns the first maximum (and a NaN counts as the
    maximum, but the first one); PyTorch's ``isnan(val)`` update keeps the last.
    """
    position = np.argmax(flat, axis=-1)
    if flat.dtype.kind == "f":
        nan = np.isnan(flat)
        has_nan = nan.any(axis=-1)
        if has_nan.any():
            last_nan = flat.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
            position = np.where(has_nan, last_nan, position)
    return position


def _adaptive_max(a: _Adaptive) -> tuple[np.ndarray, np.ndarray]:
    """Values and plane indices of the adaptive maxima; one vectorized step per output position or per tap."""
    x = a.x
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    if a.clipped is not None:  # fewer taps than outputs: PyTorch's scan, one step per tap
        values = np.zeros((n, c) + a.out_size, dtype=x.dtype)
        index = np.full((n, c) + a.out_size, -1, dtype=np.int64)
        for where, inside, flat in gathered_taps(a.clipped, spatial):
            scan_max(values, index, x[(slice(None), slice(None)) + where], inside, flat)  # (N, C, *O)
        return values, index
    values = np.zeros((n, c) + a.out_size, dtype=x.dtype)
    index = np.zeros((n, c) + a.out_size, dtype=np.int64)
    for out in np.ndindex(*a.out_size):
        region = _window(a, out)
        block = x[(slice(None), slice(None)) + region]
        flat = block.reshape(n, c, math.prod(block.shape[2:]))  # (N, C, window size)
        position = _first_max_last_nan(flat)  # (N, C)
        values[(Ellipsis,) + out] = np.take_along_axis(flat, position[..., None], axis=-1)[..., 0]
        local = np.unravel_index(position, block.shape[2:])
        index[(Ellipsis,) + out] = np.ravel_multi_index(
            tuple(coordinate + r.start for coordinate, r in zip(local, region, strict=True)), spatial
        )
    return values, index


def _adaptive_region(a: _Adaptive, out: tuple[int, ...]) -> tuple[tuple[slice, ...], int]:
    region = _window(a, out)
    return region, math.prod(r.stop - r.start for r in region)


def adaptive_max_pool(
    input: np.ndarray,
    output_size: int | Sequence[int | None] | None,
    return_indices: bool = False,
    *,
    ndim: int | None = None,
    _fn: str = "adaptive_max_pool",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """N-d adaptive max pooling: the output size is given, the windows follow.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; real dtypes.
    output_size : int, None or tuple of (int or None)
        Entries that are None keep the input size of that dimension (PyTorch).
    return_indices : bool
        Also return the flat plane index of each maximum (int64).
    ndim : int, optional
        Needed when ``output_size`` is a single value.

    Shape
    -----
    Output ``(N, C, *output_size)``; output ``i`` of ``O`` pools input
    ``[floor(i*I/O), ceil((i+1)*I/O))``. NaN and ties as in :func:`~convlab.ops.pool.max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool(np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), (2,), return_indices=True)
    (array([[[4., 3.]]]), array([[[1, 3]]]))
    """
    fn = _fn
    check_bool(fn, "return_indices", return_indices)
    a = _prepare_adaptive(fn, "max", input, output_size, ndim)
    values, index = _adaptive_max(a)
    if return_indices:
        return unbatch(values, a.unbatched), unbatch(index, a.unbatched)
    return unbatch(values, a.unbatched)


def adaptive_max_pool_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: int | Sequence[int | None] | None,
    return_indices: bool = False,
    *,
    ndim: int | None = None,
    _fn: str = "adaptive_max_pool_vjp",
) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool`: ``grad_output`` scatter-added into the argmax positions.

    Same derivation as :func:`~convlab.ops.pool.max_pool_vjp` (``y[o] = x[argmax(o)]``).

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool_vjp(np.ones((1, 1, 2)), np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), (2,))
    array([[[0., 1., 0., 1., 0.]]])
    """
    fn = _fn
    check_bool(fn, "return_indices", return_indices)
    a = _prepare_adaptive(fn, "max", input, output_size, ndim)
    g = check_grad_output(fn, grad_output, a.x.shape[:2] + a.out_size, a.unbatched, a.x.dtype)
    _, index = _adaptive_max(a)
    return unbatch(scatter_to_argmax(g, index, a.x.shape, a.x.dtype), a.unbatched)


def adaptive_avg_pool(
    input: np.ndarray,
    output_size: int | Sequence[int | None] | None,
    *,
    ndim: int | None = None,
    _fn: str = "adaptive_avg_pool",
) -> np.ndarray:
    """N-d adaptive average pooling: the mean of each window ``[floor(i*I/O), ceil((i+1)*I/O))``.

    Parameters and shape as in :func:`adaptive_max_pool`. float16 is summed in
    float32; integers are summed in int64 and divided with truncation toward zero.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool(np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), 2, ndim=1)   # windows [0, 3) and [2, 5)
    array([[[2.33333333, 1.66666667]]])
    """
    fn = _fn
    a = _prepare_adaptive(fn, "avg", input, output_size, ndim)
    x = a.x.astype(compute_dtype(a.x.dtype), copy=False)
    nd = len(a.out_size)
    if a.clipped is not None:  # fewer taps than outputs: one step per tap
        total = np.zeros(x.shape[:2] + a.out_size, dtype=x.dtype)  # (N, C, *O)
        for where, inside, _ in gathered_taps(a.clipped, x.shape[2:]):
            total += np.where(inside, x[(slice(None), slice(None)) + where], 0)
        return unbatch(average(total, _counts(a)).astype(a.x.dtype, copy=False), a.unbatched)
    y = np.zeros(x.shape[:2] + a.out_size, dtype=x.dtype)
    for out in np.ndindex(*a.out_size):
        region, count = _adaptive_region(a, out)
        total = x[(slice(None), slice(None)) + region].sum(axis=tuple(range(2, 2 + nd)))  # (N, C)
        y[(Ellipsis,) + out] = average(total, count)
    return unbatch(y.astype(a.x.dtype, copy=False), a.unbatched)


def adaptive_avg_pool_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: int | Sequence[int | None] | None,
    *,
    ndim: int | None = None,
    _fn: str = "adaptive_avg_pool_vjp",
) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool`.

    ``y[o] = mean of x over window(o)``, so each input receives ``g[o] / |window(o)|``
    from every window that contains it (neighbouring windows may overlap).

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 5)), (2,))
    array([[[0.33333333, 0.33333333, 0.66666667, 0.33333333, 0.33333333]]])
    """
    fn = _fn
    a = _prepare_adaptive(fn, "avg", input, output_size, ndim)
    check_inexact_for_average(fn, a.x.dtype)
    g = check_grad_output(fn, grad_output, a.x.shape[:2] + a.out_size, a.unbatched, a.x.dtype)
    ct = compute_dtype(a.x.dtype)
    nd = len(a.out_size)
    grad = np.zeros(a.x.shape, dtype=ct)
    if a.clipped is not None:  # fewer taps than outputs: one scatter per tap (windows overlap: repeats add up)
        share = g.astype(ct, copy=False) / _counts(a).astype(ct)  # (N, C, *O)
        for where, inside, _ in gathered_taps(a.clipped, a.x.shape[2:]):
            np.add.at(grad, (slice(None), slice(None)) + where, np.where(inside, share, 0))
        return unbatch(grad.astype(a.x.dtype, copy=False), a.unbatched)
    for out in np.ndindex(*a.out_size):
        region, count = _adaptive_region(a, out)
        share = g[(Ellipsis,) + out].astype(ct, copy=False) / np.asarray(count).astype(ct)  # (N, C)
        grad[(slice(None), slice(None)) + region] += share.reshape(share.shape + (1,) * nd)  # (N, C, 1, ..., 1)
    return unbatch(grad.astype(a.x.dtype, copy=False), a.unbatched)


# --------------------------------------------------------------------------- global pooling


def _global_ndim(fn: str, input: object, ndim: int | None) -> int:
    if ndim is not None:
        return as_ndim(fn, ndim)
    shape = np.shape(input)
    if len(shape) < 3:
        raise ValueError(
            f"{fn}: `input` must have at least 3 dimensions (N, C, *spatial), got shape {shape}; "
            f"pass ndim= for an unbatched (C, *spatial) input"
        )
    return len(shape) - 2


def global_max_pool(input: np.ndarray, *, ndim: int | None = None) -> np.ndarray:
    """The maximum over all spatial positions: ``(N, C, *S) -> (N, C, 1, ..., 1)``.

    The same as :func:`adaptive_max_pool` with output size 1 (PyTorch's
    ``AdaptiveMaxPool2d(1)``), including its NaN rule. Without ``ndim`` the
    input is batched and every axis after the first two is spatial; with it,
    unbatched ``(C, *S)`` is accepted too.

    Examples
    --------
    >>> import numpy as np
    >>> global_max_pool(np.arange(8.0).reshape(1, 2, 2, 2))[:, :, 0, 0]
    array([[3., 7.]])
    """
    fn = "global_max_pool"
    nd = _global_ndim(fn, input, ndim)
    return adaptive_max_pool(input, (1,) * nd, ndim=nd, _fn=fn)


def global_max_pool_vjp(grad_output: np.ndarray, input: np.ndarray, *, ndim: int | None = None) -> np.ndarray:
    """Gradient of :func:`global_max_pool`: all of ``grad_output`` goes to the (PyTorch) argmax.

    Examples
    --------
    >>> import numpy as np
    >>> global_max_pool_vjp(np.ones((1, 1, 1)), np.array([[[2.0, 5.0, 5.0]]]))   # ties: the first max
    array([[[0., 1., 0.]]])
    """
    fn = "global_max_pool_vjp"
    nd = _global_ndim(fn, input, ndim)
    return adaptive_max_pool_vjp(grad_output, input, (1,) * nd, ndim=nd, _fn=fn)


def global_avg_pool(input: np.ndarray, *, ndim: int | None = None) -> np.ndarray:
    """The mean over all spatial positions: ``(N, C, *S) -> (N, C, 1, ..., 1)``.

    The same as :func:`adaptive_avg_pool` with output size 1 (global average
    pooling, Lin et al., "Network in Network", arXiv:1312.4400).

    Examples
    --------
    >>> import numpy as np
    >>> global_avg_pool(np.arange(8.0).reshape(2, 2, 2), ndim=2)   # unbatched
    array([[[1.5]],
    <BLANKLINE>
           [[5.5]]])
    """
    fn = "global_avg_pool"
    nd = _global_ndim(fn, input, ndim)
    return adaptive_avg_pool(input, (1,) * nd, ndim=nd, _fn=fn)


def global_avg_pool_vjp(grad_output: np.ndarray, input: np.ndarray, *, ndim: int | None = None) -> np.ndarray:
    """Gradient of :func:`global_avg_pool`: ``grad_output / prod(S)`` at every position.

    Examples
    --------
    >>> import numpy as np
    >>> global_avg_pool_vjp(np.ones((1, 1, 1)), np.zeros((1, 1, 4)))
    array([[[0.25, 0.25, 0.25, 0.25]]])
    """
    fn = "global_avg_pool_vjp"
    nd = _global_ndim(fn, input, ndim)
    return adaptive_avg_pool_vjp(grad_output, input, (1,) * nd, ndim=nd, _fn=fn)
