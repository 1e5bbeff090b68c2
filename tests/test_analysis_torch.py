"""The analysis of torch models (convlab.interop.torch), with torch as the oracle.

* the same network built in torch and in convlab.nn gives the same table (ResNet-18,
  and a branchy net with concat, channel shuffle and channel slices);
* a functional ``F.conv2d`` in a custom ``forward`` is found and counted with its
  weight's shape (also a weight transformed in ``forward``);
* shapes agree with torch's real forward for random networks (1-d/2-d/3-d, batched
  and unbatched), and every receptive field contains the inputs autograd says an
  output unit depends on (exactly, for positive-weight convolution/average stacks);
* the dynamic fallback for a model with data-dependent control flow;
* ResNet-50 (built here from torch.nn layers; torchvision is not a dependency):
  parameters, buffers and MACs, and the analysis time, printed (measured, not asserted).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
tnn = torch.nn
F = torch.nn.functional

from convlab import models, nn  # noqa: E402
from convlab.analysis import analyze, analyze_graph  # noqa: E402
from convlab.interop.torch import analyze as analyze_torch  # noqa: E402
from convlab.interop.torch import graph_from_torch  # noqa: E402
from tests.torch_resnet import BasicBlock as TorchBasicBlock  # noqa: E402
from tests.torch_resnet import Bottleneck as TorchBottleneck  # noqa: E402
from tests.torch_resnet import ResNet as TorchResNet  # noqa: E402


def rows_without_op(report):
    """The CSV lines without the `op` column (a torch Flatten is torch.flatten, a convlab one nn.Flatten)."""
    lines = [line.split(",") for line in report.to_csv().splitlines()]
    return [line[:3] + line[4:] for line in lines]


def test_resnet18_in_torch_and_in_convlab_give_the_same_table():
    shape = (2, 3, 64, 64)
    ours = analyze(models.create("resnet18", input_size=shape[1:], num_classes=10, rng=0), shape)
    theirs = analyze(TorchResNet(TorchBasicBlock, (2, 2, 2, 2), num_classes=10), shape)
    assert rows_without_op(theirs) == rows_without_op(ours)
    assert [r.name for r in theirs][:6] == ["input", "conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert theirs["layer1.0.relu#2"].kind == "activation"  # torchvision's one ReLU, called twice per block


def test_resnet50_counts_and_analysis_time(capsys):
    model = TorchResNet(TorchBottleneck, (3, 4, 6, 3))
    shape = (1, 3, 224, 224)
    start = time.perf_counter()
    graph = graph_from_torch(model, shape)
    traced = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        report = analyze_graph(graph, shape)
        times.append(time.perf_counter() - start)
    assert report.total_params == sum(p.numel() for p in model.parameters()) == 25_557_032
    assert report.total_buffers == sum(b.numel() for b in model.buffers())
    assert report.total_macs == 4_089_184_256
    assert report.output_shape == (1, 1000) and len(report) == 176
    with capsys.disabled():
        print(f"\nResNet-50 ({len(graph)} nodes): fx trace + graph {traced * 1e3:.1f} ms, "
              f"analysis {min(times) * 1e3:.2f} ms (best of 5)")


# --------------------------------------------------------------------------- branches, the same in both


class TorchBranchy(tnn.Module):
    def __init__(self):
        super().__init__()
        self.stem = tnn.Conv2d(3, 8, 3, 2, 1)
        self.a = tnn.Conv2d(8, 4, 1)
        self.b = tnn.Sequential(tnn.Conv2d(8, 4, 1), tnn.Conv2d(4, 4, 3, padding=1, groups=2))
        self.c = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), tnn.Conv2d(8, 4, 1))
        self.shuffle = tnn.ChannelShuffle(3)
        self.head = tnn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6)

    def forward(self, x):
        x = self.stem(x)
        x = self.shuffle(torch.cat([self.a(x), self.b(x), self.c(x)], 1))
        return self.head(x[:, 3:9])


def convlab_branchy():
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, rng=rng),
        nn.Concat(nn.Conv2d(8, 4, 1, rng=rng),
                  nn.Sequential(nn.Conv2d(8, 4, 1, rng=rng), nn.Conv2d(4, 4, 3, padding=1, groups=2, rng=rng)),
                  nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(8, 4, 1, rng=rng))),
        nn.ChannelShuffle(3), nn.ChannelSlice(3, 9),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, rng=rng),
    )


def test_branchy_network_in_torch_and_in_convlab_give_the_same_numbers():
    shape = (2, 3, 16, 16)
    theirs = analyze(TorchBranchy(), shape)
    ours = analyze(convlab_branchy(), shape)

    def numbers(report):
        return [(r.kind, r.output_shape, r.params, r.macs, r.flops, r.memory, r.receptive_field) for r in report]

    assert numbers(theirs) == numbers(ours)
    assert theirs.output_shape == tuple(TorchBranchy()(torch.zeros(shape)).shape)
    assert theirs.warnings == [] and theirs.notes == []


# --------------------------------------------------------------------------- functional convolutions


class FunctionalNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(6, 2, 3, 3))  # groups=2: (C_out, C_in/groups, k, k)
        self.bias = tnn.Parameter(torch.zeros(6))
        self.up = tnn.Parameter(torch.randn(6, 2, 4, 4))  # transposed: (C_in, C_out/groups, k, k)
        self.fc = tnn.Parameter(torch.randn(5, 4))

    def forward(self, x):
        y = F.relu(F.conv2d(x, self.weight, self.bias, stride=2, padding=1, groups=2))
        standardized = (self.up - self.up.mean()) / self.up.std()  # a weight made in forward
        y = F.conv_transpose2d(y, standardized, stride=2, padding=1, groups=2)
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return F.linear(y, self.fc)


def test_functional_convolutions_are_found_and_counted():
    shape = (3, 4, 10, 10)
    report = analyze(FunctionalNet(), shape)
    kinds = [r.kind for r in report if r.kind != "input"]
    assert kinds == ["conv", "activation", "conv_transpose", "adaptive_pool", "flatten", "linear"]
    conv = next(r for r in report if r.kind == "conv")
    assert conv.output_shape == (3, 6, 5, 5)
    assert conv.macs == 3 * 6 * 2 * 9 * 25 and conv.params == 6 * 2 * 9 + 6
    up = next(r for r in report if r.kind == "conv_transpose")
    assert up.output_shape == (3, 4, 10, 10)
    assert up.macs == 3 * 6 * 25 * (4 // 2) * 16 and up.params == 6 * 2 * 16  # counted from the input size
    fc = next(r for r in report if r.kind == "linear")
    assert fc.macs == 3 * 4 * 5 and fc.params == 20
    assert report.total_params == sum(p.numel() for p in FunctionalNet().parameters())
    assert report.output_shape == tuple(FunctionalNet()(torch.zeros(shape)).shape)


# --------------------------------------------------------------------------- shapes and fields against torch


@st.composite
def random_network(draw):
    """A random chain of layers valid for its input, with the shapes torch's forward gives."""
    nd = draw(st.sampled_from((1, 2, 2, 3)))
    size = draw(st.integers(6 if nd == 3 else 9, 10 if nd == 3 else 24))
    channels = draw(st.sampled_from((2, 4, 6)))
    batched = draw(st.booleans())
    shape = ((2,) if batched else ()) + (channels,) + (size,) * nd
    x = torch.zeros(shape, dtype=torch.float64)
    layers = []
    conv, conv_t = getattr(tnn, f"Conv{nd}d"), getattr(tnn, f"ConvTranspose{nd}d")
    for _ in range(draw(st.integers(1, 5))):
        c = x.shape[-nd - 1]
        kind = draw(st.sampled_from(("conv", "conv", "convT", "max", "avg", "adaptive", "bn", "relu", "up")))
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        if kind == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
            layer = conv(c, groups * draw(st.integers(1, 3)), k, s, draw(st.integers(0, 2)), d, groups,
                         bias=draw(st.booleans()))
        elif kind == "convT":
            layer = conv_t(c, draw(st.sampled_from((2, 4))), k, s, draw(st.integers(0, 1)),
                           draw(st.integers(0, max(s, d) - 1)), dilation=d)
        elif kind in ("max", "avg"):
            pool = getattr(tnn, f"{'Max' if kind == 'max' else 'Avg'}Pool{nd}d")
            extra = {"dilation": d} if kind == "max" else {"count_include_pad": draw(st.booleans())}
            layer = pool(k, s, draw(st.integers(0, k // 2)), ceil_mode=draw(st.booleans()), **extra)
        elif kind == "adaptive":
            layer = getattr(tnn, f"AdaptiveAvgPool{nd}d")(draw(st.integers(1, 5)))
        elif kind == "bn":
            if not batched:
                continue  # torch's BatchNorm needs a batch
            layer = getattr(tnn, f"BatchNorm{nd}d")(c)
        elif kind == "relu":
            layer = tnn.ReLU()
        else:
            mode = draw(st.sampled_from(("nearest", "linear" if nd == 1 else "bilinear" if nd == 2 else "trilinear")))
            layer = tnn.Upsample(scale_factor=draw(st.sampled_from((2, 3))), mode=mode,
                                 align_corners=False if mode != "nearest" else None)
        layer = layer.double().eval()
        try:
            y = layer(x)
        except RuntimeError:
            continue  # the layer does not fit this input (torch says so); draw the next one
        if y.numel() == 0 or y.numel() > 200_000:
            continue
        layers.append((layer, tuple(y.shape)))
        x = y
    if not layers:
        layers.append((tnn.ReLU(), tuple(x.shape)))
    return shape, layers


@settings(max_examples=40, deadline=None)
@given(random_network())
def test_shapes_match_torch_and_fields_contain_every_dependency(network):
    shape, layers = network
    model = tnn.Sequential(*(layer for layer, _ in layers)).double().eval()
    report = analyze(model, shape)
    assert [r.output_shape for r in report.layers] == [s for _, s in layers]
    assert report.total_params == sum(p.numel() for p in model.parameters())
    rf = report.receptive_field
    if rf is None:
        return
    nd = len(rf)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y = model(x)
    # one output unit per spatial corner and the middle: its dependencies via autograd
    out_spatial = y.shape[-nd:]
    for position in {tuple(0 for _ in out_spatial), tuple(n - 1 for n in out_spatial),
                     tuple(n // 2 for n in out_spatial)}:
        index = (0,) * (y.dim() - nd) + position
        (grad,) = torch.autograd.grad(y[index], x, retain_graph=True)
        nonzero = grad.abs().reshape(-1, *grad.shape[-nd:]).sum(0).nonzero()
        for dim, field in enumerate(rf):
            o = position[dim]
            lo, hi = field.start + o * field.jump, field.start + o * field.jump + field.size - 1
            if len(nonzero):
                assert lo <= int(nonzero[:, dim].min()) and int(nonzero[:, dim].max()) <= hi


def test_fields_are_exact_for_positive_convolution_and_average_stacks():
    model = tnn.Sequential(tnn.Conv2d(1, 1, 3, 2, 1), tnn.AvgPool2d(3, 1, 1), tnn.Conv2d(1, 1, 3, 1, 2, dilation=2),
                           tnn.AvgPool2d(2, 2)).double()
    for p in model.parameters():
        p.data.abs_().add_(0.1)
    report = analyze(model, (1, 1, 64, 64))
    field = report.receptive_field[0]
    x = torch.ones((1, 1, 64, 64), dtype=torch.float64, requires_grad=True)
    y = model(x)
    (grad,) = torch.autograd.grad(y[0, 0, 4, 5], x)
    rows, cols = grad[0, 0].nonzero().unbind(1)
    # unit (4, 5) lies inside the input, so its field is not clipped by the border
    for seen, o in ((rows, 4), (cols, 5)):
        first = field.start + o * field.jump
        assert (int(seen.min()), int(seen.max())) == (first, first + field.size - 1)


# --------------------------------------------------------------------------- alignment, fallback, unbatched


class TwoPaths(tnn.Module):
    def __init__(self, kernel_b, padding_b):
        super().__init__()
        self.a = tnn.Conv2d(1, 1, 3, 2, 1)
        self.b = tnn.Conv2d(1, 1, kernel_b, 2, padding_b)

    def forward(self, x):
        return self.a(x) + self.b(x)


def test_misaligned_paths_are_reported():
    aligned = analyze(TwoPaths(1, 0), (1, 1, 16, 16))
    assert aligned.warnings == []
    shifted = analyze(TwoPaths(4, 1), (1, 1, 16, 16))  # centre 0 vs 0.5
    assert len(shifted.warnings) == 2 and "centres differ" in shifted.warnings[0][1]
    assert shifted.warnings[0][0] == "add"


class DataDependent(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, padding=1)
        self.pool = tnn.MaxPool2d(2)

    def forward(self, x):
        y = self.conv(x)
        if y.mean() > -1e9:  # data-dependent: symbolic tracing cannot take this branch
            y = y + x.repeat(1, 2, 1, 1)[:, :4]
        for _ in range(y.shape[-1] // 8):
            y = self.pool(y)
        return y


def test_dynamic_fallback_for_data_dependent_control_flow():
    shape = (2, 3, 16, 16)
    report = analyze(DataDependent(), shape)
    assert any("symbolic tracing failed" in note for note in report.notes)
    assert any("dynamic method" in note for note in report.notes)
    assert report.output_shape == tuple(DataDependent()(torch.zeros(shape)).shape) == (2, 4, 4, 4)
    conv = report["conv"]
    assert conv.macs == 2 * 4 * 3 * 9 * 256 and conv.params == 4 * 3 * 9 + 4
    assert [r.kind for r in report].count("pool_max") == 2
    assert report.total_params == sum(p.numel() for p in DataDependent().parameters())
    with pytest.raises(Exception):  # noqa: B017 -- torch.fx's own error type
        analyze_torch(DataDependent(), shape, method="fx")


def test_unbatched_torch_input():
    model = tnn.Sequential(tnn.Conv2d(3, 5, 3, 2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(0),
                           tnn.Linear(5 * 9 * 9, 4))
    shape = (3, 40, 40)
    report = analyze(model, shape)
    assert not report.batched
    assert [r.output_shape for r in report.layers] == [(5, 19, 19), (5, 19, 19), (5, 9, 9), (405,), (4,)]
    assert report.output_shape == tuple(model(torch.zeros(shape)).shape)
    batched = analyze(model[:3], (1, *shape))
    assert batched.total_macs == analyze(model[:3], shape).total_macs


def test_dynamic_method_gives_the_same_table_as_fx():
    model = TorchResNet(TorchBasicBlock, (1, 1, 1, 1), num_classes=10)
    shape = (1, 3, 32, 32)
    fx = analyze_torch(model, shape, method="fx")
    dynamic = analyze_torch(model, shape, method="dynamic")
    assert rows_without_op(dynamic) == rows_without_op(fx)
    assert all(m.training for m in model.modules())  # the recording's eval mode is undone
