"""col2im (GEMM, then a strided add per tap): the tap geometry, the cases it was built for, and auto's choice."""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as F
from convlab.ops.algorithms import ALGORITHMS, plan, reference
from convlab.ops.algorithms import col2im as col2im_module
from convlab.ops.algorithms.col2im import tap_run, used_range

from .helpers import assert_close

col2im = ALGORITHMS["col2im"]


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("input_dilation", [1, 2, 3])
@pytest.mark.parametrize("lo", [-3, -1, 0, 2])
def test_tap_run_solves_the_index_equation(stride, input_dilation, lo):
    # o*stride == i*input_dilation + lo - k*dilation, 0 <= o < out, start <= i < stop: brute force.
    out, dilation = 7, 2
    for start, stop in ((0, 6), (2, 5)):
        for k in range(3):
            pairs = [(i, (i * input_dilation + lo - k * dilation) // stride) for i in range(start, stop)
                     if (i * input_dilation + lo - k * dilation) % stride == 0
                     and 0 <= (i * input_dilation + lo - k * dilation) // stride < out]
            run = tap_run(start, stop, out, k, stride, dilation, input_dilation, lo)
            if not pairs:
                assert run is None
                continue
            got = [(start + run.first + t * run.step, run.out0 + t * run.out_step) for t in range(run.count)]
            assert got == pairs


def test_used_range_drops_cropped_inputs():
    # input_dilation 2, lo = -4: inputs 0..5 sit at -4, -2, 0, 2, 4, 6; a 1-tap kernel reads outputs 0..4,
    # so inputs 0, 1 (cropped) and 5 (past the end) reach nothing.
    assert used_range(6, 5, 1, 1, 1, 2, -4) == (2, 5)
    assert used_range(3, 2, 1, 1, 1, 3, -9) == (0, 0)  # nothing reaches the output


def _check(x_shape, w_shape, stride, padding, dilation, input_dilation, groups, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    args = (stride, padding, dilation, input_dilation, groups)
    expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args)
    got = col2im(x, w, *args)
    assert got.dtype == dtype
    assert_close(got, expected.astype(dtype), f"col2im {x_shape} * {w_shape} {args}")


@pytest.mark.parametrize("case", [
    # (x shape, w shape, stride, padding, dilation, input_dilation, groups)
    ((2, 3, 7), (4, 3, 3), (1,), ((2, 3),), (1,), (2,), 1),  # 1-d transposed
    ((2, 4, 5, 6), (6, 2, 3, 2), (1, 1), ((-1, 2), (1, -1)), (1, 2), (2, 3), 2),  # negative pads, groups, dilation
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), (1, 1, 1), ((1, 1), (0, 2), (1, 0)), (1, 1, 2), (2, 2, 3), 1),  # 3-d
    ((2, 6, 6, 6), (6, 1, 3, 3), (1, 1), ((2, 2), (2, 2)), (1, 1), (2, 2), 6),  # depthwise transposed
    ((2, 4, 7, 7), (3, 4, 3, 3), (2, 3), ((1, 1), (2, 0)), (1, 1), (2, 2), 1),  # stride with input dilation
    ((2, 4, 9, 9), (2, 4, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),  # a plain strided convolution
    ((1, 2, 8), (1, 2, 1), (1,), ((-5, -4),), (1,), (3,), 1),  # heavy crops: most inputs reach nothing
])
def test_primitive_cases(case):
    _check(*case)
    _check(*case, dtype=np.float32)


def test_integers_are_exact():
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 50, (2, 4, 5, 5))
    w = rng.integers(-50, 50, (6, 2, 3, 3))
    args = ((1, 1), ((2, 1), (0, 2)), (1, 1), (2, 2), 2)
    got = col2im(x, w, *args)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference.conv_general(x, w, *args))


def test_channels_last_view_and_row_blocks(monkeypatch):
    # The input as gemm returns it (an NCHW view of a channels-last buffer) is read in place; with a tiny
    # column buffer a sample is split into blocks of rows, whose taps overlap in the output.
    rng = np.random.default_rng(2)
    x = np.ascontiguousarray(rng.standard_normal((2, 9, 8, 5))).transpose(0, 3, 1, 2)  # (2, 5, 9, 8), a view
    w = rng.standard_normal((3, 5, 4, 3))
    args = ((1, 1), ((3, 3), (2, 2)), (1, 1), (2, 2), 1)
    expected = reference.conv_general(x, w, *args)
    assert_close(col2im(x, w, *args), expected)
    monkeypatch.setattr(col2im_module, "CHUNK_BYTES", 1)
    assert_close(col2im(x, w, *args), expected)
    assert_close(col2im(x[:, :, 1:, 2:], w, *args), reference.conv_general(x[:, :, 1:, 2:], w, *args))


@pytest.mark.parametrize("output_padding", [0, 1])
def test_conv_transpose_and_gradients(output_padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 3, 3, 4))  # (C_in, C_out/g, *K), groups 2 -> C_out 6
    b = rng.standard_normal(6)
    kw = dict(stride=2, padding=(1, 2), output_padding=output_padding, groups=2, dilation=(1, 2))
    y = F.conv_transpose2d(x, w, b, algorithm="col2im", **kw)
    assert_close(y, F.conv_transpose2d(x, w, b, algorithm="reference", **kw))
    g = rng.standard_normal(y.shape)
    got = F.conv_transpose_vjp(g, x, w, b, algorithm="col2im", **kw)
    expected = F.conv_transpose_vjp(g, x, w, b, algorithm="reference", **kw)
    for name in ("input", "weight", "bias"):
        assert_close(getattr(got, name), getattr(expected, name), name)
    # The input gradient of a strided convolution (the ResNet stem's shape, small).
    xs = rng.standard_normal((2, 3, 17, 17))
    ws = rng.standard_normal((8, 3, 7, 7))
    gy = rng.standard_normal(F.conv2d(xs, ws, stride=2, padding=3).shape)
    got = F.conv_vjp(gy, xs, ws, stride=2, padding=3, algorithm="col2im")
    expected = F.conv_vjp(gy, xs, ws, stride=2, padding=3, algorithm="reference")
    assert_close(got.input, expected.input)
    assert_close(got.weight, expected.weight)


def test_auto_takes_col2im_for_the_stem_input_gradient_and_not_for_weight_gradients():
    # The stem's input gradient: 64 channels of gradient back to 3 (a 7x7 stride-2 convolution at 224).
    stem = plan((8, 64, 112, 112), (3, 64, 7, 7), padding=((6, 7), (6, 7)), input_dilation=2)
    assert "col2im" in stem.estimates and stem.estimates["col2im"] < stem.estimates["gemm"]
    # A weight gradient (huge kernel, tiny output) would scatter every tap: far slower than gemm.
    wgrad = plan((64, 8, 56, 56), (256, 8, 56, 56))
    assert wgrad.algorithm == "gemm"
    assert wgrad.estimates["col2im"] > 10 * wgrad.estimates["gemm"]
