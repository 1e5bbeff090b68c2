"""convlab.nn: layers that hold a spec and parameters, run forward and backward, and compose into DAGs.

The interface is fixed by ``docs/nn-contract.md`` (shared with the model zoo
and the analysis): torch's class names, argument names, attribute names and
``state_dict`` keys, on NumPy arrays. Every layer's forward runs the engine
(:mod:`convlab.ops`) and its backward the engine's ``*_vjp``; BatchNorm,
LocalResponseNorm, the activations, Softmax, Linear and Dropout write their
backward here, each with its derivation.

Examples
--------
>>> import numpy as np
>>> from convlab import nn
>>> rng = np.random.default_rng(0)
>>> model = nn.Sequential(
...     nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
...     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng),
... )
>>> x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
>>> logits = model(x)
>>> grad_input = model.backward(np.ones_like(logits))
>>> logits.shape, grad_input.shape, model[0].weight.grad.shape
((2, 10), (2, 1, 8, 8), (4, 1, 3, 3))
"""

from . import init
from .activation import Hardswish, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from .capture import capture_outputs
from .container import ChannelShuffle, ChannelSlice, Concat, Residual, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Dropout, Flatten, Identity, Linear, Upsample
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter, is_grad_enabled, is_weightless, no_grad, skeleton
from .norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, LocalResponseNorm
from .pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    GlobalAvgPool,
    GlobalMaxPool,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "ChannelShuffle",
    "ChannelSlice",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "Hardswish",
    "Identity",
    "IncompatibleKeys",
    "Linear",
    "LocalResponseNorm",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "ReLU6",
    "Residual",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Upsample",
    "capture_outputs",
    "init",
    "is_grad_enabled",
    "is_weightless",
    "no_grad",
    "skeleton",
]
