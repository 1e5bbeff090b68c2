"""Stochastic gradient descent with momentum, dampening, Nesterov momentum, weight decay and maximize."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.parameter import Parameter
from ..spec import as_bool
from .optimizer import Optimizer, check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``, the same update).

    For each parameter :math:`\theta` with gradient :math:`g` (torch's documentation of SGD, and
    ``_single_tensor_sgd`` in torch/optim/sgd.py, in the same order)::

        g <- -g                          if maximize
        g <- g + weight_decay * theta    if weight_decay != 0
        if momentum != 0:
            b <- g                                       on the first step
            b <- momentum * b + (1 - dampening) * g      afterwards
            g <- g + momentum * b        if nesterov, else g <- b
        theta <- theta - lr * g

    Parameters
    ----------
    params : iterable of Parameter or of dicts (parameter groups)
    lr : float, default 1e-3
    momentum, dampening, weight_decay : float, default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Parameter
    >>> w = Parameter(np.array([1.0, -2.0]))
    >>> optimizer = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     w.grad = 2 * w.data  # the gradient of |w|^2
    ...     optimizer.step()
    >>> w.data
    array([ 0.46, -0.92])
    >>> optimizer.state_dict()["state"][0]["momentum_buffer"]
    array([ 3.4, -6.8])
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}
        self._check_group(defaults)  # the constructor's own values (normalised), before the groups
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        group["lr"] = check_number(owner, "lr", group["lr"], minimum=0.0, what="Invalid learning rate")
        group["momentum"] = check_number(owner, "momentum", group["momentum"], minimum=0.0,
                                         what="Invalid momentum value")
        group["dampening"] = check_number(owner, "dampening", group["dampening"])
        group["weight_decay"] = check_number(owner, "weight_decay", group["weight_decay"], minimum=0.0,
                                             what="Invalid weight_decay value")
        group["nesterov"] = as_bool(owner, "nesterov", group["nesterov"])
        group["maximize"] = as_bool(owner, "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{owner}: Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group['momentum']!r} and dampening={group['dampening']!r}")

    def _step_group(self, group: dict[str, Any], params: list[Parameter]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for param in params:
            theta = param.data
            dtype = theta.dtype.type
            grad = self._grad(param, "SGD")
            if maximize:
                grad = -grad
            if weight_decay != 0:
                grad = grad + dtype(weight_decay) * theta
            if momentum != 0:
                state = self.state.setdefault(param, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = np.array(grad, copy=True)
                    state["momentum_buffer"] = buf
                else:
                    buf *= dtype(momentum)
                    buf += dtype(1 - dampening) * grad
                grad = grad + dtype(momentum) * buf if nesterov else buf
            theta += dtype(-lr) * grad
