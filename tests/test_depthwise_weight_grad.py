"""The depthwise weight gradient read in place (``depthwise.weight_grad``, the ``weight_grad`` compiled kernel).

Against the reference algorithm and torch, float32 and float64, odd shapes, strides, paddings
(crops included), dilations, channel multipliers, 1-d and 2-d, NaN and inf; through the ops
(``conv_vjp``) with ``depthwise``, ``depthwise_numpy`` and ``auto``; and its extra memory.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import depthwise
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

COMPILED = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])


def _maybe_numba(compiled: bool) -> None:
    if compiled:
        pytest.importorskip("numba")


@st.composite
def layers(draw):
    """A depthwise layer: sizes, kernel, stride, padding pairs (negative: crops), dilation, multiplier."""
    nd = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 20))
    m = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pads = tuple((draw(st.integers(-1, 4)), draw(st.integers(-1, 4))) for _ in range(nd))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pads, strict=True):
        extent = d * (k - 1) + 1
        size.append(draw(st.integers(max(1, extent - lo - hi, 1 - min(lo, 0) - min(hi, 0)), extent + 12)))
    return {"n": n, "c": c, "m": m, "size": tuple(size), "kernel": kernel, "stride": stride,
            "dilation": dilation, "pads": pads}


def _out(case):
    return tuple((s + lo + hi - d * (k - 1) - 1) // st + 1 for s, (lo, hi), k, st, d in
                 zip(case["size"], case["pads"], case["kernel"], case["stride"], case["dilation"], strict=True))


def _data(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"]) + case["size"]).astype(dtype)
    g = rng.standard_normal((case["n"], case["c"] * case["m"]) + _out(case)).astype(dtype)
    return x, g


def _correlation(case, x, g):
    """The correlation the ops' weight gradient is (samples as channels, the output gradient as the kernel)."""
    n, c, nd = case["n"], case["c"], len(case["kernel"])
    xt = x.transpose((1, 0) + tuple(range(2, 2 + nd))).reshape((1, c * n) + x.shape[2:])  # (1, C*N, *S)
    wt = g.transpose((1, 0) + tuple(range(2, 2 + nd)))  # (C*m, N, *O)
    return xt, wt, (case["dilation"], case["pads"], case["stride"], (1,) * nd, c)


def _reference(case, x, g):
    """The reference algorithm's weight gradient (its correlation, crops included), in float64."""
    from convlab.ops.algorithms import reference

    xt, wt, args = _correlation(case, x.astype(np.float64), g.astype(np.float64))
    full = reference.conv_general(xt, wt, *args)  # (1, C*m, *K'), K' >= K
    k = case["kernel"]
    return full[(0, slice(None)) + tuple(slice(0, kk) for kk in k)].reshape((case["c"] * case["m"], 1) + k)


@COMPILED
@settings(max_examples=40, deadline=None)
@given(case=layers(), dtype=st.sampled_from([np.float32, np.float64]))
def test_weight_grad_equals_reference(compiled, case, dtype):
    _maybe_numba(compiled)
    x, g = _data(case, dtype)
    got = depthwise.weight_grad(x, g, case["pads"], case["stride"], case["dilation"], case["kernel"],
                                compiled=compiled)
    assert_close(got, _reference(case, x, g).astype(dtype), str(case))


@pytest.mark.parametrize("algorithm", ["depthwise", "depthwise_numpy", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation", "multiplier"), [
    ((13, 11), (3, 3), 1, 1, 1, 1),
    ((9, 17), (7, 7), 1, 3, 1, 2),
    ((15, 14), (3, 5), 2, (1, 2), 1, 1),
    ((12, 12), (3, 3), 1, 2, 2, 1),
    ((7, 7), (3, 3), 1, 1, 1, 1),  # small maps: stacked planes
    ((20, 19), (9, 9), 1, 4, 1, 1),
])
def test_through_the_ops_equals_torch(algorithm, dtype, size, kernel, stride, padding, dilation, multiplier):
    torch = pytest.importorskip("torch")
    if algorithm == "depthwise":
        pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    c = 5
    x = rng.standard_normal((3, c) + size).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    y = F.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    got = F.conv_vjp(g, x, w, **kw, algorithm=algorithm).weight
    xt = torch.from_numpy(x).requires_grad_(False)
    wt = torch.from_numpy(w).requires_grad_(True)
    torch.nn.functional.conv2d(xt, wt, **kw).backward(torch.from_numpy(g))
    assert_close(got, wt.grad.numpy(), f"{algorithm} against torch")


@COMPILED
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["input", "input_edge", "grad_output"])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's own 0 * inf
def test_nan_and_inf_land_where_the_reference_puts_them(compiled, value, where):
    # An inf in the input's last columns meets the zero extra columns of the compiled kernel's grid
    # (0 * inf = NaN) unless that plane takes the row-wise path; an inf in the output gradient meets the
    # zero padding (0 * inf = NaN in the reference too).
    _maybe_numba(compiled)
    case = {"n": 3, "c": 4, "m": 1, "size": (9, 8), "kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1),
            "pads": ((1, 1), (1, 1))}
    for dtype in (np.float32, np.float64):
        x, g = _data(case, dtype, seed=3)
        if where == "input":
            x[1, 2, 4, 3] = value
        elif where == "input_edge":
            x[0, 1, 2, 7] = value  # the last column: read by the grid's extra columns
        else:
            g[2, 0, 0, 0] = value  # its window reaches the padding
        expected = _reference(case, x, g).astype(dtype)
        got = depthwise.weight_grad(x, g, case["pads"], case["stride"], case["dilation"], case["kernel"],
                                    compiled=compiled)
        assert_close(got, expected, f"{where} {value} {dtype}")
        assert (np.isnan(got) == np.isnan(expected)).all() and (np.isinf(got) == np.isinf(expected)).all()


@settings(max_examples=25, deadline=None)
@given(case=layers())
def test_the_correlation_record_equals_the_reference(case):
    # The one-sample correlation the ops would compute (input: samples as channels, kernel: the output
    # gradient), given to the depthwise record's primitive, runs the same kernel on views.
    pytest.importorskip("numba")
    from convlab.ops.algorithms import ALGORITHMS, reference

    x, g = _data(case, np.float64)
    xt, wt, args = _correlation(case, x, g)
    call = Call.of(xt, wt, *args)
    expected = reference.conv_general(xt, wt, *args)
    if depthwise.unsupported(call) is None:
        got = ALGORITHMS["depthwise"](xt, wt, *args)
        assert_close(got, expected)


@COMPILED
def test_extra_memory_is_small(compiled):
    # ConvNeXt-T's 7x7 depthwise layer shape at a smaller batch: the weight gradient's extra memory is the
    # weight-sized result plus per-thread planes (compiled) or one block of padded samples (NumPy), not
    # padded or transposed copies of the input and the output gradient (each 4.8 MB here).
    _maybe_numba(compiled)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 96, 56, 56)).astype(np.float32)
    w = rng.standard_normal((96, 1, 7, 7)).astype(np.float32)
    g = rng.standard_normal((4, 96, 56, 56)).astype(np.float32)
    algorithm = "depthwise" if compiled else "depthwise_numpy"
    F.conv_vjp(g, x, w, padding=3, groups=96, algorithm=algorithm, wrt="weight")  # compile outside the count
    tracemalloc.start()
    try:
        got = F.conv_vjp(g, x, w, padding=3, groups=96, algorithm=algorithm, wrt="weight").weight
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    padded_sample = 96 * 62 * 62 * 4  # the NumPy loop pads one sample at a time here (einsum buffers one more)
    limit = 0.1 * x.nbytes if compiled else 3 * padded_sample
    assert peak < limit, f"{peak:,} bytes"
    assert got.shape == w.shape


def test_auto_reads_it_in_place_where_the_planner_picks_depthwise():
    pytest.importorskip("numba")
    from convlab.ops.algorithms import trace

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 1, 7, 7)).astype(np.float32)
    g = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    with trace() as events:
        got = F.conv_vjp(g, x, w, padding=3, groups=16, wrt="weight").weight
    (event,) = [e for e in events if e.role == "weight_grad"]
    expected = F.conv_vjp(g, x, w, padding=3, groups=16, wrt="weight", algorithm="reference").weight
    assert_close(got, expected)
    # the traced call is the correlation the planner was asked about, and depthwise ran it
    assert event.algorithm == "depthwise"
    assert event.call.batch == 1 and event.call.cg == 2 and event.call.out_size == (7, 7)


def test_bad_channel_counts_are_refused():
    with pytest.raises(ValueError, match="multiple of the input channels"):
        depthwise.weight_grad(np.ones((1, 3, 5, 5)), np.ones((1, 4, 5, 5)), ((1, 1),) * 2, (1, 1), (1, 1), (3, 3))


def test_auto_counts_the_copies_of_the_correlation_route():
    # MobileNetV2's 384-channel 3x3 layer at 14x14: the planner's estimate for the correlation alone may
    # favour another algorithm, but that route pads the input and transposes it and the output gradient
    # (samples as channels); counted, the in-place kernel wins and auto runs it: no copies of the inputs.
    pytest.importorskip("numba")
    from convlab.ops import _conv_common
    from convlab.ops.algorithms import trace

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 384, 14, 14)).astype(np.float32)
    w = rng.standard_normal((384, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 384, 14, 14)).astype(np.float32)
    call = Call((1, 384 * 2, 16, 16), (384, 2, 14, 14), (1, 1), ((0, 0),) * 2, (1, 1), (1, 1), 384,
                np.dtype(np.float32))
    assert _conv_common._in_place_wins(call, "direct", x, g)
    F.conv_vjp(g, x, w, padding=1, groups=384, wrt="weight")  # compile outside the count
    tracemalloc.start()
    try:
        with trace() as events:
            got = F.conv_vjp(g, x, w, padding=1, groups=384, wrt="weight").weight
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.algorithm for e in events if e.role == "weight_grad"] == ["depthwise"]
    assert peak < 0.25 * x.nbytes, f"{peak:,} bytes"
    expected = F.conv_vjp(g, x, w, padding=1, groups=384, wrt="weight", algorithm="reference").weight
    assert_close(got, expected)
