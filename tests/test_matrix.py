"""The convolution matrix (`convlab.ops.algorithms.matrix`): ``vec(conv(x)) == C vec(x)`` and ``C.T`` is the transpose.

* the seed's example (4x4 input, 3x3 kernel -> a 4x16 matrix, and ``C.T`` taking
  a 2x2 array back to 4x4) row by row;
* Hypothesis specs (1-3 dims, every padding form and mode, stride, dilation,
  groups, channels): ``C @ vec(x)`` is the convolution, ``C.T @ vec(y)`` the
  transposed convolution with the matching ``output_padding`` (zeros) or the
  input gradient of ``conv_vjp`` (other modes), dense equals sparse, and the
  ``transposed=True`` matrix is ``C.T``;
* ``algorithm='matrix'`` equals ``algorithm='reference'`` for the convolution,
  the transposed convolution and both of their gradients.

The random specs come from ``conv_cases`` in ``tests/helpers.py``, which derives
the explicit ``(lo, hi)`` pairs each padding form means by hand, independently
of ``convlab.shapes``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms.matrix import conv_matrix
from convlab.ops.conv import conv, conv_transpose, conv_transpose_vjp, conv_vjp
from tests.helpers import assert_close, conv_cases

# --------------------------------------------------------------------------- the seed's example


SEED_KERNEL = np.arange(1.0, 10.0).reshape(3, 3)


def test_seed_example_matrix_rows():
    C = conv_matrix(SEED_KERNEL[None, None], (4, 4))
    assert C.shape == (4, 16)
    expected = np.array([
        [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0],  # output (0, 0): kernel over rows 0-2, columns 0-2
        [0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0],  # output (0, 1): one column to the right
        [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0],  # output (1, 0): one row down
        [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9],  # output (1, 1)
    ], dtype=np.float64)
    assert_close(C, expected)


def test_seed_example_small_to_large():
    rng = np.random.default_rng(0)
    C = conv_matrix(SEED_KERNEL[None, None], (4, 4))
    large = rng.standard_normal((4, 4))
    # C x Large = Small
    assert_close((C @ large.ravel()).reshape(2, 2), F.conv2d(large[None, None], SEED_KERNEL[None, None])[0, 0])
    # C^T x Small = Large-shaped: the transposed convolution, 2x2 -> 4x4
    small = rng.standard_normal((2, 2))
    up = (C.T @ small.ravel()).reshape(4, 4)
    assert_close(up, F.conv_transpose2d(small[None, None], SEED_KERNEL[None, None])[0, 0])
    # By hand: each small element stamps the kernel at its position.
    stamped = np.zeros((4, 4))
    for i in range(2):
        for j in range(2):
            stamped[i:i + 3, j:j + 3] += small[i, j] * SEED_KERNEL
    assert_close(up, stamped)


# --------------------------------------------------------------------------- C and C^T on random specs


@settings(max_examples=60)
@given(conv_cases())
def test_matrix_times_vec_is_conv(case):
    x, w, _ = case.arrays()
    C = conv_matrix(w, case.size, **case.kwargs())
    assert C.shape == (case.c_out * int(np.prod(case.out_size)), case.c_in * int(np.prod(case.size)))
    y = conv(x, w, **case.kwargs(), algorithm="reference")
    assert y.shape[2:] == case.out_size
    assert_close(C @ x.ravel(), y.ravel(), "C @ vec(x)")
    S = conv_matrix(w, case.size, **case.kwargs(), sparse=True)
    assert scipy.sparse.issparse(S) and S.format == "csr"
    np.testing.assert_array_equal(S.toarray(), C)
    # flip_kernel folds into C as well.
    C_flip = conv_matrix(w, case.size, **case.kwargs(), flip_kernel=True)
    assert_close(C_flip @ x.ravel(), conv(x, w, **case.kwargs(), flip_kernel=True).ravel(), "flipped C @ vec(x)")


@settings(max_examples=60)
@given(conv_cases())
def test_matrix_transpose_is_conv_transpose_or_input_gradient(case):
    x, w, _ = case.arrays()
    C = conv_matrix(w, case.size, **case.kwargs())
    gy = np.random.default_rng(case.seed + 1).standard_normal((1, case.c_out, *case.out_size))
    back = (C.T @ gy.ravel()).reshape(x.shape)
    if case.mode == "zeros":
        expected = conv_transpose(gy, w, None, case.stride, case.pairs, case.slack, case.groups, case.dilation,
                                  algorithm="reference")
        assert_close(back, expected, "C.T @ vec(y) vs conv_transpose")
    assert_close(back, conv_vjp(gy, x, w, **case.kwargs(), algorithm="reference").input, "C.T @ vec(y) vs conv_vjp")
    # The adjoint identity <C x, y> = <x, C^T y>.
    assert_close(np.vdot(C @ x.ravel(), gy.ravel()), np.vdot(x.ravel(), back.ravel()), "adjoint identity")


@settings(max_examples=50)
@given(conv_cases(modes=("zeros",)))
def test_transposed_matrix_is_transpose_of_forward(case):
    _, w, _ = case.arrays()
    C = conv_matrix(w, case.size, case.stride, case.pairs, case.dilation, case.groups)
    CT = conv_matrix(w, case.out_size, case.stride, case.pairs, case.dilation, case.groups, transposed=True,
                     output_padding=case.slack)
    np.testing.assert_array_equal(CT, C.T)
    CT_sparse = conv_matrix(w, case.out_size, case.stride, case.pairs, case.dilation, case.groups, transposed=True,
                            output_padding=case.slack, sparse=True)
    assert scipy.sparse.issparse(CT_sparse)
    np.testing.assert_array_equal(CT_sparse.toarray(), C.T)
    CT_flip = conv_matrix(w, case.out_size, case.stride, case.pairs, case.dilation, case.groups, transposed=True,
                          output_padding=case.slack, flip_kernel=True)
    np.testing.assert_array_equal(
        CT_flip, conv_matrix(w, case.size, case.stride, case.pairs, case.dilation, case.groups, flip_kernel=True).T)


@pytest.mark.parametrize("size, kernel, stride, pairs, dilation", [
    ((5, 6), (3, 2), (2, 3), ((1, 0), (2, 1)), (1, 2)),
    ((7,), (3,), (2,), ((1, 1),), (2,)),
    ((4,), (1,), (3,), ((0, 0),), (1,)),
    # The transposed convolution's output with output_padding 0 would be empty ((1-1)*3 - 2 + 0 + 1 = -1), yet
    # size 1 is reachable with output_padding 2; torch's ConvTranspose1d(1, 1, 1, stride=3, padding=1)
    # accepts output_size=[1].
    ((1,), (1,), (3,), ((1, 1),), (1,)),
])
def test_transposed_matrix_from_output_size(size, kernel, stride, pairs, dilation):
    w = np.random.default_rng(0).standard_normal((2, 3, *kernel))
    C = conv_matrix(w, size, stride, pairs, dilation)
    out_size = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                     for n, (lo, hi), d, k, s in zip(size, pairs, dilation, kernel, stride, strict=True))
    CT = conv_matrix(w, out_size, stride, pairs, dilation, transposed=True, output_size=size)
    np.testing.assert_array_equal(CT, C.T)


def test_padding_mode_entries_add_up():
    # reflect on 1-D [a b c] with padding 1 and kernel [1 10 100]: padded is [b a b c b];
    # y0 = 1*b + 10*a + 100*b, y1 = 1*a + 10*b + 100*c, y2 = 1*b + 10*c + 100*b.
    C = conv_matrix(np.array([[[1.0, 10.0, 100.0]]]), (3,), padding=1, padding_mode="reflect")
    assert_close(C, np.array([[10.0, 101.0, 0.0], [1.0, 10.0, 100.0], [0.0, 101.0, 10.0]]))
    C = conv_matrix(np.array([[[1.0, 10.0, 100.0]]]), (3,), padding=1, padding_mode="circular")
    assert_close(C, np.array([[10.0, 100.0, 1.0], [1.0, 10.0, 100.0], [100.0, 1.0, 10.0]]))


def test_conv_matrix_dtype_and_arguments():
    w = np.ones((2, 1, 3, 3), dtype=np.float32)
    assert conv_matrix(w, 5).dtype == np.float32
    assert conv_matrix(w, 5).shape == conv_matrix(w, (5, 5)).shape == (2 * 9, 25)
    assert conv_matrix(w.astype(np.int64), (4, 4)).dtype == np.int64
    with pytest.raises(ValueError, match=r"conv_matrix: `input_size` \(=\(5,\)\) must have 2 entries"):
        conv_matrix(w, (5,))
    with pytest.raises(ValueError, match="conv_matrix: `weight` must have at least 3 dimensions"):
        conv_matrix(np.ones((2, 3)), (5,))
    with pytest.raises(ValueError, match=r"conv_matrix: `groups` \(=2\) must divide the output channels"):
        conv_matrix(np.ones((3, 1, 2, 2)), (4, 4), groups=2)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "symmetric"])
def test_conv_matrix_transposed_with_a_padding_mode_is_the_adjoint(mode):
    # A transposed convolution with a padding mode is C^T of the convolution with that mode: the matrix must
    # not ignore the mode, and it must be what conv_transpose computes.
    rng = np.random.default_rng(3)
    w, size = rng.standard_normal((2, 3, 3, 3)), (4, 5)
    c_t = conv_matrix(w, size, stride=2, padding=1, padding_mode=mode, transposed=True)
    x = rng.standard_normal((2,) + size)
    y = F.conv_transpose2d(x[None], w, stride=2, padding=1, padding_mode=mode)[0]
    np.testing.assert_allclose(c_t @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    forward = conv_matrix(w, y.shape[1:], stride=2, padding=1, padding_mode=mode)
    np.testing.assert_array_equal(c_t, forward.T)
    assert not np.array_equal(c_t, conv_matrix(w, size, stride=2, padding=1, transposed=True))


# --------------------------------------------------------------------------- algorithm='matrix' vs 'reference'


@settings(max_examples=50)
@given(conv_cases(), st.integers(1, 2))
def test_matrix_algorithm_conv_and_gradients_equal_reference(case, batch):
    x, w, b = case.arrays(batch=batch)
    outputs = {a: conv(x, w, b, **case.kwargs(), algorithm=a) for a in ("matrix", "reference")}
    assert_close(outputs["matrix"], outputs["reference"], "conv")
    gy = np.random.default_rng(case.seed + 2).standard_normal(outputs["reference"].shape)
    grads = {a: conv_vjp(gy, x, w, b, **case.kwargs(), algorithm=a) for a in ("matrix", "reference")}
    for name in ("input", "weight", "bias"):
        if name == "bias" and b is None:
            assert grads["matrix"].bias is None
            continue
        assert_close(getattr(grads["matrix"], name), getattr(grads["reference"], name), f"grad {name}")


@st.composite
def transpose_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    # Non-empty output: (I-1)s - lo - hi + d(k-1) + op + 1 >= 1.
    size = tuple(max(1, -(-(lo + hi - d * (k - 1) - op) // s) + 1) + draw(st.integers(0, 2))
                 for (lo, hi), d, k, op, s in zip(pairs, dilation, kernel, output_padding, stride, strict=True))
    return nd, groups, c_in, c_out, kernel, stride, dilation, pairs, output_padding, size, draw(st.booleans()), \
        draw(st.integers(0, 2**16))


@settings(max_examples=50)
@given(transpose_cases(), st.integers(1, 2))
def test_matrix_algorithm_conv_transpose_and_gradients_equal_reference(case, batch):
    _nd, groups, c_in, c_out, kernel, stride, dilation, pairs, output_padding, size, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    b = rng.standard_normal(c_out) if has_bias else None
    args = (stride, pairs, output_padding, groups, dilation)
    outputs = {a: conv_transpose(x, w, b, *args, algorithm=a) for a in ("matrix", "reference")}
    assert_close(outputs["matrix"], outputs["reference"], "conv_transpose")
    gy = rng.standard_normal(outputs["reference"].shape)
    grads = {a: conv_transpose_vjp(gy, x, w, b, *args, algorithm=a) for a in ("matrix", "reference")}
    for name in ("input", "weight", "bias"):
        if name == "bias" and b is None:
            continue
        assert_close(getattr(grads["matrix"], name), getattr(grads["reference"], name), f"grad {name}")


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.complex128])
def test_matrix_algorithm_dtypes(dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 2, 5, 6)) * 4).astype(dtype)
    w = (rng.standard_normal((4, 1, 3, 2)) * 4).astype(dtype)
    kwargs = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    assert_close(conv(x, w, **kwargs, algorithm="matrix"), conv(x, w, **kwargs, algorithm="reference"))
    assert_close(conv_transpose(x, w.swapaxes(0, 1).reshape(2, 2, 3, 2).copy(), stride=2, algorithm="matrix"),
                 conv_transpose(x, w.swapaxes(0, 1).reshape(2, 2, 3, 2).copy(), stride=2, algorithm="reference"))


def test_matrix_algorithm_empty_batch():
    x, w = np.zeros((0, 2, 4, 4)), np.ones((3, 2, 2, 2))
    expected = conv(x, w, algorithm="reference")
    assert expected.shape == (0, 3, 3, 3)
    assert_close(conv(x, w, algorithm="matrix"), expected)
