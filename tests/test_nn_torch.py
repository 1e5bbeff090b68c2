"""convlab.nn against torch.nn: every layer, and random networks, with the same weights.

Weights go from convlab to torch through ``state_dict`` (a strict load, so the
key names and shapes must be torch's). Outputs, input gradients, every
parameter gradient and the buffers after the forward pass (BatchNorm's
running statistics) are compared in float64, in train and eval mode.
The random networks mix convolutions, BatchNorm, activations, pooling,
Residual (plain and a torchvision-style subclass that reuses one ReLU),
Concat (plain and a subclass with chained branches), ChannelShuffle and
ChannelSlice; ``mirror`` builds the same network in torch.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from convlab import nn
from tests.helpers import assert_close

torch = pytest.importorskip("torch")
tnn = torch.nn

F64 = np.float64
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# --------------------------------------------------------------------------- torch mirrors of the containers


class TorchResidual(tnn.Module):
    def __init__(self, children, body_names, shortcut_name, post_name):
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self.body_names, self.shortcut_name, self.post_name = body_names, shortcut_name, post_name

    def forward(self, x):
        out = x
        for name in self.body_names:
            out = getattr(self, name)(out)
        shortcut = getattr(self, self.shortcut_name, None) if self.shortcut_name else None
        out = out + (x if shortcut is None else shortcut(x))
        return getattr(self, self.post_name)(out) if self.post_name else out


class TorchConcat(tnn.Module):
    def __init__(self, children, branch_names):
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self.branch_names = [(e,) if isinstance(e, str) else tuple(e) for e in branch_names]

    def forward(self, x):
        outs = []
        for chain in self.branch_names:
            out = x
            for name in chain:
                out = getattr(self, name)(out)
            outs.append(out)
        return torch.cat(outs, dim=1)


class TorchSlice(tnn.Module):
    def __init__(self, start, stop):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x[:, self.start:self.stop]


class TorchGlobal(tnn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        nd = x.dim() - 2
        fn = getattr(tnn.functional, f"adaptive_{self.kind}_pool{nd}d")
        return fn(x, 1)


def mirror(module: nn.Module, memo: dict | None = None) -> tnn.Module:
    """The torch module computing the same function, with the same state_dict keys (weights not copied)."""
    memo = {} if memo is None else memo
    if id(module) in memo:
        return memo[id(module)]
    m = module
    name = type(m).__name__
    if isinstance(m, nn.Sequential):
        out = tnn.Sequential(OrderedDict((k, mirror(c, memo)) for k, c in m._modules.items()))
    elif isinstance(m, nn.Residual):
        children = OrderedDict((k, None if c is None else mirror(c, memo)) for k, c in m._modules.items())
        out = TorchResidual(children, m.body_names, m.shortcut_name, m.post_name)
    elif isinstance(m, nn.Concat):
        out = TorchConcat(OrderedDict((k, mirror(c, memo)) for k, c in m._modules.items()), m.branch_names)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        out = getattr(tnn, name)(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                                 m.groups, m.bias is not None, m.padding_mode)
    elif isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        out = getattr(tnn, name)(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                 m.output_padding, m.groups, m.bias is not None, m.dilation)
    elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        out = getattr(tnn, name)(m.kernel_size, m.stride, m.padding, m.dilation, m.return_indices, m.ceil_mode)
    elif isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        extra = {} if isinstance(m, nn.AvgPool1d) else {"divisor_override": m.divisor_override}
        out = getattr(tnn, name)(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, **extra)
    elif isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        out = getattr(tnn, name)(m.output_size)
    elif isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        out = getattr(tnn, name)(m.output_size, m.return_indices)
    elif isinstance(m, nn.GlobalAvgPool):
        out = TorchGlobal("avg")
    elif isinstance(m, nn.GlobalMaxPool):
        out = TorchGlobal("max")
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        out = getattr(tnn, name)(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    elif isinstance(m, nn.LocalResponseNorm):
        out = tnn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k)
    elif isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish)):
        out = getattr(tnn, name)()
    elif isinstance(m, (nn.Sigmoid, nn.Tanh, nn.Identity)):
        out = getattr(tnn, name)()
    elif isinstance(m, nn.Softmax):
        out = tnn.Softmax(m.dim)
    elif isinstance(m, nn.Linear):
        out = tnn.Linear(m.in_features, m.out_features, m.bias is not None)
    elif isinstance(m, nn.Dropout):
        out = tnn.Dropout(m.p)
    elif isinstance(m, nn.Flatten):
        out = tnn.Flatten(m.start_dim, m.end_dim)
    elif isinstance(m, nn.Upsample):
        out = tnn.Upsample(size=m.size, scale_factor=m.scale_factor, mode=m.mode)
    elif isinstance(m, nn.ChannelShuffle):
        out = tnn.ChannelShuffle(m.groups)
    elif isinstance(m, nn.ChannelSlice):
        out = TorchSlice(m.start, m.stop)
    else:
        raise TypeError(f"no torch mirror for {name}")
    memo[id(module)] = out.double()
    return memo[id(module)]


def randomize(module: nn.Module, rng: np.random.Generator) -> None:
    """Non-default values in every parameter and buffer (BatchNorm's gamma/beta and running statistics too)."""
    for _, m in module.named_modules():
        for name, p in m._parameters.items():
            if p is not None:
                centre = 1.0 if isinstance(m, BATCHNORMS) and name == "weight" else 0.0
                p.data[...] = centre + rng.standard_normal(p.shape) * (0.5 if name == "weight" else 0.2)
        if m._buffers.get("running_mean") is not None:
            m.running_mean[...] = rng.standard_normal(m.running_mean.shape) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)
            m.num_batches_tracked[...] = rng.integers(0, 5)


def torch_state(module: nn.Module) -> dict:
    return {k: torch.from_numpy(v.copy()) for k, v in module.state_dict().items()}


def compare(ours: nn.Module, x: np.ndarray, *, train: bool, seed: int = 0, call_kwargs: dict | None = None,
            theirs: tnn.Module | None = None) -> None:
    """Same output, input gradient, parameter gradients and post-forward buffers as the torch mirror."""
    theirs = mirror(ours) if theirs is None else theirs
    missing, unexpected = theirs.load_state_dict(torch_state(ours), strict=True)
    assert not missing and not unexpected
    ours.train(train)
    theirs.train(train)
    call_kwargs = call_kwargs or {}
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y = ours(x, **call_kwargs)
    y_t = theirs(x_t, **call_kwargs)
    if isinstance(y, tuple):  # (values, indices)
        assert_close(y[1], y_t[1].numpy(), "indices")
        y, y_t = y[0], y_t[0]
    assert_close(y, y_t.detach().numpy(), "output")
    grad_output = np.random.default_rng(seed).standard_normal(y.shape)
    grad_input = ours.backward(grad_output)
    y_t.backward(torch.from_numpy(grad_output))
    assert_close(grad_input, x_t.grad.numpy(), "input gradient")
    ours_params = dict(ours.named_parameters())
    torch_params = dict(theirs.named_parameters())
    assert sorted(ours_params) == sorted(torch_params)
    for key, param in ours_params.items():
        assert_close(param.grad, torch_params[key].grad.numpy(), f"gradient of {key}")
    torch_after = theirs.state_dict()
    for key, value in ours.state_dict().items():
        assert_close(value, torch_after[key].numpy(), f"state {key} after forward")


# --------------------------------------------------------------------------- every layer


def _conv_cases():
    return [
        (lambda: nn.Conv1d(3, 4, 3, dtype=F64), (2, 3, 9)),
        (lambda: nn.Conv1d(4, 6, 5, stride=2, padding=2, groups=2, padding_mode="reflect", dtype=F64), (2, 4, 11)),
        (lambda: nn.Conv1d(2, 4, 3, padding="same", dilation=2, dtype=F64), (2, 2, 8)),
        (lambda: nn.Conv2d(3, 6, 3, stride=2, padding=1, dtype=F64), (2, 3, 7, 8)),
        (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False, dtype=F64), (2, 4, 6, 5)),
        (lambda: nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2,
                           padding_mode="circular", dtype=F64), (2, 4, 7, 6)),
        (lambda: nn.Conv2d(3, 4, 4, padding="same", padding_mode="replicate", dtype=F64), (2, 3, 6, 6)),
        (lambda: nn.Conv2d(2, 3, 3, padding="valid", dtype=F64), (2, 5, 5)),  # unbatched
        (lambda: nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1, groups=2, dtype=F64), (2, 2, 4, 5, 5)),
        (lambda: nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1, dtype=F64), (2, 4, 5)),
        (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dtype=F64),
         (2, 4, 4, 5)),
        (lambda: nn.ConvTranspose2d(3, 2, (2, 3), stride=(2, 1), dilation=(1, 2), bias=False, dtype=F64),
         (2, 3, 3, 4)),
        (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, dtype=F64), (2, 2, 2, 3, 2)),
    ]


def _pool_cases():
    return [
        (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
        (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 8, 7)),
        (lambda: nn.MaxPool2d(2, stride=1, dilation=2), (2, 2, 6, 6)),
        (lambda: nn.MaxPool2d(2, return_indices=True), (2, 2, 6, 6)),
        (lambda: nn.MaxPool3d(2), (2, 2, 4, 4, 4)),
        (lambda: nn.AvgPool1d(3, 2, 1), (2, 3, 9)),
        (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 7)),
        (lambda: nn.AvgPool2d(2, divisor_override=3), (2, 2, 6, 6)),
        (lambda: nn.AvgPool3d((1, 2, 2)), (2, 2, 3, 4, 4)),
        (lambda: nn.AdaptiveAvgPool1d(3), (2, 3, 8)),
        (lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
        (lambda: nn.AdaptiveAvgPool3d(2), (2, 2, 3, 5, 4)),
        (lambda: nn.AdaptiveMaxPool1d(2), (2, 3, 7)),
        (lambda: nn.AdaptiveMaxPool2d((2, 3), return_indices=True), (2, 3, 7, 5)),
        (lambda: nn.AdaptiveMaxPool3d((1, 2, 2)), (2, 2, 3, 5, 4)),
        (lambda: nn.GlobalAvgPool(), (2, 3, 5, 4)),
        (lambda: nn.GlobalAvgPool(), (2, 3, 5)),
        (lambda: nn.GlobalMaxPool(), (2, 3, 5, 4)),
        (lambda: nn.GlobalMaxPool(), (2, 3, 3, 2, 4)),
    ]


def _other_cases():
    return [
        (lambda: nn.LocalResponseNorm(3), (2, 5, 4, 3)),
        (lambda: nn.LocalResponseNorm(4, alpha=0.5, beta=0.6, k=1.5), (2, 6, 5)),
        (lambda: nn.LocalResponseNorm(1, alpha=0.3), (2, 3, 3, 3, 2)),
        (lambda: nn.ReLU(), (2, 3, 4)),
        (lambda: nn.ReLU6(inplace=True), (2, 3, 4)),
        (lambda: nn.Sigmoid(), (2, 3, 4)),
        (lambda: nn.Tanh(), (2, 3, 4)),
        (lambda: nn.Hardswish(), (2, 3, 4)),
        (lambda: nn.Softmax(dim=1), (2, 5, 3)),
        (lambda: nn.Softmax(dim=-1), (4, 6)),
        (lambda: nn.Linear(5, 3, dtype=F64), (2, 4, 5)),
        (lambda: nn.Linear(4, 2, bias=False, dtype=F64), (3, 4)),
        (lambda: nn.Flatten(), (2, 3, 4, 2)),
        (lambda: nn.Flatten(1, 2), (2, 3, 4, 2)),
        (lambda: nn.Identity(54, unused=True), (2, 3)),
        (lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
        (lambda: nn.Upsample(scale_factor=(2, 3)), (2, 3, 3, 2)),
        (lambda: nn.Upsample(size=(5, 7)), (2, 2, 3, 4)),
        (lambda: nn.ChannelShuffle(3), (2, 6, 3, 2)),
        (lambda: nn.ChannelSlice(1, 4), (2, 5, 3)),
        (lambda: nn.Dropout(0.3), (2, 3, 4)),  # eval below: the identity in both
    ]


def _input(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


CASES = _conv_cases() + _pool_cases() + _other_cases()


@pytest.mark.parametrize("index", range(len(CASES)))
def test_layer_matches_torch(index):
    factory, shape = CASES[index]
    ours = factory()
    randomize(ours, np.random.default_rng(index))
    x = _input(shape, 100 + index, scale=4.0 if isinstance(ours, (nn.ReLU6, nn.Hardswish)) else 1.0)
    if isinstance(ours, nn.Hardswish):
        x.flat[:4] = [-3.0, 3.0, 0.0, -4.0]  # the kinks: torch's gradient rule at the ends
    compare(ours, x, train=not isinstance(ours, nn.Dropout), seed=index)


BATCHNORM_CASES = [
    (lambda: nn.BatchNorm1d(4, dtype=F64), (5, 4)),
    (lambda: nn.BatchNorm1d(3, dtype=F64), (2, 3, 4)),
    (lambda: nn.BatchNorm2d(3, dtype=F64), (2, 3, 4, 5)),
    (lambda: nn.BatchNorm3d(2, dtype=F64), (2, 2, 3, 2, 3)),
    (lambda: nn.BatchNorm2d(3, affine=False, dtype=F64), (2, 3, 3, 3)),
    (lambda: nn.BatchNorm2d(3, track_running_stats=False, dtype=F64), (2, 3, 3, 3)),
    (lambda: nn.BatchNorm2d(3, momentum=None, eps=1e-3, dtype=F64), (3, 3, 2, 2)),
    (lambda: nn.BatchNorm2d(2, momentum=0.7, dtype=F64), (1, 2, 1, 2)),  # two values per channel
]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("index", range(len(BATCHNORM_CASES)))
def test_batchnorm_matches_torch(index, train):
    factory, shape = BATCHNORM_CASES[index]
    ours = factory()
    randomize(ours, np.random.default_rng(index))
    compare(ours, _input(shape, index) * 2 + 0.5, train=train, seed=index)


def test_batchnorm_running_stats_follow_torch_over_several_steps():
    ours = nn.BatchNorm2d(3, momentum=None, dtype=F64)
    theirs = mirror(ours)
    ours.train()
    theirs.train()
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((2, 3, 3, 3)) * 3 + 1
        ours(x)
        theirs(torch.from_numpy(x))
    for key, value in ours.state_dict().items():
        assert_close(value, theirs.state_dict()[key].numpy(), key)
    assert int(ours.num_batches_tracked) == 4


def test_conv_transpose_output_size_matches_torch():
    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=F64)
    randomize(ours, np.random.default_rng(0))
    compare(ours, _input((2, 3, 4, 4), 1), train=True, call_kwargs={"output_size": (8, 8)})


def test_dropout_eval_is_identity_like_torch():
    ours = nn.Dropout(0.5)
    compare(ours, _input((2, 3), 0), train=False)


def test_load_torch_state_dict_directly():
    """A torch state dict (tensors) loads as it is: the keys are torch's."""
    theirs = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.Flatten(), tnn.LazyLinear(2))
    theirs(torch.zeros(1, 3, 5, 5))  # materialize the lazy layer: 4 * 3 * 3 inputs
    theirs = theirs.double()
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, dtype=F64), nn.BatchNorm2d(4, dtype=F64), nn.ReLU(), nn.Flatten(),
                         nn.Linear(36, 2, dtype=F64))
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = _input((2, 3, 5, 5), 0)
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach().numpy())


@pytest.mark.parametrize("factory", [
    lambda rng: nn.Conv2d(16, 32, 3, rng=rng),
    lambda rng: nn.Conv1d(6, 4, 5, groups=2, rng=rng),
    lambda rng: nn.ConvTranspose2d(8, 12, 3, groups=4, rng=rng),
    lambda rng: nn.Linear(50, 40, rng=rng),
], ids=["conv2d", "conv1d-groups", "conv-transpose-groups", "linear"])
def test_default_init_has_torch_bounds(factory):
    """kaiming_uniform(a=sqrt(5)) and the bias rule give torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    ours = factory(np.random.default_rng(0))
    theirs = mirror(ours)
    fan_in = ours.weight.shape[1] * int(np.prod(ours.weight.shape[2:]))
    bound = 1 / np.sqrt(fan_in)
    for key in ("weight", "bias"):
        ours_values = getattr(ours, key).data
        torch_values = getattr(theirs, key).detach().numpy()
        assert ours_values.dtype == np.float32
        for values in (ours_values, torch_values):
            assert np.abs(values).max() <= bound
        if key == "weight":  # enough samples to reach near the bound, and centred
            assert np.abs(ours_values).max() > 0.9 * bound
            assert abs(ours_values.mean()) < 0.1 * bound
            assert abs(ours_values.std() - bound / np.sqrt(3)) < 0.1 * bound


# --------------------------------------------------------------------------- random networks


class BasicBlock(nn.Residual):
    """torchvision-style names; one ReLU used in the body and after the sum."""

    body_names = ("conv1", "bn1", "relu", "conv2", "bn2")
    shortcut_name = "downsample"
    post_name = "relu"

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False, dtype=F64)
        self.bn1 = nn.BatchNorm2d(c_out, dtype=F64)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False, dtype=F64)
        self.bn2 = nn.BatchNorm2d(c_out, dtype=F64)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False, dtype=F64),
                                            nn.BatchNorm2d(c_out, dtype=F64))


class InceptionLike(nn.Concat):
    """Chained branches named like torchvision's Inception v3."""

    branch_names = ("branch1x1", ("branch3x3_1", "branch3x3_2"), ("branch_pool_avg", "branch_pool"))

    def __init__(self, c_in):
        super().__init__()
        self.branch1x1 = nn.Conv2d(c_in, 2, 1, dtype=F64)
        self.branch3x3_1 = nn.Conv2d(c_in, 3, 1, dtype=F64)
        self.branch3x3_2 = nn.Conv2d(3, 2, 3, padding=1, dtype=F64)
        self.branch_pool_avg = nn.AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = nn.Conv2d(c_in, 1, 1, dtype=F64)


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Hardswish)


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _conv_block(rng, c, h, c_out=None, size_keeping=False):
    c_out = c_out or int(rng.integers(2, 7))
    groups = int(rng.choice([g for g in _divisors(c) if c_out % g == 0]))
    k = int(rng.choice([1, 3]))
    if size_keeping or h < 4:
        stride, dilation, padding = 1, 1, k // 2
    else:
        stride, dilation = int(rng.choice([1, 2])), int(rng.choice([1, 1, 2]))
        padding = int(rng.integers(0, dilation * (k - 1) // 2 + 2))
    conv = nn.Conv2d(c, c_out, k, stride, padding, dilation, groups, bias=bool(rng.random() < 0.5), dtype=F64)
    h_out = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    layers = [conv]
    if rng.random() < 0.7:
        layers.append(nn.BatchNorm2d(c_out, dtype=F64))
    layers.append(ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]())
    return nn.Sequential(*layers), c_out, h_out


BLOCK_KINDS = ("conv", "residual", "basic", "concat", "inception", "lrn", "shufflev2", "shuffle", "slice", "pool")


def _feasible(kind, c, h):
    return {"shufflev2": c % 2 == 0, "shuffle": c % 2 == 0, "slice": c > 2, "pool": h >= 4}.get(kind, True)


def _random_block(rng, c, h, preferred):
    """The first feasible kind in ``preferred`` (a seed-dependent rotation of every kind, for coverage)."""
    kind = next(k for k in preferred if _feasible(k, c, h))
    if kind == "conv":
        return _conv_block(rng, c, h)
    if kind == "residual":
        stride = 2 if h >= 4 and rng.random() < 0.5 else 1
        c_out = int(rng.integers(2, 6))
        body = nn.Sequential(nn.Conv2d(c, c_out, 3, stride, 1, dtype=F64), nn.BatchNorm2d(c_out, dtype=F64),
                             nn.Tanh(), nn.Conv2d(c_out, c_out, 3, 1, 1, dtype=F64))
        shortcut = None if (stride, c_out) == (1, c) else nn.Conv2d(c, c_out, 1, stride, dtype=F64)
        post = nn.ReLU() if rng.random() < 0.5 else None
        return nn.Residual(body, shortcut, post), c_out, (h - 1) // stride + 1
    if kind == "basic":
        stride = 2 if h >= 4 and rng.random() < 0.5 else 1
        c_out = int(rng.choice([c, c + 2]))
        return BasicBlock(c, c_out, stride), c_out, (h - 1) // stride + 1
    if kind == "concat":
        branches = []
        for _ in range(int(rng.integers(2, 4))):
            choice = int(rng.integers(3))
            if choice == 0:
                block, _, _ = _conv_block(rng, c, h, size_keeping=True)
            elif choice == 1:
                block = nn.MaxPool2d(3, stride=1, padding=1)
            else:
                block = nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.Conv2d(c, 2, 1, dtype=F64))
            branches.append(block)
        concat = nn.Concat(*branches)
        x = np.zeros((2, c, h, h))
        with nn.no_grad():
            c_out = concat(x).shape[1]
        return concat, c_out, h
    if kind == "inception":
        return InceptionLike(c), 5, h
    if kind == "lrn":
        return nn.LocalResponseNorm(int(rng.integers(1, 4)), alpha=0.1, k=1.0), c, h
    if kind == "shufflev2":
        half = c // 2
        right = nn.Sequential(nn.ChannelSlice(half, c), nn.Conv2d(half, half, 1, bias=False, dtype=F64),
                              nn.BatchNorm2d(half, dtype=F64), nn.ReLU(),
                              nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False, dtype=F64))
        block = nn.Sequential(OrderedDict(
            split=nn.Concat(OrderedDict(left=nn.ChannelSlice(0, half), right=right)),
            shuffle=nn.ChannelShuffle(2),
        ))
        return block, c, h
    if kind == "shuffle":
        return nn.ChannelShuffle(int(rng.choice([g for g in _divisors(c) if g > 1]))), c, h
    if kind == "slice":
        start = int(rng.integers(0, c - 1))
        stop = int(rng.integers(start + 1, c + 1))
        return nn.ChannelSlice(start, stop), stop - start, h
    pool = nn.MaxPool2d(2) if rng.random() < 0.5 else nn.AvgPool2d(3, 2, 1)
    return pool, c, (h // 2 if isinstance(pool, nn.MaxPool2d) else (h - 1) // 2 + 1)


def random_network(seed: int, with_dropout: bool) -> tuple[nn.Module, tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    c, h = int(rng.integers(2, 5)), int(rng.integers(6, 10))
    shape = (2, c, h, h)
    blocks = []
    order = [BLOCK_KINDS[i] for i in rng.permutation(len(BLOCK_KINDS))]
    for i in range(int(rng.integers(3, 6))):
        block, c, h = _random_block(rng, c, h, order[i:] + order[:i])
        blocks.append(block)
    head = [nn.GlobalAvgPool(), nn.Flatten()]
    if with_dropout:
        head.append(nn.Dropout(0.5))
    head.append(nn.Linear(c, 3, dtype=F64))
    model = nn.Sequential(OrderedDict(features=nn.Sequential(*blocks), head=nn.Sequential(*head)))
    randomize(model, rng)
    return model, shape


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("seed", range(10))
def test_random_network_matches_torch(seed, train):
    model, shape = random_network(seed, with_dropout=not train)
    compare(model, _input(shape, seed), train=train, seed=seed)


def test_random_network_kinds_are_all_covered():
    """The seeds above draw every kind of block at least once (else the test would silently lose coverage)."""
    seen = set()
    for seed in range(10):
        model, _ = random_network(seed, with_dropout=True)
        seen |= {type(m).__name__ for m in model.modules()}
    for name in ("Residual", "BasicBlock", "Concat", "InceptionLike", "ChannelShuffle", "ChannelSlice",
                 "LocalResponseNorm", "BatchNorm2d", "MaxPool2d", "AvgPool2d"):
        assert name in seen, name
