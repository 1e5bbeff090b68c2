"""Pooling, N-d, forward and backward: max, average, adaptive, global, and max-unpooling.

One job per module, every public name re-exported here:

* :mod:`~convlab.ops.pool.window` -- max and average pooling over a sliding
  window (:func:`max_pool`, :func:`avg_pool` and their ``*_vjp``), with
  PyTorch's NaN, tie and divisor rules;
* :mod:`~convlab.ops.pool.adaptive` -- adaptive pooling (the output size is
  given, the windows follow) and global pooling (adaptive pooling to size 1);
* :mod:`~convlab.ops.pool.unpool` -- max unpooling, the partial inverse of max
  pooling.

Window pooling and unpooling have two entry points each. The loose one
(``max_pool(x, 2, stride=1, ndim=2)``) takes the hyperparameters a user types,
builds the :class:`~convlab.spec.PoolSpec` and hands it to the spec one
(``max_pool_spec(x, spec)``), which takes a canonical spec as it is and reports
errors under ``spec.name``. :mod:`convlab.functional` builds the spec once per
call and the pooling layers once at construction, and both pass it down.

The backward passes are what the forward passes say, read the other way round
(derivations next to each vjp): the gradient of a max goes to the argmax, the
gradient of an average is spread evenly over its window, max-unpooling's
gradient is gathered back from the positions it wrote.
"""

from .adaptive import (
    adaptive_avg_pool,
    adaptive_avg_pool_vjp,
    adaptive_max_pool,
    adaptive_max_pool_vjp,
    global_avg_pool,
    global_avg_pool_vjp,
    global_max_pool,
    global_max_pool_vjp,
)
from .unpool import max_unpool, max_unpool_spec, max_unpool_spec_vjp, max_unpool_vjp
from .window import (
    avg_pool,
    avg_pool_spec,
    avg_pool_spec_vjp,
    avg_pool_vjp,
    max_pool,
    max_pool_spec,
    max_pool_spec_vjp,
    max_pool_vjp,
)

__all__ = [
    "adaptive_avg_pool",
    "adaptive_avg_pool_vjp",
    "adaptive_max_pool",
    "adaptive_max_pool_vjp",
    "avg_pool",
    "avg_pool_spec",
    "avg_pool_spec_vjp",
    "avg_pool_vjp",
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
]
