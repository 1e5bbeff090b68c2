"""Network in Network (Lin, Chen & Yan, arXiv:1312.4400), as in Dive into Deep Learning (section 8.3).

A NiN block is one spatial convolution followed by two 1x1 convolutions (the
"mlpconv" layer: a per-pixel two-layer perceptron), each with a ReLU. Blocks
alternate with 3x3 stride-2 max pools; the last block has ``num_classes``
channels and global average pooling replaces the fully connected classifier,
so the model has no Linear layer at all.

The book's layout (``nin_d2l``, 1x224x224, 10 classes) is kept for ImageNet
(``nin``: 3x224x224, 1000 classes). Note: the Caffe ImageNet model of the paper
has a fourth 1024-channel block before a 1000-channel 1x1 convolution; the
book's, kept here, maps 384 channels straight to the classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ._common import ZooModel, check_positive_int

__all__ = ["NiN", "nin_block"]


def nin_block(L, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """``Conv(k) ReLU Conv(1x1) ReLU Conv(1x1) ReLU`` (the book's ``nin_block``)."""
    return nn.Sequential(
        L.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding), nn.ReLU(),
        L.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        L.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
    )


class NiN(ZooModel):
    """NiN: four NiN blocks, three max pools, dropout, global average pooling (the book's ``net``).

    A flat ``Sequential`` with children "0".."9" like the book: block, pool,
    block, pool, block, pool, dropout, block (``num_classes`` channels),
    ``AdaptiveAvgPool2d(1)``, ``Flatten``.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    channels : 3 ints
        Channels of the first three blocks (96, 256, 384).
    dropout : float
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        channels: Sequence[int] = (96, 256, 384),
        dropout: float = 0.5,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        if len(channels) != 3:
            raise ValueError(f"{model}: `channels` must have 3 entries, got {tuple(channels)}")
        c1, c2, c3 = (check_positive_int(model, f"channels[{i}]", c) for i, c in enumerate(channels))
        hw = args.spatial()
        hw.conv("block 0", 11, 4, 0).pool("pool 1", 3, 2).conv("block 2", 5, 1, 2).pool("pool 3", 3, 2)
        hw.conv("block 4", 3, 1, 1).pool("pool 5", 3, 2)
        super().__init__(
            nin_block(L, size[0], c1, 11, 4, 0), nn.MaxPool2d(3, stride=2),
            nin_block(L, c1, c2, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            nin_block(L, c2, c3, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            L.Dropout(dropout),
            nin_block(L, c3, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            arguments=args,
        )


PRESETS = {
    "nin": (NiN, dict(input_size=(3, 224, 224), num_classes=1000), "Network in Network, the book's layout on ImageNet"),
    "nin_d2l": (
        NiN, dict(input_size=(1, 224, 224), num_classes=10), "Network in Network as in Dive into Deep Learning",
    ),
}
