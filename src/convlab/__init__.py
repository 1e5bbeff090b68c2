"""convlab: every convolution used in deep learning, computable, explainable, measurable and trainable."""

from . import functional, ops, shapes, spec
from .spec import ConvSpec, PoolSpec

__version__ = "0.1.0"

__all__ = ["ConvSpec", "PoolSpec", "__version__", "functional", "ops", "shapes", "spec"]

from . import nn  # the layers, imported after the engine they build on

__all__ += ["nn"]
