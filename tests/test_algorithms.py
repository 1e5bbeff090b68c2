"""Every fast algorithm of the primitive equals the reference; auto, plan() and the refusals.

The algorithms (gemm, winograd_f2, winograd_f4, fft, depthwise, subpixel, col2im) are
checked three ways:

* the primitive ``conv_general`` called directly on random calls (Hypothesis),
  input dilation and negative pads (crops) included, against the reference
  loops, in float64 to 1e-10;
* through the four ops (conv, conv_transpose, conv_vjp, conv_transpose_vjp)
  with ``algorithm=NAME`` against ``algorithm="reference"``: forward,
  transposed and both gradients;
* in float32 against the float64 reference with the suite's float32
  tolerance, and Winograd against its documented error bound.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
import convlab.ops._checks as checks
from convlab.ops.algorithms import ALGORITHMS, AUTO_ALGORITHMS, RECORDS, choose, plan, reference, unsupported
from convlab.ops.algorithms import col2im as col2im_module
from convlab.ops.algorithms import depthwise as depthwise_module
from convlab.ops.algorithms import fft as fft_module
from convlab.ops.algorithms import gemm as gemm_module
from convlab.ops.algorithms import winograd as winograd_module
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close

#: Every algorithm but the oracle, from the records: a new record is tested here without editing this file.
FAST = tuple(name for name in RECORDS if name not in ("reference", "im2col", "matrix"))
#: The records that promise exact integers, and those that refuse them.
EXACT = tuple(name for name in FAST if RECORDS[name].exact_integers)
INEXACT = tuple(name for name in FAST if not RECORDS[name].exact_integers)


# --------------------------------------------------------------------------- random primitive calls


@st.composite
def primitive_calls(draw, algorithm: str = "any"):
    """A small call of the primitive that ``algorithm`` covers (``"any"``: anything)."""
    nd = draw(st.integers(1, 3))
    winograd = algorithm.startswith("winograd")
    groups = draw(st.integers(1, 3))
    cg = 1 if algorithm.startswith("depthwise") else draw(st.integers(1, 2))
    og = draw(st.integers(1, 2))
    kmax = 3 if nd < 3 else 2
    kernel = tuple(3 if winograd else draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(1 if winograd else draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(1 if winograd else draw(st.integers(1, 2)) for _ in range(nd))
    input_dilation = tuple(1 if winograd else draw(st.integers(1, 3)) for _ in range(nd))
    if algorithm == "depth_to_space":  # phases of stride 1 and dilation 1
        stride, dilation = (1,) * nd, (1,) * nd
    if algorithm in ("subpixel", "col2im", "depth_to_space") and all(ld == 1 for ld in input_dilation):
        input_dilation = (2,) + input_dilation[1:]
    if algorithm == "space_to_batch":  # a dilation, stride 1 where dilated, no input dilation
        dilation, input_dilation = (2,) + dilation[1:], (1,) * nd
        stride = tuple(1 if d > 1 else s for s, d in zip(stride, dilation, strict=True))
    size, pads = [], []
    for k, d, ld in zip(kernel, dilation, input_dilation, strict=True):
        s = draw(st.integers(1, 6 if nd < 3 else 4))
        length = (s - 1) * ld + 1
        extent = d * (k - 1) + 1
        lo = draw(st.integers(-min(2, length - 1), 2))  # negative: crop
        hi = draw(st.integers(-min(2, length + lo - 1), 3))
        if length + lo + hi < extent:  # make the kernel fit
            hi = extent - length - lo
        size.append(s)
        pads.append((lo, hi))
    batch = draw(st.integers(1, 2))
    return dict(x_shape=(batch, groups * cg) + tuple(size), w_shape=(groups * og, cg) + kernel, stride=stride,
                padding=tuple(pads), dilation=dilation, input_dilation=input_dilation, groups=groups,
                seed=draw(st.integers(0, 2**16)))


def _arrays(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(case["x_shape"])
        w = w + 1j * rng.standard_normal(case["w_shape"])
    if np.dtype(dtype).kind in "iu":
        x = rng.integers(-50, 50, case["x_shape"])
        w = rng.integers(-50, 50, case["w_shape"])
    return x.astype(dtype), w.astype(dtype)


def _args(case):
    return (case["stride"], case["padding"], case["dilation"], case["input_dilation"], case["groups"])


@pytest.mark.parametrize("algorithm", FAST)
@settings(max_examples=40)
@given(data=st.data())
def test_primitive_equals_reference(algorithm, data):
    case = data.draw(primitive_calls(algorithm))
    x, w = _arrays(case)
    expected = reference.conv_general(x, w, *_args(case))
    got = ALGORITHMS[algorithm](x, w, *_args(case))
    assert_close(got, expected, f"{algorithm} on {case}")


@settings(max_examples=40)
@given(case=primitive_calls())
def test_every_algorithm_applies_or_refuses_with_its_reason(case):
    x, w = _arrays(case)
    expected = reference.conv_general(x, w, *_args(case))
    call = Call.of(x, w, *_args(case))
    for algorithm in FAST:
        reason = unsupported(algorithm, call)
        if reason is None:
            assert_close(ALGORITHMS[algorithm](x, w, *_args(case)), expected, algorithm)
        else:
            with pytest.raises(ValueError, match=f"algorithm '{algorithm}' does not apply to this convolution: "
                                                 f"{re.escape(reason)}"):
                ALGORITHMS[algorithm](x, w, *_args(case))


@pytest.mark.parametrize("algorithm", EXACT)
@settings(max_examples=15)
@given(data=st.data())
def test_exact_algorithms_are_exact_on_integers(algorithm, data):
    case = data.draw(primitive_calls(algorithm))
    x, w = _arrays(case, np.int64)
    got = ALGORITHMS[algorithm](x, w, *_args(case))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference.conv_general(x, w, *_args(case)))


@pytest.mark.parametrize("algorithm", FAST)
@settings(max_examples=10)
@given(data=st.data())
def test_complex(algorithm, data):
    case = data.draw(primitive_calls(algorithm))
    x, w = _arrays(case, np.complex128)
    assert_close(ALGORITHMS[algorithm](x, w, *_args(case)), reference.conv_general(x, w, *_args(case)), algorithm)


@pytest.mark.parametrize("algorithm", INEXACT)
def test_inexact_algorithms_refuse_integers(algorithm):
    x, w = np.ones((1, 2, 5, 5), dtype=np.int64), np.ones((3, 2, 3, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=f"'{algorithm}' does not apply.*floating-point dtype, got int64"):
        ALGORITHMS[algorithm](x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match=f"conv2d: `algorithm` '{algorithm}' does not apply"):
        F.conv2d(x, w, padding=1, algorithm=algorithm)
    # auto stays exact: it never picks an inexact algorithm for integers
    np.testing.assert_array_equal(F.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1, algorithm="reference"))


# --------------------------------------------------------------------------- through the four ops


@st.composite
def op_cases(draw, algorithm: str):
    """A 1-d or 2-d conv spec whose forward call ``algorithm`` covers (so a forced forward runs it)."""
    nd = draw(st.integers(1, 2))
    winograd = algorithm.startswith("winograd")
    depthwise = algorithm.startswith("depthwise")
    groups = draw(st.integers(1, 3))
    c_in = groups * (1 if depthwise else draw(st.integers(1, 2)))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(3 if winograd else draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(1 if winograd else draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(1 if winograd else draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    mode = draw(st.sampled_from(["zeros", "reflect", "circular"]))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pads, strict=True):
        need = max(1, d * (k - 1) + 1 - lo - hi, lo + 1, hi + 1)
        size.append(draw(st.integers(need, need + 4)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    return dict(nd=nd, groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride, dilation=dilation,
                pads=pads, mode=mode, size=tuple(size), output_padding=output_padding,
                batch=draw(st.integers(1, 2)), seed=draw(st.integers(0, 2**16)))


def _both(fn, algorithm):
    return fn("reference"), fn(algorithm)


def _check_conv_and_vjp(case, algorithm):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["batch"], case["c_in"]) + case["size"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    b = rng.standard_normal(case["c_out"])
    kw = dict(stride=case["stride"], padding=case["pads"], dilation=case["dilation"], groups=case["groups"],
              padding_mode=case["mode"])
    expected, got = _both(lambda a: F.conv(x, w, b, algorithm=a, **kw), algorithm)
    assert_close(got, expected, f"conv ({algorithm})")
    g = rng.standard_normal(expected.shape)
    expected_g, got_g = _both(lambda a: F.conv_vjp(g, x, w, b, algorithm=a, **kw), algorithm)
    for name in ("input", "weight", "bias"):
        assert_close(getattr(got_g, name), getattr(expected_g, name), f"conv_vjp {name} ({algorithm})")


def _transposed_case(case, algorithm):
    """The transposed op of the case, when its primitive call is one ``algorithm`` covers."""
    rng = np.random.default_rng(case["seed"] + 1)
    x = rng.standard_normal((case["batch"], case["c_in"]) + case["size"])
    c_out = case["c_out"] if not algorithm.startswith("depthwise") else case["groups"]  # depthwise: 1 per group
    w = rng.standard_normal((case["c_in"], c_out // case["groups"]) + case["kernel"])
    kw = dict(stride=case["stride"], padding=case["pads"], output_padding=case["output_padding"],
              groups=case["groups"], dilation=case["dilation"])
    out_len = [(i - 1) * s - lo - hi + d * (k - 1) + op + 1 for i, s, (lo, hi), d, k, op in
               zip(case["size"], case["stride"], case["pads"], case["dilation"], case["kernel"],
                   case["output_padding"], strict=True)]
    return x, w, kw, min(out_len) >= 1


def _check_transpose_and_vjp(case, algorithm):
    x, w, kw, valid = _transposed_case(case, algorithm)
    if not valid:
        return
    if algorithm == "subpixel" and all(s == 1 for s in case["stride"]):
        with pytest.raises(ValueError, match=r"`algorithm` 'subpixel' does not apply.*input_dilation > 1"):
            F.conv_transpose(x, w, None, algorithm=algorithm, **kw)
        algorithm_forward = "reference"
    else:
        algorithm_forward = algorithm
    rng = np.random.default_rng(case["seed"] + 2)
    b = rng.standard_normal(w.shape[1] * case["groups"])
    expected, got = _both(lambda a: F.conv_transpose(x, w, b, algorithm=a, **kw), algorithm_forward)
    assert_close(got, expected, f"conv_transpose ({algorithm_forward})")
    g = rng.standard_normal(expected.shape)
    expected_g, got_g = _both(lambda a: F.conv_transpose_vjp(g, x, w, b, algorithm=a, **kw), algorithm)
    for name in ("input", "weight", "bias"):
        assert_close(getattr(got_g, name), getattr(expected_g, name), f"conv_transpose_vjp {name} ({algorithm})")


@pytest.mark.parametrize("algorithm", ["gemm", "winograd_f2", "winograd_f4", "fft", "depthwise", "col2im", "auto"])
@settings(max_examples=25)
@given(data=st.data())
def test_ops_equal_reference(algorithm, data):
    case = data.draw(op_cases(algorithm if algorithm != "auto" else "gemm"))
    _check_conv_and_vjp(case, algorithm)
    _check_transpose_and_vjp(case, algorithm)


@settings(max_examples=25)
@given(case=op_cases("subpixel"))
def test_ops_equal_reference_subpixel(case):
    # A forward convolution has no input dilation: forcing subpixel on it is refused.
    x = np.ones((case["batch"], case["c_in"]) + case["size"])
    w = np.ones((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    with pytest.raises(ValueError, match=r"conv: `algorithm` 'subpixel' does not apply.*input_dilation > 1"):
        F.conv(x, w, stride=case["stride"], padding=case["pads"], dilation=case["dilation"], groups=case["groups"],
               algorithm="subpixel")
    # Its gradients run: the input gradient of a strided convolution is input-dilated (subpixel), the weight
    # gradient falls back to gemm.
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(x.shape)
    w = rng.standard_normal(w.shape)
    kw = dict(stride=case["stride"], padding=case["pads"], dilation=case["dilation"], groups=case["groups"],
              padding_mode=case["mode"])
    y = F.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    expected_g, got_g = _both(lambda a: F.conv_vjp(g, x, w, algorithm=a, **kw), "subpixel")
    assert_close(got_g.input, expected_g.input, "conv_vjp input (subpixel)")
    assert_close(got_g.weight, expected_g.weight, "conv_vjp weight (subpixel)")
    _check_transpose_and_vjp(case, "subpixel")


def test_forced_algorithm_that_does_not_apply_names_itself_and_the_reason():
    x, w = np.ones((1, 4, 8, 8)), np.ones((4, 4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: `algorithm` 'winograd_f4' does not apply to this convolution: "
                                         r"it needs stride 1, got stride=\(2, 2\)"):
        F.conv2d(x, w, stride=2, algorithm="winograd_f4")
    with pytest.raises(ValueError, match=r"conv2d: `algorithm` 'depthwise' does not apply.*groups == C_in.*"
                                         r"got groups=1 with C_in=4"):
        F.conv2d(x, w, algorithm="depthwise")
    with pytest.raises(ValueError, match=r"conv_transpose2d: `algorithm` 'winograd_f2' does not apply.*"
                                         r"input_dilation 1 \(in a transposed convolution: stride 1\)"):
        F.conv_transpose2d(x, w, stride=2, algorithm="winograd_f2")
    with pytest.raises(ValueError, match=r"conv_general: algorithm 'winograd_f4' does not apply.*kernel, got \(5,\)"):
        ALGORITHMS["winograd_f4"](np.ones((1, 1, 9)), np.ones((1, 1, 5)), (1,), ((0, 0),), (1,), (1,), 1)
    # In the gradients a named algorithm is a preference: gemm where it does not apply.
    grads = F.conv_vjp(np.ones((1, 4, 3, 3)), x, w, stride=2, algorithm="winograd_f4")
    reference_grads = F.conv_vjp(np.ones((1, 4, 3, 3)), x, w, stride=2, algorithm="reference")
    assert_close(grads.weight, reference_grads.weight)
    assert "winograd_f4" in repr(choose("conv_vjp", "winograd_f4", fallback="gemm"))


def test_unknown_algorithm_lists_the_new_ones():
    with pytest.raises(ValueError, match=r"`algorithm` \(='fastest'\) must be 'auto' or one of .*'winograd_f4'"):
        F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), algorithm="fastest")


# --------------------------------------------------------------------------- float32 and Winograd's bound


@pytest.mark.parametrize("algorithm", FAST)
@settings(max_examples=15)
@given(data=st.data())
def test_float32_within_the_suite_tolerance(algorithm, data):
    case = data.draw(primitive_calls(algorithm))
    x, w = _arrays(case)
    expected = reference.conv_general(x, w, *_args(case)).astype(np.float32)
    got = ALGORITHMS[algorithm](x.astype(np.float32), w.astype(np.float32), *_args(case))
    assert_close(got, expected, f"{algorithm} float32")


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 16, 256])
def test_winograd_error_within_its_bound(m, dtype, channels):
    # The rigorous bound |y - y_exact| <= gamma_(2 alpha^2 + C + 1) * (the algorithm on absolute values),
    # derived in winograd.py; exceeding it would mean a wrong transform or a lost rounding step.
    rng = np.random.default_rng(channels + m)
    x = rng.standard_normal((2, channels, 13, 11))
    w = rng.standard_normal((8, channels, 3, 3))
    pads = ((1, 1), (1, 1))
    xd, wd = x.astype(dtype), w.astype(dtype)  # the exact result of these same (rounded) values:
    exact = reference.conv_general(xd.astype(np.float64), wd.astype(np.float64), (1, 1), pads, (1, 1), (1, 1), 1)
    got = ALGORITHMS[f"winograd_f{m}"](xd, wd, (1, 1), pads, (1, 1), (1, 1), 1)
    bound = winograd_module.error_bound(xd, wd, pads, 1, m)
    rounding = np.finfo(dtype).eps / 2 * np.abs(exact)  # storing the result in the dtype
    error = np.abs(got.astype(np.float64) - exact)
    assert np.all(error <= bound + rounding), f"worst ratio {np.max(error / (bound + rounding)):.3g}"
    if dtype == np.float32:
        # What auto relies on: within the suite's float32 tolerance relative to the largest output
        # (measured up to 4.9e-6 for F(4x4, 3x3), see winograd.py).
        assert np.max(error) <= 2e-5 * np.abs(exact).max()


def test_winograd_transforms_are_an_exact_identity():
    # y = A^T [(G g) * (B^T d)] is the 3-tap correlation, for both tile sizes (float64, to rounding).
    rng = np.random.default_rng(0)
    for m in (2, 4):
        a_t, g, b_t = winograd_module.transforms(m)
        d = rng.standard_normal(m + 2)
        k = rng.standard_normal(3)
        direct = np.array([d[i:i + 3] @ k for i in range(m)])
        np.testing.assert_allclose(a_t @ ((g @ k) * (b_t @ d)), direct, rtol=1e-13, atol=1e-13)
        assert np.all(b_t == np.round(b_t)), "B^T holds integers (the fractions are in G)"


# --------------------------------------------------------------------------- blocking, budgets, layouts


def test_small_blocks_give_the_same_numbers(monkeypatch):
    monkeypatch.setattr(gemm_module, "CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd_module, "BLOCK_BYTES", 1)
    monkeypatch.setattr(depthwise_module, "BLOCK_BYTES", 1)
    monkeypatch.setattr(col2im_module, "CHUNK_BYTES", 1)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 9, 10))
    pads = ((1, 2), (0, 1))
    for algorithm, w, groups in (("gemm", rng.standard_normal((6, 2, 3, 2)), 2),
                                 ("winograd_f4", rng.standard_normal((6, 2, 3, 3)), 2),
                                 ("winograd_f2", rng.standard_normal((4, 4, 3, 3)), 1),
                                 ("depthwise", rng.standard_normal((8, 1, 3, 3)), 4),
                                 ("col2im", rng.standard_normal((6, 2, 3, 2)), 2)):
        args = ((1, 1), pads, (1, 1), (2, 1) if algorithm == "col2im" else (1, 1), groups)
        assert_close(ALGORITHMS[algorithm](x, w, *args), reference.conv_general(x, w, *args), algorithm)


def test_fft_refuses_spectra_over_the_memory_budget():
    x, w = np.ones((2, 4, 40, 40)), np.ones((4, 1, 15, 15))
    args = ((1, 1), ((7, 7), (7, 7)), (1, 1), (1, 1), 4)
    with checks.memory_budget(2**16):
        with pytest.raises(ValueError, match=r"'fft' does not apply.*spectrum of shape .* would need [\d,]+ bytes, "
                                             r"more than the memory budget of 65,536 bytes"):
            ALGORITHMS["fft"](x, w, *args)
        assert plan(x.shape, w.shape, 1, 7, groups=4, dtype=np.float64).algorithm != "fft"


def test_subpixel_phases_without_taps_are_zero():
    # input_dilation 3 with a 1-tap kernel: two output phases in three never meet an input element.
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    w = np.full((1, 1, 1), 2.0)
    args = ((1,), ((0, 0),), (1,), (3,), 1)
    got = ALGORITHMS["subpixel"](x, w, *args)
    assert_close(got, reference.conv_general(x, w, *args))
    np.testing.assert_array_equal(got[0, 0], [2, 0, 0, 4, 0, 0, 6, 0, 0, 8])


# --------------------------------------------------------------------------- auto and plan()


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, expected",
    [
        ((8, 128, 56, 56), (128, 128, 3, 3), dict(padding=1), "winograd_f4"),  # VGG-sized 3x3
        ((8, 64, 56, 56), (256, 64, 1, 1), {}, "gemm"),  # 1x1: one GEMM
        ((8, 64, 56, 56), (128, 64, 3, 3), dict(stride=2, padding=1), "gemm"),  # strided 3x3
        ((8, 64, 56, 56), (64, 1, 31, 31), dict(padding=15, groups=64), "fft"),  # large depthwise kernel
        ((1, 1, 1024, 1024), (1, 1, 31, 31), dict(padding=15), "fft"),  # large single-channel image
        ((8, 64, 56, 56), (64, 1, 3, 3), dict(padding=1, groups=64, stride=2), "depthwise"),  # depthwise 3x3/2
        ((8, 32, 28, 28), (64, 32, 5, 5), dict(padding=((2, 3), (2, 3)), input_dilation=2), "subpixel"),
        ((8, 64, 56, 56), (3, 64, 3, 3), dict(padding=1), "col2im"),  # few output channels: no window gather
    ],
)
def test_plan_clear_cut_choices(x_shape, w_shape, kwargs, expected):
    p = plan(x_shape, w_shape, **kwargs)
    assert p.algorithm == expected, str(p)
    assert p.algorithm in ALGORITHMS
    assert re.search(r"estimated [\d.]+ ms", p.reason)
    assert str(p).startswith(f"{expected}: estimated")
    assert set(p.estimates) | set(p.refused) == set(AUTO_ALGORITHMS)


def test_plan_says_why_others_do_not_apply():
    p = plan((2, 8, 16, 16), (8, 8, 5, 5), stride=2, padding=2, dtype=np.int64)
    assert p.algorithm == "gemm"
    assert "winograd_f4 (it needs a 3, 3x3 or 3x3x3 kernel, got (5, 5))" in p.reason
    assert "fft (it needs a floating-point dtype, got int64" in p.reason
    assert p.refused["depthwise"].startswith("it needs groups == C_in")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_equals_reference_where_it_picks_each_fast_algorithm(dtype):
    rng = np.random.default_rng(7)
    cases = [  # (x shape, w shape, stride, padding, input_dilation, groups): one per algorithm auto picks
        ((2, 128, 32, 32), (128, 128, 3, 3), 1, 1, 1, 1),  # winograd_f4
        ((2, 8, 24, 24), (8, 1, 15, 15), 1, 7, 1, 8),  # fft
        ((2, 8, 20, 20), (8, 1, 3, 3), 1, 1, 1, 8),  # depthwise
        ((2, 32, 16, 16), (16, 32, 5, 5), 1, ((2, 3), (2, 3)), 2, 1),  # subpixel
        ((2, 32, 16, 16), (3, 32, 3, 3), 1, 1, 1, 1),  # col2im
        ((2, 16, 12, 12), (8, 16, 1, 1), 2, 0, 1, 1),  # gemm
    ]
    chosen = set()
    for x_shape, w_shape, stride, pad, ld, groups in cases:
        p = plan(x_shape, w_shape, stride, pad, 1, ld, groups, dtype=dtype)
        chosen.add(p.algorithm)
        nd = len(w_shape) - 2
        pairs = ((pad, pad),) * nd if isinstance(pad, int) else pad
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        args = ((stride,) * nd, pairs, (1,) * nd, (ld,) * nd, groups)
        expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args).astype(dtype)
        assert_close(choose("conv", "auto")(x, w, *args), expected, f"auto ({p.algorithm})")
    assert len(chosen) >= 4, chosen


def test_auto_on_a_network_sized_layer_matches_torch_tolerance():
    # float32, 3x3, 128 channels: auto takes a Winograd variant (F(4x4) or F(2x2), depending on the BLAS
    # kernels the cost model sees); F(4x4, 3x3) named, and auto, stay within the suite's float32 tolerance of
    # the float64 reference, forward and both gradients.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 128, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) / 34).astype(np.float32)
    assert plan(x.shape, w.shape, padding=1).algorithm in ("winograd_f4", "winograd_f2")
    expected = F.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1, algorithm="gemm")
    g = rng.standard_normal(expected.shape).astype(np.float32)
    expected_grads = F.conv_vjp(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=1,
                                algorithm="gemm")
    for algorithm in ("winograd_f4", "auto"):
        y = F.conv2d(x, w, padding=1, algorithm=algorithm)
        assert_close(y, expected.astype(np.float32), algorithm)
        grads = F.conv_vjp(g, x, w, padding=1, algorithm=algorithm)
        assert_close(grads.input, expected_grads.input.astype(np.float32), f"input gradient, {algorithm}")
        assert_close(grads.weight, expected_grads.weight.astype(np.float32), f"weight gradient, {algorithm}")


def test_empty_calls():
    for algorithm in FAST:
        x = np.ones((0, 3, 5, 5))
        w = np.ones((3, 1, 3, 3))
        ld = (2, 2) if algorithm in ("subpixel", "depth_to_space") else (1, 1)
        dil = (2, 2) if algorithm == "space_to_batch" else (1, 1)
        got = ALGORITHMS[algorithm](x, w, (1, 1), ((1, 1), (1, 1)), dil, ld, 3)
        assert got.shape == reference.conv_general(x, w, (1, 1), ((1, 1), (1, 1)), dil, ld, 3).shape
    # the shortest exact length, 7 + 1 (the input and one side's pad; fft.fft_lengths), not the padded 9
    assert fft_module.fft_lengths(Call.of((1, 1, 7), (1, 1, 3), (1,), ((1, 1),), (1,), (1,), 1)) == (8,)
