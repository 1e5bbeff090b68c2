"""AlexNet: torchvision's single-tower version and the Dive into Deep Learning version.

``alexnet`` is torchvision's ``AlexNet`` (the channel counts 64-192-384-256-256
of Krizhevsky's "One weird trick for parallelizing convolutional neural
networks", arXiv:1404.5997, single column), 61,100,840 parameters, state_dict
keys ``features.0.weight`` ... ``classifier.6.bias``.

``alexnet_d2l`` is the book's (Dive into Deep Learning, section 8.1): the 2012
paper's channel counts 96-256-384-384-256 on one GPU, first convolution padded
by 1 so that 224x224 gives 54x54, no adaptive pooling (the classifier sees
256*5*5 = 6400 features on 224x224), dropout after each hidden ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ..spec import as_bool
from ._common import ZooModel, check_positive_int, named

__all__ = ["AlexNet"]


class AlexNet(ZooModel):
    """AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012): five convolutions, three fully connected layers.

    Children ``features`` (convolutions, ReLUs, max pools), ``avgpool``
    (``AdaptiveAvgPool2d``; absent when ``pool_output_size=None``), ``flatten`` and
    ``classifier``, as in torchvision.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    channels : 5 ints
        Output channels of the five convolutions.
    conv1_padding : int
        Padding of the 11x11 stride-4 convolution (torchvision 2, the book 1).
    pool_output_size : (int, int) or None
        ``AdaptiveAvgPool2d`` output before the classifier (torchvision (6, 6)), or
        None to flatten the last max pool's output directly (the book).
    dropout : float
    dropout_first : bool
        torchvision's classifier is ``Dropout Linear ReLU Dropout Linear ReLU Linear``;
        False gives the book's ``Linear ReLU Dropout Linear ReLU Dropout Linear``.
    hidden_features : int
        Width of the two hidden fully connected layers (4096).
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        channels: Sequence[int] = (64, 192, 384, 256, 256),
        conv1_padding: int = 2,
        pool_output_size: Sequence[int] | None = (6, 6),
        dropout: float = 0.5,
        dropout_first: bool = True,
        hidden_features: int = 4096,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        dropout_first = as_bool(model, "dropout_first", dropout_first)
        hidden = check_positive_int(model, "hidden_features", hidden_features)
        if len(channels) != 5:
            raise ValueError(f"{model}: `channels` must have 5 entries (one per convolution), got {tuple(channels)}")
        c1, c2, c3, c4, c5 = (check_positive_int(model, f"channels[{i}]", c) for i, c in enumerate(channels))
        hw = args.spatial()
        hw.conv("features.0", 11, 4, conv1_padding).pool("features.2", 3, 2)
        hw.conv("features.3", 5, 1, 2).pool("features.5", 3, 2).pool("features.12", 3, 2)
        features = nn.Sequential(
            L.Conv2d(size[0], c1, 11, stride=4, padding=conv1_padding), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            L.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            L.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            L.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
            L.Conv2d(c4, c5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        )
        avgpool = None
        if pool_output_size is not None:
            avgpool = nn.AdaptiveAvgPool2d(tuple(pool_output_size))
            hw.set(tuple(pool_output_size))
        in_features = c5 * hw.area
        if dropout_first:
            classifier = nn.Sequential(
                L.Dropout(dropout), L.Linear(in_features, hidden), nn.ReLU(),
                L.Dropout(dropout), L.Linear(hidden, hidden), nn.ReLU(),
                L.Linear(hidden, num_classes),
            )
        else:
            classifier = nn.Sequential(
                L.Linear(in_features, hidden), nn.ReLU(), L.Dropout(dropout),
                L.Linear(hidden, hidden), nn.ReLU(), L.Dropout(dropout),
                L.Linear(hidden, num_classes),
            )
        super().__init__(named(
            ("features", features), ("avgpool", avgpool), ("flatten", nn.Flatten()), ("classifier", classifier)
        ), arguments=args)


PRESETS = {
    "alexnet": (
        AlexNet,
        dict(input_size=(3, 224, 224), num_classes=1000),
        "AlexNet as in torchvision (64-192-384-256-256 channels, adaptive 6x6 pooling)",
    ),
    "alexnet_d2l": (
        AlexNet,
        dict(input_size=(1, 224, 224), num_classes=10, channels=(96, 256, 384, 384, 256), conv1_padding=1,
             pool_output_size=None, dropout_first=False),
        "AlexNet as in Dive into Deep Learning (96-256-384-384-256 channels, 1x224x224, 10 classes)",
    ),
}
