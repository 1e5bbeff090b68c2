"""gemm's blocked, split-kernel window matrix and the GEMM cost terms the planner reads.

Numbers against the reference algorithm (float64, NaN and inf included) and torch; memory measured with
tracemalloc (NumPy reports its allocations there); the estimates' ordering on representative shapes. No time
is asserted.
"""

from __future__ import annotations

import importlib
import tracemalloc

import numpy as np
import pytest

from convlab.ops.algorithms import Call, calibrate, reference
from convlab.ops.algorithms._costs import gemm_seconds
from convlab.ops.algorithms.plan import estimate_call

gemm = importlib.import_module("convlab.ops.algorithms.gemm")

F32 = np.dtype(np.float32)


def _args(nd, stride=1, pad=0, dil=1, ld=1):
    return (stride,) * nd, ((pad, pad),) * nd, (dil,) * nd, (ld,) * nd


CASES = [
    # x, w, stride, padding, dilation, input dilation, groups
    ((1, 16, 20, 20), (3, 16, 12, 12), *_args(2), 1),  # a weight gradient's correlation: big kernel, few outputs
    ((2, 8, 20, 18), (6, 4, 5, 3), (2, 1), ((1, 2), (0, 1)), (1, 2), (1, 1), 2),  # grouped, strided, dilated
    ((2, 6, 11, 9), (4, 6, 3, 3), *_args(2, pad=1, ld=2), 1),  # input dilation
    ((2, 8, 40), (12, 8, 7), *_args(1, stride=2, pad=3), 1),  # 1-D
    ((2, 4, 6, 7, 8), (6, 2, 3, 2, 3), (1, 2, 1), ((1, 1),) * 3, (1, 1, 1), (1, 1, 1), 2),  # 3-D, grouped
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk", [None, 256])
def test_kernel_pieces_give_the_reference_numbers(case, chunk, monkeypatch, rng):
    x_shape, w_shape, stride, padding, dilation, ld, groups = case
    if chunk is not None:  # tiny blocks: the kernel is cut into as many pieces as its first axis allows
        monkeypatch.setattr(gemm, "CHUNK_BYTES", chunk)
        call = Call(x_shape, w_shape, stride, padding, dilation, ld, groups, np.dtype(np.float64))
        assert gemm.kernel_pieces(call.batch * call.positions, call.taps * call.c_in * 8, w_shape[2]) > 1
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    x.flat[::37] = np.nan
    x.flat[5] = np.inf
    w.flat[3] = -np.inf
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 and inf - inf: NaN, as the reference says
        got = gemm.conv_general(x, w, stride, padding, dilation, ld, groups)
        expected = reference.conv_general(x, w, stride, padding, dilation, ld, groups)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # NaN where the reference has NaN


def test_a_large_kernel_correlation_matches_torch_in_float32(rng):
    torch = pytest.importorskip("torch")
    # LeNet's first weight gradient as the correlation the ops hand the primitive (batch 16)
    x = rng.standard_normal((1, 16, 32, 32), dtype=np.float32)
    w = rng.standard_normal((6, 16, 28, 28), dtype=np.float32)
    got = gemm.conv_general(x, w, (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_kernel_pieces_keep_a_block_within_the_chunk():
    row = 784 * 256 * 4  # LeNet's first weight gradient: 800 KB per window-matrix row, 25 rows
    pieces = gemm.kernel_pieces(25, row, 28)
    assert pieces > 1 and 25 * row / pieces <= gemm.CHUNK_BYTES * 1.01
    assert gemm.kernel_pieces(25, row, 3) == 3  # never more pieces than the kernel's first axis
    assert gemm.kernel_pieces(25088, 576 * 4, 3) == 1  # a ResNet layer's forward: MIN_ROWS rows fit
    assert gemm.kernel_pieces(10, 10, 1) == 1


def test_the_window_matrix_of_a_huge_kernel_stays_about_one_chunk(rng):
    # the stem's weight gradient as a correlation (batch 2): windows of 2 * 49 rows x 12544 taps x 2 channels
    x = rng.standard_normal((3, 2, 230, 230), dtype=np.float32)
    w = rng.standard_normal((64, 2, 112, 112), dtype=np.float32)
    args = ((1, 1), ((0, 0), (0, 0)), (2, 2), (1, 1), 1)
    windows = 3 * 49 * 112 * 112 * 2 * 4  # the whole window matrix: 7.4 MB
    gemm.conv_general(x, w, *args)
    tracemalloc.start()
    try:
        gemm.conv_general(x, w, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the channels-last input, the weight matrix's copy one piece at a time (4 pieces here), a block of windows
    assert gemm.kernel_pieces(3 * 49, 112 * 112 * 2 * 4, 112) == 4
    assert peak < x.nbytes + w.nbytes / 2 + windows / 2, (peak, x.nbytes, w.nbytes, windows)
    assert peak < x.nbytes + w.nbytes / 2 + 2 * gemm.CHUNK_BYTES


def _call(x, w, stride=1, pad=0, dil=1, groups=1):
    nd = len(x) - 2
    return Call(tuple(x), tuple(w), (stride,) * nd, ((pad, pad),) * nd, (dil,) * nd, (1,) * nd, groups, F32)


def test_a_skinny_gemm_costs_more_per_flop_than_a_square_one():
    with calibrate.using(calibrate.CONSTANTS):
        macs = 25 * 200704 * 6
        skinny = gemm_seconds(macs, 200704, 6, 1, F32)
        square = gemm_seconds(macs, 1024, 1024, 1, F32)
        assert skinny > 3 * square
        # the packing term: the (m, k) operand is read and written once per product
        no_pack = macs * 2 / (calibrate.rates().gemm_flops * 1.8 * 0.375)
        assert skinny > no_pack


@pytest.mark.parametrize("rates", ["constants", "a slow cache"])
def test_lenet_s_first_weight_gradient_prefers_the_direct_sum_to_gemm(rates):
    # LeNet's first layer weight gradient (1->6, 5x5 at 28x28, padding 2, batch 256): the correlation of the
    # padded input (1, 256, 32, 32) with the output gradient (6, 256, 28, 28). Measured: direct 3.2 ms,
    # gemm 8.5 ms (quiet Xeon, one thread).
    machine = calibrate.CONSTANTS if rates == "constants" else calibrate.CONSTANTS._replace(cache_bytes=30e9)
    call = _call((1, 256, 32, 32), (6, 256, 28, 28))
    with calibrate.using(machine):
        est = estimate_call(call).estimates
    assert est["direct"] < est["gemm"], est


def test_ordinary_layers_keep_their_plans():
    with calibrate.using(calibrate.CONSTANTS):
        assert estimate_call(_call((8, 64, 56, 56), (64, 64, 3, 3), pad=1)).algorithm.startswith("winograd")
        assert estimate_call(_call((8, 64, 56, 56), (256, 64, 1, 1))).algorithm == "gemm"
        assert estimate_call(_call((8, 512, 7, 7), (512, 512, 3, 3), pad=1)).algorithm == "gemm"
        assert estimate_call(_call((8, 64, 56, 56), (128, 64, 3, 3), stride=2, pad=1)).algorithm == "gemm"


@pytest.mark.parametrize("chunk", [None, 512])
@pytest.mark.parametrize("case", [
    # x (padded), gy, kernel, stride, dilation, groups
    ((2, 8, 40), (2, 6, 17), (8,), (2,), (1,), 2),
    ((3, 4, 12, 11), (3, 6, 5, 9), (3, 3), (2, 1), (1, 1), 1),
    ((1, 6, 10, 10), (1, 4, 4, 4), (3, 2), (1, 2), (3, 2), 2),
])
def test_the_weight_gradient_equals_the_reference_whether_blocks_span_samples_or_not(case, chunk, monkeypatch, rng):
    x_shape, gy_shape, kernel, stride, dilation, groups = case
    if chunk is not None:  # blocks within one sample: the output gradient is read in place
        monkeypatch.setattr(gemm, "WEIGHT_GRAD_CHUNK_BYTES", chunk)
    xp, gy = rng.standard_normal(x_shape), rng.standard_normal(gy_shape)
    got = gemm.weight_grad(xp, gy, kernel, stride, dilation, groups)
    # the reference: the correlation of the input (C_in/g, g*N, *S) with the gradient as the kernel
    n, c_in = x_shape[:2]
    nd = len(kernel)
    c_out, cg, og = gy_shape[1], c_in // groups, gy_shape[1] // groups
    xt = xp.reshape((n, groups, cg) + x_shape[2:]).transpose((2, 1, 0) + tuple(range(3, 3 + nd)))
    xt = xt.reshape((cg, groups * n) + x_shape[2:])
    wt = gy.reshape((n, groups, og) + gy_shape[2:]).transpose((1, 2, 0) + tuple(range(3, 3 + nd)))
    wt = wt.reshape((c_out, n) + gy_shape[2:])
    r = reference.conv_general(xt, wt, dilation, ((0, 0),) * nd, stride, (1,) * nd, groups)
    expected = r[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)].swapaxes(0, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_stride_1_pointwise_layer_is_one_gemm_without_an_input_copy():
    # ResNet-50 layer1.1.conv1 (256->64 at 56x56) forward: measured gemm 25.9 ms, col2im 36.6 ms (one thread)
    call = _call((8, 256, 56, 56), (64, 256, 1, 1))
    with calibrate.using(calibrate.CONSTANTS):
        plain = gemm.estimate(call)
        strided = gemm.estimate(_call((8, 256, 112, 112), (64, 256, 1, 1), stride=2))  # same GEMM, compacted
        assert estimate_call(call).algorithm == "gemm"
    assert "copies and output" in plain.terms
    assert strided.seconds > plain.seconds  # the subsampled positions are copied


def test_position_blocks_cover_every_position_once_within_the_chunk():
    shape, position = (2, 3, 5, 7), 16  # (N, D, H, W), bytes per position's windows
    for chunk in (10_000, 1000, 200, 16):
        seen = np.zeros(shape, int)
        for index, rows in gemm._position_blocks(shape, position, chunk):
            block = seen[index]
            assert block.size == rows
            assert rows * position <= max(chunk, position)
            seen[index] += 1
        assert (seen == 1).all(), chunk
