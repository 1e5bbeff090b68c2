"""ShuffleNet v1 (Zhang et al., arXiv:1707.01083) and ShuffleNet v2 (Ma et al., arXiv:1807.11164).

ShuffleNet v1 (``shufflenet_v1_g3``: 1x, g = 3, the paper's Table 1): a 3x3
stride-2 convolution to 24 channels, a 3x3 stride-2 max pool, three stages of
ShuffleNet units (4, 8, 4 units; 240, 480, 960 channels for g = 3), global
average pooling and a fully connected layer. A unit (the paper's Fig. 2b/c) is
``1x1 group conv (g), BN, ReLU, channel shuffle (g), 3x3 depthwise (stride), BN,
1x1 group conv (g), BN``, with bottleneck channels a quarter of the unit's
output channels. Stride 1: ``relu(x + unit(x))``; stride 2: the shortcut is a
3x3 stride-2 average pool and the two paths are concatenated, then ReLU (the
shortcut's channels plus the unit's make the stage's channels). As in the
paper, the first 1x1 convolution of stage 2 is not grouped (its input has only
24 channels). There is no torchvision ShuffleNet v1; the layer names here are convlab's.

ShuffleNet v2 (``shufflenet_v2_x1_0``) is torchvision's (2,278,604 parameters).
Keys ``conv1.0.weight``, ``stage2.0.branch1.0.weight``, ``stage2.0.branch2.0.weight``,
``stage3.1.branch2.3.weight``, ``conv5.1.running_var``, ``fc.weight``. A unit is a
:class:`~convlab.nn.Concat` of ``branch1`` and ``branch2``:

* stride 2: both branches see the whole input; ``branch1`` is ``3x3 depthwise/2, BN,
  1x1, BN, ReLU``, ``branch2`` is ``1x1, BN, ReLU, 3x3 depthwise/2, BN, 1x1, BN, ReLU``;
* stride 1 (channel split): ``branch1`` is a ``ChannelSlice`` of the first half
  (passed through unchanged); the second branch is the chain ``split`` (a
  ``ChannelSlice`` of the second half, no parameters) then ``branch2``, the same
  layers as above with stride 1 (``branch_names = ("branch1", ("split", "branch2"))``),
  so the torchvision keys ``branch2.0`` ... ``branch2.7`` are unchanged.

The concatenation is followed by ``ChannelShuffle(2)``, which torchvision applies
inside the unit. Here it is the next entry of the stage's ``Sequential``
(named ``shuffle0``, ``shuffle1``, ... after units ``0``, ``1``, ...), so the
units keep torchvision's names and the model stays a tree of plain containers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .. import nn
from ._common import Layers, ZooModel, check_choice, check_positive_int, named

__all__ = ["SHUFFLENET_V1_CHANNELS", "ShuffleNetV1", "ShuffleNetV2", "ShuffleV2Unit"]

#: Zhang et al. (2017), Table 1: output channels of stages 2-4 for each number of groups (1x).
SHUFFLENET_V1_CHANNELS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


def _main_path(L: Layers, in_channels: int, out_channels: int, mid: int, first_groups: int, groups: int,
               stride: int) -> OrderedDict[str, nn.Module]:
    """The unit's main path: 1x1 gconv, BN, ReLU, shuffle, 3x3 depthwise (stride), BN, 1x1 gconv, BN."""
    return OrderedDict(
        conv1=L.Conv2d(in_channels, mid, 1, groups=first_groups, bias=False),
        bn1=L.BatchNorm2d(mid),
        relu=nn.ReLU(),
        shuffle=nn.ChannelShuffle(groups) if groups > 1 else nn.Identity(),
        conv2=L.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False),
        bn2=L.BatchNorm2d(mid),
        conv3=L.Conv2d(mid, out_channels, 1, groups=groups, bias=False),
        bn3=L.BatchNorm2d(out_channels),
    )


class ShuffleV1Unit(nn.Residual):
    """A stride-1 ShuffleNet v1 unit (Fig. 2b): ``relu(x + body(x))``; the one ``relu`` serves body and post."""

    body_names = ("conv1", "bn1", "relu", "shuffle", "conv2", "bn2", "conv3", "bn3")
    shortcut_name = None
    post_name = "relu"

    def __init__(self, L: Layers, channels: int, groups: int) -> None:
        super().__init__()
        for name, module in _main_path(L, channels, channels, channels // 4, groups, groups, 1).items():
            setattr(self, name, module)


class ShuffleV1DownUnit(nn.Sequential):
    """A stride-2 ShuffleNet v1 unit (Fig. 2c): ``relu(concat(avgpool3x3/2(x), body(x)))``."""

    def __init__(self, L: Layers, in_channels: int, out_channels: int, groups: int, first_groups: int) -> None:
        body = nn.Sequential(_main_path(L, in_channels, out_channels - in_channels, out_channels // 4, first_groups,
                                        groups, 2))
        super().__init__(OrderedDict(
            concat=nn.Concat(OrderedDict(shortcut=nn.AvgPool2d(3, stride=2, padding=1), body=body)),
            relu=nn.ReLU(),
        ))


class ShuffleNetV1(ZooModel):
    """ShuffleNet v1, 1x (Zhang et al., 2017, Table 1): children ``conv1, maxpool, stage2..4, avgpool, flatten, fc``.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    groups : {1, 2, 3, 4, 8}
        Groups of the pointwise convolutions; picks the stage widths of Table 1.
    stage_repeats : 3 ints
        Units per stage (4, 8, 4).
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        groups: int = 3,
        stage_repeats: Sequence[int] = (4, 8, 4),
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        check_choice(model, "groups", groups, tuple(SHUFFLENET_V1_CHANNELS))
        if len(stage_repeats) != 3:
            raise ValueError(f"{model}: `stage_repeats` must have 3 entries, got {tuple(stage_repeats)}")
        repeats = [check_positive_int(model, f"stage_repeats[{i}]", n) for i, n in enumerate(stage_repeats)]
        hw = args.spatial()
        hw.conv("conv1", 3, 2, 1).pool("maxpool", 3, 2, 1)
        channels = 24
        stages = []
        for index, (out, count) in enumerate(zip(SHUFFLENET_V1_CHANNELS[groups], repeats, strict=True)):
            # "we do not apply group convolution on the first pointwise layer" (stage 2's first unit)
            first_groups = 1 if index == 0 else groups
            units: list[nn.Module] = [ShuffleV1DownUnit(L, channels, out, groups, first_groups)]
            hw.conv(f"stage{index + 2}.0", 3, 2, 1)
            units += [ShuffleV1Unit(L, out, groups) for _ in range(count - 1)]
            stages.append((f"stage{index + 2}", nn.Sequential(*units)))
            channels = out
        super().__init__(named(
            ("conv1", nn.Sequential(L.Conv2d(size[0], 24, 3, stride=2, padding=1, bias=False),
                                    L.BatchNorm2d(24), nn.ReLU())),
            ("maxpool", nn.MaxPool2d(3, stride=2, padding=1)),
            *stages,
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("fc", L.Linear(channels, num_classes)),
        ), arguments=args)


class ShuffleV2Unit(nn.Concat):
    """A ShuffleNet v2 unit without its final channel shuffle: ``concat(branch1(x), branch2(x))``."""

    branch_names = ("branch1", "branch2")

    def __init__(self, L: Layers, in_channels: int, out_channels: int, stride: int) -> None:
        half = out_channels // 2
        if stride == 1 and in_channels != 2 * half:
            raise ValueError(
                f"ShuffleV2Unit: a stride-1 unit needs in_channels (={in_channels}) == out_channels "
                f"(={out_channels}) and an even number of channels"
            )

        def depthwise(channels: int) -> nn.Conv2d:
            return L.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False)

        super().__init__()
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise(in_channels), L.BatchNorm2d(in_channels),
                L.Conv2d(in_channels, half, 1, bias=False), L.BatchNorm2d(half), nn.ReLU(),
            )
        else:
            self.branch1 = nn.ChannelSlice(0, half)  # x1: the first half passes through
            self.split = nn.ChannelSlice(half, in_channels)  # x2: the second half, into branch2
        self.branch2 = nn.Sequential(
            L.Conv2d(in_channels if stride > 1 else half, half, 1, bias=False), L.BatchNorm2d(half), nn.ReLU(),
            depthwise(half), L.BatchNorm2d(half),
            L.Conv2d(half, half, 1, bias=False), L.BatchNorm2d(half), nn.ReLU(),
        )
        # stride 2: both branches see the whole input; stride 1: branch2 is the chain split -> branch2
        self.branch_names = ("branch1", "branch2") if stride > 1 else ("branch1", ("split", "branch2"))


class ShuffleNetV2(ZooModel):
    """ShuffleNet v2 as in torchvision: children ``conv1, maxpool, stage2..4, conv5, avgpool, flatten, fc``.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    stages_repeats : 3 ints
        Units per stage (4, 8, 4).
    stages_out_channels : 5 ints
        Channels of conv1, the three stages and conv5: (24, 116, 232, 464, 1024) for x1.0,
        (24, 48, 96, 192, 1024) x0.5, (24, 176, 352, 704, 1024) x1.5, (24, 244, 488, 976, 2048) x2.0.
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        stages_repeats: Sequence[int] = (4, 8, 4),
        stages_out_channels: Sequence[int] = (24, 116, 232, 464, 1024),
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        if len(stages_repeats) != 3:
            raise ValueError(f"{model}: `stages_repeats` must have 3 entries, got {tuple(stages_repeats)}")
        if len(stages_out_channels) != 5:
            raise ValueError(f"{model}: `stages_out_channels` must have 5 entries, got {tuple(stages_out_channels)}")
        repeats = [check_positive_int(model, f"stages_repeats[{i}]", n) for i, n in enumerate(stages_repeats)]
        widths = [check_positive_int(model, f"stages_out_channels[{i}]", c) for i, c in enumerate(stages_out_channels)]
        for c in widths[1:4]:
            if c % 2:
                raise ValueError(f"{model}: the stage channels {tuple(widths[1:4])} must be even (channel split)")
        hw = args.spatial()
        hw.conv("conv1", 3, 2, 1).pool("maxpool", 3, 2, 1)
        channels = widths[0]
        stages = []
        for index, (out, count) in enumerate(zip(widths[1:4], repeats, strict=True)):
            units: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(count):
                units[str(i)] = ShuffleV2Unit(L, channels if i == 0 else out, out, 2 if i == 0 else 1)
                units[f"shuffle{i}"] = nn.ChannelShuffle(2)
            hw.conv(f"stage{index + 2}.0", 3, 2, 1)
            stages.append((f"stage{index + 2}", nn.Sequential(units)))
            channels = out
        super().__init__(named(
            ("conv1", nn.Sequential(L.Conv2d(size[0], widths[0], 3, stride=2, padding=1, bias=False),
                                    L.BatchNorm2d(widths[0]), nn.ReLU())),
            ("maxpool", nn.MaxPool2d(3, stride=2, padding=1)),
            *stages,
            ("conv5", nn.Sequential(L.Conv2d(channels, widths[4], 1, bias=False), L.BatchNorm2d(widths[4]),
                                    nn.ReLU())),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("fc", L.Linear(widths[4], num_classes)),
        ), arguments=args)


PRESETS = {
    "shufflenet_v1_g3": (
        ShuffleNetV1, dict(input_size=(3, 224, 224), num_classes=1000, groups=3),
        "ShuffleNet v1 1x, g=3 (Zhang et al. 2017)",
    ),
    "shufflenet_v2_x1_0": (
        ShuffleNetV2, dict(input_size=(3, 224, 224), num_classes=1000), "ShuffleNet v2 x1.0 as in torchvision",
    ),
}
