"""The convolution family (`convlab.ops.family`): each member equals the plain convolution it stands for.

Pointwise, depthwise, depthwise-separable, spatially separable, flattened and
bottleneck convolutions are compared with the engine's ``conv`` (itself tested
against torch), with explicit matrix products, and (depthwise) with torch
directly. Cost comparisons are checked against the tutorial's figures (seed
001: 86,400 vs 675 + 9,600; 81 vs 45 + 27; the ratios ``1/Nc + 1/h^2`` and
``(2N - m + 1) / (m (N - m + 1))``) with exact fractions, and against
multiplications counted by the loop convolution of ``tests/test_costs.py``.

The last section checks true convolution (``flip_kernel=True``) against
``scipy.signal.convolve`` and the default cross-correlation against
``scipy.signal.correlate``.
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.costs import conv_cost
from convlab.ops.conv import conv
from convlab.ops.family import (
    bottleneck,
    bottleneck_cost,
    depthwise_conv,
    depthwise_separable_conv,
    depthwise_separable_cost,
    depthwise_separable_equivalent_weight,
    flatten_filters,
    flattened_conv,
    flattened_cost,
    grouped_cost,
    is_separable,
    low_rank_approximation,
    pointwise_conv,
    separable_conv,
    separable_factors,
    separable_rank,
    spatially_separable_cost,
)
from tests.helpers import assert_close
from tests.test_costs import counted_conv

SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])


def gaussian(n, sigma):
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def outer(*factors):
    return functools.reduce(np.multiply.outer, factors)


# --------------------------------------------------------------------------- pointwise (1x1)


@st.composite
def pointwise_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    size = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    return (nd, groups, c_in, c_out, size, stride, draw(st.integers(1, 2)), draw(st.booleans()),
            draw(st.integers(0, 999)))


@settings(max_examples=50)
@given(pointwise_cases(), st.sampled_from([np.float64, np.float32]))
def test_pointwise_equals_conv_with_1x1_kernel(case, dtype):
    nd, groups, c_in, c_out, size, stride, batch, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *size)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if has_bias else None
    w_conv = w.reshape(w.shape + (1,) * nd)
    expected = conv(x, w_conv, b, stride, groups=groups, algorithm="reference")
    assert_close(pointwise_conv(x, w, b, stride, groups), expected, "pointwise, (C_out, C_in/g) weight")
    assert_close(pointwise_conv(x, w_conv, b, stride, groups), expected, "pointwise, conv-layout weight")
    assert_close(pointwise_conv(x, w, b, stride, groups, algorithm="im2col"), expected, "pointwise, im2col")


@settings(max_examples=40)
@given(pointwise_cases())
def test_pointwise_is_a_matmul_over_channels_at_each_pixel(case):
    nd, groups, c_in, c_out, size, stride, batch, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *size))
    w = rng.standard_normal((c_out, c_in // groups))
    b = rng.standard_normal(c_out) if has_bias else np.zeros(c_out)
    # Strided 1x1: keep every stride-th pixel, then multiply each pixel's channel vector by the matrix.
    sub = x[(slice(None), slice(None), *(slice(None, None, s) for s in stride))]
    pixels = np.moveaxis(sub, 1, -1)  # (N, *O, C_in)
    cg, og = c_in // groups, c_out // groups
    blocks = [np.matmul(pixels[..., g * cg:(g + 1) * cg], w[g * og:(g + 1) * og].T) for g in range(groups)]
    expected = np.moveaxis(np.concatenate(blocks, axis=-1), -1, 1) + b.reshape((-1,) + (1,) * nd)  # (N, C_out, *O)
    got = pointwise_conv(x, w, b if has_bias else None, stride, groups)
    assert_close(got, expected)


def test_pointwise_docstring_example_and_weight_check():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    assert_close(pointwise_conv(x, np.array([[1.0, 1.0]]))[0, 0], np.array([[4.0, 6.0], [8.0, 10.0]]))
    with pytest.raises(ValueError, match=r"pointwise_conv: `weight` must be .* 1x1 kernel, got shape \(1, 2, 3, 3\)"):
        pointwise_conv(x, np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"pointwise_conv: the input has 2 channels"):
        pointwise_conv(x, np.ones((1, 3)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16])
def test_pointwise_keeps_the_dtype_and_integers_are_exact(dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(-9, 10, (2, 4, 3, 5)).astype(dtype)
    w = rng.integers(-9, 10, (6, 2)).astype(dtype)
    b = rng.integers(-9, 10, 6).astype(dtype)
    got = pointwise_conv(x, w, b, (2, 1), groups=2)
    assert_close(got, conv(x, w.reshape(6, 2, 1, 1), b, (2, 1), groups=2, algorithm="reference"))
    assert got.dtype == (np.int64 if np.dtype(dtype).kind in "iu" else dtype)  # integers come back as int64


def test_pointwise_unbatched_input_equals_batched():
    """An unbatched (C, H, W) input must give the batched result without the batch axis."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 4))  # (C_in=3, H=3, W=4)
    w = rng.standard_normal((2, 3))
    expected = conv(x[None], w.reshape(2, 3, 1, 1))[0]  # (2, 3, 4)
    assert_close(pointwise_conv(x, w.reshape(2, 3, 1, 1)), expected)


def test_depthwise_separable_unbatched_input_equals_batched():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 6))
    dw, pw = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((4, 3))
    expected = depthwise_separable_conv(x[None], dw, pw)[0]
    assert_close(depthwise_separable_conv(x, dw, pw), expected)


# --------------------------------------------------------------------------- depthwise


@st.composite
def depthwise_cases(draw):
    nd = draw(st.integers(1, 3))
    channels, multiplier = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kmax = 3 if nd < 3 else 2
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 3))
                 for k, d, p in zip(kernel, dilation, padding, strict=True))
    return (nd, channels, multiplier, kernel, stride, dilation, padding, size, draw(st.booleans()),
            draw(st.integers(0, 999)))


@settings(max_examples=50)
@given(depthwise_cases())
def test_depthwise_channel_multiplier_and_groups(case):
    _nd, channels, m, kernel, stride, dilation, padding, size, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, channels, *size))
    w = rng.standard_normal((channels * m, 1, *kernel))
    b = rng.standard_normal(channels * m) if has_bias else None
    got = depthwise_conv(x, w, b, stride, padding, dilation)
    assert_close(got, conv(x, w, b, stride, padding, dilation, groups=channels, algorithm="reference"), "groups=C")
    # Output channel c*m + j is input channel c filtered alone by filter c*m + j.
    for c in range(channels):
        for j in range(m):
            q = c * m + j
            alone = conv(x[:, c:c + 1], w[q:q + 1], None if b is None else b[q:q + 1], stride, padding, dilation)
            assert_close(got[:, q:q + 1], alone, f"output channel {q} from input channel {c}")


@settings(max_examples=30)
@given(depthwise_cases())
def test_depthwise_matches_torch_grouped_conv(case):
    torch = pytest.importorskip("torch")
    nd, channels, m, kernel, stride, dilation, padding, size, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, channels, *size))
    w = rng.standard_normal((channels * m, 1, *kernel))
    b = rng.standard_normal(channels * m) if has_bias else None
    torch_conv = getattr(torch.nn.functional, f"conv{nd}d")
    expected = torch_conv(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                          stride, padding, dilation, groups=channels).numpy()
    assert_close(depthwise_conv(x, w, b, stride, padding, dilation), expected)


def test_depthwise_weight_shape_is_checked():
    with pytest.raises(ValueError, match=r"depthwise_conv: `weight` must be \(C_in \* multiplier, 1, \*kernel\)"):
        depthwise_conv(np.ones((1, 3, 5, 5)), np.ones((3, 3, 3, 3)))
    assert depthwise_conv(np.ones((1, 3, 5, 5)), np.ones((6, 1, 3, 3))).shape == (1, 6, 3, 3)


# --------------------------------------------------------------------------- depthwise separable


@settings(max_examples=40)
@given(depthwise_cases(), st.integers(1, 4))
def test_depthwise_separable_equals_conv_with_equivalent_weight(case, c_out):
    nd, channels, m, kernel, stride, dilation, padding, size, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, channels, *size))
    dw = rng.standard_normal((channels * m, 1, *kernel))
    pw = rng.standard_normal((c_out, channels * m) + (1,) * nd)
    w = depthwise_separable_equivalent_weight(dw, pw, channels)
    assert w.shape == (c_out, channels, *kernel)
    got = depthwise_separable_conv(x, dw, pw, stride=stride, padding=padding, dilation=dilation)
    assert_close(got, conv(x, w, None, stride, padding, dilation, algorithm="reference"))
    if has_bias:
        # Biases: the depthwise bias passes through the 1x1 matrix, so the equivalent bias is pw @ b_dw + b_pw.
        b_dw, b_pw = rng.standard_normal(channels * m), rng.standard_normal(c_out)
        got = depthwise_separable_conv(x, dw, pw, b_dw, b_pw, stride, padding, dilation)
        b = pw.reshape(c_out, -1) @ b_dw + b_pw
        assert_close(got, conv(x, w, b, stride, padding, dilation, algorithm="reference"), "with biases")


def test_equivalent_weight_by_hand():
    # 2 input channels, multiplier 2: w[o, c] = pw[o, 2c] * dw[2c] + pw[o, 2c+1] * dw[2c+1].
    rng = np.random.default_rng(3)
    dw, pw = rng.standard_normal((4, 1, 2, 2)), rng.standard_normal((3, 4))
    w = depthwise_separable_equivalent_weight(dw, pw, 2)
    for o in range(3):
        for c in range(2):
            assert_close(w[o, c], pw[o, 2 * c] * dw[2 * c, 0] + pw[o, 2 * c + 1] * dw[2 * c + 1, 0])
    with pytest.raises(ValueError, match=r"depthwise_separable_equivalent_weight: .* do not chain"):
        depthwise_separable_equivalent_weight(dw, np.ones((3, 5)), 2)


def test_seed_depthwise_separable_figures():
    # Seed 001: 7x7x3 input, 128 filters 3x3: 86,400 multiplications; depthwise 3 x 3x3x1 moved 5x5 times = 675,
    # pointwise 128 x 1x1x3 moved 5x5 times = 9,600; together 10,275.
    c = depthwise_separable_cost(3, 128, (3, 3), (7, 7))
    assert c.standard.multiplications == 86_400
    assert conv_cost(3, 3, (3, 3), (5, 5), groups=3).macs == 675
    assert conv_cost(3, 128, (1, 1), (5, 5)).macs == 9_600
    assert c.variant.multiplications == 675 + 9_600 == 10_275
    assert Fraction(c.variant.macs, c.standard.macs) == Fraction(1, 128) + Fraction(1, 9)
    assert c.ratio == float(Fraction(1, 128) + Fraction(1, 9))
    assert c.standard.params == 128 * 27 and c.variant.params == 27 + 384


def test_seed_depthwise_separable_by_counting():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 7))
    dw, pw = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((128, 3, 1, 1))
    mid, depthwise_muls, _ = counted_conv(x, dw, groups=3)
    y, pointwise_muls, _ = counted_conv(mid, pw)
    assert_close(y, depthwise_separable_conv(x[None], dw, pw)[0])
    assert (depthwise_muls, pointwise_muls) == (675, 9_600)
    assert depthwise_separable_cost(3, 128, (3, 3), (7, 7)).variant.macs == depthwise_muls + pointwise_muls


@pytest.mark.parametrize("out_channels", [1, 2, 3, 16, 128, 1000])
@pytest.mark.parametrize("h", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("in_channels", [1, 3, 8])
def test_depthwise_separable_ratio_is_one_over_nc_plus_one_over_h2(out_channels, h, in_channels):
    c = depthwise_separable_cost(in_channels, out_channels, (h, h), (h + 4, h + 6))
    assert Fraction(c.variant.macs, c.standard.macs) == Fraction(1, out_channels) + Fraction(1, h * h)
    # Any stride and padding: both convolutions have the same output, so the ratio is the same.
    strided = depthwise_separable_cost(in_channels, out_channels, (h, h), (h + 4, h + 6), stride=2, padding=1)
    assert Fraction(strided.variant.macs, strided.standard.macs) == Fraction(1, out_channels) + Fraction(1, h * h)


@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_depthwise_separable_ratio_with_multiplier(multiplier):
    c = depthwise_separable_cost(4, 32, (3, 3), (9, 9), multiplier=multiplier)
    assert Fraction(c.variant.macs, c.standard.macs) == multiplier * (Fraction(1, 32) + Fraction(1, 9))


# --------------------------------------------------------------------------- grouped


@pytest.mark.parametrize("d_in, d_out, kernel", [(64, 128, (3, 3)), (4, 6, (5, 3)), (2, 2, (1, 1)), (8, 16, (3,))])
def test_grouped_two_groups_halve_parameters(d_in, d_out, kernel):
    size = (9,) * len(kernel)
    c = grouped_cost(d_in, d_out, kernel, size, groups=2)
    hw = int(np.prod(kernel))
    assert c.standard.params == hw * d_in * d_out
    assert c.variant.params == 2 * (hw * (d_in // 2) * (d_out // 2))
    assert 2 * c.variant.params == c.standard.params
    assert 2 * c.variant.macs == c.standard.macs
    assert c.param_ratio == 0.5 and c.ratio == 0.5


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_grouped_cost_divides_by_groups(groups):
    c = grouped_cost(16, 24, (3, 3), (10, 12), groups=groups, stride=2, padding=1, dilation=2)
    assert c.standard.params == groups * c.variant.params
    assert c.standard.macs == groups * c.variant.macs


# --------------------------------------------------------------------------- spatially separable


def test_is_separable_examples():
    rng = np.random.default_rng(0)
    assert is_separable(SOBEL)
    assert is_separable(SOBEL.T)
    assert not is_separable(LAPLACIAN)
    assert is_separable(np.outer(gaussian(5, 1.0), gaussian(5, 1.0)))
    assert is_separable(np.outer(gaussian(5, 1.0), gaussian(3, 0.7)))
    assert is_separable(outer(rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal(2)))  # 3-D rank 1
    assert not is_separable(rng.standard_normal((3, 3)))
    assert not is_separable(rng.standard_normal((3, 4, 2)))
    # Rank 1 along the first axis only (a ⊗ M with M of rank 2) is not separable.
    assert not is_separable(np.multiply.outer(rng.standard_normal(3), rng.standard_normal((4, 4))))
    assert separable_rank(SOBEL) == 1 and separable_rank(LAPLACIAN) == 2


def test_sobel_factors():
    col, row = separable_factors(SOBEL)
    assert_close(col / col[0], np.array([1.0, 2.0, 1.0]))
    assert_close(row / row[-1], np.array([-1.0, 0.0, 1.0]))
    assert_close(np.outer(col, row), SOBEL.astype(np.float64))
    # The documented normalization: the second factor's first non-zero entry is +-1.
    assert_close(col, np.array([1.0, 2.0, 1.0]))
    assert_close(row, np.array([-1.0, 0.0, 1.0]))


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (4, 3, 2)])
def test_gaussian_and_rank1_factors(shape):
    vectors = [gaussian(n, 0.5 + n / 4) for n in shape]
    kernel = outer(*vectors)
    factors = separable_factors(kernel)
    assert [f.shape for f in factors] == [(n,) for n in shape]
    assert_close(outer(*factors), kernel)
    for f, v in zip(factors, vectors, strict=True):
        assert_close(f / f[0], v / v[0])  # each factor is proportional to its Gaussian


def test_signed_rank1_factors_reproduce_kernel():
    rng = np.random.default_rng(5)
    for _ in range(10):
        vectors = [rng.standard_normal(n) for n in (3, 4, 2)]
        kernel = outer(*vectors)
        assert_close(outer(*separable_factors(kernel)), kernel)


def test_non_separable_factors_raise():
    with pytest.raises(ValueError, match=r"separable_factors: the kernel of shape \(3, 3\) is not separable"):
        separable_factors(LAPLACIAN)
    with pytest.raises(ValueError, match="not separable"):
        separable_factors(np.random.default_rng(0).standard_normal((3, 4, 2)))


@st.composite
def separable_cases(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    form = draw(st.sampled_from(["int", "tuple", "pairs", "valid", "same", "full", "causal"]))
    stride = (1,) * nd if form == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    if form == "int":
        padding = draw(st.integers(0, 2))
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    else:
        padding = form
    size = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3)) for k, d in zip(kernel, dilation, strict=True))
    return nd, kernel, stride, padding, dilation, size, draw(st.integers(1, 3)), draw(st.integers(0, 999))


@settings(max_examples=50)
@given(separable_cases())
def test_separable_conv_equals_full_kernel_conv(case):
    _nd, kernel, stride, padding, dilation, size, channels, seed = case
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal(k) for k in kernel]
    x = rng.standard_normal((2, channels, *size))
    full = np.broadcast_to(outer(*factors), (channels, 1, *kernel)).copy()  # same kernel on every channel
    expected = conv(x, full, None, stride, padding, dilation, groups=channels, algorithm="reference")
    assert_close(separable_conv(x, factors, stride, padding, dilation), expected)


def test_separable_conv_sobel_and_errors():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    y = separable_conv(x, [np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])], padding=1)
    assert_close(y, conv(x, SOBEL.astype(np.float64)[None, None], padding=1))
    with pytest.raises(ValueError, match="separable_conv: `padding` 'same_tf' is not supported"):
        separable_conv(x, [np.ones(3), np.ones(3)], padding="same_tf")
    with pytest.raises(ValueError, match=r"separable_conv: `input` must be \(N, C, \*spatial\) with 3 spatial dims"):
        separable_conv(x, [np.ones(3)] * 3)


def test_seed_spatially_separable_figures():
    c = spatially_separable_cost((3, 3), (5, 5))
    assert c.standard.multiplications == 81  # 9 positions x 9
    assert c.variant.multiplications == 72  # 15 x 3 + 9 x 3
    # By counting: 3x1 on 5x5 -> 3x5 (45 multiplications), then 1x3 -> 3x3 (27).
    rng = np.random.default_rng(0)
    x, col, row = rng.standard_normal((1, 5, 5)), rng.standard_normal(3), rng.standard_normal(3)
    mid, first, _ = counted_conv(x, col.reshape(1, 1, 3, 1))
    y, second, _ = counted_conv(mid, row.reshape(1, 1, 1, 3))
    assert mid.shape == (1, 3, 5) and (first, second) == (45, 27)
    assert_close(y, separable_conv(x[None], [col, row])[0])
    _, standard, _ = counted_conv(x, np.outer(col, row)[None, None])
    assert standard == 81


@settings(max_examples=30)
@given(separable_cases().filter(lambda case: case[0] >= 2))
def test_spatially_separable_cost_equals_counted_passes(case):
    nd, kernel, stride, padding, dilation, size, channels, seed = case
    if isinstance(padding, str) and padding in ("same", "full", "causal", "valid"):
        spans = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        pairs = {"same": [(t // 2, t - t // 2) for t in spans], "full": [(t, t) for t in spans],
                 "causal": [(t, 0) for t in spans], "valid": [(0, 0)] * nd}[padding]
    elif isinstance(padding, int):
        pairs = [(padding, padding)] * nd
    else:
        pairs = [p if isinstance(p, tuple) else (p, p) for p in padding]
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal(k) for k in kernel]
    x = rng.standard_normal((channels, *size))
    # One pass per axis, with that axis's stride, padding and dilation only.
    y, counted = x, 0
    for axis, f in enumerate(factors):
        shape = [1] * nd
        shape[axis] = len(f)
        w = np.broadcast_to(f.reshape(shape), (channels, 1, *shape)).copy()
        one = lambda values, axis=axis, default=1: tuple(v if i == axis else default for i, v in enumerate(values))  # noqa: E731
        y, muls, _ = counted_conv(y, w, None, one(stride), one(pairs, default=(0, 0)), one(dilation), channels)
        counted += muls
    assert_close(y, separable_conv(x[None], factors, stride, padding, dilation)[0])
    full = np.broadcast_to(outer(*factors), (channels, 1, *kernel)).copy()
    _, standard, _ = counted_conv(x, full, None, stride, tuple(pairs), dilation, channels)
    c = spatially_separable_cost(kernel, size, channels, stride, padding, dilation)
    assert (c.standard.macs, c.variant.macs) == (standard, counted)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 7])
def test_spatially_separable_ratio_formula(m):
    for n in range(m, 30):
        c = spatially_separable_cost((m, m), (n, n))
        assert Fraction(c.variant.macs, c.standard.macs) == Fraction(2 * n - m + 1, m * (n - m + 1)), n


@pytest.mark.parametrize("m", [3, 5, 7])
def test_spatially_separable_ratio_tends_to_two_over_m(m):
    c = spatially_separable_cost((m, m), (10_000, 10_000))
    assert abs(c.ratio - 2 / m) < 1e-3
    assert c.ratio > 2 / m  # approached from above: (2N - m + 1) / (m (N - m + 1)) > 2/m for m > 1


# --------------------------------------------------------------------------- low rank


@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (4, 6), (7, 2)])
def test_low_rank_error_and_reconstruction(shape):
    rng = np.random.default_rng(sum(shape))
    kernel = rng.standard_normal(shape)
    s = np.linalg.svd(kernel, compute_uv=False)
    errors = []
    for rank in range(1, min(shape) + 1):
        lr = low_rank_approximation(kernel, rank)
        residual = np.linalg.norm(kernel - lr.approximation)
        assert_close(np.float64(lr.error), np.float64(residual), f"error at rank {rank}")
        assert_close(np.float64(lr.error), np.sqrt(np.sum(s[rank:] ** 2)), f"discarded singular values, rank {rank}")
        assert_close(np.float64(lr.relative_error), np.float64(residual / np.linalg.norm(kernel)))
        assert len(lr.columns) == len(lr.rows) == rank
        assert_close(sum(np.outer(c, r) for c, r in zip(lr.columns, lr.rows, strict=True)), lr.approximation)
        assert np.linalg.matrix_rank(lr.approximation) == rank
        errors.append(lr.error)
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    full = low_rank_approximation(kernel, min(shape))
    assert_close(full.approximation, kernel)
    assert full.error == 0.0


def test_low_rank_of_separable_kernel_is_exact_and_errors():
    lr = low_rank_approximation(SOBEL, 1)
    assert_close(lr.approximation, SOBEL.astype(np.float64))
    assert lr.error < 1e-12
    assert round(low_rank_approximation(LAPLACIAN, 1).relative_error, 4) == 0.1005
    with pytest.raises(ValueError, match=r"low_rank_approximation: `rank` \(=4\) must be in \[1, 3\]"):
        low_rank_approximation(LAPLACIAN, 4)
    with pytest.raises(ValueError, match=r"low_rank_approximation: `rank` \(=0\)"):
        low_rank_approximation(LAPLACIAN, 0)
    with pytest.raises(ValueError, match="low_rank_approximation: `kernel` must be 2-D"):
        low_rank_approximation(np.ones((2, 2, 2)))


# --------------------------------------------------------------------------- flattened


def test_flatten_rank1_filters_is_exact():
    rng = np.random.default_rng(11)
    c_out, c_in, kh, kw = 4, 3, 3, 2
    w = np.stack([outer(rng.standard_normal(c_in), rng.standard_normal(kh), rng.standard_normal(kw))
                  for _ in range(c_out)])
    f = flatten_filters(w)
    assert f.channel.shape == (c_out, c_in) and f.vertical.shape == (c_out, kh) and f.horizontal.shape == (c_out, kw)
    assert_close(f.approximation, w)
    assert f.relative_error < 1e-12
    assert_close(np.einsum("oc,oh,ow->ochw", f.channel, f.vertical, f.horizontal), w)


@pytest.mark.parametrize("seed", range(4))
def test_flatten_random_filters_reports_its_error(seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 4, 3, 3))
    f = flatten_filters(w)
    assert 0 < f.relative_error < 1
    assert_close(np.float64(f.relative_error), np.linalg.norm(w - f.approximation) / np.linalg.norm(w))
    assert_close(np.einsum("oc,oh,ow->ochw", f.channel, f.vertical, f.horizontal), f.approximation)
    # A best rank-1 approximation leaves a residual orthogonal to itself: <w - a, a> = 0 for each filter.
    for o in range(3):
        assert abs(np.vdot(w[o] - f.approximation[o], f.approximation[o])) < 1e-8 * np.vdot(w[o], w[o])


@settings(max_examples=30)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from([0, 1, 2, (1, 2), ((1, 0), (0, 2))]), st.tuples(st.integers(1, 2), st.integers(1, 2)),
       st.booleans(), st.integers(0, 999))
def test_flattened_conv_equals_conv_with_approximation(c_in, c_out, kh, kw, padding, stride, has_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c_in, 6, 5))
    w = rng.standard_normal((c_out, c_in, kh, kw))
    b = rng.standard_normal(c_out) if has_bias else None
    f = flatten_filters(w)
    got = flattened_conv(x, f.channel, f.vertical, f.horizontal, b, stride, padding)
    assert_close(got, conv(x, f.approximation, b, stride, padding, algorithm="reference"))


def flattened_passes_counted(x, channel, vertical, horizontal, stride, pairs):
    """The flattened convolution's three passes, done by the counting loop; returns (y, multiplications)."""
    c_out = channel.shape[0]
    (pt, pb), (pl, pr) = pairs
    y1, m1, _ = counted_conv(x, channel.reshape(*channel.shape, 1, 1))
    y2, m2, _ = counted_conv(y1, vertical.reshape(c_out, 1, -1, 1), None, (stride[0], 1), ((pt, pb), (0, 0)),
                             groups=c_out)
    y3, m3, _ = counted_conv(y2, horizontal.reshape(c_out, 1, 1, -1), None, (1, stride[1]), ((0, 0), (pl, pr)),
                             groups=c_out)
    return y3, m1 + m2 + m3


@pytest.mark.parametrize("stride", [(1, 1), (2, 1), (2, 2)])
@pytest.mark.parametrize("pairs", [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((1, 0), (2, 1))])
def test_flattened_cost_equals_counted_passes(stride, pairs):
    rng = np.random.default_rng(2)
    c_in, c_out, kh, kw, size = 3, 4, 3, 3, (6, 7)
    x = rng.standard_normal((c_in, *size))
    channel, vertical, horizontal = (rng.standard_normal((c_out, n)) for n in (c_in, kh, kw))
    y, counted = flattened_passes_counted(x, channel, vertical, horizontal, stride, pairs)
    assert_close(y, flattened_conv(x[None], channel, vertical, horizontal, None, stride, pairs)[0])
    w = np.einsum("oc,oh,ow->ochw", channel, vertical, horizontal)
    _, standard, _ = counted_conv(x, w, None, stride, pairs)
    c = flattened_cost(c_in, c_out, (kh, kw), size, stride, pairs)
    assert c.standard.macs == standard
    assert c.variant.macs == counted
    assert c.variant.params == c_out * (c_in + kh + kw) and c.standard.params == c_out * c_in * kh * kw


# --------------------------------------------------------------------------- bottleneck


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
def test_bottleneck_is_three_convolutions(stride, groups):
    rng = np.random.default_rng(stride * 10 + groups)
    x = rng.standard_normal((2, 8, 7, 6))
    reduce_w, expand_w = rng.standard_normal((4, 8)), rng.standard_normal((8, 4))
    conv_w = rng.standard_normal((4, 4 // groups, 3, 3))
    mid = conv(x, reduce_w[:, :, None, None], algorithm="reference")
    mid = conv(mid, conv_w, None, stride, 1, 1, groups, algorithm="reference")
    expected = conv(mid, expand_w[:, :, None, None], algorithm="reference")
    assert_close(bottleneck(x, reduce_w, conv_w, expand_w, stride, groups), expected)


def test_bottleneck_cost_resnet_figures():
    c = bottleneck_cost(256, 64, (56, 56))
    assert c.standard.params == 589_824 == 256 * 256 * 9
    assert c.variant.params == 69_632 == 256 * 64 + 64 * 64 * 9 + 64 * 256
    assert c.standard.macs == 589_824 * 56 * 56
    assert c.variant.macs == 69_632 * 56 * 56
    assert c.param_ratio == 69_632 / 589_824


# --------------------------------------------------------------------------- convolution vs cross-correlation


@settings(max_examples=40)
@given(st.integers(1, 2), st.data())
def test_flip_kernel_is_scipy_convolve_and_default_is_correlate(nd, data):
    size = tuple(data.draw(st.integers(3, 8)) for _ in range(nd))
    kernel = tuple(data.draw(st.integers(1, n)) for n in size)
    c_in, c_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    x = rng.standard_normal((1, c_in, *size))
    w = rng.standard_normal((c_out, c_in, *kernel))
    convolve = np.stack([sum(scipy.signal.convolve(x[0, c], w[o, c], mode="valid") for c in range(c_in))
                         for o in range(c_out)])
    correlate = np.stack([sum(scipy.signal.correlate(x[0, c], w[o, c], mode="valid") for c in range(c_in))
                          for o in range(c_out)])
    assert_close(conv(x, w, flip_kernel=True)[0], convolve, "flip_kernel=True vs scipy.signal.convolve")
    assert_close(conv(x, w)[0], correlate, "default vs scipy.signal.correlate")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_flipping_twice_is_the_identity(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 2, *(6,) * nd))
    w = rng.standard_normal((3, 2, *(3, 2, 2)[:nd]))
    flipped = w[(slice(None), slice(None), *(slice(None, None, -1),) * nd)]
    assert_close(conv(x, flipped, flip_kernel=True, stride=2, padding=1),
                 conv(x, w, stride=2, padding=1))
    assert_close(conv(x, w, flip_kernel=True), conv(x, flipped))
    assert not np.allclose(conv(x, w, flip_kernel=True), conv(x, w))  # the flip matters for this kernel


# --------------------------------------------------------------------------- shuffled grouped convolution


@pytest.mark.parametrize(("groups", "kernel"), [(2, 1), (3, 1), (3, 3), (4, 3)])
def test_shuffled_grouped_conv_matches_torch_conv_then_channel_shuffle(groups, kernel):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(groups * 10 + kernel)
    x = rng.standard_normal((2, 2 * groups, 5, 6))
    w = rng.standard_normal((3 * groups, 2, kernel, kernel))
    b = rng.standard_normal(3 * groups)
    ours = F.shuffled_grouped_conv(x, w, b, padding=kernel // 2, groups=groups)
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                   padding=kernel // 2, groups=groups)
    expected = torch.nn.functional.channel_shuffle(y, groups).numpy()
    assert_close(ours, expected)


def test_shuffle_lets_every_next_group_see_every_previous_group():
    # Two stacked grouped 1x1 convolutions: without the shuffle, output group 0 depends on input group 0 only.
    groups, width = 3, 3  # each group of the next layer reads width >= groups shuffled channels
    w = np.ones((groups * width, width, 1, 1))
    for shuffled, expect_all in ((False, False), (True, True)):
        seen = []
        for g in range(groups):
            x = np.zeros((1, groups * width, 1, 1))
            x[0, g * width:(g + 1) * width] = 1.0
            mid = F.shuffled_grouped_conv(x, w, groups=groups) if shuffled else F.conv2d(x, w, groups=groups)
            out = F.conv2d(mid, w, groups=groups)
            seen.append(bool(out[0, :width].any()))  # does output group 0 react to input group g?
        assert all(seen) is expect_all
