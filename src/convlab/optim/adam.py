"""Adam and AdamW (with AMSGrad, weight decay and maximize), torch's single-tensor update in the same order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.parameter import Parameter
from ..spec import as_bool
from .optimizer import Optimizer, check_number

__all__ = ["Adam", "AdamW"]


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start <- lerp(start, end, weight)`` in place, with torch's two forms (aten/src/ATen/native/Lerp.h)."""
    w = start.dtype.type(weight)
    if abs(weight) < 0.5:
        start += w * (end - start)
    else:
        np.subtract(end, (end - start) * start.dtype.type(1 - w), out=start)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, arXiv:1412.6980), with torch's options and update (``torch.optim.Adam``).

    For each parameter :math:`\theta` with gradient :math:`g`, at step :math:`t` (torch's
    ``_single_tensor_adam`` in torch/optim/adam.py, in the same order)::

        g <- -g                                         if maximize
        theta <- theta * (1 - lr * weight_decay)        if decoupled_weight_decay (AdamW)
        g <- g + weight_decay * theta                   otherwise, if weight_decay != 0
        m <- lerp(m, g, 1 - beta1)                      (= beta1 m + (1 - beta1) g)
        v <- beta2 v + (1 - beta2) g^2
        v_max <- max(v_max, v)                          if amsgrad (and v <- v_max below)
        denom <- sqrt(v) / sqrt(1 - beta2^t) + eps
        theta <- theta - lr / (1 - beta1^t) * m / denom

    State per parameter: ``step`` (a float), ``exp_avg`` (m), ``exp_avg_sq`` (v) and,
    with amsgrad, ``max_exp_avg_sq``.

    Parameters
    ----------
    params : iterable of Parameter or of dicts (parameter groups)
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1).
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        True is AdamW.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Parameter
    >>> w = Parameter(np.array([1.0, -2.0]))
    >>> optimizer = Adam([w], lr=0.1)
    >>> w.grad = 2 * w.data
    >>> optimizer.step()
    >>> w.data  # the first step moves each weight by lr against the gradient's sign
    array([ 0.9, -1.9])
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay}
        self._check_group(defaults)  # the constructor's own values (normalised), before the groups
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        group["lr"] = check_number(owner, "lr", group["lr"], minimum=0.0, what="Invalid learning rate")
        group["eps"] = check_number(owner, "eps", group["eps"], minimum=0.0, what="Invalid epsilon value")
        betas = group["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"{owner}: `betas` must be a pair of numbers (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(
            check_number(owner, f"betas[{i}]", beta, minimum=0.0, below=1.0,
                         what=f"Invalid beta parameter at index {i}")
            for i, beta in enumerate(betas))
        group["weight_decay"] = check_number(owner, "weight_decay", group["weight_decay"], minimum=0.0,
                                             what="Invalid weight_decay value")
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay"):
            group[flag] = as_bool(owner, flag, group[flag])

    def _step_group(self, group: dict[str, Any], params: list[Parameter]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        for param in params:
            theta = param.data
            dtype = theta.dtype.type
            grad = self._grad(param, type(self).__name__)
            if maximize:
                grad = -grad
            state = self.state.setdefault(param, {})
            if not state:  # lazy initialisation, as torch
                state["step"] = 0.0
                state["exp_avg"] = np.zeros_like(theta)
                state["exp_avg_sq"] = np.zeros_like(theta)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(theta)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1.0
            step = state["step"]
            if weight_decay != 0:
                if decoupled:
                    theta *= dtype(1 - lr * weight_decay)
                else:
                    grad = grad + dtype(weight_decay) * theta
            _lerp(exp_avg, grad, 1 - beta1)
            exp_avg_sq *= dtype(beta2)
            exp_avg_sq += (dtype(1 - beta2) * grad) * grad  # torch's addcmul: self + (value * t1) * t2
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            if amsgrad:
                np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                denom = np.sqrt(state["max_exp_avg_sq"]) / dtype(bias_correction2_sqrt) + dtype(eps)
            else:
                denom = np.sqrt(exp_avg_sq) / dtype(bias_correction2_sqrt) + dtype(eps)
            theta += (dtype(-step_size) * exp_avg) / denom  # torch's addcdiv: self + (value * t1) / t2


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, arXiv:1711.05101; ``torch.optim.AdamW``).

    The update of :class:`Adam` with ``decoupled_weight_decay=True``: the weights are
    multiplied by ``1 - lr * weight_decay`` before the moments are updated, and the decay
    never enters them. ``weight_decay`` defaults to ``1e-2``.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Parameter
    >>> w = Parameter(np.array([1.0]))
    >>> optimizer = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = np.array([0.0])  # no gradient: only the decay acts
    >>> optimizer.step()
    >>> w.data
    array([0.95])
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["decoupled_weight_decay"] = True  # as torch's AdamW.__setstate__: always decoupled
        super()._check_group(group)
