"""The FFT path's transform lengths (the shortest exact circular convolution), its pruned transforms and its
streamed channel sum (one filter per group: a depthwise weight gradient, the kernel as large as the input).

Random calls against the reference algorithm, float32, float64 and complex, paddings larger than the kernel
(outputs that wrap around), crops, strides, dilations, input dilation, 1-3 dimensions; the same at the exact
shortest lengths (no rounding up to a fast length), where one less would be wrong; the pruned transforms
against scipy's n-dimensional ones; a layer's gradients against torch; and the extra memory.
"""

from __future__ import annotations

import importlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import reference
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

fft = importlib.import_module("convlab.ops.algorithms.fft")


@st.composite
def calls(draw):
    """A primitive call with wide paddings (up to twice the kernel's extent) and crops."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 6 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    input_dilation = tuple(draw(st.sampled_from([1, 1, 1, 2])) for _ in range(nd))
    size, pads = [], []
    for k, d, ld in zip(kernel, dilation, input_dilation, strict=True):
        s = draw(st.integers(1, 12 if nd < 3 else 5))
        length = (s - 1) * ld + 1
        extent = d * (k - 1) + 1
        lo = draw(st.integers(-min(2, length - 1), 2 * extent))
        hi = draw(st.integers(-min(2, length + lo - 1), 2 * extent))
        if length + lo + hi < extent:
            hi = extent - length - lo
        size.append(s)
        pads.append((lo, hi))
    return dict(x_shape=(draw(st.integers(1, 2)), groups * cg) + tuple(size), w_shape=(groups * og, cg) + kernel,
                args=(stride, tuple(pads), dilation, input_dilation, groups), seed=draw(st.integers(0, 2**16)))


def _arrays(case, dtype):
    rng = np.random.default_rng(case["seed"])
    x, w = rng.standard_normal(case["x_shape"]), rng.standard_normal(case["w_shape"])
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(case["x_shape"])
        w = w + 1j * rng.standard_normal(case["w_shape"])
    return x.astype(dtype), w.astype(dtype)


def _expected(case, x, w):
    wide = np.complex128 if x.dtype.kind == "c" else np.float64
    return reference.conv_general(x.astype(wide), w.astype(wide), *case["args"]).astype(x.dtype)


@settings(max_examples=60, deadline=None)
@given(case=calls(), dtype=st.sampled_from([np.float32, np.float64, np.complex128]))
def test_random_calls_equal_the_reference(case, dtype):
    x, w = _arrays(case, dtype)
    assert_close(fft.conv_general(x, w, *case["args"]), _expected(case, x, w), str(case))


@settings(max_examples=60, deadline=None)
@given(case=calls())
def test_the_shortest_lengths_are_exact_and_one_less_is_not(case):
    # Without rounding up to a fast length the transforms have exactly the lengths fft_lengths derives:
    # the outputs are still the reference's; one less in a dimension where the wrap-around is the bound
    # lands a wrapped entry (not zero, random data) on an output.
    x, w = _arrays(case, np.float64)
    call = Call.of(x, w, *case["args"])
    exact = _expected(case, x, w)
    least = fft._least_lengths(call)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fft, "_fast_len", lambda n, real: n)
        assert fft.fft_lengths(call) == least
        assert_close(fft.conv_general(x, w, *case["args"]), exact, f"shortest lengths {least}")
    if any(ld != 1 for ld in call.input_dilation):
        return  # the materialized padded size bounds the lengths there, not the wrap-around
    for i, n in enumerate(least):
        if n <= call.effective_kernel[i] or call.stride[i] > 1 or call.dilation[i] > 1:
            continue  # the kernel's extent bounds it, or the entries that land may be ones no window reads
        shorter = least[:i] + (n - 1,) + least[i + 1:]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fft, "fft_lengths", lambda c, _s=shorter: _s)
            wrong = fft.conv_general(x, w, *case["args"])
        assert not np.allclose(wrong, exact, rtol=1e-9, atol=1e-9), (case, shorter)


def test_same_padding_takes_the_input_plus_one_side():
    # RepLKNet's 31x31 kernel on 28x28 (padding 15): at least 28 + 15 = 43 points per axis, not 58
    call = Call((8, 256, 28, 28), (256, 1, 31, 31), (1, 1), ((15, 15), (15, 15)), (1, 1), (1, 1), 256,
                np.dtype(np.float32))
    assert all(43 <= n < 48 for n in fft.fft_lengths(call))
    # a 'valid' call keeps the input's size
    valid = Call((1, 1, 50, 40), (1, 1, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, np.dtype(np.float64))
    assert fft.fft_lengths(valid) == (fft._fast_len(50, False), fft._fast_len(40, True))


@pytest.mark.parametrize("complex_data", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 2, 4, 3, 6), (3, 1, 9)])
def test_pruned_transforms_equal_scipys(shape, complex_data):
    import scipy.fft

    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_data else 0)
    nd = len(shape) - 2
    lengths = tuple(s + 3 + i for i, s in enumerate(shape[2:]))
    axes = tuple(range(2, 2 + nd))
    full = (scipy.fft.fftn if complex_data else scipy.fft.rfftn)(x, s=lengths, axes=axes)
    np.testing.assert_allclose(fft._forward(x, lengths, complex_data), full, rtol=1e-12, atol=1e-12)
    back = (scipy.fft.ifftn if complex_data else scipy.fft.irfftn)(full, s=lengths, axes=axes)
    starts, out, stride = (1,) * nd, tuple((n - 2) // 2 + 1 for n in lengths), (2,) * nd  # every other entry from 1
    expected = back[(slice(None), slice(None)) + tuple(slice(a, a + (o - 1) * st + 1, st)
                                                       for a, o, st in zip(starts, out, stride, strict=True))]
    np.testing.assert_allclose(fft._inverse(full.copy(), lengths, starts, out, stride, complex_data), expected,
                               rtol=1e-12, atol=1e-12)
    # outputs that wrap around (a left pad wider than the kernel) are read modulo the length
    wrapped = np.take(back, np.arange(-2, lengths[-1] - 2) % lengths[-1], axis=-1)
    np.testing.assert_allclose(fft._inverse(full.copy(), lengths, (0,) * (nd - 1) + (-2,), lengths, (1,) * nd,
                                            complex_data), wrapped, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_kernel_layer_gradients_equal_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 20, 17)).astype(dtype)
    w = (rng.standard_normal((6, 1, 13, 13)) / 13).astype(dtype)
    g = rng.standard_normal((2, 6, 20, 17)).astype(dtype)
    kw = dict(padding=6, groups=6)
    y = F.conv2d(x, w, **kw, algorithm="fft")
    grads = F.conv_vjp(g, x, w, **kw, algorithm="fft")
    xt, wt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(w).requires_grad_(True)
    yt = torch.nn.functional.conv2d(xt, wt, **kw)
    yt.backward(torch.from_numpy(g))
    assert_close(y, yt.detach().numpy(), "forward")
    assert_close(grads.input, xt.grad.numpy(), "input gradient")
    assert_close(grads.weight, wt.grad.numpy(), "weight gradient")


def test_streamed_channel_sum_equals_the_reference_and_keeps_memory_low(monkeypatch):
    # One filter per group whose kernel is as large as the input (a single-channel layer's weight gradient:
    # the 8 samples are the channels): the kernel spectrum is transformed a channel at a time, never whole.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 8, 192, 192)).astype(np.float32)  # the padded input, samples as channels
    w = rng.standard_normal((1, 8, 178, 178)).astype(np.float32)  # the output gradient as the kernel
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
    expected = reference.conv_general(x[:, :, :40, :40].astype(np.float64), w[:, :, :30, :30].astype(np.float64),
                                      *args)
    small = fft.conv_general(x[:, :, :40, :40], w[:, :, :30, :30], *args)
    assert_close(small, expected.astype(np.float32))
    plane = 192 * 97 * 8  # one plane's spectrum, complex64
    monkeypatch.setattr(fft, "BLOCK_BYTES", plane)  # a channel at a time (1024x1024 planes are 4.3 MB each)
    fft.conv_general(x, w, *args)  # warm scipy's plans
    tracemalloc.start()
    try:
        fft.conv_general(x, w, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # whole spectra would be 8 planes for the input and 8 for the kernel (and its half-transformed copy);
    # streamed: the sum, one input plane, one kernel plane and its half-transformed copy, the inverse
    assert peak < 6 * plane, (peak, plane)


def test_depthwise_weight_grad_of_a_single_channel_layer_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 1, 40, 37)).astype(np.float32)
    g = rng.standard_normal((3, 1, 40, 37)).astype(np.float32)
    w = np.zeros((1, 1, 9, 9), np.float32)
    got = F.conv_vjp(g, x, w, padding=4, wrt="weight", algorithm="fft").weight
    wt = torch.from_numpy(w).requires_grad_(True)
    torch.nn.functional.conv2d(torch.from_numpy(x), wt, padding=4).backward(torch.from_numpy(g))
    assert_close(got, wt.grad.numpy())


def test_input_dilation_is_materialized_a_block_at_a_time(monkeypatch):
    # A strided layer's input gradient by FFT: the zeros between the output gradient's entries and the padding
    # are written per block of the transform, not as a dilated copy of the whole array
    monkeypatch.setattr(fft, "BLOCK_BYTES", 2**16)
    rng = np.random.default_rng(10)
    g = rng.standard_normal((4, 32, 20, 20)).astype(np.float32)
    w = rng.standard_normal((32, 1, 9, 9)).astype(np.float32)
    args = ((1, 1), ((4, 5), (4, 5)), (1, 1), (2, 2), 32)
    expected = reference.conv_general(g[:1, :3].astype(np.float64), w[:3].astype(np.float64),
                                      *args[:-1], 3).astype(np.float32)
    assert_close(fft.conv_general(g[:1, :3], w[:3], *args[:-1], 3), expected)
    result = fft.conv_general(g, w, *args)  # warm
    whole_copy = 4 * 32 * (39 + 9) ** 2 * 4  # the dilated, padded output gradient
    tracemalloc.start()
    try:
        fft.conv_general(g, w, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    lengths = fft.fft_lengths(Call.of(g, w, *args))
    kernel_spectrum = 32 * lengths[0] * (lengths[1] // 2 + 1) * 8  # complex64, held for the whole call
    assert peak - result.nbytes - kernel_spectrum < whole_copy / 4, (peak, result.nbytes, kernel_spectrum, whole_copy)
