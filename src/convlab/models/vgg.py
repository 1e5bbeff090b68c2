"""VGG-11/13/16/19 with and without batch normalization (Simonyan & Zisserman, arXiv:1409.1556).

The layer lists are the paper's configurations A, B, D and E (Table 1), as in
torchvision: numbers are 3x3 convolutions (padding 1) with that many output
channels, each followed by ReLU (BatchNorm2d then ReLU in the ``_bn`` models),
and ``"M"`` is a 2x2 max pool with stride 2. The state_dict keys are
torchvision's (``features.0.weight``, ``classifier.0.weight``, ``classifier.3``,
``classifier.6``).

``vgg11_d2l`` is Dive into Deep Learning's VGG-11 (section 8.2): configuration A
on 1x224x224 with 10 classes and no adaptive pooling; ``channel_divisor=4`` gives
the book's smaller training variant (``small_conv_arch``, ratio 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ..spec import as_bool
from ._common import ZooModel, check_positive_int, named

__all__ = ["VGG", "VGG_LAYERS"]

#: Simonyan & Zisserman (2015), Table 1, configurations A (VGG-11), B (13), D (16) and E (19).
VGG_LAYERS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class VGG(ZooModel):
    """VGG: blocks of 3x3 convolutions and 2x2 max pools, then three fully connected layers.

    Children ``features``, ``avgpool`` (``AdaptiveAvgPool2d``, absent when
    ``avgpool_size=None``), ``flatten`` and ``classifier``, as in torchvision.

    Parameters
    ----------
    layers : str or sequence of int and "M"
        A configuration name from :data:`VGG_LAYERS` ('A', 'B', 'D', 'E') or an explicit list.
    input_size : (channels, height, width)
    num_classes : int
    batch_norm : bool
        ``Conv2d, BatchNorm2d, ReLU`` instead of ``Conv2d, ReLU``.
    avgpool_size : (int, int) or None
        torchvision pools the features to 7x7 (the identity on 224x224); None flattens directly (the book).
    channel_divisor : int
        Divide every convolution's channel count by this (the book's ratio 4); the
        fully connected layers keep ``hidden_features``.
    hidden_features : int
    dropout : float
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.
    """

    def __init__(
        self,
        layers: str | Sequence[int | str] = "D",
        input_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 1000,
        *,
        batch_norm: bool = False,
        avgpool_size: Sequence[int] | None = (7, 7),
        channel_divisor: int = 1,
        hidden_features: int = 4096,
        dropout: float = 0.5,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        batch_norm = as_bool(model, "batch_norm", batch_norm)
        divisor = check_positive_int(model, "channel_divisor", channel_divisor)
        hidden = check_positive_int(model, "hidden_features", hidden_features)
        if isinstance(layers, str):
            if layers not in VGG_LAYERS:
                raise ValueError(f"{model}: `layers` (={layers!r}) must be one of {tuple(VGG_LAYERS)} or a list")
            layers = VGG_LAYERS[layers]
        hw = args.spatial()
        modules: list[nn.Module] = []
        channels = size[0]
        for item in layers:
            where = f"features.{len(modules)}"
            if item == "M":
                modules.append(nn.MaxPool2d(2, stride=2))
                hw.pool(where, 2, 2)
                continue
            out = check_positive_int(model, "layers entry", item)
            if out % divisor:
                raise ValueError(f"{model}: `channel_divisor` (={divisor}) must divide every channel count ({out})")
            out //= divisor
            modules.append(L.Conv2d(channels, out, 3, padding=1))
            if batch_norm:
                modules.append(L.BatchNorm2d(out))
            modules.append(nn.ReLU())
            channels = out
        avgpool = None
        if avgpool_size is not None:
            avgpool = nn.AdaptiveAvgPool2d(tuple(avgpool_size))
            hw.set(tuple(avgpool_size))
        classifier = nn.Sequential(
            L.Linear(channels * hw.area, hidden), nn.ReLU(), L.Dropout(dropout),
            L.Linear(hidden, hidden), nn.ReLU(), L.Dropout(dropout),
            L.Linear(hidden, num_classes),
        )
        super().__init__(named(
            ("features", nn.Sequential(*modules)), ("avgpool", avgpool), ("flatten", nn.Flatten()),
            ("classifier", classifier),
        ), arguments=args)


_DEPTH = {"11": "A", "13": "B", "16": "D", "19": "E"}

PRESETS = {}
for _depth, _config in _DEPTH.items():
    PRESETS[f"vgg{_depth}"] = (
        VGG, dict(layers=_config, input_size=(3, 224, 224), num_classes=1000),
        f"VGG-{_depth} (configuration {_config}) as in torchvision",
    )
    PRESETS[f"vgg{_depth}_bn"] = (
        VGG, dict(layers=_config, input_size=(3, 224, 224), num_classes=1000, batch_norm=True),
        f"VGG-{_depth} with batch normalization as in torchvision",
    )
PRESETS["vgg11_d2l"] = (
    VGG, dict(layers="A", input_size=(1, 224, 224), num_classes=10, avgpool_size=None),
    "VGG-11 as in Dive into Deep Learning (1x224x224, 10 classes; channel_divisor=4 for the book's small variant)",
)
