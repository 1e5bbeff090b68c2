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
