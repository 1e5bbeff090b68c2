"""convlab.optim: optimizers and learning-rate schedules, with torch's names, arguments and update equations.

==========================================  ===============================================================
:class:`SGD`                                momentum, dampening, Nesterov, weight decay, maximize
:class:`Adam`, :class:`AdamW`               AMSGrad, weight decay (L2 or decoupled), maximize
:class:`Optimizer`                          the base: parameter groups, ``state``, ``zero_grad``,
                                            ``state_dict``/``load_state_dict`` in torch's layout
:mod:`convlab.optim.lr_scheduler`           ``StepLR``, ``MultiStepLR``, ``CosineAnnealingLR``,
                                            ``OneCycleLR``, ``LinearLR``, ``SequentialLR``, ``LambdaLR``
==========================================  ===============================================================

The updates are those of torch's single-tensor path (torch/optim/sgd.py, adam.py),
written in the same order on NumPy arrays, in place on ``param.data`` and in its
dtype: trained from the same weights on the same batches, a convlab model and its
``to_torch`` mirror end with the same weights (to about 1e-15 relative per step in
float64: torch fuses some multiply-adds, NumPy does not).

Examples
--------
One training step:

>>> import numpy as np
>>> from convlab import nn, optim
>>> rng = np.random.default_rng(0)
>>> model = nn.Sequential(nn.Linear(4, 3, rng=rng))
>>> loss_fn = nn.CrossEntropyLoss()
>>> optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
>>> optimizer.zero_grad()
>>> loss = loss_fn(model(x), y)
>>> _ = model.backward(loss_fn.backward())
>>> optimizer.step()
>>> bool(loss_fn(model(x), y) < loss)
True
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
