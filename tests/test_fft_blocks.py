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
