"""Parameters, the gradient mode and models without weights: what every module holds and reads.

A :class:`Parameter` is a trainable array with its accumulated gradient.
``with no_grad():`` stops forward passes from caching what backward needs.
Inside ``with skeleton():`` every parameter and buffer is a read-only
zero-stride array of the right shape and dtype, which takes no memory, and the
initialisers draw nothing (like torch's ``meta`` device); see
:mod:`convlab.nn.module` for how modules use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..ops._checks import get_memory_budget
from ..spec import as_bool

__all__ = ["OverBudgetError", "Parameter", "empty_array", "in_skeleton", "is_grad_enabled", "is_weightless",
           "no_grad", "skeleton"]


# --------------------------------------------------------------------------- gradient mode and forward passes


class _PassState:
    """Global bookkeeping: whether forward caches, how deep the calls are, which pass is running."""

    grad_enabled: bool = True
    depth: int = 0
    pass_id: int = 0
    skeleton_depth: int = 0  # > 0 inside skeleton(): parameters and buffers get no memory
    skeleton_budget: tuple[bool, ...] = ()  # per open skeleton(), innermost last: whether sizes are still checked
    weightless_made: bool = False  # whether any weightless array exists (the forward check is skipped until then)


_STATE = _PassState()


class no_grad:
    """Context manager: forward passes inside it cache nothing, so backward is unavailable (saves memory).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import ReLU, no_grad
    >>> relu = ReLU()
    >>> with no_grad():
    ...     y = relu(np.array([-1.0, 2.0]))
    >>> y
    array([0., 2.])
    """

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> no_grad:
        self._previous.append(_STATE.grad_enabled)
        _STATE.grad_enabled = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        _STATE.grad_enabled = self._previous.pop()


def is_grad_enabled() -> bool:
    """False inside :class:`no_grad`."""
    return _STATE.grad_enabled


# --------------------------------------------------------------------------- models without weights


class skeleton:
    """Context manager: models built inside it have every layer and parameter shape, but no weights.

    Each :class:`Parameter` and buffer created inside holds a read-only,
    zero-stride array of its shape and dtype (``np.broadcast_to`` of one zero:
    no memory), and the initialisers of :mod:`convlab.nn.init` skip the draw, so
    building VGG-16 takes milliseconds instead of seconds and 1.3 GB. Shapes,
    parameter counts, ``repr`` and the analysis are those of the real model;
    calling it raises a ValueError (it has no weights), until
    :meth:`Module.load_state_dict` gives every parameter real values.

    Nothing is allocated, so no size is refused: a model of any size has a
    skeleton. ``skeleton(check_budget=True)`` still refuses, as a real build
    would, every parameter or buffer larger than the memory budget: a dry run
    that says whether the real build fits, before it allocates anything (the zoo
    builds one before every model).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab import nn
    >>> with nn.skeleton():
    ...     fc = nn.Linear(25088, 4096)
    >>> fc.weight, fc.weight.data.strides, fc.num_parameters()
    (Parameter(shape=(4096, 25088), dtype=float32), (0, 0), 102764544)
    >>> nn.is_weightless(fc.weight)
    True
    >>> fc(np.zeros((1, 25088), np.float32))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Linear: this layer was built without weights (inside convlab.nn.skeleton()): its parameter ...
    """

    def __init__(self, *, check_budget: bool = False) -> None:
        self.check_budget = as_bool("skeleton", "check_budget", check_budget)

    def __enter__(self) -> skeleton:
        _STATE.skeleton_depth += 1
        _STATE.skeleton_budget += (self.check_budget,)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _STATE.skeleton_depth -= 1
        _STATE.skeleton_budget = _STATE.skeleton_budget[:-1]


def in_skeleton() -> bool:
    """Whether a :class:`skeleton` is open (parameters and buffers created now take no memory)."""
    return _STATE.skeleton_depth > 0


class _Weightless(np.ndarray):
    """The values of a parameter or buffer built inside :class:`skeleton`: read-only zeros with no memory.

    Views of it (``.T``, ``reshape``) stay weightless; copying keeps it weightless
    (it is immutable), and pickling stores only its shape and dtype.
    """

    def __reduce__(self):
        return _weightless, (self.shape, self.dtype)

    def __copy__(self) -> _Weightless:
        return self

    def __deepcopy__(self, memo: dict) -> _Weightless:
        return self


def _weightless(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A read-only zero-stride array of ``shape`` and ``dtype`` (``nbytes`` says the full size; none is used)."""
    _STATE.weightless_made = True
    return np.broadcast_to(np.zeros((), dtype=dtype), shape).view(_Weightless)


def is_weightless(value: object) -> bool:
    """Whether ``value`` (a :class:`Parameter` or an array) was built without weights, inside :class:`skeleton`."""
    return isinstance(value.data if isinstance(value, Parameter) else value, _Weightless)


# --------------------------------------------------------------------------- parameters


def _to_numpy(value: object) -> np.ndarray:
    """An ndarray from an ndarray, a torch tensor (duck-typed, torch is not imported) or a nested list."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class OverBudgetError(ValueError):
    """A parameter or buffer larger than the memory budget (a ValueError: what callers catch)."""


def empty_array(shape: Sequence[int], dtype: type | np.dtype | str = np.float32, *, owner: str = "empty_array",
                name: str = "array", kind: str = "buffer") -> np.ndarray:
    """The storage of a parameter or buffer: ``np.empty(shape, dtype)``, checked first; weightless inside a skeleton.

    The one place where layers allocate what they hold (:meth:`Parameter.empty`
    calls it; layers create their buffers with it before
    :meth:`Module.register_buffer`). Inside :class:`skeleton` nothing is
    allocated, so nothing is refused (unless ``skeleton(check_budget=True)``):
    the result is a zero-stride array of any size. Otherwise the size is checked against the memory budget of the ops
    (:func:`convlab.ops.get_memory_budget`, the largest single buffer) before
    anything is allocated, and a ValueError names ``owner``, the ``kind``
    (parameter or buffer) ``name``, its shape and the bytes it would need.

    >>> empty_array((2, 3), np.float64, owner="Example", name="table").shape
    (2, 3)
    >>> with skeleton():
    ...     empty_array((10**9, 10**9)).strides
    (0, 0)
    """
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{owner}: the shape of the {kind} `{name}` must be a sequence of ints, "
                        f"got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{owner}: the shape of the {kind} `{name}` (={dims}) must not have negative sizes")
    dtype = np.dtype(dtype)
    if _STATE.skeleton_depth and not _STATE.skeleton_budget[-1]:
        return _weightless(dims, dtype)  # no memory: no budget to respect
    nbytes = math.prod(dims) * dtype.itemsize
    budget = get_memory_budget()
    if nbytes > budget:
        raise OverBudgetError(
            f"{owner}: the {kind} `{name}` of shape {dims} and dtype {dtype} would need {nbytes:,} bytes "
            f"({nbytes / 2**30:.3g} GiB), more than the memory budget of {budget:,} bytes "
            f"(convlab.ops.set_memory_budget changes it); check the layer's sizes, or build the model inside "
            f"convlab.nn.skeleton() for its shapes and counts without memory"
        )
    if _STATE.skeleton_depth:
        return _weightless(dims, dtype)  # skeleton(check_budget=True): checked, then no memory
    return np.empty(dims, dtype=dtype)


class Parameter:
    """A trainable array: ``data``, its accumulated ``grad`` (None until a backward) and ``requires_grad``.

    Parameters
    ----------
    data : ndarray
        A floating-point array; it is used as given, not copied.
    requires_grad : bool
        False freezes the parameter: backward leaves its ``grad`` alone and
        ``num_parameters(trainable_only=True)`` skips it.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.zeros((2, 3), dtype=np.float32))
    >>> p
    Parameter(shape=(2, 3), dtype=float32)
    >>> p.grad is None
    True
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        array = _to_numpy(data)
        if array.dtype.kind not in "fc":
            raise TypeError(f"Parameter: data must have a floating-point dtype, got {array.dtype}")
        requires_grad = as_bool("Parameter", "requires_grad", requires_grad)
        if _STATE.skeleton_depth and not isinstance(array, _Weightless):
            array = _weightless(array.shape, array.dtype)  # inside skeleton(): the shape, no memory
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self.requires_grad: bool = requires_grad

    @classmethod
    def empty(cls, shape: Sequence[int], dtype: type | np.dtype | str = np.float32,
              requires_grad: bool = True, *, owner: str = "Parameter.empty", name: str = "parameter") -> Parameter:
        """A parameter of ``shape`` with uninitialised values (``np.empty``), or no memory inside :class:`skeleton`.

        For layers, which fill it with an initialiser right after. ``owner``
        (the layer's class name) and ``name`` (the attribute) name the parameter
        in the error raised when it would exceed the memory budget (see
        :func:`empty_array`).

        >>> Parameter.empty((64, 3, 7, 7))
        Parameter(shape=(64, 3, 7, 7), dtype=float32)
        >>> Parameter.empty((10**6, 10**6), owner="Linear", name="weight")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        convlab.nn.parameter.OverBudgetError: Linear: the parameter `weight` of shape (1000000, 1000000) and ...
        """
        requires_grad = as_bool(owner, "requires_grad", requires_grad)  # before anything is allocated
        return cls(empty_array(shape, dtype, owner=owner, name=name, kind="parameter"), requires_grad)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.data, dtype=dtype)

    def __repr__(self) -> str:
        frozen = ", requires_grad=False" if not self.requires_grad else ""
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"

    def accumulate_grad(self, grad: np.ndarray | None) -> None:
        """Add ``grad`` to ``self.grad`` (no-op when frozen or when ``grad`` is None)."""
        if grad is None or not self.requires_grad:
            return
        grad = np.asarray(grad, dtype=self.data.dtype)
        if grad.shape != self.data.shape:
            raise ValueError(f"Parameter.accumulate_grad: gradient shape {grad.shape} != parameter shape {self.shape}")
        self.grad = grad.copy() if self.grad is None else self.grad + grad
