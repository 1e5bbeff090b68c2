"""Window pooling, N-d, forward and backward: max and average pooling over a sliding window.

The window slides like a convolution's without weights (see
:func:`convlab.shapes.pool_output_length` for the size rule) and is reduced:

* max pooling keeps the largest input of each window. Padding is never a
  candidate (PyTorch pads with ``-inf``), ties keep the first maximum in
  row-major window order, and a NaN in the window wins: the output is NaN and
  its index is the *last* NaN of the window. That is PyTorch's CPU scan,
  ``if (val > maxval || isnan(val))`` (aten/src/ATen/native/cpu/MaxPoolKernel.cpp).
  Indices are flat positions in each ``(n, c)`` plane of the unpadded input, as
  PyTorch returns them.
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

Two entry points per operation: :func:`max_pool` / :func:`avg_pool` take the
loose hyperparameters a user types (``2``, ``(3, 3)``, ``stride=None`` ...),
build the :class:`~convlab.spec.PoolSpec` and hand it to :func:`max_pool_spec` /
:func:`avg_pool_spec`, which take a canonical spec as it is (a layer builds its
spec once and passes it on every call). The ``*_vjp`` functions pair up the same way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ...shapes import pool_output_shape
from ...spec import PoolSpec
from .._checks import as_array, check_budget, compute_dtype, split_batch
from ..algorithms._common import sliding_windows
from ..padding import pad_pairs, pad_pairs_vjp
from ..unfold import check_grad_output, scatter_windows
from ._common import (
    Clipped,
    Pairs,
    along,
    average,
    check_bool,
    check_inexact_for_average,
    check_no_dilation,
    check_real,
    check_spatial,
    check_spec,
    gathered_taps,
    plane_strides,
    scan_max,
    scatter_to_argmax,
    unbatch,
)

__all__ = [
    "avg_pool",
    "avg_pool_spec",
    "avg_pool_spec_vjp",
    "avg_pool_vjp",
    "max_pool",
    "max_pool_spec",
    "max_pool_spec_vjp",
    "max_pool_vjp",
]


# --------------------------------------------------------------------------- checks


class _Pool(NamedTuple):
    x: np.ndarray  # batched (N, C, *S), the input's dtype
    unbatched: bool
    spec: PoolSpec
    out_size: tuple[int, ...]
    reach: Pairs  # padding (lo, hi') after which the padded input ends where the last window ends
    clipped: tuple[Clipped, ...] | None  # per dimension, where the windows are gathered (else strided views)


def _in_input(n: int, o: int, k: int, s: int, d: int, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output window along one dimension: its first tap inside the input and how many are (0: none).

    Window ``o`` reads ``o*s + j*d - lo`` for ``j < k``; the taps inside ``[0, n)``
    are ``j`` from ``ceil((lo - o*s)/d)`` to ``floor((n - 1 + lo - o*s)/d)``,
    clipped to ``[0, k)``: closed form, O(O) whatever the kernel size.
    """
    start = np.arange(o, dtype=np.int64) * s - lo  # position of tap 0; |values| < 2**63 (spec.as_int's bound)
    first = np.maximum(0, -(start // d))  # ceil(-start / d)
    last = np.minimum(k - 1, (n - 1 - start) // d)
    return first, np.maximum(0, last - first + 1)


def _check_windows_see_input(fn: str, spatial: Sequence[int], spec: PoolSpec, out_size: Sequence[int],
                             counts: Sequence[np.ndarray]) -> None:
    """Refuse a dilated max-pooling window that covers only padding.

    ``pad <= k // 2`` (PyTorch's limit) is not enough with dilation: ``k=2, d=3, pad=1``
    on an input of size 2 reads positions -1 and 2, both padding. PyTorch then returns
    ``-inf`` and an index outside the input; we refuse instead. ``counts`` are the
    taps inside the input of each window (:func:`_in_input`).
    """
    for dim, (n, k, s, d, (lo, _), count) in enumerate(
        zip(spatial, spec.kernel_size, spec.stride, spec.dilation, spec.padding, counts, strict=True)
    ):
        if count.size and not count.all():
            bad = int(np.argmin(count))
            positions = [bad * s + j * d - lo for j in range(min(k, 8))]
            shown = ", ".join(str(v) for v in positions) + (f", ..., {bad * s + (k - 1) * d - lo}" if k > 8 else "")
            raise ValueError(
                f"{fn}: the pooling window of output {bad} in spatial dimension {dim} covers only padding "
                f"(input positions [{shown}], input size {n}, kernel_size={k}, dilation={d}, "
                f"padding={spec.padding[dim]}); use less padding or a smaller dilation"
            )


def _prepare_pool(fn: str, kind: str, input: object, spec: PoolSpec) -> _Pool:
    """Check ``input`` against the canonical ``spec``; sizes and memory budget before any allocation.

    Where a window has more taps than can land in the input (a kernel larger
    than the input, its padding up to half of it), the windows are gathered
    from the input tap by tap, over the taps inside it only (:class:`~._common.Clipped`):
    the work and memory follow the input and the output, never the kernel size
    or the padding. Otherwise the padded input is viewed through strided windows.
    """
    x = as_array(fn, "input", input)
    if kind == "max":
        check_real(fn, x)
    else:
        check_no_dilation(fn, spec, "average pooling")
    xb, unbatched = split_batch(fn, "input", x, spec.ndim)
    check_spatial(fn, xb)
    spatial = tuple(int(s) for s in xb.shape[2:])
    out_size = tuple(int(o) for o in pool_output_shape(spec, spatial))
    n, c = xb.shape[:2]
    itemsize = compute_dtype(x.dtype).itemsize
    check_budget(fn, "output", (n, c) + out_size, itemsize)
    if kind == "max":
        check_budget(fn, "indices", (n, c) + out_size, 8)
    dims = list(zip(spatial, out_size, spec.kernel_size, spec.stride, spec.dilation, spec.padding, strict=True))
    taps = [_in_input(size, o, k, st, d, lo) for size, o, k, st, d, (lo, _) in dims]  # (first, count) per dim
    if kind == "max":
        _check_windows_see_input(fn, spatial, spec, out_size, [count for _, count in taps])
    widest = tuple(max(1, int(count.max())) for _, count in taps)  # taps inside the input, at most ceil(S/d)
    # The padded input must end exactly where the last window ends: further right than
    # S + hi for a ceil-mode window hanging over the padding, earlier (a crop) where the
    # floor rule leaves trailing elements that no window reads.
    reach = tuple((lo, (o - 1) * st + d * (k - 1) + 1 - size - lo) for size, o, k, st, d, (lo, _) in dims)
    if widest == spec.kernel_size:  # every tap can land in the input: the padded input is as small as the data
        check_budget(fn, "padded input", (n, c) + tuple(size + lo + hi for size, (lo, hi) in zip(spatial, reach,
                                                                                          strict=True)), itemsize)
        return _Pool(xb, unbatched, spec, out_size, reach, None)
    clipped = []
    for (_, o, _, st, d, (lo, _)), (first, count), t in zip(dims, taps, widest, strict=True):
        steps = np.arange(t, dtype=np.int64)
        valid = steps[None, :] < count[:, None]  # (O, T)
        start = np.arange(o, dtype=np.int64) * st - lo + first * d  # the first position inside the input
        positions = np.where(valid, start[:, None] + steps[None, :] * d, 0)  # (O, T)
        clipped.append(Clipped(positions, valid))
    return _Pool(xb, unbatched, spec, out_size, reach, tuple(clipped))


def _max_scan(p: _Pool) -> tuple[np.ndarray, np.ndarray]:
    """Values and plane indices of every window maximum, by PyTorch's scan over the kernel taps.

    For each tap (row-major) and all output positions at once, the running
    maximum is replaced where the tap lies inside the input and either no tap
    has been taken yet or ``value > best or isnan(value)``. Taps outside the
    input never win, so clipped windows (:class:`~._common.Clipped`) scan only the taps
    inside it, in the same order, with the same result.
    """
    spec, out_size, x = p.spec, p.out_size, p.x
    nd = spec.ndim
    best = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
    index = np.full(x.shape[:2] + out_size, -1, dtype=np.int64)
    if p.clipped is not None:
        for where, inside, flat in gathered_taps(p.clipped, p.x.shape[2:]):
            scan_max(best, index, x[(slice(None), slice(None)) + where], inside, flat)  # (N, C, *O)
        return best, index
    spatial = x.shape[2:]
    strides = plane_strides(spatial)
    xp = pad_pairs(x, p.reach, "constant")  # (N, C, *S_reach); padded values are masked out below
    windows = sliding_windows(xp, spec.kernel_size, spec.stride, spec.dilation, out_size)  # (N, C, *O, *K)
    for tap in np.ndindex(*spec.kernel_size):
        inside = np.ones((1,) * nd, dtype=bool)
        flat = np.zeros((1,) * nd, dtype=np.int64)
        for dim, (n, o, s, d, k, (lo, _), st) in enumerate(
            zip(spatial, out_size, spec.stride, spec.dilation, tap, spec.padding, strides, strict=True)
        ):
            coordinate = along(np.arange(o) * s + k * d - lo, dim, nd)  # input coordinate of this tap
            inside = inside & (coordinate >= 0) & (coordinate < n)
            flat = flat + coordinate * st
        scan_max(best, index, windows[(Ellipsis,) + tap], inside, flat)  # (N, C, *O)
    return best, index


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
        counts.append(along(count, dim, nd))
    if math.prod(int(count.max()) for count in counts) > 2**62:
        # Windows counting more padding than int64 holds (huge kernels with count_include_pad):
        # the divisor in Python ints, exact.
        counts = [count.astype(object) for count in counts]
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

    Builds the :class:`~convlab.spec.PoolSpec` from the arguments and runs
    :func:`max_pool_spec`.

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
        the unpadded input (int64), the input of :func:`~convlab.ops.pool.max_unpool`.

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
    check_bool(_fn, "return_indices", return_indices)
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=ndim, name=_fn)
    return max_pool_spec(input, spec, return_indices)


def max_pool_spec(input: np.ndarray, spec: PoolSpec, return_indices: bool = False, *,
                  _fn: str | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """:func:`max_pool` with its hyperparameters given as one canonical :class:`~convlab.spec.PoolSpec`.

    The spec is used as it is, never unpacked and rebuilt: build it once (a
    layer does so at construction) and pass it on every call. Errors are
    reported under ``spec.name``. The spec's ``count_include_pad`` and
    ``divisor_override`` concern averages and are ignored here.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` with ``spec.ndim``
        spatial dimensions; any real dtype.
    spec : PoolSpec
        Kernel size, stride, ``(lo, hi)`` padding, dilation and ceil mode.
    return_indices : bool
        Also return the flat plane index of each maximum (int64).

    Shape
    -----
    As :func:`max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> spec = PoolSpec(3, stride=2, padding=1, ndim=1)
    >>> max_pool_spec(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), spec, return_indices=True)
    (array([[[3., 5., 5.]]]), array([[[1, 3, 3]]]))
    """
    fn, spec = check_spec("max_pool_spec", spec, _fn)
    check_bool(fn, "return_indices", return_indices)
    p = _prepare_pool(fn, "max", input, spec)
    values, index = _max_scan(p)
    if return_indices:
        return unbatch(values, p.unbatched), unbatch(index, p.unbatched)
    return unbatch(values, p.unbatched)


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
    Builds the spec and runs :func:`max_pool_spec_vjp`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> max_pool_vjp(np.ones((1, 1, 4)), x, (2,), stride=1)   # 3 and 5 are each the max of two windows
    array([[[0., 2., 0., 2., 0.]]])
    """
    check_bool(_fn, "return_indices", return_indices)
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=ndim, name=_fn)
    return max_pool_spec_vjp(grad_output, input, spec)


def max_pool_spec_vjp(grad_output: np.ndarray, input: np.ndarray, spec: PoolSpec, *,
                      _fn: str | None = None) -> np.ndarray:
    """Gradient of :func:`max_pool_spec` with respect to its input, for the same canonical ``spec``.

    The derivation is :func:`max_pool_vjp`'s. Errors are reported under
    ``spec.name``, or under ``_fn`` where given (a layer's backward).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> max_pool_spec_vjp(np.ones((1, 1, 2)), np.array([[[1.0, 3.0, 2.0, 5.0]]]), PoolSpec(2, ndim=1))
    array([[[0., 1., 0., 1.]]])
    """
    fn, spec = check_spec("max_pool_spec_vjp", spec, _fn)
    p = _prepare_pool(fn, "max", input, spec)
    g = check_grad_output(fn, grad_output, p.x.shape[:2] + p.out_size, p.unbatched, p.x.dtype)
    _, index = _max_scan(p)
    return unbatch(scatter_to_argmax(g, index, p.x.shape, p.x.dtype), p.unbatched)


# --------------------------------------------------------------------------- average pooling


def _tiles(p: _Pool) -> bool:
    """Whether the windows tile the input: stride = kernel, no padding reached, float32/float64 (LeNet's 2x2).

    Then every window lies inside the input, windows do not overlap, and the
    trailing elements the floor rule leaves are read by none (``reach`` crops them).
    """
    spec = p.spec
    return (p.clipped is None and p.x.dtype in (np.float32, np.float64) and spec.stride == spec.kernel_size
            and all(lo == 0 and hi <= 0 for lo, hi in p.reach))


def _tiled_average(p: _Pool) -> np.ndarray:
    """Average pooling of tiling windows: the taps added in row-major window order (PyTorch's
    AvgPoolKernel.cpp sums them in that order), each tap a strided view, then one division.

    ``prod(K)`` passes over the output instead of a reduction over a 2*nd-dimensional window view.
    """
    spec, out = p.spec, p.out_size
    total = None
    for tap in np.ndindex(*spec.kernel_size):
        # the tap's element of every window: (N, C, *O)
        view = p.x[(slice(None), slice(None)) + tuple(slice(t, t + o * k, k) for t, o, k in
                                                      zip(tap, out, spec.kernel_size, strict=True))]
        if total is None:
            total = view.copy()
        else:
            total += view
    divisor = np.asarray(_avg_divisor(p.x.shape[2:], spec, out)).astype(total.dtype)
    return np.divide(total, divisor, out=total)


def _tiled_average_vjp(p: _Pool, g: np.ndarray) -> np.ndarray:
    """The gradient of :func:`_tiled_average`: ``g / divisor`` repeated over each window (one copy)."""
    spec, out = p.spec, p.out_size
    n, c = p.x.shape[:2]
    divisor = np.asarray(_avg_divisor(p.x.shape[2:], spec, out)).astype(p.x.dtype)
    scaled = np.divide(g, divisor, dtype=p.x.dtype)  # (N, C, *O)
    # (N, C, O1, 1, O2, 1, ...) -> (N, C, O1, k1, O2, k2, ...) -> (N, C, O1*k1, O2*k2, ...)
    spread = np.broadcast_to(scaled.reshape((n, c) + sum(((o, 1) for o in out), ())),
                             (n, c) + sum(((o, k) for o, k in zip(out, spec.kernel_size, strict=True)), ()))
    covered = tuple(o * k for o, k in zip(out, spec.kernel_size, strict=True))
    if covered == p.x.shape[2:]:
        return spread.reshape(p.x.shape)  # the copy
    grad = np.zeros(p.x.shape, dtype=p.x.dtype)  # trailing elements no window reads get 0
    grad[(slice(None), slice(None)) + tuple(slice(0, v) for v in covered)] = spread.reshape((n, c) + covered)
    return grad


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

    Builds the :class:`~convlab.spec.PoolSpec` from the arguments and runs
    :func:`avg_pool_spec`.

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
    spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                    ndim=ndim, name=_fn)
    return avg_pool_spec(input, spec)


def avg_pool_spec(input: np.ndarray, spec: PoolSpec, *, _fn: str | None = None) -> np.ndarray:
    """:func:`avg_pool` with its hyperparameters given as one canonical :class:`~convlab.spec.PoolSpec`.

    The spec is used as it is, never unpacked and rebuilt; errors are reported
    under ``spec.name``. Its dilation must be 1 (average pooling has none).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> spec = PoolSpec(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False, ndim=1)
    >>> avg_pool_spec(np.arange(6.0)[None, None], spec)   # windows [0, 2) [1, 4) [3, 6) [5, 6)
    array([[[0.5, 2. , 4. , 5. ]]])
    """
    fn, spec = check_spec("avg_pool_spec", spec, _fn)
    p = _prepare_pool(fn, "avg", input, spec)
    nd = spec.ndim
    if _tiles(p):
        return unbatch(_tiled_average(p), p.unbatched)
    xc = p.x.astype(compute_dtype(p.x.dtype), copy=False)
    if p.clipped is not None:  # a kernel larger than the input: sum the taps inside it only
        total = np.zeros(xc.shape[:2] + p.out_size, dtype=xc.dtype)  # (N, C, *O)
        for where, inside, _ in gathered_taps(p.clipped, p.x.shape[2:]):
            total += np.where(inside, xc[(slice(None), slice(None)) + where], 0)
    else:
        xp = pad_pairs(xc, p.reach, "constant")  # (N, C, *S_reach)
        windows = sliding_windows(xp, spec.kernel_size, spec.stride, spec.dilation, p.out_size)  # (N, C, *O, *K)
        total = windows.sum(axis=tuple(range(2 + nd, 2 + 2 * nd)))  # (N, C, *O)
    y = average(total, _avg_divisor(p.x.shape[2:], spec, p.out_size))
    return unbatch(y.astype(p.x.dtype, copy=False), p.unbatched)


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
    Padding positions are constants and drop their share. Builds the spec and
    runs :func:`avg_pool_spec_vjp`.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 4)), (2,))
    array([[[0.5, 0.5, 0.5, 0.5]]])
    """
    spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                    ndim=ndim, name=_fn)
    return avg_pool_spec_vjp(grad_output, input, spec)


def avg_pool_spec_vjp(grad_output: np.ndarray, input: np.ndarray, spec: PoolSpec, *,
                      _fn: str | None = None) -> np.ndarray:
    """Gradient of :func:`avg_pool_spec` with respect to its input, for the same canonical ``spec``.

    The derivation is :func:`avg_pool_vjp`'s. Errors are reported under
    ``spec.name``, or under ``_fn`` where given (a layer's backward).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> avg_pool_spec_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 4)), PoolSpec(2, ndim=1))
    array([[[0.5, 0.5, 0.5, 0.5]]])
    """
    fn, spec = check_spec("avg_pool_spec_vjp", spec, _fn)
    p = _prepare_pool(fn, "avg", input, spec)
    check_inexact_for_average(fn, p.x.dtype)
    nd = spec.ndim
    n, c = p.x.shape[:2]
    g = check_grad_output(fn, grad_output, (n, c) + p.out_size, p.unbatched, p.x.dtype)
    if _tiles(p):
        return unbatch(_tiled_average_vjp(p, g), p.unbatched)
    scaled = average(g.astype(compute_dtype(p.x.dtype), copy=False), _avg_divisor(p.x.shape[2:], spec, p.out_size))
    if p.clipped is not None:  # a kernel larger than the input: spread over the taps inside it only
        grad = np.zeros(p.x.shape, dtype=scaled.dtype)  # (N, C, *S)
        for where, inside, _ in gathered_taps(p.clipped, p.x.shape[2:]):
            np.add.at(grad, (slice(None), slice(None)) + where, np.where(inside, scaled, 0))  # repeats add up
        return unbatch(grad.astype(p.x.dtype, copy=False), p.unbatched)
    taps = np.broadcast_to(scaled.reshape((n, c) + (1,) * nd + p.out_size),  # (N, C, 1.., *O)
                           (n, c) + spec.kernel_size + p.out_size)  # (N, C, *K, *O), one copy per tap
    reached = tuple(s + lo + hi for s, (lo, hi) in zip(p.x.shape[2:], p.reach, strict=True))
    grad_reach = scatter_windows(taps, reached, spec.kernel_size, spec.stride, spec.dilation)  # (N, C, *S_reach)
    grad = pad_pairs_vjp(grad_reach, p.x.shape, p.reach, "constant")  # (N, C, *S)
    return unbatch(grad.astype(p.x.dtype, copy=False), p.unbatched)
