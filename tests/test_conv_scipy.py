"""The conventions beyond PyTorch, against hand-worked results, NumPy and SciPy.

* ``padding='same_tf'`` (TensorFlow's SAME, any stride) against arrays worked out by hand;
* ``padding='causal'`` against a causal FIR filter written here and ``scipy.signal.lfilter``;
* ``padding_mode='symmetric'`` against ``np.pad(..., mode='symmetric')`` and a valid correlation;
* ``flip_kernel=True`` (true convolution) against ``scipy.signal.convolve`` and the
  cross-correlation against ``scipy.signal.correlate`` in 'valid', 'full' and 'same';
* ``scipy.ndimage.correlate`` boundary modes: 'reflect' is convlab's 'symmetric', 'mirror'
  is 'reflect', 'wrap' is 'circular', 'nearest' is 'replicate', 'constant' is 'zeros'.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal

import convlab.functional as F
from tests.helpers import assert_close

ALGORITHMS = ("im2col", "reference")


def conv_single(x, w, **kwargs):
    """convlab on one channel of one sample: (S) x (K) -> (O)."""
    return F.conv(x[None, None], w[None, None], **kwargs)[0, 0]


# --------------------------------------------------------------------------- TensorFlow 'same', by hand


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x, w, stride, dilation, expected", [
    # I=5, k=3, s=2: O=ceil(5/2)=3, total=max(2*2+3-5,0)=2 -> (1,1); padded 0 1 2 3 4 5 0.
    ([1, 2, 3, 4, 5], [1, 10, 100], 2, 1, [210, 432, 54]),
    # I=4, k=3, s=2: O=2, total=2+3-4=1 -> (0,1): the extra zero goes on the right; padded 1 2 3 4 0.
    ([1, 2, 3, 4], [1, 10, 100], 2, 1, [321, 43]),
    # I=4, k=2, s=1 (even kernel): total=1 -> (0,1); windows 12 23 34 40.
    ([1, 2, 3, 4], [1, 10], 1, 1, [21, 32, 43, 4]),
    # I=6, k=4, s=2 (even kernel, stride 2): O=3, total=4+4-6=2 -> (1,1); padded 0 1 2 3 4 5 6 0.
    ([1, 2, 3, 4, 5, 6], [1, 10, 100, 1000], 2, 1, [3210, 5432, 654]),
    # I=4, k=2, d=2: O=4, total=3+2+1-4=2 -> (1,1); padded 0 1 2 3 4 0, taps j and j+2.
    ([1, 2, 3, 4], [1, 10], 1, 2, [20, 31, 42, 3]),
    # I=7, k=3, s=3, d=2: O=3, total=max(6+5-7,0)=4 -> (2,2); padded 0 0 1 2 3 4 5 6 7 0 0, taps j, j+2, j+4.
    ([1, 2, 3, 4, 5, 6, 7], [1, 10, 100], 3, 2, [0 + 1 * 10 + 3 * 100, 2 + 4 * 10 + 6 * 100, 5 + 7 * 10 + 0]),
])
def test_same_tf_1d_by_hand(x, w, stride, dilation, expected, algorithm):
    y = conv_single(np.array(x, dtype=float), np.array(w, dtype=float), stride=stride, dilation=dilation,
                    padding="same_tf", algorithm=algorithm)
    np.testing.assert_array_equal(y, np.array(expected, dtype=float))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_tf_2d_stride_2_even_kernel_by_hand(algorithm):
    # 3x3 input, 2x2 kernel, stride 2: O = 2 per dim, total = max(2 + 2 - 3, 0) = 1 -> (0, 1) per dim:
    # one zero row at the bottom and one zero column on the right.
    x = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=float)
    w = np.array([[1, 10], [100, 1000]], dtype=float)
    expected = np.array([
        [1 + 2 * 10 + 4 * 100 + 5 * 1000, 3 + 6 * 100],
        [7 + 8 * 10, 9],
    ], dtype=float)
    np.testing.assert_array_equal(conv_single(x, w, stride=2, padding="same_tf", algorithm=algorithm), expected)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_tf_2d_odd_kernel_mixed_strides_by_hand(algorithm):
    # 4x5 input, 3x3 kernel, stride (2, 1).
    # Height: O = 2, total = 2 + 3 - 4 = 1 -> (0, 1). Width: O = 5, total = 4 + 3 - 5 = 2 -> (1, 1).
    x = np.arange(1.0, 21.0).reshape(4, 5)
    w = np.zeros((3, 3))
    w[0, 0], w[2, 2], w[1, 1] = 1.0, 100.0, 10000.0  # top-left, bottom-right and centre taps
    padded = np.zeros((5, 7))
    padded[0:4, 1:6] = x
    expected = np.array([[padded[r, c] + 100 * padded[r + 2, c + 2] + 10000 * padded[r + 1, c + 1]
                          for c in range(5)] for r in (0, 2)])
    assert expected[0, 0] == 0 + 100 * 12 + 10000 * 6 and expected[1, 4] == 14 + 0 + 10000 * 20
    np.testing.assert_array_equal(conv_single(x, w, stride=(2, 1), padding="same_tf", algorithm=algorithm), expected)


def test_same_tf_stride_1_odd_kernel_equals_scipy_same():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 7)), rng.standard_normal((3, 5))
    assert_close(conv_single(x, w, padding="same_tf"), signal.correlate(x, w, mode="same"), "same_tf vs scipy")


# --------------------------------------------------------------------------- causal


@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_causal_is_a_causal_filter(dilation, algorithm):
    rng = np.random.default_rng(dilation)
    x, w = rng.standard_normal(10), rng.standard_normal(3)
    k = len(w)
    # Output t uses x[t - (k-1-j)*d] for tap j, zero before the start.
    expected = np.array([
        sum(w[j] * x[t - (k - 1 - j) * dilation] for j in range(k) if t - (k - 1 - j) * dilation >= 0)
        for t in range(len(x))
    ])
    y = conv_single(x, w, padding="causal", dilation=dilation, algorithm=algorithm)
    assert_close(y, expected, "causal correlation")
    # True convolution: the classic FIR filter y[t] = sum_j h[j] x[t - j d] = lfilter(h upsampled by d, 1, x).
    h = np.zeros((k - 1) * dilation + 1)
    h[::dilation] = w
    y_conv = conv_single(x, w, padding="causal", dilation=dilation, flip_kernel=True, algorithm=algorithm)
    assert_close(y_conv, signal.lfilter(h, [1.0], x), "causal convolution vs lfilter")
    # Changing x[t0] never changes an output before t0.
    for t0 in (0, 4, 9):
        bumped = x.copy()
        bumped[t0] += 1.0
        y2 = conv_single(bumped, w, padding="causal", dilation=dilation, algorithm=algorithm)
        np.testing.assert_array_equal(y2[:t0], y[:t0])
        assert not np.array_equal(y2[t0:], y[t0:]) or w[-1] == 0


# --------------------------------------------------------------------------- symmetric padding


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("pairs", [((1, 1), (2, 2)), ((3, 0), (1, 4)), ((4, 4), (0, 5))])
def test_symmetric_padding_equals_np_pad_then_valid(pairs, algorithm):
    rng = np.random.default_rng(sum(sum(p) for p in pairs))
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((2, 3, 3, 2))
    y = F.conv2d(x, w, padding=pairs, padding_mode="symmetric", algorithm=algorithm)
    padded = np.pad(x, ((0, 0), (0, 0)) + pairs, mode="symmetric")
    expected = np.zeros(y.shape)
    for n in range(2):
        for o in range(2):
            expected[n, o] = sum(signal.correlate(padded[n, c], w[o, c], mode="valid") for c in range(3))
    assert_close(y, expected, "symmetric")


def test_symmetric_padding_by_hand():
    # symmetric: 321 1234 432 (the edge repeated); identity kernel shows the padded signal.
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = conv_single(x, np.array([1.0]), padding=3, padding_mode="symmetric")
    np.testing.assert_array_equal(y, [3, 2, 1, 1, 2, 3, 4, 4, 3, 2])
    assert_close(y, np.pad(x, 3, mode="symmetric"), "np.pad symmetric")


# --------------------------------------------------------------------------- scipy.signal convolve / correlate


def scipy_same_pairs(kernel):
    """scipy's 'same' keeps the centre of 'full' starting at (k-1)//2, so the left pad is k//2."""
    return tuple((k // 2, (k - 1) // 2) for k in kernel)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kernel", [(3,), (4,), (2, 3), (4, 2), (3, 3), (2, 3, 4)])
@pytest.mark.parametrize("mode", ["valid", "full", "same"])
def test_flip_kernel_equals_scipy_convolve(kernel, mode, algorithm):
    rng = np.random.default_rng(len(kernel) * 10 + kernel[0])
    x = rng.standard_normal((7, 6, 5)[: len(kernel)])
    w = rng.standard_normal(kernel)
    padding = scipy_same_pairs(kernel) if mode == "same" else mode
    y = conv_single(x, w, padding=padding, flip_kernel=True, algorithm=algorithm)
    assert_close(y, signal.convolve(x, w, mode=mode, method="direct"), f"convolve {mode}")
    # and the cross-correlation (no flip) is scipy's correlate
    y = conv_single(x, w, padding=padding, algorithm=algorithm)
    assert_close(y, signal.correlate(x, w, mode=mode, method="direct"), f"correlate {mode}")


def test_scipy_same_differs_from_torch_same_for_even_kernels():
    """convlab 'same' is PyTorch's (extra on the right); scipy's 'same' puts it on the left."""
    x = np.arange(1.0, 6.0)
    w = np.array([1.0, 10.0])
    assert_close(conv_single(x, w, padding="same"), np.array([21.0, 32.0, 43.0, 54.0, 5.0]), "torch same")
    assert_close(conv_single(x, w, padding=((1, 0),)), signal.correlate(x, w, mode="same"), "scipy same")
    assert_close(signal.correlate(x, w, mode="same"), np.array([10.0, 21.0, 32.0, 43.0, 54.0]), "scipy same")


def test_multichannel_flip_kernel_sums_scipy_convolutions():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    y = F.conv2d(x, w, b, padding="full", flip_kernel=True)
    for n in range(2):
        for o in range(4):
            expected = b[o] + sum(signal.convolve(x[n, c], w[o, c], mode="full") for c in range(3))
            assert_close(y[n, o], expected, f"sample {n}, channel {o}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradients_are_scipy_correlations(algorithm):
    # For y = correlate(x, w, 'valid'): dL/dx = convolve(g, w, 'full'), dL/dw = correlate(x, g, 'valid').
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((7, 6)), rng.standard_normal((3, 2))
    y = conv_single(x, w)
    g = rng.standard_normal(y.shape)
    grads = F.conv_vjp(g[None, None], x[None, None], w[None, None], algorithm=algorithm)
    assert_close(grads.input[0, 0], signal.convolve(g, w, mode="full"), "input gradient")
    assert_close(grads.weight[0, 0], signal.correlate(x, g, mode="valid"), "weight gradient")
    # The transposed convolution is the same full convolution.
    assert_close(F.conv_transpose2d(g[None, None], w[None, None], algorithm=algorithm)[0, 0],
                 signal.convolve(g, w, mode="full"), "conv_transpose")


# --------------------------------------------------------------------------- scipy.ndimage boundary modes

NDIMAGE_MODES = {"reflect": "symmetric", "mirror": "reflect", "wrap": "circular", "nearest": "replicate",
                 "constant": "zeros"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kernel", [(3, 3), (1, 5), (5, 3)])
@pytest.mark.parametrize("ndimage_mode, convlab_mode", list(NDIMAGE_MODES.items()))
def test_ndimage_correlate_modes(ndimage_mode, convlab_mode, kernel, algorithm):
    rng = np.random.default_rng(len(ndimage_mode) + kernel[0])
    x = rng.standard_normal((6, 7))
    w = rng.standard_normal(kernel)
    expected = ndimage.correlate(x, w, mode=ndimage_mode, cval=0.0, origin=0)
    y = conv_single(x, w, padding="same", padding_mode=convlab_mode, algorithm=algorithm)
    assert_close(y, expected, f"ndimage {ndimage_mode} vs convlab {convlab_mode}")
    # ndimage.convolve is the flipped kernel
    y = conv_single(x, w, padding="same", padding_mode=convlab_mode, flip_kernel=True, algorithm=algorithm)
    assert_close(y, ndimage.convolve(x, w, mode=ndimage_mode, cval=0.0, origin=0), "ndimage.convolve")


@pytest.mark.parametrize("ndimage_mode, convlab_mode", list(NDIMAGE_MODES.items()))
def test_ndimage_correlate_modes_3d_and_1d(ndimage_mode, convlab_mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5, 3))
    w = rng.standard_normal((3, 1, 3))
    assert_close(conv_single(x, w, padding="same", padding_mode=convlab_mode),
                 ndimage.correlate(x, w, mode=ndimage_mode, origin=0), "3-d")
    x1 = rng.standard_normal(6)
    w1 = rng.standard_normal(5)
    assert_close(conv_single(x1, w1, padding="same", padding_mode=convlab_mode),
                 ndimage.correlate1d(x1, w1, mode=ndimage_mode, origin=0), "1-d")
