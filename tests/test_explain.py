"""Explaining one output element (`convlab.ops.explain`): the explanation's arithmetic is the engine's.

For random specs and positions, ``explain_conv`` / ``explain_conv_transpose``
give the element the engine computes, with exactly the taps the definition
names; padding taps are marked and, per padding mode, read the constant or the
input element the mode copies (derived here from ``np.pad`` of an index range,
independently of ``convlab.ops.padding``). ``explain_pool`` is compared with
torch's pooling (values and, for max pooling, the index of the chosen element).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.ops.conv import conv, conv_transpose
from convlab.ops.explain import explain_conv, explain_conv_transpose, explain_pool
from tests.helpers import assert_close
from tests.test_matrix import conv_cases, transpose_cases

NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}


def padded_index(size, lo, hi, mode):
    """Input index read at each padded position (-1 for the constant), from np.pad of arange(size)."""
    if mode == "zeros":
        return np.pad(np.arange(size), (lo, hi), constant_values=-1)
    return np.pad(np.arange(size), (lo, hi), mode=NUMPY_MODE[mode])


def flip(w):
    return w[(slice(None), slice(None), *(slice(None, None, -1),) * (w.ndim - 2))]


# --------------------------------------------------------------------------- explain_conv


@settings(max_examples=60)
@given(conv_cases(), st.booleans(), st.sampled_from([None, 1, 2]), st.data())
def test_explain_conv_matches_engine(case, flip_kernel, batch, data):
    x, w, b = case.arrays(batch=batch or 1)
    if batch is None:
        x = x[0]  # unbatched (C, *S)
    y = conv(x, w, b, **case.kwargs(), flip_kernel=flip_kernel, algorithm="reference")
    yb = y if batch is not None else y[None]
    n = data.draw(st.integers(0, yb.shape[0] - 1))
    o = data.draw(st.integers(0, case.c_out - 1))
    p = tuple(data.draw(st.integers(0, s - 1)) for s in case.out_size)
    form = data.draw(st.sampled_from(["full", "spatial"] if (n, o) == (0, 0) else ["full"]))
    position = p if form == "spatial" else ((o, *p) if batch is None else (n, o, *p))
    e = explain_conv(x, w, b, **case.kwargs(), flip_kernel=flip_kernel, position=position)

    assert e.op == "conv" and e.index == (n, o, *p)
    assert_close(np.asarray(e.result), np.asarray(yb[(n, o, *p)]), "explained element")
    assert_close(np.asarray(e.total + (0 if b is None else b[o])), np.asarray(e.result), "sum of products + bias")
    # Exactly one tap per (input channel of the group, kernel position).
    cg = case.c_in // case.groups
    group = o // (case.c_out // case.groups)
    assert len(e.taps) == math.prod(case.kernel) * cg
    expected_keys = {(group * cg + c, k) for c in range(cg)
                     for k in itertools.product(*(range(kk) for kk in case.kernel))}
    assert {(t.channel, t.kernel_index) for t in e.taps} == expected_keys
    maps = [padded_index(s, lo, hi, case.mode) for s, (lo, hi) in zip(case.size, case.pairs, strict=True)]
    xb = x if batch is not None else x[None]
    for t in e.taps:
        q = tuple(pi * s + ki * d for pi, s, ki, d in zip(p, case.stride, t.kernel_index, case.dilation, strict=True))
        assert t.padded_position == q
        in_padding = any(qi < lo or qi >= lo + s for qi, (lo, _), s in zip(q, case.pairs, case.size, strict=True))
        assert t.is_padding == in_padding
        source = tuple(int(m[qi]) for m, qi in zip(maps, q, strict=True))
        if any(si < 0 for si in source):  # zeros mode, in the padding
            assert case.mode == "zeros" and t.is_padding
            assert t.input_position is None and t.value == 0
        else:
            assert t.input_position == source
            assert t.value == xb[(n, t.channel, *source)]
        # The weight it meets: w[o, c, k] (the mirrored tap k' = K - 1 - k when the kernel is flipped).
        k = tuple(kk - 1 - ki for kk, ki in zip(case.kernel, t.kernel_index,
                                                strict=True)) if flip_kernel else t.kernel_index
        assert t.weight == w[(o, t.channel - group * cg, *k)]
        assert t.product == t.value * t.weight


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "symmetric"])
def test_padding_taps_carry_the_copied_input_position(mode):
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)  # 1 2 3 4
    w = np.ones((1, 1, 3))
    e = explain_conv(x, w, padding=2, padding_mode=mode, position=(0,))  # taps at padded 0, 1, 2
    copied = {"reflect": (2, 1), "replicate": (0, 0), "circular": (2, 3), "symmetric": (1, 0)}[mode]
    assert [t.is_padding for t in e.taps] == [True, True, False]
    assert [t.input_position for t in e.taps] == [(copied[0],), (copied[1],), (0,)]
    assert [t.value for t in e.taps] == [x[0, 0, copied[0]], x[0, 0, copied[1]], 1.0]
    assert "pad[" not in str(e)  # every tap names the input element it reads


def test_zero_padding_taps():
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    e = explain_conv(x, np.ones((1, 1, 3)), padding=1, position=(0,))
    assert [t.is_padding for t in e.taps] == [True, False, False]
    assert e.taps[0].input_position is None and e.taps[0].value == 0
    assert e.result == 3.0
    assert str(e).splitlines()[0] == "y[0, 0, 0] = pad[0,0]*w[0,0,0] + x[0,0]*w[0,0,1] + x[0,1]*w[0,0,2]"


def test_seed_example_text():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    e = explain_conv(x, w, position=(0, 0))
    text = str(e)
    assert "= 19" in text
    assert text.splitlines() == [
        "y[0, 0, 0, 0] = x[0,0,0]*w[0,0,0,0] + x[0,0,1]*w[0,0,0,1] + x[0,1,0]*w[0,0,1,0] + x[0,1,1]*w[0,0,1,1]",
        "              = 0*0 + 1*1 + 3*2 + 4*3",
        "              = 19",
    ]
    assert e.result == 19.0
    assert str(explain_conv(x, w, np.array([0.5]), position=(1, 1))).splitlines()[-1].endswith("= 43.5")


@pytest.mark.parametrize("nd", [1, 2])
def test_weight_index_points_into_the_given_weight_when_flipped(nd):
    """``Tap.weight_index`` is the tap's index in the weight array the caller passed."""
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((1, 2, *(5,) * nd))
    w = rng.standard_normal((3, 2, *(3, 2)[:nd]))
    for flip_kernel in (False, True):
        e = explain_conv(x, w, flip_kernel=flip_kernel, position=(0, 1) + (1,) * nd)
        for t in e.taps:
            assert w[t.weight_index] == t.weight, (flip_kernel, t.kernel_index, t.weight_index)


@pytest.mark.parametrize("fn, args, kwargs", [
    (explain_conv, (np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))), {}),
    (explain_conv_transpose, (np.ones((1, 2, 2, 2)), np.ones((2, 3, 2, 2))), {}),
    (explain_pool, (np.ones((1, 2, 6, 6)), (2, 2)), {}),
])
@pytest.mark.parametrize("position", [(3, 0), (0, -1), (0,), (0, 0, 0, 0, 0), (0, 5, 0, 0), (1, 0, 0, 0)])
def test_position_is_validated(fn, args, kwargs, position):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: `position` \(="):
        fn(*args, **kwargs, position=position)


def test_unbatched_position_with_channel():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    e = explain_conv(x, w, position=(2, 1, 0))
    assert e.index == (0, 2, 1, 0)
    assert_close(np.asarray(e.result), conv(x, w)[2, 1, 0])
    with pytest.raises(ValueError, match=r"explain_conv: `position` \(=\(3, 1, 0\)\) is outside the output"):
        explain_conv(x, w, position=(3, 1, 0))


# --------------------------------------------------------------------------- explain_conv_transpose


@settings(max_examples=50)
@given(transpose_cases(), st.booleans(), st.data())
def test_explain_conv_transpose_matches_engine(case, has_bias, data):
    _nd, groups, c_in, c_out, kernel, stride, dilation, pairs, output_padding, size, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    b = rng.standard_normal(c_out) if has_bias else None
    args = (stride, pairs, output_padding, groups, dilation)
    y = conv_transpose(x, w, b, *args, algorithm="reference")
    index = tuple(data.draw(st.integers(0, s - 1)) for s in y.shape)
    e = explain_conv_transpose(x, w, b, *args, position=index)
    assert e.op == "conv_transpose" and e.index == index
    assert_close(np.asarray(e.result), np.asarray(y[index]), "explained element")
    n, o, *q = index
    og, cg = c_out // groups, c_in // groups
    group = o // og
    # The taps are exactly the (input channel, input element, kernel tap) with i*s + k*d - lo == q.
    expected = set()
    for c in range(group * cg, (group + 1) * cg):
        for i in itertools.product(*(range(s) for s in size)):
            for k in itertools.product(*(range(kk) for kk in kernel)):
                if all(ii * s + ki * d - lo == qi
                       for ii, s, ki, d, (lo, _), qi in zip(i, stride, k, dilation, pairs, q, strict=True)):
                    expected.add((c, i, k))
    assert {(t.channel, t.input_position, t.kernel_index) for t in e.taps} == expected
    for t in e.taps:
        assert t.value == x[(n, t.channel, *t.input_position)]
        assert t.weight == w[(t.channel, o - group * og, *t.kernel_index)] == w[t.weight_index]


# --------------------------------------------------------------------------- explain_pool


@st.composite
def pool_cases(draw):
    nd = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["max", "avg"]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if mode == "max" else (1,) * nd
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3 if nd < 3 else 2)) for k, d in zip(kernel, dilation,
                                                                                            strict=True))
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans())
    divisor = draw(st.sampled_from([None, None, 3, -2])) if nd > 1 else None  # avg_pool1d has no divisor_override
    ties = draw(st.booleans())
    return nd, mode, kernel, stride, dilation, padding, size, ceil_mode, count_include_pad, divisor, ties, \
        draw(st.integers(0, 2**16))


@settings(max_examples=60)
@given(pool_cases())
def test_explain_pool_matches_torch(case):
    torch = pytest.importorskip("torch")
    nd, mode, kernel, stride, dilation, padding, size, ceil_mode, count_include_pad, divisor, ties, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, *size))
    if ties:
        x = np.round(x)  # many equal maxima: the first one must be chosen
    tx = torch.from_numpy(x)
    if mode == "max":
        fn = getattr(torch.nn.functional, f"max_pool{nd}d")
        values, indices = fn(tx, kernel, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
        values, indices = values.numpy(), indices.numpy()
    else:
        fn = getattr(torch.nn.functional, f"avg_pool{nd}d")
        extra = {} if nd == 1 else {"divisor_override": divisor}
        values = fn(tx, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                    **extra).numpy()
    positions = list(np.ndindex(*values.shape))
    for index in (positions[i] for i in rng.choice(len(positions), min(len(positions), 12), replace=False)):
        e = explain_pool(x, kernel, stride, padding, dilation, position=index, mode=mode, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad, divisor_override=divisor)
        assert_close(np.asarray(e.result, dtype=np.float64), np.asarray(values[index]), f"{mode} pool at {index}")
        if mode == "max":
            chosen = e.taps[e.chosen]
            assert chosen.value == e.result
            assert np.ravel_multi_index(chosen.input_position, size) == indices[index], "index of the maximum"
            assert not any(t.is_padding for t in e.taps)


def test_explain_avg_pool_divisors():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    # Window of output (0, 0) with padding 1: padded rows/cols -1..0 -> only x[0, 0] = 1 is inside.
    e = explain_pool(x, (2, 2), padding=1, position=(0, 0), mode="avg")
    assert (e.divisor, e.result) == (4, 0.25)
    assert sum(t.is_padding for t in e.taps) == 3
    e = explain_pool(x, (2, 2), padding=1, position=(0, 0), mode="avg", count_include_pad=False)
    assert (e.divisor, e.result) == (1, 1.0)
    e = explain_pool(x, (2, 2), padding=1, position=(1, 1), mode="avg", divisor_override=3)
    assert (e.divisor, e.result) == (3, (5 + 6 + 8 + 9) / 3)
    assert str(e).splitlines()[0].endswith(") / 3")


def test_explain_pool_mode_is_checked():
    with pytest.raises(ValueError, match=r"explain_pool: `mode` \(='min'\) must be 'max' or 'avg'"):
        explain_pool(np.ones((1, 1, 4, 4)), (2, 2), position=(0, 0), mode="min")
