"""Transposed convolution with padding='same' (TensorFlow/Keras) and with padding modes (the exact adjoint).

The transposed convolution with a spec is ``C^T``, where ``C`` is the convolution
with the same spec and padding mode from the transposed output's size ``O`` to
its input's size ``I`` (the first ``I`` outputs where ``output_padding >= stride``
leaves more). The oracles: the adjoint identity, the convolution matrix, torch
(zero padding only), hand-derived TensorFlow 'same' results, finite differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab import nn
from convlab.ops.algorithms.matrix import conv_matrix
from convlab.ops.conv import conv, conv_transpose, conv_transpose_vjp
from convlab.shapes import conv_transpose_output_shape
from convlab.spec import PADDING_MODES, ConvSpec
from tests.helpers import assert_close, numerical_vjp

_LIMIT = {"reflect": -1, "replicate": 0, "circular": 0, "symmetric": 0, "zeros": 0}  # max pad = O + limit


@dataclass(frozen=True)
class Case:
    size: tuple[int, ...]  # transposed input I
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | str
    output_padding: tuple[int, ...]
    groups: int
    c_in: int  # transposed input channels
    c_out: int  # transposed output channels
    mode: str

    @property
    def spec(self) -> ConvSpec:
        return ConvSpec(self.kernel, self.stride, self.padding, self.dilation, self.groups, self.mode,
                        transposed=True, output_padding=self.output_padding)

    @property
    def pads(self):
        return self.spec.padding

    @property
    def out_size(self) -> tuple[int, ...]:
        return tuple(int(o) for o in conv_transpose_output_shape(self.spec, self.size))

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation, padding_mode=self.mode)


@st.composite
def cases(draw, modes=PADDING_MODES, same=None):
    nd = draw(st.sampled_from((1, 2)))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    use_same = draw(st.booleans()) if same is None else same
    if use_same:
        padding, output_padding = "same", (0,) * nd
    else:
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    groups = draw(st.integers(1, 2))
    case = Case(size, kernel, stride, dilation, padding, output_padding, groups,
                groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), draw(st.sampled_from(modes)))
    pads = case.pads
    out = [int(o) for o in conv_transpose_output_shape(case.spec, size)] if all(
        (n - 1) * s - lo - hi + d * (k - 1) + op + 1 >= 1
        for n, s, (lo, hi), d, k, op in zip(size, stride, pads, dilation, kernel, case.spec.output_padding,
                                            strict=True)) else None
    assume(out is not None)
    assume(all(max(lo, hi) <= o + _LIMIT[case.mode] for o, (lo, hi) in zip(out, pads, strict=True)))
    return case


def arrays(case: Case, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, case.c_in) + case.size)
    w = rng.standard_normal((case.c_in, case.c_out // case.groups) + case.kernel)
    b = rng.standard_normal(case.c_out)
    return x, w, b


def forward_conv(case: Case, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """C: the convolution with the case's padding and mode from the transposed output space, first I outputs."""
    y = conv(z, w, None, case.stride, case.pads, case.dilation, case.groups, padding_mode=case.mode)
    return y[(slice(None), slice(None)) + tuple(slice(0, n) for n in case.size)]


def matrix_transpose(case: Case, w: np.ndarray) -> np.ndarray:
    """C^T from the convolution matrix (which folds the padding mode into C), rows past I dropped."""
    c = conv_matrix(w, case.out_size, case.stride, case.pads, case.dilation, case.groups, padding_mode=case.mode)
    conv_out = [(o + lo + hi - d * (k - 1) - 1) // s + 1
                for o, (lo, hi), d, k, s in zip(case.out_size, case.pads, case.dilation, case.kernel, case.stride,
                                                strict=True)]
    rows = np.arange(c.shape[0]).reshape([case.c_in] + conv_out)
    keep = rows[(slice(None),) + tuple(slice(0, n) for n in case.size)].reshape(-1)
    return c[keep].T


# --------------------------------------------------------------------------- (a), (b): adjoint and matrix


@settings(max_examples=60, deadline=None)
@given(cases())
def test_adjoint_identity(case):
    x, w, _ = arrays(case)
    z = np.random.default_rng(1).standard_normal((2, case.c_out) + case.out_size)
    lhs = np.vdot(forward_conv(case, z, w), x)
    rhs = np.vdot(z, conv_transpose(x, w, **case.kwargs()))
    assert math.isclose(lhs, rhs, rel_tol=1e-10, abs_tol=1e-10)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_equals_the_transposed_convolution_matrix(case):
    x, w, b = arrays(case)
    ours = conv_transpose(x, w, b, **case.kwargs())
    ct = matrix_transpose(case, w)
    expected = np.stack([(ct @ xi.reshape(-1)).reshape((case.c_out,) + case.out_size) for xi in x])
    expected += b.reshape((1, -1) + (1,) * len(case.size))
    assert_close(ours, expected)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_every_mode_by_hand_1d(mode):
    # C: reflect/... padding 1, kernel ones(3), input size 3 -> output 3; C^T @ ones.
    forward = {
        "zeros": [[1, 1, 0], [1, 1, 1], [0, 1, 1]],
        "reflect": [[1, 2, 0], [1, 1, 1], [0, 2, 1]],       # b a b c b
        "replicate": [[2, 1, 0], [1, 1, 1], [0, 1, 2]],     # a a b c c
        "circular": [[1, 1, 1], [1, 1, 1], [1, 1, 1]],      # c a b c a
        "symmetric": [[2, 1, 0], [1, 1, 1], [0, 1, 2]],     # a a b c c
    }[mode]
    y = conv_transpose(np.array([[[1.0, 10.0, 100.0]]]), np.ones((1, 1, 3)), padding=1, padding_mode=mode)
    np.testing.assert_array_equal(y[0, 0], np.array(forward, dtype=float).T @ [1.0, 10.0, 100.0])


# --------------------------------------------------------------------------- (c): 'same'


@settings(max_examples=40, deadline=None)
@given(cases(same=True))
def test_same_output_is_input_times_stride(case):
    x, w, _ = arrays(case)
    assert conv_transpose(x, w, **case.kwargs()).shape[2:] == tuple(n * s for n, s in zip(case.size, case.stride,
                                                                                          strict=True))


@settings(max_examples=40, deadline=None)
@given(cases(modes=("zeros",), same=True))
def test_same_is_the_adjoint_of_same_tf_on_input_times_stride(case):
    x, w, _ = arrays(case)
    big = tuple(n * s for n, s in zip(case.size, case.stride, strict=True))
    z = np.random.default_rng(2).standard_normal((2, case.c_out) + big)
    forward = conv(z, w, None, case.stride, "same_tf", case.dilation, case.groups)
    assert forward.shape[2:] == case.size
    assert math.isclose(np.vdot(forward, x), np.vdot(z, conv_transpose(x, w, **case.kwargs())), rel_tol=1e-10,
                        abs_tol=1e-10)


@pytest.mark.parametrize(
    "kernel, stride, dilation, expected",
    [  # x = [1, 2], w = [1, 10, 100, 1000][:k]; canvas = the stamps x[i]*w at i*s (every d-th place)
        (3, 2, 1, [1, 10, 102, 20]),             # canvas 1 10 102 20 200, TF total 1: crop (0, 1)
        (4, 2, 1, [10, 102, 1020, 200]),         # canvas 1 10 102 1020 200 2000, total 2: crop (1, 1)
        (1, 2, 1, [1, 0, 2, 0]),                 # canvas 1 0 2, total 0, one element no window reaches
        (3, 2, 2, [0, 12, 0, 120]),              # canvas 1 0 12 0 120 0 200, total 3: crop (1, 2)
        (2, 3, 1, [1, 10, 0, 2, 20, 0]),         # canvas 1 10 0 2 20, total 0, output_padding 1
        (4, 1, 1, [12, 120]),                    # stride 1: canvas 1 12 120 1200 2000, crop (1, 2)
    ],
)
def test_same_by_hand_tensorflow_rule(kernel, stride, dilation, expected):
    w = np.array([1.0, 10.0, 100.0, 1000.0][:kernel]).reshape(1, 1, kernel)
    y = conv_transpose(np.array([[[1.0, 2.0]]]), w, stride=stride, dilation=dilation, padding="same")
    np.testing.assert_array_equal(y[0, 0], expected)


@settings(max_examples=40, deadline=None)
@given(cases(modes=("zeros",), same=True))
def test_same_matches_torch_with_symmetric_padding_and_a_crop(case):
    torch = pytest.importorskip("torch")
    spec = case.spec
    # torch pads symmetrically: padding=lo with the same output_padding is 'same' where the total is even
    # (hi == lo); where it is odd (hi == lo + 1) torch's output is one longer and 'same' drops its last element.
    x, w, b = arrays(case)
    fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d}[len(case.size)]
    expected = fn(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), case.stride,
                  tuple(lo for lo, _ in spec.padding), spec.output_padding, case.groups, case.dilation).numpy()
    assert expected.shape[2:] == tuple(n * s + hi - lo for n, s, (lo, hi) in zip(case.size, case.stride, spec.padding,
                                                                                 strict=True))
    expected = expected[(slice(None), slice(None)) + tuple(slice(0, n * s) for n, s in zip(case.size, case.stride,
                                                                                           strict=True))]
    assert_close(conv_transpose(x, w, b, **case.kwargs()), np.ascontiguousarray(expected))


def test_same_refuses_output_padding_and_other_output_sizes():
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 3))
    with pytest.raises(ValueError, match=r"conv_transpose: `output_padding` \(=\(1,\)\) must be 0 with padding='same'"):
        conv_transpose(x, w, stride=2, padding="same", output_padding=1)
    assert conv_transpose(x, w, stride=2, padding="same", output_size=(6,)).shape == (1, 1, 6)
    with pytest.raises(ValueError, match=r"`output_size` \(=\(7,\)\) must be input size \* stride \(=\(6,\)\)"):
        conv_transpose(x, w, stride=2, padding="same", output_size=(7,))


def test_mode_limits_are_checked_on_the_output():
    with pytest.raises(ValueError, match=r"conv_transpose: reflect padding \(=\(2, 2\)\) must be smaller than "
                                         r"the input size \(=2\)"):
        conv_transpose(np.ones((1, 1, 4)), np.ones((1, 1, 3)), padding=2, padding_mode="reflect")


# --------------------------------------------------------------------------- (d): gradients


@settings(max_examples=25, deadline=None)
@given(cases())
def test_vjp_matches_finite_differences_and_the_matrix(case):
    x, w, b = arrays(case)
    x = x[:1]
    gy = np.random.default_rng(3).standard_normal((1, case.c_out) + case.out_size)
    kw = case.kwargs()
    grads = conv_transpose_vjp(gy, x, w, b, **kw)
    # Linear in x and in w: central differences are exact up to rounding.
    assert_close_fd(grads.input, numerical_vjp(lambda v: conv_transpose(v, w, b, **kw), x, gy))
    assert_close_fd(grads.weight, numerical_vjp(lambda v: conv_transpose(x, v, b, **kw), w, gy))
    assert_close(grads.bias, gy.sum(axis=(0,) + tuple(range(2, gy.ndim))))
    # The input gradient of C^T is C.
    assert_close(grads.input, forward_conv(case, gy, w))


def assert_close_fd(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(expected).max())))


@settings(max_examples=25, deadline=None)
@given(cases(modes=PADDING_MODES[1:]), st.sampled_from(("gemm", "im2col", "col2im")))
def test_forward_and_vjp_match_the_reference_algorithm(case, algorithm):
    x, w, b = arrays(case)
    gy = np.random.default_rng(4).standard_normal((2, case.c_out) + case.out_size)
    kw = case.kwargs()
    assert_close(conv_transpose(x, w, b, algorithm=algorithm, **kw),
                 conv_transpose(x, w, b, algorithm="reference", **kw))
    ours = conv_transpose_vjp(gy, x, w, b, algorithm=algorithm, **kw)
    reference = conv_transpose_vjp(gy, x, w, b, algorithm="reference", **kw)
    for name in ("input", "weight", "bias"):
        assert_close(getattr(ours, name), getattr(reference, name), name)


# --------------------------------------------------------------------------- (e): the layer


def test_layer_same_reflect_forward_and_backward_equal_the_functional():
    layer = nn.ConvTranspose2d(4, 2, 3, stride=2, padding="same", padding_mode="reflect", dtype=np.float64,
                               rng=np.random.default_rng(0))
    assert repr(layer) == ("ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), padding='same', "
                           "padding_mode='reflect')")
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 5))
    y = layer(x)
    w, b = layer.weight.data, layer.bias.data
    assert_close(y, F.conv_transpose2d(x, w, b, stride=2, padding="same", padding_mode="reflect"))
    assert y.shape == (2, 2, 6, 10)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    gx = layer.backward(gy)
    grads = F.conv_transpose_vjp(gy, x, w, b, stride=2, padding="same", padding_mode="reflect")
    assert_close(gx, grads.input, "input")
    assert_close(layer.weight.grad, grads.weight, "weight")
    assert_close(layer.bias.grad, grads.bias, "bias")
