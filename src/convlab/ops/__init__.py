"""The NumPy engine: convolution, transposed convolution, pooling, padding, shuffling, unfold/fold.

Every op has a forward function and a ``*_vjp`` that returns the gradients of
its inputs given the gradient of its output. :mod:`convlab.functional` is the
public face, named like ``torch.nn.functional``.
"""

from ._checks import DEFAULT_MEMORY_BUDGET_BYTES, get_memory_budget, memory_budget, set_memory_budget
from .conv import (
    ConvGrads,
    conv,
    conv_spec,
    conv_spec_vjp,
    conv_transpose,
    conv_transpose_spec,
    conv_transpose_spec_vjp,
    conv_transpose_vjp,
    conv_vjp,
)
from .padding import pad, pad_pairs, pad_pairs_vjp, pad_vjp
from .pool import (
    adaptive_avg_pool,
    adaptive_avg_pool_vjp,
    adaptive_max_pool,
    adaptive_max_pool_vjp,
    avg_pool,
    avg_pool_spec,
    avg_pool_spec_vjp,
    avg_pool_vjp,
    global_avg_pool,
    global_avg_pool_vjp,
    global_max_pool,
    global_max_pool_vjp,
    max_pool,
    max_pool_spec,
    max_pool_spec_vjp,
    max_pool_vjp,
    max_unpool,
    max_unpool_spec,
    max_unpool_spec_vjp,
    max_unpool_vjp,
)
from .shuffle import channel_shuffle, channel_shuffle_vjp
from .unfold import fold, fold_vjp, unfold, unfold_vjp

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "ConvGrads",
    "adaptive_avg_pool",
    "adaptive_avg_pool_vjp",
    "adaptive_max_pool",
    "adaptive_max_pool_vjp",
    "avg_pool",
    "avg_pool_spec",
    "avg_pool_spec_vjp",
    "avg_pool_vjp",
    "channel_shuffle",
    "channel_shuffle_vjp",
    "conv",
    "conv_spec",
    "conv_spec_vjp",
    "conv_transpose",
    "conv_transpose_spec",
    "conv_transpose_spec_vjp",
    "conv_transpose_vjp",
    "conv_vjp",
    "fold",
    "fold_vjp",
    "get_memory_budget",
    "global_avg_pool",
    "global_avg_pool_vjp",
    "global_max_pool",
    "global_max_pool_vjp",
    "max_pool",
    "max_pool_spec",
    "max_pool_spec_vjp",
    "max_pool_vjp",
    "max_unpool",
    "max_unpool_spec",
    "max_unpool_spec_vjp",
    "max_unpool_vjp",
    "memory_budget",
    "pad",
    "pad_pairs",
    "pad_pairs_vjp",
    "pad_vjp",
    "set_memory_budget",
    "unfold",
    "unfold_vjp",
]

