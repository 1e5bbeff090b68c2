"""What the pooling modules share: input checks, the spec check, the argmax scatter and the average.

Window, adaptive and global pooling and unpooling all take ``(N, C, *spatial)``
or unbatched ``(C, *spatial)`` inputs, refuse empty spatial sizes, and report
errors under the calling function's name; max and average reductions share
their backward scatter and their integer-exact division.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

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


# --------------------------------------------------------------------------- windows gathered tap by tap


def plane_strides(spatial: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of one ``(n, c)`` plane: flat index = sum(coordinate * stride)."""
    return tuple(math.prod(spatial[i + 1:]) for i in range(len(spatial)))


def along(values: np.ndarray, dim: int, nd: int) -> np.ndarray:
    """A 1-D array for spatial dimension ``dim``, shaped to broadcast over ``nd`` output dimensions."""
    return values.reshape(tuple(-1 if i == dim else 1 for i in range(nd)))  # (1, .., O_dim, .., 1)


class Clipped(NamedTuple):
    """One spatial dimension's windows clipped to the input: tap ``t`` of output ``o`` reads ``positions[o, t]``.

    Only the taps that land in the input are listed, in window order (``valid``
    marks them), so a window has at most as many as the input is long, however
    large its kernel or its padding. ``positions`` is 0 where not valid, so it
    always indexes the input.
    """

    positions: np.ndarray  # (O, T) int64
    valid: np.ndarray  # (O, T) bool


def gathered_taps(clipped: Sequence[Clipped], spatial: Sequence[int]
                  ) -> Iterator[tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]]:
    """Yield ``(index, inside, flat)`` for every tap of the clipped windows, in row-major window order.

    ``index`` indexes the input's spatial axes (broadcasting to ``(*O)``), ``inside``
    says where the tap lies in the input, ``flat`` is its plane index. For each
    output, the taps inside the input come in the order of its window's taps, so
    a scan over them meets the input elements in the order a scan over the whole
    window would. One step per tap of the widest window: ``prod(T)`` steps,
    each over all outputs at once.
    """
    nd = len(clipped)
    strides = plane_strides(spatial)
    for tap in np.ndindex(*(c.positions.shape[1] for c in clipped)):
        index = tuple(along(c.positions[:, t], dim, nd) for dim, (c, t) in enumerate(zip(clipped, tap, strict=True)))
        inside = functools.reduce(np.logical_and, (along(c.valid[:, t], dim, nd) for dim, (c, t) in
                                                   enumerate(zip(clipped, tap, strict=True))))
        flat = functools.reduce(np.add, (i * st for i, st in zip(index, strides, strict=True)))
        yield index, inside, flat


def scan_max(best: np.ndarray, index: np.ndarray, value: np.ndarray, inside: np.ndarray, flat: np.ndarray) -> None:
    """One step of PyTorch's max scan: take ``value`` where it is inside and ``value > best or isnan(value)``.

    ``index < 0`` marks outputs that have taken no tap yet (they take the first
    one inside). Ties keep the earlier tap; a NaN replaces anything, so the
    last NaN wins (aten/src/ATen/native/cpu/MaxPoolKernel.cpp).
    """
    update = (index < 0) | (value > best)
    if value.dtype.kind == "f":
        update |= np.isnan(value)
    update &= inside
    np.copyto(best, value, where=update)
    np.copyto(index, np.broadcast_to(flat, index.shape), where=update)
