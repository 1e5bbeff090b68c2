"""GoogLeNet / Inception v1 (Szegedy et al., "Going deeper with convolutions", arXiv:1409.4842).

``googlenet`` is torchvision's definition without the auxiliary classifiers:
every convolution is a ``BasicConv2d`` (convolution without bias, BatchNorm2d
with eps 0.001, ReLU), max pools use ``ceil_mode=True``, dropout 0.2 before the
classifier; 6,624,904 parameters. Its "5x5" branch uses a 3x3 kernel, a known
deviation from the paper kept for weight compatibility
(https://github.com/pytorch/vision/issues/906); ``branch3_kernel_size=5`` restores the paper's.
State_dict keys: ``conv1.conv.weight``, ``conv1.bn.running_mean``,
``inception3a.branch1.conv.weight``, ``inception3a.branch2.0.conv.weight``,
``inception3a.branch4.1.bn.bias`` ..., ``fc.weight``.

``googlenet_d2l`` is Dive into Deep Learning's (section 8.4, 1x96x96, 10 classes):
no batch normalization (convolutions with bias, then ReLU), true 5x5 branches,
3x3 stride-2 max pools with padding 1, no dropout.

Each Inception module is a :class:`~convlab.nn.Concat` of four branches on the
same input (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1), concatenated on channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ..spec import as_bool
from ._common import Layers, ZooModel, check_choice, named

__all__ = ["BasicConv2d", "GoogLeNet", "Inception"]

#: (in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) per Inception module: the paper's Table 1.
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Sequential):
    """torchvision's ``BasicConv2d``: ``conv`` (no bias), ``bn`` (eps 0.001), ``relu``.

    With ``batch_norm=False``: ``conv`` (with bias), ``relu`` (the book's GoogLeNet).
    """

    def __init__(self, L: Layers, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, batch_norm: bool = True) -> None:
        conv = L.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=not batch_norm)
        bn = L.BatchNorm2d(out_channels, eps=0.001) if batch_norm else None
        super().__init__(named(("conv", conv), ("bn", bn), ("relu", nn.ReLU())))


class Inception(nn.Concat):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->5x5 | maxpool->1x1."""

    branch_names = ("branch1", "branch2", "branch3", "branch4")

    def __init__(self, L: Layers, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, *, batch_norm: bool = True, branch3_kernel_size: int = 3,
                 pool_ceil_mode: bool = True) -> None:
        batch_norm = as_bool("Inception", "batch_norm", batch_norm)
        pool_ceil_mode = as_bool("Inception", "pool_ceil_mode", pool_ceil_mode)
        super().__init__()
        k = branch3_kernel_size
        self.branch1 = BasicConv2d(L, in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = nn.Sequential(
            BasicConv2d(L, in_channels, ch3x3red, 1, batch_norm=batch_norm),
            BasicConv2d(L, ch3x3red, ch3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(L, in_channels, ch5x5red, 1, batch_norm=batch_norm),
            BasicConv2d(L, ch5x5red, ch5x5, k, padding=k // 2, batch_norm=batch_norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=pool_ceil_mode),
            BasicConv2d(L, in_channels, pool_proj, 1, batch_norm=batch_norm),
        )


class GoogLeNet(ZooModel):
    """GoogLeNet (Inception v1) without auxiliary classifiers; children named as in torchvision.

    Parameters
    ----------
    input_size : (channels, height, width)
    num_classes : int
    batch_norm : bool
        torchvision's BN after every convolution (True) or the book's plain conv + ReLU.
    branch3_kernel_size : {3, 5}
        Kernel of the "5x5" branch: torchvision 3, the paper and the book 5.
    pooling : {'ceil', 'padded'}
        'ceil': torchvision's 3x3 stride-2 max pools with ``ceil_mode=True`` and a 2x2
        pool before inception5a; 'padded': the book's 3x3 stride-2 pools with padding 1.
    dropout : float
        Before the final Linear (torchvision 0.2; 0 omits the layer, as in the book).
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        batch_norm: bool = True,
        branch3_kernel_size: int = 3,
        pooling: str = "ceil",
        dropout: float = 0.2,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        batch_norm = as_bool(model, "batch_norm", batch_norm)
        check_choice(model, "branch3_kernel_size", branch3_kernel_size, (3, 5))
        check_choice(model, "pooling", pooling, ("ceil", "padded"))
        hw = args.spatial()
        ceil = pooling == "ceil"

        def pool(where: str, last: bool = False) -> nn.MaxPool2d:
            if not ceil:
                hw.pool(where, 3, 2, 1)
                return nn.MaxPool2d(3, stride=2, padding=1)
            kernel = 2 if last else 3
            hw.pool(where, kernel, 2, 0, ceil_mode=True)
            return nn.MaxPool2d(kernel, stride=2, ceil_mode=True)

        def inception(name: str) -> Inception:
            return Inception(L, *INCEPTION_CHANNELS[name], batch_norm=batch_norm,
                             branch3_kernel_size=branch3_kernel_size, pool_ceil_mode=ceil)

        hw.conv("conv1", 7, 2, 3)
        layers: list[tuple[str, nn.Module | None]] = [
            ("conv1", BasicConv2d(L, size[0], 64, 7, stride=2, padding=3, batch_norm=batch_norm)),
            ("maxpool1", pool("maxpool1")),
            ("conv2", BasicConv2d(L, 64, 64, 1, batch_norm=batch_norm)),
            ("conv3", BasicConv2d(L, 64, 192, 3, padding=1, batch_norm=batch_norm)),
            ("maxpool2", pool("maxpool2")),
            ("inception3a", inception("inception3a")),
            ("inception3b", inception("inception3b")),
            ("maxpool3", pool("maxpool3")),
        ]
        layers += [(name, inception(name)) for name in ("inception4a", "inception4b", "inception4c",
                                                        "inception4d", "inception4e")]
        layers += [
            ("maxpool4", pool("maxpool4", last=True)),
            ("inception5a", inception("inception5a")),
            ("inception5b", inception("inception5b")),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("dropout", L.Dropout(dropout) if dropout > 0 else None),
            ("fc", L.Linear(1024, num_classes)),
        ]
        super().__init__(named(*layers), arguments=args)


PRESETS = {
    "googlenet": (
        GoogLeNet, dict(input_size=(3, 224, 224), num_classes=1000),
        "GoogLeNet (Inception v1) as in torchvision, without auxiliary classifiers",
    ),
    "googlenet_d2l": (
        GoogLeNet,
        dict(input_size=(1, 96, 96), num_classes=10, batch_norm=False, branch3_kernel_size=5, pooling="padded",
             dropout=0.0),
        "GoogLeNet as in Dive into Deep Learning (no batch norm, 5x5 branches, 1x96x96, 10 classes)",
    ),
}
