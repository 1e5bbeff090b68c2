"""Conversion between convlab.nn and torch.nn (convlab.interop.torch.to_torch / from_torch), torch as the oracle.

* zoo models (small inputs) converted to torch give the same output, input gradient,
  parameter gradients and post-forward BatchNorm statistics, in float64, in train
  mode (batch statistics) and eval mode (running statistics), with the same
  state_dict keys in the same order (torchvision's for the ImageNet models);
* convlab -> torch -> convlab preserves the state_dict exactly (keys, order, dtypes,
  values), requires_grad and training flags; the torch model pickles and its analysis
  equals the convlab model's;
* torch Sequential models (1-d, 2-d and 3-d layers) convert to convlab and match;
* unsupported modules and settings fail with the module's path and class.
"""

from __future__ import annotations

import doctest
import io
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from convlab import models, nn
from convlab.analysis import analyze
from tests.helpers import assert_close

torch = pytest.importorskip("torch")
tnn = torch.nn

from convlab.interop import torch_convert  # noqa: E402
from convlab.interop.torch import (  # noqa: E402
    NamedConcat,
    NamedResidual,
    TorchConcat,
    TorchResidual,
    from_torch,
    to_torch,
)

F64 = np.float64
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

#: zoo models and the small inputs that keep the test fast (each is still the preset's architecture).
ZOO = [
    ("resnet18", (3, 32, 32), {}),
    ("mobilenet_v2", (3, 32, 32), {}),
    ("shufflenet_v2_x1_0", (3, 32, 32), {}),
    ("googlenet", (3, 32, 32), {}),
    ("lenet", (1, 28, 28), {}),
    ("lenet5", (1, 32, 32), {}),
    ("alexnet_d2l", (1, 67, 67), {"hidden_features": 256}),
    ("shufflenet_v1_g3", (3, 32, 32), {}),
]


def randomize(module: nn.Module, rng: np.random.Generator) -> None:
    """Non-default values in every parameter and buffer (BatchNorm's gamma/beta and running statistics too)."""
    for _, m in module.named_modules():
        for name, p in m._parameters.items():
            if p is not None:
                centre = 1.0 if isinstance(m, BATCHNORMS) and name == "weight" else 0.0
                fan_in = p.data[0].size if p.data.ndim > 1 else 1  # keeps deep networks' activations O(1)
                spread = (1.0 if name == "weight" else 0.2) / np.sqrt(fan_in)
                p.data[...] = centre + rng.standard_normal(p.shape) * spread
        if m._buffers.get("running_mean") is not None:
            m.running_mean[...] = rng.standard_normal(m.running_mean.shape) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)
            m.num_batches_tracked[...] = rng.integers(0, 5)


def zoo_model(name: str, size: tuple, config: dict) -> nn.Module:
    model = models.create(name, input_size=size, num_classes=10, rng=0, dtype=F64, **config)
    randomize(model, np.random.default_rng(1))
    return model


def set_mode(ours: nn.Module, theirs, train: bool) -> None:
    """Train or eval; Dropout always in eval (the two sides draw different masks)."""
    ours.train(train)
    theirs.train(train)
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    for m in theirs.modules():
        if isinstance(m, tnn.Dropout):
            m.eval()


def compare(ours: nn.Module, theirs, x: np.ndarray, seed: int = 0) -> None:
    """Same output, input gradient, every parameter gradient and post-forward state (modes already set)."""
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y = ours(x)
    y_t = theirs(x_t)
    assert_close(y, y_t.detach().numpy(), "output")
    grad_output = np.random.default_rng(seed).standard_normal(y.shape)
    grad_input = ours.backward(grad_output)
    y_t.backward(torch.from_numpy(grad_output))
    assert_close(grad_input, x_t.grad.numpy(), "input gradient")
    ours_params = dict(ours.named_parameters())
    torch_params = dict(theirs.named_parameters())
    assert list(ours_params) == list(torch_params)
    for key, param in ours_params.items():
        assert_close(param.grad, torch_params[key].grad.numpy(), f"gradient of {key}")
    torch_after = theirs.state_dict()
    ours_after = ours.state_dict()
    assert list(ours_after) == list(torch_after)
    for key, value in ours_after.items():
        assert_close(value, torch_after[key].numpy(), f"state {key} after forward")


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


# --------------------------------------------------------------------------- convlab -> torch: the zoo


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(("name", "size", "config"), ZOO, ids=[case[0] for case in ZOO])
def test_zoo_model_in_torch_gives_the_same_outputs_and_gradients(name, size, config, train):
    model = zoo_model(name, size, config)
    torch_model = to_torch(model)
    assert list(torch_model.state_dict()) == list(model.state_dict())
    set_mode(model, torch_model, train)
    # a batch of 4: with 2, BatchNorm's batch statistics on the last 1x1/2x2 maps are so ill-conditioned that
    # a 1e-14 change of the input moves torch's own gradients by 1e-7 (relative); with 4, by < 1e-11
    x = np.random.default_rng(2).standard_normal((4, *size))
    compare(model, torch_model, x)


def test_torchvision_key_names_are_kept():
    keys = list(to_torch(models.create("resnet18", input_size=(3, 32, 32), rng=0)).state_dict())
    assert keys[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                        "bn1.num_batches_tracked"]
    assert "layer1.0.conv1.weight" in keys and "layer2.0.downsample.0.weight" in keys and keys[-1] == "fc.bias"
    keys = list(to_torch(models.create("shufflenet_v2_x1_0", input_size=(3, 32, 32), rng=0)).state_dict())
    assert "stage2.0.branch1.0.weight" in keys and "stage3.1.branch2.3.weight" in keys
    keys = list(to_torch(models.create("googlenet", input_size=(3, 32, 32), rng=0)).state_dict())
    assert "inception3a.branch2.0.conv.weight" in keys and "inception4e.branch4.1.bn.running_var" in keys


def test_float32_model_gives_a_float32_torch_model():
    model = models.create("resnet18", input_size=(3, 16, 16), num_classes=10, rng=0).eval()
    torch_model = to_torch(model)
    assert {p.dtype for p in torch_model.parameters()} == {torch.float32}
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert_close(model(x), torch_model(torch.from_numpy(x)).detach().numpy())


def test_modes_requires_grad_and_structure_are_copied():
    model = models.create("resnet18", input_size=(3, 16, 16), num_classes=10, rng=0)
    model.train()
    model.layer1.eval()
    model.conv1.weight.requires_grad = False
    torch_model = to_torch(model)
    assert torch_model.training and not torch_model.layer1.training and not torch_model.layer1[0].bn1.training
    assert torch_model.layer2.training
    assert not torch_model.conv1.weight.requires_grad and torch_model.fc.weight.requires_grad
    block = torch_model.layer1[0]
    assert isinstance(block, TorchResidual)
    assert block.body_names == ("conv1", "bn1", "relu", "conv2", "bn2") and block.post_name == "relu"
    assert block.relu is block._modules["relu"]  # one ReLU, used in the body and after the sum, as torchvision's
    inception = to_torch(models.create("googlenet", input_size=(3, 32, 32), rng=0)).inception3a
    assert isinstance(inception, TorchConcat) and inception.branch_names == ("branch1", "branch2", "branch3",
                                                                            "branch4")


def test_torch_model_pickles_and_analyses_like_the_convlab_model():
    model = models.create("shufflenet_v2_x1_0", input_size=(3, 32, 32), num_classes=10, rng=0).eval()
    torch_model = to_torch(model)
    buffer = io.BytesIO()
    torch.save(torch_model, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32))
    torch.testing.assert_close(restored(x), torch_model(x), rtol=0, atol=0)
    ours, theirs = analyze(model, (1, 3, 32, 32)), analyze(torch_model, (1, 3, 32, 32))
    assert theirs.totals() == ours.totals()


def test_generic_containers_and_layers_convert():
    rng = np.random.default_rng(0)
    model = nn.Sequential(OrderedDict(
        stem=nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect", dtype=F64, rng=rng),
        block=nn.Residual(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2, dtype=F64, rng=rng),
                                        nn.BatchNorm2d(8, dtype=F64), nn.Hardswish()),
                          shortcut=nn.Conv2d(8, 8, 1, dtype=F64, rng=rng), post=nn.ReLU6()),
        mixed=nn.Concat(nn.MaxPool2d(3, stride=1, padding=1), nn.Sequential(nn.ChannelSlice(2, 6), nn.Tanh()),
                        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)),
        shuffle=nn.ChannelShuffle(4),
        up=nn.ConvTranspose2d(20, 4, 3, stride=2, padding=1, output_padding=1, dtype=F64, rng=rng),
        lrn=nn.LocalResponseNorm(3),
        upsample=nn.Upsample(scale_factor=2),
        pool=nn.GlobalMaxPool(),
        flatten=nn.Flatten(),
        fc=nn.Linear(4, 5, dtype=F64, rng=rng),
        softmax=nn.Softmax(dim=1),
    ))
    randomize(model, np.random.default_rng(1))
    torch_model = to_torch(model)
    back = from_torch(torch_model)
    assert_same_state(model, back)
    x = np.random.default_rng(2).standard_normal((4, 3, 6, 6))
    for train in (True, False):
        set_mode(model, torch_model, train)
        compare(model, torch_model, x)
    assert type(back.block) is nn.Residual and type(back.mixed) is nn.Concat
    assert type(back.mixed.get_submodule("1.0")) is nn.ChannelSlice and type(back.pool) is nn.GlobalMaxPool


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(("name", "size", "config"), ZOO, ids=[case[0] for case in ZOO])
def test_round_trip_preserves_the_state_dict_exactly(name, size, config):
    model = zoo_model(name, size, config)
    model.train()
    next(iter(model.children())).eval()  # mixed modes
    next(iter(model.parameters())).requires_grad = False
    back = from_torch(to_torch(model))
    assert_same_state(model, back)
    assert [(n, m.training) for n, m in model.named_modules()] == [(n, m.training) for n, m in back.named_modules()]
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == [
        (n, p.requires_grad) for n, p in back.named_parameters()]
    shape = (1, *size)
    assert analyze(back, shape).totals() == analyze(model, shape).totals()
    model.eval()
    back.eval()
    x = np.random.default_rng(3).standard_normal(shape)
    np.testing.assert_array_equal(back(x), model(x))


def test_round_trip_keeps_block_names_in_generic_containers():
    model = models.create("shufflenet_v2_x1_0", input_size=(3, 32, 32), rng=0)
    back = from_torch(to_torch(model))
    unit = back.stage2['1']  # a stride-1 unit: branch1 = first half, ("split", "branch2") = second half
    assert isinstance(unit, NamedConcat) and isinstance(unit, nn.Concat)
    assert unit.branch_names == ("branch1", ("split", "branch2"))
    block = from_torch(to_torch(models.create("resnet18", input_size=(3, 32, 32), rng=0))).layer2[0]
    assert isinstance(block, NamedResidual) and block.shortcut_name == "downsample"
    assert block.body_names == ("conv1", "bn1", "relu", "conv2", "bn2")


# --------------------------------------------------------------------------- torch -> convlab


def torch_sequentials():
    torch.manual_seed(0)
    two_d = tnn.Sequential(
        tnn.Conv2d(3, 8, 3, padding=1, padding_mode="replicate"), tnn.BatchNorm2d(8), tnn.ReLU(inplace=True),
        tnn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), tnn.LocalResponseNorm(3),
        tnn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=4, bias=False), tnn.ReLU6(),
        tnn.ChannelShuffle(2), tnn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1),
        tnn.Hardswish(), tnn.AvgPool2d(2, count_include_pad=False, padding=1), tnn.Tanh(),
        tnn.AdaptiveMaxPool2d((3, 2)), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Dropout(0.3),
        tnn.Linear(6, 7), tnn.Sigmoid(), tnn.Identity(), tnn.Linear(7, 4), tnn.Softmax(dim=1),
    )
    one_d = tnn.Sequential(
        tnn.Conv1d(2, 4, 3, stride=2, padding=1), tnn.BatchNorm1d(4, momentum=None), tnn.ReLU(),
        tnn.Upsample(scale_factor=2), tnn.AvgPool1d(3, stride=1, padding=1), tnn.ConvTranspose1d(4, 3, 4, stride=2),
        tnn.MaxPool1d(2), tnn.AdaptiveAvgPool1d(4), tnn.Flatten(), tnn.Linear(12, 3),
    )
    three_d = tnn.Sequential(OrderedDict(
        conv=tnn.Conv3d(1, 4, 3, padding=1, padding_mode="circular"), bn=tnn.BatchNorm3d(4, affine=False),
        relu=tnn.ReLU(), pool=tnn.MaxPool3d(2), up=tnn.ConvTranspose3d(4, 2, 2, stride=2, groups=2),
        avg=tnn.AvgPool3d(2, divisor_override=3), head=tnn.AdaptiveMaxPool3d(1), flat=tnn.Flatten(),
    ))
    return {"2d": (two_d, (2, 3, 12, 12)), "1d": (one_d, (3, 2, 16)), "3d": (three_d, (2, 1, 6, 6, 6))}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", ["1d", "2d", "3d"])
def test_torch_sequential_converts_and_matches(kind, train):
    torch_model, shape = torch_sequentials()[kind]
    torch_model = torch_model.double()
    for m in torch_model.modules():  # non-default running statistics for eval mode
        if isinstance(m, tnn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model = from_torch(torch_model)
    assert next(iter(model.parameters())).dtype == np.float64
    assert list(model.state_dict()) == list(torch_model.state_dict())
    set_mode(model, torch_model, train)
    compare(model, torch_model, np.random.default_rng(4).standard_normal(shape))


def test_from_torch_float32_and_dtype_override():
    torch_model = tnn.Sequential(tnn.Conv2d(1, 2, 3), tnn.BatchNorm2d(2)).eval()
    assert from_torch(torch_model).state_dict()["0.weight"].dtype == np.float32
    converted = from_torch(torch_model, dtype=np.float64)
    assert converted.state_dict()["1.running_var"].dtype == np.float64
    assert converted.state_dict()["1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(converted[0].weight.data, torch_model[0].weight.detach().double().numpy())
    with pytest.raises(TypeError, match=r"from_torch: the module's tensors have dtypes \['torch.float16'\]"):
        from_torch(tnn.Linear(2, 2).half())


def test_hand_built_mirror_containers_convert():
    residual = TorchResidual(OrderedDict(a=tnn.Conv2d(2, 2, 1), relu=tnn.ReLU()), ("a", "relu"), None, "relu")
    concat = TorchConcat(OrderedDict(p=tnn.Identity(), q=tnn.Conv2d(2, 3, 1), r=tnn.Tanh()), ("p", ("q", "r")))
    torch_model = tnn.Sequential(residual, concat).double()
    model = from_torch(torch_model)
    assert isinstance(model[0], NamedResidual) and model[0].post_name == "relu"
    assert isinstance(model[1], NamedConcat) and model[1].branch_names == ("p", ("q", "r"))
    set_mode(model, torch_model, True)
    compare(model, torch_model, np.random.default_rng(5).standard_normal((2, 2, 3, 3)))


# --------------------------------------------------------------------------- errors


class Custom(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv(x) * 2


class MyConv(tnn.Conv2d):
    pass


def test_unsupported_torch_modules_name_their_path_and_class():
    with pytest.raises(TypeError, match=r"from_torch: '1' is a torch\.nn\.modules\.activation\.GELU, which has no "
                                        r"convlab\.nn counterpart \(supported: Conv1d-3d"):
        from_torch(tnn.Sequential(tnn.Conv2d(1, 1, 1), tnn.GELU()))
    with pytest.raises(TypeError, match=r"'features\.block' is a test_interop_torch\.Custom|'features\.block' is a "
                                        r"tests\.test_interop_torch\.Custom"):
        from_torch(tnn.Sequential(OrderedDict(features=tnn.Sequential(OrderedDict(block=Custom())))))
    with pytest.raises(TypeError, match=r"from_torch: the model itself is a .*Custom"):
        from_torch(Custom())
    with pytest.raises(TypeError, match=r"'0' is a .*MyConv"):  # a subclass may change forward: refused
        from_torch(tnn.Sequential(MyConv(1, 1, 1)))
    with pytest.raises(ValueError, match=r"from_torch: '0' \(Upsample\) has mode='bilinear'"):
        from_torch(tnn.Sequential(tnn.Upsample(scale_factor=2, mode="bilinear")))
    with pytest.raises(TypeError, match=r"from_torch: `module` must be a torch\.nn\.Module, got Sequential"):
        from_torch(nn.Sequential(nn.ReLU()))


class DoubleConv(nn.Conv2d):
    def forward(self, input):
        return 2 * super().forward(input)


class Opaque(nn.Module):
    def forward(self, input):
        return input


def test_unsupported_convlab_modules_and_settings_name_their_path():
    with pytest.raises(TypeError, match=r"to_torch: 'head' is a .*Opaque, which has no torch counterpart"):
        to_torch(nn.Sequential(OrderedDict(body=nn.ReLU(), head=Opaque())))
    with pytest.raises(TypeError, match=r"to_torch: '0' is a .*DoubleConv, a subclass of Conv2d with its own "
                                        r"forward\(\)"):
        to_torch(nn.Sequential(DoubleConv(1, 1, 1)))
    with pytest.raises(ValueError, match=r"to_torch: '1' \(Conv1d\) has padding='causal' \(resolved \(\(2, 0\),\)\), "
                                         r"which torch\.nn\.Conv1d cannot express"):
        to_torch(nn.Sequential(nn.ReLU(), nn.Conv1d(1, 1, 3, padding="causal")))
    with pytest.raises(ValueError, match=r"to_torch: the model itself \(Conv2d\) has padding_mode='symmetric'"):
        to_torch(nn.Conv2d(1, 1, 3, padding=1, padding_mode="symmetric"))
    with pytest.raises(ValueError, match=r"to_torch: '0' \(ConvTranspose2d\) has padding_mode='reflect', which "
                                         r"torch\.nn\.ConvTranspose2d refuses"):
        to_torch(nn.Sequential(nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, padding_mode="reflect")))
    with pytest.raises(ValueError, match=r"\(ConvTranspose1d\) has padding='same' \(resolved \(\(0, 1\),\)\), which "
                                         r"torch\.nn\.ConvTranspose1d cannot express"):
        to_torch(nn.ConvTranspose1d(1, 1, 3, stride=2, padding="same"))
    # where TensorFlow's 'same' is symmetric, torch computes it: the same numbers
    even = nn.ConvTranspose1d(2, 3, 4, stride=2, padding="same", rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((1, 2, 5)).astype(np.float32)
    np.testing.assert_allclose(to_torch(even)(torch.from_numpy(x)).detach().numpy(), even(x), rtol=1e-5, atol=1e-6)
    assert even(x).shape == (1, 3, 10)
    with pytest.raises(TypeError, match=r"to_torch: `model` must be a convlab\.nn\.Module, got Linear"):
        to_torch(tnn.Linear(1, 1))


# --------------------------------------------------------------------------- laziness and documentation


def test_importing_convlab_and_the_interop_module_does_not_import_torch():
    code = ("import sys, convlab, convlab.nn, convlab.models, convlab.analysis, convlab.interop.torch, "
            "convlab.interop.torch_convert; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("function", [to_torch, from_torch], ids=["to_torch", "from_torch"])
def test_docstring_examples_run_with_torch(function):
    """The examples are marked +SKIP for the torch-free doctest run; here they run, SKIP flags removed."""
    test = doctest.DocTestFinder().find(function, globs={function.__name__: function})[0]
    for example in test.examples:
        example.options = {}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries == len(test.examples)


def test_mirror_classes_are_reachable_lazily():
    assert torch_convert.TorchResidual is TorchResidual
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        torch_convert.Nope  # noqa: B018
