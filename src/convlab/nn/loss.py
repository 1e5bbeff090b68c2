"""Losses: ``CrossEntropyLoss``, ``NLLLoss`` and ``MSELoss``, modules with torch's names, arguments and numbers.

``loss = loss_fn(logits, target)`` returns the loss (a 0-d array for the
reductions ``'mean'`` and ``'sum'``, an array of the target's shape for
``'none'``) in the logits' dtype, and caches what the gradient needs;
``loss_fn.backward(grad_output=1.0)`` returns d loss / d logits, with the
logits' shape and dtype, which ``model.backward(...)`` takes.

The formulas are torch's (the documentation of ``torch.nn.CrossEntropyLoss``,
``NLLLoss`` and ``MSELoss``, and ``aten/src/ATen/native/LossNLL.cpp`` for the
label-smoothing and probability-target paths):

* NLL, class index ``y_n``, weight ``w`` (ones by default), ignored targets
  contribute nothing: ``l_n = -w[y_n] * x[n, y_n]``; ``'mean'`` divides the sum
  by ``sum_n w[y_n]`` over the targets that are not ``ignore_index`` (so a batch
  where every target is ignored gives nan, like torch).
* Cross entropy = NLL of ``log_softmax(logits)`` (computed stably: ``z - max -
  log(sum(exp(z - max)))``). With ``label_smoothing = e`` and ``C`` classes it is
  ``(1 - e) * NLL + (e / C) * S`` where ``S_n = -sum_c w[c] * log p[n, c]`` (0 for
  ignored targets) is reduced like the NLL term (the same denominator for
  ``'mean'``).
* Probability targets ``t`` (the logits' shape): ``t <- t * (1 - e) + e / C``,
  ``l_n = -sum_c w[c] * t[n, c] * log p[n, c]``; ``'mean'`` divides by the number
  of samples (``N * d1 * ...``, not by the weights).
* MSE: ``(x - t)**2``, mean or sum over all elements.

Gradients: with ``dlogp`` the gradient with respect to ``log p``, the gradient
with respect to the logits is ``dlogp - p * sum_c dlogp`` (the backward of
log-softmax, as torch computes it).

NaN or inf in the logits are not refused: they give a nan loss, as in torch
(the training loop stops on it); NaN in the arguments (``weight``,
``label_smoothing``) is refused.

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

import math
import numbers

import numpy as np

from ..ops._checks import as_array
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "NLLLoss"]

REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(owner: str, reduction: object) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: `reduction` (={reduction!r}) must be one of 'none', 'mean', 'sum'")
    return reduction


def _check_ignore_index(owner: str, ignore_index: object) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"{owner}: `ignore_index` (={ignore_index!r}) must be an integer")
    return int(ignore_index)


def _check_weight(owner: str, weight: object) -> np.ndarray | None:
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


def _float_logits(owner: str, input: object) -> np.ndarray:
    x = as_array(owner, "input", input)
    if x.dtype.kind != "f":
        raise ValueError(f"{owner}: the input must have a floating-point dtype, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{owner}: the input must be (C,) or (N, C, d1, ...), got a 0-d array")
    return x


def _grad_scale(owner: str, reduction: str, grad_output: object, loss_shape: tuple[int, ...],
                dtype: np.dtype, denominator: np.ndarray | float | None) -> np.ndarray:
    """The factor each sample's loss is multiplied by in d(result): g/den (mean), g (sum), g_n (none)."""
    g = as_array(f"{owner}.backward", "grad_output", grad_output)
    if reduction == "none":
        try:
            g = np.broadcast_to(g, loss_shape)
        except ValueError:
            raise ValueError(f"{owner}.backward: `grad_output` must have the loss's shape {loss_shape} (or be a "
                             f"scalar), got shape {g.shape}") from None
        return g.astype(dtype, copy=False)
    if g.size != 1:
        raise ValueError(f"{owner}.backward: `grad_output` must be a scalar for reduction={reduction!r}, "
                         f"got shape {g.shape}")
    g = np.asarray(g.reshape(()), dtype=dtype)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(g / denominator, dtype=dtype)
    return g


def _reduce(values: np.ndarray, reduction: str, denominator: np.ndarray | float) -> np.ndarray:
    if reduction == "none":
        return values
    total = values.sum(dtype=values.dtype)
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(total / denominator, dtype=values.dtype)


def _log_softmax(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(log p, p)`` along ``axis``, stable: ``z - max - log(sum(exp(z - max)))``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf/nan logits give nan, as in torch
        shifted = x - x.max(axis=axis, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return logp, np.exp(logp)


class _IndexTargets:
    """Class-index targets checked against the logits: the index array (ignored -> 0), the mask, the weights."""

    def __init__(self, owner: str, x: np.ndarray, target: object, weight: np.ndarray | None,
                 ignore_index: int) -> None:
        t = as_array(owner, "target", target)
        class_dim = 0 if x.ndim == 1 else 1
        classes = x.shape[class_dim]
        expected = x.shape[:class_dim] + x.shape[class_dim + 1:]
        if t.dtype.kind not in "iu":
            raise ValueError(f"{owner}: class-index targets must have an integer dtype, got {t.dtype} "
                             f"(class probabilities must be floating point and have the input's shape {x.shape})")
        if t.shape != expected:
            raise ValueError(f"{owner}: the target's shape {t.shape} does not match the input's shape {x.shape}: "
                             f"class indices must have the shape {expected} (the input without its class "
                             f"dimension {class_dim})")
        if weight is not None and weight.shape[0] != classes:
            raise ValueError(f"{owner}: `weight` has {weight.shape[0]} entries but the input has {classes} classes")
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
        shape = [1] * ndim
        shape[self.class_dim] = self.classes
        return self.weight.reshape(shape)


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
        self.reduction = _check_reduction(owner, reduction)
        self.ignore_index = _check_ignore_index(owner, ignore_index)
        self.register_buffer("weight", _check_weight(owner, weight))

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        owner = type(self).__name__
        x = _float_logits(owner, input)
        targets = _IndexTargets(owner, x, target, self.weight, self.ignore_index)
        picked = targets.pick(x)
        with np.errstate(invalid="ignore"):
            losses = np.where(targets.valid, -targets.target_weight * picked, x.dtype.type(0))
        self._save(x.shape, x.dtype, targets)
        return _reduce(losses, self.reduction, targets.denominator)

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        shape, dtype, targets = self._saved()
        scale = _grad_scale(type(self).__name__, self.reduction, grad_output, targets.valid.shape, dtype,
                            targets.denominator)
        with np.errstate(invalid="ignore"):
            picked_grad = np.where(targets.valid, -targets.target_weight * scale, dtype.type(0))
        return targets.scatter(picked_grad, shape, dtype)

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
        self.reduction = _check_reduction(owner, reduction)
        self.ignore_index = _check_ignore_index(owner, ignore_index)
        if (isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real)
                or not 0.0 <= float(label_smoothing) <= 1.0):
            raise ValueError(f"{owner}: `label_smoothing` (={label_smoothing!r}) must be a number in [0, 1]")
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", _check_weight(owner, weight))

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        owner = type(self).__name__
        x = _float_logits(owner, input)
        class_dim = 0 if x.ndim == 1 else 1
        classes = x.shape[class_dim]
        smoothing = self.label_smoothing
        logp, p = _log_softmax(x, class_dim)
        t = as_array(owner, "target", target)
        if t.dtype.kind == "f":
            return self._probabilities(owner, x, logp, p, t, class_dim, classes, smoothing)
        targets = _IndexTargets(owner, x, t, self.weight, self.ignore_index)
        with np.errstate(invalid="ignore"):
            nll = np.where(targets.valid, -targets.target_weight * targets.pick(logp), x.dtype.type(0))
            result = _reduce(nll, self.reduction, targets.denominator)
            if smoothing > 0.0:
                # torch: smooth_loss = -(log p * w).sum(class_dim), 0 where ignored, reduced like the NLL
                weighted = logp if self.weight is None else logp * targets.broadcast_weight(x.ndim)
                smooth = np.where(targets.valid, -weighted.sum(axis=class_dim), x.dtype.type(0))
                result = ((1 - smoothing) * result
                          + _reduce(smooth, self.reduction, targets.denominator) * (smoothing / classes))
        self._save("index", x.dtype, p, targets, smoothing)
        return np.asarray(result, dtype=x.dtype)

    def _probabilities(self, owner: str, x: np.ndarray, logp: np.ndarray, p: np.ndarray, t: np.ndarray,
                       class_dim: int, classes: int, smoothing: float) -> np.ndarray:
        if t.shape != x.shape:
            raise ValueError(f"{owner}: floating-point targets are class probabilities and must have the input's "
                             f"shape {x.shape}, got {t.shape} (class indices must have an integer dtype)")
        weight = self.weight
        if weight is not None and weight.shape[0] != classes:
            raise ValueError(f"{owner}: `weight` has {weight.shape[0]} entries but the input has {classes} classes")
        t = t.astype(x.dtype, copy=False)
        if smoothing > 0.0:
            t = t * (1 - smoothing) + (smoothing / classes)
        if weight is not None:
            shape = [1] * x.ndim
            shape[class_dim] = classes
            t = t * weight.astype(x.dtype).reshape(shape)  # torch: -(input * target * weight)
        samples = x.size // classes if classes else 0
        with np.errstate(invalid="ignore"):
            product = logp * t
            if self.reduction == "none":
                result = -product.sum(axis=class_dim)
            else:
                result = -product.sum(dtype=x.dtype)
                if self.reduction == "mean":
                    result = result / samples if samples else x.dtype.type(np.nan)
        self._save("probabilities", x.dtype, p, t, samples)
        return np.asarray(result, dtype=x.dtype)

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        owner = type(self).__name__
        kind, dtype, p, *rest = self._saved()
        class_dim = 0 if p.ndim == 1 else 1
        if kind == "probabilities":
            t, samples = rest
            loss_shape = p.shape[:class_dim] + p.shape[class_dim + 1:]
            scale = _grad_scale(owner, self.reduction, grad_output, loss_shape, dtype,
                                samples if samples else np.nan)
            if self.reduction == "none":
                scale = np.expand_dims(scale, class_dim)
            dlogp = -t * scale
        else:
            targets, smoothing = rest
            scale = _grad_scale(owner, self.reduction, grad_output, targets.valid.shape, dtype,
                                targets.denominator)
            scale = np.where(targets.valid, scale, dtype.type(0))  # ignored targets get no gradient
            with np.errstate(invalid="ignore"):
                picked = -(1 - smoothing) * targets.target_weight * scale if smoothing > 0 else \
                    -targets.target_weight * scale
                dlogp = targets.scatter(picked, p.shape, dtype)
                if smoothing > 0.0:
                    dlogp -= (np.expand_dims(scale, class_dim) * (smoothing / targets.classes)
                              * targets.broadcast_weight(p.ndim))
        # the backward of log_softmax: dz = dlogp - p * sum_c dlogp
        with np.errstate(invalid="ignore"):
            return (dlogp - p * dlogp.sum(axis=class_dim, keepdims=True)).astype(dtype, copy=False)

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
        self.reduction = _check_reduction(type(self).__name__, reduction)

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        owner = type(self).__name__
        x = as_array(owner, "input", input)
        if x.dtype.kind != "f":
            raise ValueError(f"{owner}: the input must have a floating-point dtype, got {x.dtype}")
        t = as_array(owner, "target", target)
        if t.dtype.kind not in "iuf":
            raise ValueError(f"{owner}: the target must hold real numbers, got dtype {t.dtype}")
        if t.shape != x.shape:
            raise ValueError(f"{owner}: the target's shape {t.shape} must equal the input's shape {x.shape}")
        difference = x - t.astype(x.dtype, copy=False)
        self._save(difference)
        return _reduce(difference * difference, self.reduction, x.size if x.size else math.nan)

    def backward(self, grad_output: object = 1.0) -> np.ndarray:
        (difference,) = self._saved()
        dtype = difference.dtype
        g = _grad_scale(type(self).__name__, self.reduction, grad_output, difference.shape, dtype, 1.0)
        # torch's mse_loss_backward: norm * (input - target) * grad_output, norm = 2 / numel for 'mean'
        norm = 2.0 / difference.size if self.reduction == "mean" and difference.size else 2.0
        return (dtype.type(norm) * difference * g).astype(dtype, copy=False)

    def extra_repr(self) -> str:
        return _repr_settings(self, reduction="mean")


def _repr_settings(loss: Module, **defaults: object) -> str:
    parts = [f"{name}={getattr(loss, name)!r}" for name, default in defaults.items() if getattr(loss, name) != default]
    if getattr(loss, "weight", None) is not None:
        parts.insert(0, f"weight=array(shape={loss.weight.shape})")
    return ", ".join(parts)
