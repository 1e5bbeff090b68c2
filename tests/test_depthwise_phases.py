"""The compiled ``phases`` kernel: input dilation at stride 1 (a strided depthwise layer's input gradient, a
depthwise transposed layer), computed phase by phase from the output gradient and the weight, no dilated copy;
and the compiled ``strided`` kernel (a strided depthwise layer's forward, on the input's polyphase components).

Against the reference algorithm (random calls: input dilations 1-3, dilations, padding pairs with crops, odd
sizes, channel multipliers and several channels per group, 1-d and 2-d, float32 and float64), bit for bit
against the NumPy tap loop, with NaN and inf in the data; through the ops against torch (strides 1-3,
dilation, padding, odd sizes, NaN and inf); and its extra memory.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import depthwise, reference
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

pytest.importorskip("numba")


@st.composite
def dilated_calls(draw):
    """A primitive call with input dilation at stride 1 that depthwise accepts, and its arrays' seed."""
    nd = draw(st.sampled_from([1, 2]))
    cg, og = draw(st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 1), (3, 1)]))
    groups = draw(st.integers(1 if cg == 1 else 2, 4))  # several channels per group: a multiplier's gradient
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    input_dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if all(ld == 1 for ld in input_dilation):
        input_dilation = (2,) + input_dilation[1:]
    size = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    pads = []
    for s, k, d, ld in zip(size, kernel, dilation, input_dilation, strict=True):
        extent = d * (k - 1) + 1
        dilated = (s - 1) * ld + 1
        lo = draw(st.integers(-2, extent + 1))
        # at least one output: dilated + lo + hi >= extent
        hi = draw(st.integers(max(-2, extent - dilated - lo), extent + 1))
        pads.append((lo, hi))
    return {"x_shape": (draw(st.integers(1, 3)), groups * cg) + size, "w_shape": (groups * og, cg) + kernel,
            "args": ((1,) * nd, tuple(pads), dilation, input_dilation, groups), "seed": draw(st.integers(0, 2**16))}


def _arrays(case, dtype):
    rng = np.random.default_rng(case["seed"])
    return (rng.standard_normal(case["x_shape"]).astype(dtype), rng.standard_normal(case["w_shape"]).astype(dtype))


@settings(max_examples=60, deadline=None)
@given(case=dilated_calls(), dtype=st.sampled_from([np.float32, np.float64]))
def test_phases_equals_the_reference_and_the_numpy_loop(case, dtype):
    x, w = _arrays(case, dtype)
    call = Call.of(x, w, *case["args"])
    assert depthwise.unsupported(call) is None and depthwise.compiled_kernel(call) == "phases"
    got = depthwise.conv_general(x, w, *case["args"])
    expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *case["args"]).astype(dtype)
    assert_close(got, expected, str(case))
    # the taps are added in the NumPy loop's order, one multiply then one add: the same numbers
    np.testing.assert_array_equal(got, depthwise._per_tap(call, x, w))


@settings(max_examples=30, deadline=None)
@given(case=dilated_calls(), value=st.sampled_from([np.nan, np.inf, -np.inf]), count=st.integers(1, 3))
def test_nonfinite_data_lands_where_the_reference_puts_it(case, value, count):
    x, w = _arrays(case, np.float64)
    rng = np.random.default_rng(case["seed"] + 1)
    for _ in range(count):
        x[tuple(int(rng.integers(0, s)) for s in x.shape)] = value
    got = depthwise.conv_general(x, w, *case["args"])
    expected = reference.conv_general(x, w, *case["args"])
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(expected), err_msg=f"{mask.__name__} {case}")
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)


def test_the_kernel_runs_on_a_strided_layers_input_gradient(monkeypatch):
    from convlab.ops.algorithms import _depthwise_numba as kernels

    ran = []
    phases = kernels.phases
    monkeypatch.setattr(kernels, "phases", lambda *a: (ran.append("phases"), phases(*a))[1])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 13, 12)).astype(np.float32)
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 6, 7, 6)).astype(np.float32)
    got = F.conv_vjp(g, x, w, stride=2, padding=1, groups=6, wrt="input", algorithm="depthwise")
    assert ran == ["phases"]
    expected = F.conv_vjp(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride=2, padding=1,
                          groups=6, wrt="input", algorithm="reference")
    assert_close(got.input, expected.input.astype(np.float32))


TORCH_LAYERS = [
    # (channels, multiplier, size, kernel, stride, padding, dilation)
    (5, 1, (13, 12), (3, 3), 2, 1, 1),
    (4, 2, (11, 14), (3, 3), 2, 1, 1),
    (3, 1, (17, 16), (5, 3), 3, (2, 1), 1),
    (3, 1, (15, 15), (3, 3), 2, 2, 2),
    (2, 1, (9, 10), (4, 4), (3, 2), 0, (1, 2)),
    (2, 3, (8, 9), (1, 1), 2, 0, 1),
    (6, 1, (21,), (7,), 3, 3, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("c", "m", "size", "kernel", "stride", "padding", "dilation"), TORCH_LAYERS)
def test_input_gradient_equals_torch(dtype, c, m, size, kernel, stride, padding, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(size) + c)
    nd = len(size)
    x = rng.standard_normal((2, c) + size).astype(dtype)
    w = rng.standard_normal((c * m, 1) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    y = F.conv(x, w, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    g[0, 0, 0] = np.nan  # NaN and inf in the output gradient: they land where torch puts them
    g[1, -1, -1] = np.inf
    g[1, 0, (0,) * (nd - 1)] = -np.inf
    got = F.conv_vjp(g, x, w, **kw, wrt="input", algorithm="depthwise").input
    xt = torch.from_numpy(x).requires_grad_(True)
    conv = torch.nn.functional.conv1d if nd == 1 else torch.nn.functional.conv2d
    conv(xt, torch.from_numpy(w), **kw).backward(torch.from_numpy(g))
    expected = xt.grad.numpy()
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(expected), err_msg=mask.__name__)
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], "input gradient")


def test_an_infinite_weight_skips_the_inserted_zeros_as_torch_does():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 9, 9))
    w = rng.standard_normal((2, 1, 3, 3))
    w[0, 0, 1, 1] = np.inf  # the centre tap meets only the even positions' inputs of a stride-2 layer
    g = rng.standard_normal((1, 2, 5, 5))
    got = F.conv_vjp(g, x, w, stride=2, padding=1, groups=2, wrt="input", algorithm="depthwise").input
    xt = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.conv2d(xt, torch.from_numpy(w), stride=2, padding=1, groups=2).backward(
        torch.from_numpy(g))
    expected = xt.grad.numpy()
    assert np.isinf(expected[0, 0, ::2, ::2]).all() and np.isfinite(expected[0, 0, 1::2]).all()
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(expected), err_msg=mask.__name__)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)


def test_transposed_depthwise_layer_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 1, 4, 3)).astype(np.float32)
    kw = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=4, dilation=(1, 2))
    got = F.conv_transpose2d(x, w, **kw, algorithm="depthwise")
    expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
    assert_close(got, expected)


def test_no_dilated_copy_of_the_output_gradient():
    # the extra memory is the result and one plane's buffers per thread, not the dilated (zero-inserted) output
    # gradient, which is four times the result's size at stride 2 before padding
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16, 64, 64)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    F.conv_vjp(g, x, w, stride=2, padding=1, groups=16, wrt="input", algorithm="depthwise")  # compile, warm
    tracemalloc.start()
    try:
        F.conv_vjp(g, x, w, stride=2, padding=1, groups=16, wrt="input", algorithm="depthwise")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * x.nbytes, (peak, x.nbytes)


@st.composite
def strided_calls(draw):
    """A primitive call with a stride (no input dilation) that goes to the ``strided`` kernel."""
    nd = draw(st.sampled_from([1, 2]))
    cg, og = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
    groups = draw(st.integers(1 if cg == 1 else 2, 4))
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if all(s == 1 for s in stride):
        stride = stride[:-1] + (2,)
    size, pads = [], []
    for k, d in zip(kernel, dilation, strict=True):
        extent = d * (k - 1) + 1
        s = draw(st.integers(1, 14))
        lo = draw(st.integers(-min(2, s - 1), extent))
        hi = draw(st.integers(max(-2, extent - s - lo, -(s + lo - 1)), extent + 1))
        size.append(s)
        pads.append((lo, hi))
    return {"x_shape": (draw(st.integers(1, 3)), groups * cg) + tuple(size), "w_shape": (groups * og, cg) + kernel,
            "args": (stride, tuple(pads), dilation, (1,) * nd, groups), "seed": draw(st.integers(0, 2**16))}


@settings(max_examples=60, deadline=None)
@given(case=strided_calls(), dtype=st.sampled_from([np.float32, np.float64]))
def test_strided_equals_the_reference_and_the_numpy_loop(case, dtype):
    x, w = _arrays(case, dtype)
    call = Call.of(x, w, *case["args"])
    assert depthwise.unsupported(call) is None
    if depthwise.compiled_kernel(call) != "strided":  # output rows shorter than the kernel's: small_output
        assert call.out_size[-1] < call.kernel[-1]
        return
    got = depthwise.conv_general(x, w, *case["args"])
    expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *case["args"]).astype(dtype)
    assert_close(got, expected, str(case))
    np.testing.assert_array_equal(got, depthwise._per_tap(call, x, w))


@settings(max_examples=30, deadline=None)
@given(case=strided_calls(), value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_strided_puts_nonfinite_values_where_the_reference_does(case, value):
    x, w = _arrays(case, np.float64)
    rng = np.random.default_rng(case["seed"] + 2)
    x[tuple(int(rng.integers(0, s)) for s in x.shape)] = value
    call = Call.of(x, w, *case["args"])
    if depthwise.compiled_kernel(call) != "strided":
        return
    got = depthwise.conv_general(x, w, *case["args"])
    expected = reference.conv_general(x, w, *case["args"])
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(expected), err_msg=f"{mask.__name__} {case}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("c", "m", "size", "kernel", "stride", "padding", "dilation"), TORCH_LAYERS)
def test_strided_forward_equals_torch(dtype, c, m, size, kernel, stride, padding, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(size) + c + 1)
    x = rng.standard_normal((2, c) + size).astype(dtype)
    x[(0, 0) + (1,) * len(size)] = np.nan
    x[(1, c - 1) + (2,) * len(size)] = -np.inf
    w = rng.standard_normal((c * m, 1) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    got = F.conv(x, w, **kw, algorithm="depthwise")
    conv = torch.nn.functional.conv1d if len(size) == 1 else torch.nn.functional.conv2d
    expected = conv(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(expected), err_msg=mask.__name__)
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], "forward")


def test_huge_strides_answer_at_once():
    # the phases and the polyphase components are bounded by the output's size and the kernel's taps, not by the
    # stride: a stride of 2**31 allocates and loops over what the few outputs read
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((2, 1, 3, 1))
    for stride in ((2**31, 2**31), (3, 2**31), (2**31, 1)):
        args = (stride, ((1, 1), (0, 1)), (1, 2), (1, 1), 2)
        assert depthwise.compiled_kernel(Call.of(x, w, *args)) == "strided"
        assert_close(depthwise.conv_general(x, w, *args), reference.conv_general(x, w, *args))
    g = rng.standard_normal((1, 2, 1, 1))
    w = rng.standard_normal((2, 1, 3, 2))
    args = ((1, 1), ((2, 2), (1, 1)), (1, 1), (2**31, 2**31), 2)
    assert depthwise.compiled_kernel(Call.of(g, w, *args)) == "phases"
    assert_close(depthwise.conv_general(g, w, *args), reference.conv_general(g, w, *args))
