"""The CIFAR ResNets of the zoo (resnet18_cifar ... resnet152_cifar): the usual CIFAR-10 variant.

kuangliu/pytorch-cifar's ``ResNet18()`` and friends: a 3x3 stride-1 stem with 64
channels and no max pool, torchvision's blocks, global average pooling over the
last 4x4 map, 10 classes. Checked here:

* the presets and the stem (kernel, stride, padding; no ``maxpool`` child);
* the feature-map sizes stage by stage on 3x32x32 (32, 32, 16, 8, 4);
* the parameter count against an independent count written out from the
  architecture, and against the figures the reference implementation prints;
* the state_dict keys are torchvision's ResNet keys, same order and shapes except
  the 3x3 ``conv1.weight``;
* a forward and backward pass in float32 (every parameter gets a gradient), and,
  with torch installed, the same outputs and gradients as a torchvision-style
  torch ResNet with the CIFAR stem, in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab.models as models
from tests.test_models import assert_same_as_torch, walk

CIFAR = {  # name: (block, blocks per stage)
    "resnet18_cifar": ("basic", (2, 2, 2, 2)),
    "resnet34_cifar": ("basic", (3, 4, 6, 3)),
    "resnet50_cifar": ("bottleneck", (3, 4, 6, 3)),
    "resnet101_cifar": ("bottleneck", (3, 4, 23, 3)),
    "resnet152_cifar": ("bottleneck", (3, 8, 36, 3)),
}

# What kuangliu/pytorch-cifar's ResNet18() ... ResNet152() hold (sum of p.numel() over model.parameters()).
REFERENCE_PARAMETERS = {
    "resnet18_cifar": 11_173_962,
    "resnet34_cifar": 21_282_122,
    "resnet50_cifar": 23_520_842,
    "resnet101_cifar": 42_512_970,
    "resnet152_cifar": 58_156_618,
}


def independent_count(block: str, layers: tuple[int, ...], num_classes: int = 10, in_channels: int = 3) -> int:
    """The parameters of a CIFAR ResNet, written out from its definition (not from convlab's code)."""

    def conv(c_in: int, c_out: int, k: int) -> int:  # no bias: a BatchNorm follows every convolution
        return c_in * c_out * k * k

    def bn(c: int) -> int:  # weight and bias
        return 2 * c

    total = conv(in_channels, 64, 3) + bn(64)  # the stem: 3x3, stride 1, no max pool
    c_in = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            if block == "basic":
                c_out = planes
                total += conv(c_in, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes)
            else:
                c_out = 4 * planes
                total += (conv(c_in, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes)
                          + conv(planes, c_out, 1) + bn(c_out))
            if stride != 1 or c_in != c_out:  # the 1x1 projection shortcut
                total += conv(c_in, c_out, 1) + bn(c_out)
            c_in = c_out
    return total + c_in * num_classes + num_classes  # the classifier


@pytest.mark.parametrize("name", list(CIFAR))
def test_presets_are_registered_with_the_cifar_defaults(name):
    assert name in models.list()
    config = models.defaults(name)
    assert (config["input_size"], config["num_classes"], config["stem"]) == ((3, 32, 32), 10, "cifar")
    assert (config["block"], tuple(config["layers"])) == CIFAR[name]
    assert "CIFAR" in models.describe(name) and "[ResNet]" in models.describe(name)


@pytest.mark.parametrize("name", list(CIFAR))
def test_parameter_count_is_the_independent_count(name):
    block, layers = CIFAR[name]
    assert models.count_parameters(name) == independent_count(block, layers) == REFERENCE_PARAMETERS[name]
    assert models.count_parameters(name, num_classes=100) == independent_count(block, layers, num_classes=100)
    assert models.count_parameters(name, input_size=(1, 28, 28)) == independent_count(block, layers, in_channels=1)


@pytest.mark.parametrize("name", ["resnet18_cifar", "resnet34_cifar", "resnet50_cifar"])
def test_built_model_has_the_counted_parameters_and_the_stage_sizes(name):
    model = models.create(name, rng=0)
    assert model.num_parameters() == REFERENCE_PARAMETERS[name]
    assert [child for child, _ in model.named_children()] == [
        "conv1", "bn1", "relu", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]
    conv1 = model.conv1
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride, conv1.padding) == (
        3, 64, (3, 3), (1, 1), (1, 1))
    expansion = 1 if CIFAR[name][0] == "basic" else 4
    shape = model.input_size
    sizes = {}
    for child_name, child in model.named_children():
        shape = walk(child, shape)[0]
        sizes[child_name] = shape
    assert sizes["relu"] == (64, 32, 32)  # no downsampling in the stem
    assert sizes["layer1"] == (64 * expansion, 32, 32)
    assert sizes["layer2"] == (128 * expansion, 16, 16)
    assert sizes["layer3"] == (256 * expansion, 8, 8)
    assert sizes["layer4"] == (512 * expansion, 4, 4)  # kuangliu's avg_pool2d(out, 4) pools exactly this map
    assert sizes["fc"] == (10,)


def test_state_dict_keys_are_torchvisions():
    """The same keys, in the same order, with the same shapes as torchvision's ResNet-18 (10 classes),
    except the 3x3 stem convolution."""
    cifar = models.create("resnet18_cifar", rng=0).state_dict()
    imagenet = models.create("resnet18", num_classes=10, rng=0).state_dict()  # torchvision's keys (test_models)
    assert list(cifar) == list(imagenet)
    assert cifar["conv1.weight"].shape == (64, 3, 3, 3) and imagenet["conv1.weight"].shape == (64, 3, 7, 7)
    assert all(cifar[k].shape == imagenet[k].shape for k in cifar if k != "conv1.weight")
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in cifar
    assert not any(key.startswith(("maxpool", "shortcut", "linear")) for key in cifar)
    assert list(models.create("resnet50_cifar", rng=0).state_dict())[-2:] == ["fc.weight", "fc.bias"]


def test_forward_and_backward_reach_every_parameter():
    model = models.create("resnet18_cifar", rng=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    grad_input = model.backward(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
    assert grad_input.shape == x.shape and np.isfinite(grad_input).all()
    for key, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape and np.isfinite(param.grad).all(), key
        assert np.abs(param.grad).sum() > 0, key


def test_the_stem_is_checked_and_the_imagenet_stem_is_unchanged():
    with pytest.raises(ValueError, match=r"ResNet: `stem` \(='tiny'\) must be one of \('imagenet', 'cifar'\)"):
        models.create("resnet18", stem="tiny")
    assert models.count_parameters("resnet18", stem="imagenet") == 11_689_512
    # the CIFAR stem on a CIFAR-sized input is what the preset is
    assert models.count_parameters("resnet18", input_size=(3, 32, 32), num_classes=10, stem="cifar") == 11_173_962


def test_same_outputs_and_gradients_as_a_torchvision_style_torch_resnet():
    """torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 conv1, maxpool = Identity) loads our
    state_dict strictly; float64 training- and eval-mode outputs and all gradients agree."""
    torch = pytest.importorskip("torch")
    from tests.torch_resnet import BasicBlock, ResNet

    theirs = ResNet(BasicBlock, (2, 2, 2, 2), 10)
    theirs.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    theirs.maxpool = torch.nn.Identity()
    theirs = theirs.double()
    ours = models.create("resnet18_cifar", dtype=np.float64, rng=0)
    assert_same_as_torch(ours, theirs, (2, 3, 32, 32), np.random.default_rng(3))
