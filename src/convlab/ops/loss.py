"""Losses and (log-)softmax, forward and vjp: ``cross_entropy``, ``nll_loss``, ``mse_loss``, ``(log_)softmax``.

The one implementation of the losses: :mod:`convlab.functional` exports these
functions under torch's names, and the modules of :mod:`convlab.nn.loss`
(``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``) check their settings once at
construction and call the same code (the private ``_cross_entropy`` ... with
their own name in the messages).

The formulas are torch's (the documentation of ``torch.nn.functional.cross_entropy``,
``nll_loss`` and ``mse_loss``, and ``aten/src/ATen/native/LossNLL.cpp`` for the
label-smoothing and probability-target paths):

* NLL, class index ``y_n``, weight ``w`` (ones by default), ignored targets
  contribute nothing: ``l_n = -w[y_n] * x[n, y_n]``; ``'mean'`` divides the sum
  by ``sum_n w[y_n]`` over the targets that are not ``ignore_index`` (so a batch
  where every target is ignored gives nan, like torch).
* Cross entropy = NLL of ``log_softmax(logits)`` over the class dimension (1, or
  0 for an unbatched ``(C,)`` input), computed stably: ``z - max - log(sum(exp(z -
  max)))``. With ``label_smoothing = e`` and ``C`` classes it is ``(1 - e) * NLL +
  (e / C) * S`` where ``S_n = -sum_c w[c] * log p[n, c]`` (0 for ignored targets)
  is reduced like the NLL term (the same denominator for ``'mean'``).
* Probability targets ``t`` (the logits' shape, floating point): ``t <- t * (1 - e) + e / C``,
  ``l_n = -sum_c w[c] * t[n, c] * log p[n, c]``; ``'mean'`` divides by the number
  of samples (``N * d1 * ...``, not by the weights); ``ignore_index`` is not used.
* MSE: ``(x - t)**2``, mean or sum over all elements.

Gradients (each vjp returns :class:`LossGrads`, the gradients of the arguments torch
differentiates): with ``dlogp`` the gradient with respect to ``log p``, the
gradient with respect to the logits is ``dlogp - p * sum_c dlogp`` (the backward
of log-softmax, as torch computes it); a probability target gets ``-(1 - e) * w[c]
* log p[n, c]`` times the sample's factor; MSE gives ``2 (x - t) g`` (divided by
the number of elements for ``'mean'``, torch's ``mse_loss_backward``) to the input
and its negative to the target. Class-index targets have no gradient (None).

NaN or inf in the logits are not refused: they give a nan loss, as in torch;
NaN in the settings (``weight``, ``label_smoothing``) is refused.

Differences from torch, deliberate: ``mse_loss`` refuses a target whose shape
differs from the input's, where torch broadcasts the two with a warning that the
result is likely wrong; ``log_softmax``/``softmax`` need ``dim`` (torch's implicit
choice is deprecated) and have no ``dtype`` argument.

Examples
--------
>>> import numpy as np
>>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> round(float(cross_entropy(logits, np.array([0, 2]))), 6)
0.669079
>>> cross_entropy_vjp(1.0, logits, np.array([0, 2])).input.round(4)
array([[-0.1065,  0.0533,  0.0533],
       [ 0.1667,  0.1667, -0.3333]])
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ._checks import as_array

__all__ = [
    "LossGrads",
    "cross_entropy",
    "cross_entropy_vjp",
    "log_softmax",
    "log_softmax_vjp",
    "mse_loss",
    "mse_loss_vjp",
    "nll_loss",
    "nll_loss_vjp",
    "softmax",
    "softmax_vjp",
]

REDUCTIONS = ("none", "mean", "sum")


class LossGrads(NamedTuple):
    """Gradients of a loss: with respect to the input, and to the target (None for class indices)."""

    input: np.ndarray
    target: np.ndarray | None


# --------------------------------------------------------------------------- settings (checked once)


def check_reduction(owner: str, reduction: object) -> str:
    """``reduction`` is one of 'none', 'mean', 'sum'."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: `reduction` (={reduction!r}) must be one of 'none', 'mean', 'sum'")
    return reduction


def check_ignore_index(owner: str, ignore_index: object) -> int:
    """``ignore_index`` is an integer (not a bool)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"{owner}: `ignore_index` (={ignore_index!r}) must be an integer")
    return int(ignore_index)


def check_label_smoothing(owner: str, label_smoothing: object) -> float:
    """``label_smoothing`` is a real number in [0, 1] (not a bool, not nan)."""
    if (isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real)
            or not 0.0 <= float(label_smoothing) <= 1.0):
        raise ValueError(f"{owner}: `label_smoothing` (={label_smoothing!r}) must be a number in [0, 1]")
    return float(label_smoothing)


def check_weight(owner: str, weight: object) -> np.ndarray | None:
    """``weight`` is None or a finite 1-d real array (one entry per class), returned as float64."""
    if weight is None:
        return None
    w = as_array(owner, "weight", weight)
    if w.dtype.kind not in "iuf" or w.ndim != 1:
        raise ValueError(f"{owner}: `weight` must be a 1-d array of real numbers (one per class), "
                         f"got shape {w.shape} and dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{owner}: `weight` must be finite, got {w.tolist()!r}")
    return w


# --------------------------------------------------------------------------- shared pieces


def _float_input(owner: str, input: object, what: str = "(C,) or (N, C, d1, ...)") -> np.ndarray:
    x = as_array(owner, "input", input)
    if x.dtype.kind != "f":
        raise ValueError(f"{owner}: the input must have a floating-point dtype, got {x.dtype}")
    if x.ndim == 0 and what:
        raise ValueError(f"{owner}: the input must be {what}, got a 0-d array")
    return x


def _grad_scale(owner: str, reduction: str, grad_output: object, loss_shape: tuple[int, ...],
                dtype: np.dtype, denominator: np.ndarray | float | None) -> np.ndarray:
    """The factor each sample's loss is multiplied by in d(result): g/den (mean), g (sum), g_n (none)."""
    g = as_array(owner, "grad_output", grad_output)
    if reduction == "none":
        try:
            g = np.broadcast_to(g, loss_shape)
        except ValueError:
            raise ValueError(f"{owner}: `grad_output` must have the loss's shape {loss_shape} (or be a "
                             f"scalar), got shape {g.shape}") from None
        return g.astype(dtype, copy=False)
    if g.size != 1:
        raise ValueError(f"{owner}: `grad_output` must be a scalar for reduction={reduction!r}, "
                         f"got shape {g.shape}")
    g = np.asarray(g.reshape(()), dtype=dtype)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(g / denominator, dtype=dtype)
    return g


def _reduce(values: np.ndarray, reduction: str, denominator: np.ndarray | float) -> np.ndarray:
    if reduction == "none":
        return np.asarray(values)
    total = values.sum(dtype=values.dtype)
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(total / denominator, dtype=values.dtype)


def _class_dim(x: np.ndarray) -> int:
    return 0 if x.ndim == 1 else 1


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """``log p`` along ``axis``, stable: ``z - max - log(sum(exp(z - max)))`` (inf/nan give nan, as in torch)."""
    if x.size == 0:
        return x.copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax_backward(dlogp: np.ndarray, logp: np.ndarray, axis: int) -> np.ndarray:
    """The backward of log-softmax, as torch computes it: ``dz = dlogp - p * sum_c dlogp``."""
    with np.errstate(invalid="ignore", over="ignore"):
        return dlogp - np.exp(logp) * dlogp.sum(axis=axis, keepdims=True)


class _IndexTargets:
    """Class-index targets checked against the input: the index array (ignored -> 0), the mask, the weights."""

    def __init__(self, owner: str, x: np.ndarray, t: np.ndarray, weight: np.ndarray | None,
                 ignore_index: int) -> None:
        class_dim = _class_dim(x)
        classes = x.shape[class_dim]
        expected = x.shape[:class_dim] + x.shape[class_dim + 1:]
        if t.dtype.kind not in "iu":
            raise ValueError(f"{owner}: class-index targets must have an integer dtype, got {t.dtype} "
                             f"(class probabilities must be floating point and have the input's shape {x.shape})")
        if t.shape != expected:
            raise ValueError(f"{owner}: the target's shape {t.shape} does not match the input's shape {x.shape}: "
                             f"class indices must have the shape {expected} (the input without its class "
                             f"dimension {class_dim})")
        _check_weight_length(owner, weight, classes)
        t = t.astype(np.int64, copy=False)
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= classes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{owner}: target value {int(t[where])} at index {where} is out of range for "
                             f"{classes} classes (0 to {classes - 1}, or ignore_index={ignore_index})")
        self.class_dim = class_dim
        self.classes = classes
        self.valid = valid
        self.index = np.where(valid, t, 0)
        w = np.ones(classes, dtype=x.dtype) if weight is None else weight.astype(x.dtype)
        self.weight = w
        self.target_weight = np.where(valid, w[self.index], x.dtype.type(0))  # w[y_n], 0 where ignored
        # 'mean' divides by the sum of the weights of the targets that count (their number without weights)
        self.denominator = (np.asarray(valid.sum(), dtype=x.dtype) if weight is None
                            else self.target_weight.sum(dtype=x.dtype))

    def pick(self, values: np.ndarray) -> np.ndarray:
        """``values[n, y_n, ...]`` (the class dimension removed)."""
        index = np.expand_dims(self.index, self.class_dim)
        return np.take_along_axis(values, index, axis=self.class_dim).squeeze(self.class_dim)

    def scatter(self, values: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An array of ``shape`` holding ``values[n]`` at ``[n, y_n, ...]`` and zeros elsewhere."""
        out = np.zeros(shape, dtype=dtype)
        np.put_along_axis(out, np.expand_dims(self.index, self.class_dim),
                          np.expand_dims(values, self.class_dim), axis=self.class_dim)
        return out

    def broadcast_weight(self, ndim: int) -> np.ndarray:
        return _class_shaped(self.weight, ndim, self.class_dim)


def _class_shaped(weight: np.ndarray, ndim: int, class_dim: int) -> np.ndarray:
    """A per-class vector reshaped to broadcast along ``class_dim`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return weight.reshape(shape)


def _check_weight_length(owner: str, weight: np.ndarray | None, classes: int) -> None:
    if weight is not None and weight.shape[0] != classes:
        raise ValueError(f"{owner}: `weight` has {weight.shape[0]} entries but the input has {classes} classes")


def _probability_targets(owner: str, x: np.ndarray, t: np.ndarray, weight: np.ndarray | None,
                         smoothing: float) -> tuple[np.ndarray, int]:
    """Probability targets, smoothed and weighted (torch: ``-(log p * target * weight)``), and the sample count."""
    if t.shape != x.shape:
        raise ValueError(f"{owner}: floating-point targets are class probabilities and must have the input's "
                         f"shape {x.shape}, got {t.shape} (class indices must have an integer dtype)")
    class_dim = _class_dim(x)
    classes = x.shape[class_dim]
    _check_weight_length(owner, weight, classes)
    t = t.astype(x.dtype, copy=False)
    if smoothing > 0.0:
        t = t * (1 - smoothing) + (smoothing / classes)
    if weight is not None:
        t = t * _class_shaped(weight.astype(x.dtype), x.ndim, class_dim)
    return t, x.size // classes if classes else 0


# --------------------------------------------------------------------------- the losses (settings checked)


def _nll_loss(owner: str, input: object, target: object, weight: np.ndarray | None, ignore_index: int,
              reduction: str) -> np.ndarray:
    x = _float_input(owner, input)
    targets = _IndexTargets(owner, x, as_array(owner, "target", target), weight, ignore_index)
    with np.errstate(invalid="ignore"):
        losses = np.where(targets.valid, -targets.target_weight * targets.pick(x), x.dtype.type(0))
    return _reduce(losses, reduction, targets.denominator)


def _nll_loss_vjp(owner: str, grad_output: object, input: object, target: object, weight: np.ndarray | None,
                  ignore_index: int, reduction: str) -> LossGrads:
    x = _float_input(owner, input)
    targets = _IndexTargets(owner, x, as_array(owner, "target", target), weight, ignore_index)
    scale = _grad_scale(owner, reduction, grad_output, targets.valid.shape, x.dtype, targets.denominator)
    with np.errstate(invalid="ignore"):
        picked = np.where(targets.valid, -targets.target_weight * scale, x.dtype.type(0))
    return LossGrads(targets.scatter(picked, x.shape, x.dtype), None)


def _cross_entropy(owner: str, input: object, target: object, weight: np.ndarray | None, ignore_index: int,
                   reduction: str, label_smoothing: float) -> np.ndarray:
    x = _float_input(owner, input)
    t = as_array(owner, "target", target)
    class_dim = _class_dim(x)
    if t.dtype.kind == "f":
        t, samples = _probability_targets(owner, x, t, weight, label_smoothing)
        logp = _log_softmax(x, class_dim)
        with np.errstate(invalid="ignore"):
            losses = -(logp * t).sum(axis=class_dim)
            return _reduce(losses, reduction, samples if samples else np.nan)
    targets = _IndexTargets(owner, x, t, weight, ignore_index)
    logp = _log_softmax(x, class_dim)
    with np.errstate(invalid="ignore"):
        nll = np.where(targets.valid, -targets.target_weight * targets.pick(logp), x.dtype.type(0))
        result = _reduce(nll, reduction, targets.denominator)
        if label_smoothing > 0.0:
            # torch: smooth_loss = -(log p * w).sum(class_dim), 0 where ignored, reduced like the NLL
            weighted = logp if weight is None else logp * targets.broadcast_weight(x.ndim)
            smooth = np.where(targets.valid, -weighted.sum(axis=class_dim), x.dtype.type(0))
            result = ((1 - label_smoothing) * result
                      + _reduce(smooth, reduction, targets.denominator) * (label_smoothing / targets.classes))
    return np.asarray(result, dtype=x.dtype)


def _cross_entropy_vjp(owner: str, grad_output: object, input: object, target: object,
                       weight: np.ndarray | None, ignore_index: int, reduction: str,
                       label_smoothing: float) -> LossGrads:
    x = _float_input(owner, input)
    t = as_array(owner, "target", target)
    class_dim = _class_dim(x)
    loss_shape = x.shape[:class_dim] + x.shape[class_dim + 1:]
    if t.dtype.kind == "f":
        smoothed, samples = _probability_targets(owner, x, t, weight, label_smoothing)
        scale = _grad_scale(owner, reduction, grad_output, loss_shape, x.dtype, samples if samples else np.nan)
        scale = np.expand_dims(scale, class_dim) if reduction == "none" else scale
        logp = _log_softmax(x, class_dim)
        with np.errstate(invalid="ignore"):
            grad_input = _log_softmax_backward(-smoothed * scale, logp, class_dim)
            # d/dt of -(w t' log p) with t' = (1 - e) t + e / C
            factor = -(1 - label_smoothing) * scale
            if weight is not None:
                factor = factor * _class_shaped(weight.astype(x.dtype), x.ndim, class_dim)
            grad_target = (factor * logp).astype(x.dtype, copy=False)
        return LossGrads(grad_input.astype(x.dtype, copy=False), grad_target)
    targets = _IndexTargets(owner, x, t, weight, ignore_index)
    scale = _grad_scale(owner, reduction, grad_output, loss_shape, x.dtype, targets.denominator)
    scale = np.where(targets.valid, scale, x.dtype.type(0))  # ignored targets get no gradient
    logp = _log_softmax(x, class_dim)
    with np.errstate(invalid="ignore"):
        picked = -(1 - label_smoothing) * targets.target_weight * scale if label_smoothing > 0 else \
            -targets.target_weight * scale
        dlogp = targets.scatter(picked, x.shape, x.dtype)
        if label_smoothing > 0.0:
            dlogp -= (np.expand_dims(scale, class_dim) * (label_smoothing / targets.classes)
                      * targets.broadcast_weight(x.ndim))
    return LossGrads(_log_softmax_backward(dlogp, logp, class_dim).astype(x.dtype, copy=False), None)


def _mse_difference(owner: str, input: object, target: object) -> np.ndarray:
    x = _float_input(owner, input, what="")
    t = as_array(owner, "target", target)
    if t.dtype.kind not in "iuf":
        raise ValueError(f"{owner}: the target must hold real numbers, got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{owner}: the target's shape {t.shape} must equal the input's shape {x.shape} "
                         f"(torch broadcasts them with a warning that the result is likely wrong; convlab refuses)")
    return np.asarray(x - t.astype(x.dtype, copy=False))


def _mse_loss(owner: str, input: object, target: object, reduction: str) -> np.ndarray:
    difference = _mse_difference(owner, input, target)
    return _reduce(difference * difference, reduction, difference.size if difference.size else np.nan)


def _mse_loss_vjp(owner: str, grad_output: object, input: object, target: object, reduction: str) -> LossGrads:
    difference = _mse_difference(owner, input, target)
    dtype = difference.dtype
    g = _grad_scale(owner, reduction, grad_output, difference.shape, dtype, 1.0)
    # torch's mse_loss_backward: norm * (input - target) * grad_output, norm = 2 / numel for 'mean';
    # the target's gradient is its negative
    norm = 2.0 / difference.size if reduction == "mean" and difference.size else 2.0
    grad_input = np.asarray(dtype.type(norm) * difference * g, dtype=dtype)
    return LossGrads(grad_input, -grad_input)


# --------------------------------------------------------------------------- the public functions


def nll_loss(input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> np.ndarray:
    """Negative log-likelihood of log-probabilities: ``l_n = -weight[y_n] * input[n, y_n]`` (torch's ``nll_loss``).

    Parameters
    ----------
    input : array (C,), (N, C) or (N, C, d1, ...), floating point
        Log-probabilities.
    target : integer array (), (N,) or (N, d1, ...)
        Class indices in ``[0, C)``, or ``ignore_index``.
    weight : array of shape (C,), optional
        A weight per class (ones by default).
    ignore_index : int
        Targets equal to it contribute nothing (nor to the mean's denominator).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by the sum of ``weight[y_n]`` over the targets that count.

    Shape
    -----
    output ``()`` or, for ``'none'``, the target's shape; in the input's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> logp = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> round(float(nll_loss(logp, np.array([0, 1]), weight=np.array([1.0, 2.0]))), 6)
    0.422837
    """
    owner = "nll_loss"
    return _nll_loss(owner, input, target, check_weight(owner, weight), check_ignore_index(owner, ignore_index),
                     check_reduction(owner, reduction))


def nll_loss_vjp(grad_output: np.ndarray | float, input: np.ndarray, target: np.ndarray,
                 weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean") -> LossGrads:
    """Gradients of :func:`nll_loss`: ``input`` gets ``-weight[y_n] * g_n`` at ``[n, y_n]``; ``target`` None.

    ``grad_output`` has the loss's shape (a scalar for ``'mean'``/``'sum'``).

    Examples
    --------
    >>> import numpy as np
    >>> nll_loss_vjp(1.0, np.zeros((2, 3)), np.array([0, 2])).input
    array([[-0.5,  0. ,  0. ],
           [ 0. ,  0. , -0.5]])
    """
    owner = "nll_loss_vjp"
    return _nll_loss_vjp(owner, grad_output, input, target, check_weight(owner, weight),
                         check_ignore_index(owner, ignore_index), check_reduction(owner, reduction))


def cross_entropy(input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> np.ndarray:
    """Cross entropy of logits against class indices or class probabilities (torch's ``cross_entropy``).

    ``log_softmax`` over the class dimension, then the NLL (integer class indices)
    or ``-sum_c w_c t_c log p_c`` (floating-point probabilities), with label
    smoothing ``e``: ``(1 - e) * NLL + (e / C) * sum_c -w_c log p_c`` for indices,
    ``t <- (1 - e) t + e / C`` for probabilities.

    Parameters
    ----------
    input : array (C,), (N, C) or (N, C, d1, ...), floating point
        Unnormalised logits.
    target : array
        Integer class indices of the input's shape without the class dimension, or
        floating-point class probabilities of the input's shape.
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
    output ``()`` or, for ``'none'``, ``(N, d1, ...)``; in the input's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> logits = np.array([[1.0, 2.0, 3.0]])
    >>> smoothed = cross_entropy(logits, np.array([2]), label_smoothing=0.3)
    >>> soft = cross_entropy(logits, np.array([[0.1, 0.1, 0.8]]))  # the same target, as probabilities
    >>> bool(np.isclose(smoothed, soft))
    True
    """
    owner = "cross_entropy"
    return _cross_entropy(owner, input, target, check_weight(owner, weight), check_ignore_index(owner, ignore_index),
                          check_reduction(owner, reduction), check_label_smoothing(owner, label_smoothing))


def cross_entropy_vjp(grad_output: np.ndarray | float, input: np.ndarray, target: np.ndarray,
                      weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean",
                      label_smoothing: float = 0.0) -> LossGrads:
    """Gradients of :func:`cross_entropy`: the input's, and a probability target's (None for class indices).

    ``grad_output`` has the loss's shape (a scalar for ``'mean'``/``'sum'``).

    Examples
    --------
    >>> import numpy as np
    >>> grads = cross_entropy_vjp(1.0, np.zeros((1, 2)), np.array([[0.25, 0.75]]))
    >>> grads.input
    array([[ 0.25, -0.25]])
    >>> grads.target.round(4)  # -log p = log 2
    array([[0.6931, 0.6931]])
    """
    owner = "cross_entropy_vjp"
    return _cross_entropy_vjp(owner, grad_output, input, target, check_weight(owner, weight),
                              check_ignore_index(owner, ignore_index), check_reduction(owner, reduction),
                              check_label_smoothing(owner, label_smoothing))


def mse_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """Mean squared error ``(input - target)**2``, reduced by mean (over all elements), sum or none.

    The target must have the input's shape: torch broadcasts a different shape with
    a warning that the result is likely wrong; convlab refuses it.

    Examples
    --------
    >>> import numpy as np
    >>> mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    array(2.5)
    """
    owner = "mse_loss"
    return _mse_loss(owner, input, target, check_reduction(owner, reduction))


def mse_loss_vjp(grad_output: np.ndarray | float, input: np.ndarray, target: np.ndarray,
                 reduction: str = "mean") -> LossGrads:
    """Gradients of :func:`mse_loss`: ``2 (input - target) g`` (``/ numel`` for ``'mean'``) and its negative.

    Examples
    --------
    >>> import numpy as np
    >>> mse_loss_vjp(1.0, np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    LossGrads(input=array([1., 2.]), target=array([-1., -2.]))
    """
    owner = "mse_loss_vjp"
    return _mse_loss_vjp(owner, grad_output, input, target, check_reduction(owner, reduction))


def _dim(owner: str, x: np.ndarray, dim: object) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{owner}: `dim` must be an integer, got {dim!r}")
    rank = max(x.ndim, 1)  # torch: a 0-d tensor takes dim 0 or -1
    if not -rank <= dim < rank:
        raise ValueError(f"{owner}: `dim` (={dim}) is out of range for an input of shape {x.shape}")
    return int(dim) % rank


def log_softmax(input: np.ndarray, dim: int) -> np.ndarray:
    """``log(softmax(input, dim))``, computed stably: ``x - max - log(sum(exp(x - max)))`` (torch's ``log_softmax``).

    Examples
    --------
    >>> import numpy as np
    >>> np.exp(log_softmax(np.array([0.0, np.log(3.0)]), dim=0))
    array([0.25, 0.75])
    """
    owner = "log_softmax"
    x = _float_input(owner, input, what="")
    axis = _dim(owner, x, dim)
    return _log_softmax(x, axis) if x.ndim else np.zeros_like(x)


def log_softmax_vjp(grad_output: np.ndarray, input: np.ndarray, dim: int) -> np.ndarray:
    """Gradient of :func:`log_softmax` with respect to its input: ``g - softmax(x) * sum(g, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> log_softmax_vjp(np.array([1.0, 0.0]), np.array([0.0, 0.0]), dim=0)
    array([ 0.5, -0.5])
    """
    owner = "log_softmax_vjp"
    x = _float_input(owner, input, what="")
    axis = _dim(owner, x, dim)
    g = _same_shape_grad(owner, grad_output, x)
    if x.ndim == 0:
        return np.zeros_like(x)
    return _log_softmax_backward(g, _log_softmax(x, axis), axis).astype(x.dtype, copy=False)


def softmax(input: np.ndarray, dim: int) -> np.ndarray:
    """``exp(x) / sum(exp(x), dim)``, computed as ``exp(x - max)`` normalised (torch's ``softmax``).

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[0.0, np.log(3.0)]]), dim=1)
    array([[0.25, 0.75]])
    """
    owner = "softmax"
    x = _float_input(owner, input, what="")
    axis = _dim(owner, x, dim)
    if x.ndim == 0:
        return np.ones_like(x)
    if x.size == 0:
        return x.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)


def softmax_vjp(grad_output: np.ndarray, input: np.ndarray, dim: int) -> np.ndarray:
    """Gradient of :func:`softmax` with respect to its input: ``y * (g - sum(g * y, dim))``, ``y = softmax(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> softmax_vjp(np.array([1.0, 0.0]), np.array([0.0, 0.0]), dim=0)
    array([ 0.25, -0.25])
    """
    owner = "softmax_vjp"
    y = softmax(input, dim)
    g = _same_shape_grad(owner, grad_output, y)
    if y.ndim == 0:
        return np.zeros_like(y)
    return softmax_backward(g, y, _dim(owner, y, dim))


def softmax_backward(grad_output: np.ndarray, output: np.ndarray, axis: int) -> np.ndarray:
    """``y * (g - sum(g * y, axis))`` from the softmax's output ``y`` (checked arrays; the layer keeps ``y``)."""
    with np.errstate(invalid="ignore"):
        return (output * (grad_output - (grad_output * output).sum(axis=axis, keepdims=True))).astype(
            output.dtype, copy=False)


def _same_shape_grad(owner: str, grad_output: object, x: np.ndarray) -> np.ndarray:
    g = as_array(owner, "grad_output", grad_output)
    if g.shape != x.shape:
        raise ValueError(f"{owner}: `grad_output` must have the input's shape {x.shape}, got {g.shape}")
    return g.astype(x.dtype, copy=False)
