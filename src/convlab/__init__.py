"""convlab: every convolution used in deep learning, computable, explainable, measurable and trainable."""

from . import functional, ops, shapes, spec
from .spec import ConvSpec, PoolSpec

__version__ = "0.1.0"

__all__ = ["ConvSpec", "PoolSpec", "__version__", "functional", "ops", "shapes", "spec"]

# The layers, the zoo and the symbolic analysis, imported after the engine they build on.
from . import analysis, models, nn

__all__ += ["analysis", "models", "nn"]
