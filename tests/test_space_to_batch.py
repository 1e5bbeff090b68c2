"""space_to_batch: a dilated convolution as one undilated call on the stacked sub-images.

Checked against the reference primitive (random calls, 1-3 dimensions, groups,
crops, strides on undilated dimensions; float64, integers exactly), through the
ops against the reference algorithm and against torch (float32 and float64,
odd sizes, both gradients), with NaN and inf, and its refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import ALGORITHMS, Call, plan, reference, space_to_batch, trace
from convlab.ops.algorithms.plan import NONFINITE_PLANNER, PLANNER

from .helpers import assert_close, check_against_torch


@st.composite
def dilated_calls(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    if all(d == 1 for d in dilation):
        dilation = (draw(st.integers(2, 3)),) + dilation[1:]
    stride = tuple(1 if d > 1 else draw(st.integers(1, 3)) for d in dilation)
    size, pads = [], []
    for k, d in zip(kernel, dilation, strict=True):
        s = draw(st.integers(1, 9 if nd < 3 else 5))
        lo = draw(st.integers(-min(2, s - 1), 4))
        hi = draw(st.integers(-min(2, s + lo - 1), 4))
        extent = d * (k - 1) + 1
        if s + lo + hi < extent:
            hi = extent - s - lo
        size.append(s)
        pads.append((lo, hi))
    return dict(x_shape=(draw(st.integers(1, 2)), groups * cg) + tuple(size), w_shape=(groups * og, cg) + kernel,
                args=(stride, tuple(pads), dilation, (1,) * nd, groups), seed=draw(st.integers(0, 2**16)))


def _arrays(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    if np.dtype(dtype).kind == "i":
        return rng.integers(-20, 20, case["x_shape"]), rng.integers(-20, 20, case["w_shape"])
    return rng.standard_normal(case["x_shape"]).astype(dtype), rng.standard_normal(case["w_shape"]).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(case=dilated_calls())
def test_primitive_equals_reference(case):
    x, w = _arrays(case)
    expected = reference.conv_general(x, w, *case["args"])
    for planner in (None, PLANNER, NONFINITE_PLANNER):
        got = space_to_batch.conv_general(x, w, *case["args"], planner=planner)
        assert_close(got, expected, f"space_to_batch (planner {planner}) on {case}")
    assert_close(ALGORITHMS["space_to_batch"](x, w, *case["args"]), expected, "bound to the planner")


@settings(max_examples=20, deadline=None)
@given(case=dilated_calls())
def test_integers_are_exact(case):
    x, w = _arrays(case, np.int64)
    got = ALGORITHMS["space_to_batch"](x, w, *case["args"])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference.conv_general(x, w, *case["args"]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("size", "c_in", "c_out", "kernel", "padding", "dilation", "stride", "groups"), [
    ((13, 11), 6, 4, 3, 2, 2, 1, 1),
    ((17, 9), 4, 6, (3, 2), (3, 1), (3, 2), 1, 2),
    ((15, 14), 3, 5, 3, 0, (2, 1), (1, 2), 1),
    ((10, 12), 4, 4, 3, 4, 4, 1, 4),  # depthwise atrous
])
def test_ops_equal_reference_and_torch(dtype, size, c_in, c_out, kernel, padding, dilation, stride, groups):
    rng = np.random.default_rng(3)
    ks = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal((2, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + ks).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with trace() as events:
        y = F.conv2d(x, w, b, algorithm="space_to_batch", **kw)
    assert events[0].algorithm == "space_to_batch"
    assert_close(y, F.conv2d(x, w, b, algorithm="reference", **kw), "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    got, expected = (F.conv_vjp(g, x, w, b, algorithm=a, **kw) for a in ("space_to_batch", "reference"))
    for name in ("input", "weight", "bias"):
        assert_close(getattr(got, name), getattr(expected, name), f"{name} gradient")
    torch = pytest.importorskip("torch")
    check_against_torch(
        forward=lambda input, weight, bias: F.conv2d(input, weight, bias, algorithm="space_to_batch", **kw),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias,
                                                                 algorithm="space_to_batch", **kw),
        torch_forward=lambda input, weight, bias: torch.nn.functional.conv2d(input, weight, bias, **kw),
        inputs={"input": x, "weight": w, "bias": b},
    )


def test_auto_runs_it_on_a_deeplab_layer_and_its_input_gradient():
    p = plan((8, 256, 28, 28), (256, 256, 3, 3), padding=2, dilation=2)
    assert p.algorithm == "space_to_batch", str(p)
    assert "4 phases stacked on the batch, 2 undilated calls" in p.reason
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 256, 28, 28)).astype(np.float32)  # deeplab's layer, half the batch
    w = (rng.standard_normal((256, 256, 3, 3)) / 48).astype(np.float32)
    with trace() as events:
        y = F.conv2d(x, w, padding=2, dilation=2)
        grads = F.conv_vjp(np.ones_like(y), x, w, padding=2, dilation=2, wrt=("input",))
    assert [e.algorithm for e in events if e.role in ("forward", "input_grad")] == ["space_to_batch"] * 2
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert_close(y, F.conv2d(x64, w64, padding=2, dilation=2, algorithm="reference").astype(np.float32))
    expected = F.conv_vjp(np.ones(y.shape), x64, w64, padding=2, dilation=2, wrt=("input",), algorithm="reference")
    assert_close(grads.input, expected.input.astype(np.float32), "input gradient")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["input", "weight"])
def test_nonfinite_values_land_where_the_reference_puts_them(value, where):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 128, 30, 31)).astype(np.float32)
    w = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)
    # On finite data the stacked call of these phases is Winograd's, which would spread a NaN or an inf
    assert PLANNER.choose(space_to_batch.sub_call(Call.of(x, w, (1, 1), ((2, 2), (2, 2)), (2, 2), (1, 1), 1))) \
        .startswith("winograd")
    (x if where == "input" else w)[(0, 1, 1, 2) if where == "weight" else (1, 3, 8, 17)] = value
    # gemm: equal to the reference, NaN and inf included (tests/test_algorithms.py, tests/test_nonfinite.py)
    expected = F.conv2d(x.astype(np.float64), w.astype(np.float64), padding=2, dilation=2, algorithm="gemm")
    for algorithm in ("auto", "space_to_batch"):
        with trace() as events:
            got = F.conv2d(x, w, padding=2, dilation=2, algorithm=algorithm)
        assert events[0].algorithm == ("space_to_batch" if algorithm == "space_to_batch" else "gemm")
        for mask in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(mask(got), mask(expected)), (algorithm, mask.__name__)
        finite = np.isfinite(expected)
        if algorithm == "auto":  # gemm throughout
            np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-4, atol=1e-4)
        else:
            # the phases whose stacked call holds no NaN or inf run the planner's choice on finite data
            # (Winograd): their values are held to Winograd's float32 bound (tests/test_winograd.py), 2e-5
            # of the largest magnitude
            bound = 2e-5 * np.abs(expected[finite]).max()
            np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=bound)


@pytest.mark.parametrize(("args", "message"), [
    (((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)),
     r"it needs a dilation > 1 \(an atrous convolution\), got dilation=\(1, 1\)"),
    (((2, 1), ((1, 1), (1, 1)), (2, 2), (1, 1)), r"it needs stride 1 in every dimension whose dilation is > 1, "
                                                 r"got stride=\(2, 1\), dilation=\(2, 2\)"),
    (((1, 1), ((1, 1), (1, 1)), (2, 2), (2, 1)), r"it needs input_dilation 1, got input_dilation=\(2, 1\)"),
])
def test_refusals_name_the_reason(args, message):
    x, w = np.ones((1, 2, 9, 9)), np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"algorithm 'space_to_batch' does not apply to this convolution: " + message):
        ALGORITHMS["space_to_batch"](x, w, *args, 1)
    assert space_to_batch.unsupported(Call.of(x, w, *args, 1)) is not None


def test_sub_call_and_empty_calls():
    call = Call.of((8, 256, 28, 28), (256, 256, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), (1, 1), 1, np.float32)
    # 16x16 sub-images of 8.4 MB in all, more than the input's 6.4 MB: three phases per call, then one
    assert space_to_batch.phases_per_call(call) == 3
    sub = space_to_batch.sub_call(call)
    assert sub.x_shape == (24, 256, 16, 16) and sub.dilation == (1, 1) and sub.out_size == (14, 14)
    assert space_to_batch.sub_call(call, 4).x_shape == (32, 256, 16, 16)
    x, w = np.ones((0, 3, 9, 9)), np.ones((3, 1, 3, 3))
    args = ((1, 1), ((1, 1), (1, 1)), (2, 2), (1, 1), 3)
    assert ALGORITHMS["space_to_batch"](x, w, *args).shape == reference.conv_general(x, w, *args).shape == (0, 3, 7, 7)
