"""Max unpooling, N-d, forward and backward: a partial inverse of max pooling.

Every value goes back to the flat position its index names in the ``(n, c)``
plane of the output, zeros elsewhere; the default output size is the largest
input that the max pooling maps to this size. The gradient is gathered back
from the positions written.

As for window pooling, :func:`max_unpool` takes the loose hyperparameters of
the max pooling being undone and builds a :class:`~convlab.spec.PoolSpec`;
:func:`max_unpool_spec` takes that spec as it is (e.g. the max-pooling layer's own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ...shapes import Explained, conv_transpose_output_length
from ...spec import MAX_INT, PoolSpec, as_int, entries
from .._checks import as_array, check_budget, split_batch
from ..unfold import check_grad_output
from ._common import check_no_dilation, check_spatial, check_spec, unbatch

__all__ = [
    "max_unpool",
    "max_unpool_spec",
    "max_unpool_spec_vjp",
    "max_unpool_vjp",
]


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
    size = entries(fn, "output_size", output_size,
                   forms="a sequence of ints (a list, a tuple or a 1-D integer NumPy array), one per spatial "
                         "dimension, or with batch and channels first")
    if size is None:
        raise TypeError(f"{fn}: `output_size` must be a tuple of ints, got {output_size!r}")
    if len(size) == nd + 2:
        size = size[2:]
    if len(size) != nd:
        raise ValueError(
            f"{fn}: `output_size` (={size}) must have {nd} entries (or {nd + 2} with batch and channels)"
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


def _prepare_unpool(fn: str, input: object, indices: object, spec: PoolSpec, output_size: object) -> _Unpool:
    """Check the values and indices against the canonical ``spec``; the written positions, before any allocation."""
    x = as_array(fn, "input", input)
    idx = as_array(fn, "indices", indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: `indices` must have an integer dtype (the flat indices max_pool returns), got {idx.dtype}"
        )
    check_no_dilation(fn, spec, "max unpooling")
    xb, unbatched = split_batch(fn, "input", x, spec.ndim)
    if idx.shape != x.shape:
        raise ValueError(f"{fn}: `indices` must have the input's shape {x.shape}, got {idx.shape}")
    check_spatial(fn, xb)
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
    if plane > MAX_INT:  # possible without samples or channels, where the budget sees 0 bytes
        raise ValueError(f"{fn}: the output plane {out_size} would have {plane} elements, more than any array can "
                         f"hold (2**62)")
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

    Builds the :class:`~convlab.spec.PoolSpec` from the arguments and runs
    :func:`max_unpool_spec`.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *I)`` or unbatched ``(C, *I)``, e.g. the values of
        :func:`~convlab.ops.pool.max_pool`.
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
    >>> from convlab.ops.pool import max_pool
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> values, indices = max_pool(x, (2,), return_indices=True)
    >>> max_unpool(values, indices, (2,))
    array([[[0., 3., 0., 5.]]])
    >>> max_unpool(values, indices, (2,), output_size=(5,))
    array([[[0., 3., 0., 5., 0.]]])
    """
    spec = PoolSpec(kernel_size, stride, padding, ndim=ndim, name=_fn)
    return max_unpool_spec(input, indices, spec, output_size)


def max_unpool_spec(input: np.ndarray, indices: np.ndarray, spec: PoolSpec,
                    output_size: Sequence[int] | None = None, *, _fn: str | None = None) -> np.ndarray:
    """:func:`max_unpool` with the max pooling's hyperparameters given as one canonical :class:`~convlab.spec.PoolSpec`.

    The spec is used as it is, never unpacked and rebuilt, e.g. the spec of
    the max pooling being undone; errors are reported under ``spec.name``.
    Its kernel size, stride and padding set the default size; its dilation must
    be 1 (PyTorch's unpooling has none) and its other fields do not matter.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> max_unpool_spec(np.array([[[3.0, 5.0]]]), np.array([[[1, 3]]]), PoolSpec(2, ndim=1))
    array([[[0., 3., 0., 5.]]])
    """
    fn, spec = check_spec("max_unpool_spec", spec, _fn)
    u = _prepare_unpool(fn, input, indices, spec, output_size)
    n, c = u.x.shape[:2]
    y = np.zeros(n * c * math.prod(u.out_size), dtype=u.x.dtype)
    y[u.targets] = u.x.reshape(-1)[u.sources]  # input flattened to (N*C*prod(I),)
    return unbatch(y.reshape((n, c) + u.out_size), u.unbatched)  # (N*C*prod(O),) -> (N, C, *O)


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
    ``indices`` (zero for a duplicate whose value was overwritten). Builds the
    spec and runs :func:`max_unpool_spec_vjp`. A deliberate difference from
    PyTorch, whose backward gives every duplicate ``g[t]``, which is not the
    derivative of its forward (tests/test_opinfo.py, EXPECTED_DIFFERENCES).

    Examples
    --------
    >>> import numpy as np
    >>> max_unpool_vjp(np.arange(4.0).reshape(1, 1, 4), np.ones((1, 1, 2)), np.array([[[1, 3]]]), (2,))
    array([[[1., 3.]]])
    """
    spec = PoolSpec(kernel_size, stride, padding, ndim=ndim, name=_fn)
    return max_unpool_spec_vjp(grad_output, input, indices, spec, output_size)


def max_unpool_spec_vjp(grad_output: np.ndarray, input: np.ndarray, indices: np.ndarray, spec: PoolSpec,
                        output_size: Sequence[int] | None = None, *, _fn: str | None = None) -> np.ndarray:
    """Gradient of :func:`max_unpool_spec` with respect to its input, for the same canonical ``spec``.

    The derivation is :func:`max_unpool_vjp`'s. Errors are reported under
    ``spec.name``, or under ``_fn`` where given.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.spec import PoolSpec
    >>> max_unpool_spec_vjp(np.arange(4.0).reshape(1, 1, 4), np.ones((1, 1, 2)), np.array([[[1, 3]]]),
    ...                     PoolSpec(2, ndim=1))
    array([[[1., 3.]]])
    """
    fn, spec = check_spec("max_unpool_spec_vjp", spec, _fn)
    u = _prepare_unpool(fn, input, indices, spec, output_size)
    n, c = u.x.shape[:2]
    g = check_grad_output(fn, grad_output, (n, c) + u.out_size, u.unbatched, u.x.dtype)
    grad = np.zeros(u.x.size, dtype=u.x.dtype)
    grad[u.sources] = g.reshape(-1)[u.targets]  # grad_output flattened to (N*C*prod(O),)
    return unbatch(grad.reshape(u.x.shape), u.unbatched)  # (N*C*prod(I),) -> (N, C, *I)
