"""The checks of the analysis' entry points: the input shape, ``itemsize`` and ``batched``.

Every message names the entry point, the argument, the rule and the value as given,
and lists the accepted forms, e.g.
``analyze: `input_shape` must be a sequence of positive ints ... got '1x28x28' (str)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from ..spec import as_bool, as_int

__all__ = ["SHAPE_FORMS", "check_batched", "check_input_shape", "check_itemsize"]

#: The accepted forms of ``input_shape``, quoted in the messages.
SHAPE_FORMS = (
    "a sequence of positive ints such as (1, 3, 224, 224) (N, C, *spatial) or (3, 224, 224) unbatched, "
    "or a list of such shapes, one per input, such as [(1, 3, 32, 32), (1, 10)]"
)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shape(fn: str, where: str, shape: Sequence, given: object) -> tuple[int, ...]:
    if len(shape) == 0:
        raise ValueError(f"{fn}: `{where}` is empty; `input_shape` must be {SHAPE_FORMS}, got {given!r}")
    out = []
    for i, v in enumerate(shape):
        if not _is_int(v):
            raise TypeError(
                f"{fn}: `{where}[{i}]` must be a positive int, got {v!r} ({type(v).__name__}); "
                f"`input_shape` must be {SHAPE_FORMS}, got {given!r}"
            )
        if v < 1:
            raise ValueError(f"{fn}: `{where}[{i}]` (={v}) must be >= 1 (a size), in `input_shape`={given!r}")
        out.append(int(v))
    return tuple(out)


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def check_input_shape(fn: str, input_shape: object) -> tuple[int, ...] | list[tuple[int, ...]]:
    """One shape as a tuple of ints, or several (one per input) as a list of tuples; else TypeError/ValueError."""
    if not _is_sequence(input_shape):
        raise TypeError(
            f"{fn}: `input_shape` must be {SHAPE_FORMS}, got {input_shape!r} ({type(input_shape).__name__})"
        )
    shape = list(input_shape)  # type: ignore[arg-type]
    if shape and all(_is_sequence(s) for s in shape):
        return [_shape(fn, f"input_shape[{i}]", s, input_shape) for i, s in enumerate(shape)]
    if any(_is_sequence(s) for s in shape):
        raise TypeError(
            f"{fn}: `input_shape` mixes sizes and shapes; it must be {SHAPE_FORMS}, got {input_shape!r}"
        )
    return _shape(fn, "input_shape", shape, input_shape)


def check_itemsize(fn: str, itemsize: object) -> int:
    """Bytes per element: a positive int."""
    value = as_int(fn, "itemsize", itemsize)
    if value < 1:
        raise ValueError(f"{fn}: `itemsize` (={itemsize!r}) must be >= 1 (bytes per element, e.g. 4 for float32)")
    return value


def check_batched(fn: str, batched: object) -> bool | None:
    """``None`` (decided by the first spatial layer) or a bool."""
    return None if batched is None else as_bool(fn, "batched", batched)
