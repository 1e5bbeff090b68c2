"""One gradient at a time: ``wrt=`` of the vjps and the torch.nn.grad-style calls.

``conv_input_grad`` / ``conv{1,2,3}d_input`` need only the input's shape and
``conv_weight_grad`` / ``conv{1,2,3}d_weight`` only the weight's shape; both
must equal the matching field of the full ``conv_vjp`` and torch.nn.grad.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlab.functional as F
from tests.helpers import assert_close

torch = pytest.importorskip("torch")


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
        for k, d, p in zip(kernel, dilation, padding, strict=True)
    )
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**31 - 1))
    return nd, (batch, c_in) + size, (c_out, c_in // groups) + kernel, stride, padding, dilation, groups, seed


@given(conv_cases())
def test_single_gradients_match_the_full_vjp_and_torch_nn_grad(case):
    nd, x_shape, w_shape, stride, padding, dilation, groups, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = F.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    full = F.conv_vjp(g, x, w, **kw)

    gi = getattr(F, f"conv{nd}d_input")(x.shape, w, g, **kw)
    gw = getattr(F, f"conv{nd}d_weight")(x, w.shape, g, **kw)
    assert_close(gi, full.input, "input gradient")
    assert_close(gw, full.weight, "weight gradient")
    assert_close(F.conv_input_grad(x.shape, w, g, **kw), full.input, "conv_input_grad")
    assert_close(F.conv_weight_grad(x, w.shape, g, **kw), full.weight, "conv_weight_grad")

    tgrad = torch.nn.grad
    ti = getattr(tgrad, f"conv{nd}d_input")(x.shape, torch.tensor(w), torch.tensor(g), **kw).numpy()
    tw = getattr(tgrad, f"conv{nd}d_weight")(torch.tensor(x), w.shape, torch.tensor(g), **kw).numpy()
    assert_close(gi, ti, "input gradient vs torch.nn.grad")
    assert_close(gw, tw, "weight gradient vs torch.nn.grad")


def test_wrt_leaves_the_others_none_and_equal_to_the_full_vjp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    kw = dict(stride=2, padding=1, groups=2)
    g = rng.standard_normal(F.conv2d(x, w, b, **kw).shape).astype(np.float32)
    full = F.conv_vjp(g, x, w, b, **kw)
    for wrt in ("input", "weight", "bias", ("input", "bias"), ["weight", "bias"]):
        part = F.conv_vjp(g, x, w, b, wrt=wrt, **kw)
        names = (wrt,) if isinstance(wrt, str) else tuple(wrt)
        for name in ("input", "weight", "bias"):
            got = getattr(part, name)
            if name in names:
                assert_close(got, getattr(full, name), name)
            else:
                assert got is None, name


def test_transposed_vjp_wrt():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 5))
    w = rng.standard_normal((4, 3, 4, 4))
    kw = dict(stride=2, padding=1, output_padding=1)
    g = rng.standard_normal(F.conv_transpose2d(x, w, **kw).shape)
    full = F.conv_transpose_vjp(g, x, w, **kw)
    only_w = F.conv_transpose_vjp(g, x, w, wrt="weight", **kw)
    only_x = F.conv_transpose_vjp(g, x, w, wrt="input", **kw)
    assert only_w.input is None and only_x.weight is None
    assert_close(only_w.weight, full.weight, "weight")
    assert_close(only_x.input, full.input, "input")


def test_input_grad_with_padding_modes_and_unbatched_shapes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7, 6))  # unbatched (C, H, W)
    w = rng.standard_normal((2, 3, 3, 3))
    for mode in ("zeros", "reflect", "replicate", "circular"):
        g = rng.standard_normal(F.conv2d(x, w, padding=1, padding_mode=mode).shape)
        full = F.conv_vjp(g, x, w, padding=1, padding_mode=mode)
        gi = F.conv2d_input(x.shape, w, g, padding=1, padding_mode=mode)
        gw = F.conv2d_weight(x, w.shape, g, padding=1, padding_mode=mode)
        assert gi.shape == x.shape
        assert_close(gi, full.input, f"input gradient, {mode}")
        assert_close(gw, full.weight, f"weight gradient, {mode}")


def test_input_grad_never_reads_or_allocates_the_input():
    # The input's values play no part: the broadcast stand-in costs no memory.
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    g = np.ones((1, 1, 2, 2), dtype=np.float32)
    gi = F.conv2d_input((1, 1, 4, 4), w, g)
    assert gi.flags.writeable and gi.shape == (1, 1, 4, 4)
    stand_in = importlib.import_module("convlab.ops.conv")._shape_only("f", (1000, 1000, 1000), np.float64)
    assert stand_in.shape == (1000, 1000, 1000) and stand_in.strides == (0, 0, 0)  # one scalar, broadcast


@pytest.mark.parametrize(
    ("call", "message", "error"),
    [
        (lambda w, g: F.conv2d_input((1, -1, 4, 4), w, g), "`input_size[1]` (=-1) must be >= 0", ValueError),
        (lambda w, g: F.conv2d_input("1144", w, g), "`input_size` must be a sequence of ints", TypeError),
        (lambda w, g: F.conv2d_input((1, 2, 4, 4), w, g), "expects weight.shape[1] * groups (=1) = 1", ValueError),
        (lambda w, g: F.conv2d_weight(np.ones((1, 1, 4, 4), np.float32), (1, 1, 3.5, 3), g),
         "`weight_size[2]` must be an integer, got 3.5 (float)", TypeError),
        (lambda w, g: F.conv2d_input((1, 1, 4, 4), w, np.ones((1, 1, 3, 3), np.float32)),
         "`grad_output` must have the output's shape (1, 1, 2, 2)", ValueError),
        (lambda w, g: F.conv_vjp(g, np.ones((1, 1, 4, 4), np.float32), w, wrt=()), "`wrt` (=()) must name",
         ValueError),
        (lambda w, g: F.conv_vjp(g, np.ones((1, 1, 4, 4), np.float32), w, wrt=3), "`wrt` must be one of",
         TypeError),
    ],
)
def test_bad_input(call, message, error):
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    g = np.ones((1, 1, 2, 2), dtype=np.float32)
    with pytest.raises(error) as info:
        call(w, g)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"),
    [
        ((2, 8, 9, 10), (6, 4, 3, 2), (1, 1), (1, 0), (1, 2), 2),
        ((3, 4, 7, 7), (8, 4, 3, 3), (2, 2), (1, 1), (1, 1), 1),
        ((2, 8, 11), (6, 8, 5), (3,), (2,), (1,), 1),
        ((2, 8, 6, 5, 7), (6, 4, 2, 3, 1), (1, 2, 1), (0, 1, 1), (1, 1, 2), 2),
        ((2, 12, 7, 7), (6, 4, 1, 1), (2, 2), (0, 0), (1, 1), 3),  # strided 1x1, grouped
        ((2, 5, 6, 6), (7, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1: one batched product
    ],
)
def test_the_direct_gemm_weight_gradient_equals_the_reference(x_shape, w_shape, stride, padding, dilation, groups):
    # >= 4 input channels per group: conv_weight_grad takes the direct im2col + GEMM path
    rng = np.random.default_rng(len(x_shape) + sum(w_shape))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(F.conv(x, w, **kw).shape)
    expected = F.conv_vjp(g, x, w, algorithm="reference", **kw).weight
    assert_close(F.conv_weight_grad(x, w.shape, g, **kw), expected, "weight gradient, auto")
    assert_close(F.conv_weight_grad(x, w.shape, g, algorithm="gemm", **kw), expected, "weight gradient, gemm")
    xi, gi = rng.integers(-5, 5, x_shape), rng.integers(-5, 5, g.shape)
    exact = F.conv_vjp(gi, xi, w.astype(np.int64), algorithm="reference", **kw).weight
    np.testing.assert_array_equal(F.conv_weight_grad(xi, w.shape, gi, **kw), exact)
