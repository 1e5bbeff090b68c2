"""Named training recipes: the defaults of ``convlab train`` and the tutorials' settings.

A :class:`Recipe` is the set of hyperparameters a run starts from; every
option of ``convlab train`` (and every keyword of :func:`convlab.train.fit`)
overrides one of them.

``default`` (what ``convlab train MODEL`` uses)
    Adam (torch's betas), batch 128, 10 epochs, cosine decay of the learning
    rate to 0 over the run, no augmentation; the learning rate is 1e-3, or 1e-2
    for a network of saturating activations (sigmoid, tanh) without BatchNorm
    (:func:`default_lr`: ``lenet``, ``lenet5``), whose small gradients need
    larger steps: on the bundled 10,000 images (10 epochs, the torch
    counterpart of this loop, test accuracy on Fashion-MNIST's 10,000 test
    images) the sigmoid LeNet reached 0.63 with 1e-3, 0.74 with 3e-3 and 0.79
    with 1e-2. Adam with a cosine tail needs no per-model tuning beyond that.
    Measured (``convlab train lenet_bn --data fashion-mnist``;
    the figures are in README "Training"): ``lenet_bn`` (:data:`DEFAULT_MODEL`)
    reaches 0.90 test accuracy on the full Fashion-MNIST within 10 epochs.
``d2l``
    *Dive into Deep Learning*, section 7.6 (LeNet on Fashion-MNIST): Xavier-uniform
    initial weights of every convolution and linear layer, plain SGD with lr 0.9,
    batch 256, 10 epochs, no schedule. The book reports test accuracy 0.779 for
    ``lenet`` after 10 epochs.

Examples
--------
>>> get("d2l").lr, get("d2l").batch_size, get("d2l").init
(0.9, 256, 'xavier')
>>> get("nope")
Traceback (most recent call last):
...
ValueError: convlab.train.recipes: unknown recipe 'nope'; the recipes: d2l, default
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import nn

__all__ = ["DEFAULT_MODEL", "RECIPES", "Recipe", "default_lr", "get", "initialize"]

#: The zoo model the README's measurements use with the default recipe: LeNet with BatchNorm, ReLU, max pooling.
DEFAULT_MODEL = "lenet_bn"


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of a run (the keywords of :func:`convlab.train.fit` of the same names)."""

    name: str
    description: str
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float | None = 1e-3  # None: default_lr(model)
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: int = 0
    augment: str | None = None
    label_smoothing: float = 0.0
    init: str = "default"  # 'default' (the layers' torch initialisation) or 'xavier'

    def replace(self, **changes: object) -> Recipe:
        return dataclasses.replace(self, **changes)


RECIPES: dict[str, Recipe] = {
    "default": Recipe("default", "Adam lr 1e-3 (1e-2 for saturating activations without BatchNorm), batch 128, "
                                 "10 epochs, cosine schedule (convlab's default)", lr=None),
    "d2l": Recipe("d2l", "Dive into Deep Learning 7.6: Xavier init, SGD lr 0.9, batch 256, 10 epochs",
                  epochs=10, batch_size=256, optimizer="sgd", lr=0.9, momentum=0.0, schedule="none",
                  init="xavier"),
}


def get(name: str) -> Recipe:
    """The recipe called ``name`` (see :data:`RECIPES`)."""
    if name not in RECIPES:
        raise ValueError(f"convlab.train.recipes: unknown recipe {name!r}; the recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def default_lr(model: nn.Module) -> float:
    """The default recipe's Adam learning rate: 1e-2 for sigmoid/tanh networks without BatchNorm, else 1e-3.

    >>> from convlab import models
    >>> default_lr(models.create("lenet", rng=0)), default_lr(models.create("lenet_bn", rng=0))
    (0.01, 0.001)
    """
    kinds = [type(m) for m in model.modules()]
    saturating = any(issubclass(k, (nn.Sigmoid, nn.Tanh)) for k in kinds)
    normalized = any(issubclass(k, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for k in kinds)
    return 1e-2 if saturating and not normalized else 1e-3


def initialize(model: nn.Module, init: str, rng: np.random.Generator) -> nn.Module:
    """Re-draw the weights of every convolution and linear layer with ``init`` (``'default'`` leaves them).

    ``'xavier'``: ``xavier_uniform_`` on the weights, as d2l's ``init_weights``
    (``nn.init.xavier_uniform_(m.weight)`` for ``nn.Linear`` and ``nn.Conv2d``;
    biases keep their default initialisation). Glorot & Bengio, AISTATS 2010.
    """
    if init == "default":
        return model
    if init != "xavier":
        raise ValueError(f"convlab.train.recipes.initialize: `init` (={init!r}) must be 'default' or 'xavier'")
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(module.weight, rng=rng)
    return model
