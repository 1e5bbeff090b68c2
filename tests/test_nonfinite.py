"""NaN and inf under the fast algorithms: ``auto`` puts them where the reference does.

The reference is the direct sum: a NaN in a window makes that output NaN, an
inf makes it inf (or NaN where an inf meets a zero or an opposite inf). FFT
and Winograd mix every value of a plane or a tile into every output, so their
records say ``nonfinite_exact=False`` and ``auto`` runs another algorithm on
data that holds NaN or inf; named explicitly they spread them, as documented.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import RECORDS, plan, trace

#: Calls where ``auto`` picks a transform algorithm for finite float32 data (checked below).
TRANSFORM_CALLS = [
    # (x shape, w shape, conv2d keywords, the algorithm auto picks on finite data)
    ((2, 16, 40, 40), (16, 1, 31, 31), dict(padding=15, groups=16), "fft"),
    ((1, 1, 256, 256), (1, 1, 31, 31), dict(padding=15), "fft"),
    ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), "winograd_f4"),
]


def _masks(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.isnan(y), np.isposinf(y), np.isneginf(y)


def _assert_same_nonfinite(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    for name, a, b in zip(("NaN", "+inf", "-inf"), _masks(got), _masks(expected), strict=True):
        assert np.array_equal(a, b), f"{what}: {name} at {int(a.sum())} places, the reference has {int(b.sum())}"


def test_the_records_say_which_algorithms_spread_nonfinite_values():
    assert {name for name, r in RECORDS.items() if not r.nonfinite_exact} == {"fft", "winograd_f2", "winograd_f4"}


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "expected"), TRANSFORM_CALLS)
def test_plan_names_the_algorithm_for_nonfinite_data(x_shape, w_shape, kw, expected):
    p = plan(x_shape, w_shape, **kw)
    if p.algorithm != expected:
        pytest.skip(f"the cost model picks {p.algorithm} here on this machine's BLAS kernels")
    assert p.nonfinite != p.algorithm and RECORDS[p.nonfinite].nonfinite_exact
    assert f"if the input or the weight holds NaN or inf, {p.nonfinite} instead" in p.reason


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "expected"), TRANSFORM_CALLS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["input", "weight"])
def test_auto_puts_nonfinite_values_where_the_reference_does(x_shape, w_shape, kw, expected, value, where):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape[:1] + x_shape[1:2] + x_shape[2:]).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    if x_shape[0] > 2:  # keep the reference affordable: the first two samples
        x = x[:2]
    target = x if where == "input" else w
    target[(0, 0) + tuple(s // 3 for s in target.shape[2:])] = value
    with trace() as events:
        got = F.conv2d(x, w, **kw)
    assert all(RECORDS[e.algorithm].nonfinite_exact for e in events), [e.algorithm for e in events]
    expected_y = F.conv2d(x.astype(np.float64), w.astype(np.float64), algorithm="gemm", **kw)
    _assert_same_nonfinite(got, expected_y, f"auto with {value} in the {where}")
    finite = np.isfinite(expected_y)
    np.testing.assert_allclose(got[finite], expected_y[finite], rtol=2e-3, atol=2e-3)


def test_gradients_keep_nonfinite_values_in_place():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 40, 40)).astype(np.float32)
    w = rng.standard_normal((16, 1, 31, 31)).astype(np.float32)
    g = rng.standard_normal((2, 16, 40, 40)).astype(np.float32)
    g[1, 3, 20, 20] = np.nan
    kw = dict(padding=15, groups=16)
    got = F.conv_vjp(g, x, w, **kw)
    expected = F.conv_vjp(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), algorithm="depthwise",
                          **kw)
    _assert_same_nonfinite(got.input, expected.input, "input gradient")
    _assert_same_nonfinite(got.weight, expected.weight, "weight gradient")


def test_named_transform_algorithms_spread_them_as_documented():
    x = np.ones((1, 1, 64, 64), np.float32)
    x[0, 0, 10, 10] = np.nan
    w = np.ones((1, 1, 31, 31), np.float32)
    spread = F.conv2d(x, w, padding=15, algorithm="fft")
    direct = F.conv2d(x, w, padding=15, algorithm="gemm")
    assert np.isnan(spread).sum() > np.isnan(direct).sum() == 26 * 26  # rows and columns 0..25 see (10, 10)


def test_finite_data_still_gets_the_transform():
    x = np.ones((1, 1, 256, 256), np.float32)
    w = np.ones((1, 1, 31, 31), np.float32)
    p = plan(x.shape, w.shape, padding=15)
    with trace() as events:
        F.conv2d(x, w, padding=15)
    assert [e.algorithm for e in events] == [p.algorithm]


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_random_calls_with_nonfinite_values_match_the_reference(data):
    nd = data.draw(st.integers(1, 2))
    groups = data.draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    k = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    size = tuple(kk + data.draw(st.integers(0, 6)) for kk in k)
    transposed = data.draw(st.booleans())
    stride = data.draw(st.integers(1, 2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal((2, c_in) + size)
    w_shape = (c_in, c_out // groups) + k if transposed else (c_out, c_in // groups) + k
    w = rng.standard_normal(w_shape)
    # Non-finite weights meet the structural zeros (padding, the zeros a transposed convolution inserts)
    # only in the reference's arithmetic, which multiplies them; the other algorithms skip those zeros, as
    # torch's kernels do. So weights get NaN/inf only where no structural zero exists.
    padding = 0 if data.draw(st.booleans()) else 1
    targets = [x] if (transposed and stride > 1) or padding else [x, w]
    for target in targets:
        for _ in range(data.draw(st.integers(0, 2))):
            index = tuple(int(rng.integers(0, s)) for s in target.shape)
            target[index] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if transposed:
        got = F.conv_transpose(x, w, stride=stride, groups=groups)
        expected = F.conv_transpose(x, w, stride=stride, groups=groups, algorithm="reference")
    else:
        got = F.conv(x, w, stride=stride, padding=padding, groups=groups)
        expected = F.conv(x, w, stride=stride, padding=padding, groups=groups, algorithm="reference")
    _assert_same_nonfinite(got, expected, "auto")
