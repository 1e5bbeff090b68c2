"""The benchmark's data: the layers, the named suites and the targets, as plain tables.

Nothing here runs or measures; :mod:`.runner` reads these tables. A layer is
one convolution of a real network (square or cubic kernel, zero padding, no
bias); a suite is a tuple of layer names; a target bounds the ratio convlab /
torch NCHW (or / the fastest SciPy function) of the layers of one class.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ANALYSIS_TARGETS",
    "BY_NAME",
    "CLASSES",
    "DEFAULT_SUITE",
    "GRADIENT_FACTOR",
    "LAYERS",
    "MEMORY_LIMIT",
    "PASSES",
    "PASS_LABEL",
    "SCIPY",
    "SUITES",
    "SUITE_ALIASES",
    "TARGETS",
    "TORCH",
    "TORCH_CHANNELS_LAST",
    "Layer",
    "Target",
]

#: The passes timed for every layer, in table order.
PASSES = ("forward", "backward", "input_grad", "weight_grad")
PASS_LABEL = {"forward": "forward", "backward": "backward", "input_grad": "input grad", "weight_grad": "weight grad"}

#: The layer classes, each with a geometric mean of its ratios.
CLASSES = ("3x3", "1x1", "stem/strided", "depthwise small", "depthwise large", "1-D", "3-D", "transposed",
           "dilated", "single-channel")

#: The implementations compared: torch in two layouts, and SciPy's functions for single-channel layers.
TORCH, TORCH_CHANNELS_LAST = "torch", "torch_channels_last"
SCIPY = ("scipy.signal.correlate", "scipy.signal.fftconvolve", "scipy.ndimage.correlate")


class Layer(NamedTuple):
    """One convolution of a real network: square (cubic) kernel, zero padding, no bias."""

    name: str
    layer_class: str  # one of CLASSES
    in_channels: int
    out_channels: int
    kernel_size: int  # the same in every spatial dimension
    size: tuple[int, ...]  # spatial input size; its length is the number of spatial dimensions
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False
    batch: int | None = None  # a fixed batch (the 3-D layer's 2); None: the run's batch

    @property
    def ndim(self) -> int:
        return len(self.size)


def _dw(name: str, layer_class: str, channels: int, k: int, size: int, stride: int = 1) -> Layer:
    """A depthwise layer (``groups = channels``, 'same' padding ``k // 2``)."""
    return Layer(name, layer_class, channels, channels, k, (size, size), stride, k // 2, groups=channels)


LAYERS: tuple[Layer, ...] = (
    # 3x3, stride 1 (padding 1)
    Layer("resnet18.layer1.0.conv1", "3x3", 64, 64, 3, (56, 56), padding=1),
    Layer("resnet18.layer2.1.conv1", "3x3", 128, 128, 3, (28, 28), padding=1),
    Layer("resnet18.layer3.1.conv1", "3x3", 256, 256, 3, (14, 14), padding=1),
    Layer("resnet18.layer4.1.conv1", "3x3", 512, 512, 3, (7, 7), padding=1),
    Layer("vgg16.conv3_1", "3x3", 128, 256, 3, (56, 56), padding=1),
    Layer("vgg16.conv3_2", "3x3", 256, 256, 3, (56, 56), padding=1),
    # 1x1 (ResNet-50 bottlenecks)
    Layer("resnet50.layer1.0.conv3", "1x1", 64, 256, 1, (56, 56)),
    Layer("resnet50.layer1.1.conv1", "1x1", 256, 64, 1, (56, 56)),
    Layer("resnet50.layer3.1.conv1", "1x1", 1024, 256, 1, (14, 14)),
    Layer("resnet50.layer3.0.conv3", "1x1", 256, 1024, 1, (14, 14)),
    # the stem and strided convolutions
    Layer("resnet18.conv1", "stem/strided", 3, 64, 7, (224, 224), stride=2, padding=3),
    Layer("resnet18.layer2.0.conv1", "stem/strided", 64, 128, 3, (56, 56), stride=2, padding=1),
    Layer("resnet50.layer2.0.downsample.0", "stem/strided", 256, 512, 1, (56, 56), stride=2),
    # depthwise 3x3 (MobileNetV2) and 7x7 (ConvNeXt-T)
    _dw("mobilenetv2.features.2.conv.1.0", "depthwise small", 96, 3, 112, stride=2),
    _dw("mobilenetv2.features.3.conv.1.0", "depthwise small", 144, 3, 56),
    _dw("mobilenetv2.features.8.conv.1.0", "depthwise small", 384, 3, 14),
    _dw("mobilenetv2.features.15.conv.1.0", "depthwise small", 960, 3, 7),
    _dw("convnext_tiny.features.1.0.block.0", "depthwise small", 96, 7, 56),
    _dw("convnext_tiny.features.5.0.block.0", "depthwise small", 384, 7, 14),
    # depthwise 31x31 (RepLKNet-31B)
    _dw("replknet31b.stage1.large_kernel", "depthwise large", 128, 31, 56),
    _dw("replknet31b.stage2.large_kernel", "depthwise large", 256, 31, 28),
    # 1-D: wav2vec 2.0's first feature-extractor layer (no padding, as in the model) and a k9 conv
    Layer("wav2vec2.feature_extractor.conv_layers.0", "1-D", 1, 512, 10, (16000,), stride=5),
    Layer("conv1d.k9.c128", "1-D", 128, 128, 9, (16384,), padding=4),
    # 3-D: 3x3x3 on 8 frames of 56x56, batch 2
    Layer("conv3d.k3.c64", "3-D", 64, 64, 3, (8, 56, 56), padding=1, batch=2),
    # transposed: DCGAN-style 4x4/2 (padding 1) and U-Net's 2x2/2 up-convolution
    Layer("dcgan.up4x4s2.c128", "transposed", 128, 64, 4, (28, 28), stride=2, padding=1, transposed=True),
    Layer("unet.up2x2s2.c256", "transposed", 256, 128, 2, (28, 28), stride=2, transposed=True),
    # dilated (DeepLab-style atrous 3x3, dilation 2)
    Layer("deeplab.3x3d2.c256", "dilated", 256, 256, 3, (28, 28), padding=2, dilation=2),
    # single channel (image filtering)
    Layer("image1024.k3", "single-channel", 1, 1, 3, (1024, 1024), padding=1),
    Layer("image1024.k11", "single-channel", 1, 1, 11, (1024, 1024), padding=5),
    Layer("image1024.k31", "single-channel", 1, 1, 31, (1024, 1024), padding=15),
)

BY_NAME: dict[str, Layer] = {layer.name: layer for layer in LAYERS}

#: Named suites (``--suite``): tuples of layer names.
SUITES: dict[str, tuple[str, ...]] = {
    # every layer above: ten classes of real networks' convolutions
    "full": tuple(BY_NAME),
    "resnet18": ("resnet18.layer1.0.conv1", "resnet18.layer2.1.conv1", "resnet18.layer3.1.conv1",
                 "resnet18.layer4.1.conv1", "resnet18.conv1", "resnet18.layer2.0.conv1"),
    "resnet50": ("resnet50.layer1.0.conv3", "resnet50.layer1.1.conv1", "resnet50.layer3.1.conv1",
                 "resnet50.layer3.0.conv3", "resnet50.layer2.0.downsample.0"),
    "depthwise": ("mobilenetv2.features.2.conv.1.0", "mobilenetv2.features.3.conv.1.0",
                  "mobilenetv2.features.8.conv.1.0", "mobilenetv2.features.15.conv.1.0",
                  "convnext_tiny.features.1.0.block.0", "convnext_tiny.features.5.0.block.0",
                  "replknet31b.stage1.large_kernel", "replknet31b.stage2.large_kernel"),
    "image": ("image1024.k3", "image1024.k11", "image1024.k31"),
    # --quick's default: cheap layers of five classes, for CI smoke runs
    "quick": ("resnet18.layer3.1.conv1", "resnet50.layer3.1.conv1", "mobilenetv2.features.8.conv.1.0",
              "unet.up2x2s2.c256", "image1024.k3"),
}
DEFAULT_SUITE = "full"
#: Former suite names, still accepted by ``--suite`` (not listed).
SUITE_ALIASES = {"issue4": "full"}


class Target(NamedTuple):
    """A performance target: the ratio convlab / torch NCHW (or / the fastest SciPy function) of a layer class.

    It covers the layers of ``layer_class``; ``min_channels`` and ``min_size``
    narrow it to the layers with at least that many input and output channels
    and that spatial size, ``except_for`` leaves out the layers another target
    (by name) covers. ``limit`` bounds the forward ratio; the input and weight
    gradients get ``GRADIENT_FACTOR * limit`` unless ``weight_limit`` says
    otherwise; ``strict`` means "faster than" (``<``) for the forward pass.
    """

    name: str
    layer_class: str
    limit: float
    versus: str = TORCH  # or "scipy": the fastest of the SciPy functions (forward only)
    weight_limit: float | None = None
    strict: bool = False
    min_channels: int = 0
    min_size: int = 0
    except_for: str | None = None

    def applies(self, layer: Layer) -> bool:
        """Whether this target covers ``layer``."""
        if self.except_for is not None and _BY_TARGET_NAME[self.except_for].applies(layer):
            return False
        return (layer.layer_class == self.layer_class
                and min(layer.in_channels, layer.out_channels) >= self.min_channels
                and min(layer.size) >= self.min_size)


TARGETS: tuple[Target, ...] = (
    Target("3x3 s1, >= 128 ch, >= 56x56", "3x3", 0.55, min_channels=128, min_size=56),
    Target("3x3 s1, other", "3x3", 1.0, except_for="3x3 s1, >= 128 ch, >= 56x56"),
    Target("1x1", "1x1", 1.0),
    Target("stem and strided", "stem/strided", 1.2),
    Target("dilated", "dilated", 1.2),
    Target("transposed", "transposed", 1.2),
    Target("1-D", "1-D", 1.2),
    Target("3-D", "3-D", 1.5),
    Target("depthwise 3x3 and 7x7", "depthwise small", 3.0),
    Target("depthwise >= 13x13", "depthwise large", 0.1, weight_limit=0.1),
    Target("single channel vs torch", "single-channel", 1.0, strict=True),
    Target("single channel vs fastest SciPy", "single-channel", 1.0, versus="scipy", strict=True),
)
_BY_TARGET_NAME = {target.name: target for target in TARGETS}

MEMORY_LIMIT = 2.0  # peak memory <= 2x torch NCHW's, every layer and pass
GRADIENT_FACTOR = 1.2  # gradients within 1.2x of the forward target of their class

#: The analysis of a zoo model (``--analysis``): wall time and extra peak memory of one call.
ANALYSIS_TARGETS = {"seconds": 0.5, "peak_memory_bytes": 100_000_000}
