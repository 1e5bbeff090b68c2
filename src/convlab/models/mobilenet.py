"""MobileNet v1 (Howard et al., arXiv:1704.04861) and MobileNet v2 (Sandler et al., arXiv:1801.04381).

MobileNet v1 (``mobilenet_v1``, width multiplier 1.0, 224x224): a 3x3 stride-2
convolution, then 13 depthwise separable convolutions (3x3 depthwise + 1x1
pointwise, each followed by BatchNorm and ReLU) as in the paper's Table 1,
global average pooling and a fully connected layer: 4,231,976 parameters
(paper: 4.2 million) and 568.7 million multiply-adds with the classifier
(paper, Table 1-2: 569 million). The paper's "Avg Pool 7x7" is an
``AdaptiveAvgPool2d(1)`` here (the same on 224x224, and any input size works).
There is no torchvision MobileNet v1; the keys follow the same scheme as v2
(``features.0.0.weight`` for the first convolution, ``features.N.M`` inside
depthwise separable block N, ``classifier.weight``).

MobileNet v2 (``mobilenet_v2``) is torchvision's: inverted residual blocks
(1x1 expansion, 3x3 depthwise, 1x1 linear projection) with ReLU6 and an identity
shortcut when the stride is 1 and the channels match; 3,504,872 parameters.
Keys ``features.0.0.weight``, ``features.1.conv.0.0.weight``,
``features.2.conv.1.1.running_mean``, ``features.18.0.weight``, ``classifier.1.weight``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .. import nn
from ._common import Layers, ZooModel, check_positive_int, conv_bn_act, named

__all__ = ["InvertedResidual", "MobileNetV1", "MobileNetV2", "make_divisible"]

#: Howard et al. (2017), Table 1: (output channels, stride) of the 13 depthwise separable layers.
MOBILENET_V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)

#: Sandler et al. (2018), Table 2: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down (torchvision's ``_make_divisible``).

    >>> make_divisible(32 * 0.75), make_divisible(1280 * 1.4)
    (24, 1792)
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class MobileNetV1(ZooModel):
    """MobileNet v1: depthwise separable convolutions (Howard et al., 2017).

    Children ``features`` (block 0: ``Conv 3x3/2, BN, ReLU``; blocks 1-13:
    ``depthwise 3x3, BN, ReLU, pointwise 1x1, BN, ReLU``), ``avgpool``, ``flatten``,
    ``dropout`` (only when ``dropout > 0``) and ``classifier``.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    width_multiplier : float
        The paper's alpha: every layer's channels times alpha (rounded down).
    dropout : float
        Before the classifier (the paper has none: default 0).
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        width_multiplier: float = 1.0,
        dropout: float = 0.0,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        if not width_multiplier > 0:
            raise ValueError(f"{model}: `width_multiplier` (={width_multiplier!r}) must be > 0")
        hw = args.spatial()

        def width(channels: int) -> int:
            return max(1, int(channels * width_multiplier))

        channels = width(32)
        blocks: list[nn.Module] = [conv_bn_act(L, size[0], channels, 3, stride=2)]
        hw.conv("features.0", 3, 2, 1)
        for i, (out, stride) in enumerate(MOBILENET_V1_LAYERS, start=1):
            out = width(out)
            blocks.append(nn.Sequential(
                L.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False),
                L.BatchNorm2d(channels), nn.ReLU(),
                L.Conv2d(channels, out, 1, bias=False), L.BatchNorm2d(out), nn.ReLU(),
            ))
            hw.conv(f"features.{i}", 3, stride, 1)
            channels = out
        super().__init__(named(
            ("features", nn.Sequential(*blocks)),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("dropout", L.Dropout(dropout) if dropout > 0 else None),
            ("classifier", L.Linear(channels, num_classes)),
        ), arguments=args)


class InvertedResidual(nn.Residual):
    """MobileNet v2 block with its identity shortcut (stride 1, same channels): ``x + conv(x)``, no post activation."""

    body_names = ("conv",)
    shortcut_name = None
    post_name = None

    def __init__(self, conv: nn.Sequential) -> None:
        super().__init__()
        self.conv = conv


class LinearBottleneck(nn.Sequential):
    """MobileNet v2 block without a shortcut (stride 2 or a channel change): just ``conv(x)``; child ``conv``."""

    def __init__(self, conv: nn.Sequential) -> None:
        super().__init__(OrderedDict(conv=conv))


def inverted_residual(L: Layers, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> nn.Module:
    """torchvision's ``InvertedResidual``: ``[1x1 expand, BN, ReLU6] 3x3 depthwise, BN, ReLU6, 1x1 project, BN``."""
    hidden = round(in_channels * expand_ratio)
    layers: list[nn.Module] = []
    if expand_ratio != 1:
        layers.append(conv_bn_act(L, in_channels, hidden, 1, activation=nn.ReLU6))
    layers += [
        conv_bn_act(L, hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6),
        L.Conv2d(hidden, out_channels, 1, bias=False),
        L.BatchNorm2d(out_channels),
    ]
    conv = nn.Sequential(*layers)
    if stride == 1 and in_channels == out_channels:
        return InvertedResidual(conv)
    return LinearBottleneck(conv)


class MobileNetV2(ZooModel):
    """MobileNet v2 as in torchvision: children ``features`` (0-18), ``avgpool``, ``flatten``, ``classifier``.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    width_mult : float
        Channel multiplier; channels are rounded with :func:`make_divisible` to ``round_nearest``.
    round_nearest : int
    dropout : float
        ``classifier = Sequential(Dropout(dropout), Linear)``.
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        width_mult: float = 1.0,
        round_nearest: int = 8,
        dropout: float = 0.2,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        round_nearest = check_positive_int(model, "round_nearest", round_nearest)
        if not width_mult > 0:
            raise ValueError(f"{model}: `width_mult` (={width_mult!r}) must be > 0")
        hw = args.spatial()
        channels = make_divisible(32 * width_mult, round_nearest)
        last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [conv_bn_act(L, size[0], channels, 3, stride=2, activation=nn.ReLU6)]
        hw.conv("features.0", 3, 2, 1)
        for t, c, n, s in MOBILENET_V2_SETTING:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(inverted_residual(L, channels, out, stride, t))
                hw.conv(f"features.{len(features) - 1}", 3, stride, 1)
                channels = out
        features.append(conv_bn_act(L, channels, last_channel, 1, activation=nn.ReLU6))
        super().__init__(OrderedDict(
            features=nn.Sequential(*features),
            avgpool=nn.AdaptiveAvgPool2d((1, 1)),
            flatten=nn.Flatten(),
            classifier=nn.Sequential(L.Dropout(dropout), L.Linear(last_channel, num_classes)),
        ), arguments=args)


PRESETS = {
    "mobilenet_v1": (
        MobileNetV1, dict(input_size=(3, 224, 224), num_classes=1000),
        "MobileNet v1 (Howard et al. 2017), width multiplier 1.0",
    ),
    "mobilenet_v2": (
        MobileNetV2, dict(input_size=(3, 224, 224), num_classes=1000), "MobileNet v2 as in torchvision",
    ),
}
