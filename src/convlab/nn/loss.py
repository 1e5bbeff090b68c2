"""Losses: ``CrossEntropyLoss``, ``NLLLoss`` and ``MSELoss``, modules with torch's names, arguments and numbers.

``loss = loss_fn(logits, target)`` returns the loss (a 0-d array for the
reductions ``'mean'`` and ``'sum'``, an array of the target's shape for
``'none'``) in the logits' dtype, and caches what the gradient needs;
``loss_fn.backward(grad_output=1.0)`` returns d loss / d logits, with the
logits' shape and dtype, which ``model.backward(...)`` takes.

The mathematics (torch's formulas, forward and gradient) lives once, in the
engine: :mod:`convlab.ops.loss` (``convlab.functional.cross_entropy``,
``nll_loss``, ``mse_loss`` and their vjps). A module checks its settings
(``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``) once, at
construction; each call checks the input and the target and calls the op,
and ``backward`` calls the op's vjp on the cached input and target.

NaN or inf in the logits are not refused: they give a nan loss, as in torch
(the training loop stops on it); NaN in the settings is refused.

Examples
--------
>>> import numpy as np
>>> from convlab.nn import CrossEntropyLoss
>>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> loss_fn = CrossEntropyLoss()
>>> loss = loss_fn(logits, np.array([0, 2]))
>>> round(float(loss), 6)
0.669079
>>> loss_fn.backward().round(4)
array([[-0.1065,  0.0533,  0.0533],
       [ 0.1667,  0.1667, -0.3333]])
"""

from __future__ import annotations

import numpy as np

from ..ops.loss import (
    _cross_entropy,
    _cross_entropy_vjp,
    _mse_loss,
    _mse_loss_vjp,
    _nll_loss,
    _nll_loss_vjp,
    check_ignore_index,
    check_label_smoothing,
    check_reduction,
    check_weight,
)
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "NLLLoss"]


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities: ``l_n = -weight[y_n] * input[n, y_n]``.

    Parameters
    ----------
    weight : array of shape (C,), optional
        A weight per class (ones by default).
    ignore_index : int
        Targets equal to it contribute nothing (nor to the mean's denominator).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by the sum of ``weight[y_n]`` over the targets that count.

    Shape
    -----
    input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; target (integer class indices)
    ``(N,)``, ``()`` or ``(N, d1, ...)``; output ``()`` or, for ``'none'``, the target's shape.

    Examples
    --------
    >>> import numpy as np
    >>> loss_fn = NLLLoss(weight=np.array([1.0, 2.0]))
    >>> round(float(loss_fn(np.log(np.array([[0.5, 0.5], [0.25, 0.75]])), np.array([0, 1]))), 6)
    0.422837
    """

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        owner = type(self).__name__
        self.reduction = check_reduction(owner, reduction)
        self.ignore_index = check_ignore_index(owner, ignore_index)
        self.register_buffer("weight", check_weight(owner, weight))

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        loss = _nll_loss(type(self).__name__, input, target, self.weight, self.ignore_index, self.reduction)
        self._save(input, target)
        return loss

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        input, target = self._saved()
        return _nll_loss_vjp(f"{type(self).__name__}.backward", grad_output, input, target, self.weight,
                             self.ignore_index, self.reduction).input

    def extra_repr(self) -> str:
        return _repr_settings(self, ignore_index=-100, reduction="mean")


class CrossEntropyLoss(Module):
    """Cross entropy of logits against class indices or class probabilities, with torch's options.

    ``log_softmax`` over the class dimension (1, or 0 for an unbatched ``(C,)``
    input), then the NLL (class indices) or ``-sum_c w_c t_c log p_c``
    (probabilities), with label smoothing ``e``: ``(1 - e) * NLL + (e / C) *
    sum_c -w_c log p_c`` for indices, ``t <- (1 - e) t + e / C`` for probabilities
    (torch's documentation of ``CrossEntropyLoss``).

    Parameters
    ----------
    weight : array of shape (C,), optional
        A weight per class.
    ignore_index : int
        Class-index targets equal to it contribute nothing (not used with probabilities).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'``: for indices, divided by the sum of the target weights that count;
        for probabilities, by the number of samples.
    label_smoothing : float in [0, 1]

    Shape
    -----
    input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; target: integer indices of the
    input's shape without the class dimension, or float probabilities of the input's
    shape; output ``()`` or, for ``'none'``, ``(N, d1, ...)``.

    Examples
    --------
    >>> import numpy as np
    >>> logits = np.array([[1.0, 2.0, 3.0]])
    >>> smoothed = CrossEntropyLoss(label_smoothing=0.3)(logits, np.array([2]))
    >>> soft = CrossEntropyLoss()(logits, np.array([[0.1, 0.1, 0.8]]))  # the same target, as probabilities
    >>> bool(np.isclose(smoothed, soft))
    True
    """

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        owner = type(self).__name__
        self.reduction = check_reduction(owner, reduction)
        self.ignore_index = check_ignore_index(owner, ignore_index)
        self.label_smoothing = check_label_smoothing(owner, label_smoothing)
        self.register_buffer("weight", check_weight(owner, weight))

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        loss = _cross_entropy(type(self).__name__, input, target, self.weight, self.ignore_index, self.reduction,
                              self.label_smoothing)
        self._save(input, target)
        return loss

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        input, target = self._saved()
        return _cross_entropy_vjp(f"{type(self).__name__}.backward", grad_output, input, target, self.weight,
                                  self.ignore_index, self.reduction, self.label_smoothing).input

    def extra_repr(self) -> str:
        return _repr_settings(self, ignore_index=-100, reduction="mean", label_smoothing=0.0)


class MSELoss(Module):
    """Mean squared error ``(input - target)**2``, reduced by mean (over all elements), sum or none.

    The target must have the input's shape (torch broadcasts with a warning; here a
    different shape is refused, since it is almost always a mistake).

    Examples
    --------
    >>> import numpy as np
    >>> loss_fn = MSELoss()
    >>> loss_fn(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    array(2.5)
    >>> loss_fn.backward()
    array([1., 2.])
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(type(self).__name__, reduction)

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        loss = _mse_loss(type(self).__name__, input, target, self.reduction)
        self._save(input, target)
        return loss

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        input, target = self._saved()
        return _mse_loss_vjp(f"{type(self).__name__}.backward", grad_output, input, target, self.reduction).input

    def extra_repr(self) -> str:
        return _repr_settings(self, reduction="mean")


def _repr_settings(loss: Module, **defaults: object) -> str:
    parts = [f"{name}={getattr(loss, name)!r}" for name, default in defaults.items() if getattr(loss, name) != default]
    if getattr(loss, "weight", None) is not None:
        parts.insert(0, f"weight=array(shape={loss.weight.shape})")
    return ", ".join(parts)
