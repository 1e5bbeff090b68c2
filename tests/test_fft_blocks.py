"""The FFT path streams its spectra in blocks: any block size gives the reference's numbers."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from convlab.ops.algorithms import ALGORITHMS, reference
from tests.helpers import assert_close

fft_module = importlib.import_module("convlab.ops.algorithms.fft")

CASES = [
    # x shape, w shape, stride, padding pairs, dilation, input dilation, groups
    ((3, 4, 9, 8), (6, 2, 3, 3), (1, 1), ((1, 2), (0, 1)), (1, 1), (1, 1), 2),  # per-frequency GEMMs
    ((3, 4, 9, 8), (8, 1, 5, 3), (2, 1), ((2, 2), (-1, 1)), (1, 2), (1, 1), 4),  # depthwise, multiplier 2
    ((2, 6, 7), (2, 3, 4), (1,), ((3, 3),), (2,), (2,), 2),  # one filter per group, input dilation
    ((1, 8, 10, 10), (2, 4, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 2),  # a depthwise weight gradient
    ((4, 6, 5, 5), (3, 2, 2, 2), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 3),
    ((2, 3, 4, 5, 4), (3, 1, 2, 3, 2), (1, 2, 1), ((1, 0), (1, 1), (0, 2)), (1, 1, 2), (1, 1, 1), 3),
]


@pytest.mark.parametrize("block", [1, 3000, 10**9])
@pytest.mark.parametrize("case", CASES)
def test_any_block_size_gives_the_reference(monkeypatch, block, case):
    monkeypatch.setattr(fft_module, "BLOCK_BYTES", block)
    x_shape, w_shape, *args = case
    rng = np.random.default_rng(sum(x_shape) + block % 7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    assert_close(ALGORITHMS["fft"](x, w, *args), reference.conv_general(x, w, *args), f"fft, blocks of {block}")


def test_blocks_cover_every_sample_and_group_once(monkeypatch):
    from convlab.ops.algorithms._layout import Call

    for block in (1, 5000, 50000, 10**9):
        monkeypatch.setattr(fft_module, "BLOCK_BYTES", block)
        for x_shape, w_shape, *args in CASES:
            call = Call.of(x_shape, w_shape, *args)
            lengths = fft_module.fft_lengths(call)
            elementwise = call.cg == 1 or call.og == 1
            covered = np.zeros((call.batch, call.groups), dtype=int)
            for (n0, n1), (g0, g1) in fft_module._blocks(call, lengths, 16, elementwise):
                covered[n0:n1, g0:g1] += 1
            assert (covered == 1).all(), (x_shape, block)


def test_the_extra_memory_is_the_output_and_the_kernel_spectrum_plus_blocks(monkeypatch):
    # RepLKNet-like: 64 depthwise channels of 56x56, a 31x31 kernel. Whole-call spectra would take
    # 4 * 64 * 90 * 46 complex64 = 8.5 MB each, with the stride-1 output as much again: about 9x
    # the output; streamed in 256 KiB blocks the peak is the output, the kernel spectrum and a few blocks.
    tracemalloc = pytest.importorskip("tracemalloc")
    block = 2**18
    monkeypatch.setattr(fft_module, "BLOCK_BYTES", block)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 1, 31, 31)).astype(np.float32)
    args = ((1, 1), ((15, 15), (15, 15)), (1, 1), (1, 1), 64)
    tracemalloc.start()
    y = ALGORITHMS["fft"](x, w, *args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kernel_spectrum = 64 * 90 * 46 * 8
    assert peak < y.nbytes + kernel_spectrum + 8 * block, (peak, y.nbytes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation", "multiplier"), [
    ((13, 11), (3, 3), 1, 1, 1, 1),
    ((9, 17), (7, 7), 1, 3, 1, 2),
    ((15, 14), (3, 5), 2, (1, 2), 1, 1),
    ((12, 12), (3, 3), 1, 2, 2, 1),
    ((20, 19), (9, 9), 1, 4, 1, 1),
])
@pytest.mark.parametrize("block", [1, 10**9])
def test_depthwise_weight_grad_by_blocks_of_channels_equals_torch(monkeypatch, dtype, size, kernel, stride,
                                                                 padding, dilation, multiplier, block):
    # The ops route a depthwise layer's weight gradient with algorithm='fft' (or auto's choice of fft) to
    # fft.depthwise_weight_grad: blocks of channels, no padded or transposed copies of the whole arrays.
    torch = pytest.importorskip("torch")
    import convlab.functional as F
    from convlab.ops.algorithms import trace

    monkeypatch.setattr(fft_module, "BLOCK_BYTES", block)
    rng = np.random.default_rng(11)
    c = 5
    x = rng.standard_normal((3, c) + size).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    g = rng.standard_normal(F.conv2d(x, w, **kw).shape).astype(dtype)
    with trace() as events:
        got = F.conv_vjp(g, x, w, **kw, algorithm="fft", wrt="weight").weight
    assert [e.algorithm for e in events if e.role == "weight_grad"] == ["fft"]
    wt = torch.from_numpy(w).requires_grad_(True)
    torch.nn.functional.conv2d(torch.from_numpy(x), wt, **kw).backward(torch.from_numpy(g))
    assert_close(got, wt.grad.numpy(), f"fft weight gradient, blocks of {block}")
    reference_grad = F.conv_vjp(g, x, w, **kw, algorithm="reference", wrt="weight").weight
    assert_close(got, reference_grad, "against the reference")


def test_depthwise_weight_grad_extra_memory_is_a_block(monkeypatch):
    # RepLKNet-like at a small batch: 31x31 kernel over 28x28 maps. The correlation route pads the input
    # (4*64*58*58 floats, 3.4 MB) and transposes it and the output gradient; by blocks of channels the
    # peak is a few blocks of spectra.
    tracemalloc = pytest.importorskip("tracemalloc")
    from convlab.ops.algorithms import fft as fft_algorithm

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 28, 28)).astype(np.float32)
    g = rng.standard_normal((4, 64, 28, 28)).astype(np.float32)
    args = (((15, 15), (15, 15)), (1, 1), (1, 1), (31, 31))
    fft_algorithm.depthwise_weight_grad(x[:1, :2], g[:1, :2], *args)
    tracemalloc.start()
    try:
        got = fft_algorithm.depthwise_weight_grad(x, g, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    padded = 4 * 64 * 58 * 58 * 4
    assert peak < padded, f"{peak:,} bytes"
    assert got.shape == (64, 1, 31, 31)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_auto_never_spreads_nan_through_the_fft_weight_grad(value):
    # Where auto's planner picks fft for a depthwise weight gradient, data holding NaN or inf runs the exact
    # depthwise kernel instead: the non-finite values land where the reference puts them.
    import convlab.functional as F

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 28, 28)).astype(np.float32)
    w = rng.standard_normal((8, 1, 31, 31)).astype(np.float32)
    g = rng.standard_normal((2, 8, 28, 28)).astype(np.float32)
    x[1, 3, 0, 0] = value
    got = F.conv_vjp(g, x, w, padding=15, groups=8, wrt="weight").weight
    expected = F.conv_vjp(g, x, w, padding=15, groups=8, wrt="weight", algorithm="reference").weight
    assert (np.isnan(got) == np.isnan(expected)).all() and (np.isinf(got) == np.isinf(expected)).all()
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite])


def test_auto_runs_the_blocked_fft_weight_grad_where_it_picks_fft():
    # A 31x31 depthwise layer over 28x28 maps: auto's planner prices the correlation's FFT below the
    # depthwise kernel, and the ops then run fft.depthwise_weight_grad (traced as fft) on finite data.
    torch = pytest.importorskip("torch")
    import convlab.functional as F
    from convlab.ops.algorithms import trace

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 28, 28)).astype(np.float32)
    w = rng.standard_normal((8, 1, 31, 31)).astype(np.float32)
    g = rng.standard_normal((2, 8, 28, 28)).astype(np.float32)
    with trace() as events:
        got = F.conv_vjp(g, x, w, padding=15, groups=8, wrt="weight").weight
    assert [e.algorithm for e in events if e.role == "weight_grad"] == ["fft"]
    wt = torch.from_numpy(w).requires_grad_(True)
    torch.nn.functional.conv2d(torch.from_numpy(x), wt, padding=15, groups=8).backward(torch.from_numpy(g))
    assert_close(got, wt.grad.numpy(), "auto's fft weight gradient against torch")
