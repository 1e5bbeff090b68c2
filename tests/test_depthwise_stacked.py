"""The compiled ``flat`` kernel stacks small planes (several samples of a channel per task): any stack gives
the reference's and torch's numbers, bit for bit the NumPy tap loop's, NaN and inf where the reference puts them."""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as F
from convlab.ops.algorithms import ALGORITHMS, depthwise, reference
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

pytest.importorskip("numba")

CASES = [
    # x shape, w shape, padding pairs, dilation, groups
    ((5, 6, 7, 7), (6, 1, 3, 3), ((1, 1), (1, 1)), (1, 1), 6),  # MobileNetV2's 7x7 maps
    ((5, 4, 9, 6), (8, 1, 3, 5), ((1, 2), (2, 2)), (1, 1), 4),  # channel multiplier, uneven pads
    ((3, 6, 8, 8), (3, 2, 3, 3), ((2, 2), (2, 2)), (2, 2), 3),  # two channels per group (an input gradient)
    ((4, 3, 6, 7), (3, 1, 2, 2), ((-1, 0), (0, -1)), (1, 1), 3),  # crops
    ((5, 3, 11), (3, 1, 4), ((2, 1),), (1,), 3),  # 1-d
]


@pytest.mark.parametrize("stack_elements", [1, 100, 300, 10**6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_any_stack_equals_the_reference_and_the_numpy_loop(monkeypatch, stack_elements, dtype, case):
    monkeypatch.setattr(depthwise, "FLAT_STACK", stack_elements)
    x_shape, w_shape, pads, dilation, groups = case
    nd = len(x_shape) - 2
    args = ((1,) * nd, pads, dilation, (1,) * nd, groups)
    rng = np.random.default_rng(len(x_shape) + stack_elements % 11)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    call = Call.of(x, w, *args)
    assert depthwise.compiled_kernel(call) == "flat"
    got = ALGORITHMS["depthwise"](x, w, *args)
    np.testing.assert_array_equal(got, depthwise._per_tap(call, x, w))
    assert_close(got, reference.conv_general(x, w, *args).astype(dtype), f"stack of {stack_elements}")


def test_the_stack_follows_the_plane_size():
    assert depthwise.flat_stack(8, (7, 7), (3, 3), (1, 1)) == 8  # 81-element planes: the whole batch
    assert depthwise.flat_stack(8, (14, 14), (3, 3), (1, 1)) == 8
    assert depthwise.flat_stack(8, (56, 56), (3, 3), (1, 1)) == 1  # a large plane is long enough alone
    assert depthwise.flat_stack(3, (7, 7), (3, 3), (1, 1)) == 3


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's own 0 * inf
def test_nan_and_inf_stay_in_their_sample(value):
    # A non-finite value in the last row or column of one sample's plane is read, in the stacked grid, by the
    # dropped rows and columns next to the next sample: they never reach that sample's outputs.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 7, 7)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    x[1, 2, 6, 6] = value
    x[2, 0, 0, 3] = value
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 3)
    got = ALGORITHMS["depthwise"](x, w, *args)
    expected = reference.conv_general(x, w, *args)
    assert (np.isnan(got) == np.isnan(expected)).all() and (np.isinf(got) == np.isinf(expected)).all()
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_input_gradient_of_a_small_map_equal_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 40, 7, 7)).astype(dtype)
    w = rng.standard_normal((40, 1, 3, 3)).astype(dtype)
    g = rng.standard_normal((6, 40, 7, 7)).astype(dtype)
    y = F.conv2d(x, w, padding=1, groups=40, algorithm="depthwise")
    gx = F.conv_vjp(g, x, w, padding=1, groups=40, wrt="input", algorithm="depthwise").input
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch.nn.functional.conv2d(xt, torch.from_numpy(w), padding=1, groups=40)
    yt.backward(torch.from_numpy(g))
    assert_close(y, yt.detach().numpy(), "forward")
    assert_close(gx, xt.grad.numpy(), "input gradient")
