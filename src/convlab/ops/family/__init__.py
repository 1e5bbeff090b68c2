"""The convolution family: pointwise, depthwise, separable, flattened and bottleneck convolutions.

One job per module, every public name re-exported here:

* :mod:`~convlab.ops.family.convolutions` -- the members as operations, each a
  composition of plain convolutions (:func:`pointwise_conv`,
  :func:`depthwise_conv`, :func:`depthwise_separable_conv`,
  :func:`shuffled_grouped_conv`, :func:`separable_conv`,
  :func:`flattened_conv`, :func:`bottleneck`);
* :mod:`~convlab.ops.family.factorization` -- their weights found from a full
  kernel (separable factors, low-rank and flattened approximations, the
  equivalent weight of a depthwise-separable pair);
* :mod:`~convlab.ops.family.costs` -- each member's cost next to the standard
  convolution it replaces or approximates (from the one cost rule,
  :mod:`convlab.costs`).

Sources: Howard et al., "MobileNets", arXiv:1704.04861 (depthwise-separable
cost ratio ``1/N + 1/k^2``); Jin, Dundar & Culurciello, "Flattened
Convolutional Neural Networks for Feedforward Acceleration", arXiv:1412.5474;
He et al., "Deep Residual Learning", arXiv:1512.03385 (bottleneck).
"""

from .convolutions import (
    bottleneck,
    depthwise_conv,
    depthwise_separable_conv,
    flattened_conv,
    pointwise_conv,
    separable_conv,
    shuffled_grouped_conv,
)
from .costs import (
    CostComparison,
    bottleneck_cost,
    depthwise_separable_cost,
    flattened_cost,
    grouped_cost,
    spatially_separable_cost,
)
from .factorization import (
    FlattenedFilters,
    LowRank,
    depthwise_separable_equivalent_weight,
    flatten_filters,
    is_separable,
    low_rank_approximation,
    separable_factors,
    separable_rank,
)

__all__ = [
    "CostComparison",
    "FlattenedFilters",
    "LowRank",
    "bottleneck",
    "bottleneck_cost",
    "depthwise_conv",
    "depthwise_separable_conv",
    "depthwise_separable_cost",
    "depthwise_separable_equivalent_weight",
    "flatten_filters",
    "flattened_conv",
    "flattened_cost",
    "grouped_cost",
    "is_separable",
    "low_rank_approximation",
    "pointwise_conv",
    "separable_conv",
    "separable_factors",
    "separable_rank",
    "shuffled_grouped_conv",
    "spatially_separable_cost",
]
