"""What the convolution family saves: each member's cost next to the standard convolution's.

Every count comes from the one cost rule, :func:`convlab.costs.conv_cost`, and
every output size from the one shape rule, :func:`convlab.shapes.conv_output_shape`;
a comparison only says which convolutions a member is made of
(:mod:`convlab.ops.family.convolutions`).

Sources: Howard et al., "MobileNets", arXiv:1704.04861 (depthwise-separable
cost ratio ``1/N + 1/k^2``); Jin, Dundar & Culurciello, arXiv:1412.5474
(flattened); He et al., "Deep Residual Learning", arXiv:1512.03385 (bottleneck).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ...costs import Cost, conv_cost
from ...shapes import conv_output_shape
from ...spec import ConvSpec

__all__ = [
    "CostComparison",
    "bottleneck_cost",
    "depthwise_separable_cost",
    "flattened_cost",
    "grouped_cost",
    "spatially_separable_cost",
]


class CostComparison(NamedTuple):
    """A family member's cost next to the standard convolution's."""

    standard: Cost
    variant: Cost

    @property
    def ratio(self) -> float:
        """Variant MACs / standard MACs."""
        return self.variant.macs / self.standard.macs

    @property
    def param_ratio(self) -> float:
        return self.variant.params / self.standard.params


def _output_size(kernel, input_size, stride, padding, dilation, name) -> tuple[int, ...]:
    spec = ConvSpec(tuple(kernel), stride, padding, dilation, ndim=len(kernel), name=name)
    return tuple(int(o) for o in conv_output_shape(spec, tuple(input_size)))


# --------------------------------------------------------------------------- per member


def depthwise_separable_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int],
                             input_size: Sequence[int], stride=1, padding=0, dilation=1,
                             multiplier: int = 1) -> CostComparison:
    """Multiplications of a standard convolution vs. depthwise (x multiplier) + pointwise.

    For stride 1 and the same output size the ratio is ``1/C_out + 1/prod(k)``
    (with multiplier 1): MobileNets, arXiv:1704.04861, section 3.1.

    Examples
    --------
    >>> c = depthwise_separable_cost(3, 128, (3, 3), (7, 7))
    >>> c.standard.macs, c.variant.macs, round(c.ratio, 4)
    (86400, 10275, 0.1189)
    """
    out = _output_size(kernel_size, input_size, stride, padding, dilation, "depthwise_separable_cost")
    standard = conv_cost(in_channels, out_channels, kernel_size, out)
    mid = in_channels * multiplier
    depthwise = conv_cost(in_channels, mid, kernel_size, out, groups=in_channels)
    pointwise = conv_cost(mid, out_channels, (1,) * len(kernel_size), out)
    return CostComparison(standard, depthwise + pointwise)


def grouped_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int], input_size: Sequence[int],
                 groups: int, stride=1, padding=0, dilation=1) -> CostComparison:
    """A grouped convolution against the ungrouped one: parameters and MACs divide by ``groups``.

    Examples
    --------
    >>> c = grouped_cost(64, 128, (3, 3), (32, 32), groups=2, padding=1)
    >>> c.param_ratio, c.ratio
    (0.5, 0.5)
    """
    out = _output_size(kernel_size, input_size, stride, padding, dilation, "grouped_cost")
    return CostComparison(conv_cost(in_channels, out_channels, kernel_size, out),
                          conv_cost(in_channels, out_channels, kernel_size, out, groups=groups))


def spatially_separable_cost(kernel_size: Sequence[int], input_size: Sequence[int], channels: int = 1,
                             stride=1, padding=0, dilation=1) -> CostComparison:
    """Multiplications of a full kernel vs. its 1-D factors applied one dimension at a time.

    For an ``N x N`` image and an ``m x m`` kernel (stride 1, no padding) the
    ratio is ``(2N - m + 1) / (m (N - m + 1))``, which tends to ``2/m`` for
    ``N >> m``.

    Examples
    --------
    >>> c = spatially_separable_cost((3, 3), (5, 5))
    >>> c.standard.macs, c.variant.macs
    (81, 72)
    """
    fn = "spatially_separable_cost"
    nd = len(kernel_size)
    spec = ConvSpec(tuple(kernel_size), stride, padding, dilation, ndim=nd, name=fn)
    out = _output_size(kernel_size, input_size, stride, padding, dilation, fn)
    standard = conv_cost(channels, channels, kernel_size, out, groups=channels)
    variant = Cost(0, 0)
    size = list(input_size)
    for axis in range(nd):
        # After pass `axis`, dimensions <= axis have their output size, the rest their input size.
        size[axis] = out[axis]
        k = [1] * nd
        k[axis] = spec.kernel_size[axis]
        variant = variant + conv_cost(channels, channels, k, tuple(size), groups=channels)
    return CostComparison(standard, variant)


def flattened_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int], input_size: Sequence[int],
                   stride=1, padding=0) -> CostComparison:
    """Standard 2-D convolution vs. its flattened form (channel, vertical, horizontal passes).

    Examples
    --------
    >>> c = flattened_cost(64, 64, (3, 3), (32, 32), padding=1)
    >>> round(c.ratio, 3)
    0.122
    """
    fn = "flattened_cost"
    out = _output_size(kernel_size, input_size, stride, padding, 1, fn)
    kh, kw = kernel_size
    standard = conv_cost(in_channels, out_channels, kernel_size, out)
    mid_h = out[0]
    channel = conv_cost(in_channels, out_channels, (1, 1), input_size)
    # flattened_conv pads the height in the vertical pass and the width only in the horizontal one.
    vertical = conv_cost(out_channels, out_channels, (kh, 1), (mid_h, input_size[1]), groups=out_channels)
    horizontal = conv_cost(out_channels, out_channels, (1, kw), out, groups=out_channels)
    return CostComparison(standard, channel + vertical + horizontal)


def bottleneck_cost(channels: int, bottleneck_channels: int, input_size: Sequence[int],
                    kernel_size: Sequence[int] = (3, 3)) -> CostComparison:
    """One ``k x k`` convolution ``channels -> channels`` vs. the 1x1-reduce, kxk, 1x1-expand bottleneck.

    Examples
    --------
    >>> c = bottleneck_cost(256, 64, (56, 56))
    >>> c.standard.params, c.variant.params
    (589824, 69632)
    """
    fn = "bottleneck_cost"
    pad = tuple(k // 2 for k in kernel_size)
    out = _output_size(kernel_size, input_size, 1, pad, 1, fn)
    standard = conv_cost(channels, channels, kernel_size, out)
    ones = (1,) * len(kernel_size)
    variant = (conv_cost(channels, bottleneck_channels, ones, input_size)
               + conv_cost(bottleneck_channels, bottleneck_channels, kernel_size, out)
               + conv_cost(bottleneck_channels, channels, ones, out))
    return CostComparison(standard, variant)
