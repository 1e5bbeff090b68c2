"""Properties of the convolution engine that need no second library.

* finite-difference gradient checks (float64) of ``conv_vjp`` and ``conv_transpose_vjp``;
* the adjoint identity ``<conv(x, w), y> == <x, conv_transpose(y, w)>``;
* 4 and 5 spatial dimensions against a direct sum written here with ``np.ndindex``;
* the reference loops equal im2col + GEMM on random specs (forward, transposed, both gradients);
* huge strides (2**40) that still give a valid output of size 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from tests.helpers import assert_close, numerical_vjp

FD_RTOL = 1e-6  # the ops are linear, so central differences only carry rounding error (~1e-9)


def assert_fd_close(analytic, numeric, what):
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=FD_RTOL, atol=FD_RTOL * scale, err_msg=what)


# --------------------------------------------------------------------------- finite differences

CONV_FD_CONFIGS = [
    # (input shape, weight shape, kwargs)
    ((2, 2, 6), (3, 2, 3), dict(stride=2, padding=1)),
    ((1, 2, 6), (2, 1, 3), dict(padding=2, padding_mode="reflect", groups=2)),
    ((1, 2, 5), (2, 2, 2), dict(padding=((2, 1),), padding_mode="replicate", dilation=2)),
    ((2, 1, 5), (2, 1, 3), dict(padding=((3, 2),), padding_mode="circular", stride=2)),
    ((1, 2, 4), (2, 2, 3), dict(padding=((4, 3),), padding_mode="symmetric")),
    ((1, 2, 5), (3, 2, 3), dict(padding="causal", dilation=2, flip_kernel=True)),
    ((1, 2, 4, 5), (4, 1, 2, 3), dict(padding="same_tf", stride=(2, 1), groups=2, flip_kernel=True)),
    ((1, 1, 4, 4), (2, 1, 3, 2), dict(padding=((1, 2), (2, 0)), padding_mode="reflect", stride=(1, 2))),
    ((1, 2, 4, 3), (2, 2, 2, 2), dict(padding=((2, 1), (3, 3)), padding_mode="symmetric", dilation=(1, 2))),
    ((1, 1, 3, 4), (1, 1, 2, 3), dict(padding="same", padding_mode="circular", flip_kernel=True)),
    ((1, 2, 3, 3, 3), (2, 1, 2, 2, 2), dict(padding=1, padding_mode="replicate", groups=2, stride=(1, 2, 1))),
    ((3, 2, 5), (2, 2, 2), dict(padding="full", padding_mode="symmetric", flip_kernel=True)),
]


@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_FD_CONFIGS)
def test_conv_vjp_matches_finite_differences(x_shape, w_shape, kwargs, algorithm):
    rng = np.random.default_rng(abs(hash((x_shape, w_shape))) % 2**32)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    kwargs = dict(kwargs, algorithm=algorithm)
    y = F.conv(x, w, b, **kwargs)
    g = rng.standard_normal(y.shape)
    grads = F.conv_vjp(g, x, w, b, **kwargs)
    assert_fd_close(grads.input, numerical_vjp(lambda v: F.conv(v, w, b, **kwargs), x, g), "input")
    assert_fd_close(grads.weight, numerical_vjp(lambda v: F.conv(x, v, b, **kwargs), w, g), "weight")
    assert_fd_close(grads.bias, numerical_vjp(lambda v: F.conv(x, w, v, **kwargs), b, g), "bias")


TRANSPOSE_FD_CONFIGS = [
    ((2, 2, 4), (2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((1, 2, 3), (2, 1, 2), dict(stride=3, groups=2, dilation=2, output_padding=2)),
    ((1, 2, 4), (2, 2, 3), dict(padding=((2, 0),), dilation=3, output_padding=2)),
    ((1, 2, 3, 2), (2, 2, 2, 3), dict(stride=(2, 1), padding=((0, 1), (1, 1)), output_size=(6, 2))),
    ((1, 3, 2, 3), (3, 1, 3, 2), dict(stride=2, padding=(1, 0), groups=3, dilation=(1, 2))),
    ((1, 2, 2, 2, 2), (2, 1, 2, 2, 2), dict(stride=2, padding=1, output_padding=(1, 0, 1))),
]


@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", TRANSPOSE_FD_CONFIGS)
def test_conv_transpose_vjp_matches_finite_differences(x_shape, w_shape, kwargs, algorithm):
    rng = np.random.default_rng(abs(hash((x_shape, w_shape))) % 2**32)
    groups = kwargs.get("groups", 1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * groups)
    kwargs = dict(kwargs, algorithm=algorithm)
    y = F.conv_transpose(x, w, b, **kwargs)
    g = rng.standard_normal(y.shape)
    grads = F.conv_transpose_vjp(g, x, w, b, **kwargs)
    assert_fd_close(grads.input, numerical_vjp(lambda v: F.conv_transpose(v, w, b, **kwargs), x, g), "input")
    assert_fd_close(grads.weight, numerical_vjp(lambda v: F.conv_transpose(x, v, b, **kwargs), w, g), "weight")
    assert_fd_close(grads.bias, numerical_vjp(lambda v: F.conv_transpose(x, w, v, **kwargs), b, g), "bias")


# --------------------------------------------------------------------------- adjoint identity


@st.composite
def adjoint_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if draw(st.booleans()):
        pairs = tuple((p, p) for p in (draw(st.integers(0, 2)) for _ in range(nd)))
    else:
        pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pairs, strict=True):
        need = max(1, d * (k - 1) + 1 - lo - hi)
        size.append(draw(st.integers(need, need + (4 if nd < 3 else 2))))
    return dict(nd=nd, groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride, dilation=dilation,
                pairs=pairs, size=tuple(size), batch=draw(st.integers(1, 2)), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=60)
@given(adjoint_cases(), st.sampled_from(["im2col", "reference"]))
def test_adjoint_identity(case, algorithm):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["batch"], case["c_in"]) + case["size"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    common = dict(stride=case["stride"], padding=case["pairs"], dilation=case["dilation"], groups=case["groups"],
                  algorithm=algorithm)
    y = F.conv(x, w, **common)
    # The transposed output must have the input's size: output_padding = I - ((O-1)s - lo - hi + d(k-1) + 1).
    output_padding = tuple(
        i - ((o - 1) * s - lo - hi + d * (k - 1) + 1)
        for i, o, s, (lo, hi), d, k in zip(case["size"], y.shape[2:], case["stride"], case["pairs"],
                                           case["dilation"], case["kernel"], strict=True)
    )
    r = rng.standard_normal(y.shape)
    xt = F.conv_transpose(r, w, output_padding=output_padding, **common)
    assert xt.shape == x.shape
    lhs, rhs = float(np.vdot(y, r)), float(np.vdot(x, xt))
    # Relative to the sum of the magnitudes of the terms, so a lucky cancellation cannot hide an error.
    scale = float(np.vdot(np.abs(y), np.abs(r))) + float(np.vdot(np.abs(x), np.abs(xt)))
    assert abs(lhs - rhs) <= 1e-10 * scale, (lhs, rhs)
    # The input gradient of conv is the same map.
    assert_close(F.conv_vjp(r, x, w, **common).input, xt, "conv_vjp input == conv_transpose")


# --------------------------------------------------------------------------- 4 and 5 spatial dims, direct sums


def direct_conv(x, w, b, stride, pairs, dilation, groups):
    """y[n, o, *p] = b[o] + sum_{c, *k} w[o, c, *k] x[n, g*Cg + c, *(p*s + k*d - lo)], zeros outside."""
    n, _, *size = x.shape
    c_out, cg, *kernel = w.shape
    og = c_out // groups
    out = [(i + lo + hi - d * (k - 1) - 1) // s + 1
           for i, k, s, (lo, hi), d in zip(size, kernel, stride, pairs, dilation, strict=True)]
    y = np.zeros((n, c_out, *out))
    for batch, oc in np.ndindex(n, c_out):
        g = oc // og
        for p in np.ndindex(*out):
            total = 0.0 if b is None else b[oc]
            for c in range(cg):
                for k in np.ndindex(*kernel):
                    idx = tuple(pi * s + ki * d - lo for pi, ki, s, d, (lo, _) in zip(p, k, stride, dilation, pairs,
                                                                                      strict=True))
                    if all(0 <= i < size_i for i, size_i in zip(idx, size, strict=True)):
                        total += w[(oc, c) + k] * x[(batch, g * cg + c) + idx]
            y[(batch, oc) + p] = total
    return y


def direct_conv_vjp(g_out, x, w, stride, pairs, dilation, groups):
    """The same sum read backwards: every product w*x hands g to the other factor."""
    n, _, *size = x.shape
    c_out, cg, *kernel = w.shape
    og = c_out // groups
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for batch, oc in np.ndindex(n, c_out):
        g = oc // og
        for p in np.ndindex(*g_out.shape[2:]):
            go = g_out[(batch, oc) + p]
            for c in range(cg):
                for k in np.ndindex(*kernel):
                    idx = tuple(pi * s + ki * d - lo for pi, ki, s, d, (lo, _) in zip(p, k, stride, dilation, pairs,
                                                                                      strict=True))
                    if all(0 <= i < size_i for i, size_i in zip(idx, size, strict=True)):
                        gx[(batch, g * cg + c) + idx] += w[(oc, c) + k] * go
                        gw[(oc, c) + k] += x[(batch, g * cg + c) + idx] * go
    return gx, gw, g_out.sum(axis=(0, *range(2, g_out.ndim)))


HIGH_DIM_CASES = [
    # 4 spatial dims: groups, stride, dilation, asymmetric padding
    ((1, 2, 3, 4, 3, 3), (2, 1, 2, 2, 1, 2), dict(stride=(1, 2, 1, 1), pairs=((0, 1), (1, 0), (0, 0), (1, 1)),
                                                    dilation=(1, 1, 1, 2), groups=2)),
    # 5 spatial dims
    ((2, 1, 3, 2, 3, 2, 3), (2, 1, 2, 1, 2, 2, 2), dict(stride=(2, 1, 1, 1, 2), pairs=((1, 0), (0, 0), (0, 1), (1, 1),
                                                                                     (0, 0)),
                                                        dilation=(1, 1, 2, 1, 1), groups=1)),
]


@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
@pytest.mark.parametrize("x_shape, w_shape, spec", HIGH_DIM_CASES)
def test_high_dimensional_conv_matches_direct_sum(x_shape, w_shape, spec, algorithm):
    rng = np.random.default_rng(len(x_shape))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    kwargs = dict(stride=spec["stride"], padding=spec["pairs"], dilation=spec["dilation"], groups=spec["groups"],
                  algorithm=algorithm)
    args = (spec["stride"], spec["pairs"], spec["dilation"], spec["groups"])
    y = F.conv(x, w, b, **kwargs)
    assert_close(y, direct_conv(x, w, b, *args), "forward")
    g = rng.standard_normal(y.shape)
    grads = F.conv_vjp(g, x, w, b, **kwargs)
    gx, gw, gb = direct_conv_vjp(g, x, w, *args)
    assert_close(grads.input, gx, "input gradient")
    assert_close(grads.weight, gw, "weight gradient")
    assert_close(grads.bias, gb, "bias gradient")
    # Unbatched form gives the first sample.
    assert_close(F.conv(x[0], w, b, **kwargs), y[0], "unbatched")


def test_high_dimensional_transpose_is_the_input_gradient():
    """4-d transposed convolution equals the direct sum's input gradient (it is the same map)."""
    rng = np.random.default_rng(4)
    x_shape, w_shape, spec = HIGH_DIM_CASES[0]
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    args = (spec["stride"], spec["pairs"], spec["dilation"], spec["groups"])
    y_shape = direct_conv(x, w, None, *args).shape
    g = rng.standard_normal(y_shape)
    gx, _, _ = direct_conv_vjp(g, x, w, *args)
    output_padding = tuple(
        i - ((o - 1) * s - lo - hi + d * (k - 1) + 1)
        for i, o, s, (lo, hi), d, k in zip(x_shape[2:], y_shape[2:], spec["stride"], spec["pairs"], spec["dilation"],
                                           w_shape[2:], strict=True)
    )
    for algorithm in ("im2col", "reference"):
        out = F.conv_transpose(g, w, None, spec["stride"], spec["pairs"], output_padding, spec["groups"],
                               spec["dilation"], algorithm=algorithm)
        assert_close(out, gx, f"conv_transpose ({algorithm})")


# --------------------------------------------------------------------------- reference == im2col


@st.composite
def engine_cases(draw):
    nd = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kmax = {1: 4, 2: 3, 3: 2, 4: 2}[nd]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
    pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pairs, strict=True):
        need = max(1, d * (k - 1) + 1 - lo - hi, lo + 1, hi + 1)
        size.append(draw(st.integers(need, need + (3 if nd < 3 else 1))))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    return dict(nd=nd, groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride, dilation=dilation,
                mode=mode, pairs=pairs, size=tuple(size), output_padding=output_padding,
                flip=draw(st.booleans()), batch=draw(st.integers(0, 2)), seed=draw(st.integers(0, 2**16)))


def _both(fn):
    return fn("reference"), fn("im2col")


@settings(max_examples=60)
@given(engine_cases())
def test_reference_equals_im2col(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["batch"], case["c_in"]) + case["size"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    b = rng.standard_normal(case["c_out"])
    kw = dict(stride=case["stride"], padding=case["pairs"], dilation=case["dilation"], groups=case["groups"],
              padding_mode=case["mode"], flip_kernel=case["flip"])
    ref, fast = _both(lambda a: F.conv(x, w, b, algorithm=a, **kw))
    assert_close(fast, ref, "conv")
    g = rng.standard_normal(ref.shape)
    ref_g, fast_g = _both(lambda a: F.conv_vjp(g, x, w, b, algorithm=a, **kw))
    for name in ("input", "weight", "bias"):
        assert_close(getattr(fast_g, name), getattr(ref_g, name), f"conv_vjp {name}")

    # Transposed convolution, with the conv weight read as (C_in, C_out/groups, *k) and output_padding.
    wt = rng.standard_normal((case["c_in"], case["c_out"] // case["groups"]) + case["kernel"])
    bt = rng.standard_normal(case["c_out"])
    tkw = dict(stride=case["stride"], padding=case["pairs"], dilation=case["dilation"], groups=case["groups"],
               output_padding=case["output_padding"])
    out_len = [(i - 1) * s - lo - hi + d * (k - 1) + op + 1 for i, s, (lo, hi), d, k, op in
               zip(case["size"], case["stride"], case["pairs"], case["dilation"], case["kernel"],
                   case["output_padding"], strict=True)]
    if min(out_len) < 1:
        return
    ref, fast = _both(lambda a: F.conv_transpose(x, wt, bt, algorithm=a, **tkw))
    assert ref.shape == (case["batch"], case["c_out"], *out_len)
    assert_close(fast, ref, "conv_transpose")
    g = rng.standard_normal(ref.shape)
    ref_g, fast_g = _both(lambda a: F.conv_transpose_vjp(g, x, wt, bt, algorithm=a, **tkw))
    for name in ("input", "weight", "bias"):
        assert_close(getattr(fast_g, name), getattr(ref_g, name), f"conv_transpose_vjp {name}")


# --------------------------------------------------------------------------- output_size


@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
def test_output_size_reachable_only_through_output_padding(algorithm):
    """With output_padding 0 the size would be 0, but output_padding 1 (< max(stride 1, dilation 2)) gives 1.

    Transposed of a length-1 input, kernel 1, padding (0, 1), dilation 2: (1-1)*1 - 0 - 1 + 0 + op + 1 = op.
    The uncropped output is [6, 0] (input 2 times weight 3, then output_padding), cropping hi = 1 leaves [6].
    """
    x, w = np.array([[[2.0]]]), np.array([[[3.0]]])
    by_padding = F.conv_transpose1d(x, w, padding=((0, 1),), output_padding=1, dilation=2, algorithm=algorithm)
    np.testing.assert_array_equal(by_padding, [[[6.0]]])
    by_size = F.conv_transpose1d(x, w, padding=((0, 1),), output_size=(1,), dilation=2, algorithm=algorithm)
    np.testing.assert_array_equal(by_size, by_padding)
    grads = F.conv_transpose_vjp(np.array([[[5.0]]]), x, w, padding=((0, 1),), output_size=[1, 1, 1], dilation=2,
                                 algorithm=algorithm)
    np.testing.assert_array_equal(grads.input, [[[15.0]]])
    np.testing.assert_array_equal(grads.weight, [[[10.0]]])


# --------------------------------------------------------------------------- huge strides


@pytest.mark.parametrize("stride", [2**40, 2**62])
@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
def test_huge_stride_with_output_size_one(stride, algorithm):
    # I = 3, k = 2, padding 1: floor((3 + 2 - 1 - 1) / s) + 1 = 1; the one window is [0, x0].
    x = np.array([[[5.0, 7.0, 11.0]]])
    w = np.array([[[2.0, 3.0]]])
    b = np.array([0.5])
    y = F.conv1d(x, w, b, stride=stride, padding=1, algorithm=algorithm)
    np.testing.assert_array_equal(y, [[[3.0 * 5.0 + 0.5]]])
    grads = F.conv_vjp(np.array([[[10.0]]]), x, w, b, stride=stride, padding=1, algorithm=algorithm)
    np.testing.assert_array_equal(grads.input, [[[30.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(grads.weight, [[[0.0, 50.0]]])
    np.testing.assert_array_equal(grads.bias, [10.0])


@pytest.mark.parametrize("algorithm", ["im2col", "reference"])
def test_huge_stride_2d_and_transposed(algorithm):
    rng = np.random.default_rng(40)
    x = rng.standard_normal((2, 2, 3, 5))
    w = rng.standard_normal((3, 2, 2, 2))
    # Height: one window (stride 2**40); width: the ordinary stride-1 result.
    y = F.conv2d(x, w, stride=(2**40, 1), padding=(0, 1), algorithm=algorithm)
    expected = F.conv2d(x[:, :, :2], w, stride=(1, 1), padding=(0, 1), algorithm=algorithm)
    assert y.shape == (2, 3, 1, 6)
    assert_close(y, expected, "stride 2**40")
    g = rng.standard_normal(y.shape)
    grads = F.conv_vjp(g, x, w, stride=(2**40, 1), padding=(0, 1), algorithm=algorithm)
    small = F.conv_vjp(g, x[:, :, :2], w, padding=(0, 1), algorithm=algorithm)
    assert_close(grads.input[:, :, :2], small.input, "input gradient")
    np.testing.assert_array_equal(grads.input[:, :, 2:], 0.0)
    assert_close(grads.weight, small.weight, "weight gradient")
    # Transposed, one input position: the stride never multiplies anything.
    xt = rng.standard_normal((1, 2, 1, 3))
    wt = rng.standard_normal((2, 2, 2, 2))
    big = F.conv_transpose2d(xt, wt, stride=(2**40, 1), algorithm=algorithm)
    one = F.conv_transpose2d(xt, wt, stride=(1, 1), algorithm=algorithm)
    assert_close(big, one, "conv_transpose with stride 2**40 on a length-1 axis")
    gt = rng.standard_normal(big.shape)
    big_g = F.conv_transpose_vjp(gt, xt, wt, stride=(2**40, 1), algorithm=algorithm)
    one_g = F.conv_transpose_vjp(gt, xt, wt, stride=(1, 1), algorithm=algorithm)
    assert_close(big_g.input, one_g.input, "transposed input gradient")
    assert_close(big_g.weight, one_g.weight, "transposed weight gradient")
    assert math.prod(big.shape) == math.prod(one.shape)


# --------------------------------------------------------------------------- im2col blocking


@settings(max_examples=40)
@given(engine_cases(), st.sampled_from([1, 97, 2000]))
def test_im2col_blocks_equal_reference(case, chunk_bytes):
    """Tiny CHUNK_BYTES forces one sample (and one group) per im2col block and per weight-gradient block."""
    from convlab.ops.algorithms import im2col

    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["batch"] + 1, case["c_in"]) + case["size"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    kw = dict(stride=case["stride"], padding=case["pairs"], dilation=case["dilation"], groups=case["groups"],
              padding_mode=case["mode"], flip_kernel=case["flip"])
    ref = F.conv(x, w, algorithm="reference", **kw)
    g = rng.standard_normal(ref.shape)
    ref_g = F.conv_vjp(g, x, w, algorithm="reference", **kw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col, "CHUNK_BYTES", chunk_bytes)
        fast = F.conv(x, w, algorithm="im2col", **kw)
        fast_g = F.conv_vjp(g, x, w, algorithm="im2col", **kw)
    assert_close(fast, ref, "conv")
    assert_close(fast_g.input, ref_g.input, "input gradient")
    assert_close(fast_g.weight, ref_g.weight, "weight gradient")
