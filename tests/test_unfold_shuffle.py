"""Unfold (im2col), fold (col2im) and channel shuffle: against PyTorch, the reference loops and each other.

2-D unfold/fold are compared with ``torch.nn.functional.unfold``/``fold``
(forward and backward); 1-D, 3-D and 4-D, and the padding forms torch lacks,
with the loops in ``ops.algorithms.reference``. The adjoint identity
``<unfold(x), y> == <x, fold(y)>`` ties the two together, and float64 finite
differences check both vjps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import reference
from tests.helpers import assert_close, check_against_torch, numerical_vjp

FD_RTOL = 1e-6  # unfold and fold are linear: central differences carry only rounding error (~1e-9)


def _torch():
    return pytest.importorskip("torch")


def _out_len(n, k, s, lo, hi, d):
    """Number of sliding blocks along one dimension, written out here independently of convlab.shapes."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


@st.composite
def unfold_cases(draw, nd=None, pairs=False):
    nd = nd if nd is not None else draw(st.integers(1, 4))
    top = {1: 8, 2: 6, 3: 4, 4: 3}[nd]
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if pairs:
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    else:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    lohi = tuple(p if isinstance(p, tuple) else (p, p) for p in padding)
    sizes = tuple(max(1, d * (k - 1) + 1 - lo - hi) + draw(st.integers(0, top))
                  for k, d, (lo, hi) in zip(kernel, dilation, lohi, strict=True))
    blocks = tuple(_out_len(n, k, s, lo, hi, d) for n, k, s, (lo, hi), d in zip(sizes, kernel, stride, lohi, dilation,
                                                                                strict=True))
    unbatched = draw(st.booleans())
    channels = draw(st.integers(1, 3))
    batch = () if unbatched else (draw(st.integers(0, 2)),)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(batch + (channels,) + sizes).astype(dtype)
    cols = rng.standard_normal(batch + (channels * math.prod(kernel), math.prod(blocks))).astype(dtype)
    return dict(nd=nd, kernel=kernel, dilation=dilation, padding=padding, stride=stride, sizes=sizes,
                blocks=blocks, x=x, cols=cols, lohi=lohi, unbatched=unbatched)


def _args(c):
    return (c["kernel"], c["dilation"], c["padding"], c["stride"])


# --------------------------------------------------------------------------- against torch (2-D)


@settings(max_examples=50)
@given(unfold_cases(nd=2))
def test_unfold_matches_torch(c):
    torch_unfold = _torch().nn.functional.unfold
    out = check_against_torch(
        forward=lambda input: F.unfold(input, *_args(c)),
        vjp=lambda grad_output, input: {"input": F.unfold_vjp(grad_output, input, *_args(c))},
        torch_forward=lambda input: torch_unfold(input, *_args(c)),
        inputs={"input": c["x"]},
    )
    assert out.shape[-1] == math.prod(c["blocks"])


@settings(max_examples=50)
@given(unfold_cases(nd=2))
def test_fold_matches_torch(c):
    torch_fold = _torch().nn.functional.fold
    check_against_torch(
        forward=lambda input: F.fold(input, c["sizes"], *_args(c)),
        vjp=lambda grad_output, input: {"input": F.fold_vjp(grad_output, input, c["sizes"], *_args(c))},
        torch_forward=lambda input: torch_fold(input, c["sizes"], *_args(c)),
        inputs={"input": c["cols"]},
    )


def test_unfold_int_kernel_is_two_dimensional_like_torch(rng):
    torch = _torch()
    x = rng.standard_normal((2, 3, 5, 4))
    assert_close(F.unfold(x, 2, padding=1, stride=2),
                 torch.nn.functional.unfold(torch.from_numpy(x), 2, padding=1, stride=2).numpy())
    cols = rng.standard_normal((2, 12, 9))
    assert_close(F.fold(cols, 4, 2), torch.nn.functional.fold(torch.from_numpy(cols), 4, 2).numpy())


# --------------------------------------------------------------------------- N-d against the loops


@settings(max_examples=60)
@given(unfold_cases(pairs=True))
def test_unfold_and_fold_equal_the_reference_loops(c):
    xb = c["x"][None] if c["unbatched"] else c["x"]
    cb = c["cols"][None] if c["unbatched"] else c["cols"]
    cols = F.unfold(c["x"], *_args(c))
    expected = reference.unfold_general(xb, c["kernel"], c["stride"], c["lohi"], c["dilation"], c["blocks"])
    np.testing.assert_array_equal(cols, expected[0] if c["unbatched"] else expected)  # a pure copy: exact
    folded = F.fold(c["cols"], c["sizes"], *_args(c))
    expected = reference.fold_general(cb, c["sizes"], c["kernel"], c["stride"], c["lohi"], c["dilation"],
                                      c["blocks"])
    assert_close(folded, expected[0] if c["unbatched"] else expected)


def test_unfold_four_spatial_dims_against_a_direct_loop(rng):
    x = rng.standard_normal((2, 2, 3, 4, 3, 5))
    kernel, dilation, padding, stride = (2, 1, 2, 3), (1, 2, 1, 1), (1, 0, 1, 1), (2, 1, 1, 2)
    cols = F.unfold(x, kernel, dilation, padding, stride)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))
    blocks = tuple(_out_len(n, k, s, p, p, d) for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation,
                                                                       strict=True))
    assert cols.shape == (2, 2 * math.prod(kernel), math.prod(blocks))
    for n, c in np.ndindex(2, 2):
        for t, tap in enumerate(np.ndindex(*kernel)):
            for b, block in enumerate(np.ndindex(*blocks)):
                position = tuple(o * s + k * d for o, s, k, d in zip(block, stride, tap, dilation, strict=True))
                assert cols[n, c * math.prod(kernel) + t, b] == xp[(n, c) + position]


def test_unfold_padding_strings(rng):
    x = rng.standard_normal((1, 2, 5, 6))
    same = F.unfold(x, (3, 2), padding="same")  # PyTorch's 'same': one block per input position
    assert same.shape == (1, 12, 30)
    np.testing.assert_array_equal(same, F.unfold(x, (3, 2), padding=((1, 1), (0, 1))))
    assert F.unfold(x, 3, stride=2, padding="same_tf").shape == (1, 18, 3 * 3)
    assert F.unfold(x, (3, 3), padding="valid").shape == (1, 18, 3 * 4)


# --------------------------------------------------------------------------- adjoint and finite differences


@settings(max_examples=60)
@given(unfold_cases(pairs=True))
def test_adjoint_identity(c):
    x = c["x"].astype(np.float64)
    y = c["cols"].astype(np.float64)
    lhs = np.vdot(F.unfold(x, *_args(c)), y)
    rhs = np.vdot(x, F.fold(y, c["sizes"], *_args(c)))
    assert math.isclose(lhs, rhs, rel_tol=1e-12, abs_tol=1e-12 * max(1.0, np.abs(x).sum() * np.abs(y).max(initial=0)))


@pytest.mark.parametrize("nd, kwargs", [
    (1, dict(kernel_size=3, dilation=2, padding=2, stride=2)),
    (2, dict(kernel_size=(2, 3), dilation=(2, 1), padding=((1, 0), (2, 1)), stride=(1, 2))),
    (3, dict(kernel_size=(2, 1, 2), padding=1, stride=(2, 1, 1))),
])
def test_vjps_match_finite_differences(rng, nd, kwargs):
    x = rng.standard_normal((2, 2) + (4,) * nd)
    forward = lambda v: F.unfold(v, ndim=nd, **kwargs)  # noqa: E731
    g = rng.standard_normal(forward(x).shape)
    numeric = numerical_vjp(forward, x, g)
    np.testing.assert_allclose(F.unfold_vjp(g, x, ndim=nd, **kwargs), numeric, rtol=FD_RTOL, atol=FD_RTOL)
    cols = rng.standard_normal(forward(x).shape)
    fold = lambda v: F.fold(v, (4,) * nd, ndim=nd, **kwargs)  # noqa: E731
    g = rng.standard_normal(x.shape)
    numeric = numerical_vjp(fold, cols, g)
    np.testing.assert_allclose(F.fold_vjp(g, cols, (4,) * nd, ndim=nd, **kwargs), numeric, rtol=FD_RTOL,
                               atol=FD_RTOL)


def test_unfold_and_fold_keep_integer_and_float16_dtypes():
    x = np.arange(2 * 9, dtype=np.int16).reshape(2, 3, 3)
    cols = F.unfold(x, 2)
    assert cols.dtype == np.int16
    assert F.fold(cols, (3, 3), 2).tolist() == (x * np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]])).tolist()
    h = np.linspace(-1, 1, 18, dtype=np.float16).reshape(2, 3, 3)
    assert F.fold(F.unfold(h, 2), (3, 3), 2).dtype == np.float16


# --------------------------------------------------------------------------- channel shuffle


@settings(max_examples=40)
@given(st.integers(1, 3), st.sampled_from([1, 2, 3, 4, 6]), st.integers(1, 4), st.integers(0, 2),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 999))
def test_channel_shuffle_matches_torch(nd, groups, per_group, batch, dtype, seed):
    torch = _torch()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, groups * per_group) + tuple(rng.integers(1, 4, nd))).astype(dtype)
    check_against_torch(
        forward=lambda input: F.channel_shuffle(input, groups),
        vjp=lambda grad_output, input: {"input": F.channel_shuffle_vjp(grad_output, input, groups)},
        torch_forward=lambda input: torch.nn.functional.channel_shuffle(input, groups),
        inputs={"input": x},
    )
    # and the module form, nn.ChannelShuffle
    assert_close(F.channel_shuffle(x, groups), torch.nn.ChannelShuffle(groups)(torch.from_numpy(x)).numpy())


def test_channel_shuffle_order_unbatched_and_inverse():
    x = np.arange(12).reshape(1, 12, 1)
    assert F.channel_shuffle(x, 3)[0, :, 0].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert F.channel_shuffle(x[0], 3, ndim=1)[:, 0].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    # shuffling with C/g groups undoes shuffling with g groups; the vjp is that inverse
    np.testing.assert_array_equal(F.channel_shuffle(F.channel_shuffle(x, 3), 4), x)
    np.testing.assert_array_equal(F.channel_shuffle_vjp(F.channel_shuffle(x, 3), x, 3), x)
    assert F.channel_shuffle(np.zeros((2, 0, 3)), 2).shape == (2, 0, 3)


# --------------------------------------------------------------------------- bad input


def _x(*shape):
    return np.zeros(shape)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.channel_shuffle(_x(1, 6, 2), 4), ValueError,
     r"channel_shuffle: `groups` \(=4\) must divide the number of channels \(=6\)"),
    (lambda: F.channel_shuffle(_x(1, 6, 2), 0), ValueError, r"channel_shuffle: `groups` \(=0\) must be >= 1"),
    (lambda: F.channel_shuffle(_x(1, 6, 2), 2.0), TypeError, r"channel_shuffle: `groups` must be an integer"),
    (lambda: F.channel_shuffle(_x(6, 2), 2), ValueError,
     r"channel_shuffle: `input` must have at least 3 dimensions \(N, C, \*spatial\), got shape \(6, 2\); pass ndim="),
    (lambda: F.channel_shuffle(_x(2, 6, 2, 2), 2, ndim=1), ValueError,
     r"channel_shuffle: `input` must have 3 dimensions \(N, C, \*spatial\) or 2 \(C, \*spatial\)"),
    (lambda: F.channel_shuffle_vjp(_x(1, 6, 3), _x(1, 6, 2), 2), ValueError,
     r"channel_shuffle_vjp: `grad_output` must have the output's shape \(1, 6, 2\), got \(1, 6, 3\)"),
    (lambda: F.channel_shuffle(np.zeros((1, 2, 2), bool), 2), TypeError, r"channel_shuffle: `input` has dtype bool"),
    (lambda: F.unfold(_x(1, 1, 2, 2), 3), ValueError,
     r"unfold: the kernel \(size 3, dilation 1, so it spans 3\) is larger than the padded input \(2 \+ 0 \+ 0 = 2\)"),
    (lambda: F.unfold(_x(1, 1, 4, 4), 0), ValueError, r"unfold: `kernel_size` \(=0\) must be >= 1"),
    (lambda: F.unfold(_x(1, 1, 4, 4), 2, stride=(1, 1, 1)), ValueError,
     r"unfold: `stride` has 3 entries \(1, 1, 1\), but the operation has 2 spatial dimensions"),
    (lambda: F.unfold(_x(4, 4), 2), ValueError,
     r"unfold: `input` must have 4 dimensions \(N, C, \*spatial\) or 3 \(C, \*spatial\) for 2 spatial dimensions"),
    (lambda: F.unfold(np.broadcast_to(np.float32(0), (1, 1, 4000, 4000)), 30), ValueError,
     r"unfold: the unfolded matrix of shape \(1, 900, 15768841\) would need 56,767,827,600 bytes"),
    (lambda: F.unfold_vjp(_x(1, 4, 3), _x(1, 1, 3, 3), 2), ValueError,
     r"unfold_vjp: `grad_output` must have the output's shape \(1, 4, 4\), got \(1, 4, 3\)"),
    (lambda: F.fold(_x(1, 4, 3), (3, 3), 2), ValueError,
     r"fold: the input's last dimension \(=3\) must be the number of sliding blocks, 2 \* 2 = 4 "
     r"for output_size=\(3, 3\)"),
    (lambda: F.fold(_x(1, 5, 4), (3, 3), 2), ValueError,
     r"fold: the input's dimension 1 \(=5\) must be divisible by prod\(kernel_size\) \(=4 for kernel_size=\(2, 2\)\)"),
    (lambda: F.fold(_x(1, 1, 4, 4), (3, 3), 2), ValueError,
     r"fold: `input` must have 3 dimensions \(N, C\*prod\(kernel_size\), L\) or 2 .* got shape \(1, 1, 4, 4\)"),
    (lambda: F.fold(_x(1, 4, 4), (3, 3, 3), (2, 2)), ValueError,
     r"fold: `kernel_size` has 2 entries \(2, 2\), but the operation has 3 spatial dimensions"),
    (lambda: F.fold(_x(1, 4, 4), (3, 0), 2), ValueError, r"fold: `output_size\[1\]` \(=0\) must be >= 1"),
    (lambda: F.fold_vjp(np.zeros((1, 1, 3, 3), np.float32), _x(1, 4, 4), (3, 3), 2), TypeError,
     r"fold_vjp: `grad_output` has dtype float32, but the input has float64"),
])
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
