"""Pooling against PyTorch, against the reference loops and against finite differences.

Hypothesis draws 1-3 spatial dimensions, kernel, stride (or None), padding,
dilation, ceil_mode, count_include_pad, divisor_override, return_indices,
unbatched and empty batches, float32/float64, and inputs with ties or NaNs;
``check_against_torch`` compares values, indices, dtypes and input gradients.
The fast paths (sliding-window scans) must equal the loops in
``ops.algorithms.reference`` exactly, also for integer dtypes and asymmetric
padding, which torch lacks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.nn import AvgPool2d, MaxPool2d
from convlab.nn import pool as nn_pool
from convlab.ops.algorithms import reference
from convlab.ops.pool import (
    avg_pool_spec,
    avg_pool_spec_vjp,
    max_pool_spec,
    max_pool_spec_vjp,
    max_unpool_spec,
    max_unpool_spec_vjp,
)
from convlab.spec import PoolSpec
from tests.helpers import assert_close, check_against_torch, numerical_vjp

MAX_WRAPPERS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_WRAPPERS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE_MAX_WRAPPERS = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
ADAPTIVE_AVG_WRAPPERS = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
UNPOOL_WRAPPERS = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
NAN = np.nan
FD_RTOL = 1e-6  # the ops are piecewise linear: central differences carry only rounding error (~1e-9)


def assert_fd_close(analytic, numeric, what="input gradient"):
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=FD_RTOL, atol=FD_RTOL * scale, err_msg=what)


def _torch():
    return pytest.importorskip("torch")


def _tf(name: str, nd: int):
    return getattr(_torch().nn.functional, f"{name}{nd}d")


# --------------------------------------------------------------------------- drawing cases


def _make_input(shape, dtype, values: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if values == "ties":  # few distinct values: many equal maxima in a window
        return rng.integers(-2, 3, size=shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if values == "nan" and x.size:
        x[rng.random(shape) < 0.2] = NAN
    return x


def _windows_see_input(sizes, kernel, stride, dilation, padding, out_size) -> bool:
    """Every (dilated) window holds at least one input element, computed directly."""
    for n, k, s, d, p, o in zip(sizes, kernel, stride, dilation, padding, out_size, strict=True):
        for i in range(o):
            if not any(0 <= i * s + j * d - p < n for j in range(k)):
                return False
    return True


def _torch_out_size(n, k, s, p, d, ceil_mode) -> int:
    """PyTorch's pooling_output_shape, written out again here as an independent check."""
    numerator = n + 2 * p - d * (k - 1) - 1
    o = (numerator + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


@st.composite
def pool_cases(draw, kind: str):
    nd = draw(st.integers(1, 3))
    kmax, extra = (3, 5) if nd < 3 else (2, 3)
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * nd)))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if kind == "max" else (1,) * nd
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    sizes = []
    for k, d, p in zip(kernel, dilation, padding, strict=True):
        low = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(low, low + extra)))
    ceil_mode = draw(st.booleans())
    steps = stride if stride is not None else kernel
    out = tuple(_torch_out_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(sizes, kernel, steps, padding, dilation, strict=True))
    if kind == "max":
        assume(_windows_see_input(sizes, kernel, steps, dilation, padding, out))
    unbatched = draw(st.booleans())
    batch = () if unbatched else (draw(st.integers(0, 2)),)
    shape = batch + (draw(st.integers(1, 3)),) + tuple(sizes)
    case = dict(
        nd=nd, kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        values=draw(st.sampled_from(["normal", "ties", "nan"])) if kind == "max" else "normal",
        wrapper=draw(st.booleans()), shape=shape, out=out,
    )
    if kind == "max":
        case["return_indices"] = draw(st.booleans())
    else:
        case["count_include_pad"] = draw(st.booleans())
        case["divisor_override"] = draw(st.one_of(st.none(), st.integers(-3, 7).filter(bool)))
    case["x"] = _make_input(shape, case["dtype"], case["values"], draw(st.integers(0, 2**16)))
    return case


# --------------------------------------------------------------------------- max pooling


def _max_args(c):
    return (c["kernel"], c["stride"], c["padding"], c["dilation"], c["ceil_mode"])


def _our_max_pool(c, x, return_indices):
    if c["wrapper"]:
        return MAX_WRAPPERS[c["nd"]](x, *_max_args(c), return_indices)
    return F.max_pool(x, *_max_args(c), return_indices, ndim=c["nd"])


@settings(max_examples=60)
@given(pool_cases("max"))
def test_max_pool_matches_torch(c):
    nd, ri = c["nd"], c["return_indices"]
    out = check_against_torch(
        forward=lambda input: _our_max_pool(c, input, ri),
        vjp=lambda grad_output, input: {"input": F.max_pool_vjp(grad_output, input, *_max_args(c), ri, ndim=nd)},
        torch_forward=lambda input: _tf("max_pool", nd)(input, c["kernel"], c["stride"], c["padding"],
                                                         c["dilation"], c["ceil_mode"], ri),
        inputs={"input": c["x"]},
    )
    assert out.shape[-nd:] == c["out"]  # check_against_torch returns the values only


@settings(max_examples=50)
@given(pool_cases("max"), st.sampled_from([None, np.int64, np.int32, np.uint8]), st.booleans())
def test_max_pool_fast_path_equals_reference(c, int_dtype, asymmetric):
    x = c["x"] if int_dtype is None else np.random.default_rng(1).integers(0, 9, c["shape"]).astype(int_dtype)
    padding = c["padding"]
    if asymmetric:  # (lo, hi) pairs with hi dropped to 0 where possible: beyond torch
        padding = tuple((p, 0) for p in padding)
    try:
        values, indices = F.max_pool(x, c["kernel"], c["stride"], padding, c["dilation"], c["ceil_mode"], True,
                                     ndim=c["nd"])
    except ValueError as error:  # dropping the right padding may leave a window without input
        assert "covers only padding" in str(error) or "does not fit" in str(error)
        return
    xb = x[None] if len(c["shape"]) == c["nd"] + 1 else x
    steps = c["stride"] if c["stride"] is not None else c["kernel"]
    pairs = tuple(p if isinstance(p, tuple) else (p, p) for p in padding)
    ref_values, ref_indices = reference.max_pool_general(xb, c["kernel"], steps, pairs, c["dilation"],
                                                         values.shape[-c["nd"]:])
    if len(c["shape"]) == c["nd"] + 1:
        ref_values, ref_indices = ref_values[0], ref_indices[0]
    np.testing.assert_array_equal(values, ref_values)  # NaN == NaN here
    np.testing.assert_array_equal(indices, ref_indices)
    assert values.dtype == x.dtype and indices.dtype == np.int64


def test_max_pool_nan_reports_the_last_nan_and_ties_the_first_max():
    x = np.array([[[1.0, 3.0, 3.0, NAN, 2.0, NAN, 1.0]]])
    values, indices = F.max_pool1d(x, 7, return_indices=True)
    assert np.isnan(values).all() and indices.tolist() == [[[5]]]
    values, indices = F.max_pool1d(x, 3, stride=1, return_indices=True)
    np.testing.assert_array_equal(values, [[[3.0, NAN, NAN, NAN, NAN]]])
    assert indices.tolist() == [[[1, 3, 3, 5, 5]]]
    # 2-D: the scan is row-major, so of two NaNs the lower one wins, of two maxima the upper-right one.
    values, indices = F.max_pool2d(np.array([[[[NAN, 3.0], [NAN, 1.0]]]]), 2, return_indices=True)
    assert np.isnan(values).all() and indices.tolist() == [[[[2]]]]
    values, indices = F.max_pool2d(np.array([[[[1.0, 3.0], [3.0, 1.0]]]]), 2, return_indices=True)
    assert values.tolist() == [[[[3.0]]]] and indices.tolist() == [[[[1]]]]
    # -0.0 and 0.0 tie: the first wins; a window of -inf reports its first input, never the padding.
    _, indices = F.max_pool1d(np.array([[[-0.0, 0.0]]]), 2, return_indices=True)
    assert indices.tolist() == [[[0]]]
    values, indices = F.max_pool1d(np.full((1, 1, 3), -np.inf), 2, stride=1, padding=1, return_indices=True)
    assert np.isneginf(values).all() and indices.tolist() == [[[0, 0, 1, 2]]]
    # The gradient follows the reported index.
    g = F.max_pool_vjp(np.ones((1, 1, 5)), x, 3, 1, ndim=1)
    np.testing.assert_array_equal(g, [[[0.0, 1.0, 0.0, 2.0, 0.0, 2.0, 0.0]]])


def test_max_pool_nan_and_ties_match_torch():
    torch = _torch()
    x = np.array([[[[NAN, 2.0, 2.0, NAN], [1.0, NAN, 2.0, 2.0], [2.0, 2.0, 0.0, 1.0]]]])
    for k, s, p in [(2, 1, 1), (3, 1, 1), (2, 2, 0), ((3, 2), (1, 2), (1, 1))]:
        values, indices = F.max_pool2d(x, k, s, p, return_indices=True)
        t_values, t_indices = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(values, t_values.numpy())
        np.testing.assert_array_equal(indices, t_indices.numpy())


def test_max_pool_integers_match_torch():
    torch = _torch()
    rng = np.random.default_rng(0)
    for dtype in (np.int64, np.int32, np.int16, np.int8, np.uint8):
        x = rng.integers(0 if dtype == np.uint8 else -100, 100, size=(2, 3, 6, 5)).astype(dtype)
        ours = F.max_pool2d(x, 3, 2, 1, return_indices=True, ceil_mode=True)
        theirs = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True, ceil_mode=True)
        assert_close(ours[0], theirs[0].numpy())
        assert_close(ours[1], theirs[1].numpy())


def test_max_pool_vjp_matches_finite_differences(rng):
    x = rng.standard_normal((2, 2, 5, 6))
    g = rng.standard_normal(F.max_pool2d(x, 3, 2, 1, ceil_mode=True).shape)
    expected = numerical_vjp(lambda v: F.max_pool2d(v, 3, 2, 1, ceil_mode=True), x, g)
    assert_fd_close(F.max_pool_vjp(g, x, 3, 2, 1, ceil_mode=True, ndim=2), expected)


def test_max_pool_four_spatial_dims_equals_loop(rng):
    x = rng.standard_normal((1, 2, 4, 3, 5, 4))
    kernel, stride, padding, dilation = (2, 3, 2, 2), (1, 2, 2, 1), (1, 1, 0, 1), (2, 1, 1, 1)
    values, indices = F.max_pool(x, kernel, stride, padding, dilation, True, True)
    # A direct loop, independent of the reference module: every window built by slicing.
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p + 4) for p in padding), constant_values=-np.inf)
    assert values.shape[2:] == tuple(_torch_out_size(n, k, s, p, d, True)
                                     for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation,
                                                              strict=True))
    for n, c in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*values.shape[2:]):
            window = xp[(n, c) + tuple(slice(i * s, i * s + d * (k - 1) + 1, d)
                                       for i, s, d, k in zip(o, stride, dilation, kernel, strict=True))]
            assert values[(n, c) + o] == window.max()
            assert x[n, c].ravel()[indices[(n, c) + o]] == window.max()


# --------------------------------------------------------------------------- average pooling


def _avg_args(c):
    return (c["kernel"], c["stride"], c["padding"], c["ceil_mode"], c["count_include_pad"], c["divisor_override"])


def _torch_avg(c):
    nd = c["nd"]
    kernel, stride, padding, ceil_mode, include, divisor = _avg_args(c)
    if nd == 1:
        # torch's avg_pool1d lacks divisor_override; it is avg_pool2d over a height of 1.
        def run(input):
            y = _tf("avg_pool", 2)(input.unsqueeze(-2), (1,) + kernel, None if stride is None else (1,) + stride,
                                   (0,) + padding, ceil_mode, include, divisor)
            return y.squeeze(-2)
        return run
    return lambda input: _tf("avg_pool", nd)(input, kernel, stride, padding, ceil_mode, include, divisor)


def _our_avg_pool(c, x):
    if c["wrapper"]:
        return AVG_WRAPPERS[c["nd"]](x, *_avg_args(c))
    return F.avg_pool(x, *_avg_args(c), ndim=c["nd"])


@settings(max_examples=60)
@given(pool_cases("avg"))
def test_avg_pool_matches_torch(c):
    if c["nd"] == 3:  # torch's avg_pool3d (only) refuses an input smaller than the kernel, padding or not
        assume(all(n >= k for n, k in zip(c["shape"][-3:], c["kernel"], strict=True)))
    out = check_against_torch(
        forward=lambda input: _our_avg_pool(c, input),
        vjp=lambda grad_output, input: {"input": F.avg_pool_vjp(grad_output, input, *_avg_args(c), ndim=c["nd"])},
        torch_forward=_torch_avg(c),
        inputs={"input": c["x"]},
    )
    assert out.shape[-c["nd"]:] == c["out"]


@settings(max_examples=40)
@given(pool_cases("avg"), st.sampled_from([None, np.int64, np.int16, np.complex128]), st.booleans())
def test_avg_pool_fast_path_equals_reference(c, other_dtype, asymmetric):
    x = c["x"]
    if other_dtype is not None:
        x = np.random.default_rng(2).integers(-50, 50, c["shape"]).astype(other_dtype)
        if other_dtype == np.complex128:
            x = x + 1j * np.random.default_rng(3).standard_normal(c["shape"])
    padding = tuple((p, 0) for p in c["padding"]) if asymmetric else c["padding"]
    y = F.avg_pool(x, c["kernel"], c["stride"], padding, *_avg_args(c)[3:], ndim=c["nd"])
    unbatched = len(c["shape"]) == c["nd"] + 1
    steps = c["stride"] if c["stride"] is not None else c["kernel"]
    pairs = tuple(p if isinstance(p, tuple) else (p, p) for p in padding)
    expected = reference.avg_pool_general(x[None] if unbatched else x, c["kernel"], steps, pairs,
                                          y.shape[-c["nd"]:], c["count_include_pad"], c["divisor_override"])
    assert_close(y, expected[0] if unbatched else expected)


def test_avg_pool_divisor_of_ceil_windows_over_the_right_padding():
    x = np.ones((1, 1, 6))
    # windows [-1, 2), [1, 4), [3, 6), [5, 8) clipped to [5, 7): sizes 3, 3, 3, 2; inputs 2, 3, 3, 1
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True), [[[2 / 3, 1, 1, 1 / 2]]])
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [[[1, 1, 1, 1]]])
    # k=4, s=3, p=2: windows [-2, 2), [1, 5), [4, 8): the last one ends exactly at S + p
    np.testing.assert_allclose(F.avg_pool1d(x, 4, 3, 2, ceil_mode=True), [[[0.5, 1, 0.5]]])
    # without padding, a ceil window past the input counts only the input
    np.testing.assert_allclose(F.avg_pool1d(np.ones((1, 1, 5)), 2, ceil_mode=True), [[[1, 1, 1]]])


def test_avg_pool_integers_truncate_like_torch():
    torch = _torch()
    x = np.array([[[[-5, -3, 4], [-7, -9, 2], [1, 8, -1]]]], dtype=np.int64)
    for args in [dict(kernel_size=2, padding=1), dict(kernel_size=2, stride=1, ceil_mode=True),
                 dict(kernel_size=3, padding=1, stride=2, count_include_pad=False),
                 dict(kernel_size=2, padding=1, divisor_override=-3)]:
        ours = F.avg_pool2d(x, **args)
        theirs = torch.nn.functional.avg_pool2d(torch.from_numpy(x), **args).numpy()
        assert_close(ours, theirs)


def test_avg_pool_float16_sums_in_float32(rng):
    x = rng.standard_normal((2, 3, 7, 5)).astype(np.float16)
    y = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
    assert y.dtype == np.float16
    assert_close(y, F.avg_pool2d(x.astype(np.float32), 3, 2, 1, ceil_mode=True).astype(np.float16))


@pytest.mark.parametrize("args", [
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(1, 2), divisor_override=5),
    dict(kernel_size=((1, 0), (0, 1)), ceil_mode=True, count_include_pad=False),
])
def test_avg_pool_vjp_matches_finite_differences(rng, args):
    args = dict(args)
    kernel = args.pop("kernel_size")
    if isinstance(kernel[0], tuple):  # asymmetric padding pairs with kernel 2 x 3
        args["padding"], kernel = kernel, (2, 3)
    x = rng.standard_normal((2, 2, 5, 6))
    forward = lambda v: F.avg_pool(v, kernel, **args)  # noqa: E731
    g = rng.standard_normal(forward(x).shape)
    assert_fd_close(F.avg_pool_vjp(g, x, kernel, **args), numerical_vjp(forward, x, g))


# --------------------------------------------------------------------------- adaptive and global pooling


@st.composite
def adaptive_cases(draw):
    nd = draw(st.integers(1, 3))
    top = 7 if nd < 3 else 4
    sizes = tuple(draw(st.integers(1, top)) for _ in range(nd))
    output = tuple(draw(st.one_of(st.none(), st.integers(1, top + 1))) for _ in range(nd))
    unbatched = draw(st.booleans())
    shape = (() if unbatched else (draw(st.integers(0, 2)),)) + (draw(st.integers(1, 3)),) + sizes
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = draw(st.sampled_from(["normal", "ties", "nan"]))
    return dict(nd=nd, output=output, wrapper=draw(st.booleans()), return_indices=draw(st.booleans()),
                x=_make_input(shape, dtype, values, draw(st.integers(0, 2**16))), sizes=sizes)


def _torch_output_size(c):
    if c["nd"] == 1:  # torch's 1-D adaptive pools take an int only
        return c["output"][0] if c["output"][0] is not None else c["sizes"][0]
    return c["output"]


@settings(max_examples=50)
@given(adaptive_cases())
def test_adaptive_max_pool_matches_torch(c):
    nd, ri, size = c["nd"], c["return_indices"], c["output"]
    ours = ADAPTIVE_MAX_WRAPPERS[nd] if c["wrapper"] else (lambda x, o, r: F.adaptive_max_pool(x, o, r, ndim=nd))
    check_against_torch(
        forward=lambda input: ours(input, size, ri),
        vjp=lambda grad_output, input: {"input": F.adaptive_max_pool_vjp(grad_output, input, size, ndim=nd)},
        torch_forward=lambda input: _tf("adaptive_max_pool", nd)(input, _torch_output_size(c), ri),
        inputs={"input": c["x"]},
    )


@settings(max_examples=50)
@given(adaptive_cases())
def test_adaptive_avg_pool_matches_torch(c):
    nd, size = c["nd"], c["output"]
    ours = ADAPTIVE_AVG_WRAPPERS[nd] if c["wrapper"] else (lambda x, o: F.adaptive_avg_pool(x, o, ndim=nd))
    check_against_torch(
        forward=lambda input: ours(input, size),
        vjp=lambda grad_output, input: {"input": F.adaptive_avg_pool_vjp(grad_output, input, size, ndim=nd)},
        torch_forward=lambda input: _tf("adaptive_avg_pool", nd)(input, _torch_output_size(c)),
        inputs={"input": c["x"]},
    )


def test_adaptive_pools_with_integers_are_exact():
    x = np.array([[[7, -3, 2, 9, -8]]], dtype=np.int32)
    values, indices = F.adaptive_max_pool1d(x, 3, return_indices=True)  # windows [0, 2), [1, 4), [3, 5)
    assert values.tolist() == [[[7, 9, 9]]] and indices.tolist() == [[[0, 3, 3]]] and values.dtype == np.int32
    assert F.adaptive_avg_pool1d(x, 3).tolist() == [[[2, 2, 0]]]  # 4/2, 8/3 -> 2, 1/2 -> 0 (toward zero)


def test_adaptive_pool_output_size_forms():
    x = np.arange(2 * 3 * 5 * 7, dtype=float).reshape(2, 3, 5, 7)
    assert F.adaptive_avg_pool2d(x, 2).shape == (2, 3, 2, 2)
    assert F.adaptive_avg_pool2d(x, (None, 3)).shape == (2, 3, 5, 3)
    assert F.adaptive_avg_pool(x, (4, None)).shape == (2, 3, 4, 7)
    assert F.adaptive_max_pool2d(x[0], (9, 9)).shape == (3, 9, 9)  # unbatched, larger than the input
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, (5, 7)), x)  # every window is one element


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pools_match_torch_adaptive_pooling_to_one(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 3) + (4,) * nd)
    x[0, 1].flat[[1, 2]] = 9.0  # a tie at the maximum
    x[1, 2].flat[[0, 3]] = NAN
    for ours, vjp, name in [(F.global_max_pool, F.global_max_pool_vjp, "adaptive_max_pool"),
                            (F.global_avg_pool, F.global_avg_pool_vjp, "adaptive_avg_pool")]:
        out = check_against_torch(
            forward=lambda input, ours=ours: ours(input),
            vjp=lambda grad_output, input, vjp=vjp: {"input": vjp(grad_output, input)},
            torch_forward=lambda input, name=name: _tf(name, nd)(input, 1),
            inputs={"input": x},
        )
        assert out.shape == (2, 3) + (1,) * nd
        assert ours(x[0], ndim=nd).shape == (3,) + (1,) * nd


def test_adaptive_avg_vjp_matches_finite_differences(rng):
    x = rng.standard_normal((1, 2, 5, 7))
    for size in [(3, 4), (2, None), (6, 9)]:
        g = rng.standard_normal(F.adaptive_avg_pool2d(x, size).shape)
        expected = numerical_vjp(lambda v, size=size: F.adaptive_avg_pool2d(v, size), x, g)
        assert_fd_close(F.adaptive_avg_pool_vjp(g, x, size), expected)
    g = rng.standard_normal((1, 2, 1, 1))
    assert_fd_close(F.global_avg_pool_vjp(g, x), numerical_vjp(F.global_avg_pool, x, g))


# --------------------------------------------------------------------------- max unpooling


@st.composite
def unpool_cases(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd))
    # stride >= kernel: windows do not overlap, so no two inputs name the same position
    stride = tuple(k + draw(st.integers(0, 1)) for k in kernel)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    sizes = tuple(max(1, k - 2 * p) + draw(st.integers(0, 4 if nd < 3 else 2)) for k, p in zip(kernel, padding,
                                                                                               strict=True))
    ceil_mode = draw(st.booleans())
    unbatched = draw(st.booleans())
    shape = (() if unbatched else (draw(st.integers(1, 2)),)) + (draw(st.integers(1, 2)),) + sizes
    x = _make_input(shape, draw(st.sampled_from([np.float32, np.float64])), "normal", draw(st.integers(0, 999)))
    values, indices = F.max_pool(x, kernel, stride, padding, 1, ceil_mode, True)
    default = tuple((o - 1) * s - 2 * p + k for o, s, p, k in zip(values.shape[-nd:], stride, padding, kernel,
                                                                  strict=True))
    form = draw(st.sampled_from(["spatial", "full", "none"]))
    if (form == "none" and default != sizes) or (form == "full" and unbatched):  # torch wants (N, C, *S) in full
        form = "spatial"
    output_size = {"spatial": sizes, "full": values.shape[:-nd] + sizes, "none": None}[form]
    return dict(nd=nd, kernel=kernel, stride=stride, padding=padding, values=values, indices=indices,
                output_size=output_size, sizes=sizes, wrapper=draw(st.booleans()))


@settings(max_examples=40)
@given(unpool_cases())
def test_max_unpool_matches_torch(c):
    nd, args = c["nd"], (c["kernel"], c["stride"], c["padding"], c["output_size"])
    ours = UNPOOL_WRAPPERS[nd] if c["wrapper"] else (lambda *a: F.max_unpool(*a, ndim=nd))
    out = check_against_torch(
        forward=lambda input, indices: ours(input, indices, *args),
        vjp=lambda grad_output, input, indices: {"input": F.max_unpool_vjp(grad_output, input, indices, *args)},
        torch_forward=lambda input, indices: _tf("max_unpool", nd)(input, indices, *args),
        inputs={"input": c["values"], "indices": c["indices"]},
    )
    assert out.shape[-nd:] == c["sizes"]


def test_max_unpool_duplicates_keep_the_last_writer_and_its_gradient():
    x = np.array([[[1.0, 5.0, 2.0, 0.0, 3.0]]])
    values, indices = F.max_pool1d(x, 3, 1, return_indices=True)  # [5, 5, 3] at [1, 1, 4]
    y = F.max_unpool1d(values, indices, 3, 1, output_size=(5,))
    np.testing.assert_array_equal(y, [[[0.0, 5.0, 0.0, 0.0, 3.0]]])
    # written with different values, the last one in C order wins
    y = F.max_unpool1d(np.array([[[7.0, 8.0, 9.0]]]), np.array([[[2, 2, 0]]]), 3, 1)
    np.testing.assert_array_equal(y, [[[9.0, 0.0, 8.0, 0.0, 0.0]]])
    # the gradient is that of this forward: the overwritten 7 gets none
    v = np.array([[[7.0, 8.0, 9.0]]])
    idx = np.array([[[2, 2, 0]]])
    g = np.arange(1.0, 6.0).reshape(1, 1, 5)
    expected = numerical_vjp(lambda t: F.max_unpool1d(t, idx, 3, 1), v, g)
    np.testing.assert_array_equal(F.max_unpool_vjp(g, v, idx, 3, 1, ndim=1), [[[0.0, 3.0, 1.0]]])
    assert_fd_close(F.max_unpool_vjp(g, v, idx, 3, 1, ndim=1), expected)


def test_max_unpool_integer_and_unbatched():
    values = np.array([[3, 5]], dtype=np.int16)
    y = F.max_unpool1d(values, np.array([[1, 2]]), 2, output_size=(5,))
    assert y.dtype == np.int16 and y.tolist() == [[0, 3, 5, 0, 0]]


# --------------------------------------------------------------------------- the PoolSpec entry points


@settings(max_examples=40)
@given(pool_cases("max"))
def test_max_pool_spec_equals_max_pool(c):
    nd, x = c["nd"], c["x"]
    spec = PoolSpec(c["kernel"], c["stride"], c["padding"], c["dilation"], c["ceil_mode"], ndim=nd)
    values, indices = F.max_pool(x, *_max_args(c), True, ndim=nd)
    spec_values, spec_indices = max_pool_spec(x, spec, return_indices=True)
    np.testing.assert_array_equal(spec_values, values)  # NaN == NaN here
    np.testing.assert_array_equal(spec_indices, indices)
    assert spec_values.dtype == values.dtype
    g = np.random.default_rng(0).standard_normal(values.shape).astype(x.dtype)
    np.testing.assert_array_equal(max_pool_spec_vjp(g, x, spec), F.max_pool_vjp(g, x, *_max_args(c), ndim=nd))


@settings(max_examples=40)
@given(pool_cases("avg"))
def test_avg_pool_spec_equals_avg_pool(c):
    nd, x = c["nd"], c["x"]
    kernel, stride, padding, ceil_mode, include, divisor = _avg_args(c)
    spec = PoolSpec(kernel, stride, padding, 1, ceil_mode, include, divisor, ndim=nd)
    y = F.avg_pool(x, *_avg_args(c), ndim=nd)
    np.testing.assert_array_equal(avg_pool_spec(x, spec), y)
    g = np.random.default_rng(0).standard_normal(y.shape).astype(x.dtype)
    np.testing.assert_array_equal(avg_pool_spec_vjp(g, x, spec), F.avg_pool_vjp(g, x, *_avg_args(c), ndim=nd))


@settings(max_examples=25)
@given(unpool_cases())
def test_max_unpool_spec_equals_max_unpool(c):
    nd, values, indices = c["nd"], c["values"], c["indices"]
    spec = PoolSpec(c["kernel"], c["stride"], c["padding"], ndim=nd)
    args = (c["kernel"], c["stride"], c["padding"], c["output_size"])
    y = F.max_unpool(values, indices, *args, ndim=nd)
    np.testing.assert_array_equal(max_unpool_spec(values, indices, spec, c["output_size"]), y)
    g = np.random.default_rng(0).standard_normal(y.shape).astype(values.dtype)
    np.testing.assert_array_equal(max_unpool_spec_vjp(g, values, indices, spec, c["output_size"]),
                                  F.max_unpool_vjp(g, values, indices, *args, ndim=nd))


@pytest.fixture
def specs_built(monkeypatch):
    """The names of the PoolSpecs constructed while the test runs."""
    built = []
    init = PoolSpec.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs.get("name"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(PoolSpec, "__init__", counting_init)
    return built


def test_functional_pooling_builds_one_spec_per_call(specs_built):
    x = np.arange(32.0).reshape(2, 1, 4, 4)
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    assert specs_built == ["max_pool2d"]
    F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert specs_built == ["max_pool2d", "avg_pool2d"]
    F.max_unpool2d(values, indices, 2)
    assert specs_built == ["max_pool2d", "avg_pool2d", "max_unpool2d"]


@pytest.mark.parametrize("layer_type, entry, entry_vjp", [
    (MaxPool2d, "max_pool_spec", "max_pool_spec_vjp"),
    (AvgPool2d, "avg_pool_spec", "avg_pool_spec_vjp"),
])
def test_pooling_layer_builds_its_spec_once_and_passes_it_on(monkeypatch, specs_built, layer_type, entry, entry_vjp):
    layer = layer_type(2, stride=1, padding=1)
    assert specs_built == [layer_type.__name__]
    received = []
    for name in (entry, entry_vjp):
        function = getattr(nn_pool, name)

        def recording(*args, _function=function, **kwargs):
            received.append(next(a for a in args if isinstance(a, PoolSpec)))
            return _function(*args, **kwargs)

        monkeypatch.setattr(nn_pool, name, recording)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    for _ in range(2):
        y = layer(x)
        layer.backward(np.ones_like(y))
    assert specs_built == [layer_type.__name__]  # none rebuilt by forward or backward
    assert len(received) == 4 and all(spec is layer.spec for spec in received)


def test_spec_entry_points_refuse_what_the_spec_cannot_mean():
    x = np.zeros((1, 1, 4))
    with pytest.raises(TypeError, match=r"max_pool_spec: `spec` must be a convlab.spec.PoolSpec .* got 2 \(int\)"):
        max_pool_spec(x, 2)
    with pytest.raises(TypeError, match=r"avg_pool_spec_vjp: `spec` must be a convlab.spec.PoolSpec"):
        avg_pool_spec_vjp(x, x, {"kernel_size": 2})
    with pytest.raises(ValueError, match=r"avg_pool: `spec.dilation` \(=\(2,\)\) must be 1 in every spatial "
                                         r"dimension; average pooling has no dilation"):
        avg_pool_spec(x, PoolSpec(2, dilation=2, ndim=1, name="avg_pool"))
    with pytest.raises(ValueError, match=r"unpool: `spec.dilation` \(=\(2,\)\) must be 1 .* max unpooling"):
        max_unpool_spec(x, np.zeros((1, 1, 4), int), PoolSpec(2, dilation=2, ndim=1, name="unpool"))
    # Errors are reported under the spec's name, or under _fn where given.
    with pytest.raises(ValueError, match=r"^my_pool: `input` must have 3 dimensions"):
        max_pool_spec(np.zeros((4,)), PoolSpec(2, ndim=1, name="my_pool"))
    with pytest.raises(ValueError, match=r"^Layer.backward: `grad_output` must have the output's shape"):
        max_pool_spec_vjp(np.zeros((1, 1, 3)), x, PoolSpec(2, ndim=1, name="Layer"), _fn="Layer.backward")


# --------------------------------------------------------------------------- empty batches and bad input


def test_empty_batch_works_everywhere():
    x = np.zeros((0, 3, 5, 4), dtype=np.float32)
    assert F.max_pool2d(x, 2, return_indices=True)[1].shape == (0, 3, 2, 2)
    assert F.avg_pool2d(x, 3, 2, 1, ceil_mode=True).shape == (0, 3, 3, 3)
    assert F.adaptive_max_pool2d(x, 3).shape == (0, 3, 3, 3)
    assert F.adaptive_avg_pool2d(x, (2, None)).shape == (0, 3, 2, 4)
    assert F.global_max_pool(x).shape == (0, 3, 1, 1)
    assert F.max_pool_vjp(np.zeros((0, 3, 2, 2), np.float32), x, 2, ndim=2).shape == x.shape
    assert F.avg_pool_vjp(np.zeros((0, 3, 2, 2), np.float32), x, 2, ndim=2).dtype == np.float32
    assert F.max_unpool2d(np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 2, 2), np.int64), 2).shape == (0, 3, 4, 4)


def _x(*shape):
    return np.zeros(shape)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.max_pool2d(_x(2, 3), 2), ValueError,
     r"max_pool2d: `input` must have 4 dimensions \(N, C, \*spatial\) or 3 \(C, \*spatial\) .* got shape \(2, 3\)"),
    (lambda: F.avg_pool3d(_x(1, 4, 4), 2), ValueError, r"avg_pool3d: `input` must have 5 dimensions"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 0), ValueError, r"max_pool2d: `kernel_size` \(=0\) must be >= 1"),
    (lambda: F.avg_pool1d(_x(1, 1, 4), 2, stride=0), ValueError, r"avg_pool1d: `stride` \(=0\) must be >= 1"),
    (lambda: F.max_pool1d(_x(1, 1, 4), 2, dilation=0), ValueError, r"max_pool1d: `dilation` \(=0\) must be >= 1"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 3, padding=2), ValueError,
     r"max_pool2d: `padding` \(=\(2, 2\)\) must be at most half the kernel size \(kernel_size=3, so at most 1\)"),
    (lambda: F.avg_pool2d(_x(1, 1, 2, 2), 3), ValueError,
     r"avg_pool2d: the pooling window \(size 3, dilation 1\) does not fit in the padded input \(2 \+ 0 \+ 0\)"),
    (lambda: F.max_pool1d(_x(1, 1, 2), 2, padding=1, dilation=3), ValueError,
     r"max_pool1d: the pooling window of output 0 in spatial dimension 0 covers only padding "
     r"\(input positions \[-1, 2\], input size 2"),
    (lambda: F.max_pool(_x(1, 1, 4), 2), ValueError, r"max_pool: `ndim` is needed when `kernel_size` \(=2\)"),
    (lambda: F.max_pool1d(_x(1, 1, 0), 1), ValueError, r"max_pool1d: `input` has an empty spatial dimension"),
    (lambda: F.max_pool1d(np.zeros((1, 1, 4), bool), 2), TypeError, r"max_pool1d: `input` has dtype bool"),
    (lambda: F.max_pool1d(np.zeros((1, 1, 4), complex), 2), TypeError,
     r"max_pool1d: `input` has dtype complex128; a maximum needs real \(ordered\) values"),
    (lambda: F.max_pool1d(_x(1, 1, 4), 2, return_indices=1), TypeError,
     r"max_pool1d: `return_indices` must be a bool, got 1"),
    (lambda: F.avg_pool1d(_x(1, 1, 4), 2, ceil_mode=None), TypeError, r"avg_pool1d: `ceil_mode` must be a bool"),
    (lambda: F.avg_pool1d(_x(1, 1, 4), 2, divisor_override=0), ValueError,
     r"avg_pool1d: `divisor_override` must be non-zero"),
    (lambda: F.max_pool2d(np.broadcast_to(np.float32(0), (1, 1, 10**5, 10**5)), 1), ValueError,
     r"max_pool2d: the output of shape \(1, 1, 100000, 100000\) would need 40,000,000,000 bytes"),
    (lambda: F.max_pool_vjp(_x(1, 1, 3), _x(1, 1, 4), 2, ndim=1), ValueError,
     r"max_pool_vjp: `grad_output` must have the output's shape \(1, 1, 2\), got \(1, 1, 3\)"),
    (lambda: F.avg_pool_vjp(np.zeros((1, 1, 2), np.float32), _x(1, 1, 4), 2, ndim=1), TypeError,
     r"avg_pool_vjp: `grad_output` has dtype float32, but the input has float64"),
    (lambda: F.avg_pool_vjp(np.zeros((1, 1, 2), int), np.zeros((1, 1, 4), int), 2, ndim=1), TypeError,
     r"avg_pool_vjp: the gradient of an average is fractional; `input` has dtype int64"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), (2, 2, 2)), ValueError,
     r"adaptive_avg_pool2d: `output_size` has 3 entries \(2, 2, 2\), but the input has 2 spatial dimensions"),
    (lambda: F.adaptive_max_pool2d(_x(1, 1, 4, 4), (2, 0)), ValueError,
     r"adaptive_max_pool2d: `output_size\[1\]` \(=0\) must be >= 1"),
    (lambda: F.adaptive_avg_pool(_x(1, 1, 4, 4), 2), ValueError,
     r"adaptive_avg_pool: `ndim` is needed when `output_size` \(=2\) is a single value"),
    (lambda: F.adaptive_avg_pool1d(_x(1, 1, 4), 2.5), TypeError,
     r"adaptive_avg_pool1d: `output_size` must be an integer, got 2.5"),
    (lambda: F.global_avg_pool(_x(2, 3)), ValueError,
     r"global_avg_pool: `input` must have at least 3 dimensions \(N, C, \*spatial\), got shape \(2, 3\)"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.zeros((1, 1, 2)), 2), TypeError,
     r"max_unpool1d: `indices` must have an integer dtype .* got float64"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.zeros((1, 1, 3), int), 2), ValueError,
     r"max_unpool1d: `indices` must have the input's shape \(1, 1, 2\), got \(1, 1, 3\)"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.array([[[1, 4]]]), 2), ValueError,
     r"max_unpool1d: `indices` must be flat positions in the output plane of size 4, i.e. in \[0, 4\); "
     r"got 4 at position \(0, 0, 1\)"),
    (lambda: F.max_unpool2d(_x(1, 1, 2, 2), -np.ones((1, 1, 2, 2), int), 2), ValueError,
     r"max_unpool2d: `indices` must be flat positions in the output plane of size 4 x 4, i.e. in \[0, 16\); "
     r"got -1 at position \(0, 0, 0, 0\)"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.zeros((1, 1, 2), int), 2, output_size=(6,)), ValueError,
     r"max_unpool1d: `output_size` \(=6\) is impossible in spatial dimension 0: it must be >= 1 and lie "
     r"strictly between 2 and 6"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.zeros((1, 1, 2), int), 2, output_size=(1, 4)), ValueError,
     r"max_unpool1d: `output_size` \(=\(1, 4\)\) must have 1 entries \(or 3 with batch and channels\)"),
])
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_reference_and_fast_path_agree_on_a_hand_example():
    x = np.array([[[4.0, 1.0, 5.0, 2.0, 6.0, 3.0]]])
    values, indices = reference.max_pool_general(x, (3,), (2,), ((1, 1),), (1,), (3,))
    np.testing.assert_array_equal(values, [[[4.0, 5.0, 6.0]]])
    np.testing.assert_array_equal(indices, [[[0, 2, 4]]])
    y = reference.avg_pool_general(x, (3,), (2,), ((1, 1),), (3,), count_include_pad=False)
    np.testing.assert_allclose(y, [[[2.5, 8 / 3, 11 / 3]]])
    assert math.isclose(F.avg_pool1d(x, 3, 2, 1, count_include_pad=False)[0, 0, 1], 8 / 3)
