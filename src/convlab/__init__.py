"""convlab: every convolution used in deep learning, computable, explainable, measurable and trainable."""

from . import functional, ops, shapes, spec
from .spec import ConvSpec, PoolSpec

__version__ = "0.1.0"

__all__ = ["ConvSpec", "PoolSpec", "__version__", "functional", "ops", "shapes", "spec"]

# The layers, the zoo and the symbolic analysis, imported after the engine they build on; then the bridges,
# which register the analysis' reader of torch models (torch itself is imported only when one is used).
from . import analysis, interop, models, nn

__all__ += ["analysis", "interop", "models", "nn"]
