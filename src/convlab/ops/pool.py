"""Pooling, N-d, forward and backward: max, average, adaptive, global, and max-unpooling.

Every pooling slides a window like a convolution without weights (see
:func:`convlab.shapes.pool_output_length` for the size rule) and reduces it:

* max pooling keeps the largest input of each window. Padding is never a
  candidate (PyTorch pads with ``-inf``), ties keep the first maximum in
  row-major window order, and a NaN in the window wins: the output is NaN and
  its index is the *last* NaN of the window. That is PyTorch's CPU scan,
  ``if (val > maxval || isnan(val))`` (aten/src/ATen/native/cpu/MaxPoolKernel.cpp,
  AdaptiveMaxPoolKernel.cpp). Indices are flat positions in each ``(n, c)``
  plane of the unpadded input, as PyTorch returns them.
* average pooling divides each window's sum by PyTorch's divisor
  (aten/src/ATen/native/cpu/AvgPoolKernel.cpp): the window ``[o*s - lo, o*s - lo + k)``
  is first clipped at the end of the right padding ``S + hi`` (a ceil-mode window
  may hang over it); ``count_include_pad=True`` divides by the size of that
  clipped window, ``False`` by the number of input elements in it, and
  ``divisor_override`` replaces both. For one dimension, ``S = 6, k = 3, s = 2,
  pad = 1, ceil_mode=True``::

      padded   _ x x x x x x _       windows [-1, 2) [1, 4) [3, 6) [5, 8)->[5, 7)
      divisor  include_pad: 3 3 3 2        exclude_pad: 2 3 3 1

  Integer inputs are summed exactly in int64 and divided with truncation
  toward zero (C integer division, as PyTorch does for int64).
* adaptive pooling picks, for output ``i`` of ``O`` along an input of ``I``,
  the window ``[floor(i*I/O), ceil((i+1)*I/O))``
  (:func:`convlab.shapes.adaptive_pool_window`).

The backward passes are what the forward passes say, read the other way round
(derivations next to each vjp): the gradient of a max goes to the argmax, the
gradient of an average is spread evenly over its window, max-unpooling's
gradient is gathered back from the positions it wrote.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..shapes import Explained, adaptive_pool_window, conv_transpose_output_length, pool_output_shape
from ..spec import PoolSpec, as_int
from ._checks import as_array, check_budget, compute_dtype, split_batch
from .algorithms._common import sliding_windows
from .padding import pad_pairs, pad_pairs_vjp
from .unfold import check_grad_output, scatter_windows

__all__ = [
    "adaptive_avg_pool",
    "adaptive_avg_pool_vjp",
    "adaptive_max_pool",
    "adaptive_max_pool_vjp",
    "avg_pool",
    "avg_pool_vjp",
    "global_avg_pool",
    "global_avg_pool_vjp",
    "global_max_pool",
    "global_max_pool_vjp",
    "max_pool",
    "max_pool_vjp",
    "max_unpool",
    "max_unpool_vjp",
]

Pairs = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- checks


def _check_spatial(fn: str, xb: np.ndarray) -> None:
    if any(s == 0 for s in xb.shape[2:]):
        raise ValueError(
            f"{fn}: `input` has an empty spatial dimension, shape {xb.shape[2:]} after (N, C); "
            f"every spatial size must be >= 1"
        )


def _check_real(fn: str, x: np.ndarray) -> None:
    if x.dtype.kind == "c":
        raise TypeError(f"{fn}: `input` has dtype {x.dtype}; a maximum needs real (ordered) values")


def _check_bool(fn: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: `{name}` must be a bool, got {value!r}")


def _check_inexact_for_average(fn: str, dtype: np.dtype) -> None:
    if dtype.kind in "iu":
        raise TypeError(
            f"{fn}: the gradient of an average is fractional; `input` has dtype {dtype}, use a floating dtype"
        )


def _plane_strides(spatial: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of one ``(n, c)`` plane: flat index = sum(coordinate * stride)."""
    return tuple(math.prod(spatial[i + 1:]) for i in range(len(spatial)))


def _along(values: np.ndarray, dim: int, nd: int) -> np.ndarray:
    """A 1-D array for spatial dimension ``dim``, shaped to broadcast over ``nd`` output dimensions."""
    return values.reshape(tuple(-1 if i == dim else 1 for i in range(nd)))


class _Pool(NamedTuple):
    x: np.ndarray  # batched (N, C, *S), the input's dtype
    unbatched: bool
    spec: PoolSpec
    out_size: tuple[int, ...]
    reach: Pairs  # padding (lo, hi') after which the padded input ends where the last window ends


def _check_windows_see_input(fn: str, spatial: Sequence[int], spec: PoolSpec, out_size: Sequence[int]) -> None:
    """Refuse a dilated max-pooling window that covers only padding.

    ``pad <= k // 2`` (PyTorch's limit) is not enough with dilation: ``k=2, d=3, pad=1``
    on an input of size 2 reads positions -1 and 2, both padding. PyTorch then returns
    ``-inf`` and an index outside the input; we refuse instead.
    """
    for dim, (n, k, s, d, (lo, _), o) in enumerate(
        zip(spatial, spec.kernel_size, spec.stride, spec.dilation, spec.padding, out_size, strict=True)
    ):
        positions = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - lo  # (O, K)
        sees_input = ((positions >= 0) & (positions < n)).any(axis=1)
        if not sees_input.all():
            bad = int(np.argmin(sees_input))
            raise ValueError(
                f"{fn}: the pooling window of output {bad} in spatial dimension {dim} covers only padding "
                f"(input positions {positions[bad].tolist()}, input size {n}, kernel_size={k}, dilation={d}, "
                f"padding={spec.padding[dim]}); use less padding or a smaller dilation"
            )


def _prepare_pool(fn: str, kind: str, input, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                  divisor_override, ndim) -> _Pool:
    x = as_array(fn, "input", input)
    if kind == "max":
        _check_real(fn, x)
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
                    ndim=ndim, name=fn)
    xb, unbatched = split_batch(fn, "input", x, spec.ndim)
    _check_spatial(fn, xb)
    spatial = tuple(int(s) for s in xb.shape[2:])
    out_size = tuple(int(o) for o in pool_output_shape(spec, spatial))
    if kind == "max":
        _check_windows_see_input(fn, spatial, spec, out_size)
    # The padded input must end exactly where the last window ends: further right than
    # S + hi for a ceil-mode window hanging over the padding, earlier (a crop) where the
    # floor rule leaves trailing elements that no window reads.
    reach = tuple(
        (lo, (o - 1) * s + d * (k - 1) + 1 - n - lo)
        for n, o, s, d, k, (lo, _) in zip(spatial, out_size, spec.stride, spec.dilation, spec.kernel_size,
                                           spec.padding, strict=True)
    )
    n, c = xb.shape[:2]
    itemsize = compute_dtype(x.dtype).itemsize
    check_budget(fn, "output", (n, c) + out_size, itemsize)
    if kind == "max":
        check_budget(fn, "indices", (n, c) + out_size, 8)
    check_budget(fn, "padded input", (n, c) + tuple(s + lo + hi for s, (lo, hi) in zip(spatial, reach)), itemsize)
    return _Pool(xb, unbatched, spec, out_size, reach)


def _unbatch(y: np.ndarray, unbatched: bool) -> np.ndarray:
    return y[0] if unbatched else y


# --------------------------------------------------------------------------- shared kernels


def _max_scan(p: _Pool) -> tuple[np.ndarray, np.ndarray]:
    """Values and plane indices of every window maximum, by PyTorch's scan over the kernel taps.

    For each tap (row-major) and all output positions at once, the running
    maximum is replaced where the tap lies inside the input and either no tap
    has been taken yet or ``value > best or isnan(value)``.
    """
    spec, out_size, x = p.spec, p.out_size, p.x
    nd = spec.ndim
    spatial = x.shape[2:]
    strides = _plane_strides(spatial)
    xp = pad_pairs(x, p.reach, "constant")  # (N, C, *S_reach); padded values are masked out below
    windows = sliding_windows(xp, spec.kernel_size, spec.stride, spec.dilation, out_size)  # (N, C, *O, *K)
    best = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
    index = np.full(x.shape[:2] + out_size, -1, dtype=np.int64)
    floating = x.dtype.kind == "f"
    for tap in np.ndindex(*spec.kernel_size):
        inside = np.ones((1,) * nd, dtype=bool)
        flat = np.zeros((1,) * nd, dtype=np.int64)
        for dim, (n, o, s, d, k, (lo, _), st) in enumerate(
            zip(spatial, out_size, spec.stride, spec.dilation, tap, spec.padding, strides, strict=True)
        ):
            coordinate = _along(np.arange(o) * s + k * d - lo, dim, nd)  # input coordinate of this tap
            inside = inside & (coordinate >= 0) & (coordinate < n)
            flat = flat + coordinate * st
        value = windows[(Ellipsis,) + tap]  # (N, C, *O)
        update = (index < 0) | (value > best)
        if floating:
            update |= np.isnan(value)
        update &= inside
        np.copyto(best, value, where=update)
        np.copyto(index, np.broadcast_to(flat, index.shape), where=update)
    return best, index


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


def _scatter_to_argmax(grad_output: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...],
                       dtype: np.dtype) -> np.ndarray:
    """``grad[n, c, index[n, c, o]] += grad_output[n, c, o]``, in output order (PyTorch's order)."""
    n, c = x_shape[:2]
    plane = math.prod(x_shape[2:])
    offsets = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (index.ndim - 2))  # (N, C, 1..)
    grad = np.zeros(n * c * plane, dtype=compute_dtype(dtype))
    np.add.at(grad, (offsets + index).ravel(), grad_output.astype(grad.dtype, copy=False).ravel())
    return grad.reshape(x_shape).astype(dtype, copy=False)  # (N*C*prod(S),) -> (N, C, *S)


def _average(total: np.ndarray, divisor: np.ndarray | int) -> np.ndarray:
    """``total / divisor`` in ``total``'s dtype; integers divide with truncation toward zero (C, PyTorch)."""
    divisor = np.asarray(divisor)
    if total.dtype.kind in "iu":
        quotient = np.abs(total) // np.abs(divisor)
        return np.where((total < 0) != (divisor < 0), -quotient, quotient)
    return total / divisor.astype(total.dtype)


def _avg_divisor(spatial: Sequence[int], spec: PoolSpec, out_size: Sequence[int]) -> np.ndarray | int:
    """PyTorch's divisor of every output position (see the module docstring); separable across dimensions."""
    if spec.divisor_override is not None:
        return spec.divisor_override
    nd = spec.ndim
    counts = []
    for dim, (n, k, s, (lo, hi), o) in enumerate(
        zip(spatial, spec.kernel_size, spec.stride, spec.padding, out_size, strict=True)
    ):
        start = np.arange(o, dtype=np.int64) * s - lo
        end = np.minimum(start + k, n + hi)  # clipped at the end of the right padding
        count = end - start if spec.count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        counts.append(_along(count, dim, nd))
    return functools.reduce(np.multiply, counts)  # (*O)


# --------------------------------------------------------------------------- max pooling


def max_pool(
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    ndim: int | None = None,
    _fn: str = "max_pool",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """N-d max pooling, any number of spatial dimensions.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; any real dtype
        (integers are exact).
    kernel_size : int or tuple
        Window size; ``ndim`` is needed when it is a single int.
    stride : int or tuple, optional
        Defaults to ``kernel_size``.
    padding : int, tuple or (lo, hi) pairs
        Implicit ``-inf`` padding, at most ``kernel_size // 2`` per side; it
        never wins. A dilated window that sees only padding is refused.
    dilation : int or tuple
        Spacing between window taps.
    ceil_mode : bool
        Round the output size up, keeping a last partial window that starts
        inside the input or the left padding.
    return_indices : bool
        Also return the flat index of each maximum in its ``(n, c)`` plane of
        the unpadded input (int64), the input of :func:`max_unpool`.

    Returns
    -------
    ndarray or (ndarray, ndarray)
        The maxima in the input's dtype, and their indices if asked.

    Shape
    -----
    ``O = floor_or_ceil((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1`` per spatial dimension.

    NaN propagates: a window with a NaN outputs NaN, indexed at its last NaN;
    ties report the first maximum (PyTorch's CPU rule).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> max_pool(x, 2, ndim=1)
    array([[[3., 5.]]])
    >>> max_pool(x, (3,), stride=2, padding=1, return_indices=True)
    (array([[[3., 5., 5.]]]), array([[[1, 3, 3]]]))
    """
    fn = _fn
    _check_bool(fn, "return_indices", return_indices)
    p = _prepare_pool(fn, "max", input, kernel_size, stride, padding, dilation, ceil_mode, True, None, ndim)
    values, index = _max_scan(p)
    if return_indices:
        return _unbatch(values, p.unbatched), _unbatch(index, p.unbatched)
    return _unbatch(values, p.unbatched)


def max_pool_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    ndim: int | None = None,
    _fn: str = "max_pool_vjp",
) -> np.ndarray:
    """Gradient of :func:`max_pool` with respect to its input.

    ``y[o] = x[argmax(o)]``, so ``dL/dx[i] = sum over {o : argmax(o) = i} of g[o]``:
    a scatter-add of ``grad_output`` into the argmax positions (overlapping
    windows that share a maximum add up). ``return_indices`` is accepted so
    that the forward arguments can be passed unchanged; it does not matter.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> max_pool_vjp(np.ones((1, 1, 4)), x, (2,), stride=1)   # 3 and 5 are each the max of two windows
    array([[[0., 2., 0., 2., 0.]]])
    """
    fn = _fn
    _check_bool(fn, "return_indices", return_indices)
    p = _prepare_pool(fn, "max", input, kernel_size, stride, padding, dilation, ceil_mode, True, None, ndim)
    g = check_grad_output(fn, grad_output, p.x.shape[:2] + p.out_size, p.unbatched, p.x.dtype)
    _, index = _max_scan(p)
    return _unbatch(_scatter_to_argmax(g, index, p.x.shape, p.x.dtype), p.unbatched)


# --------------------------------------------------------------------------- average pooling


def avg_pool(
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    ndim: int | None = None,
    _fn: str = "avg_pool",
) -> np.ndarray:
    """N-d average pooling, any number of spatial dimensions.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
    kernel_size, stride, padding, ceil_mode
        As in :func:`max_pool` (zero padding; no dilation, as in PyTorch).
    count_include_pad : bool
        Count the padding in the divisor (PyTorch's default) or only the input
        elements.
    divisor_override : int, optional
        Divide every window sum by this instead.

    Returns
    -------
    ndarray
        In the input's dtype. float16 is summed in float32; integers are
        summed in int64 and divided with truncation toward zero.

    Shape
    -----
    ``O = floor_or_ceil((I + p_lo + p_hi - k) / s) + 1`` per spatial dimension.
    The divisor rule, with ceil-mode windows hanging over the right padding, is
    in the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 1, 6))
    >>> avg_pool(x, (3,), stride=2, padding=1, ceil_mode=True)   # divisors 3, 3, 3, 2
    array([[[0.66666667, 1.        , 1.        , 0.5       ]]])
    >>> avg_pool(x, (3,), stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    array([[[1., 1., 1., 1.]]])
    """
    fn = _fn
    p = _prepare_pool(fn, "avg", input, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                      divisor_override, ndim)
    spec, nd = p.spec, p.spec.ndim
    xp = pad_pairs(p.x.astype(compute_dtype(p.x.dtype), copy=False), p.reach, "constant")  # (N, C, *S_reach)
    windows = sliding_windows(xp, spec.kernel_size, spec.stride, spec.dilation, p.out_size)  # (N, C, *O, *K)
    total = windows.sum(axis=tuple(range(2 + nd, 2 + 2 * nd)))  # (N, C, *O)
    y = _average(total, _avg_divisor(p.x.shape[2:], spec, p.out_size))
    return _unbatch(y.astype(p.x.dtype, copy=False), p.unbatched)


def avg_pool_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    ndim: int | None = None,
    _fn: str = "avg_pool_vjp",
) -> np.ndarray:
    """Gradient of :func:`avg_pool` with respect to its input.

    ``y[o] = (1/div[o]) * sum_k x_pad[o*s + k]``, so
    ``dL/dx_pad[i] = sum over {(o, k) : o*s + k = i} of g[o] / div[o]``: every
    window's gradient, divided by its divisor, spread back over the window (a
    transposed box filter, i.e. col2im of ``g / div`` repeated over the taps).
    Padding positions are constants and drop their share.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 4)), (2,))
    array([[[0.5, 0.5, 0.5, 0.5]]])
    """
    fn = _fn
    p = _prepare_pool(fn, "avg", input, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                      divisor_override, ndim)
    _check_inexact_for_average(fn, p.x.dtype)
    spec, nd = p.spec, p.spec.ndim
    n, c = p.x.shape[:2]
    g = check_grad_output(fn, grad_output, (n, c) + p.out_size, p.unbatched, p.x.dtype)
    scaled = _average(g.astype(compute_dtype(p.x.dtype), copy=False), _avg_divisor(p.x.shape[2:], spec, p.out_size))
    taps = np.broadcast_to(scaled.reshape((n, c) + (1,) * nd + p.out_size),
                           (n, c) + spec.kernel_size + p.out_size)  # (N, C, *K, *O), one copy per tap
    reached = tuple(s + lo + hi for s, (lo, hi) in zip(p.x.shape[2:], p.reach, strict=True))
    grad_reach = scatter_windows(taps, reached, spec.kernel_size, spec.stride, spec.dilation)  # (N, C, *S_reach)
    grad = pad_pairs_vjp(grad_reach, p.x.shape, p.reach, "constant")  # (N, C, *S)
    return _unbatch(grad.astype(p.x.dtype, copy=False), p.unbatched)


# --------------------------------------------------------------------------- adaptive and global pooling


class _Adaptive(NamedTuple):
    x: np.ndarray  # batched (N, C, *S)
    unbatched: bool
    out_size: tuple[int, ...]
    windows: tuple[tuple[tuple[int, int], ...], ...]  # per dimension, the [start, end) of each output index


def _adaptive_output_size(fn: str, output_size: object, spatial: tuple[int, ...]) -> tuple[int, ...]:
    nd = len(spatial)
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != nd:
            raise ValueError(
                f"{fn}: `output_size` has {len(output_size)} entries {tuple(output_size)!r}, but the input has "
                f"{nd} spatial dimension{'s' if nd != 1 else ''}"
            )
        entries = list(output_size)
    else:
        entries = [output_size] * nd
    sizes = []
    for i, (value, n) in enumerate(zip(entries, spatial, strict=True)):
        if value is None:  # PyTorch: None keeps the input size
            sizes.append(n)
            continue
        where = "output_size" if nd == 1 else f"output_size[{i}]"
        size = as_int(fn, where, value)
        if size < 1:
            raise ValueError(f"{fn}: `{where}` (={size}) must be >= 1 (or None to keep the input size)")
        sizes.append(size)
    return tuple(sizes)


def _prepare_adaptive(fn: str, kind: str, input, output_size, ndim) -> _Adaptive:
    x = as_array(fn, "input", input)
    if kind == "max":
        _check_real(fn, x)
    if ndim is not None:
        nd = as_int(fn, "ndim", ndim)
        if nd < 1:
            raise ValueError(f"{fn}: `ndim` (={nd}) must be >= 1")
    elif isinstance(output_size, (list, tuple)):
        nd = len(output_size)
        if nd < 1:
            raise ValueError(f"{fn}: `output_size` must have one entry per spatial dimension, got ()")
    else:
        raise ValueError(f"{fn}: `ndim` is needed when `output_size` (={output_size!r}) is a single value")
    xb, unbatched = split_batch(fn, "input", x, nd)
    _check_spatial(fn, xb)
    spatial = tuple(int(s) for s in xb.shape[2:])
    out_size = _adaptive_output_size(fn, output_size, spatial)
    itemsize = compute_dtype(x.dtype).itemsize
    check_budget(fn, "output", xb.shape[:2] + out_size, itemsize)
    if kind == "max":
        check_budget(fn, "indices", xb.shape[:2] + out_size, 8)
    windows = tuple(
        tuple(adaptive_pool_window(n, o, i) for i in range(o)) for n, o in zip(spatial, out_size, strict=True)
    )
    return _Adaptive(xb, unbatched, out_size, windows)


def _window(a: _Adaptive, out_index: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(*a.windows[dim][i]) for dim, i in enumerate(out_index))


def _adaptive_max(a: _Adaptive) -> tuple[np.ndarray, np.ndarray]:
    """Values and plane indices of the adaptive maxima; one vectorized step per output position."""
    x = a.x
    n, c = x.shape[:2]
    spatial = x.shape[2:]
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
    ``[floor(i*I/O), ceil((i+1)*I/O))``. NaN and ties as in :func:`max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool(np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), (2,), return_indices=True)
    (array([[[4., 3.]]]), array([[[1, 3]]]))
    """
    fn = _fn
    _check_bool(fn, "return_indices", return_indices)
    a = _prepare_adaptive(fn, "max", input, output_size, ndim)
    values, index = _adaptive_max(a)
    if return_indices:
        return _unbatch(values, a.unbatched), _unbatch(index, a.unbatched)
    return _unbatch(values, a.unbatched)


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

    Same derivation as :func:`max_pool_vjp` (``y[o] = x[argmax(o)]``).

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool_vjp(np.ones((1, 1, 2)), np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), (2,))
    array([[[0., 1., 0., 1., 0.]]])
    """
    fn = _fn
    _check_bool(fn, "return_indices", return_indices)
    a = _prepare_adaptive(fn, "max", input, output_size, ndim)
    g = check_grad_output(fn, grad_output, a.x.shape[:2] + a.out_size, a.unbatched, a.x.dtype)
    _, index = _adaptive_max(a)
    return _unbatch(_scatter_to_argmax(g, index, a.x.shape, a.x.dtype), a.unbatched)


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
    y = np.zeros(x.shape[:2] + a.out_size, dtype=x.dtype)
    for out in np.ndindex(*a.out_size):
        region, count = _adaptive_region(a, out)
        total = x[(slice(None), slice(None)) + region].sum(axis=tuple(range(2, 2 + nd)))  # (N, C)
        y[(Ellipsis,) + out] = _average(total, count)
    return _unbatch(y.astype(a.x.dtype, copy=False), a.unbatched)


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
    _check_inexact_for_average(fn, a.x.dtype)
    g = check_grad_output(fn, grad_output, a.x.shape[:2] + a.out_size, a.unbatched, a.x.dtype)
    ct = compute_dtype(a.x.dtype)
    nd = len(a.out_size)
    grad = np.zeros(a.x.shape, dtype=ct)
    for out in np.ndindex(*a.out_size):
        region, count = _adaptive_region(a, out)
        share = g[(Ellipsis,) + out].astype(ct, copy=False) / np.asarray(count).astype(ct)  # (N, C)
        grad[(slice(None), slice(None)) + region] += share.reshape(share.shape + (1,) * nd)  # (N, C, 1, ..., 1)
    return _unbatch(grad.astype(a.x.dtype, copy=False), a.unbatched)


def _global_ndim(fn: str, input: object, ndim: int | None) -> int:
    if ndim is not None:
        nd = as_int(fn, "ndim", ndim)
        if nd < 1:
            raise ValueError(f"{fn}: `ndim` (={nd}) must be >= 1")
        return nd
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


# --------------------------------------------------------------------------- max unpooling


class _Unpool(NamedTuple):
    x: np.ndarray  # batched (N, C, *I)
    unbatched: bool
    out_size: tuple[int, ...]
    targets: np.ndarray  # (M,) flat positions in the (N*C*prod(out_size)) output that are written
    sources: np.ndarray  # (M,) flat positions in the input that write them (the last writer of each)


def _unpool_output_size(fn: str, output_size: object, default: tuple[Explained, ...],
                        stride: tuple[int, ...]) -> tuple[int, ...]:
    """PyTorch's ``_unpool_output_size``: ``output_size`` (with or without N, C) within ``default +/- stride``."""
    nd = len(default)
    if output_size is None:
        return tuple(int(d) for d in default)
    if not isinstance(output_size, (list, tuple)):
        raise TypeError(f"{fn}: `output_size` must be a tuple of ints, got {output_size!r}")
    size = tuple(output_size)
    if len(size) == nd + 2:
        size = size[2:]
    if len(size) != nd:
        raise ValueError(
            f"{fn}: `output_size` (={tuple(output_size)}) must have {nd} entries (or {nd + 2} with batch and channels)"
        )
    out = []
    for i, (value, d, s) in enumerate(zip(size, default, stride, strict=True)):
        want = as_int(fn, f"output_size[{i}]", value)
        if not (d - s < want < d + s) or want < 1:
            raise ValueError(
                f"{fn}: `output_size` (={want}) is impossible in spatial dimension {i}: it must be >= 1 and lie "
                f"strictly between {d - s} and {d + s}, the default size {d.explanation} +/- the stride {s} "
                f"(PyTorch's rule)"
            )
        out.append(want)
    return tuple(out)


def _prepare_unpool(fn: str, input, indices, kernel_size, stride, padding, output_size, ndim) -> _Unpool:
    x = as_array(fn, "input", input)
    idx = as_array(fn, "indices", indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: `indices` must have an integer dtype (the flat indices max_pool returns), got {idx.dtype}"
        )
    spec = PoolSpec(kernel_size, stride, padding, ndim=ndim, name=fn)
    xb, unbatched = split_batch(fn, "input", x, spec.ndim)
    if idx.shape != x.shape:
        raise ValueError(f"{fn}: `indices` must have the input's shape {x.shape}, got {idx.shape}")
    _check_spatial(fn, xb)
    # Default size: the largest input that max_pool maps to this size, the transposed-convolution
    # rule with dilation 1 (PyTorch's _unpool_output_size).
    default = tuple(
        conv_transpose_output_length(n, k, s, p)
        for n, k, s, p in zip(xb.shape[2:], spec.kernel_size, spec.stride, spec.padding, strict=True)
    )
    out_size = _unpool_output_size(fn, output_size, default, spec.stride)
    n, c = xb.shape[:2]
    check_budget(fn, "output", (n, c) + out_size, x.dtype.itemsize)
    plane = math.prod(out_size)
    bad = idx >= plane if idx.dtype.kind == "u" else (idx < 0) | (idx >= plane)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{fn}: `indices` must be flat positions in the output plane of size "
            f"{' x '.join(str(o) for o in out_size)}, i.e. in [0, {plane}); got {idx[where]} at position {where}"
        )
    idx_b = idx.astype(np.int64, copy=False).reshape(xb.shape)  # (N, C, *I)
    per_plane = math.prod(xb.shape[2:])
    # (N*C, prod(I)) -> (N*C*prod(I),): flat positions in the whole (N*C*prod(O)) output
    targets = (np.arange(n * c, dtype=np.int64)[:, None] * plane + idx_b.reshape(n * c, per_plane)).ravel()
    # Several inputs may name the same output position (overlapping pooling windows). Keep the
    # last one in C order, as a serial loop would; PyTorch's parallel CPU kernel keeps an arbitrary one.
    last_writer = targets.size - 1 - np.unique(targets[::-1], return_index=True)[1]
    return _Unpool(xb, unbatched, out_size, targets[last_writer], last_writer)


def max_unpool(
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    output_size: Sequence[int] | None = None,
    *,
    ndim: int | None = None,
    _fn: str = "max_unpool",
) -> np.ndarray:
    """N-d max unpooling: put every value back at its index, zeros elsewhere (a partial inverse of max_pool).

    Parameters
    ----------
    input : ndarray
        ``(N, C, *I)`` or unbatched ``(C, *I)``, e.g. the values of :func:`max_pool`.
    indices : ndarray of int
        Same shape: flat positions in each ``(n, c)`` plane of the output, as
        ``max_pool(..., return_indices=True)`` returns them.
    kernel_size, stride, padding
        Those of the max pooling being undone.
    output_size : tuple, optional
        The spatial size (with or without N and C), strictly within one stride
        of the default size (PyTorch's rule); needed where the pooled input's
        size was not the default, e.g. an odd size pooled by 2.

    Shape
    -----
    Default ``O = (I - 1)*s - p_lo - p_hi + k`` per dimension, the transposed-convolution
    rule (Dumoulin & Visin, arXiv:1603.07285, relationship 14) with dilation 1.

    When several inputs name the same position (overlapping windows sharing a
    maximum), the last one in C order is written, and only it receives gradient
    in :func:`max_unpool_vjp` (PyTorch writes an arbitrary one and gives every
    duplicate the position's gradient).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> values, indices = max_pool(x, (2,), return_indices=True)
    >>> max_unpool(values, indices, (2,))
    array([[[0., 3., 0., 5.]]])
    >>> max_unpool(values, indices, (2,), output_size=(5,))
    array([[[0., 3., 0., 5., 0.]]])
    """
    fn = _fn
    u = _prepare_unpool(fn, input, indices, kernel_size, stride, padding, output_size, ndim)
    n, c = u.x.shape[:2]
    y = np.zeros(n * c * math.prod(u.out_size), dtype=u.x.dtype)
    y[u.targets] = u.x.reshape(-1)[u.sources]  # input flattened to (N*C*prod(I),)
    return _unbatch(y.reshape((n, c) + u.out_size), u.unbatched)  # (N, C, *O)


def max_unpool_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence = 0,
    output_size: Sequence[int] | None = None,
    *,
    ndim: int | None = None,
    _fn: str = "max_unpool_vjp",
) -> np.ndarray:
    """Gradient of :func:`max_unpool` with respect to its input (``indices`` has none).

    ``y[t] = x[source(t)]`` for every written position ``t``, so
    ``dL/dx[i] = g[t]`` where ``i`` wrote ``t``: a gather of ``grad_output`` at
    ``indices`` (zero for a duplicate whose value was overwritten).

    Examples
    --------
    >>> import numpy as np
    >>> max_unpool_vjp(np.arange(4.0).reshape(1, 1, 4), np.ones((1, 1, 2)), np.array([[[1, 3]]]), (2,))
    array([[[1., 3.]]])
    """
    fn = _fn
    u = _prepare_unpool(fn, input, indices, kernel_size, stride, padding, output_size, ndim)
    n, c = u.x.shape[:2]
    g = check_grad_output(fn, grad_output, (n, c) + u.out_size, u.unbatched, u.x.dtype)
    grad = np.zeros(u.x.size, dtype=u.x.dtype)
    grad[u.sources] = g.reshape(-1)[u.targets]  # grad_output flattened to (N*C*prod(O),)
    return _unbatch(grad.reshape(u.x.shape), u.unbatched)  # (N, C, *I)
