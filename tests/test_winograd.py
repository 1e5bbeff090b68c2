"""Winograd's two paths, the compiled transforms (numba, the ``fast`` extra) and the NumPy pipeline,
equal the reference.

``winograd_f2``/``winograd_f4`` run 2-D float32/float64 calls (and 3-D ones with
one group: tests/test_winograd3d.py) on the compiled
transforms of :mod:`convlab.ops.algorithms._winograd_numba` when numba
imports, and everything else (1-D, grouped 3-D, complex, the error bound's run on
absolute values, every call without numba) on the NumPy pipeline;
``conv_general(..., compiled=False)`` forces the NumPy one. Each path is
checked against the reference loops on random 2-D calls (groups, odd sizes
that leave partial tiles, negative pads), in float64 to the suite's
tolerance, in float32 against the float64 reference, against Winograd's
rigorous error bound, with blocks of one tile row, and on non-contiguous
inputs. The compiled cases skip when numba is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import reference
from convlab.ops.algorithms import winograd as winograd_module
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

PATHS = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
TILES = pytest.mark.parametrize("m", [2, 4])


def _run(compiled: bool):
    """The primitive on one path; the compiled one skips without numba."""
    if compiled:
        pytest.importorskip("numba")

    def run(x, w, padding, groups, m):
        call = Call.of(x, w, (1, 1), padding, (1, 1), (1, 1), groups)
        assert winograd_module.uses_numba(call) == compiled or not compiled
        return winograd_module.conv_general(x, w, (1, 1), padding, (1, 1), (1, 1), groups, m=m, compiled=compiled)

    return run


@st.composite
def calls_2d(draw):
    """A 2-D 3x3 stride-1 call: groups, sizes that leave partial tiles, pads from -1 (crop) to 2."""
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size, pads = [], []
    for _ in range(2):
        s = draw(st.integers(1, 11))
        lo = draw(st.integers(-min(1, s - 1), 2))
        hi = draw(st.integers(-min(1, s + lo - 1), 2))
        if s + lo + hi < 3:
            hi = 3 - s - lo
        size.append(s)
        pads.append((lo, hi))
    return dict(x_shape=(draw(st.integers(1, 3)), groups * cg) + tuple(size), w_shape=(groups * og, cg, 3, 3),
                padding=tuple(pads), groups=groups, seed=draw(st.integers(0, 2**16)))


def _arrays(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    return rng.standard_normal(case["x_shape"]).astype(dtype), rng.standard_normal(case["w_shape"]).astype(dtype)


def _reference(x, w, padding, groups):
    return reference.conv_general(x.astype(np.float64), w.astype(np.float64), (1, 1), padding, (1, 1), (1, 1),
                                  groups)


@PATHS
@TILES
@settings(max_examples=30, deadline=None)
@given(case=calls_2d())
def test_float64_equals_reference(compiled, m, case):
    x, w = _arrays(case)
    got = _run(compiled)(x, w, case["padding"], case["groups"], m)
    assert_close(got, _reference(x, w, case["padding"], case["groups"]), f"F({m}) compiled={compiled} {case}")


@PATHS
@TILES
@settings(max_examples=20, deadline=None)
@given(case=calls_2d())
def test_float32_within_the_suite_tolerance(compiled, m, case):
    x, w = _arrays(case, np.float32)
    got = _run(compiled)(x, w, case["padding"], case["groups"], m)
    assert got.dtype == np.float32
    assert_close(got, _reference(x, w, case["padding"], case["groups"]).astype(np.float32), f"F({m}) float32")


@PATHS
@TILES
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 64, 300])
def test_error_within_the_bound(compiled, m, dtype, channels):
    # The rigorous bound of winograd.py (gamma_(2 alpha^2 + C + 1) times the algorithm on absolute values)
    # holds for the compiled transforms too: they sum the same products in another order (alpha terms twice).
    rng = np.random.default_rng(channels * m)
    x = rng.standard_normal((2, channels, 13, 10)).astype(dtype)
    w = rng.standard_normal((5, channels, 3, 3)).astype(dtype)
    pads = ((1, 1), (1, 1))
    exact = _reference(x, w, pads, 1)
    got = _run(compiled)(x, w, pads, 1, m)
    bound = winograd_module.error_bound(x, w, pads, 1, m)
    error = np.abs(got.astype(np.float64) - exact)
    rounding = np.finfo(dtype).eps / 2 * np.abs(exact)
    assert np.all(error <= bound + rounding), f"worst ratio {np.max(error / (bound + rounding)):.3g}"
    if dtype == np.float32:
        assert np.max(error) <= 2e-5 * np.abs(exact).max()


@TILES
def test_paths_agree_on_a_real_layer_shape(m):
    # A ResNet-like block (64 channels, 20x20, batch 2) in float32: the two paths and the reference.
    pytest.importorskip("numba")
    rng = np.random.default_rng(m)
    x = rng.standard_normal((2, 64, 20, 20)).astype(np.float32)
    w = rng.standard_normal((48, 64, 3, 3)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    expected = _reference(x, w, pads, 1).astype(np.float32)
    compiled = _run(True)(x, w, pads, 1, m)
    numpy_path = _run(False)(x, w, pads, 1, m)
    assert_close(compiled, expected, "compiled")
    assert_close(numpy_path, expected, "numpy")


@PATHS
@TILES
def test_blocks_of_one_tile_row_give_the_same_numbers(compiled, m, monkeypatch):
    monkeypatch.setattr(winograd_module, "BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 11, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    pads = ((2, 0), (1, 2))
    assert_close(_run(compiled)(x, w, pads, 2, m), _reference(x, w, pads, 2))


@PATHS
def test_non_contiguous_and_mixed_inputs(compiled):
    # A channels-last view (what a previous layer returns), a transposed weight, float32 x with float64 w.
    rng = np.random.default_rng(11)
    x = np.moveaxis(rng.standard_normal((2, 9, 8, 5)), -1, 1)  # (2, 5, 9, 8), not C-contiguous
    w = np.ascontiguousarray(rng.standard_normal((3, 3, 5, 4)).transpose(3, 2, 0, 1))  # (4, 5, 3, 3)
    w = w.transpose(0, 1, 3, 2)  # a transposed view
    pads = ((1, 1), (0, 1))
    expected = _reference(x, w, pads, 1)
    assert_close(_run(compiled)(x, w, pads, 1, 4), expected)
    x32 = x.astype(np.float32)
    got = _run(compiled)(x32, w, pads, 1, 2)  # result dtype float64, as NumPy promotes
    assert_close(got, _reference(x32, w, pads, 1))
    w16 = w.astype(np.float16)
    got = _run(compiled)(x32, w16, pads, 1, 4)  # float32 result; the float16 weight is cast exactly
    assert_close(got, _reference(x32, w16, pads, 1).astype(np.float32))


def test_which_calls_run_compiled():
    pytest.importorskip("numba")

    def call(shape, dtype):
        nd = len(shape) - 2
        return Call.of(shape, shape[:2] + (3,) * nd, (1,) * nd, ((1, 1),) * nd, (1,) * nd, (1,) * nd, 1, dtype)

    assert winograd_module.uses_numba(call((1, 2, 8, 8), np.float32))
    assert winograd_module.uses_numba(call((1, 2, 8, 8), np.float64))
    assert not winograd_module.uses_numba(call((1, 2, 8, 8), np.complex128))
    assert not winograd_module.uses_numba(call((1, 2, 8), np.float32))  # 1-D: the NumPy pipeline
    assert winograd_module.uses_numba(call((1, 2, 4, 4, 4), np.float32))  # 3-D, one group: frames (compiled)
    grouped = Call.of((1, 2, 4, 4, 4), (2, 1, 3, 3, 3), (1,) * 3, ((1, 1),) * 3, (1,) * 3, (1,) * 3, 2, np.float32)
    assert not winograd_module.uses_numba(grouped)


@TILES
def test_through_the_ops_forward_and_input_gradient(m):
    # conv2d and its input gradient (a stride-1 3x3 call again) with the algorithm named, against the reference.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 10, 7)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    algorithm = f"winograd_f{m}"
    y = F.conv2d(x, w, padding=1, groups=2, algorithm=algorithm)
    assert_close(y, F.conv2d(x, w, padding=1, groups=2, algorithm="reference"))
    g = rng.standard_normal(y.shape).astype(np.float32)
    got = F.conv_vjp(g, x, w, padding=1, groups=2, algorithm=algorithm)
    expected = F.conv_vjp(g, x, w, padding=1, groups=2, algorithm="reference")
    assert_close(got.input, expected.input, "input gradient")
    assert_close(got.weight, expected.weight, "weight gradient")


@PATHS
def test_nonfinite_inputs_spread_within_tiles_only(compiled):
    # The record says nonfinite_exact=False: a NaN reaches the outputs of its tiles (auto avoids such
    # data), but outputs whose tiles do not read it stay the reference's.
    x = np.ones((1, 2, 12, 12))
    x[0, 1, 0, 0] = np.nan
    w = np.ones((3, 2, 3, 3))
    pads = ((1, 1), (1, 1))
    got = np.asarray(_run(compiled)(x, w, pads, 1, 4))
    expected = _reference(np.nan_to_num(x), w, pads, 1)
    assert np.isnan(got[0, :, 0, 0]).all()
    np.testing.assert_allclose(got[0, :, 4:, 4:], expected[0, :, 4:, 4:], rtol=1e-12)
    assert not winograd_module.ALGORITHM_F4.nonfinite_exact


def test_without_numba_every_call_takes_the_numpy_pipeline(monkeypatch):
    # What a machine without the `fast` extra runs: uses_numba is False and the results still equal the reference.
    monkeypatch.setattr(winograd_module, "_kernels", False)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    assert not winograd_module.uses_numba(Call.of(x, w, (1, 1), pads, (1, 1), (1, 1), 1))
    for m in (2, 4):
        got = winograd_module.conv_general(x, w, (1, 1), pads, (1, 1), (1, 1), 1, m=m)
        assert_close(got, _reference(x, w, pads, 1).astype(np.float32), f"F({m}) without numba")
