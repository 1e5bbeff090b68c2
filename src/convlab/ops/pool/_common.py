"""What the pooling modules share: input checks, the spec check, the argmax scatter and the average.

Window, adaptive and global pooling and unpooling all take ``(N, C, *spatial)``
or unbatched ``(C, *spatial)`` inputs, refuse empty spatial sizes, and report
errors under the calling function's name; max and average reductions share
their backward scatter and their integer-exact division.
"""

from __future__ import annotations

import math

import numpy as np

from ...spec import PoolSpec, as_bool
from .._checks import compute_dtype

Pairs = tuple[tuple[int, int], ...]


def check_spatial(fn: str, xb: np.ndarray) -> None:
    """Every spatial size of the batched input ``xb`` is at least 1."""
    if any(s == 0 for s in xb.shape[2:]):
        raise ValueError(
            f"{fn}: `input` has an empty spatial dimension, shape {xb.shape[2:]} after (N, C); "
            f"every spatial size must be >= 1"
        )


def check_real(fn: str, x: np.ndarray) -> None:
    """A maximum needs ordered values: no complex dtype."""
    if x.dtype.kind == "c":
        raise TypeError(f"{fn}: `input` has dtype {x.dtype}; a maximum needs real (ordered) values")


check_bool = as_bool  # the one flag check (convlab.spec.as_bool), under the name the pools call


def check_inexact_for_average(fn: str, dtype: np.dtype) -> None:
    """The gradient of an average is fractional, so integer inputs have none."""
    if dtype.kind in "iu":
        raise TypeError(
            f"{fn}: the gradient of an average is fractional; `input` has dtype {dtype}, use a floating dtype"
        )


def check_spec(entry: str, spec: object, fn: str | None) -> tuple[str, PoolSpec]:
    """The name errors are reported under (``fn``, else ``spec.name``) and the spec, refused unless a PoolSpec.

    ``entry`` is the public function called, named in the message when ``spec``
    is not a :class:`~convlab.spec.PoolSpec` (and so has no name to report).
    """
    if not isinstance(spec, PoolSpec):
        raise TypeError(
            f"{fn or entry}: `spec` must be a convlab.spec.PoolSpec (e.g. PoolSpec(2, ndim=2)), "
            f"got {spec!r} ({type(spec).__name__})"
        )
    return (spec.name if fn is None else fn), spec


def check_no_dilation(fn: str, spec: PoolSpec, what: str) -> None:
    """Average pooling and unpooling have no dilation (as in PyTorch): refuse a spec that has one."""
    if any(d != 1 for d in spec.dilation):
        raise ValueError(
            f"{fn}: `spec.dilation` (={spec.dilation}) must be 1 in every spatial dimension; "
            f"{what} has no dilation (as in PyTorch)"
        )


def unbatch(y: np.ndarray, unbatched: bool) -> np.ndarray:
    """Drop the batch axis added to an unbatched input: ``(1, C, ...) -> (C, ...)``."""
    return y[0] if unbatched else y


def scatter_to_argmax(grad_output: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...],
                      dtype: np.dtype) -> np.ndarray:
    """``grad[n, c, index[n, c, o]] += grad_output[n, c, o]``, in output order (PyTorch's order)."""
    n, c = x_shape[:2]
    plane = math.prod(x_shape[2:])
    offsets = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (index.ndim - 2))  # (N, C, 1..)
    grad = np.zeros(n * c * plane, dtype=compute_dtype(dtype))
    np.add.at(grad, (offsets + index).ravel(), grad_output.astype(grad.dtype, copy=False).ravel())
    return grad.reshape(x_shape).astype(dtype, copy=False)  # (N*C*prod(S),) -> (N, C, *S)


def average(total: np.ndarray, divisor: np.ndarray | int) -> np.ndarray:
    """``total / divisor`` in ``total``'s dtype; integers divide with truncation toward zero (C, PyTorch)."""
    divisor = np.asarray(divisor)
    if total.dtype.kind in "iu":
        quotient = np.abs(total) // np.abs(divisor)
        return np.where((total < 0) != (divisor < 0), -quotient, quotient)
    return total / divisor.astype(total.dtype)
