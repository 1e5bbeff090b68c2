"""Three views of the transposed convolution (`convlab.ops.transposed`) are one operation.

``by_zero_insertion`` (insert zeros, pad, flip, convolve), ``by_matrix``
(multiply by ``C.T``) and ``by_scatter`` (stamp the scaled kernel) must equal
``conv_transpose`` and ``torch.nn.functional.conv_transpose{1,2,3}d`` for
random strides, paddings (symmetric and ``(lo, hi)`` pairs), output paddings
``< max(stride, dilation)`` and dilations. torch takes only symmetric padding, so
for pairs its unpadded result is cropped here by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.ops.conv import conv_transpose
from convlab.ops.transposed import by_matrix, by_scatter, by_zero_insertion
from tests.helpers import assert_close

torch = pytest.importorskip("torch")

VIEWS = {"by_zero_insertion": by_zero_insertion, "by_matrix": by_matrix, "by_scatter": by_scatter}


def torch_transpose(x, w, stride, pairs, output_padding, dilation):
    """torch's transposed convolution with (lo, hi) padding: run it unpadded, then crop lo / hi - op by hand."""
    nd = w.ndim - 2
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    if all(lo == hi for lo, hi in pairs):
        return fn(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=tuple(lo for lo, _ in pairs),
                  output_padding=output_padding, dilation=dilation).numpy()
    full = fn(torch.from_numpy(x), torch.from_numpy(w), stride=stride, dilation=dilation).numpy()
    full = np.pad(full, [(0, 0), (0, 0)] + [(0, op) for op in output_padding])  # output_padding adds zeros-reach
    out = tuple(n - lo - hi for n, (lo, hi) in zip(full.shape[2:], pairs, strict=True))
    return full[(slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(out, pairs, strict=True)))]


@st.composite
def transpose_cases(draw):
    nd = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if draw(st.booleans()):
        pairs = tuple((p, p) for p in (draw(st.integers(0, 2)) for _ in range(nd)))
    else:
        pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    # Non-empty output: (I-1)s - lo - hi + d(k-1) + op + 1 >= 1.
    size = tuple(max(1, -(-(lo + hi - d * (k - 1) - op) // s) + 1) + draw(st.integers(0, 2))
                 for (lo, hi), d, k, op, s in zip(pairs, dilation, kernel, output_padding, stride, strict=True))
    return nd, c_in, c_out, kernel, stride, dilation, pairs, output_padding, size, draw(st.integers(1, 2)), \
        draw(st.integers(0, 2**16))


def padding_argument(pairs, symmetric_as_ints):
    if symmetric_as_ints and all(lo == hi for lo, hi in pairs):
        return tuple(lo for lo, _ in pairs)
    return pairs


@settings(max_examples=60)
@given(transpose_cases(), st.booleans())
def test_views_agree_with_conv_transpose_and_torch(case, as_ints):
    _nd, c_in, c_out, kernel, stride, dilation, pairs, output_padding, size, batch, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *size))
    w = rng.standard_normal((c_in, c_out, *kernel))
    padding = padding_argument(pairs, as_ints)
    expected = torch_transpose(x, w, stride, pairs, output_padding, dilation)
    got = conv_transpose(x, w, None, stride, padding, output_padding, 1, dilation, algorithm="reference")
    assert_close(got, expected, "conv_transpose vs torch")
    for name, view in VIEWS.items():
        assert_close(view(x, w, stride, padding, output_padding, dilation), expected, name)


@pytest.mark.parametrize("name", list(VIEWS))
def test_seed_examples(name):
    view = VIEWS[name]
    rng = np.random.default_rng(0)
    # 3x3 input, k=3, s=2, p=1 -> 5x5.
    x, w = rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3))
    y = view(x, w, stride=2, padding=1)
    assert y.shape == (1, 1, 5, 5)
    assert_close(y, conv_transpose(x, w, stride=2, padding=1))
    # The tutorial's pictures: a 2x2 input, 3x3 kernel -> 4x4 (stride 1), and with one zero inserted -> 5x5.
    x = rng.standard_normal((1, 1, 2, 2))
    assert view(x, w).shape == (1, 1, 4, 4)
    y = view(x, w, stride=2)
    assert y.shape == (1, 1, 5, 5)
    stamped = np.zeros((5, 5))
    for i in range(2):
        for j in range(2):
            stamped[2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[0, 0, i, j] * w[0, 0]
    assert_close(y[0, 0], stamped)


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_keep_float32(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 4, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    kwargs = dict(stride=(2, 3), padding=((1, 0), (0, 1)), output_padding=(1, 2), dilation=(1, 2))
    assert_close(VIEWS[name](x, w, **kwargs), conv_transpose(x, w, **kwargs))


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_check_arguments(name):
    view = VIEWS[name]
    with pytest.raises(ValueError, match=rf"{name}: `input` must be batched"):
        view(np.ones((1, 3, 3)), np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=rf"{name}: `output_padding` \(=2\) must be smaller than either stride"):
        view(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, output_padding=2)
