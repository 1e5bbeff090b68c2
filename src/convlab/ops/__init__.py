"""The NumPy engine: convolution, transposed convolution, pooling, padding, shuffling, unfold/fold.

Every op has a forward function and a ``*_vjp`` that returns the gradients of
its inputs given the gradient of its output. :mod:`convlab.functional` is the
public face, named like ``torch.nn.functional``.
"""

from ._checks import MEMORY_BUDGET_BYTES
from .conv import ConvGrads, conv, conv_transpose, conv_transpose_vjp, conv_vjp
from .padding import pad, pad_pairs, pad_pairs_vjp, pad_vjp

__all__ = [
    "MEMORY_BUDGET_BYTES",
    "ConvGrads",
    "conv",
    "conv_transpose",
    "conv_transpose_vjp",
    "conv_vjp",
    "pad",
    "pad_pairs",
    "pad_pairs_vjp",
    "pad_vjp",
]
