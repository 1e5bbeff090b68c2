"""Winograd's weight gradient (``winograd.weight_grad``, the adjoint of F(m x m, 3x3)) and the ops' use of it.

Checked against the reference algorithm's weight gradient (float64 and float32, groups, odd sizes that
leave partial tiles, several tile blocks), through ``conv_vjp`` with the algorithm named and with
``auto``, and with NaN / inf in the data (``auto`` then keeps the direct GEMM: the result equals the
reference's IEEE propagation).
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as F
from convlab.ops.algorithms import winograd as winograd_module
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

pytest.importorskip("numba")

TILES = pytest.mark.parametrize("m", [2, 4])


def _case(shape, c_out, groups, padding, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c_out, shape[1] // groups, 3, 3)).astype(dtype)
    y = F.conv2d(x, w, padding=padding, groups=groups, algorithm="reference")
    gy = rng.standard_normal(y.shape).astype(dtype)
    return x, w, gy


def _reference_grad(x, w, gy, padding, groups):
    f64 = [a.astype(np.float64) for a in (x, w, gy)]
    return F.conv_vjp(f64[2], f64[0], f64[1], padding=padding, groups=groups, algorithm="reference").weight


@TILES
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "c_out", "groups", "padding"), [
    ((2, 6, 9, 11), 4, 2, 1),  # groups, partial tiles on both axes
    ((3, 5, 13, 10), 7, 1, 0),  # no padding: the output gradient is 11x8
    ((1, 3, 3, 3), 2, 1, 0),  # a single output: one tile, mostly overhang
])
def test_weight_grad_equals_the_reference(m, dtype, shape, c_out, groups, padding):
    x, w, gy = _case(shape, c_out, groups, padding, dtype)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    got = winograd_module.weight_grad(xp, gy, groups, m)
    assert got.dtype == dtype and got.shape == w.shape
    expected = _reference_grad(x, w, gy, padding, groups)
    assert_close(got, expected.astype(dtype), f"F({m}) {np.dtype(dtype).name}")


@TILES
def test_weight_grad_over_several_tile_blocks(m, monkeypatch):
    # Blocks of one tile row: each block's products are added into dU.
    monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    x, w, gy = _case((2, 4, 10, 9), 5, 1, 1, np.float64, seed=3)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert_close(winograd_module.weight_grad(xp, gy, 1, m), _reference_grad(x, w, gy, 1, 1))


@TILES
def test_float32_layer_sized_gradient_within_the_suite_tolerance(m):
    # 64 channels, 24x24, batch 4: sums over 2304 positions per weight, against the float64 reference.
    x, w, gy = _case((4, 64, 24, 24), 32, 1, 1, np.float32, seed=5)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    got = winograd_module.weight_grad(xp, gy, 1, m)
    expected = _reference_grad(x, w, gy, 1, 1)
    assert_close(got, expected.astype(np.float32), f"F({m})")
    assert np.max(np.abs(got - expected)) <= 2e-5 * np.abs(expected).max()


@TILES
def test_conv_vjp_with_winograd_named_uses_it(m):
    x, w, gy = _case((2, 6, 10, 7), 8, 2, 1, np.float32, seed=7)
    from convlab.ops.algorithms.trace import trace

    with trace() as events:
        got = F.conv_vjp(gy, x, w, padding=1, groups=2, algorithm=f"winograd_f{m}")
    assert any(e.role == "weight_grad" and e.algorithm == f"winograd_f{m}" for e in events)
    expected = F.conv_vjp(gy, x, w, padding=1, groups=2, algorithm="reference")
    assert_close(got.weight, expected.weight, "weight gradient")
    assert_close(got.input, expected.input, "input gradient")


def test_auto_takes_winograd_where_estimated_faster_and_only_on_finite_data():
    # A 64-channel 3x3 layer at 32x32: the estimate prefers F(4x4) to the direct GEMM.
    call = Call((64, 4, 34, 34), (64, 4, 32, 32), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, np.dtype(np.float32))
    assert winograd_module.weight_grad_tile(call, "auto") in (2, 4)
    assert winograd_module.weight_grad_tile(call, "gemm") is None
    strided = call._replace(dilation=(2, 2))  # the forward's stride 2
    assert winograd_module.weight_grad_tile(strided, "winograd_f4") is None
    x, w, gy = _case((4, 64, 32, 32), 64, 1, 1, np.float32, seed=9)
    x[1, 3, 5, 6] = np.nan
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert winograd_module.weight_grad_tile(call, "auto", xp, gy) is None
    got = F.conv_vjp(gy, x, w, padding=1, algorithm="auto", wrt="weight").weight
    nan_rows = np.isnan(got)
    assert nan_rows[:, 3].all() and not nan_rows[:, :3].any()  # only channel 3's weights see the NaN
