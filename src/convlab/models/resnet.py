"""ResNet-18/34/50/101/152 (He et al., arXiv:1512.03385) and ResNeXt-50 32x4d (Xie et al., arXiv:1611.05431).

torchvision's definitions, state_dict keys included (``conv1.weight``,
``bn1.running_var``, ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``,
``fc.bias``). The bottleneck is "ResNet v1.5": its stride sits on the 3x3
convolution, not on the first 1x1 as in the paper, which costs a little more
(4.09 vs 3.8 GMACs for ResNet-50) and is what torchvision's weights expect.
ResNeXt replaces the bottleneck's 3x3 by a grouped convolution
(``groups=32``, ``width_per_group=4``, so 128 channels in the first stage).

Each block is a :class:`~convlab.nn.Residual`: ``relu(body(x) + shortcut(x))``,
where ``shortcut`` is ``downsample`` (1x1 convolution with stride + BatchNorm)
when the shape changes and the identity otherwise. The one ``relu`` child is
used in the body and as the post step, as in torchvision (ReLU is stateless and
may be called more than once per forward pass).

``resnet18_d2l`` is ResNet-18 on Dive into Deep Learning's input (1x96x96, 10
classes, section 8.6); the book's blocks differ slightly (its convolutions
have biases and its 1x1 shortcut has no BatchNorm), the layer shapes are the same.

``resnet18_cifar`` ... ``resnet152_cifar`` (``stem="cifar"``) are the usual CIFAR
ResNets (e.g. kuangliu/pytorch-cifar's ``ResNet18()``; He et al. section 4.2 use
a different, thinner design for CIFAR): the stem is one 3x3 stride-1
convolution with 64 channels and no max pool, so a 3x32x32 input reaches the
stages at 32x32 and the last stage at 4x4; 10 classes. ResNet-18 for CIFAR has
11,173,962 parameters. The blocks, the global average pooling (kuangliu's
``avg_pool2d(out, 4)`` on 4x4) and the key names are torchvision's, so the
state_dict is a torchvision ResNet's with a 3x3 ``conv1.weight``: kuangliu's
checkpoints name the shortcut ``shortcut`` and the classifier ``linear`` and
need their keys renamed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ._common import Layers, ZooModel, check_choice, check_positive_int, named

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


def _downsample(L: Layers, in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(L.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), L.BatchNorm2d(out_channels))


class BasicBlock(nn.Residual):
    """Two 3x3 convolutions (ResNet-18/34): ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1
    body_names = ("conv1", "bn1", "relu", "conv2", "bn2")
    shortcut_name = "downsample"
    post_name = "relu"

    def __init__(self, L: Layers, in_channels: int, planes: int, stride: int = 1, groups: int = 1,
                 width_per_group: int = 64) -> None:
        if groups != 1 or width_per_group != 64:
            raise ValueError(
                f"BasicBlock: only groups=1 and width_per_group=64 are supported (got groups={groups}, "
                f"width_per_group={width_per_group}); use the bottleneck block"
            )
        super().__init__()
        self.conv1 = L.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = L.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = L.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.downsample = _downsample(L, in_channels, planes, stride)


class Bottleneck(nn.Residual):
    """1x1 (reduce) -> 3x3 (stride, groups) -> 1x1 (expand x4), ResNet-50/101/152 and ResNeXt."""

    expansion = 4
    body_names = ("conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3")
    shortcut_name = "downsample"
    post_name = "relu"

    def __init__(self, L: Layers, in_channels: int, planes: int, stride: int = 1, groups: int = 1,
                 width_per_group: int = 64) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        out_channels = planes * self.expansion
        self.conv1 = L.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = L.BatchNorm2d(width)
        self.conv2 = L.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = L.BatchNorm2d(width)
        self.conv3 = L.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = L.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = _downsample(L, in_channels, out_channels, stride)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(ZooModel):
    """ResNet: a stem, four stages of residual blocks, global average pooling, Linear.

    Children ``conv1, bn1, relu, maxpool, layer1..layer4, avgpool, flatten, fc`` as in torchvision
    (no ``maxpool`` with the CIFAR stem).

    Parameters
    ----------
    block : {'basic', 'bottleneck'}
    layers : 4 ints
        Blocks per stage: (2, 2, 2, 2) ResNet-18, (3, 4, 6, 3) ResNet-34/50,
        (3, 4, 23, 3) ResNet-101, (3, 8, 36, 3) ResNet-152.
    input_size : (channels, height, width)
    num_classes : int
    groups, width_per_group : int
        ResNeXt's cardinality and width of each group (1 and 64 for ResNet).
    stem : {'imagenet', 'cifar'}
        'imagenet': a 7x7 stride-2 convolution and a 3x3 stride-2 max pool (torchvision);
        'cifar': a 3x3 stride-1 convolution and no max pool (for 32x32 inputs).
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        block: str = "bottleneck",
        layers: Sequence[int] = (3, 4, 6, 3),
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        groups: int = 1,
        width_per_group: int = 64,
        stem: str = "imagenet",
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        check_choice(model, "block", block, tuple(_BLOCKS))
        check_choice(model, "stem", stem, ("imagenet", "cifar"))
        if len(layers) != 4:
            raise ValueError(f"{model}: `layers` must have 4 entries (blocks per stage), got {tuple(layers)}")
        counts = [check_positive_int(model, f"layers[{i}]", n) for i, n in enumerate(layers)]
        groups = check_positive_int(model, "groups", groups)
        width_per_group = check_positive_int(model, "width_per_group", width_per_group)
        block_class = _BLOCKS[block]
        imagenet = stem == "imagenet"
        stem_conv = (7, 2, 3) if imagenet else (3, 1, 1)  # (kernel, stride, padding); the CIFAR stem keeps the size
        if imagenet:
            args.spatial().conv("conv1", *stem_conv).pool("maxpool", 3, 2, 1)  # later 3x3/s2/p1 never empty
        stages: list[tuple[str, nn.Module]] = []
        in_channels = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for i in range(count):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(block_class(L, in_channels, planes, stride, groups, width_per_group))
                in_channels = planes * block_class.expansion
            stages.append((f"layer{index + 1}", nn.Sequential(*blocks)))
        super().__init__(named(
            ("conv1", L.Conv2d(size[0], 64, stem_conv[0], stride=stem_conv[1], padding=stem_conv[2], bias=False)),
            ("bn1", L.BatchNorm2d(64)),
            ("relu", nn.ReLU()),
            ("maxpool", nn.MaxPool2d(3, stride=2, padding=1) if imagenet else None),
            *stages,
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("fc", L.Linear(in_channels, num_classes)),
        ), arguments=args)


_DEPTHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}

PRESETS = {
    name: (ResNet, dict(block=block, layers=layers, input_size=(3, 224, 224), num_classes=1000),
           f"ResNet-{name[6:]} as in torchvision")
    for name, (block, layers) in _DEPTHS.items()
}
PRESETS["resnext50_32x4d"] = (
    ResNet,
    dict(block="bottleneck", layers=(3, 4, 6, 3), input_size=(3, 224, 224), num_classes=1000, groups=32,
         width_per_group=4),
    "ResNeXt-50 (32x4d) as in torchvision",
)
for _name, (_block, _layers) in _DEPTHS.items():
    PRESETS[f"{_name}_cifar"] = (
        ResNet, dict(block=_block, layers=_layers, input_size=(3, 32, 32), num_classes=10, stem="cifar"),
        f"ResNet-{_name[6:]} for CIFAR: 3x3 stride-1 stem, no max pool (3x32x32, 10 classes; kuangliu/pytorch-cifar)",
    )
PRESETS["resnet18_d2l"] = (
    ResNet, dict(block="basic", layers=(2, 2, 2, 2), input_size=(1, 96, 96), num_classes=10),
    "ResNet-18 on Dive into Deep Learning's input (1x96x96, 10 classes)",
)
