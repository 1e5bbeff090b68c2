"""The ``direct`` algorithm: compiled direct sums equal to the reference on every kind of call, NaN/inf included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.ops.algorithms import ALGORITHMS, RECORDS, Call, direct, plan, reference, trace

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@st.composite
def calls(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4 if nd < 3 else 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    input_dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size, pads = [], []
    for k, d, ld in zip(kernel, dilation, input_dilation, strict=True):
        s = draw(st.integers(1, 7 if nd < 3 else 4))
        length = (s - 1) * ld + 1
        lo = draw(st.integers(-min(2, length - 1), 3))
        hi = draw(st.integers(-min(2, length + lo - 1), 3))
        extent = d * (k - 1) + 1
        if length + lo + hi < extent:
            hi = extent - length - lo
        size.append(s)
        pads.append((lo, hi))
    batch = draw(st.integers(1, 3))
    return ((batch, groups * cg) + tuple(size), (groups * og, cg) + kernel,
            (stride, tuple(pads), dilation, input_dilation, groups), draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None)
@given(case=calls())
def test_equals_reference(dtype, case):
    x_shape, w_shape, args, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    got = direct.conv_general(x, w, *args)
    expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL[dtype])


@settings(max_examples=25, deadline=None)
@given(case=calls())
def test_integers_exact_and_complex(case):
    x_shape, w_shape, args, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.integers(-50, 50, x_shape), rng.integers(-50, 50, w_shape)
    np.testing.assert_array_equal(direct.conv_general(x, w, *args), reference.conv_general(x, w, *args))
    xc, wc = x + 1j * rng.standard_normal(x_shape), w + 1j * rng.standard_normal(w_shape)
    np.testing.assert_allclose(direct.conv_general(xc, wc, *args), reference.conv_general(xc, wc, *args),
                               rtol=1e-12, atol=1e-9)


# LeNet's primitive calls (batch cut to 8): the forward of the second layer, its input gradient, and the
# two weight gradients' correlations, each on the kernel the training step sends it to.
LENET = [
    ((8, 6, 14, 14), (16, 6, 5, 5), ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1), "flat"),
    ((8, 16, 10, 10), (6, 16, 5, 5), ((1, 1), ((4, 4), (4, 4)), (1, 1), (1, 1), 1), "flat"),
    ((1, 8, 32, 32), (6, 8, 28, 28), ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1), "weight_grad"),
    ((6, 8, 14, 14), (16, 8, 10, 10), ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1), "weight_grad"),
    ((8, 3, 15, 15), (4, 3, 3, 3), ((2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 1), "rows"),
]


@pytest.mark.parametrize("x_shape, w_shape, args, kernel", LENET)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_kernel_on_lenet_shapes(x_shape, w_shape, args, kernel, dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    assert direct.compiled_kernel(Call.of(x, w, *args)) == kernel
    expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args)
    np.testing.assert_allclose(direct.conv_general(x, w, *args), expected, **TOL[dtype])


@pytest.mark.parametrize("x_shape, w_shape, args, kernel", LENET)
def test_nan_and_inf_land_where_the_reference_puts_them(x_shape, w_shape, args, kernel):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    x[0, 0, 3, 4], x[-1, -1, -1, -1], w[0, 0, 0, 1] = np.nan, np.inf, -np.inf  # the last column too
    expected = reference.conv_general(x, w, *args)
    got = direct.conv_general(x, w, *args)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)
    assert RECORDS["direct"].nonfinite_exact


def test_record_and_auto_choice_on_lenet_first_layer_weight_gradient():
    record = RECORDS["direct"]
    assert record.exact_integers and record.automatic and ALGORITHMS["direct"] is direct.conv_general
    p = plan((1, 256, 32, 32), (6, 256, 28, 28))  # LeNet's first weight gradient, as the primitive sees it
    assert "direct" in p.estimates
    assert p.estimates["direct"] < p.estimates["col2im"]


def test_named_through_the_ops_and_traced():
    import convlab.functional as F

    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    with trace() as events:
        y = F.conv2d(x, w, padding=1, algorithm="direct")
    assert [e.algorithm for e in events] == ["direct"]
    np.testing.assert_allclose(y, F.conv2d(x, w, padding=1, algorithm="reference"), rtol=1e-12, atol=1e-12)


def test_numpy_path_without_numba(monkeypatch):
    monkeypatch.setattr(direct, "_kernels", False)  # as if numba did not import
    assert not direct.numba_available()
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((6, 2, 3, 3))
    args = ((2, 1), ((1, 0), (2, 1)), (1, 2), (1, 1), 2)
    call = Call.of(x, w, *args)
    assert not direct.uses_numba(call) and "einsum" in direct.estimate(call).terms
    np.testing.assert_allclose(direct.conv_general(x, w, *args), reference.conv_general(x, w, *args),
                               rtol=1e-12, atol=1e-12)
