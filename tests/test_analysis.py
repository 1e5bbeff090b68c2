"""Tests of the symbolic network analysis (convlab.analysis), without torch.

* receptive fields computed by hand: sequential stacks (three 3x3 = 7, dilations
  1/2/4 = 15, conv-pool-conv, VGG-16's 212 before the classifier), branches (a
  residual block with and without a strided shortcut, an inception-like concat),
  fractional strides (transposed convolution, upsampling), and a brute-force 1-d
  dependency propagation that every field must contain;
* the alignment check of Araujo et al. flags two-path networks whose centres or
  jumps differ, and only those;
* MACs of transposed, grouped, depthwise and dilated convolutions equal a loop
  that counts every multiplication (the loop's output checked against the engine);
  FLOPs follow the documented per-kind conventions;
* unbatched inputs, the zoo (parameters, buffers, output shapes against a real
  forward), the report's text/JSON/CSV/Markdown views, and errors.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections import OrderedDict
from fractions import Fraction

import numpy as np
import pytest

import convlab.functional as F
from convlab import models, nn
from convlab.analysis import Graph, analyze, analyze_graph, summary
from convlab.analysis.receptive import transposed_field, upsample_field
from convlab.shapes import ReceptiveField
from convlab.spec import ConvSpec, PoolSpec

RNG = np.random.default_rng(0)


def conv(cin, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias,
                     rng=RNG)


def field(report, name):
    """The receptive field of one node along the first spatial dim."""
    return report[name].receptive_field[0]


# --------------------------------------------------------------------------- sequential receptive fields


def test_three_3x3_convolutions_see_7_pixels():
    model = nn.Sequential(conv(1, 1, 3), conv(1, 1, 3), conv(1, 1, 3))
    report = analyze(model, (1, 1, 16, 16))
    assert [field(report, str(i)).size for i in range(3)] == [3, 5, 7]
    assert report.receptive_field == (ReceptiveField(7, 1, 0),) * 2
    padded = analyze(nn.Sequential(*(conv(1, 1, 3, padding=1) for _ in range(3))), (1, 1, 16, 16))
    assert padded.receptive_field[0] == ReceptiveField(7, 1, -3)  # start -3: three pixels of padding reach
    assert padded["2"].effective_padding == (3, 3) and padded["2"].center == (0, 0)


def test_dilations_1_2_4_see_15_pixels():
    model = nn.Sequential(*(conv(1, 1, 3, dilation=d) for d in (1, 2, 4)))
    report = analyze(model, (1, 1, 32, 32))
    assert [field(report, str(i)).size for i in range(3)] == [3, 7, 15]  # 1 + 2*(1 + 2 + 4)
    assert report["2"].output_shape == (1, 1, 18, 18)  # 32 - 2 - 4 - 8


def test_conv_pool_conv():
    model = nn.Sequential(conv(1, 1, 3, padding=1), nn.MaxPool2d(2), conv(1, 1, 3, padding=1))
    report = analyze(model, (1, 1, 16, 16))
    # conv: 3, jump 1, start -1; pool 2/2: 3 + 1 = 4, jump 2; conv: 4 + 2*2 = 8, start -1 - 1*2 = -3
    assert field(report, "0") == ReceptiveField(3, 1, -1)
    assert field(report, "1") == ReceptiveField(4, 2, -1)
    assert field(report, "2") == ReceptiveField(8, 2, -3)


def test_vgg16_sees_212_pixels_before_the_classifier():
    # By hand (Araujo et al. recursion): two 3x3 convs at jump 1 (+2 +2 = 5), pool (+1 = 6, jump 2);
    # two convs at jump 2 (+8 = 14), pool (+2 = 16, jump 4); three at 4 (+24 = 40), pool (+4 = 44, jump 8);
    # three at 8 (+48 = 92), pool (+8 = 100, jump 16); three at 16 (+96 = 196), pool (+16 = 212, jump 32).
    size, jump, start = 1, 1, 0
    for convs in (2, 2, 3, 3, 3):
        for _ in range(convs):
            size, start = size + 2 * jump, start - jump
        size, jump = size + jump, jump * 2
    assert (size, jump, start) == (212, 32, -90)
    report = analyze(models.create("vgg16", rng=0), (1, 3, 224, 224))
    pools = [r for r in report if r.kind == "pool_max"]
    assert len(pools) == 5
    assert pools[-1].receptive_field == (ReceptiveField(212, 32, -90),) * 2
    assert pools[-1].output_shape == (1, 512, 7, 7)
    # the classifier mixes every position: its field is the reach of the whole 7x7 map
    fc = [r for r in report if r.kind == "linear"]
    assert fc[0].scope == "global" and fc[0].receptive_field[0].size == 212 + 6 * 32
    assert report.total_params == 138_357_544


# --------------------------------------------------------------------------- branches and alignment


class Block(nn.Residual):
    body_names = ("conv1", "relu", "conv2")
    shortcut_name = "downsample"
    post_name = "relu"

    def __init__(self, channels, out_channels, stride):
        super().__init__()
        self.conv1 = conv(channels, out_channels, 3, stride=stride, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = conv(out_channels, out_channels, 3, padding=1)
        self.downsample = conv(channels, out_channels, 1, stride=stride) if stride > 1 else None


def test_residual_block_field_is_the_union_of_its_paths():
    report = analyze(Block(4, 4, 1), (1, 4, 16, 16))
    # body: 3x3 then 3x3 -> 5, start -2; identity shortcut: 1, start 0; both centred on 0
    assert field(report, "add") == ReceptiveField(5, 1, -2)
    assert report.warnings == []
    assert [r.name for r in report] == ["input", "conv1", "relu", "conv2", "add", "relu#2"]
    down = analyze(Block(4, 8, 2), (1, 4, 16, 16))
    # body: 3x3/2 (3, jump 2, start -1) then 3x3 (3 + 2*2 = 7, start -3); shortcut 1x1/2: 1, jump 2, start 0
    assert field(down, "conv2") == ReceptiveField(7, 2, -3)
    assert field(down, "downsample") == ReceptiveField(1, 2, 0)
    assert field(down, "add") == ReceptiveField(7, 2, -3)
    assert down.warnings == [] and down["add"].output_shape == (1, 8, 8, 8)


def test_inception_like_concat():
    branches = OrderedDict(
        b1=conv(8, 4, 1),
        b3=nn.Sequential(conv(8, 4, 1), conv(4, 6, 3, padding=1)),
        b5=nn.Sequential(conv(8, 2, 1), conv(2, 3, 5, padding=2)),
        pool=nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(8, 5, 1)),
    )
    report = analyze(nn.Sequential(conv(3, 8, 3, stride=2, padding=1), nn.Concat(branches)), (2, 3, 32, 32))
    out = report["1.concat"]
    assert out.output_shape == (2, 4 + 6 + 3 + 5, 16, 16)
    # stem: 3, jump 2, start -1; the 5x5 branch adds 4*2: 11, start -1 - 2*2 = -5; all centred on 0
    assert out.receptive_field[0] == ReceptiveField(11, 2, -5)
    assert report["1.b3.1"].receptive_field[0] == ReceptiveField(7, 2, -3)
    assert report.warnings == []


def two_paths(path_a, path_b, input_shape=(1, 1, 16, 16)):
    g = Graph()
    x = g.input()
    ends = []
    for label, path in (("a", path_a), ("b", path_b)):
        y = x
        for i, (k, s, p) in enumerate(path):
            y = g.add("conv", f"{label}{i}", y, spec=ConvSpec(k, stride=s, padding=p, ndim=2), in_channels=1,
                      out_channels=1)
        ends.append(y)
    g.add("add", "add", ends)
    return analyze_graph(g, input_shape)


def test_alignment_check_reports_centres_that_differ():
    # a: 3x3/2 pad 1 then 3x3 pad 1, centre 0; b: 4x4/2 pad 1 (start -1, size 4: centre 0.5) then 3x3 pad 1
    report = two_paths([(3, 2, 1), (3, 1, 1)], [(4, 2, 1), (3, 1, 1)])
    assert report["a1"].output_shape == report["b1"].output_shape == (1, 1, 8, 8)
    assert report["a1"].center == (0, 0) and report["b1"].center == (Fraction(1, 2),) * 2
    warnings = report["add"].warnings
    assert len(warnings) == 2 and all("centres differ" in w and "a1: 0" in w and "b1: 0.5" not in w for w in warnings)
    assert "b1: 1/2" in warnings[0]
    # the union of the regions: a covers [-3, 3], b covers [-3, 4]
    assert field(report, "add") == ReceptiveField(8, 2, -3)
    assert "!" in str(report).splitlines()[2 + report["add"].id]


def test_alignment_check_reports_jumps_that_differ():
    # a: 3x3/2 pad 1 -> 8 units with jump 2; b: 9x9/1 -> 8 units with jump 1
    report = two_paths([(3, 2, 1)], [(9, 1, 0)])
    assert report["a0"].output_shape == report["b0"].output_shape
    warnings = report["add"].warnings
    assert len(warnings) == 2 and "disagree on jump (a0: 2, b0: 1)" in warnings[0]
    assert field(report, "add") == ReceptiveField(10, 2, -1)  # union of [-1, 1] and [0, 8]; largest jump
    assert ("add", warnings[0]) in report.warnings


def test_aligned_paths_give_no_warning():
    report = two_paths([(3, 2, 1), (3, 1, 1)], [(1, 2, 0)])
    assert report.warnings == []


def test_broadcast_gate_joins_the_union_but_not_the_alignment_check():
    g = Graph()
    x = g.input()
    c = g.add("conv", "conv", x, spec=ConvSpec(3, padding=1, ndim=2), in_channels=2, out_channels=2)
    gate = g.add("global_pool", "squeeze", c, ndim=2)
    gate = g.add("activation", "sigmoid", gate, function="sigmoid")
    g.add("mul", "excite", (c, gate))
    report = analyze_graph(g, (1, 2, 10, 10))
    assert report.warnings == []
    # the gate sees the whole map: [-1, 10] in input pixels
    assert field(report, "excite") == ReceptiveField(12, 1, -1)
    assert report["squeeze"].output_shape == (1, 2, 1, 1) and report["squeeze"].scope == "global"


# --------------------------------------------------------------------------- fractional strides


def test_transposed_convolution_field():
    # own field (Dumoulin & Visin: o = i*s + m*d - p): output o reads i in [(o + p - d(k-1))/s, (o + p)/s]
    assert transposed_field(4, 2, 1) == ReceptiveField(Fraction(5, 2), Fraction(1, 2), -1)
    model = nn.Sequential(conv(1, 1, 3, stride=2, padding=1), nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1,
                                                                                rng=RNG))
    report = analyze(model, (1, 1, 16, 16))
    # after the conv: 3, jump 2, start -1; the transposed conv adds (k-1)*d*jump_new = 3*1 and halves the jump
    assert field(report, "1") == ReceptiveField(6, 1, -3)
    assert report["1"].output_shape == (1, 1, 16, 16)


def test_upsampling_field():
    # nearest x2: output o reads floor(o/2); the smallest affine extent holding it is [o/2 - 1/2, o/2]
    assert upsample_field(Fraction(1, 2)) == ReceptiveField(Fraction(3, 2), Fraction(1, 2), Fraction(-1, 2))
    model = nn.Sequential(conv(1, 1, 3, stride=2, padding=1), nn.Upsample(scale_factor=2), conv(1, 1, 3, padding=1))
    report = analyze(model, (1, 1, 16, 16))
    assert field(report, "1") == ReceptiveField(4, 1, -2)  # 3 + (3/2 - 1)*2, jump 2/2, start -1 - (1/2)*2
    # by hand: even o reads inputs [o-3, o+1], odd o reads [o-2, o+2]; together [o-3, o+2]
    assert field(report, "2") == ReceptiveField(6, 1, -3)
    assert report["2"].output_shape == (1, 1, 16, 16)
    odd = analyze(nn.Sequential(nn.Upsample(scale_factor=3)), (1, 1, 4, 4))
    assert field(odd, "0").jump == Fraction(1, 3) and odd["0"].output_shape == (1, 1, 12, 12)
    assert "1/3" in odd.to_csv()


def dependencies_1d(layers, length):
    """For each output position, the set of input positions it reads (brute force, 1-d).

    ``layers``: ('conv', k, s, p, d) gathers ``i*s - p + m*d``; ('convT', k, s, p, d) scatters
    input ``i`` through tap ``m`` to ``i*s + m*d - p`` (output length by the transposed rule);
    ('up', f) nearest upsampling by an integer factor.
    """
    deps = [{i} for i in range(length)]
    for layer in layers:
        n = len(deps)
        if layer[0] == "conv":
            _, k, s, p, d = layer
            out = (n + 2 * p - d * (k - 1) - 1) // s + 1
            deps = [set().union(*(deps[o * s - p + m * d] for m in range(k) if 0 <= o * s - p + m * d < n))
                    for o in range(out)]
        elif layer[0] == "convT":
            _, k, s, p, d = layer
            out = (n - 1) * s - 2 * p + d * (k - 1) + 1
            new = [set() for _ in range(out)]
            for i, m in itertools.product(range(n), range(k)):
                if 0 <= i * s + m * d - p < out:
                    new[i * s + m * d - p] |= deps[i]
            deps = new
        else:
            deps = [deps[o // layer[1]] for o in range(n * layer[1])]
    return deps


@pytest.mark.parametrize("layers", [
    [("conv", 3, 2, 1, 1), ("conv", 3, 1, 1, 2), ("conv", 2, 2, 0, 1)],
    [("conv", 3, 2, 1, 1), ("convT", 4, 2, 1, 1), ("conv", 3, 1, 1, 1)],
    [("conv", 5, 2, 2, 1), ("convT", 3, 2, 1, 1), ("convT", 5, 3, 2, 2)],
    [("conv", 3, 2, 0, 1), ("up", 2), ("conv", 3, 1, 1, 1), ("up", 3)],
])
def test_fields_contain_every_dependency(layers):
    """Brute force: the inputs an output unit reads lie inside [start + o*jump, start + o*jump + size - 1]."""
    g = Graph()
    x = g.input()
    for i, layer in enumerate(layers):
        if layer[0] == "up":
            x = g.add("upsample", str(i), x, scale_factor=(layer[1],))
            continue
        _, k, s, p, d = layer
        spec = ConvSpec(k, stride=s, padding=p, dilation=d, transposed=layer[0] == "convT", ndim=1)
        x = g.add("conv_transpose" if layer[0] == "convT" else "conv", str(i), x, spec=spec, in_channels=1,
                  out_channels=1)
    report = analyze_graph(g, (1, 1, 23))
    rf = report.receptive_field[0]
    deps = dependencies_1d(layers, 23)
    assert len(deps) == report.output_shape[-1]
    exact_somewhere = False
    for o, seen in enumerate(deps):
        lo, hi = rf.start + o * rf.jump, rf.start + o * rf.jump + rf.size - 1
        assert seen and lo <= min(seen) and max(seen) <= hi, (o, sorted(seen), lo, hi)
        exact_somewhere |= (max(seen) - min(seen) + 1 == rf.size)
    if all(layer[0] == "conv" for layer in layers):
        assert exact_somewhere  # integer strides: the field is exact for units inside the input


# --------------------------------------------------------------------------- counts


def counted_conv_transpose(x, w, stride, padding, groups):
    """Scatter loop for one sample (C_in, L): every input element times every tap of its group's filters."""
    c_in, length = x.shape
    _, cout_g, k = w.shape
    cin_g = c_in // groups
    out = (length - 1) * stride - 2 * padding + k
    y = np.zeros((cout_g * groups, out))
    multiplications = 0
    for c, i in itertools.product(range(c_in), range(length)):
        g = c // cin_g
        for j, m in itertools.product(range(cout_g), range(k)):
            multiplications += 1  # taps that land in the cropped padding are multiplied too
            if 0 <= i * stride + m - padding < out:
                y[g * cout_g + j, i * stride + m - padding] += x[c, i] * w[c, j, m]
    return y, multiplications


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, groups", [
    (4, 6, 3, 2, 1, 1), (4, 6, 4, 2, 1, 2), (6, 6, 5, 3, 2, 6), (2, 3, 2, 1, 0, 1),
])
def test_transposed_convolution_macs_equal_a_counting_loop(c_in, c_out, k, stride, padding, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c_in, 7))
    w = rng.standard_normal((c_in, c_out // groups, k))
    y, multiplications = counted_conv_transpose(x, w, stride, padding, groups)
    np.testing.assert_allclose(
        y, F.conv_transpose1d(x[None], w, stride=stride, padding=padding, groups=groups)[0], rtol=1e-10, atol=1e-10
    )
    g = Graph()
    g.add("conv_transpose", "up", g.input(), spec=ConvSpec(k, stride=stride, padding=padding, groups=groups,
                                                            transposed=True, ndim=1),
          in_channels=c_in, out_channels=c_out, bias=True)
    report = analyze_graph(g, (3, c_in, 7))
    row = report["up"]
    assert row.output_shape == (3, c_out, y.shape[1])
    # N x C_in x prod(I) x (C_out/groups) x prod(k), and not the output-size count of a convolution
    assert row.macs == 3 * multiplications == 3 * c_in * 7 * (c_out // groups) * k
    assert row.flops == 2 * row.macs + 3 * c_out * y.shape[1]
    assert row.params == w.size + c_out


def counted_conv(x, w, stride, padding, dilation, groups):
    """Gather loop for one sample (C_in, H, W): every output element times every tap of its filter."""
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    c_out, cin_g, kh, kw = w.shape
    out_h = (xp.shape[1] - dilation * (kh - 1) - 1) // stride + 1
    out_w = (xp.shape[2] - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((c_out, out_h, out_w))
    multiplications = 0
    for o, i, j in itertools.product(range(c_out), range(out_h), range(out_w)):
        g = o // (c_out // groups)
        for c, a, b in itertools.product(range(cin_g), range(kh), range(kw)):
            y[o, i, j] += xp[g * cin_g + c, i * stride + a * dilation, j * stride + b * dilation] * w[o, c, a, b]
            multiplications += 1
    return y, multiplications


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, dilation, groups", [
    (4, 6, 3, 1, 1, 1, 2),   # grouped
    (6, 6, 3, 2, 1, 1, 6),   # depthwise
    (3, 4, 3, 1, 2, 2, 1),   # dilated
    (4, 8, 3, 2, 3, 3, 4),   # all three
])
def test_grouped_depthwise_dilated_macs_equal_a_counting_loop(c_in, c_out, k, stride, padding, dilation, groups):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((c_in, 9, 8))
    w = rng.standard_normal((c_out, c_in // groups, k, k))
    y, multiplications = counted_conv(x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(
        y, F.conv2d(x[None], w, stride=stride, padding=padding, dilation=dilation, groups=groups)[0],
        rtol=1e-10, atol=1e-10,
    )
    model = conv(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False)
    for shape, n in (((2, c_in, 9, 8), 2), ((c_in, 9, 8), 1)):
        row = analyze(nn.Sequential(model), shape)["0"]
        assert row.output_shape == (*shape[:-3], *y.shape)
        assert row.macs == n * multiplications and row.flops == 2 * row.macs
        assert row.params == w.size


def test_flops_conventions_of_the_other_layers():
    g = Graph()
    x = g.input()
    c = g.add("conv", "conv", x, spec=ConvSpec(3, padding=1, ndim=2), in_channels=2, out_channels=4, bias=True)
    b = g.add("bn", "bn", c, num_features=4, ndim=2)
    r = g.add("activation", "relu", b)
    s = g.add("add", "add", (r, c))
    m = g.add("pool_max", "max", s, spec=PoolSpec(3, stride=2, ndim=2))
    a = g.add("pool_avg", "avg", s, spec=PoolSpec(2, ndim=2))
    ad = g.add("adaptive_pool", "adaptive", s, output_size=(3, 3), mode="avg")
    gp = g.add("global_pool", "global", s, ndim=2, keepdim=False)
    f = g.add("flatten", "flatten", a)
    li = g.add("linear", "fc", f, in_features=4 * 4 * 4, out_features=5, bias=True)
    sm = g.add("softmax", "softmax", li, dim=1)
    g.outputs = [sm, m, ad, gp]
    report = analyze_graph(g, (2, 2, 8, 8))
    elements = 2 * 4 * 8 * 8
    assert report["conv"].macs == 2 * 4 * 64 * 2 * 9 and report["conv"].bias_adds == elements
    assert report["bn"].flops == 2 * elements and report["bn"].macs == 0
    assert report["bn"].params == 8 and report["bn"].buffers == 9  # running mean/var + num_batches_tracked
    assert report["relu"].flops == elements and report["add"].flops == elements
    assert report["max"].output_shape == (2, 4, 3, 3) and report["max"].flops == 2 * 4 * 9 * 8
    assert report["avg"].output_shape == (2, 4, 4, 4) and report["avg"].flops == 2 * 4 * 16 * 4
    # adaptive 8 -> 3: windows [0,3), [2,6), [5,8): 3 + 4 + 3 = 10 per dim, 100 window elements per channel
    assert report["adaptive"].flops == 2 * 4 * 100
    assert report["global"].output_shape == (2, 4) and report["global"].flops == elements
    assert report["fc"].macs == 2 * 64 * 5 and report["fc"].flops == 2 * report["fc"].macs + 10
    assert report["softmax"].flops == 3 * 10 and report["flatten"].flops == 0
    assert report.total_macs == sum(r.macs for r in report) and report.total_flops == sum(r.flops for r in report)


def test_unbatched_input_gives_per_sample_counts():
    model = nn.Sequential(conv(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), conv(8, 4, 3, padding=1))
    batched = analyze(model, (5, 3, 20, 20))
    single = analyze(model, (3, 20, 20))
    assert not single.batched and single.batch_size == 1 and batched.batch_size == 5
    assert single.output_shape == (4, 5, 5) and batched.output_shape == (5, 4, 5, 5)
    assert batched.total_macs == 5 * single.total_macs and batched.total_flops == 5 * single.total_flops
    assert batched.total_params == single.total_params
    assert single.receptive_field == batched.receptive_field
    one_d = analyze(nn.Sequential(nn.Conv1d(2, 3, 3, rng=RNG)), (2, 9))  # (C, L): unbatched, not (N, C)
    assert one_d.output_shape == (3, 7) and not one_d.batched


# --------------------------------------------------------------------------- convlab.nn models and the zoo


@pytest.mark.parametrize("name, shape", [("lenet", (1, 1, 28, 28)), ("resnet18", (2, 3, 32, 32)),
                                          ("shufflenet_v2_x1_0", (1, 3, 64, 64))])
def test_zoo_output_shapes_params_and_buffers_match_the_model(name, shape):
    model = models.create(name, input_size=shape[1:], num_classes=7, rng=0)
    report = analyze(model, shape)
    assert report.total_params == model.num_parameters()
    assert report.trainable_params == model.num_parameters(trainable_only=True)
    assert report.total_buffers == sum(b.size for b in model.buffers())
    model.eval()
    assert report.output_shape == model(np.zeros(shape, np.float32)).shape
    assert report.notes == [] and report.warnings == []


def test_zoo_resnet50_counts_and_receptive_field():
    report = analyze(models.create("resnet50", rng=0), (1, 3, 224, 224))
    assert report.total_params == 25_557_032
    assert report.total_macs == 4_089_184_256  # ResNet v1.5 (stride on the 3x3), as torchvision
    # layer4's field: ResNet-50 v1.5 = 427 (the paper's v1, stride on the 1x1, is 483)
    assert report["layer4.2.relu#3"].receptive_field[0] == ReceptiveField(427, 32, -213)


def test_frozen_parameters_are_non_trainable():
    model = nn.Sequential(conv(2, 3, 3), nn.BatchNorm2d(3))
    model[0].weight.requires_grad = False
    report = analyze(model, (1, 2, 6, 6))
    assert report.non_trainable_params == 2 * 3 * 9 and report.trainable_params == 3 + 6
    assert report.total_buffers == 3 + 3 + 1


def test_namespace_stand_ins_mirroring_the_contract():
    """The builder reads only the contract's class names and attributes (any namespace works)."""

    class Module:
        def named_children(self):
            return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    class Conv2d(Module):
        def __init__(self):
            self.in_channels, self.out_channels, self.kernel_size, self.stride = 2, 2, (3, 3), (1, 1)
            self.padding, self.dilation, self.groups, self.bias = (1, 1), (1, 1), 1, None

    class Residual(Module):
        body_names, shortcut_name, post_name = ("body",), None, None

        def __init__(self, body):
            self.body = body

    class Namespace:
        pass

    ns = Namespace()
    ns.Module, ns.Conv2d, ns.Residual = Module, Conv2d, Residual
    g = analyze(Residual(Conv2d()), (1, 2, 5, 5), namespace=ns)
    # the stand-in lists no parameters, so the count comes from the facts
    assert [r.kind for r in g] == ["input", "conv", "add"] and g["body"].macs == 2 * 2 * 9 * 25
    assert g.total_params == 2 * 2 * 9


# --------------------------------------------------------------------------- the report


def small_report():
    model = nn.Sequential(conv(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3, rng=RNG))
    return analyze(model, (2, 3, 8, 8))


def test_text_table_is_aligned():
    text = str(small_report())
    lines = text.splitlines()
    header, rule = lines[0], lines[1]
    assert header.split()[:4] == ["#", "Name", "Kind", "Output"] and set(rule) == {"-"}
    table = lines[: 2 + 6 + 1]
    assert len({len(line) for line in table}) == 1
    assert "MACs: " in text and "FLOPs = 2 x MACs + bias adds" in text


def test_json_csv_markdown_views():
    report = small_report()
    data = json.loads(report.to_json())
    assert data["totals"]["macs"] == report.total_macs and data["totals"]["params"] == report.total_params
    assert [layer["name"] for layer in data["layers"]] == [r.name for r in report]
    assert data["layers"][1]["receptive_field"][0] == {
        "size": 3, "jump": 1, "start": -1, "center": 0, "effective_padding": 1,
    }
    assert "macs" in data["conventions"] and "flops" in data["conventions"]
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report) and rows[3]["rf_size"] == "4x4" and rows[3]["kind"] == "pool_max"
    assert int(rows[-1]["macs"]) == report["4"].macs and rows[-1]["rf_jump"] == ""
    markdown = report.to_markdown()
    assert markdown.startswith("| # | Name |") and markdown.count("\n| ") == len(report)  # rows after the header
    assert summary(nn.Sequential(conv(3, 4, 3)), (1, 3, 8, 8), format="csv").startswith("id,name,kind")
    with pytest.raises(ValueError, match="`format`"):
        summary(nn.Sequential(conv(3, 4, 3)), (1, 3, 8, 8), format="html")


def test_doc_example_graph_json_numbers_are_plain():
    report = analyze(nn.Sequential(nn.Upsample(scale_factor=2)), (1, 1, 3, 3))
    data = json.loads(report.to_json())
    assert data["layers"][1]["receptive_field"][0]["jump"] == 0.5


# --------------------------------------------------------------------------- errors


def test_errors_name_the_node_and_the_values():
    with pytest.raises(ValueError, match=r"node '1' \(Conv2d\): expects 5 input channels, got 4"):
        analyze(nn.Sequential(conv(3, 4, 3), conv(5, 2, 3)), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="is larger than the padded input"):
        analyze(nn.Sequential(conv(3, 4, 5)), (1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"needs an input of rank 4 \(N, C, \*spatial\) or 3"):
        analyze(nn.Sequential(conv(3, 4, 3)), (3, 8))
    with pytest.raises(ValueError, match="expects 65 input features"):
        analyze(nn.Sequential(nn.Flatten(), nn.Linear(65, 2, rng=RNG)), (1, 4, 4, 4))
    with pytest.raises(ValueError, match="`kind`"):
        Graph().add("convolution", "x", ())
    with pytest.raises(ValueError, match="input id 3"):
        Graph().add("conv", "x", 3)
    g = Graph()
    g.add("reshape", "r", g.input(), shape=(5, -1))
    with pytest.raises(ValueError, match=r"cannot reshape \(2, 3, 4\)"):
        analyze_graph(g, (2, 3, 4))
    with pytest.raises(ValueError, match="1 input"):
        analyze_graph(g, [(2, 3), (2, 3)])


def test_counts_are_python_ints():
    report = small_report()
    assert all(type(r.macs) is int and type(r.flops) is int and type(r.params) is int for r in report)
    assert math.prod(report.output_shape) == 6
