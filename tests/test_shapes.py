"""Shape rules: output sizes, padding resolution and their explanations, checked against torch and brute force."""

from __future__ import annotations

import copy
import doctest
import itertools
import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convlab.shapes
from convlab.shapes import (
    Explained,
    adaptive_pool_window,
    conv_output_length,
    conv_output_shape,
    conv_transpose_output_length,
    conv_transpose_output_shape,
    output_padding_for_size,
    pool_output_length,
    pool_output_shape,
    resolve_padding,
    same_tf_padding,
)
from convlab.spec import ConvSpec, PoolSpec

sizes = st.integers(1, 40)
kernels = st.integers(1, 7)
strides = st.integers(1, 5)
dilations = st.integers(1, 4)
pads = st.integers(0, 4)


def _windows(total: int, kernel: int, stride: int, dilation: int) -> int:
    """Brute force: how many window starts o*s keep the dilated kernel inside ``total`` elements."""
    span = dilation * (kernel - 1) + 1
    count = 0
    while count * stride + span <= total:
        count += 1
    return count


# --------------------------------------------------------------------------- conv_output_length


def test_conv_output_length_explanation_example():
    n = conv_output_length(32, 3, stride=2, padding=(1, 1), dilation=2)
    assert n == 15
    assert n.explanation == "floor((32 + 1 + 1 - 2*(3-1) - 1) / 2) + 1 = 15"
    assert n.formula == "floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1"
    assert n.substituted == "floor((32 + 1 + 1 - 2*(3-1) - 1) / 2) + 1"


def test_conv_output_length_explanation_without_dilation_and_int_padding():
    n = conv_output_length(5, 3, padding=2)
    assert n == 7
    assert n.explanation == "floor((5 + 2 + 2 - (3-1) - 1) / 1) + 1 = 7"


def test_conv_output_length_asymmetric():
    n = conv_output_length(10, 4, stride=3, padding=(0, 2))
    assert n == 3
    assert n.explanation == "floor((10 + 0 + 2 - (4-1) - 1) / 3) + 1 = 3"


@given(size=sizes, kernel=kernels, stride=strides, lo=pads, hi=pads, dilation=dilations)
def test_conv_output_length_counts_windows(size, kernel, stride, lo, hi, dilation):
    total = size + lo + hi
    n = conv_output_length(size, kernel, stride, (lo, hi), dilation)
    assert isinstance(n, Explained) and isinstance(n, int)
    if dilation * (kernel - 1) + 1 <= total:
        assert n == _windows(total, kernel, stride, dilation)
    else:
        assert n < 1  # the kernel does not fit; callers check
    assert n.explanation.endswith(f" = {int(n)}")
    assert eval(n.substituted.replace("floor", "math.floor")) == n  # the text is the arithmetic


# --------------------------------------------------------------------------- conv_transpose_output_length


def test_conv_transpose_output_length_explanation():
    n = conv_transpose_output_length(7, 3, stride=2, padding=1, dilation=2, output_padding=1)
    assert n == (7 - 1) * 2 - 2 + 2 * 2 + 1 + 1 == 16
    assert n.explanation == "(7 - 1)*2 - 1 - 1 + 2*(3-1) + 1 + 1 = 16"


@given(size=sizes, kernel=kernels, stride=strides, lo=pads, hi=pads, dilation=dilations, data=st.data())
def test_conv_transpose_inverts_the_conv_length(size, kernel, stride, lo, hi, dilation, data):
    output_padding = data.draw(st.integers(0, stride - 1))
    n = conv_transpose_output_length(size, kernel, stride, (lo, hi), dilation, output_padding)
    assume(n >= 1)
    # Every length in [O_min, O_min + s - 1] convolves back to `size` (Dumoulin & Visin, relationship 14).
    assert conv_output_length(n, kernel, stride, (lo, hi), dilation) == size
    assert eval(n.substituted) == n


@given(size=st.integers(1, 12), kernel=st.integers(1, 5), stride=st.integers(1, 4), padding=st.integers(0, 3),
       dilation=st.integers(1, 3), data=st.data())
def test_conv_transpose_output_length_matches_torch(size, kernel, stride, padding, dilation, data):
    torch = pytest.importorskip("torch")
    output_padding = data.draw(st.integers(0, max(stride, dilation) - 1))
    n = conv_transpose_output_length(size, kernel, stride, padding, dilation, output_padding)
    assume(n >= 1)
    y = torch.nn.functional.conv_transpose1d(
        torch.empty(1, 1, size, device="meta"), torch.empty(1, 1, kernel, device="meta"),
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
    )
    assert y.shape[-1] == n


def test_conv_transpose_output_shape():
    spec = ConvSpec((3, 2), stride=2, padding=1, transposed=True, output_padding=(1, 0))
    assert conv_transpose_output_shape(spec, (4, 5)) == (8, 8)
    assert conv_transpose_output_shape(spec, (4, 5), output_padding=(0, 1)) == (7, 9)
    with pytest.raises(ValueError, match=r"conv: the output would be empty in spatial dimension 0: .* = -1$"):
        conv_transpose_output_shape(ConvSpec(1, padding=1, transposed=True, ndim=1), (1,))


# --------------------------------------------------------------------------- pool_output_length


def test_pool_output_length_ceil_mode_docstring():
    assert pool_output_shape(PoolSpec(3, stride=2, ceil_mode=True, ndim=1), (6,)) == (3,)
    assert pool_output_shape(PoolSpec(3, stride=2, ceil_mode=False, ndim=1), (6,)) == (2,)


def test_pool_output_length_drops_last_window_in_right_padding():
    # ceil((5 + 1 + 1 - 1 - 1) / 2) + 1 = 4, but window 3 would start at 6 >= 5 + 1.
    n = pool_output_length(5, 2, 2, padding=1, ceil_mode=True)
    assert n == 3
    assert n.explanation == "ceil((5 + 1 + 1 - (2-1) - 1) / 2) + 1 - 1 (last window would start at 6 >= 5 + 1) = 3"
    assert "minus 1 if the last window starts in the right padding" in n.formula
    kept = pool_output_length(6, 3, 2, ceil_mode=True)
    assert kept == 3 and kept.explanation == "ceil((6 + 0 + 0 - (3-1) - 1) / 2) + 1 = 3"
    floor = pool_output_length(6, 3, 2)
    assert floor == 2 and floor.explanation == "floor((6 + 0 + 0 - (3-1) - 1) / 2) + 1 = 2"


def _torch_pool_length(pool, size, kernel, stride, padding, ceil_mode, **extra):
    torch = pytest.importorskip("torch")
    try:
        y = pool(torch.zeros(1, 1, size), kernel, stride, padding, ceil_mode=ceil_mode, **extra)
    except RuntimeError:
        return None
    return y.shape[-1]


@given(size=st.integers(1, 30), kernel=st.integers(1, 6), stride=st.integers(1, 6), dilation=st.integers(1, 3),
       ceil_mode=st.booleans(), data=st.data())
def test_pool_output_length_matches_torch_max_pool1d(size, kernel, stride, dilation, ceil_mode, data):
    torch = pytest.importorskip("torch")
    padding = data.draw(st.integers(0, kernel // 2))
    ours = pool_output_length(size, kernel, stride, padding, dilation, ceil_mode)
    theirs = _torch_pool_length(torch.nn.functional.max_pool1d, size, kernel, stride, padding, ceil_mode,
                                dilation=dilation)
    if theirs is None or theirs == 0:
        assert ours < 1  # torch refuses (or returns nothing), and convlab's shape check will too
    else:
        assert ours == theirs


@given(size=st.integers(1, 30), kernel=st.integers(1, 6), stride=st.integers(1, 6), ceil_mode=st.booleans(),
       data=st.data())
def test_pool_output_length_matches_torch_avg_pool1d(size, kernel, stride, ceil_mode, data):
    torch = pytest.importorskip("torch")
    padding = data.draw(st.integers(0, kernel // 2))
    ours = pool_output_length(size, kernel, stride, padding, 1, ceil_mode)
    theirs = _torch_pool_length(torch.nn.functional.avg_pool1d, size, kernel, stride, padding, ceil_mode)
    if theirs is None or theirs == 0:
        assert ours < 1
    else:
        assert ours == theirs


@given(size=sizes, kernel=kernels, stride=strides, dilation=dilations, data=st.data())
def test_pool_last_window_always_starts_in_input_or_left_padding(size, kernel, stride, dilation, data):
    padding = data.draw(st.integers(0, kernel // 2))
    n = pool_output_length(size, kernel, stride, padding, dilation, ceil_mode=True)
    assume(n >= 1)
    assert (n - 1) * stride < size + padding
    assert n >= pool_output_length(size, kernel, stride, padding, dilation, ceil_mode=False)


def test_pool_output_shape_errors():
    with pytest.raises(ValueError, match=r"max_pool1d: the pooling window \(size 5, dilation 2\) does not fit in "
                                         r"the padded input \(3 \+ 1 \+ 1\) in spatial dimension 0"):
        pool_output_shape(PoolSpec(5, padding=1, dilation=2, ndim=1, name="max_pool1d"), (3,))
    with pytest.raises(ValueError, match=r"pool: the input has 1 spatial dimension\(s\) \(3,\), but the spec has 2"):
        pool_output_shape(PoolSpec(2, ndim=2), (3,))


# --------------------------------------------------------------------------- same_tf_padding / resolve_padding


@given(size=st.integers(1, 60), kernel=kernels, stride=strides, dilation=dilations)
def test_same_tf_padding_tf_formula_and_brute_force(size, kernel, stride, dilation):
    lo, hi = same_tf_padding(size, kernel, stride, dilation)
    total = lo + hi
    effective = dilation * (kernel - 1) + 1
    # TensorFlow's documented rule.
    tf_total = max(effective - stride, 0) if size % stride == 0 else max(effective - size % stride, 0)
    assert total == tf_total
    assert lo == total // 2 and hi == total - lo  # the extra element on the right
    # Brute force: the smallest total padding that gives ceil(I / s) outputs.
    want = math.ceil(size / stride)
    smallest = next(t for t in range(effective + stride + 1)
                    if conv_output_length(size, kernel, stride, (t // 2, t - t // 2), dilation) == want)
    assert total == smallest


def test_same_tf_padding_explanation():
    lo, hi = same_tf_padding(7, 3, 2)
    assert (lo, hi) == (1, 1)
    assert lo.explanation == "floor(max((ceil(7/2) - 1)*2 + (3-1) + 1 - 7, 0) / 2) = 1"
    assert hi.explanation == "max((ceil(7/2) - 1)*2 + (3-1) + 1 - 7, 0) - 1 = 1"
    lo, hi = same_tf_padding(8, 4, 2, dilation=2)
    assert (lo, hi) == (2, 3)
    assert "2*(4-1)" in lo.explanation


def test_same_tf_padding_matches_tensorflow_style_conv_in_torch():
    torch = pytest.importorskip("torch")
    for size in range(1, 12):
        for kernel in range(1, 5):
            for stride in range(1, 4):
                lo, hi = same_tf_padding(size, kernel, stride)
                x = torch.nn.functional.pad(torch.empty(1, 1, size, device="meta"), (lo, hi))
                y = torch.nn.functional.conv1d(x, torch.empty(1, 1, kernel, device="meta"), stride=stride)
                assert y.shape[-1] == math.ceil(size / stride)


def test_resolve_padding():
    explicit = ConvSpec((3, 4), padding=((0, 1), (2, 3)))
    assert resolve_padding(explicit, (10, 10)) == ((0, 1), (2, 3))
    assert resolve_padding(ConvSpec((3, 4), padding="same"), (5, 5)) == ((1, 1), (1, 2))
    spec = ConvSpec((3, 4), stride=(2, 3), padding="same_tf")
    pairs = resolve_padding(spec, (7, 10))
    assert pairs == (tuple(same_tf_padding(7, 3, 2)), tuple(same_tf_padding(10, 4, 3)))
    assert pairs == ((1, 1), (1, 2))
    assert all(type(p) is tuple and len(p) == 2 for p in pairs)


@given(h=st.integers(1, 30), w=st.integers(1, 30), kernel=kernels, stride=strides, dilation=dilations)
def test_conv_output_shape_same_tf_is_ceil(h, w, kernel, stride, dilation):
    spec = ConvSpec(kernel, stride=stride, padding="same_tf", dilation=dilation, ndim=2)
    assert conv_output_shape(spec, (h, w)) == (math.ceil(h / stride), math.ceil(w / stride))


# --------------------------------------------------------------------------- conv_output_shape


def test_conv_output_shape_docstring():
    assert conv_output_shape(ConvSpec(3, stride=2, padding=1, ndim=2), (32, 31)) == (16, 16)


@given(h=st.integers(1, 14), w=st.integers(1, 14), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 3), pw=st.integers(0, 3),
       dh=st.integers(1, 3), dw=st.integers(1, 3))
def test_conv_output_shape_matches_torch(h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    torch = pytest.importorskip("torch")
    spec = ConvSpec((kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    try:
        theirs = torch.nn.functional.conv2d(
            torch.empty(1, 1, h, w, device="meta"), torch.empty(1, 1, kh, kw, device="meta"),
            stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
        ).shape[2:]
    except RuntimeError:
        with pytest.raises(ValueError, match=r"conv: the kernel .* is larger than the padded input"):
            conv_output_shape(spec, (h, w))
        return
    assert conv_output_shape(spec, (h, w)) == tuple(theirs)


@given(size=st.integers(1, 14), kernel=st.integers(1, 4), stride=st.integers(1, 3), lo=st.integers(0, 3),
       hi=st.integers(0, 3), dilation=st.integers(1, 3))
def test_conv_output_shape_asymmetric_matches_torch_pad_then_conv(size, kernel, stride, lo, hi, dilation):
    torch = pytest.importorskip("torch")
    spec = ConvSpec(kernel, stride=stride, padding=((lo, hi),), dilation=dilation, ndim=1)
    x = torch.nn.functional.pad(torch.empty(1, 1, size, device="meta"), (lo, hi))
    try:
        theirs = torch.nn.functional.conv1d(x, torch.empty(1, 1, kernel, device="meta"), stride=stride,
                                            dilation=dilation).shape[2:]
    except RuntimeError:
        with pytest.raises(ValueError):
            conv_output_shape(spec, (size,))
        return
    assert conv_output_shape(spec, (size,)) == tuple(theirs)


def test_conv_output_shape_error_explains():
    spec = ConvSpec((3, 5), padding=((0, 0), (1, 0)), dilation=(1, 2), name="conv2d")
    with pytest.raises(
        ValueError,
        match=r"^conv2d: the kernel \(size 5, dilation 2, so it spans 9\) is larger than the padded input "
        r"\(6 \+ 1 \+ 0 = 7\) in spatial dimension 1: floor\(\(6 \+ 1 \+ 0 - 2\*\(5-1\) - 1\) / 1\) \+ 1 = -1$",
    ):
        conv_output_shape(spec, (8, 6))
    with pytest.raises(ValueError, match=r"conv2d: the input has 3 spatial dimension\(s\) \(8, 6, 2\), but the spec "):
        conv_output_shape(spec, (8, 6, 2))


def test_conv_output_shape_returns_explained():
    out = conv_output_shape(ConvSpec(3, stride=2, padding=1, ndim=3), (9, 8, 7))
    assert out == (5, 4, 4)
    assert all(isinstance(o, Explained) for o in out)
    assert out[1].explanation == "floor((8 + 1 + 1 - (3-1) - 1) / 2) + 1 = 4"


# --------------------------------------------------------------------------- output_padding_for_size


@given(size=st.integers(1, 10), kernel=st.integers(1, 5), stride=st.integers(1, 4), padding=st.integers(0, 2),
       dilation=st.integers(1, 4))
def test_output_padding_for_size_valid_range(size, kernel, stride, padding, dilation):
    spec = ConvSpec(kernel, stride=stride, padding=padding, dilation=dilation, transposed=True, ndim=1,
                    name="conv_transpose1d")
    smallest = conv_transpose_output_length(size, kernel, stride, padding, dilation, 0)
    assume(smallest >= 1)
    largest = smallest + max(stride, dilation) - 1
    for want in range(max(smallest - 2, 0), largest + 3):
        if smallest <= want <= largest:
            (op,) = output_padding_for_size(spec, (size,), (want,))
            assert op == want - smallest
            assert conv_transpose_output_length(size, kernel, stride, padding, dilation, op) == want
            # With batch and channel dimensions too.
            assert output_padding_for_size(spec, (size,), (2, 3, want)) == (op,)
        else:
            with pytest.raises(
                ValueError,
                match=rf"^conv_transpose1d: `output_size` \(={want}\) is impossible in spatial dimension 0: .*"
                rf"must be in \[{smallest}, {largest}\]",
            ):
                output_padding_for_size(spec, (size,), (want,))


def test_output_padding_for_size_agrees_with_torch_module_when_dilation_le_stride():
    torch = pytest.importorskip("torch")
    for stride in (1, 2, 3):
        for dilation in range(1, stride + 1):
            layer = torch.nn.ConvTranspose1d(1, 1, 3, stride=stride, padding=1, dilation=dilation, device="meta")
            spec = ConvSpec(3, stride=stride, padding=1, dilation=dilation, transposed=True, ndim=1)
            smallest = conv_transpose_output_length(6, 3, stride, 1, dilation)
            for want in range(smallest, smallest + stride):
                assert layer(torch.empty(1, 1, 6, device="meta"), output_size=[want]).shape[-1] == want
                (op,) = output_padding_for_size(spec, (6,), (want,))
                assert conv_transpose_output_length(6, 3, stride, 1, dilation, op) == want


def test_output_padding_for_size_message_example():
    spec = ConvSpec((3, 3), stride=2, padding=1, transposed=True, name="conv_transpose2d")
    assert output_padding_for_size(spec, (4, 4), (7, 8)) == (0, 1)
    with pytest.raises(
        ValueError,
        match=r"\(=9\) is impossible in spatial dimension 1: .* must be in \[7, 8\] "
        r"\(\(4 - 1\)\*2 - 1 - 1 \+ \(3-1\) \+ 0 \+ 1 = 7, plus output_padding 0..1\)",
    ):
        output_padding_for_size(spec, (4, 4), (7, 9))
    with pytest.raises(ValueError, match=r"conv_transpose2d: `output_size` \(=\(7,\)\) must have 2 entries "
                                         r"\(or 4 with batch and channels\)"):
        output_padding_for_size(spec, (4, 4), (7,))


# --------------------------------------------------------------------------- adaptive_pool_window


@given(size=st.integers(1, 40), out=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_adaptive_pool_window_matches_torch(size, out, seed):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(seed).standard_normal(size)
    expected = torch.nn.functional.adaptive_avg_pool1d(torch.from_numpy(x).reshape(1, 1, size), out).numpy()[0, 0]
    ours = np.array([x[slice(*adaptive_pool_window(size, out, i))].mean() for i in range(out)])
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@given(size=st.integers(1, 60), out=st.integers(1, 60))
def test_adaptive_pool_windows_cover_the_input(size, out):
    windows = [adaptive_pool_window(size, out, i) for i in range(out)]
    assert windows[0][0] == 0 and windows[-1][1] == size
    for (start, end), (next_start, _) in itertools.pairwise(windows):
        assert start < end  # never empty
        assert next_start <= end  # no gaps (neighbours overlap by at most one when I is not a multiple of O)
        assert end - next_start <= 1
    assert all(type(v) is int for w in windows for v in w)


def test_adaptive_pool_window_examples():
    assert [adaptive_pool_window(5, 3, i) for i in range(3)] == [(0, 2), (1, 4), (3, 5)]
    assert [adaptive_pool_window(4, 2, i) for i in range(2)] == [(0, 2), (2, 4)]
    assert [adaptive_pool_window(2, 4, i) for i in range(4)] == [(0, 1), (0, 1), (1, 2), (1, 2)]


# --------------------------------------------------------------------------- Explained


@pytest.fixture
def fifteen():
    return conv_output_length(32, 3, stride=2, padding=(1, 1), dilation=2)


def test_explained_is_an_int(fifteen):
    assert isinstance(fifteen, int)
    assert fifteen == 15 and 15 == fifteen
    assert hash(fifteen) == hash(15)
    assert repr(fifteen) == "15" and str(fifteen) == "15" and f"{fifteen}" == "15" and f"{fifteen:03d}" == "015"
    assert json.dumps({"n": fifteen}) == '{"n": 15}'
    assert int(fifteen) == 15 and type(int(fifteen)) is int
    assert {fifteen: "a"}[15] == "a"


def test_explained_arithmetic_behaves_as_int(fifteen):
    assert fifteen + 1 == 16 and 1 + fifteen == 16
    assert fifteen - 20 == -5 and fifteen * 2 == 30 and fifteen // 2 == 7 and fifteen % 4 == 3
    assert fifteen / 2 == 7.5 and -fifteen == -15 and fifteen**2 == 225
    assert type(fifteen + 1) is int and type(fifteen * 2) is int
    assert fifteen > 14 and fifteen <= 15 and max(fifteen, 3) == 15
    assert len(range(fifteen)) == 15 and [0] * fifteen == [0] * 15
    assert np.zeros((fifteen, 2)).shape == (15, 2)
    assert "abcdefghijklmnopq"[fifteen] == "p"
    assert math.prod(conv_output_shape(ConvSpec(3, stride=2, padding=1, ndim=2), (32, 31))) == 256


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_explained_pickles(fifteen, protocol):
    restored = pickle.loads(pickle.dumps(fifteen, protocol=protocol))
    assert restored == 15 and isinstance(restored, Explained)
    assert restored.explanation == fifteen.explanation
    assert restored.formula == fifteen.formula


def test_explained_copies(fifteen):
    for duplicate in (copy.copy(fifteen), copy.deepcopy(fifteen), copy.deepcopy([fifteen])[0]):
        assert duplicate == 15 and int(duplicate) == 15
        assert duplicate.explanation == "floor((32 + 1 + 1 - 2*(3-1) - 1) / 2) + 1 = 15"


def test_explained_constructed_directly():
    n = Explained(7, "a + b", "3 + 4")
    assert n == 7 and n.explanation == "3 + 4 = 7" and n.formula == "a + b"


def test_shapes_module_doctests_pass():
    result = doctest.testmod(convlab.shapes)
    assert result.attempted >= 4
    assert result.failed == 0
