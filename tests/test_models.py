"""Tests of the zoo (convlab.models).

* every ImageNet model's parameter count equals the published figure exactly and
  its multiply-accumulates (MACs) are within 1% of it;
* torchvision's state_dict key names: exact key lists for AlexNet/VGG, and for
  ResNet/ResNeXt, GoogLeNet, MobileNet v2 and ShuffleNet v2 a torch module written
  like torchvision's loads our state_dict strictly and computes the same outputs,
  gradients and running statistics (torch is the second oracle, as in the engine tests);
* the Dive into Deep Learning variants produce the layer shapes the book prints;
* one forward + backward per family gives the right shapes and a gradient for every parameter;
* LeNet-5's layers have the parameter and connection counts of LeCun et al. (1998);
* the registry's errors.

The MAC count walks the model with convlab.costs.conv_cost and convlab.shapes
(the analysis module will replace this helper). Big models are built once each,
no forward pass runs at 224x224 on a large model.
"""

from __future__ import annotations

import gc
import math
from collections import OrderedDict

import numpy as np
import pytest

import convlab.models as models
from convlab import nn
from convlab.costs import conv_cost
from convlab.shapes import conv_output_shape, pool_output_shape

# A whole network in float64 accumulates rounding through ~20-150 layers, and the
# backward of training-mode BatchNorm divides by batch standard deviations, so
# model-level comparisons use 1e-8 relative to the array's magnitude (single
# layers are compared at 1e-10 in the layer tests).
NETWORK_TOLERANCE = 1e-8


def assert_network_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, what
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=NETWORK_TOLERANCE, atol=NETWORK_TOLERANCE * scale, err_msg=what)

# --------------------------------------------------------------------------- the MAC walker (test helper)

_SHAPE_PRESERVING = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity,
                     nn.ChannelShuffle)


def walk(module: nn.Module, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(output shape, MACs) of ``module`` on one sample of ``shape`` = (C, H, W) or (features,).

    MACs count convolutions (``conv_cost``) and Linear layers (in x out); pooling,
    normalization, activations and additions are not multiply-accumulates.
    """
    if isinstance(module, nn.Residual):
        out, macs = shape, 0
        for child in module.body_modules():
            out, cost = walk(child, out)
            macs += cost
        shortcut = module.shortcut_module()
        if shortcut is not None:
            short, cost = walk(shortcut, shape)
            macs += cost
            assert short == out, f"residual shapes differ: body {out}, shortcut {short}"
        post = module.post_module()
        return (walk(post, out)[0], macs) if post is not None else (out, macs)
    if isinstance(module, nn.Concat):
        outputs, macs = [], 0
        for chain in module.branch_modules():
            out = shape
            for child in chain:
                out, cost = walk(child, out)
                macs += cost
            outputs.append(out)
        assert len({o[1:] for o in outputs}) == 1, f"concat of different spatial sizes {outputs}"
        return (sum(o[0] for o in outputs),) + outputs[0][1:], macs
    if isinstance(module, nn.Sequential):
        macs = 0
        for child in module:
            shape, cost = walk(child, shape)
            macs += cost
        return shape, macs
    if isinstance(module, nn.Conv2d):
        hw = conv_output_shape(module.spec, shape[1:])
        cost = conv_cost(module.in_channels, module.out_channels, module.kernel_size, hw, module.groups)
        return (module.out_channels, *map(int, hw)), cost.macs
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return (shape[0], *map(int, pool_output_shape(module.spec, shape[1:]))), 0
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return (shape[0], *module.output_size), 0
    if isinstance(module, nn.Flatten):
        return (math.prod(shape),), 0
    if isinstance(module, nn.Linear):
        return (module.out_features,), module.in_features * module.out_features
    if isinstance(module, nn.ChannelSlice):
        return (module.stop - module.start, *shape[1:]), 0
    if isinstance(module, _SHAPE_PRESERVING):
        return shape, 0
    raise TypeError(f"walk: no rule for {type(module).__name__}")


# --------------------------------------------------------------------------- published sizes

# name: (parameters, MACs). Sources:
# * torchvision: the "num_params" and "_ops" (the "GFLOPS" column of the model table at
#   https://docs.pytorch.org/vision/stable/models.html, which counts multiply-adds) of each
#   model's IMAGENET1K_V1 weights in torchvision/models/{alexnet,vgg,googlenet,resnet,
#   mobilenetv2,shufflenetv2}.py.
# * mobilenet_v1: Howard et al., arXiv:1704.04861, Table 1 and 8: 4.2 million parameters, 569 million
#   mult-adds (1.0 MobileNet-224); the exact 4,231,976 is the trainable count of Keras'
#   keras.applications.MobileNet(alpha=1.0) (BN gamma/beta included, moving statistics not).
# * shufflenet_v1_g3: Zhang et al., arXiv:1707.01083, Table 1: complexity 137 MFLOPs for g = 3 at 1x
#   (their FLOPs are multiply-adds; the text rounds it to "140 MFLOPs", which our 137.46 M is 1.8% under).
#   The paper gives no parameter count for this model; mmpretrain's reimplementation reports 1.87 M
#   (https://mmpretrain.readthedocs.io, ShuffleNet V1 page), and we count 1,865,728.
PUBLISHED = {
    "alexnet": (61_100_840, 0.714e9),
    "vgg11": (132_863_336, 7.609e9),
    "vgg13": (133_047_848, 11.308e9),
    "vgg16": (138_357_544, 15.47e9),
    "vgg19": (143_667_240, 19.632e9),
    "vgg11_bn": (132_868_840, 7.609e9),
    "vgg13_bn": (133_053_736, 11.308e9),
    "vgg16_bn": (138_365_992, 15.47e9),
    "vgg19_bn": (143_678_248, 19.632e9),
    "googlenet": (6_624_904, 1.498e9),
    "resnet18": (11_689_512, 1.814e9),
    "resnet34": (21_797_672, 3.664e9),
    "resnet50": (25_557_032, 4.089e9),
    "resnet101": (44_549_160, 7.801e9),
    "resnet152": (60_192_808, 11.514e9),
    "resnext50_32x4d": (25_028_904, 4.23e9),
    "mobilenet_v2": (3_504_872, 0.301e9),
    "shufflenet_v2_x1_0": (2_278_604, 0.145e9),
    "mobilenet_v1": (4_231_976, 569e6),
    "shufflenet_v1_g3": (1_865_728, 137e6),  # parameters: our count (see above), MACs: Table 1
}


def _vgg_keys(layers: str, batch_norm: bool) -> list[str]:
    """torchvision's VGG state_dict keys, derived from its make_layers rule."""
    keys, index = [], 0
    for item in models.VGG_LAYERS[layers]:
        if item == "M":
            index += 1
            continue
        keys += [f"features.{index}.weight", f"features.{index}.bias"]
        if batch_norm:
            keys += [f"features.{index + 1}.{k}" for k in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        index += 3 if batch_norm else 2
    return keys + [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]


EXACT_KEYS = {
    "alexnet": [f"features.{i}.{k}" for i in (0, 3, 6, 8, 10) for k in ("weight", "bias")]
    + [f"classifier.{i}.{k}" for i in (1, 4, 6) for k in ("weight", "bias")],
    **{f"vgg{d}{bn}": _vgg_keys(c, bool(bn)) for d, c in (("11", "A"), ("13", "B"), ("16", "D"), ("19", "E"))
       for bn in ("", "_bn")},
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameters_and_macs_match_the_published_figures(name):
    params, macs = PUBLISHED[name]
    model = models.create(name, rng=0)
    assert model.num_parameters() == params
    shape, counted = walk(model, model.input_size)
    assert shape == (1000,)
    assert abs(counted - macs) <= 0.01 * macs, f"{name}: {counted:,} MACs vs published {macs:,.0f}"
    if name in EXACT_KEYS:
        assert list(model.state_dict()) == EXACT_KEYS[name]
    del model
    gc.collect()


def test_lenet_counts():
    # 6*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10 (the book's net)
    model = models.create("lenet", rng=0)
    assert model.num_parameters() == 156 + 2416 + 48120 + 10164 + 850 == 61706


def test_lenet5_layers_have_the_papers_parameters_and_connections():
    # LeCun et al. 1998, section II.B: parameters and connections of C1, S2, C3, S4, C5, F6.
    model = models.create("lenet5", rng=0)
    layers = {"C1": model[0], "S2": model[2], "C3": model[4], "S4": model[6], "C5": model[8], "F6": model[11]}
    assert {k: m.num_parameters() for k, m in layers.items()} == {
        "C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164,
    }
    assert sum(m.num_parameters() for m in layers.values()) == 60_000
    assert model.num_parameters() == 60_000 + 850  # + the Linear output layer replacing the fixed RBF units
    # connections = multiply-accumulates + one bias per output unit
    shape = (1, 32, 32)
    connections = {}
    for module in model:
        out, macs = walk(module, shape)
        for key, layer in layers.items():
            if layer is module and key in ("C1", "C3", "C5", "F6"):
                connections[key] = macs + math.prod(out)
        shape = out
    assert connections == {"C1": 122_304, "C3": 151_600, "C5": 48_120, "F6": 10_164}
    assert shape == (10,)


def test_lenet5_c3_follows_the_connection_table():
    c3 = models.create("lenet5", rng=0)[4]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 6, 14, 14))
    with nn.no_grad():
        base = c3(x.astype(np.float32))
        assert base.shape == (1, 16, 10, 10)
        for source in range(6):
            bumped = x.copy()
            bumped[:, source] += 1.0
            changed = np.abs(c3(bumped.astype(np.float32)) - base).max(axis=(0, 2, 3)) > 0
            expected = [source in inputs for inputs in models.LENET5_C3_TABLE]
            assert changed.tolist() == expected, f"S2 map {source}"


# --------------------------------------------------------------------------- Dive into Deep Learning shapes


def _shapes_by_layer(model: nn.Sequential, x: np.ndarray) -> list[tuple[str, tuple[int, ...]]]:
    """Run the top-level children one by one (like the book's ``for layer in net``), recording output shapes."""
    out = []
    with nn.no_grad():
        for name, child in model.named_children():
            if isinstance(child, nn.Sequential) and name == "features":
                for sub_name, sub in child.named_children():
                    x = sub(x)
                    out.append((f"features.{sub_name}", x.shape[1:]))
            elif isinstance(child, nn.Sequential) and name == "classifier":
                for sub_name, sub in child.named_children():
                    x = sub(x)
                    out.append((f"classifier.{sub_name}", x.shape[1:]))
            else:
                x = child(x)
                out.append((name, x.shape[1:]))
    return out


def _input(model: nn.Module) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, *model.input_size)).astype(np.float32)


def test_d2l_lenet_shapes():
    model = models.create("lenet", rng=0)
    shapes = [s for _, s in _shapes_by_layer(model, _input(model))]
    assert shapes == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5), (400,),
                      (120,), (120,), (84,), (84,), (10,)]


def test_d2l_alexnet_shapes():
    model = models.create("alexnet_d2l", rng=0)
    assert model.input_size == (1, 224, 224) and model.num_classes == 10
    shapes = [s for _, s in _shapes_by_layer(model, _input(model))]
    assert shapes == [(96, 54, 54), (96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 26, 26), (256, 12, 12),
                      (384, 12, 12), (384, 12, 12), (384, 12, 12), (384, 12, 12), (256, 12, 12), (256, 12, 12),
                      (256, 5, 5), (6400,), (4096,), (4096,), (4096,), (4096,), (4096,), (4096,), (10,)]


def test_d2l_vgg11_shapes():
    # The book prints the full-width VGG-11 on 1x224x224: each block ends in a 2x2 max pool.
    expected_blocks = [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    expected_head = [(25088,), (4096,), (4096,), (4096,), (4096,), (4096,), (4096,), (10,)]
    full = models.create("vgg11_d2l", rng=0)
    shape, blocks = full.input_size, []
    for module in full.features:  # static shapes: the full-width forward is too slow for a unit test
        shape, _ = walk(module, shape)
        if isinstance(module, nn.MaxPool2d):
            blocks.append(shape)
    head = []
    for module in [full.flatten, *full.classifier]:
        shape, _ = walk(module, shape)
        head.append(shape)
    assert (blocks, head) == (expected_blocks, expected_head)
    del full
    # the book's training variant (channels / 4) really runs
    small = models.create("vgg11_d2l", channel_divisor=4, rng=0)
    recorded = _shapes_by_layer(small, _input(small))
    pools = [s for name, s in recorded if name.startswith("features.") and isinstance(small.features[name[9:]],
                                                                                           nn.MaxPool2d)]
    assert pools == [(c // 4, h, w) for c, h, w in expected_blocks]
    assert [s for name, s in recorded if not name.startswith("features.")] == [(6272,), *expected_head[1:]]


def test_d2l_nin_shapes():
    model = models.create("nin_d2l", rng=0)
    shapes = [s for _, s in _shapes_by_layer(model, _input(model))]
    assert shapes == [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12), (384, 5, 5),
                      (384, 5, 5), (10, 5, 5), (10, 1, 1), (10,)]


def test_d2l_googlenet_shapes():
    model = models.create("googlenet_d2l", rng=0)
    recorded = dict(_shapes_by_layer(model, _input(model)))
    # the book's blocks b1..b5 end at maxpool1, maxpool2, maxpool3, maxpool4 and the flatten
    assert [recorded[k] for k in ("maxpool1", "maxpool2", "maxpool3", "maxpool4", "flatten", "fc")] == [
        (64, 24, 24), (192, 12, 12), (480, 6, 6), (832, 3, 3), (1024,), (10,)]
    # torchvision's GoogLeNet (ceil-mode pools, batch norm) gives the same sizes on this input
    assert walk(models.create("googlenet", input_size=(1, 96, 96), num_classes=10, rng=0), (1, 96, 96))[0] == (10,)


def test_d2l_resnet18_shapes():
    model = models.create("resnet18_d2l", rng=0)
    recorded = dict(_shapes_by_layer(model, _input(model)))
    assert [recorded[k] for k in ("maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc")] == [
        (64, 24, 24), (64, 24, 24), (128, 12, 12), (256, 6, 6), (512, 3, 3), (512, 1, 1), (512,), (10,)]


# --------------------------------------------------------------------------- forward + backward per family

SMOKE = {
    "lenet": dict(),
    "lenet5": dict(),
    "alexnet": dict(input_size=(3, 63, 63), num_classes=10, hidden_features=64),
    "vgg11_bn": dict(input_size=(3, 32, 32), num_classes=10, hidden_features=64, channel_divisor=8),
    "nin_d2l": dict(input_size=(1, 67, 67)),
    "googlenet": dict(input_size=(3, 64, 64), num_classes=10),
    "resnet18": dict(input_size=(3, 64, 64), num_classes=10),
    "resnext50_32x4d": dict(input_size=(3, 64, 64), num_classes=10),
    "mobilenet_v1": dict(input_size=(3, 64, 64), num_classes=10),
    "mobilenet_v2": dict(input_size=(3, 64, 64), num_classes=10),
    "shufflenet_v1_g3": dict(input_size=(3, 64, 64), num_classes=10),
    "shufflenet_v2_x1_0": dict(input_size=(3, 64, 64), num_classes=10),
}


@pytest.mark.parametrize("name", list(SMOKE))
def test_forward_backward_reaches_every_parameter(name):
    model = models.create(name, rng=0, **SMOKE[name])
    x = _input(model)
    y = model(x)
    assert y.shape == (1, model.num_classes) and y.dtype == np.float32 and np.isfinite(y).all()
    assert walk(model, model.input_size)[0] == (model.num_classes,)
    grad_input = model.backward(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
    assert grad_input.shape == x.shape and np.isfinite(grad_input).all()
    for key, param in model.named_parameters():
        assert param.grad is not None, f"{key} has no gradient"
        assert param.grad.shape == param.shape and np.isfinite(param.grad).all(), key
    assert sum(np.abs(p.grad).sum() > 0 for p in model.parameters()) > 0.9 * len(list(model.parameters()))


# --------------------------------------------------------------------------- torch oracle: torchvision's layout


def _torch_references():
    """torch modules written like torchvision's (same layers, same attribute names, so the same state_dict keys)."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    F = torch.nn.functional

    from tests.torch_resnet import BasicBlock, Bottleneck, ResNet

    def conv_bn_act(i, o, k, s=1, g=1, act=tnn.ReLU6):
        return tnn.Sequential(tnn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), tnn.BatchNorm2d(o), act())

    class InvertedResidual(tnn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = round(inp * t)
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn_act(inp, hidden, 1)] if t != 1 else []
            layers += [conv_bn_act(hidden, hidden, 3, stride, hidden), tnn.Conv2d(hidden, oup, 1, bias=False),
                       tnn.BatchNorm2d(oup)]
            self.conv = tnn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(tnn.Module):
        def __init__(self, num_classes, dropout):
            super().__init__()
            features, channels = [conv_bn_act(3, 32, 3, 2)], 32
            for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                               (6, 160, 3, 2), (6, 320, 1, 1)):
                for i in range(n):
                    features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                    channels = c
            features.append(conv_bn_act(channels, 1280, 1))
            self.features = tnn.Sequential(*features)
            self.classifier = tnn.Sequential(tnn.Dropout(dropout), tnn.Linear(1280, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), (1, 1)), 1))

    def channel_shuffle(x, groups):
        n, c, h, w = x.shape
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    class ShuffleUnit(tnn.Module):
        def __init__(self, inp, oup, stride):
            super().__init__()
            self.stride = stride
            half = oup // 2
            if stride > 1:
                self.branch1 = tnn.Sequential(
                    tnn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), tnn.BatchNorm2d(inp),
                    tnn.Conv2d(inp, half, 1, bias=False), tnn.BatchNorm2d(half), tnn.ReLU())
            else:
                self.branch1 = tnn.Sequential()
            self.branch2 = tnn.Sequential(
                tnn.Conv2d(inp if stride > 1 else half, half, 1, bias=False), tnn.BatchNorm2d(half), tnn.ReLU(),
                tnn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), tnn.BatchNorm2d(half),
                tnn.Conv2d(half, half, 1, bias=False), tnn.BatchNorm2d(half), tnn.ReLU())

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(tnn.Module):
        def __init__(self, num_classes, repeats=(4, 8, 4), widths=(24, 116, 232, 464, 1024)):
            super().__init__()
            self.conv1 = tnn.Sequential(tnn.Conv2d(3, widths[0], 3, 2, 1, bias=False), tnn.BatchNorm2d(widths[0]),
                                        tnn.ReLU())
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            channels = widths[0]
            for index, (count, out) in enumerate(zip(repeats, widths[1:4], strict=True)):
                units = [ShuffleUnit(channels, out, 2)] + [ShuffleUnit(out, out, 1) for _ in range(count - 1)]
                setattr(self, f"stage{index + 2}", tnn.Sequential(*units))
                channels = out
            self.conv5 = tnn.Sequential(tnn.Conv2d(channels, widths[4], 1, bias=False), tnn.BatchNorm2d(widths[4]),
                                        tnn.ReLU())
            self.fc = tnn.Linear(widths[4], num_classes)

        def forward(self, x):
            x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
            return self.fc(self.conv5(x).mean([2, 3]))

    class BasicConv2d(tnn.Module):
        def __init__(self, i, o, **kwargs):
            super().__init__()
            self.conv = tnn.Conv2d(i, o, bias=False, **kwargs)
            self.bn = tnn.BatchNorm2d(o, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    class Inception(tnn.Module):
        def __init__(self, i, c1, c3r, c3, c5r, c5, pp):
            super().__init__()
            self.branch1 = BasicConv2d(i, c1, kernel_size=1)
            self.branch2 = tnn.Sequential(BasicConv2d(i, c3r, kernel_size=1),
                                          BasicConv2d(c3r, c3, kernel_size=3, padding=1))
            self.branch3 = tnn.Sequential(BasicConv2d(i, c5r, kernel_size=1),
                                          BasicConv2d(c5r, c5, kernel_size=3, padding=1))
            self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                          BasicConv2d(i, pp, kernel_size=1))

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    class GoogLeNet(tnn.Module):
        def __init__(self, num_classes, dropout):
            super().__init__()
            self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(64, 64, kernel_size=1)
            self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
            self.maxpool2 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
            self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
            self.maxpool3 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
            self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
            self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
            self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
            self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
            self.maxpool4 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
            self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
            self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.dropout = tnn.Dropout(dropout)
            self.fc = tnn.Linear(1024, num_classes)

        def forward(self, x):
            for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                         "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                         "inception5a", "inception5b", "avgpool"):
                x = getattr(self, name)(x)
            return self.fc(self.dropout(torch.flatten(x, 1)))

    return torch, {
        "resnet18": lambda: ResNet(BasicBlock, (2, 2, 2, 2), 10),
        "resnext50_32x4d": lambda: ResNet(Bottleneck, (1, 1, 1, 1), 10, groups=32, width_per_group=4),
        "mobilenet_v2": lambda: MobileNetV2(10, dropout=0.0),
        "shufflenet_v2_x1_0": lambda: ShuffleNetV2(10),
        "googlenet": lambda: GoogLeNet(10, dropout=0.0),
    }


# dropout 0 so that the training-mode passes are deterministic on both sides; ResNeXt with one block per
# stage to keep the float64 NumPy pass short (its full key list is the same pattern, its size is tested above).
# The input is 64x64 so that the last BatchNorms see 2x2 maps: with a single value per sample, batch
# statistics over 2 samples are ill-conditioned and amplify rounding far beyond float64 precision.
ORACLE = {
    "resnet18": dict(),
    "resnext50_32x4d": dict(layers=(1, 1, 1, 1)),
    "mobilenet_v2": dict(dropout=0.0),
    "shufflenet_v2_x1_0": dict(),
    "googlenet": dict(dropout=0.0),
}


def assert_same_as_torch(ours, theirs, x_shape: tuple[int, ...], rng: np.random.Generator) -> None:
    """``theirs`` (a float64 torch module) loads ``ours``' state_dict strictly; a training pass with batch
    statistics (outputs, input gradient, every parameter gradient), an eval pass and the running statistics
    agree. BatchNorm affine parameters and running statistics are made non-trivial first."""
    import torch

    for module in ours.modules():  # non-trivial BatchNorm affine parameters and running statistics
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.weight.shape)
            module.bias.data[...] = rng.uniform(-0.5, 0.5, module.bias.shape)
            module.running_mean[...] = rng.uniform(-0.1, 0.1, module.running_mean.shape)
            module.running_var[...] = rng.uniform(0.5, 1.5, module.running_var.shape)
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict()), "state_dict keys (and their order) differ from torchvision's"
    theirs.load_state_dict(OrderedDict((k, torch.from_numpy(v.copy())) for k, v in state.items()), strict=True)

    x = rng.standard_normal(x_shape)
    y = ours(x)
    grad_output = rng.standard_normal(y.shape)
    grad_input = ours.backward(grad_output)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = theirs(x_t)
    y_t.backward(torch.from_numpy(grad_output))
    assert_network_close(y, y_t.detach().numpy(), "training-mode output")
    assert_network_close(grad_input, x_t.grad.numpy(), "input gradient")
    our_parameters = dict(ours.named_parameters())
    assert list(our_parameters) == [key for key, _ in theirs.named_parameters()]
    for key, param in theirs.named_parameters():
        assert_network_close(our_parameters[key].grad, param.grad.numpy(), f"gradient of {key}")

    ours.eval()
    theirs.eval()
    with torch.no_grad():
        assert_network_close(ours(x), theirs(torch.from_numpy(x)).numpy(), "eval-mode output (running statistics)")
    for key, value in theirs.state_dict().items():
        assert_network_close(ours.state_dict()[key], value.numpy(), f"state {key}")


@pytest.mark.parametrize("name", list(ORACLE))
def test_torchvision_layout_loads_and_computes_the_same(name):
    """A torchvision-style torch module loads our state_dict strictly, then outputs, gradients and
    running statistics agree in float64 (training pass with batch statistics, then an eval pass)."""
    _, references = _torch_references()
    ours = models.create(name, input_size=(3, 64, 64), num_classes=10, dtype=np.float64, rng=0, **ORACLE[name])
    assert_same_as_torch(ours, references[name]().double(), (2, 3, 64, 64), np.random.default_rng(3))


def test_torch_reference_has_torchvision_key_examples():
    # spot checks of key names quoted from torchvision's checkpoints
    keys = {
        "resnet18": ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.bias"],
        "googlenet": ["conv1.conv.weight", "conv1.bn.running_var", "inception3a.branch1.conv.weight",
                      "inception3a.branch2.1.conv.weight", "inception5b.branch4.1.bn.bias", "fc.weight"],
        "mobilenet_v2": ["features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight",
                         "features.1.conv.1.weight", "features.2.conv.3.running_var", "features.18.0.weight",
                         "classifier.1.weight"],
        "shufflenet_v2_x1_0": ["conv1.0.weight", "conv1.1.bias", "stage2.0.branch1.0.weight",
                               "stage2.0.branch2.0.weight", "stage3.1.branch2.5.weight",
                               "stage4.3.branch2.6.running_var", "conv5.0.weight",
                               "fc.weight"],
    }
    for name, expected in keys.items():
        state = models.create(name, input_size=(3, 32, 32), rng=0).state_dict()
        missing = [k for k in expected if k not in state]
        assert not missing, f"{name}: {missing}"


# --------------------------------------------------------------------------- configuration and errors


def test_list_names_every_architecture():
    names = models.list()
    assert names == sorted(names)
    for expected in ("lenet", "lenet5", "alexnet", "vgg11", "vgg19_bn", "nin", "googlenet", "resnet18", "resnet152",
                     "resnext50_32x4d", "mobilenet_v1", "mobilenet_v2", "shufflenet_v1_g3", "shufflenet_v2_x1_0",
                     "alexnet_d2l", "vgg11_d2l", "nin_d2l", "googlenet_d2l", "resnet18_d2l"):
        assert expected in names
    assert models.defaults("vgg16_bn")["batch_norm"] is True
    assert models.defaults("resnet18")["input_size"] == (3, 224, 224)
    assert "VGG" in models.describe("vgg11_d2l")


def test_create_overrides_the_preset():
    model = models.create("resnet18", input_size=(1, 32, 32), num_classes=7, rng=0)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 7
    a = models.create("lenet", rng=5).state_dict()
    b = models.create("lenet", rng=5).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # an int seed makes the initial weights reproducible
    assert models.create("lenet", dtype=np.float64, rng=0)[0].weight.dtype == np.float64
    assert models.create("VGG11_d2l", channel_divisor=4, rng=0).features[0].out_channels == 16


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'resnet-18'; did you mean 'resnet18'"):
        models.create("resnet-18")
    with pytest.raises(ValueError, match="unknown model 'inception_v3'"):
        models.defaults("inception_v3")
    with pytest.raises(TypeError, match="`name` must be a str"):
        models.create(18)


def test_unknown_configuration_lists_the_accepted_ones():
    with pytest.raises(TypeError, match=r"unknown configuration 'batchnorm' for VGG; accepted: layers, input_size"):
        models.create("vgg11", batchnorm=True)


@pytest.mark.parametrize(
    ("name", "config", "error", "message"),
    [
        ("resnet18", dict(input_size=(3, 224)), ValueError, r"`input_size` must be \(channels, height, width\)"),
        ("resnet18", dict(input_size=(3, 0, 224)), ValueError, r"`input_size\[1\]` \(=0\) must be >= 1"),
        ("resnet18", dict(num_classes=2.5), TypeError, "`num_classes` must be an int"),
        ("lenet", dict(input_size=(1, 8, 8)), ValueError,
         r"`input_size` \(1, 8, 8\) is too small: at C3 .* \(floor\(\(4 \+ 0 \+ 0 - \(5-1\) - 1\) / 1\) \+ 1 = 0\)"),
        ("alexnet_d2l", dict(input_size=(1, 64, 64)), ValueError, "is too small: at features.12"),
        ("googlenet", dict(input_size=(3, 8, 8)), ValueError, "is too small: at maxpool3"),
        ("vgg11", dict(layers="F"), ValueError, r"`layers` \(='F'\) must be one of \('A', 'B', 'D', 'E'\)"),
        ("vgg11", dict(channel_divisor=3), ValueError, r"`channel_divisor` \(=3\) must divide"),
        ("resnet18", dict(block="wide"), ValueError, r"`block` \(='wide'\) must be one of \('basic', 'bottleneck'\)"),
        ("resnet18", dict(groups=32), ValueError, "BasicBlock: only groups=1"),
        ("googlenet", dict(branch3_kernel_size=7), ValueError, r"must be one of \(3, 5\)"),
        ("shufflenet_v1_g3", dict(groups=5), ValueError, r"`groups` \(=5\) must be one of \(1, 2, 3, 4, 8\)"),
        ("shufflenet_v2_x1_0", dict(stages_out_channels=(24, 117, 232, 464, 1024)), ValueError, "must be even"),
        ("lenet", dict(rng="seed"), TypeError, "`rng` must be a numpy.random.Generator, an int seed or None"),
    ],
)
def test_invalid_configurations_raise_clear_errors(name, config, error, message):
    with pytest.raises(error, match=message):
        models.create(name, **config)


def test_googlenet_paper_branch_and_shufflenet_v1_groups():
    # the paper's 5x5 branch costs more parameters than torchvision's 3x3 (issue pytorch/vision#906)
    paper = models.create("googlenet", branch3_kernel_size=5, rng=0)
    extra = sum(c5r * c5 * 16 for _, _, _, _, c5r, c5, _ in models.googlenet.INCEPTION_CHANNELS.values())
    assert paper.num_parameters() == 6_624_904 + extra
    # every group count of the paper's Table 1 builds and stays near 140 MFLOPs (Table 1: 143, 140, 137, 133, 137)
    for groups, published in ((1, 143e6), (2, 140e6), (4, 133e6), (8, 137e6)):
        model = models.create("shufflenet_v1_g3", groups=groups, rng=0)
        macs = walk(model, model.input_size)[1]
        assert abs(macs - published) <= 0.02 * published, (groups, macs)


# --------------------------------------------------------------------------- counting without weights


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_count_parameters_gives_the_published_figures(name):
    assert models.count_parameters(name) == PUBLISHED[name][0]


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("lenet", {}),
        ("lenet5", {}),
        ("lenet", dict(input_size=(3, 40, 36), num_classes=7, activation="relu")),
        ("alexnet_d2l", dict(input_size=(1, 96, 96), hidden_features=32)),
        ("vgg11_d2l", dict(input_size=(1, 64, 64), channel_divisor=8, hidden_features=64)),
        ("vgg13_bn", dict(input_size=(3, 32, 32), channel_divisor=16, hidden_features=32, avgpool_size=(1, 1))),
        ("nin_d2l", {}),
        ("googlenet_d2l", {}),
        ("googlenet", dict(input_size=(3, 64, 64), num_classes=10, branch3_kernel_size=5)),
        ("resnet18_d2l", {}),
        ("resnext50_32x4d", dict(input_size=(3, 32, 32), num_classes=10, layers=(1, 1, 1, 1))),
        ("mobilenet_v1", dict(width_multiplier=0.5, dropout=0.2)),
        ("mobilenet_v2", dict(width_mult=0.75)),
        ("shufflenet_v1_g3", dict(groups=8, num_classes=10)),
        ("shufflenet_v2_x1_0", dict(stages_out_channels=(24, 48, 96, 192, 1024))),
        ("resnet18_cifar", {}),
    ],
)
def test_count_parameters_equals_the_built_model(name, config):
    assert models.count_parameters(name, **config) == models.create(name, rng=0, **config).num_parameters()


def test_counting_allocates_no_weights():
    """VGG-16's 138M parameters (553 MB in float32) are counted with a few hundred kB of Python objects."""
    import tracemalloc

    tracemalloc.start()
    try:
        count = models.count_parameters("vgg16")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 138_357_544
    assert peak < 4 * 2**20, f"counting VGG-16 allocated {peak / 2**20:.1f} MiB"


def test_counting_leaves_create_unchanged():
    count = models.count_parameters("lenet")
    model = models.create("lenet", rng=0)  # after counting, layers hold weights again
    assert count == model.num_parameters() == 61_706 and isinstance(model[0], nn.Conv2d)
    assert not nn.is_weightless(model[0].weight)
    np.testing.assert_array_equal(model(np.zeros((1, 1, 28, 28), np.float32)).shape, (1, 10))


@pytest.mark.parametrize(
    ("name", "config", "error", "message"),
    [
        ("vgg11", dict(batchnorm=True), TypeError,
         r"convlab.models.count_parameters\('vgg11'\): unknown configuration 'batchnorm' for VGG"),
        ("resnet18", dict(input_size=(3, 224)), ValueError, r"ResNet: `input_size` must be \(channels, height"),
        ("resnet18", dict(num_classes=0), ValueError, r"ResNet: `num_classes` \(=0\) must be >= 1"),
        ("lenet", dict(input_size=(1, 8, 8)), ValueError, r"LeNet: `input_size` \(1, 8, 8\) is too small: at C3"),
        ("shufflenet_v1_g3", dict(groups=5), ValueError, r"`groups` \(=5\) must be one of"),
        ("lenet", dict(dtype=np.int64), TypeError, r"LeNet: `dtype` \(=int64\) must be float32 or float64"),
        ("lenet", dict(rng="seed"), TypeError, "LeNet: `rng` must be a numpy.random.Generator"),
        ("nope", {}, ValueError, "unknown model 'nope'"),
    ],
)
def test_count_parameters_checks_what_create_checks(name, config, error, message):
    with pytest.raises(error, match=message):
        models.count_parameters(name, **config)
    with pytest.raises(error, match=message.replace("count_parameters", "create")):
        models.create(name, **config)


def test_every_architecture_shares_the_zoo_base():
    for name in models.list():
        assert issubclass(models._PRESETS[name].architecture, models.ZooModel), name
    model = models.create("nin_d2l", rng=0)
    assert model.input_size == (1, 224, 224) and model.num_classes == 10


def test_catalog_lists_every_model_without_building_it():
    entries = models.catalog()
    assert [e.name for e in entries] == models.list()
    by_name = {e.name: e for e in entries}
    assert by_name["vgg16"].parameters == 138_357_544 and by_name["vgg16"].input_size == (3, 224, 224)
    assert by_name["lenet"].num_classes == 10 and by_name["lenet"].architecture == "LeNet"
    for entry in entries:
        assert entry.parameters == models.count_parameters(entry.name)
        assert entry.input_size == tuple(models.defaults(entry.name)["input_size"])
        assert models.describe(entry.name).startswith(entry.description)
