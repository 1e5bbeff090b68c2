"""The cost rule: parameters, multiply-accumulates (MACs) and FLOPs of convolutions.

One rule, used by the convolution family's cost comparisons, the CLI and (later)
the network analysis. Conventions, stated once:

* a MAC is one multiplication and one addition into an accumulator; the
  "multiplications" the tutorials count are MACs;
* ``FLOPs = 2 * MACs + bias additions`` (one per output element when there is a
  bias);
* counts are per sample (multiply by the batch size for a batch).

For a convolution with ``C_in`` input and ``C_out`` output channels, ``groups``
``g``, kernel ``k`` and output size ``O``::

    params = C_out * (C_in / g) * prod(k)  (+ C_out with a bias)
    MACs   = C_out * (C_in / g) * prod(k) * prod(O)

A transposed convolution does the same multiplications as the convolution it
is the adjoint of, counted from its *input* size ``I``::

    MACs = C_in * prod(I) * (C_out / g) * prod(k)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cost", "conv_cost", "conv_transpose_cost"]


@dataclass(frozen=True)
class Cost:
    """Parameters and arithmetic of one operation (per sample)."""

    params: int
    macs: int
    bias_adds: int = 0

    @property
    def flops(self) -> int:
        """``2 * MACs + bias additions``."""
        return 2 * self.macs + self.bias_adds

    @property
    def multiplications(self) -> int:
        """The tutorials' "multiplications": one per MAC."""
        return self.macs

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.params + other.params, self.macs + other.macs, self.bias_adds + other.bias_adds)

    def ratio(self, other: Cost) -> float:
        """``self.macs / other.macs``: below 1 means cheaper than ``other``."""
        return self.macs / other.macs


def _check(fn: str, in_channels: int, out_channels: int, groups: int) -> None:
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{fn}: `groups` (={groups}) must be >= 1 and divide in_channels (={in_channels}) "
            f"and out_channels (={out_channels})"
        )


def conv_cost(
    in_channels: int,
    out_channels: int,
    kernel_size: Sequence[int],
    output_size: Sequence[int],
    groups: int = 1,
    bias: bool = False,
) -> Cost:
    """Parameters and MACs of a convolution whose output has spatial size ``output_size``.

    Examples
    --------
    >>> conv_cost(3, 128, (3, 3), (5, 5)).macs   # 128 filters 3x3x3 on a 7x7x3 input
    86400
    """
    _check("conv_cost", in_channels, out_channels, groups)
    weights = out_channels * (in_channels // groups) * math.prod(kernel_size)
    outputs = out_channels * math.prod(output_size)
    return Cost(
        params=weights + (out_channels if bias else 0),
        macs=weights * math.prod(output_size),
        bias_adds=outputs if bias else 0,
    )


def conv_transpose_cost(
    in_channels: int,
    out_channels: int,
    kernel_size: Sequence[int],
    input_size: Sequence[int],
    output_size: Sequence[int],
    groups: int = 1,
    bias: bool = False,
) -> Cost:
    """Parameters and MACs of a transposed convolution (counted from its input size).

    Examples
    --------
    >>> conv_transpose_cost(128, 64, (4, 4), (28, 28), (56, 56)).macs
    102760448
    """
    _check("conv_transpose_cost", in_channels, out_channels, groups)
    weights = in_channels * (out_channels // groups) * math.prod(kernel_size)
    return Cost(
        params=weights + (out_channels if bias else 0),
        macs=weights * math.prod(input_size),
        bias_adds=out_channels * math.prod(output_size) if bias else 0,
    )
