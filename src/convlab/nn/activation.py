"""Elementwise activations and Softmax, forward and backward.

They have no state, so one instance may be used several times in a forward
pass (``_reusable``), as torchvision's ResNet blocks do with their ``relu``.
``inplace=True`` is accepted so that torch code ports unchanged; the result is
computed out of place all the same (the input is never modified).
"""

from __future__ import annotations

import numpy as np

from ..ops.loss import softmax, softmax_backward
from ._checks import as_bool, as_int, check_grad, float_input
from .module import Module

__all__ = ["Hardswish", "ReLU", "ReLU6", "Sigmoid", "Softmax", "Tanh"]


class _Activation(Module):
    _reusable = True

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = as_bool(type(self).__name__, "inplace", inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Activation):
    """``max(x, 0)``; the gradient is 1 where ``x > 0`` and 0 elsewhere (0 at ``x = 0``, as torch).

    Examples
    --------
    >>> import numpy as np
    >>> relu = ReLU()
    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    >>> relu.backward(np.ones(3))
    array([0., 0., 1.])
    """

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        positive = x > 0
        self._save(positive, x.dtype)
        return np.where(positive, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        positive, dtype = self._saved()
        g = check_grad(type(self).__name__, grad_output, positive.shape, dtype)
        return np.where(positive, g, 0).astype(g.dtype, copy=False)


class ReLU6(_Activation):
    """``min(max(x, 0), 6)``; gradient 1 on ``0 < x < 6`` and 0 elsewhere, the ends included (torch's hardtanh rule)."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        inside = (x > 0) & (x < 6)
        self._save(inside, x.dtype)
        return np.clip(x, 0, 6).astype(x.dtype, copy=False)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        inside, dtype = self._saved()
        g = check_grad(type(self).__name__, grad_output, inside.shape, dtype)
        return np.where(inside, g, 0).astype(g.dtype, copy=False)


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``; ``dy/dx = y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> Sigmoid()(np.array([0.0]))
    array([0.5])
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        if x.dtype in (np.float32, np.float64):
            # torch's formula, 1 / (1 + exp(-x)), as four in-place passes of NumPy's vectorised ufuncs (3x faster
            # than scipy.special.expit's scalar loop on float32). exp(-x) overflows to inf for x < -88 (float32),
            # which gives exactly 0 as 1 / inf; x = +-inf gives 1 and 0, NaN stays NaN.
            y = np.negative(x)
            with np.errstate(over="ignore"):
                np.exp(y, out=y)
            np.add(y, 1, out=y)
            np.reciprocal(y, out=y)
        else:  # float16 and the like: stable for large |x| (exp of -|x| only)
            e = np.exp(-np.abs(x))
            y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        self._save(y)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (y,) = self._saved()
        g = check_grad(type(self).__name__, grad_output, y.shape, y.dtype)
        # torch's sigmoid_backward, in its order: grad * (1 - y) * y (aten/src/ATen/native/cpu/BinaryOpsKernel.cpp)
        grad = np.subtract(1, y, dtype=y.dtype)
        grad *= g
        grad *= y
        return grad


class Tanh(_Activation):
    """``tanh(x)``; ``dy/dx = 1 - y^2``."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        y = np.tanh(x)
        self._save(y)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (y,) = self._saved()
        g = check_grad(type(self).__name__, grad_output, y.shape, y.dtype)
        return g * (1 - y * y)


class Hardswish(_Activation):
    """``x * relu6(x + 3) / 6`` (Howard et al., MobileNetV3, arXiv:1905.02244).

    Gradient as torch (2.x): 0 for ``x <= -3``, ``x/3 + 1/2`` for ``-3 < x < 3``, 1 for ``x >= 3``
    (at the kinks, the one-sided derivative of the flat side).
    """

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        self._save(x)
        return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        g = check_grad(type(self).__name__, grad_output, x.shape, x.dtype)
        slope = np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0))
        return (g * slope).astype(x.dtype, copy=False)


def _softmax_dim(ndim: int) -> int:
    # torch's legacy rule for dim=None (deprecated there): 0 for 0-, 1- and 3-d input, else 1.
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(_Activation):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``; ``dx = y * (g - sum(g * y, dim))``.

    ``dim=None`` follows torch's legacy rule (0 for 0-, 1- and 3-d input, else 1); give ``dim``.

    Examples
    --------
    >>> import numpy as np
    >>> Softmax(dim=1)(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = None if dim is None else as_int(type(self).__name__, "dim", dim)

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        dim = _softmax_dim(x.ndim) if self.dim is None else self.dim
        if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
            raise ValueError(f"{layer}: dim (={dim}) is out of range for an input of shape {x.shape}")
        y = softmax(x, dim)
        self._save(y, dim if x.ndim else None)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        y, dim = self._saved()
        g = check_grad(type(self).__name__, grad_output, y.shape, y.dtype)
        if dim is None:
            return np.zeros_like(g)
        return softmax_backward(g, y, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
