"""Bad input: every mistake is a ValueError/TypeError that names the function, the parameter and the value received.

House style (ARCHITECTURE.md, habit 4): sizes are checked before anything is
allocated, so each failing call here runs under tracemalloc and must stay far
below the size of what it refused.
"""

from __future__ import annotations

import contextlib
import re
import tracemalloc

import numpy as np
import pytest

import convlab.functional as F
import convlab.ops._checks as checks
import convlab.ops.algorithms.im2col as im2col
from convlab import ConvSpec
from convlab.ops import pad

MiB = 2**20
HUGE = 2**40  # 1099511627776

# --------------------------------------------------------------------------- helpers


def _pattern(*parts: str) -> str:
    """A regex that requires every literal part, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


@contextlib.contextmanager
def _peak():
    """Record the peak of traced memory (NumPy reports its buffers to tracemalloc) inside the block."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    box = {}
    try:
        yield box
    finally:
        box["peak"] = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()


def z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def huge(*shape, dtype=np.float32):
    """A zero-stride view of one element: any shape, no memory."""
    return np.broadcast_to(np.zeros((1,) * len(shape), dtype=dtype), shape)


def x2():
    return z(1, 4, 6, 6)


def w2():
    return z(2, 4, 3, 3)


def x1():
    return z(1, 2, 8)


def w1():
    return z(3, 2, 3)


def xt():
    return z(1, 4, 5, 5)


def wt():
    return z(4, 3, 3, 3)  # (C_in, C_out/groups, kh, kw)


def _torch_tensor(*shape):
    torch = pytest.importorskip("torch")
    return torch.zeros(*shape, dtype=torch.float64)


def case(id, call, exc, *parts):
    return pytest.param(call, exc, parts, id=id)


# --------------------------------------------------------------------------- the cases

CASES = [
    # ---- sizes
    case("kernel-larger-than-input", lambda: F.conv2d(z(1, 4, 2, 2), w2()), ValueError,
         "conv2d", "kernel (size 3", "padded input (2 + 0 + 0 = 2)"),
    case("kernel-larger-than-padded-input", lambda: F.conv1d(z(1, 2, 2), z(3, 2, 6), padding=1), ValueError,
         "conv1d", "kernel (size 6", "padded input (2 + 1 + 1 = 4)"),
    case("dilation-2**40-kernel-larger", lambda: F.conv2d(x2(), w2(), dilation=HUGE), ValueError,
         "conv2d", "kernel", f"dilation {HUGE}", "larger than the padded input (6 + 0 + 0 = 6)"),
    # ---- channels and groups
    case("channel-mismatch", lambda: F.conv2d(z(1, 3, 6, 6), w2()), ValueError,
         "conv2d", "input has 3 channels", "`weight`", "(2, 4, 3, 3)"),
    case("channel-mismatch-unbatched-input", lambda: F.conv3d(z(1, 4, 6, 6), z(2, 4, 3, 3, 3)), ValueError,
         "conv3d", "`weight`", "(2, 4, 3, 3, 3)", "(1, 4, 6, 6)", "unbatched"),
    case("groups-not-dividing-input-channels", lambda: F.conv2d(z(1, 3, 6, 6), z(2, 1, 3, 3), groups=2),
         ValueError, "conv2d", "`groups` (=2)", "input channels (=3)"),
    case("groups-not-dividing-output-channels", lambda: F.conv2d(x2(), z(3, 2, 3, 3), groups=2), ValueError,
         "conv2d", "`groups` (=2)", "output channels (weight.shape[0]=3)"),
    case("groups-zero", lambda: F.conv2d(x2(), w2(), groups=0), ValueError, "conv2d", "`groups` (=0)", ">= 1"),
    case("groups-float", lambda: F.conv2d(x2(), w2(), groups=1.0), TypeError,
         "conv2d", "`groups`", "integer", "1.0"),
    case("conv-transpose-groups-not-dividing", lambda: F.conv_transpose2d(xt(), wt(), groups=3), ValueError,
         "conv_transpose2d", "`groups` (=3)", "input channels (=4)"),
    case("conv-transpose-weight-channels", lambda: F.conv_transpose2d(xt(), z(3, 3, 3, 3)), ValueError,
         "conv_transpose2d", "input has 4 channels", "`weight`", "(3, 3, 3, 3)", "(C_in, C_out/groups, *kernel)"),
    # ---- stride, dilation, kernel
    case("stride-zero", lambda: F.conv2d(x2(), w2(), stride=0), ValueError, "conv2d", "`stride` (=0)", ">= 1"),
    case("stride-negative-one-dim", lambda: F.conv2d(x2(), w2(), stride=(1, -2)), ValueError,
         "conv2d", "`stride[1]` (=-2)", ">= 1"),
    case("stride-wrong-length", lambda: F.conv2d(x2(), w2(), stride=(1, 1, 1)), ValueError,
         "conv2d", "`stride` has 3 entries (1, 1, 1)", "2 spatial dimensions"),
    case("stride-float", lambda: F.conv2d(x2(), w2(), stride=2.0), TypeError,
         "conv2d", "`stride`", "integer", "2.0 (float)"),
    case("stride-bool", lambda: F.conv2d(x2(), w2(), stride=True), TypeError,
         "conv2d", "`stride`", "integer", "True (bool)"),
    case("dilation-zero", lambda: F.conv2d(x2(), w2(), dilation=0), ValueError,
         "conv2d", "`dilation` (=0)", ">= 1"),
    case("dilation-negative", lambda: F.conv1d(x1(), w1(), dilation=-1), ValueError,
         "conv1d", "`dilation` (=-1)", ">= 1"),
    case("dilation-string", lambda: F.conv2d(x2(), w2(), dilation="2"), TypeError,
         "conv2d", "`dilation`", "integer", "'2' (str)"),
    case("kernel-size-zero-in-weight", lambda: F.conv1d(x1(), z(3, 2, 0)), ValueError,
         "conv1d", "`weight`", "empty kernel", "(3, 2, 0)"),
    case("empty-kernel", lambda: F.conv2d(x2(), z(2, 4, 0, 0)), ValueError,
         "conv2d", "`weight`", "empty kernel", "(2, 4, 0, 0)"),
    case("kernel-size-zero-in-spec", lambda: ConvSpec((3, 0), name="conv2d"), ValueError,
         "conv2d", "`kernel_size[1]` (=0)", ">= 1"),
    # ---- padding
    case("padding-negative", lambda: F.conv2d(x2(), w2(), padding=-1), ValueError,
         "conv2d", "`padding`", ">= 0", "(-1, -1)"),
    case("padding-negative-in-pair", lambda: F.conv2d(x2(), w2(), padding=((0, -2), (1, 1))), ValueError,
         "conv2d", "`padding`", ">= 0", "(0, -2)", "spatial dimension 0"),
    case("padding-float", lambda: F.conv2d(x2(), w2(), padding=1.5), TypeError,
         "conv2d", "`padding`", "1.5"),
    case("padding-same-with-stride-2", lambda: F.conv2d(x2(), w2(), stride=2, padding="same"), ValueError,
         "conv2d", "padding='same'", "stride=(2, 2)", "'same_tf'"),
    case("padding-unknown-string", lambda: F.conv2d(x2(), w2(), padding="half"), ValueError,
         "conv2d", "`padding`", "'half'", "'same_tf'"),
    case("padding-wrong-number-of-entries", lambda: F.conv2d(x2(), w2(), padding=(1, 1, 1)), ValueError,
         "conv2d", "`padding` has 3 entries (1, 1, 1)", "2 spatial dimensions"),
    case("padding-malformed-pair", lambda: F.conv2d(x2(), w2(), padding=((1, 2, 3), (0, 0))), ValueError,
         "conv2d", "`padding[0]` (=(1, 2, 3))", "(lo, hi) pair"),
    case("padding-reflect-not-smaller-than-input", lambda: F.conv1d(z(1, 2, 3), w1(), padding=3,
                                                                     padding_mode="reflect"),
         ValueError, "conv1d", "reflect padding (=(3, 3))", "smaller than the input size (=3)"),
    case("padding-circular-larger-than-input", lambda: F.conv1d(z(1, 2, 3), w1(), padding=4,
                                                                 padding_mode="circular"),
         ValueError, "conv1d", "circular padding (=(4, 4))", "at most the input size (=3)"),
    case("padding-symmetric-larger-than-input", lambda: F.conv2d(z(1, 4, 6, 3), w2(), padding=((1, 1), (0, 4)),
                                                                  padding_mode="symmetric"),
         ValueError, "conv2d", "symmetric padding (=(0, 4))", "at most the input size (=3)", "spatial dimension 1"),
    case("padding-mode-unknown", lambda: F.conv2d(x2(), w2(), padding=1, padding_mode="mirror"), ValueError,
         "conv2d", "`padding_mode` (='mirror')", "'reflect'"),
    case("padding-10**6-output-over-budget", lambda: F.conv2d(x2(), w2(), padding=10**6), ValueError,
         "conv2d", "output", "(1, 2, 2000004, 2000004)", "would need 64,000,256,000,256 bytes", "memory budget"),
    # ---- transposed convolution
    case("output-padding-not-below-stride-or-dilation", lambda: F.conv_transpose2d(xt(), wt(), stride=2,
                                                                                    output_padding=2),
         ValueError, "conv_transpose2d", "`output_padding` (=2)", "stride (=2)", "dilation (=1)"),
    case("output-padding-negative", lambda: F.conv_transpose2d(xt(), wt(), output_padding=-1), ValueError,
         "conv_transpose2d", "`output_padding` (=-1)", ">= 0"),
    case("output-padding-on-plain-conv", lambda: ConvSpec(3, stride=2, output_padding=1, ndim=2, name="conv2d"),
         ValueError, "conv2d", "`output_padding` (=(1, 1))", "transposed"),
    case("output-size-impossible", lambda: F.conv_transpose2d(xt(), wt(), stride=2, output_size=(20, 11)),
         ValueError, "conv_transpose2d", "`output_size` (=20)", "[11, 12]", "spatial dimension 0"),
    case("output-size-wrong-length", lambda: F.conv_transpose2d(xt(), wt(), output_size=(7, 7, 7)), ValueError,
         "conv_transpose2d", "`output_size` (=(7, 7, 7))", "2 entries"),
    case("output-size-and-output-padding", lambda: F.conv_transpose2d(xt(), wt(), stride=2, output_padding=1,
                                                                       output_size=(12, 12)),
         ValueError, "conv_transpose2d", "`output_size`", "`output_padding` (=(1, 1))"),
    case("conv-transpose-padding-full", lambda: F.conv_transpose2d(xt(), wt(), padding="full"), ValueError,
         "conv_transpose2d", "`padding` (='full')", "transposed"),
    case("conv-transpose-stride-2**40-over-budget", lambda: F.conv_transpose1d(z(1, 4, 2), z(4, 1, 3), stride=HUGE),
         ValueError, "conv_transpose1d", "output", f"(1, 1, {HUGE + 3})", "would need", "bytes"),
    # ---- ranks and shapes
    case("input-rank-too-low", lambda: F.conv2d(z(6, 6), w2()), ValueError,
         "conv2d", "`input`", "4 dimensions", "(6, 6)"),
    case("input-rank-too-high", lambda: F.conv1d(z(1, 2, 3, 8), w1()), ValueError,
         "conv1d", "`input`", "3 dimensions", "(1, 2, 3, 8)"),
    case("weight-rank-wrong", lambda: F.conv2d(x2(), z(2, 4, 3), stride=(1, 1)), ValueError,
         "conv2d", "`weight`", "4 dimensions", "(2, 4, 3)"),
    case("weight-1d", lambda: F.conv2d(x2(), z(3)), ValueError, "conv2d", "`weight`", "(3,)"),
    case("weight-1d-nd-conv", lambda: F.conv(x2(), z(3)), ValueError,
         "conv", "`weight`", "at least 3 dimensions", "(3,)"),
    case("bias-wrong-length", lambda: F.conv2d(x2(), w2(), bias=z(3)), ValueError,
         "conv2d", "`bias`", "(2,)", "(3,)"),
    case("bias-2d", lambda: F.conv2d(x2(), w2(), bias=z(1, 2)), ValueError, "conv2d", "`bias`", "(2,)", "(1, 2)"),
    # ---- dtypes and types
    case("dtype-mixed-input-weight", lambda: F.conv2d(z(1, 4, 6, 6, dtype=np.float32), w2()), TypeError,
         "conv2d", "same dtype", "input is float32", "weight is float64"),
    case("dtype-bias-differs", lambda: F.conv2d(x2(), w2(), bias=z(2, dtype=np.float32)), TypeError,
         "conv2d", "same dtype", "bias is float32"),
    case("dtype-bool-input", lambda: F.conv2d(z(1, 4, 6, 6, dtype=bool), w2()), TypeError,
         "conv2d", "`input`", "bool"),
    case("dtype-bool-weight", lambda: F.conv2d(x2(), z(2, 4, 3, 3, dtype=bool)), TypeError,
         "conv2d", "`weight`", "bool"),
    case("input-string", lambda: F.conv2d("abc", w2()), TypeError, "conv2d", "`input`", "numeric", "<U3"),
    case("input-object-array", lambda: F.conv2d(np.full((1, 4, 6, 6), None), w2()), TypeError,
         "conv2d", "`input`", "numeric", "object"),
    case("input-torch-tensor", lambda: F.conv2d(_torch_tensor(1, 4, 6, 6), w2()), TypeError,
         "conv2d", "`input`", "torch.Tensor", ".numpy()"),
    case("weight-torch-tensor", lambda: F.conv_transpose2d(xt(), _torch_tensor(4, 3, 3, 3)), TypeError,
         "conv_transpose2d", "`weight`", "torch.Tensor", ".numpy()"),
    case("algorithm-unknown", lambda: F.conv2d(x2(), w2(), algorithm="fast"), ValueError,
         "conv2d", "`algorithm` (='fast')", "'im2col'"),
    # ---- gradients
    case("grad-output-wrong-shape", lambda: F.conv_vjp(z(1, 2, 3, 3), x2(), w2()), ValueError,
         "conv_vjp", "`grad_output`", "(1, 2, 4, 4)", "(1, 2, 3, 3)"),
    case("grad-output-wrong-dtype", lambda: F.conv_vjp(z(1, 2, 4, 4, dtype=np.float32), x2(), w2()), TypeError,
         "conv_vjp", "`grad_output`", "float32", "float64"),
    case("conv-transpose-grad-output-wrong-shape",
         lambda: F.conv_transpose_vjp(z(1, 3, 6, 6), xt(), wt()), ValueError,
         "conv_transpose_vjp", "`grad_output`", "(1, 3, 7, 7)", "(1, 3, 6, 6)"),
    # ---- pad()
    case("pad-odd-number-of-entries", lambda: pad(z(4), (1, 2, 3)), ValueError,
         "pad", "`pad`", "even number", "(1, 2, 3)"),
    case("pad-too-many-dims", lambda: pad(z(4), (1, 1, 1, 1)), ValueError,
         "pad", "`pad`", "2 dimensions", "(4,)"),
    case("pad-mode-unknown", lambda: pad(z(4), (1, 1), mode="wrap"), ValueError,
         "pad", "`mode` (='wrap')", "'circular'"),
    case("pad-not-a-sequence", lambda: pad(z(4), 2), TypeError, "pad", "`pad`", "sequence", "got 2"),
    case("pad-float-entry", lambda: pad(z(4), (1, 1.5)), TypeError, "pad", "`pad[1]`", "1.5"),
    case("pad-reflect-too-large", lambda: pad(np.arange(4.0), (4, 4), mode="reflect"), ValueError,
         "pad", "reflect padding (=(4, 4))", "input size (=4)"),
]

# The huge cases: each refuses something far larger than the machine, from views that hold almost nothing.
HUGE_CASES = [
    case("padding-10**6", lambda: F.conv2d(x2(), w2(), padding=10**6), ValueError,
         "conv2d", "would need", "bytes"),
    case("batch-10**6-broadcast", lambda: F.conv2d(huge(10**6, 64, 224, 224), z(64, 64, 3, 3, dtype=np.float32)),
         ValueError, "conv2d", "(1000000, 64, 222, 222)", "would need 12,616,704,000,000 bytes"),
    case("batch-10**6-vjp", lambda: F.conv_vjp(huge(10**6, 64, 222, 222), huge(10**6, 64, 224, 224),
                                               z(64, 64, 3, 3, dtype=np.float32)),
         ValueError, "conv_vjp", "would need", "bytes"),
    case("dilation-2**40", lambda: F.conv2d(x2(), w2(), dilation=HUGE), ValueError, "conv2d", "larger than"),
    case("conv-transpose-dilation-2**40", lambda: F.conv_transpose2d(xt(), wt(), dilation=HUGE), ValueError,
         "conv_transpose2d", "would need", "bytes"),
    case("huge-kernel-im2col", lambda: F.conv2d(huge(1, 1, 30000, 30000, dtype=np.float64),
                                                huge(1, 1, 20000, 20000, dtype=np.float64)),
         ValueError, "conv2d", "im2col", f"(100020001, 400000000) would need {100020001 * 400000000 * 8:,} bytes"),
    case("pad-10**6-constant", lambda: pad(huge(1000, 1000), (10**6, 10**6, 10**6, 10**6)), ValueError,
         "pad", "would need", "bytes"),
]


def test_enough_distinct_cases():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) >= 45


@pytest.mark.parametrize(("call", "exc", "parts"), CASES)
def test_bad_input_is_refused_with_a_precise_message(call, exc, parts):
    with _peak() as traced, pytest.raises(exc, match=_pattern(*parts)):
        call()
    assert traced["peak"] < 10 * MiB, f"{traced['peak']:,} bytes were allocated before the error"


@pytest.mark.parametrize(("call", "exc", "parts"), HUGE_CASES)
def test_huge_sizes_are_refused_before_allocating(call, exc, parts):
    with _peak() as traced, pytest.raises(exc, match=_pattern(*parts)):
        call()
    assert traced["peak"] < 10 * MiB, f"{traced['peak']:,} bytes were allocated before the error"


def test_budget_message_format():
    with pytest.raises(ValueError) as info:
        F.conv2d(huge(10**6, 64, 224, 224), z(64, 64, 3, 3, dtype=np.float32))
    message = str(info.value)
    assert re.search(r"would need [\d,]+ bytes \([\d.e+]+ GiB\), more than the memory budget of 8,589,934,592 bytes",
                     message)
    assert "convlab.ops.set_memory_budget" in message


@pytest.mark.parametrize("dtype", [np.float16, np.int8], ids=["float16", "int8"])
def test_padding_limits_are_checked_before_the_dtype_conversion(dtype):
    # float16 computes in float32 and integers in int64: the converted copy of a 24 MB input must
    # not be made before the reflect padding is found impossible.
    x = huge(1, 1, 3, 2**21, dtype=dtype)
    w = z(1, 1, 1, 1, dtype=dtype)
    with _peak() as traced, pytest.raises(ValueError, match=_pattern("conv2d", "reflect padding (=(3, 3))",
                                                                      "input size (=3)")):
        F.conv2d(x, w, padding=((3, 3), (0, 0)), padding_mode="reflect")
    assert traced["peak"] < 10 * MiB, f"{traced['peak']:,} bytes were allocated before the error"


# --------------------------------------------------------------------------- legal extremes


def test_stride_2_40_is_legal_when_the_output_has_size_one(rng):
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((3, 4, 3, 3))
    y = F.conv2d(x, w, stride=HUGE)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(y, F.conv2d(x, w)[:, :, :1, :1], rtol=1e-12, atol=1e-12)
    y1 = F.conv1d(x[:, :, 0], w[:, :, 0], stride=(HUGE,), dilation=2)
    np.testing.assert_allclose(y1, F.conv1d(x[:, :, 0], w[:, :, 0], dilation=2)[:, :, :1], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- budgets that must cover what is allocated


@pytest.fixture
def small_budget(monkeypatch):
    """A 2 MiB budget and one-sample im2col chunks, so budget rules can be tested on small arrays."""
    budget = 2 * MiB
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)
    with checks.memory_budget(budget):
        yield budget


def test_grouped_conv_does_not_exceed_the_budget_in_im2col(small_budget):
    # Depthwise 3x3 on (1, 128, 32, 32): output 1 MiB and padded input 1.1 MiB are within the budget; the
    # window matrix of all 128 groups at once is (128, 1024, 9) float64 = 9.4 MB. Either it is refused
    # with the bytes it needs, or it is built a group at a time and memory stays near the budget.
    x, w = z(1, 128, 32, 32), z(128, 1, 3, 3)
    F.conv2d(z(1, 2, 4, 4), z(2, 1, 3, 3), padding=1, groups=2)  # compile the depthwise kernels outside the count
    with _peak() as traced:
        try:
            F.conv2d(x, w, padding=1, groups=128)
        except ValueError as exc:
            assert re.search(r"conv2d: .*im2col.* would need [\d,]+ bytes", str(exc)), exc
            return
    assert traced["peak"] < 3 * small_budget, f"peak {traced['peak']:,} bytes with a budget of {small_budget:,}"


def test_weight_gradient_does_not_exceed_the_budget_in_im2col(small_budget):
    # conv_vjp on x (32, 1, 38, 38), w (1, 1, 7, 7): every forward-sized buffer is < 0.6 MB, but the window
    # matrix of the weight gradient is (49, 32 * 32 * 32) float64 = 12.8 MB.
    x, w = z(32, 1, 38, 38), z(1, 1, 7, 7)
    grad_output = z(32, 1, 32, 32)
    with _peak() as traced:
        try:
            F.conv_vjp(grad_output, x, w)
        except ValueError as exc:
            assert re.search(r"conv_vjp: .* would need [\d,]+ bytes", str(exc)), exc
            return
    assert traced["peak"] < 3 * small_budget, f"peak {traced['peak']:,} bytes with a budget of {small_budget:,}"


# --------------------------------------------------------------------------- not PyTorch's misleading messages


def test_weight_of_wrong_rank_is_a_weight_problem_not_a_stride_problem():
    # torch: "expected stride to be a single integer value or a list of 1 values to match the convolution
    # dimensions, but got stride=[1, 1]".
    with pytest.raises(ValueError) as info:
        F.conv2d(x2(), z(2, 4, 3), stride=(1, 1))
    message = str(info.value)
    assert "`weight`" in message and "(2, 4, 3)" in message
    assert "stride" not in message


def test_nd_conv_names_the_weight_when_its_rank_disagrees_with_the_input():
    # conv() takes the number of spatial dimensions from the weight; when it disagrees with the input,
    # the message must show the weight's shape too, not blame the input alone.
    with pytest.raises(ValueError) as info:
        F.conv(x2(), z(2, 4, 3), stride=(2, 2))
    message = str(info.value)
    assert "`weight`" in message and "(2, 4, 3)" in message and "(1, 4, 6, 6)" in message
    assert "stride" not in message


def test_zero_kernel_size_is_a_kernel_problem():
    # torch's older message: "Kernel size can't be greater than actual input size".
    for call in (lambda: F.conv2d(x2(), z(2, 4, 0, 3)), lambda: F.conv_transpose2d(xt(), z(4, 3, 3, 0))):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "kernel" in message and "`weight`" in message
        assert "input size" not in message and "larger than" not in message


def test_stride_2_40_is_never_reported_as_zero_or_negative():
    assert F.conv2d(x2(), w2(), stride=HUGE).shape == (1, 2, 1, 1)
    with pytest.raises(ValueError) as info:  # the transposed output really is too big
        F.conv_transpose1d(z(1, 4, 2), z(4, 1, 3), stride=HUGE)
    message = str(info.value)
    assert "would need" in message
    assert not re.search(r"zero|non-positive|negative|must be >= 1|\(=0\)", message)
