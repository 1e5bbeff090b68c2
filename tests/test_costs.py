"""The cost rule (`convlab.costs`) against multiplications counted one by one.

A direct loop convolution (and a scatter-loop transposed convolution) computes
the output element by element and counts every multiplication and every bias
addition it does. Its output is first checked against the engine, so the count
is the count of a correct convolution; then ``conv_cost`` / ``conv_transpose_cost``
must report exactly that many MACs, ``2 * MACs + bias adds`` FLOPs, and the
parameters the weight and bias arrays hold.

Multiplications with padded zeros are counted (the loop multiplies the padded
input), as the rule documents: MACs = (weights) x (output positions).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.costs import Cost, conv_cost, conv_transpose_cost
from convlab.ops.conv import conv, conv_transpose
from tests.helpers import assert_close

# --------------------------------------------------------------------------- counting loops


def counted_conv(x, weight, bias=None, stride=None, pairs=None, dilation=None, groups=1):
    """Direct convolution of one sample ``x`` (C_in, *S); returns (y, multiplications, bias additions).

    Every kernel tap of every output element is one multiplication (zeros of the
    padding included); each output element adds its bias once.
    """
    nd = weight.ndim - 2
    stride = stride or (1,) * nd
    dilation = dilation or (1,) * nd
    pairs = pairs or ((0, 0),) * nd
    xp = np.pad(x, [(0, 0), *pairs])  # (C_in, *S_padded)
    c_out, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    og = c_out // groups
    out = tuple((xp.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd))
    y = np.zeros((c_out, *out))
    multiplications = bias_adds = 0
    for o in range(c_out):
        group = o // og
        for p in itertools.product(*(range(n) for n in out)):
            acc = 0.0
            for c in range(cg):
                for k in itertools.product(*(range(n) for n in kernel)):
                    q = tuple(pi * s + ki * d for pi, s, ki, d in zip(p, stride, k, dilation, strict=True))
                    acc += xp[(group * cg + c, *q)] * weight[(o, c, *k)]
                    multiplications += 1
            if bias is not None:
                acc += bias[o]
                bias_adds += 1
            y[(o, *p)] = acc
    return y, multiplications, bias_adds


def counted_conv_transpose(x, weight, bias=None, stride=None, pairs=None, output_padding=None, dilation=None,
                           groups=1):
    """Scatter-loop transposed convolution of one sample ``x`` (C_in, *I), weight (C_in, C_out/g, *k).

    Every input element stamps its kernel into the (uncropped) output; each stamp
    entry is one multiplication. Returns (y, multiplications, bias additions).
    """
    nd = weight.ndim - 2
    stride = stride or (1,) * nd
    dilation = dilation or (1,) * nd
    pairs = pairs or ((0, 0),) * nd
    output_padding = output_padding or (0,) * nd
    c_in, og = weight.shape[:2]
    kernel = weight.shape[2:]
    cg = c_in // groups
    canvas = tuple((n - 1) * s + d * (k - 1) + 1 + op
                   for n, s, d, k, op in zip(x.shape[1:], stride, dilation, kernel, output_padding, strict=True))
    full = np.zeros((og * groups, *canvas))
    multiplications = 0
    for c in range(c_in):
        group = c // cg
        for i in itertools.product(*(range(n) for n in x.shape[1:])):
            for o in range(og):
                for k in itertools.product(*(range(n) for n in kernel)):
                    q = tuple(ii * s + ki * d for ii, s, ki, d in zip(i, stride, k, dilation, strict=True))
                    full[(group * og + o, *q)] += x[(c, *i)] * weight[(c, o, *k)]
                    multiplications += 1
    out = tuple(n - lo - hi for n, (lo, hi) in zip(canvas, pairs, strict=True))
    y = full[(slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(out, pairs, strict=True)))].copy()
    bias_adds = 0
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * nd)
        bias_adds = y.size
    return y, multiplications, bias_adds


# --------------------------------------------------------------------------- hand counts


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kmax = 3 if nd < 3 else 2
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = tuple(max(1, d * (k - 1) + 1 - lo - hi) + draw(st.integers(0, 3 if nd < 3 else 1))
                 for k, d, (lo, hi) in zip(kernel, dilation, pairs, strict=True))
    return (nd, groups, c_in, c_out, kernel, stride, dilation, pairs, size, draw(st.booleans()),
            draw(st.integers(0, 999)))


@settings(max_examples=40)
@given(conv_cases())
def test_conv_cost_equals_counted_multiplications(case):
    _nd, groups, c_in, c_out, kernel, stride, dilation, pairs, size, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, *size))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    b = rng.standard_normal(c_out) if has_bias else None
    y, multiplications, bias_adds = counted_conv(x, w, b, stride, pairs, dilation, groups)
    # The counting loop is a correct convolution.
    assert_close(y, conv(x, w, b, stride, pairs, dilation, groups, algorithm="reference"), "counted conv")

    cost = conv_cost(c_in, c_out, kernel, y.shape[1:], groups=groups, bias=has_bias)
    assert cost.macs == multiplications
    assert cost.multiplications == multiplications
    assert cost.bias_adds == bias_adds
    assert cost.flops == 2 * multiplications + bias_adds
    assert cost.params == w.size + (b.size if has_bias else 0)


@settings(max_examples=40)
@given(conv_cases(), st.data())
def test_conv_transpose_cost_equals_counted_multiplications(case, data):
    _nd, groups, c_in, c_out, kernel, stride, dilation, pairs, size, has_bias, seed = case
    output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    # The transposed output must not be empty: (I-1)s - lo - hi + d(k-1) + op + 1 >= 1.
    size = tuple(max(n, -(-(lo + hi) // s) + 1) for n, s, (lo, hi) in zip(size, stride, pairs, strict=True))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    b = rng.standard_normal(c_out) if has_bias else None
    y, multiplications, bias_adds = counted_conv_transpose(x, w, b, stride, pairs, output_padding, dilation, groups)
    assert_close(y, conv_transpose(x, w, b, stride, pairs, output_padding, groups, dilation, algorithm="reference"),
                 "counted conv_transpose")

    cost = conv_transpose_cost(c_in, c_out, kernel, size, y.shape[1:], groups=groups, bias=has_bias)
    assert cost.macs == multiplications
    assert cost.bias_adds == bias_adds
    assert cost.flops == 2 * multiplications + bias_adds
    assert cost.params == w.size + (b.size if has_bias else 0)


def test_transposed_cost_equals_cost_of_its_adjoint_convolution():
    # conv 4 -> 6 channels, 3x3, stride 2, padding 1 on 9x9 gives 5x5; its transpose maps 5x5 back to 9x9
    # and does the same multiplications (counted from its input, 6 x 5 x 5).
    forward = conv_cost(4, 6, (3, 3), (5, 5), groups=2)
    transposed = conv_transpose_cost(6, 4, (3, 3), (5, 5), (9, 9), groups=2)
    assert transposed.macs == forward.macs == 6 * 2 * 9 * 25
    assert transposed.params == forward.params == 6 * 2 * 9


def test_strided_dilated_grouped_example_by_hand():
    # 2 groups, 4 -> 6 channels, kernel (3, 2), stride (2, 1), dilation (1, 2), padding ((1, 0), (0, 1)), input (7, 5):
    # O_h = floor((7 + 1 - 2 - 1) / 2) + 1 = 3, O_w = floor((5 + 1 - 2 - 1) / 1) + 1 = 4.
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((4, 7, 5)), rng.standard_normal((6, 2, 3, 2))
    y, multiplications, _ = counted_conv(x, w, None, (2, 1), ((1, 0), (0, 1)), (1, 2), 2)
    assert y.shape == (6, 3, 4)
    assert multiplications == 6 * 2 * 3 * 2 * 3 * 4 == conv_cost(4, 6, (3, 2), (3, 4), groups=2).macs


def test_seed_standard_convolution_count():
    # The tutorial: 128 filters 3x3x3 on a 7x7x3 input, moved 5x5 times: 86,400 multiplications.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 7, 7)), rng.standard_normal((128, 3, 3, 3))
    y, multiplications, _ = counted_conv(x, w)
    assert y.shape == (128, 5, 5)
    assert multiplications == 86_400 == conv_cost(3, 128, (3, 3), (5, 5)).macs


# --------------------------------------------------------------------------- Cost arithmetic


def test_cost_addition_and_flops():
    a, b = Cost(10, 100, 3), Cost(5, 7)
    total = a + b
    assert total == Cost(15, 107, 3)
    assert total.flops == 2 * 107 + 3
    assert a.flops == 203 and b.flops == 14
    assert total.multiplications == total.macs == 107
    assert a.ratio(b) == 100 / 7


def test_cost_sum_of_layers_is_sum_of_counts():
    layers = [conv_cost(3, 8, (3, 3), (6, 6), bias=True), conv_cost(8, 8, (3, 3), (4, 4), groups=8),
              conv_cost(8, 16, (1, 1), (4, 4), bias=True)]
    total = layers[0] + layers[1] + layers[2]
    assert total.macs == sum(c.macs for c in layers)
    assert total.params == sum(c.params for c in layers)
    assert total.bias_adds == 8 * 36 + 16 * 16
    assert total.flops == sum(c.flops for c in layers)


def test_bias_counts():
    cost = conv_cost(3, 4, (3, 3), (5, 6), bias=True)
    assert cost.params == 4 * 3 * 9 + 4
    assert cost.bias_adds == 4 * 30
    assert cost.flops == 2 * 4 * 3 * 9 * 30 + 4 * 30
    no_bias = conv_cost(3, 4, (3, 3), (5, 6))
    assert no_bias.bias_adds == 0 and no_bias.flops == 2 * no_bias.macs


@pytest.mark.parametrize("fn, args", [
    (conv_cost, (4, 6, (3, 3), (5, 5))),
    (conv_transpose_cost, (4, 6, (3, 3), (5, 5), (9, 9))),
])
@pytest.mark.parametrize("groups", [0, 3, -1])
def test_bad_groups_raise(fn, args, groups):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: `groups` \(={groups}\)"):
        fn(*args, groups=groups)


def test_counts_are_exact_integers_for_large_layers():
    # No float rounding: a large layer's count is the exact product.
    cost = conv_cost(512, 1024, (3, 3), (224, 224), bias=True)
    assert isinstance(cost.macs, int)
    assert cost.macs == 1024 * 512 * 9 * 224 * 224
    assert cost.flops == 2 * cost.macs + 1024 * 224 * 224
    assert math.prod((1024, 512, 9)) + 1024 == cost.params
