"""dtypes, degenerate shapes, memory layouts, input immutability and IEEE special values.

* float32/float64 stay themselves, float16 is computed in float32 and returned as float16;
* integers are computed exactly in int64 (checked against Python ints, also where float64
  would lose bits) and returned as int64, as NumPy's ``sum`` returns narrow integers; a call
  whose sums could leave int64 is refused;
* complex64/complex128 against torch and against the real/imaginary decomposition;
* empty batches, zero input channels, unbatched inputs;
* non-contiguous views give the same numbers, and no call writes to its inputs;
* a NaN poisons exactly the outputs whose window covers it; ``inf * 0`` is NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from tests.helpers import assert_close, check_against_torch

ALGORITHMS = ("im2col", "reference")


def rand(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- floating dtypes


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtypes_are_kept(dtype, algorithm):
    rng = np.random.default_rng(0)
    x, w, b = rand(rng, (2, 2, 5, 4), dtype), rand(rng, (3, 2, 3, 2), dtype), rand(rng, 3, dtype)
    y = F.conv2d(x, w, b, stride=2, padding=1, algorithm=algorithm)
    assert y.dtype == dtype
    grads = F.conv_vjp(np.ones_like(y), x, w, b, stride=2, padding=1, algorithm=algorithm)
    assert [g.dtype for g in grads] == [dtype] * 3
    wt = rand(rng, (2, 3, 3, 2), dtype)
    yt = F.conv_transpose2d(x, wt, b, stride=2, padding=1, algorithm=algorithm)
    assert yt.dtype == dtype
    grads = F.conv_transpose_vjp(np.ones_like(yt), x, wt, b, stride=2, padding=1, algorithm=algorithm)
    assert [g.dtype for g in grads] == [dtype] * 3
    # float32 is really computed in float32 (to float32 accuracy of the float64 result)
    y64 = F.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride=2, padding=1)
    assert_close(y, y64.astype(dtype), "against float64")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float16_is_computed_in_float32(algorithm):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, (2, 3, 9), np.float16), rand(rng, (4, 3, 4), np.float16), rand(rng, 4, np.float16)
    kwargs = dict(stride=2, padding=((2, 1),), dilation=2, padding_mode="reflect", algorithm=algorithm)
    y = F.conv1d(x, w, b, **kwargs)
    assert y.dtype == np.float16
    x32, w32, b32 = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
    expected = F.conv1d(x32, w32, b32, **kwargs).astype(np.float16)
    np.testing.assert_array_equal(y, expected)
    g = rand(rng, y.shape, np.float16)
    grads = F.conv_vjp(g, x, w, b, **kwargs)
    grads32 = F.conv_vjp(g.astype(np.float32), x32, w32, b32, **kwargs)
    for name in ("input", "weight", "bias"):
        assert getattr(grads, name).dtype == np.float16
        np.testing.assert_array_equal(getattr(grads, name), getattr(grads32, name).astype(np.float16), err_msg=name)
    wt = rand(rng, (3, 2, 3), np.float16)
    yt = F.conv_transpose1d(x, wt, None, stride=2, algorithm=algorithm)
    assert yt.dtype == np.float16
    np.testing.assert_array_equal(yt, F.conv_transpose1d(x32, wt.astype(np.float32), None, stride=2,
                                                          algorithm=algorithm).astype(np.float16))


def test_float16_accumulates_in_float32():
    # Partial sums 60000 + 60000 = 120000 overflow float16 (max 65504); in float32 the result 60000 fits.
    x = np.array([[[60000.0, 60000.0, -60000.0]]], dtype=np.float16)
    w = np.ones((1, 1, 3), dtype=np.float16)
    y = F.conv1d(x, w)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, np.array([[[60000.0]]], dtype=np.float16))
    # and a final value beyond float16 becomes +inf, not a wrapped number
    with np.errstate(over="ignore"):
        y = F.conv1d(np.array([[[60000.0, 60000.0]]], dtype=np.float16), np.ones((1, 1, 2), dtype=np.float16))
    assert y[0, 0, 0] == np.inf


# --------------------------------------------------------------------------- integers, exactly


def exact_conv1d(x, w, stride, lo, hi, dilation):
    """Python-int correlation of one channel, zero padding: no rounding anywhere."""
    xs = [0] * lo + [int(v) for v in x] + [0] * hi
    k = len(w)
    out = (len(xs) - dilation * (k - 1) - 1) // stride + 1
    return [sum(int(w[j]) * xs[o * stride + j * dilation] for j in range(k)) for o in range(out)]


def exact_conv(x, w, b, stride, pairs, dilation):
    """(N, C, L) x (O, C, K) with Python ints."""
    n, c, _ = x.shape
    rows = []
    for i in range(n):
        chans = []
        for o in range(w.shape[0]):
            total = None
            for ci in range(c):
                part = exact_conv1d(x[i, ci], w[o, ci], stride, pairs[0], pairs[1], dilation)
                total = part if total is None else [a + p for a, p in zip(total, part, strict=True)]
            chans.append([t + (0 if b is None else int(b[o])) for t in total])
        rows.append(chans)
    return rows


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int64_moderate_values_exact(algorithm):
    rng = np.random.default_rng(2)
    x = rng.integers(-10**6, 10**6, size=(2, 3, 11), dtype=np.int64)
    w = rng.integers(-10**6, 10**6, size=(2, 3, 3), dtype=np.int64)
    b = rng.integers(-10**6, 10**6, size=2, dtype=np.int64)
    y = F.conv1d(x, w, b, stride=2, padding=((1, 2),), dilation=2, algorithm=algorithm)
    assert y.dtype == np.int64
    assert y.tolist() == exact_conv(x, w, b, 2, (1, 2), 2)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int64_beyond_float64_precision_exact(algorithm):
    rng = np.random.default_rng(3)
    # Products up to 2**40 * 2**12 = 2**52, sums of 3*4 of them up to ~2**56: float64 keeps 53 bits.
    x = rng.integers(2**40 - 2**20, 2**40, size=(1, 3, 9), dtype=np.int64)
    w = rng.integers(2**12 - 64, 2**12, size=(2, 3, 4), dtype=np.int64) | 1  # odd: the low bits matter
    y = F.conv1d(x, w, padding=1, algorithm=algorithm)
    expected = exact_conv(x, w, None, 1, (1, 1), 1)
    assert y.dtype == np.int64
    assert y.tolist() == expected
    assert max(abs(v) for row in expected for ch in row for v in ch) > 2**53
    as_float = F.conv1d(x.astype(np.float64), w.astype(np.float64), padding=1, algorithm=algorithm)
    assert as_float.astype(np.int64).tolist() != expected  # float64 would have lost bits here


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int64_gradients_and_transpose_exact(algorithm):
    rng = np.random.default_rng(4)
    x = rng.integers(-(2**38), 2**38, size=(2, 2, 6), dtype=np.int64)
    w = rng.integers(-(2**12), 2**12, size=(3, 2, 3), dtype=np.int64)
    y = F.conv1d(x, w, stride=2, padding=1, algorithm=algorithm)
    g = rng.integers(-(2**12), 2**12, size=y.shape, dtype=np.int64)
    grads = F.conv_vjp(g, x, w, stride=2, padding=1, algorithm=algorithm)
    assert grads.input.dtype == np.int64 and grads.weight.dtype == np.int64
    # The same sums in Python ints: gx[n,c,i] += w[o,c,k] g[n,o,p] and gw[o,c,k] += x[n,c,i] g[n,o,p], i = 2p + k - 1.
    gx = [[[0] * 6 for _ in range(2)] for _ in range(2)]
    gw = [[[0] * 3 for _ in range(2)] for _ in range(3)]
    for n, o, p, c, k in np.ndindex(2, 3, y.shape[2], 2, 3):
        i = 2 * p + k - 1
        if 0 <= i < 6:
            gx[n][c][i] += int(w[o, c, k]) * int(g[n, o, p])
            gw[o][c][k] += int(x[n, c, i]) * int(g[n, o, p])
    assert grads.input.tolist() == gx
    assert grads.weight.tolist() == gw
    # conv_transpose is the input gradient map.
    yt = F.conv_transpose1d(g, w, stride=2, padding=1, output_padding=1, algorithm=algorithm)
    assert yt.dtype == np.int64
    assert yt.tolist() == gx


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int32_is_computed_and_returned_in_int64(algorithm):
    # Partial sums reach 2**31 (overflow in int32 arithmetic); the final result 2**30 fits.
    x = np.array([[[2**30, 2**30, -(2**30), 5]]], dtype=np.int32)
    w = np.array([[[1, 1, 1]]], dtype=np.int32)
    y = F.conv1d(x, w, algorithm=algorithm)
    assert y.dtype == np.int64
    assert y.tolist() == [[[2**30, 2**30 + 5 - 2**30]]]
    rng = np.random.default_rng(5)
    x = rng.integers(-1000, 1000, size=(2, 2, 7), dtype=np.int32)
    w = rng.integers(-1000, 1000, size=(2, 2, 2), dtype=np.int32)
    b = rng.integers(-1000, 1000, size=2, dtype=np.int32)
    y = F.conv1d(x, w, b, padding="causal", algorithm=algorithm)
    assert y.dtype == np.int64
    assert y.tolist() == exact_conv(x, w, b, 1, (1, 0), 1)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
def test_narrow_integers_do_not_wrap(dtype):
    # 127 * 3 taps = 381 does not fit int8: the sum is exact and returned as int64, like np.sum.
    info = np.iinfo(dtype)
    x = np.full((1, 1, 5), info.max, dtype=dtype)
    w = np.ones((1, 1, 3), dtype=dtype)
    y = F.conv1d(x, w)
    assert y.dtype == np.int64 and y.tolist() == [[[3 * int(info.max)] * 3]]
    assert y.tolist() == [[[int(x.astype(np.int64)[0, 0, :3].sum())] * 3]]
    grads = F.conv_vjp(np.ones((1, 1, 3), dtype=dtype), x, w, np.zeros(1, dtype=dtype))
    assert all(g.dtype == np.int64 for g in grads)
    assert grads.weight.tolist() == [[[3 * int(info.max)] * 3]] and grads.bias.tolist() == [3]
    t = F.conv_transpose1d(x, w)
    assert t.dtype == np.int64 and int(t.max()) == 3 * int(info.max)


def test_sums_that_could_leave_int64_are_refused():
    x = np.array([[[2**62, 2**62, 1]]], dtype=np.int64)
    w = np.ones((1, 1, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"conv1d: the output of these integers could exceed int64 .* integer "
                                         r"results are exact only within int64"):
        F.conv1d(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose1d: the output of these integers could exceed int64"):
        F.conv_transpose1d(x, w)
    with pytest.raises(ValueError, match=r"conv_vjp: the weight gradient of these integers could exceed int64"):
        F.conv_vjp(np.full((1, 1, 2), 4, dtype=np.int64), x, w, wrt="weight")
    big = np.array([[[2**63 + 5, 1, 2]]], dtype=np.uint64)  # beyond int64 itself
    with pytest.raises(ValueError, match="could exceed int64"):
        F.conv1d(big, np.ones((1, 1, 2), dtype=np.uint64))
    # just inside the bound: exact
    x = np.array([[[2**61, 2**61, -(2**61)]]], dtype=np.int64)
    assert F.conv1d(x, w).tolist() == [[[2**62, 0]]]


def test_integer_2d_exact_against_object_arithmetic():
    rng = np.random.default_rng(6)
    x = rng.integers(-(2**40), 2**40, size=(1, 2, 4, 5), dtype=np.int64)
    w = rng.integers(-(2**10), 2**10, size=(2, 2, 2, 3), dtype=np.int64)
    y = F.conv2d(x, w, stride=(1, 2), padding=(1, 0))
    xo = np.pad(x.astype(object), ((0, 0), (0, 0), (1, 1), (0, 0)))
    wo = w.astype(object)
    expected = np.empty((1, 2, 5, 2), dtype=object)
    for o, r, c in np.ndindex(2, 5, 2):
        expected[0, o, r, c] = (xo[0, :, r:r + 2, 2 * c:2 * c + 3] * wo[o]).sum()
    assert y.tolist() == expected.tolist()


@st.composite
def integer_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
    pairs = tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(nd))
    size = tuple(max(2, d * (k - 1) + 1) + draw(st.integers(0, 2)) for k, d in zip(kernel, dilation, strict=True))
    return dict(groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride, dilation=dilation, mode=mode,
                pairs=pairs, size=size, dtype=draw(st.sampled_from([np.int64, np.int32])),
                seed=draw(st.integers(0, 2**16)))


@settings(max_examples=40)
@given(integer_cases())
def test_integers_exact_on_random_specs(case):
    """Values small enough that float64 is exact too: the integer results must equal it bit for bit."""
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    x = rng.integers(-(2**15), 2**15, size=(2, case["c_in"]) + case["size"]).astype(dtype)
    w_shape = (case["c_out"], case["c_in"] // case["groups"]) + case["kernel"]
    w = rng.integers(-(2**10), 2**10, size=w_shape).astype(dtype)
    b = rng.integers(-(2**10), 2**10, size=case["c_out"]).astype(dtype)
    kw = dict(stride=case["stride"], padding=case["pairs"], dilation=case["dilation"], groups=case["groups"],
              padding_mode=case["mode"])
    as_float = F.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw)
    g = rng.integers(-(2**8), 2**8, size=as_float.shape).astype(dtype)
    float_grads = F.conv_vjp(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                             **kw)
    for algorithm in ALGORITHMS:
        y = F.conv(x, w, b, algorithm=algorithm, **kw)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, as_float.astype(np.int64))
        grads = F.conv_vjp(g, x, w, b, algorithm=algorithm, **kw)
        for name in ("input", "weight", "bias"):
            got, expected = getattr(grads, name), getattr(float_grads, name)
            assert got.dtype == np.int64, name
            np.testing.assert_array_equal(got, expected.astype(np.int64), err_msg=name)
        # transposed, reading the conv weight as (C_in', C_out'/groups, *k) with C_in' = c_out
        yt = F.conv_transpose(g, w, None, case["stride"], case["pairs"], groups=case["groups"],
                              dilation=case["dilation"], algorithm=algorithm)
        expected_t = F.conv_transpose(g.astype(np.float64), w.astype(np.float64), None, case["stride"], case["pairs"],
                                      groups=case["groups"], dilation=case["dilation"])
        assert yt.dtype == np.int64
        np.testing.assert_array_equal(yt, expected_t.astype(np.int64))


# --------------------------------------------------------------------------- complex


def complex_inputs(rng, dtype, x_shape, w_shape, bias_size):
    def draw(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)

    return {"input": draw(x_shape), "weight": draw(w_shape), "bias": draw(bias_size) if bias_size else None}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_conv_matches_torch(dtype, algorithm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    kw = dict(stride=(2, 1), padding=((1, 0), (1, 2)), dilation=(1, 2), groups=2)
    inputs = complex_inputs(rng, dtype, (2, 4, 5, 6), (6, 2, 2, 3), bias_size=6)

    def torch_forward(input, weight, bias):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(input, (1, 2, 1, 0)), weight, bias,
                                          (2, 1), 0, (1, 2), 2)

    y = check_against_torch(
        forward=lambda input, weight, bias: F.conv2d(input, weight, bias, algorithm=algorithm, **kw),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias,
                                                                algorithm=algorithm, **kw),
        torch_forward=torch_forward,
        inputs=inputs,
    )
    assert y.dtype == dtype


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_conv_transpose_matches_torch(dtype, algorithm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    inputs = complex_inputs(rng, dtype, (1, 2, 4), (2, 3, 3), bias_size=3)
    check_against_torch(
        forward=lambda input, weight, bias: F.conv_transpose1d(input, weight, bias, 2, 1, 1, algorithm=algorithm),
        vjp=lambda grad_output, input, weight, bias: F.conv_transpose_vjp(grad_output, input, weight, bias, 2, 1, 1,
                                                                          algorithm=algorithm),
        torch_forward=lambda input, weight, bias: torch.nn.functional.conv_transpose1d(input, weight, bias, 2, 1, 1),
        inputs=inputs,
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_equals_real_imaginary_decomposition(dtype, algorithm):
    rng = np.random.default_rng(9)
    real = np.float64 if dtype == np.complex128 else np.float32
    inp = complex_inputs(rng, dtype, (2, 2, 7), (3, 2, 3), bias_size=3)
    x, w, b = inp["input"], inp["weight"], inp["bias"]
    kw = dict(stride=2, padding=2, padding_mode="reflect", algorithm=algorithm)

    def conv_real(a, c):
        return F.conv1d(a, c, **kw)

    xr, xi, wr, wi = x.real.astype(real), x.imag.astype(real), w.real.astype(real), w.imag.astype(real)
    y = F.conv1d(x, w, b, **kw)
    assert y.dtype == dtype
    expected = (conv_real(xr, wr) - conv_real(xi, wi)) + 1j * (conv_real(xr, wi) + conv_real(xi, wr))
    expected = (expected + b[None, :, None]).astype(dtype)
    assert_close(y, expected, "forward")
    # vjp: y is bilinear, so each gradient is the real vjp applied part by part (no conjugation).
    g = (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)).astype(dtype)
    gr, gi = g.real.astype(real), g.imag.astype(real)
    grads = F.conv_vjp(g, x, w, b, **kw)

    def vjp_real(gp, a, c):
        return F.conv_vjp(gp, a, c, **kw)

    # The input gradient T(g, w) and the weight gradient U(g, x) are real-bilinear maps extended
    # complex-bilinearly (a vjp is J^T g, no conjugation):
    # T(gr + i gi, wr + i wi) = T(gr, wr) - T(gi, wi) + i (T(gr, wi) + T(gi, wr)), likewise U with x.
    gx_expected = (vjp_real(gr, xr, wr).input - vjp_real(gi, xr, wi).input) + 1j * (
        vjp_real(gr, xr, wi).input + vjp_real(gi, xr, wr).input)
    gw_expected = (vjp_real(gr, xr, wr).weight - vjp_real(gi, xi, wr).weight) + 1j * (
        vjp_real(gr, xi, wr).weight + vjp_real(gi, xr, wr).weight)
    assert_close(grads.input, gx_expected.astype(dtype), "input gradient")
    assert_close(grads.weight, gw_expected.astype(dtype), "weight gradient")
    assert_close(grads.bias, g.sum(axis=(0, 2)), "bias gradient")


# --------------------------------------------------------------------------- degenerate shapes


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch(algorithm):
    rng = np.random.default_rng(10)
    x = np.zeros((0, 4, 6, 5))
    w, b = rand(rng, (6, 2, 3, 2)), rand(rng, 6)
    kw = dict(stride=(2, 1), padding=1, groups=2, algorithm=algorithm)
    y = F.conv2d(x, w, b, **kw)
    assert y.shape == (0, 6, 3, 6) and y.dtype == np.float64
    grads = F.conv_vjp(np.zeros(y.shape), x, w, b, **kw)
    assert grads.input.shape == x.shape
    assert grads.weight.shape == w.shape and not grads.weight.any()
    assert grads.bias.shape == (6,) and not grads.bias.any()
    wt = rand(rng, (4, 3, 3, 2))
    yt = F.conv_transpose2d(x, wt, b, stride=2, padding=1, groups=2, algorithm=algorithm)
    assert yt.shape == (0, 6, 11, 8)  # (6-1)*2 - 2 + 2 + 1, (5-1)*2 - 2 + 1 + 1
    grads = F.conv_transpose_vjp(np.zeros(yt.shape), x, wt, b, stride=2, padding=1, groups=2, algorithm=algorithm)
    assert grads.input.shape == x.shape
    assert grads.weight.shape == wt.shape and not grads.weight.any()
    assert grads.bias.shape == (6,) and not grads.bias.any()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zero_input_channels_give_the_bias(algorithm):
    x = np.zeros((2, 0, 5, 4))
    w = np.zeros((3, 0, 2, 3))
    b = np.array([1.5, -2.0, 7.0])
    y = F.conv2d(x, w, b, padding=(1, 0), algorithm=algorithm)
    assert y.shape == (2, 3, 6, 2)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], (2, 3, 6, 2)))
    np.testing.assert_array_equal(F.conv2d(x, w, padding=(1, 0), algorithm=algorithm), np.zeros((2, 3, 6, 2)))
    g = np.ones(y.shape)
    grads = F.conv_vjp(g, x, w, b, padding=(1, 0), algorithm=algorithm)
    assert grads.input.shape == x.shape
    assert grads.weight.shape == w.shape
    np.testing.assert_array_equal(grads.bias, [24.0, 24.0, 24.0])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unbatched_shapes(algorithm):
    rng = np.random.default_rng(11)
    x, w, b = rand(rng, (2, 7)), rand(rng, (4, 2, 3)), rand(rng, 4)
    y = F.conv1d(x, w, b, stride=2, algorithm=algorithm)
    assert y.shape == (4, 3)
    assert_close(y, F.conv1d(x[None], w, b, stride=2, algorithm=algorithm)[0], "unbatched == batch of one")
    grads = F.conv_vjp(np.ones(y.shape), x, w, b, stride=2, algorithm=algorithm)
    assert grads.input.shape == (2, 7) and grads.weight.shape == w.shape and grads.bias.shape == (4,)
    x3 = rand(rng, (2, 3, 4, 3))
    w3 = rand(rng, (2, 1, 2, 2, 2))
    y3 = F.conv3d(x3, w3, None, 1, "same", groups=2, algorithm=algorithm)
    assert y3.shape == (2, 3, 4, 3)
    wt = rand(rng, (2, 3, 3))
    yt = F.conv_transpose1d(x, wt, None, stride=2, output_padding=1, algorithm=algorithm)
    assert yt.shape == (3, 16)
    grads = F.conv_transpose_vjp(np.ones(yt.shape), x, wt, None, stride=2, output_padding=1, algorithm=algorithm)
    assert grads.input.shape == (2, 7) and grads.weight.shape == wt.shape and grads.bias is None


# --------------------------------------------------------------------------- memory layouts and immutability


def layouts(a):
    """Views of ``a``'s values with unusual strides: transposed-and-back, reversed twice, Fortran order, strided."""
    yield "fortran", np.asfortranarray(a)
    axes = tuple(range(a.ndim))[::-1]
    yield "transposed view", np.ascontiguousarray(a.transpose(axes)).transpose(axes)
    flipped = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    yield "negative strides", flipped[(slice(None, None, -1),) * a.ndim]
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    big[(slice(None, None, 2),) * a.ndim] = a
    yield "strided slice", big[(slice(None, None, 2),) * a.ndim]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_non_contiguous_inputs_give_the_same_result(algorithm):
    rng = np.random.default_rng(12)
    x, w, b = rand(rng, (2, 2, 5, 6)), rand(rng, (4, 1, 3, 2)), rand(rng, 4)
    wt = rand(rng, (2, 3, 3, 2))
    kw = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2, algorithm=algorithm)
    y = F.conv2d(x, w, b, **kw)
    g = rand(rng, y.shape)
    grads = F.conv_vjp(g, x, w, b, **kw)
    yt = F.conv_transpose2d(x, wt, None, stride=2, padding=1, algorithm=algorithm)
    gt = rand(rng, yt.shape)
    grads_t = F.conv_transpose_vjp(gt, x, wt, None, stride=2, padding=1, algorithm=algorithm)
    for (name, xv), (_, wv), (_, bv), (_, gv), (_, wtv), (_, gtv) in zip(
        layouts(x), layouts(w), layouts(b), layouts(g), layouts(wt), layouts(gt), strict=True
    ):
        assert not xv.flags.c_contiguous, name
        assert_close(F.conv2d(xv, wv, bv, **kw), y, f"conv, {name}")
        other = F.conv_vjp(gv, xv, wv, bv, **kw)
        for field in ("input", "weight", "bias"):
            assert_close(getattr(other, field), getattr(grads, field), f"conv_vjp {field}, {name}")
        assert_close(F.conv_transpose2d(xv, wtv, None, stride=2, padding=1, algorithm=algorithm), yt,
                     f"conv_transpose, {name}")
        other = F.conv_transpose_vjp(gtv, xv, wtv, None, stride=2, padding=1, algorithm=algorithm)
        assert_close(other.input, grads_t.input, f"conv_transpose_vjp input, {name}")
        assert_close(other.weight, grads_t.weight, f"conv_transpose_vjp weight, {name}")
        # padding modes read the input through index maps
        assert_close(F.conv2d(xv, wv, bv, padding=2, padding_mode="symmetric", groups=2, algorithm=algorithm),
                     F.conv2d(x, w, b, padding=2, padding_mode="symmetric", groups=2, algorithm=algorithm),
                     f"symmetric, {name}")


CALLS = [
    ("conv zeros", lambda x, w, b, g, a: F.conv2d(x, w, b, stride=1, padding=0, algorithm=a)),
    ("conv reflect", lambda x, w, b, g, a: F.conv2d(x, w, b, padding=1, padding_mode="reflect", algorithm=a)),
    ("conv circular", lambda x, w, b, g, a: F.conv2d(x, w, b, padding=1, padding_mode="circular", algorithm=a)),
    ("conv flip", lambda x, w, b, g, a: F.conv2d(x, w, b, padding="same", flip_kernel=True, algorithm=a)),
    ("conv_vjp", lambda x, w, b, g, a: F.conv_vjp(g, x, w, b, padding=1, padding_mode="symmetric", algorithm=a)),
    ("conv_vjp flip", lambda x, w, b, g, a: F.conv_vjp(g, x, w, b, padding=1, flip_kernel=True, algorithm=a)),
    ("conv_transpose", lambda x, w, b, g, a: F.conv_transpose2d(x, w, b, algorithm=a)),
    ("conv_transpose_vjp", lambda x, w, b, g, a: F.conv_transpose_vjp(g, x, w, b, padding=1, algorithm=a)),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.complex128])
@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_inputs_are_not_modified(name, call, dtype, algorithm):
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((1, 2, 3, 3)) * 10).astype(dtype)
    w = (rng.standard_normal((2, 2, 3, 3)) * 10).astype(dtype)  # (C_out, C_in) == (C_in, C_out): both layouts
    b = (rng.standard_normal(2) * 10).astype(dtype)
    g = (rng.standard_normal((1, 2, 3, 3)) * 10).astype(dtype)  # the output shape of every vjp call below
    copies = [a.copy() for a in (x, w, b, g)]
    result = call(x, w, b, g, algorithm)
    for original, kept, label in zip((x, w, b, g), copies, ("input", "weight", "bias", "grad_output"), strict=True):
        np.testing.assert_array_equal(original, kept, err_msg=f"{name} wrote to {label}")
    outputs = result if isinstance(result, tuple) else (result,)
    for out in outputs:
        for arr, label in zip((x, w, b, g), ("input", "weight", "bias", "grad_output"), strict=True):
            assert not np.shares_memory(out, arr), f"{name}: an output shares memory with {label}"


def test_read_only_inputs_are_accepted():
    rng = np.random.default_rng(14)
    x, w, b = rand(rng, (1, 2, 4)), rand(rng, (3, 2, 2)), rand(rng, 3)
    for a in (x, w, b):
        a.setflags(write=False)
    y = F.conv1d(x, w, b, padding=1, padding_mode="replicate")
    grads = F.conv_vjp(np.ones(y.shape), x, w, b, padding=1, padding_mode="replicate")
    assert y.flags.writeable and grads.input.shape == x.shape


# --------------------------------------------------------------------------- NaN and Inf


def covered(size, kernel, stride, dilation, pairs, position):
    """Output positions (one dim) whose window reads padded-input index ``position`` (already padded)."""
    out = (size + pairs[0] + pairs[1] - dilation * (kernel - 1) - 1) // stride + 1
    return {o for o in range(out) for k in range(kernel) if o * stride + k * dilation == position}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("stride, dilation, pad", [(1, 1, 0), (2, 1, 1), (1, 2, 2), (3, 2, 1)])
@pytest.mark.parametrize("where", [(0, 0), (3, 4), (6, 2)])
def test_nan_poisons_exactly_the_covering_windows(where, stride, dilation, pad, algorithm):
    rng = np.random.default_rng(15)
    x = rand(rng, (1, 2, 7, 6))
    w = rand(rng, (3, 2, 3, 2))
    w[:, :, 1, :] = 0.0  # a zero tap still propagates NaN (NaN * 0 = NaN)
    x[0, 1, where[0], where[1]] = np.nan
    y = F.conv2d(x, w, stride=stride, padding=pad, dilation=dilation, algorithm=algorithm)
    rows = covered(7, 3, stride, dilation, (pad, pad), where[0] + pad)
    cols = covered(6, 2, stride, dilation, (pad, pad), where[1] + pad)
    expected = np.zeros(y.shape[2:], dtype=bool)
    for r in rows:
        for c in cols:
            expected[r, c] = True
    for o in range(3):
        np.testing.assert_array_equal(np.isnan(y[0, o]), expected, err_msg=f"output channel {o}")
    assert np.isfinite(y[0][:, ~expected]).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_with_reflect_padding_poisons_its_mirror_windows(algorithm):
    x = np.arange(1.0, 7.0)
    x[1] = np.nan
    y = F.conv1d(x[None, None], np.ones((1, 1, 3)), padding=2, padding_mode="reflect", algorithm=algorithm)[0, 0]
    # reflect: 3 2 | 1 2 3 4 5 6 | 5 4 -> index 1 (the NaN) appears at padded positions 1 and 3
    padded_nan = np.isnan(np.pad(x, 2, mode="reflect"))
    expected = np.array([padded_nan[o:o + 3].any() for o in range(len(y))])
    np.testing.assert_array_equal(np.isnan(y), expected)
    np.testing.assert_array_equal(expected, [True] * 4 + [False] * 4)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_inf_times_zero_weight_is_nan(algorithm):
    x = np.array([[[1.0, np.inf, 2.0, 3.0, -np.inf]]])
    w = np.array([[[0.0, 1.0]]])
    y = F.conv1d(x, w, algorithm=algorithm)[0, 0]
    # y0 = 0*1 + 1*inf = inf; y1 = 0*inf + 1*2 = nan; y2 = 0*2 + 3 = 3; y3 = 0*3 + 1*(-inf) = -inf
    assert y[0] == np.inf
    assert np.isnan(y[1])
    assert y[2] == 3.0
    assert y[3] == -np.inf
    # inf - inf inside one window is NaN too
    y = F.conv1d(np.array([[[np.inf, np.inf]]]), np.array([[[1.0, -1.0]]]), algorithm=algorithm)
    assert np.isnan(y).all()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_in_gradients(algorithm):
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, 0.0, 2.0]]])
    g = np.array([[[1.0, np.nan, 1.0]]])
    grads = F.conv_vjp(g, x, w, algorithm=algorithm)
    # gx[i] = sum_o g[o] w[i - o]: g[1] (NaN) reaches inputs 1, 2, 3 (also through the zero tap)
    np.testing.assert_array_equal(np.isnan(grads.input[0, 0]), [False, True, True, True, False])
    assert np.isnan(grads.weight).all()  # every tap meets output 1
    wt = np.array([[[0.0, 1.0]]])
    xt = np.array([[[np.inf, 1.0]]])
    yt = F.conv_transpose1d(xt, wt, algorithm=algorithm)[0, 0]
    # yt = [inf*0, inf*1 + 1*0, 1*1] = [nan, inf, 1]
    assert np.isnan(yt[0]) and yt[1] == np.inf and yt[2] == 1.0
