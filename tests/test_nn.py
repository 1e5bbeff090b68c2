"""convlab.nn without torch: registration, state dicts, repr, modes, gradients by finite differences, errors."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from convlab import nn
from tests.helpers import numerical_vjp

F64 = np.float64
FD_TOL = 1e-6


def assert_fd_close(analytic, numeric, what):
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=FD_TOL, atol=FD_TOL * scale, err_msg=what)


def small_model(seed: int, dtype=F64) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=rng),
        bn=nn.BatchNorm2d(4, dtype=dtype),
        relu=nn.ReLU(),
        block=nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=rng),
                                        nn.BatchNorm2d(4, dtype=dtype)), post=nn.ReLU()),
        pool=nn.GlobalAvgPool(),
        flatten=nn.Flatten(),
        fc=nn.Linear(4, 3, dtype=dtype, rng=rng),
    ))


# --------------------------------------------------------------------------- state dicts


def test_state_dict_keys_are_torch_names_in_torch_order():
    model = small_model(0)
    assert list(model.state_dict()) == [
        "conv.weight", "conv.bias",
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
        "block.body.0.weight", "block.body.0.bias",
        "block.body.1.weight", "block.body.1.bias", "block.body.1.running_mean", "block.body.1.running_var",
        "block.body.1.num_batches_tracked",
        "fc.weight", "fc.bias",
    ]
    assert model.state_dict()["bn.num_batches_tracked"].dtype == np.int64
    assert model.state_dict()["bn.num_batches_tracked"].shape == ()


def test_state_dict_round_trip():
    source, target = small_model(0), small_model(1)
    x = np.random.default_rng(2).standard_normal((3, 2, 5, 5))
    source(x)  # training step: running statistics move
    assert not np.array_equal(source.conv.weight.data, target.conv.weight.data)
    result = target.load_state_dict(source.state_dict())
    assert result == nn.IncompatibleKeys([], [])
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value, err_msg=key)
    for mode in (True, False):
        source.train(mode)
        target.train(mode)
        np.testing.assert_array_equal(target(x), source(x))


def test_state_dict_holds_copies():
    model = small_model(0)
    state = model.state_dict()
    state["conv.weight"][...] = 7.0
    assert not np.any(model.conv.weight.data == 7.0)
    model.conv.weight.data[...] = 3.0
    assert not np.any(state["conv.weight"] == 3.0)


def test_load_writes_in_place_and_casts_to_the_parameter_dtype():
    model = small_model(0, dtype=np.float32)
    weight_array = model.conv.weight.data
    state = {k: v.astype(F64) if v.dtype.kind == "f" else v for k, v in small_model(1).state_dict().items()}
    model.load_state_dict(state)
    assert model.conv.weight.data is weight_array
    assert model.conv.weight.dtype == np.float32
    np.testing.assert_allclose(model.conv.weight.data, state["conv.weight"].astype(np.float32))


def test_load_reports_missing_and_unexpected_keys():
    model = small_model(0)
    state = model.state_dict()
    del state["bn.running_var"]
    state["bn.running_varx"] = np.ones(4)
    with pytest.raises(ValueError, match=r"Sequential.load_state_dict: the state dict does not match the model: "
                                         r"missing keys .*\['bn.running_var'\].*unexpected keys .*"
                                         r"\['bn.running_varx'\]"):
        model.load_state_dict(state)


def test_load_reports_shape_mismatch_and_writes_nothing():
    model = small_model(0)
    before = model.state_dict()
    state = small_model(1).state_dict()
    state["fc.weight"] = np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"'fc.weight' has shape \(5, 4\) in the state dict but \(3, 4\) in the model"):
        model.load_state_dict(state)
    for key, value in model.state_dict().items():  # checked before anything is written
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    with pytest.raises(ValueError, match="shape"):  # shape mismatch raises even when not strict
        model.load_state_dict(state, strict=False)


def test_load_not_strict_returns_the_keys():
    model = small_model(0)
    state = {"conv.weight": np.ones((4, 2, 3, 3)), "extra.bias": np.zeros(2)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == ["extra.bias"]
    assert "conv.weight" not in missing and "fc.bias" in missing
    assert np.all(model.conv.weight.data == 1.0)


def test_load_rejects_bad_arguments():
    model = small_model(0)
    with pytest.raises(TypeError, match="expected a mapping"):
        model.load_state_dict([("conv.weight", np.ones(3))])
    with pytest.raises(TypeError, match="keys must be str"):
        model.load_state_dict({1: np.ones(3)})
    with pytest.raises(TypeError, match="`strict` must be a bool"):
        model.load_state_dict({}, strict="yes")


def test_bias_false_and_untracked_statistics_have_no_keys():
    layer = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3, affine=False, track_running_stats=False))
    assert list(layer.state_dict()) == ["0.weight"]
    assert layer[0].bias is None and layer[1].running_mean is None
    assert layer.num_parameters() == 2 * 3


# --------------------------------------------------------------------------- repr


@pytest.mark.parametrize(("module", "text"), [
    (nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
     "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"),
    (nn.Conv2d(3, 8, 3), "Conv2d(3, 8, kernel_size=(3, 3))"),
    (nn.Conv1d(4, 4, 3, padding="same", dilation=2, groups=4, padding_mode="reflect"),
     "Conv1d(4, 4, kernel_size=(3,), padding='same', dilation=(2,), groups=4, padding_mode='reflect')"),
    (nn.Conv2d(2, 2, 3, padding=((0, 1), (1, 1))), "Conv2d(2, 2, kernel_size=(3, 3), padding=((0, 1), (1, 1)))"),
    (nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, output_padding=1),
     "ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))"),
    (nn.MaxPool2d(3, stride=2, padding=1), "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"),
    (nn.MaxPool2d(2, 2), "MaxPool2d(kernel_size=(2, 2))"),
    (nn.MaxPool1d(2, dilation=2, return_indices=True, ceil_mode=True),
     "MaxPool1d(kernel_size=(2,), dilation=(2,), return_indices=True, ceil_mode=True)"),
    (nn.AvgPool2d(3, 1, 1, count_include_pad=False, divisor_override=2),
     "AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), count_include_pad=False, divisor_override=2)"),
    (nn.AdaptiveAvgPool2d((1, 1)), "AdaptiveAvgPool2d(output_size=1)"),
    (nn.AdaptiveMaxPool2d((2, None), return_indices=True),
     "AdaptiveMaxPool2d(output_size=(2, None), return_indices=True)"),
    (nn.BatchNorm2d(64), "BatchNorm2d(64)"),
    (nn.BatchNorm1d(8, eps=1e-3, momentum=None, affine=False, track_running_stats=False),
     "BatchNorm1d(8, eps=0.001, momentum=None, affine=False, track_running_stats=False)"),
    (nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), "LocalResponseNorm(5, k=2.0)"),
    (nn.ReLU(), "ReLU()"),
    (nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (nn.Softmax(dim=1), "Softmax(dim=1)"),
    (nn.Linear(512, 10), "Linear(in_features=512, out_features=10)"),
    (nn.Linear(5, 2, bias=False), "Linear(in_features=5, out_features=2, bias=False)"),
    (nn.Dropout(), "Dropout()"),
    (nn.Dropout(0.2), "Dropout(p=0.2)"),
    (nn.Flatten(), "Flatten()"),
    (nn.Flatten(0, 2), "Flatten(start_dim=0, end_dim=2)"),
    (nn.Identity(3), "Identity()"),
    (nn.GlobalAvgPool(), "GlobalAvgPool()"),
    (nn.ChannelShuffle(3), "ChannelShuffle(groups=3)"),
    (nn.ChannelSlice(0, 4), "ChannelSlice(start=0, stop=4)"),
    (nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0)"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_repr_shows_only_non_default_settings(module, text):
    assert repr(module) == text


def test_repr_of_containers_is_torch_style():
    model = nn.Sequential(OrderedDict(
        stem=nn.Conv2d(1, 2, 3),
        block=nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU()), post=nn.ReLU()),
        mixed=nn.Concat(nn.Identity(), nn.MaxPool2d(3, 1, 1)),
    ))
    assert repr(model) == (
        "Sequential(\n"
        "  (stem): Conv2d(1, 2, kernel_size=(3, 3))\n"
        "  (block): Residual(\n"
        "    (body): Sequential(\n"
        "      (0): Conv2d(2, 2, kernel_size=(1, 1))\n"
        "      (1): ReLU()\n"
        "    )\n"
        "    (post): ReLU()\n"
        "  )\n"
        "  (mixed): Concat(\n"
        "    (0): Identity()\n"
        "    (1): MaxPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  )\n"
        ")"
    )


# --------------------------------------------------------------------------- modes


def test_train_and_eval_propagate_to_every_descendant():
    model = small_model(0)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.block.train(False)
    assert model.training and not model.block.body[1].training
    with pytest.raises(TypeError, match="`mode` must be a bool"):
        model.train("no")


def test_batchnorm_eval_uses_running_statistics():
    bn = nn.BatchNorm1d(2, dtype=F64)
    bn.running_mean[...] = [1.0, -1.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = np.array([[3.0, 0.0], [1.0, -1.5]])
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(bn(x), expected)
    assert int(bn.num_batches_tracked) == 0  # eval does not update
    bn.train()
    bn(x)
    assert int(bn.num_batches_tracked) == 1
    np.testing.assert_allclose(bn.running_mean, 0.9 * np.array([1.0, -1.0]) + 0.1 * x.mean(0))
    np.testing.assert_allclose(bn.running_var, 0.9 * np.array([4.0, 0.25]) + 0.1 * x.var(0, ddof=1))


def test_dropout_train_and_eval():
    x = np.ones((200, 50))
    drop = nn.Dropout(0.3, rng=np.random.default_rng(0))
    y = drop(x)
    zero = y == 0
    assert abs(zero.mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[~zero], 1 / 0.7)
    g = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(g), np.where(zero, 0.0, g / 0.7))
    again = nn.Dropout(0.3, rng=np.random.default_rng(0))(x)
    np.testing.assert_array_equal(again, y)  # a seeded generator reproduces the mask
    drop.eval()
    assert drop(x) is x
    assert drop.backward(g) is g
    drop.train()
    assert np.all(nn.Dropout(1.0)(x) == 0) and nn.Dropout(0.0)(x) is x


# --------------------------------------------------------------------------- finite differences


def _bn_case(train: bool, affine: bool, shape):
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm2d(shape[1], affine=affine, dtype=F64) if len(shape) == 4 else nn.BatchNorm1d(
        shape[1], affine=affine, dtype=F64)
    if affine:
        bn.weight.data[...] = rng.uniform(0.5, 1.5, shape[1])
        bn.bias.data[...] = rng.standard_normal(shape[1])
    bn.running_mean[...] = rng.standard_normal(shape[1])
    bn.running_var[...] = rng.uniform(0.5, 2.0, shape[1])
    bn.train(train)
    return bn, rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)


@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (4, 3)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_backward_matches_finite_differences(train, affine, shape):
    bn, x, g = _bn_case(train, affine, shape)
    bn(x)
    grad_input = bn.backward(g)
    assert_fd_close(grad_input, numerical_vjp(lambda v: bn(v), x, g), "input gradient")
    if affine:
        for name in ("weight", "bias"):
            param = getattr(bn, name)
            analytic = param.grad.copy()
            keep = param.data.copy()

            def f(value, param=param):
                param.data[...] = value
                return bn(x)

            numeric = numerical_vjp(f, keep, g)
            param.data[...] = keep
            assert_fd_close(analytic, numeric, f"gradient of {name}")


@pytest.mark.parametrize(("size", "alpha", "beta", "k", "shape"), [
    (3, 1e-1, 0.75, 1.0, (2, 5, 3, 2)),
    (4, 0.5, 0.6, 1.5, (2, 6, 4)),
    (2, 2.0, 1.0, 0.5, (1, 3, 2, 2, 2)),
    (1, 0.3, 0.75, 1.0, (2, 2, 3)),
    (7, 0.2, 0.9, 2.0, (2, 4, 3)),  # window wider than the channels
])
def test_local_response_norm_backward_matches_finite_differences(size, alpha, beta, k, shape):
    lrn = nn.LocalResponseNorm(size, alpha, beta, k)
    rng = np.random.default_rng(size)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    lrn(x)
    assert_fd_close(lrn.backward(g), numerical_vjp(lambda v: lrn(v), x, g), "input gradient")


def test_local_response_norm_matches_its_formula():
    lrn = nn.LocalResponseNorm(3, alpha=0.3, beta=0.7, k=1.2)
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    expected = np.empty_like(x)
    for c in range(5):
        window = slice(max(c - 1, 0), min(c + 1, 4) + 1)  # [c - size//2, c + (size-1)//2]
        expected[:, c] = x[:, c] / (1.2 + 0.3 / 3 * (x[:, window] ** 2).sum(axis=1)) ** 0.7
    np.testing.assert_allclose(lrn(x), expected, rtol=1e-12)


@pytest.mark.parametrize("layer", [nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim=1), nn.Hardswish(),
                                   nn.Linear(4, 3, dtype=F64, rng=np.random.default_rng(0))],
                         ids=lambda m: type(m).__name__)
def test_smooth_layers_backward_matches_finite_differences(layer):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)) * 2
    g = rng.standard_normal(layer(x).shape)
    layer(x)
    assert_fd_close(layer.backward(g), numerical_vjp(lambda v: layer(v), x, g), "input gradient")


# --------------------------------------------------------------------------- gradients, parameters


def test_backward_accumulates_and_zero_grad_clears():
    model = small_model(0)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    y = model(x)
    g = np.ones_like(y)
    first = model.backward(g)
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    second = model.backward(g)  # the cache is kept: a second backward adds the same gradients
    np.testing.assert_array_equal(first, second)
    for key, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, 2 * grads[key], err_msg=key)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is None for p in model.parameters())  # nothing to zero yet
    model.backward(g)
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_frozen_parameters_get_no_gradient_and_are_not_trainable():
    model = small_model(0)
    model.conv.weight.requires_grad = False
    y = model(np.ones((2, 2, 3, 3)))
    model.backward(np.ones_like(y))
    assert model.conv.weight.grad is None and model.conv.bias.grad is not None
    total = 4 * 2 * 9 + 4 + 4 + 4 + 4 * 4 * 9 + 4 + 4 + 4 + 4 * 3 + 3
    assert model.num_parameters() == total
    assert model.num_parameters(trainable_only=True) == total - 4 * 2 * 9


def test_shared_parameters_are_counted_once():
    first = nn.Linear(3, 3, dtype=F64)
    second = nn.Linear(3, 3, dtype=F64)
    second.weight = first.weight
    model = nn.Sequential(first, second)
    assert model.num_parameters() == 9 + 3 + 3
    assert [k for k, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]  # as torch


def test_float32_model_keeps_float32():
    model = small_model(0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    y = model(x)
    grad = model.backward(np.ones_like(y))
    assert y.dtype == grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    model.to(F64)
    assert all(p.dtype == F64 for p in model.parameters())
    assert model.bn.running_mean.dtype == F64 and model.bn.num_batches_tracked.dtype == np.int64
    assert model(x.astype(F64)).dtype == F64


def test_initialisation_is_reproducible_and_respects_dtype():
    a = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(7))
    b = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(7))
    c = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    assert a.weight.dtype == np.float32
    assert nn.Linear(2, 2, dtype="float64").weight.dtype == F64
    with pytest.raises(TypeError, match=r"Linear: dtype \(=int64\) must be float32 or float64"):
        nn.Linear(2, 2, dtype=np.int64)


def test_reused_activation_in_a_residual_gives_the_same_gradients_as_two_instances():
    class Block(nn.Residual):
        body_names = ("conv1", "relu", "conv2")
        post_name = "relu"

        def __init__(self, relu_post=None):
            super().__init__()
            rng = np.random.default_rng(0)
            self.conv1 = nn.Conv2d(2, 2, 3, padding=1, dtype=F64, rng=rng)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(2, 2, 3, padding=1, dtype=F64, rng=rng)
            if relu_post is not None:
                self.relu_post = relu_post
                self.post_name = "relu_post"

    shared, separate = Block(), Block(relu_post=nn.ReLU())
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    g = np.random.default_rng(2).standard_normal((2, 2, 4, 4))
    np.testing.assert_array_equal(shared(x), separate(x))
    np.testing.assert_array_equal(shared.backward(g), separate.backward(g))
    np.testing.assert_array_equal(shared.conv1.weight.grad, separate.conv1.weight.grad)
    np.testing.assert_array_equal(shared.backward(g), separate.backward(g))  # repeatable


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("build", "error", "message"), [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"Conv2d: in_channels \(=3\) must be divisible by groups \(=2\)"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError, r"Conv2d: out_channels \(=3\) must be divisible by groups"),
    (lambda: nn.Conv2d(4, 4, 3, stride=2, padding="same"), ValueError, r"Conv2d: padding='same'.*stride 1"),
    (lambda: nn.Conv2d(4, 4, 0), ValueError, r"Conv2d: `kernel_size` \(=0\) must be >= 1"),
    (lambda: nn.Conv1d(4, 4, 3, bias=1), TypeError, r"Conv1d: `bias` must be a bool, got 1"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, r"Conv2d: in_channels \(=0\) must be >= 1"),
    (lambda: nn.Conv3d(2.0, 4, 3), TypeError, r"Conv3d: in_channels must be an integer, got 2.0"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), ValueError,
     r"ConvTranspose2d: `output_padding` \(=2\) must be smaller"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="bogus"), ValueError,
     r"ConvTranspose2d: `padding_mode` \(='bogus'\)"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, r"MaxPool2d: `padding`.*at most half the kernel size"),
    (lambda: nn.AvgPool1d(2, divisor_override=0), ValueError, r"AvgPool1d: `divisor_override` must be non-zero"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), ValueError, r"AdaptiveAvgPool2d: output_size .* must have 2 entries"),
    (lambda: nn.AdaptiveMaxPool1d(0), ValueError, r"AdaptiveMaxPool1d: output_size \(=0\) must be >= 1"),
    (lambda: nn.BatchNorm2d(4, momentum=2.0), ValueError, r"BatchNorm2d: momentum \(=2.0\) must be in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(4, eps=0), ValueError, r"BatchNorm2d: eps \(=0\) must be > 0"),
    (lambda: nn.LocalResponseNorm(0), ValueError, r"LocalResponseNorm: size \(=0\) must be >= 1"),
    (lambda: nn.Dropout(1.5), ValueError, r"Dropout: p \(=1.5\) must be a probability in \[0, 1\]"),
    (lambda: nn.Dropout(0.5, rng=3), TypeError, r"Dropout: rng must be a numpy.random.Generator or None"),
    (lambda: nn.Linear(3, 2, rng=0), TypeError, r"reset_parameters: rng must be a numpy.random.Generator"),
    (lambda: nn.ChannelSlice(3, 3), ValueError, r"ChannelSlice: stop \(=3\) must be greater than start \(=3\)"),
    (lambda: nn.ChannelShuffle(0), ValueError, r"ChannelShuffle: groups \(=0\) must be >= 1"),
    (lambda: nn.Upsample(), ValueError, r"Upsample: give exactly one of scale_factor"),
    (lambda: nn.Upsample(2, mode="bilinear"), ValueError, r"Upsample: mode \(='bilinear'\) is not supported"),
    (lambda: nn.Residual(), TypeError, r"Residual: body is required"),
    (lambda: nn.Concat(), ValueError, r"Concat: needs at least one branch"),
    (lambda: nn.Sequential(nn.ReLU(), 3), TypeError, r"Sequential: argument '1' must be a convlab.nn.Module, got int"),
    (lambda: nn.Softmax(dim=1.0), TypeError, r"Softmax: dim must be an integer"),
])
def test_constructor_errors_name_the_layer_parameter_and_value(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(("layer", "x", "error", "message"), [
    (nn.Conv2d(3, 4, 3), np.zeros((1, 4, 5, 5), np.float32), ValueError,
     r"Conv2d: expected an input with 3 channels \(in_channels\), got 4 \(input shape \(1, 4, 5, 5\)\)"),
    (nn.Conv2d(3, 4, 3), np.zeros((4, 5, 5), np.float32), ValueError, r"Conv2d: expected an input with 3 channels"),
    (nn.Conv2d(3, 4, 3), np.zeros((3, 5), np.float32), ValueError,
     r"Conv2d: expected a 4-d input \(N, C, H, W\) or a 3-d unbatched input \(C, H, W\), got an input of shape"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 3, 5, 5)), TypeError,
     r"Conv2d: the input has dtype float64 but the layer's parameters are float32"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 3, 5, 5), np.int64), TypeError, r"Conv2d: the input must have a floating"),
    (nn.Conv2d(3, 4, 5), np.zeros((1, 3, 3, 3), np.float32), ValueError, r"Conv2d"),
    (nn.ConvTranspose1d(2, 4, 3), np.zeros((1, 4, 5), np.float32), ValueError,
     r"ConvTranspose1d: expected an input with 2 channels"),
    (nn.BatchNorm2d(4), np.zeros((2, 3, 2, 2), np.float32), ValueError,
     r"BatchNorm2d: expected an input with 4 channels \(num_features\), got 3"),
    (nn.BatchNorm2d(4), np.zeros((2, 4, 2), np.float32), ValueError, r"BatchNorm2d: expected a 4-d input"),
    (nn.BatchNorm1d(4), np.zeros((1, 4), np.float32), ValueError,
     r"BatchNorm1d: batch statistics need more than 1 value per channel"),
    (nn.Linear(4, 2), np.zeros((3, 5), np.float32), ValueError,
     r"Linear: expected an input whose last axis has 4 features \(in_features\), got shape \(3, 5\)"),
    (nn.MaxPool2d(2), np.zeros((2, 2)), ValueError, r"MaxPool2d: expected a 4-d input"),
    (nn.ChannelShuffle(4), np.zeros((1, 6, 2)), ValueError,
     r"ChannelShuffle: groups \(=4\) must divide the input channels \(=6"),
    (nn.ChannelSlice(2, 8), np.zeros((1, 6, 2)), ValueError,
     r"ChannelSlice: stop \(=8\) exceeds the input's 6 channels"),
    (nn.LocalResponseNorm(2), np.zeros((2, 3)), ValueError,
     r"LocalResponseNorm: expected an input \(N, C, \*spatial\)"),
    (nn.Flatten(2), np.zeros((2, 3)), ValueError, r"Flatten: start_dim \(=2\) and end_dim \(=-1\) must be axes"),
    (nn.Softmax(dim=2), np.zeros((2, 3)), ValueError, r"Softmax: dim \(=2\) is out of range"),
    (nn.Upsample(scale_factor=(2, 2)), np.zeros((1, 1, 3)), ValueError, r"Upsample: scale_factor .* has 2 entries"),
    (nn.Residual(nn.Conv2d(2, 3, 1, dtype=F64)), np.zeros((1, 2, 3, 3)), ValueError,
     r"Residual: the body's output shape \(1, 3, 3, 3\) differs from the shortcut's \(1, 2, 3, 3\)"),
    (nn.Concat(nn.Identity(), nn.MaxPool2d(2)), np.zeros((1, 2, 4, 4)), ValueError,
     r"Concat: branch '1' gives shape \(1, 2, 2, 2\) but branch '0' gives \(1, 2, 4, 4\)"),
])
def test_forward_errors_name_the_layer(layer, x, error, message):
    with pytest.raises(error, match=message):
        layer(x)


def test_errors_inside_containers_carry_the_child_path():
    model = nn.Sequential(OrderedDict(features=nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 3))))
    with pytest.raises(ValueError, match="Conv2d: expected an input with 3 channels") as info:
        model(np.zeros((1, 2, 5, 5), np.float32))
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:  # Python >= 3.11
        assert any("'1' (Conv2d)" in n for n in notes) and any("'features' (Sequential)" in n for n in notes)


def test_a_module_with_state_may_not_be_called_twice_in_one_pass():
    conv = nn.Conv2d(2, 2, 1)
    with pytest.raises(ValueError, match="Conv2d: this module instance is called a second time in one forward pass"):
        nn.Sequential(conv, conv)(np.zeros((1, 2, 2, 2), np.float32))
    relu = nn.ReLU()
    y = nn.Sequential(relu, nn.Identity(), relu)(np.array([[-1.0, 2.0]]))  # stateless: allowed
    np.testing.assert_array_equal(y, [[0.0, 2.0]])
    conv(np.zeros((1, 2, 2, 2), np.float32))  # separate passes: fine
    conv(np.zeros((1, 2, 2, 2), np.float32))


def test_backward_needs_a_cached_forward():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"Linear.backward: no forward pass is cached"):
        layer.backward(np.zeros((1, 2), np.float32))
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        layer(np.zeros((1, 2), np.float32))
    assert nn.is_grad_enabled()
    with pytest.raises(ValueError, match="no forward pass is cached"):
        layer.backward(np.zeros((1, 2), np.float32))
    layer(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"Linear.backward: grad_output must have the output's shape \(3, 2\)"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_attribute_registration_rules():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'weight'"):
        layer.weight = np.zeros((2, 2))
    layer.bias = None
    assert layer.bias is None and "bias" not in layer.state_dict()
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'missing'"):
        _ = layer.missing

    class Forgetful(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(TypeError, match=r"Forgetful: call super\(\).__init__\(\)"):
        Forgetful()
    with pytest.raises(TypeError, match="Parameter: data must have a floating-point dtype"):
        nn.Parameter(np.zeros(2, dtype=np.int64))


# --------------------------------------------------------------------------- containers and traversal


def test_sequential_indexing_and_traversal():
    model = small_model(0)
    assert len(model) == 7
    assert model[0] is model.conv and model[-1] is model.fc
    assert isinstance(model[1:3], nn.Sequential) and list(model[1:3]._modules) == ["bn", "relu"]
    assert model["block.body.0"] is model.block.body[0]
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    with pytest.raises(IndexError, match="index 7 is out of range for 7 modules"):
        model[7]
    names = [name for name, _ in model.named_modules()]
    assert names[:7] == ["", "conv", "bn", "relu", "block", "block.body", "block.body.0"]
    assert [n for n, _ in model.named_children()][:2] == ["conv", "bn"]
    assert list(dict(model.named_buffers())) == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                                                "block.body.1.running_mean", "block.body.1.running_var",
                                                "block.body.1.num_batches_tracked"]
    model.append(nn.Softmax(dim=1))
    assert list(model._modules)[-1] == "7"
    with pytest.raises(ValueError, match="has no child 'nope'"):
        model.get_submodule("block.nope")


def test_residual_and_concat_expose_their_structure():
    residual = nn.Residual(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1), nn.ReLU())
    assert (residual.body_names, residual.shortcut_name, residual.post_name) == (("body",), "shortcut", "post")
    assert residual.body_modules() == [residual.body]
    assert residual.shortcut_module() is residual.shortcut and residual.post_module() is residual.post
    concat = nn.Concat(OrderedDict(a=nn.Identity(), b=nn.ReLU()))
    assert concat.branch_names == ("a", "b")
    assert concat.branch_modules() == [[concat.a], [concat.b]]

    class Split(nn.Concat):
        branch_names = ("left", ("take", "right"))

        def __init__(self):
            super().__init__()
            self.left = nn.ChannelSlice(0, 2)
            self.take = nn.ChannelSlice(2, 4)
            self.right = nn.Linear(3, 3, dtype=F64)  # acts on the last axis

    split = Split()
    assert split.branch_modules() == [[split.left], [split.take, split.right]]
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    y = split(x)
    np.testing.assert_allclose(y[:, 2:], x[:, 2:4] @ split.right.weight.data.T + split.right.bias.data)
    g = np.random.default_rng(1).standard_normal(y.shape)
    assert_fd_close(split.backward(g), numerical_vjp(lambda v: split(v), x, g), "input gradient")

    class Broken(nn.Residual):
        body_names = ("conv", "missing")

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(TypeError, match=r"Broken: body_names names 'missing', which is not a child module"):
        Broken()(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(TypeError, match="Broken: declares body_names"):
        nn.Residual.__init__(Broken.__new__(Broken), nn.ReLU())
