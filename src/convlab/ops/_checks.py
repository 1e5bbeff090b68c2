"""Input validation shared by every op: arrays, dtypes, ranks and the memory budget.

Every check raises ``TypeError`` or ``ValueError`` naming the function, the
parameter, the rule and the value received, and runs before anything large is
allocated.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "as_array",
    "check_budget",
    "check_exact_integers",
    "check_same_dtype",
    "compute_dtype",
    "get_memory_budget",
    "memory_budget",
    "result_dtype",
    "set_memory_budget",
    "split_batch",
]

#: The default of the largest single buffer (output, padded copy or im2col block) an op may allocate.
DEFAULT_MEMORY_BUDGET_BYTES = 8 * 2**30

_budget = DEFAULT_MEMORY_BUDGET_BYTES


def get_memory_budget() -> int:
    """The largest single buffer, in bytes, an op may allocate (8 GiB unless changed).

    Requests above it are refused with the number of bytes they would need,
    instead of exhausting the machine's memory; the algorithms also size their
    working blocks from it (at most a quarter each).
    """
    return _budget


def set_memory_budget(nbytes: int) -> int:
    """Set the budget of :func:`get_memory_budget` (a positive int of bytes); returns the previous one.

    >>> import convlab.ops as ops
    >>> previous = ops.set_memory_budget(2**20)
    >>> ops.get_memory_budget()
    1048576
    >>> _ = ops.set_memory_budget(previous)
    """
    global _budget
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)):
        raise TypeError(f"set_memory_budget: `nbytes` must be an int (bytes), got {nbytes!r}")
    if nbytes < 1:
        raise ValueError(f"set_memory_budget: `nbytes` (={nbytes}) must be >= 1")
    previous, _budget = _budget, int(nbytes)
    return previous


@contextlib.contextmanager
def memory_budget(nbytes: int) -> Iterator[int]:
    """``with memory_budget(2**30): ...`` runs the block with that budget and restores the previous one."""
    previous = set_memory_budget(nbytes)
    try:
        yield int(nbytes)
    finally:
        set_memory_budget(previous)


def as_array(fn: str, name: str, value: object) -> np.ndarray:
    """``value`` as an ndarray of a numeric (non-bool) dtype, without copying arrays."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            raise TypeError(
                f"{fn}: `{name}` is a {type(value).__module__}.{type(value).__name__}; convlab takes NumPy arrays "
                f"(use tensor.detach().numpy())"
            )
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{fn}: `{name}` cannot be turned into a numeric array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError(f"{fn}: `{name}` has dtype bool; convert it to a number type first (e.g. x.astype(np.float32))")
    if kind not in "iufc":
        raise TypeError(f"{fn}: `{name}` must have a numeric dtype, got {arr.dtype}")
    return arr


def check_same_dtype(fn: str, **arrays: np.ndarray | None) -> np.dtype:
    """All given arrays share one dtype (PyTorch refuses mixed dtypes too); return it."""
    present = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {k: v.dtype for k, v in present.items()}
    first = next(iter(dtypes.values()))
    if any(dt != first for dt in dtypes.values()):
        listing = ", ".join(f"{k} is {dt}" for k, dt in dtypes.items())
        raise TypeError(f"{fn}: all arrays must have the same dtype, but {listing}")
    return first


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype arithmetic runs in: float16 in float32, integers in int64 (exact), others as given."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    return dtype


def result_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype an op that sums products returns: integers as int64 (exact, as NumPy's ``sum`` of
    narrow integers), every other dtype as itself (float16 is computed in float32 and returned as float16)."""
    return np.dtype(np.int64) if dtype.kind in "iu" else dtype


#: The largest int64.
INT64_MAX = 2**63 - 1


def _largest_magnitude(a: np.ndarray) -> int:
    """``max |a|`` as a Python int (exact for every integer dtype, uint64 and int64's minimum included)."""
    if a.size == 0:
        return 0
    return max(abs(int(a.min())), abs(int(a.max())))


def check_exact_integers(fn: str, what: str, a: np.ndarray, b: np.ndarray, terms: int,
                         extra: np.ndarray | None = None) -> None:
    """Refuse integer arrays whose sums of ``terms`` products ``a * b`` (plus ``extra``) could leave int64.

    Integer convolutions are computed exactly in int64. The bound
    ``max|a| * max|b| * terms + max|extra|`` covers every output; when it exceeds
    ``2**63 - 1`` the result could wrap, so the call is refused rather than
    returning wrong numbers. One pass over each array; floats are not checked.
    """
    if a.dtype.kind not in "iu":
        return
    bound = _largest_magnitude(a) * _largest_magnitude(b) * int(terms)
    if extra is not None:
        bound += _largest_magnitude(extra)
    if bound > INT64_MAX:
        raise ValueError(
            f"{fn}: the {what} of these integers could exceed int64 (|values| up to {_largest_magnitude(a)} and "
            f"{_largest_magnitude(b)}, {terms} products per sum: up to {bound:,} > 2**63 - 1); integer results "
            f"are exact only within int64: use smaller values, or float64 for an approximate result"
        )


def check_budget(fn: str, what: str, shape: Sequence[int], itemsize: int) -> int:
    """Refuse a buffer of ``shape`` larger than :func:`get_memory_budget`; return its size in bytes."""
    nbytes = math.prod(int(s) for s in shape) * itemsize
    budget = _budget
    if nbytes > budget:
        raise ValueError(
            f"{fn}: the {what} of shape {tuple(int(s) for s in shape)} would need {nbytes:,} bytes "
            f"({nbytes / 2**30:.3g} GiB), more than the memory budget of {budget:,} bytes "
            f"(convlab.ops.set_memory_budget changes it); check the sizes, padding, stride and dilation"
        )
    return nbytes


def split_batch(fn: str, name: str, x: np.ndarray, ndim: int) -> tuple[np.ndarray, bool]:
    """Accept ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; return the batched array and a flag."""
    if x.ndim == ndim + 2:
        return x, False
    if x.ndim == ndim + 1:
        return x[None], True
    raise ValueError(
        f"{fn}: `{name}` must have {ndim + 2} dimensions (N, C, *spatial) or {ndim + 1} (C, *spatial) "
        f"for {ndim} spatial dimension{'s' if ndim != 1 else ''}, got shape {x.shape}"
    )
