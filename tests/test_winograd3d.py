"""The compiled 3-D Winograd path (3x3x3, one group): each output frame is the sum over the three depth
taps of 2-D F(m x m, 3x3) convolutions of the input frames, joined in the Winograd domain as
``3 C_in`` stacked channels (:func:`convlab.ops.algorithms.winograd._run_compiled_3d`).

Checked against the reference loops (float64 to the suite's tolerance, float32 against the float64
reference), the NumPy pipeline, torch's conv3d, asymmetric and negative depth pads, odd sizes that
leave partial tiles, blocks of one tile row and of a few output channels, NaN and inf (they stay in
their tiles' frames), and the ops with the algorithm named (forward and gradients).
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as F
from convlab.ops.algorithms import reference
from convlab.ops.algorithms import winograd as winograd_module
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

pytest.importorskip("numba")

TILES = pytest.mark.parametrize("m", [2, 4])
ONE = (1, 1, 1)


def _reference(x, w, padding):
    return reference.conv_general(x.astype(np.float64), w.astype(np.float64), ONE, padding, ONE, ONE, 1)


def _compiled(x, w, padding, m, compiled=True):
    call = Call.of(x, w, ONE, padding, ONE, ONE, 1)
    assert winograd_module.uses_numba(call)
    return winograd_module.conv_general(x, w, ONE, padding, ONE, ONE, 1, m=m, compiled=compiled)


CASES = [
    ((2, 5, 4, 9, 11), (7, 5), ((1, 1), (1, 1), (1, 1))),
    ((1, 3, 6, 7, 8), (4, 3), ((0, 2), (2, 0), (-1, 1))),  # asymmetric pads, a crop of the width
    ((1, 2, 3, 5, 5), (3, 2), ((-1, 0), (1, 2), (0, 0))),  # a depth crop: frame 0 is never read
    ((2, 1, 1, 3, 4), (1, 1), ((1, 1), (0, 0), (0, 1))),  # one frame, one channel
]


@TILES
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, channels, pads", CASES)
def test_equals_the_reference_and_the_numpy_pipeline(m, dtype, shape, channels, pads):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((channels[0], channels[1], 3, 3, 3)).astype(dtype)
    got = _compiled(x, w, pads, m)
    expected = _reference(x, w, pads)
    assert got.dtype == dtype and got.shape == expected.shape
    assert_close(got, expected.astype(dtype), f"F({m}) {np.dtype(dtype).name}")
    assert_close(got, np.asarray(_compiled(x, w, pads, m, compiled=False)), "against the NumPy pipeline")


@TILES
def test_blocks_of_rows_and_channels(m, monkeypatch):
    # One tile row per block and output-channel blocks of 3 (7 channels: 3, 3, 1), on a non-contiguous input.
    monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    monkeypatch.setattr(winograd_module, "CHANNEL_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_CHANNELS", 3)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 5, 13, 9)).transpose(0, 1, 2, 4, 3)  # (2, 4, 5, 9, 13), strided
    w = rng.standard_normal((7, 4, 3, 3, 3))
    pads = ((2, 1), (1, 1), (0, 2))
    assert_close(_compiled(x, w, pads, m), _reference(x, w, pads))


@TILES
def test_against_torch_conv3d(m):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 5, 10, 7)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3, 3)).astype(np.float32)
    got = F.conv3d(x, w, padding=1, algorithm=f"winograd_f{m}")
    expected = torch.nn.functional.conv3d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=1)
    assert_close(np.asarray(got), expected.numpy().astype(np.float32))


@TILES
def test_nonfinite_values_stay_in_their_tiles_frames(m):
    # A NaN in input frame 2 and an inf in frame 0 reach only output frames 0..3 (depth taps), and within
    # them the outputs of the tiles that read them; every other output equals the reference.
    x = np.ones((1, 2, 7, 12, 12))
    x[0, 1, 2, 0, 0] = np.nan
    x[0, 0, 0, 11, 11] = np.inf
    w = np.ones((3, 2, 3, 3, 3))
    pads = ((1, 1), (1, 1), (1, 1))
    with np.errstate(invalid="ignore"):
        got = np.asarray(_compiled(x, w, pads, m))
    expected = _reference(np.nan_to_num(x, posinf=0.0), w, pads)
    assert np.isnan(got[0, :, 1:4, 0, 0]).all()
    assert not np.isfinite(got[0, :, 0:2, 11, 11]).any()
    np.testing.assert_allclose(got[0, :, 4:], expected[0, :, 4:], rtol=1e-12)
    np.testing.assert_allclose(got[0, :, :, 4:8, 4:8], expected[0, :, :, 4:8, 4:8], rtol=1e-12)


@TILES
def test_through_the_ops_forward_and_gradients(m):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3, 3)).astype(np.float32)
    algorithm = f"winograd_f{m}"
    y = F.conv3d(x, w, padding=1, algorithm=algorithm)
    assert_close(y, F.conv3d(x, w, padding=1, algorithm="reference"))
    g = rng.standard_normal(y.shape).astype(np.float32)
    got = F.conv_vjp(g, x, w, padding=1, algorithm=algorithm)
    expected = F.conv_vjp(g, x, w, padding=1, algorithm="reference")
    assert_close(got.input, expected.input, "input gradient")
    assert_close(got.weight, expected.weight, "weight gradient")


def test_estimate_counts_frames_and_taps():
    # The estimate follows the frames' tiles: it grows with the frames and with the channels.
    def seconds(depth, channels):
        call = Call.of((2, channels, depth, 24, 24), (channels, channels, 3, 3, 3), ONE, ((1, 1),) * 3, ONE, ONE, 1,
                       np.float32)
        return winograd_module.estimate(call, 4).seconds

    assert seconds(8, 32) > 1.8 * seconds(4, 32)
    assert seconds(4, 64) > 2 * seconds(4, 32)
    assert "depth taps" in winograd_module.estimate(
        Call.of((1, 2, 3, 8, 8), (2, 2, 3, 3, 3), ONE, ((1, 1),) * 3, ONE, ONE, 1, np.float32), 4).terms


# --------------------------------------------------------------------------- the weight gradient (3-D)


def _weight_grad_reference(xp, gy):
    """``gw[o, c, a, b, d] = sum gy[n, o, p, q, r] xp[n, c, p + a, q + b, r + d]`` in float64, by the taps."""
    od, oh, ow = gy.shape[2:]
    gw = np.zeros((gy.shape[1], xp.shape[1], 3, 3, 3))
    for a in range(3):
        for b in range(3):
            for d in range(3):
                window = xp[:, :, a:a + od, b:b + oh, d:d + ow].astype(np.float64)
                gw[:, :, a, b, d] = np.einsum("nopqr,ncpqr->oc", gy.astype(np.float64), window)
    return gw


@TILES
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, c_out", [((2, 5, 6, 9, 11), 7), ((1, 3, 3, 7, 8), 4), ((1, 1, 4, 3, 6), 1)])
def test_weight_grad_equals_the_reference(m, dtype, shape, c_out):
    rng = np.random.default_rng(sum(shape) + c_out)
    xp = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal((shape[0], c_out) + tuple(s - 2 for s in shape[2:])).astype(dtype)
    got = winograd_module.weight_grad(xp, gy, 1, m)
    assert got.dtype == dtype
    assert_close(got, _weight_grad_reference(xp, gy).astype(dtype), f"F({m}) {np.dtype(dtype).name}")


@TILES
def test_weight_grad_over_blocks_of_tile_rows(m, monkeypatch):
    monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    rng = np.random.default_rng(8)
    xp = rng.standard_normal((2, 3, 5, 13, 10))
    gy = rng.standard_normal((2, 4, 3, 11, 8))
    assert_close(winograd_module.weight_grad(xp, gy, 1, m), _weight_grad_reference(xp, gy))


@TILES
def test_conv_vjp_3d_with_winograd_named_uses_it_and_equals_torch(m):
    torch = pytest.importorskip("torch")
    from convlab.ops.algorithms.trace import trace

    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 5, 9, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 6, 5, 9, 6)).astype(np.float32)
    with trace() as events:
        got = F.conv_vjp(gy, x, w, padding=1, algorithm=f"winograd_f{m}", wrt="weight").weight
    assert any(e.role == "weight_grad" and e.algorithm == f"winograd_f{m}" for e in events)
    xt = torch.from_numpy(x).double()
    expected = torch.nn.grad.conv3d_weight(xt, w.shape, torch.from_numpy(gy).double(), padding=1)
    assert_close(got, expected.numpy().astype(np.float32))


def test_weight_grad_3d_auto_on_finite_data_only():
    # A 32-channel 3x3x3 layer at 6x24x24: auto's estimate prefers Winograd to the direct GEMM; a NaN keeps it off.
    call = Call((32, 2, 8, 26, 26), (32, 2, 6, 24, 24), ONE, ((0, 0),) * 3, ONE, ONE, 1, np.dtype(np.float32))
    assert winograd_module.weight_grad_tile(call, "auto") in (2, 4)
    grouped = Call((16, 4, 8, 26, 26), (32, 2, 6, 24, 24), ONE, ((0, 0),) * 3, ONE, ONE, 2, np.dtype(np.float32))
    assert winograd_module.weight_grad_tile(grouped, "winograd_f4") is None  # 3-D: one group only
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 32, 6, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 32, 6, 24, 24)).astype(np.float32)
    x[1, 3, 2, 5, 6] = np.nan
    xp = np.pad(x, ((0, 0), (0, 0)) + ((1, 1),) * 3)
    assert winograd_module.weight_grad_tile(call, "auto", xp, gy) is None
    got = F.conv_vjp(gy, x, w, padding=1, algorithm="auto", wrt="weight").weight
    nan = np.isnan(got)
    assert nan[:, 3].all() and not nan[:, :3].any() and not nan[:, 4:].any()  # only channel 3's weights see it


@TILES
@pytest.mark.parametrize("shares", [True, False], ids=["per-thread shares", "split products"])
def test_per_thread_units_and_split_products_agree(m, shares, monkeypatch):
    # On several threads (numba's default here) each thread takes (sample, block of tile rows) units of its
    # own; with the shares off, every kernel and product stack is split among the threads. One sample (its
    # tile rows split among the threads), NaN and inf included: the same outputs non-finite, the rest equal
    # to the reference.
    if not shares:
        monkeypatch.setattr(winograd_module, "products_available", lambda: False)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 3, 5, 17, 9))
    x[0, 1, 2, 9, 4], x[0, 2, 4, 0, 8] = np.nan, np.inf
    w = rng.standard_normal((4, 3, 3, 3, 3))
    pads = ((1, 1), (1, 1), (1, 1))
    with np.errstate(invalid="ignore"):
        got = np.asarray(_compiled(x, w, pads, m))
        monkeypatch.setattr(winograd_module, "products_available", lambda: False)
        split = np.asarray(_compiled(x, w, pads, m))
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(split))
    finite = np.isfinite(got)
    assert finite.any() and not finite.all()
    expected = _reference(np.nan_to_num(x, nan=0.0, posinf=0.0), w, pads)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@TILES
@pytest.mark.parametrize("shares", [True, False], ids=["per-thread shares", "split products"])
def test_weight_grad_per_thread_units_and_split_products(m, shares, monkeypatch):
    # One sample whose tile rows split among the threads (numba's default count here), each share adding into
    # a dU of its own, or every product stack split among the threads: both equal the reference.
    if not shares:
        monkeypatch.setattr(winograd_module, "products_available", lambda: False)
    rng = np.random.default_rng(14)
    xp = rng.standard_normal((1, 3, 6, 19, 9))
    gy = rng.standard_normal((1, 5, 4, 17, 7))
    assert_close(winograd_module.weight_grad(xp, gy, 1, m), _weight_grad_reference(xp, gy))
