"""The compiled Winograd path's blocks: output-channel blocks (the weight transform fused into them on
small maps, or done once), tile blocks, the NCHW input read through per-tile-row bands (no padded
copy), and crops that must not read what they cut off; each checked against the reference loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from convlab.ops.algorithms import reference
from convlab.ops.algorithms import winograd as winograd_module

from .helpers import assert_close

pytest.importorskip("numba")

TILES = pytest.mark.parametrize("m", [2, 4])


def _reference(x, w, padding, groups):
    return reference.conv_general(x.astype(np.float64), w.astype(np.float64), (1, 1), padding, (1, 1), (1, 1),
                                  groups)


def _compiled(x, w, padding, groups, m):
    return winograd_module.conv_general(x, w, (1, 1), padding, (1, 1), (1, 1), groups, m=m, compiled=True)


@TILES
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("one_tile_block", [True, False], ids=["fused", "weights-once"])
def test_output_channel_blocks_give_the_reference(m, dtype, one_tile_block, monkeypatch):
    # Blocks of 3 output channels per group (og = 7: blocks of 3, 3 and 1), groups of 2; with one
    # block of tiles the weight transform runs per channel block, else once for all blocks.
    monkeypatch.setattr(winograd_module, "CHANNEL_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_CHANNELS", 3)
    if not one_tile_block:
        monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
        monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    blocks = winograd_module._channel_blocks(7, 10, 4, 4)
    assert blocks[0] == (0, 3) and blocks[-1][1] == 7 and len(blocks) == 3
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 10, 9, 11)).astype(dtype)
    w = rng.standard_normal((14, 5, 3, 3)).astype(dtype)
    pads = ((1, 2), (0, 1))
    got = _compiled(x, w, pads, 2, m)
    expected = _reference(x, w, pads, 2)
    assert got.dtype == dtype
    assert_close(got, expected.astype(dtype), f"F({m}) {dtype.__name__}")


@TILES
def test_crops_do_not_read_what_they_cut(m):
    # Negative pads crop the input; the cropped rows and columns hold NaN and inf, which no output reads.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 14, 12))  # padded 11x12: whole tiles overhang both crops
    x[:, :, 0, :] = np.nan  # cropped by the top pad of -1
    x[:, :, -2:, :] = np.inf  # cropped by the bottom pad of -2
    x[:, :, :, -1] = np.nan  # cropped by the right pad of -1
    w = rng.standard_normal((4, 3, 3, 3))
    pads = ((-1, -2), (1, -1))
    got = np.asarray(_compiled(x, w, pads, 1, m))
    expected = _reference(x[:, :, 1:-2, :-1], w, ((0, 0), (1, 0)), 1)
    assert np.isfinite(got).all()
    assert_close(got, expected, f"F({m})")


@TILES
def test_wide_channels_and_a_layer_sized_map(m):
    # 20 channels in, 72 out (the defaults' channel blocks),
    # a 30x30 map with partial tiles: the band and straight-line kernels against the reference, float32.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 20, 30, 29)).astype(np.float32)
    w = rng.standard_normal((72, 20, 3, 3)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    assert_close(_compiled(x, w, pads, 1, m), _reference(x, w, pads, 1).astype(np.float32), f"F({m})")


def _pipelined(x, w, padding, groups, m, threads):
    """conv_general's one-tile-block path with ``threads`` per-thread pipelines (whatever numba's count)."""
    from convlab.ops.algorithms import _products
    from convlab.ops.algorithms._layout import Call

    call = Call.of(x, w, (1, 1), padding, (1, 1), (1, 1), groups)
    kernels = winograd_module._load_kernels()
    y = np.empty((call.batch,) + call.out_size + (call.c_out,), dtype=call.dtype)
    with _products.split_products(threads):
        winograd_module._pipelines(kernels, call, np.ascontiguousarray(x), w, y, m, threads)
    return y.transpose(0, 3, 1, 2)


@TILES
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_thread_pipelines_give_the_reference_and_the_one_thread_results(m, threads, groups, dtype, monkeypatch):
    # Small maps (one block of tiles) on several threads: each thread transforms, multiplies and writes its
    # own output channels. Blocks of one channel (og = 7: shares of 4 and 3 or 3, 2 and 2); NaN and inf
    # included: they spread over their tiles exactly as in the one-thread loop (narrower GEMMs: equal to rounding).
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(winograd_module, "CHANNEL_BLOCK_BYTES", 1)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 10, 9, 11)).astype(dtype)
    w = rng.standard_normal((7 * groups, 10 // groups, 3, 3)).astype(dtype)
    pads = ((1, 1), (1, 0))
    got = _pipelined(x, w, pads, groups, m, threads)
    assert_close(got, _reference(x, w, pads, groups).astype(dtype), f"F({m}) {threads} threads")
    x[0, 3, 4, 5], x[1, 0, 0, 0] = np.nan, np.inf
    with np.errstate(invalid="ignore"):  # inf * 0 in the products
        got = _pipelined(x, w, pads, groups, m, threads)
        serial = winograd_module.conv_general(x, w, (1, 1), pads, (1, 1), (1, 1), groups, m=m)
        monkeypatch.setattr(winograd_module, "products_available", lambda: False)  # the one-thread loop
        loop = winograd_module.conv_general(x, w, (1, 1), pads, (1, 1), (1, 1), groups, m=m)
    for result in (got, serial):  # the same outputs NaN (and inf), the others equal to rounding
        np.testing.assert_array_equal(np.isnan(result), np.isnan(loop))
        np.testing.assert_array_equal(np.isinf(result), np.isinf(loop))
        assert_close(np.where(np.isfinite(loop), result, 0), np.where(np.isfinite(loop), loop, 0), "pipelines")
    assert np.isnan(got).any() and np.isfinite(got).any()


@TILES
def test_fewer_channel_blocks_than_threads_are_split(m):
    # One channel block by the defaults (8 output channels), three threads: blocks of 3, 3 and 2.
    pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    got = _pipelined(x, w, ((1, 1), (1, 1)), 1, m, 3)
    assert_close(got, _reference(x, w, ((1, 1), (1, 1)), 1).astype(np.float32), f"F({m})")


@TILES
@pytest.mark.parametrize("groups", [1, 2])
def test_tile_block_shares_give_the_one_thread_numbers(m, groups, monkeypatch):
    # Several blocks of tiles on several threads: each thread transforms, multiplies and writes its own
    # blocks (the same GEMM per matrix and block as the stack split among threads: the same numbers), NaN
    # and inf spreading over their tiles alike. Runs where numba has two or more threads (the default here).
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(winograd_module, "COMPILED_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "MIN_TILES", 1)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 6, 13, 10)).astype(np.float32)
    w = rng.standard_normal((4 * groups, 6 // groups, 3, 3)).astype(np.float32)
    x[1, 2, 5, 5], x[2, 0, 12, 9] = np.nan, np.inf
    pads = ((1, 1), (1, 1))
    with np.errstate(invalid="ignore"):
        monkeypatch.setattr(winograd_module, "TILE_SHARES", True)
        shared = winograd_module.conv_general(x, w, (1, 1), pads, (1, 1), (1, 1), groups, m=m)
        monkeypatch.setattr(winograd_module, "TILE_SHARES", False)
        split = winograd_module.conv_general(x, w, (1, 1), pads, (1, 1), (1, 1), groups, m=m)
    np.testing.assert_array_equal(shared, split)
    finite = np.isfinite(split)
    assert not finite.all() and finite.any()
    expected = _reference(np.nan_to_num(x, nan=0.0, posinf=0.0), w, pads, groups).astype(np.float32)
    clean = np.isfinite(shared)
    np.testing.assert_allclose(shared[clean], expected[clean], rtol=2e-5, atol=2e-5 * np.abs(expected).max())
