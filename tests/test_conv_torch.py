"""The convolution engine against PyTorch: forward and the gradients of input, weight and bias.

Hypothesis draws the configuration (1-3 spatial dims, stride, dilation, groups
including depthwise with a channel multiplier, bias, every padding form and
mode, unbatched inputs); each drawn case is run with both algorithms, through
the per-dim wrapper or the N-d ``conv``, and compared with torch by
``check_against_torch`` (values, dtype, shape and every gradient).

The cases come from ``conv_cases`` in ``tests/helpers.py``, which derives the
``(lo, hi)`` pairs of every padding form by hand, independently of
``convlab.shapes``. Where torch has no direct argument, the expected padding is
applied here: asymmetric ``(lo, hi)`` pairs, causal
and TensorFlow's ``'same'`` are padded with ``F.pad`` and followed by a valid
torch convolution; ``'symmetric'`` (absent from torch) gathers the input along
``np.pad(arange(S), (lo, hi), mode='symmetric')``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from tests.helpers import ConvCase, assert_close, check_against_torch, conv_cases, int_or_tuple, tf_same_pairs

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

ALGORITHMS = ("im2col", "reference")

CONV_WRAPPERS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TRANSPOSE_WRAPPERS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_TRANSPOSE = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}


# --------------------------------------------------------------------------- expected padding, by hand


def torch_pad(x, pairs, mode):
    """Pad the trailing len(pairs) dims of a batched tensor by (lo, hi) each, differentiably."""
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    if mode == "symmetric":
        nd = len(pairs)
        for i, (lo, hi) in enumerate(pairs):
            axis = x.ndim - nd + i
            index = np.pad(np.arange(x.shape[axis]), (lo, hi), mode="symmetric")
            x = x.index_select(axis, torch.from_numpy(index))
        return x
    flat = [amount for pair in reversed(pairs) for amount in pair]  # torch order: last dim first
    return TF.pad(x, flat, mode="constant" if mode == "zeros" else mode)


# --------------------------------------------------------------------------- forward convolution cases


def conv_inputs(case: ConvCase, dtype):
    rng = np.random.default_rng(case.seed)
    lead = () if case.batch is None else (case.batch,)
    x = rng.standard_normal(lead + (case.c_in,) + case.size).astype(dtype)
    w = rng.standard_normal((case.c_out, case.c_in // case.groups) + case.kernel).astype(dtype)
    b = rng.standard_normal(case.c_out).astype(dtype) if case.bias else None
    return {"input": x, "weight": w, "bias": b}


def torch_conv(case: ConvCase):
    conv = TORCH_CONV[case.nd]

    def forward(input, weight, bias):
        if case.torch_padding is not None:  # torch's own padding argument, batched or not
            return conv(input, weight, bias, case.stride, case.torch_padding, case.dilation, case.groups)
        x = input if case.batch is not None else input.unsqueeze(0)
        y = conv(torch_pad(x, case.pairs, case.mode), weight, bias, case.stride, 0, case.dilation, case.groups)
        return y if case.batch is not None else y.squeeze(0)

    return forward


def run_conv_case(case: ConvCase, dtype, algorithm: str) -> np.ndarray:
    kwargs = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
                  padding_mode=case.mode, algorithm=algorithm)

    def forward(input, weight, bias):
        if case.wrapper:
            return CONV_WRAPPERS[case.nd](input, weight, bias, **kwargs)
        return F.conv(input, weight, bias, **kwargs)

    def vjp(grad_output, input, weight, bias):
        return F.conv_vjp(grad_output, input, weight, bias, **kwargs)

    inputs = conv_inputs(case, dtype)
    out = check_against_torch(forward, vjp, torch_conv(case), inputs)
    expected_shape = ((case.batch,) if case.batch is not None else ()) + (case.c_out,)
    assert out.shape[: len(expected_shape)] == expected_shape
    return out


def check_conv_case(case: ConvCase, dtype) -> None:
    outputs = [run_conv_case(case, dtype, algorithm) for algorithm in ALGORITHMS]
    assert_close(outputs[0], outputs[1], "im2col vs reference")


@settings(max_examples=80)
@given(conv_cases(loose_arguments=True))
def test_conv_matches_torch_float64(case):
    check_conv_case(case, np.float64)


@settings(max_examples=25)
@given(conv_cases(loose_arguments=True))
def test_conv_matches_torch_float32(case):
    check_conv_case(case, np.float32)


@settings(max_examples=40)
@given(conv_cases(dims=(1, 2), modes=("reflect", "replicate", "circular", "symmetric"), loose_arguments=True))
def test_conv_padding_modes_match_torch(case):
    check_conv_case(case, np.float64)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kernel, dilation", [(2, 1), (4, 1), (2, 3), (3, 2), (4, 2)])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_even_kernels_and_dilation_match_torch(nd, kernel, dilation, algorithm):
    """torch's padding='same' puts the extra element on the right, also for even kernels and dilation."""
    rng = np.random.default_rng(nd * 100 + kernel * 10 + dilation)
    size = (7, 6, 5)[:nd]
    inputs = {
        "input": rng.standard_normal((2, 2) + size),
        "weight": rng.standard_normal((3, 2) + (kernel,) * nd),
        "bias": rng.standard_normal(3),
    }
    out = check_against_torch(
        forward=lambda input, weight, bias: F.conv(input, weight, bias, padding="same", dilation=dilation,
                                                   algorithm=algorithm),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias,
                                                                padding="same", dilation=dilation,
                                                                algorithm=algorithm),
        torch_forward=lambda input, weight, bias: TORCH_CONV[nd](input, weight, bias, padding="same",
                                                                 dilation=dilation),
        inputs=inputs,
    )
    assert out.shape == (2, 3) + size


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_same_with_padding_mode_matches_torch_module(mode):
    """torch.nn.Conv2d(padding='same', padding_mode=mode) is an oracle of its own for the split."""
    rng = np.random.default_rng(7)
    module = torch.nn.Conv2d(2, 4, (4, 3), padding="same", dilation=(1, 2), padding_mode=mode,
                             groups=2, dtype=torch.float64)
    weight = module.weight.detach().numpy().copy()
    bias = module.bias.detach().numpy().copy()
    x = rng.standard_normal((1, 2, 6, 7))
    check_against_torch(
        forward=lambda input, weight, bias: F.conv2d(input, weight, bias, padding="same", dilation=(1, 2),
                                                     groups=2, padding_mode=mode),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias, padding="same",
                                                                dilation=(1, 2), groups=2, padding_mode=mode),
        torch_forward=lambda input, weight, bias: module._conv_forward(input, weight, bias),
        inputs={"input": x, "weight": weight, "bias": bias},
    )


@pytest.mark.parametrize("size, kernel, stride, dilation, expected_pairs", [
    # Hand-worked TF 'SAME' padding: O = ceil(I/s), total = max((O-1)s + d(k-1) + 1 - I, 0).
    (7, 3, 2, 1, (1, 1)),   # O=4, total = 6+3-7 = 2
    (8, 3, 2, 1, (0, 1)),   # O=4, total = 6+3-8 = 1: extra on the right
    (6, 4, 1, 1, (1, 2)),   # O=6, total = 5+4-6 = 3
    (5, 2, 3, 2, (0, 1)),   # O=2, total = 3+3-5 = 1
    (9, 3, 3, 1, (0, 0)),   # O=3, total = 6+3-9 = 0
    (10, 3, 4, 3, (2, 3)),  # O=3, total = 8+7-10 = 5
])
def test_same_tf_matches_torch_with_hand_pads(size, kernel, stride, dilation, expected_pairs):
    assert tf_same_pairs((size,), (kernel,), (stride,), (dilation,)) == (expected_pairs,)
    rng = np.random.default_rng(size)
    inputs = {"input": rng.standard_normal((2, 2, size)), "weight": rng.standard_normal((3, 2, kernel)),
              "bias": None}
    out = check_against_torch(
        forward=lambda input, weight, bias: F.conv1d(input, weight, bias, stride, "same_tf", dilation),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias, stride,
                                                                "same_tf", dilation),
        torch_forward=lambda input, weight, bias: TF.conv1d(TF.pad(input, expected_pairs), weight, bias, stride,
                                                            0, dilation),
        inputs=inputs,
    )
    assert out.shape[-1] == -(-size // stride)


# --------------------------------------------------------------------------- transposed convolution cases


@dataclass(frozen=True)
class TransposeCase:
    nd: int
    batch: int | None
    c_in: int
    c_out: int
    groups: int
    kernel: tuple
    size: tuple
    stride: object
    dilation: object
    padding: object  # convlab's argument
    pairs: tuple
    output_padding: tuple  # what torch receives; convlab gets it or output_size
    output_size: tuple | None  # given to convlab instead of output_padding
    bias: bool
    wrapper: bool
    seed: int


@st.composite
def transpose_cases(draw, dims=(1, 2, 3)):
    nd = draw(st.sampled_from(dims))
    kmax = 3 if nd < 3 else 2
    if draw(st.booleans()):
        c_in = draw(st.integers(1, 3))
        groups, c_out = c_in, c_in * draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2 if nd == 3 else 3)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    form = draw(st.sampled_from(["int", "tuple", "pairs"]))
    # Largest padding that keeps the output non-empty: (I-1)s + d(k-1) + op + 1 - lo - hi >= 1.
    room = [(i - 1) * s + d * (k - 1) + op for i, s, d, k, op in zip(size, stride, dilation, kernel, output_padding,
                                                                     strict=True)]
    if form == "int":
        p = draw(st.integers(0, min(2, min(room) // 2)))
        padding, pairs = p, ((p, p),) * nd
    elif form == "tuple":
        ps = tuple(draw(st.integers(0, min(2, r // 2))) for r in room)
        padding, pairs = ps, tuple((p, p) for p in ps)
    else:
        pairs = []
        for r in room:
            lo = draw(st.integers(0, min(2, r)))
            pairs.append((lo, draw(st.integers(0, min(2, r - lo)))))
        padding = pairs = tuple(pairs)
    output_size = None
    if draw(st.booleans()):
        # Expected size, by hand: (I-1)s - lo - hi + d(k-1) + output_padding + 1.
        output_size = tuple((i - 1) * s - lo - hi + d * (k - 1) + op + 1
                            for i, s, (lo, hi), d, k, op in zip(size, stride, pairs, dilation, kernel, output_padding,
                                                                strict=True))
        batch_lead = draw(st.booleans())
        if batch_lead:
            output_size = (7, c_out) + output_size  # batch and channels are ignored
        if draw(st.booleans()):
            output_size = list(output_size)
    return TransposeCase(
        nd=nd,
        batch=draw(st.sampled_from([None, 1, 2])),
        c_in=c_in,
        c_out=c_out,
        groups=groups,
        kernel=kernel,
        size=size,
        stride=int_or_tuple(draw, stride),
        dilation=int_or_tuple(draw, dilation),
        padding=padding,
        pairs=pairs,
        output_padding=output_padding,
        output_size=output_size,
        bias=draw(st.booleans()),
        wrapper=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def torch_transpose(case: TransposeCase):
    conv_t = TORCH_TRANSPOSE[case.nd]
    symmetric = all(lo == hi for lo, hi in case.pairs)

    def forward(input, weight, bias):
        if symmetric:
            padding = tuple(lo for lo, _ in case.pairs)
            return conv_t(input, weight, bias, case.stride, padding, case.output_padding, case.groups,
                          case.dilation)
        # Asymmetric: no padding in torch, then crop lo on the left and hi on the right.
        y = conv_t(input, weight, bias, case.stride, 0, case.output_padding, case.groups, case.dilation)
        lead = y.ndim - case.nd
        crop = (slice(None),) * lead + tuple(slice(lo, y.shape[lead + i] - hi) for i, (lo, hi) in enumerate(case.pairs))
        return y[crop]

    return forward


def run_transpose_case(case: TransposeCase, dtype, algorithm: str) -> np.ndarray:
    rng = np.random.default_rng(case.seed)
    lead = () if case.batch is None else (case.batch,)
    inputs = {
        "input": rng.standard_normal(lead + (case.c_in,) + case.size).astype(dtype),
        "weight": rng.standard_normal((case.c_in, case.c_out // case.groups) + case.kernel).astype(dtype),
        "bias": rng.standard_normal(case.c_out).astype(dtype) if case.bias else None,
    }
    if case.output_size is None:
        extra = dict(output_padding=case.output_padding)
    else:
        extra = dict(output_size=case.output_size)
    kwargs = dict(stride=case.stride, padding=case.padding, groups=case.groups, dilation=case.dilation,
                  algorithm=algorithm, **extra)

    def forward(input, weight, bias):
        if case.wrapper:
            return TRANSPOSE_WRAPPERS[case.nd](input, weight, bias, **kwargs)
        return F.conv_transpose(input, weight, bias, **kwargs)

    def vjp(grad_output, input, weight, bias):
        return F.conv_transpose_vjp(grad_output, input, weight, bias, **kwargs)

    return check_against_torch(forward, vjp, torch_transpose(case), inputs)


def check_transpose_case(case: TransposeCase, dtype) -> None:
    outputs = [run_transpose_case(case, dtype, algorithm) for algorithm in ALGORITHMS]
    assert_close(outputs[0], outputs[1], "im2col vs reference")


@settings(max_examples=80)
@given(transpose_cases())
def test_conv_transpose_matches_torch_float64(case):
    check_transpose_case(case, np.float64)


@settings(max_examples=25)
@given(transpose_cases())
def test_conv_transpose_matches_torch_float32(case):
    check_transpose_case(case, np.float32)


@pytest.mark.parametrize("output_size", [(9, 10), (10, 11), (1, 1, 10, 10), [9, 11]])
def test_conv_transpose_output_size_matches_torch_module(output_size):
    """torch.nn.ConvTranspose2d.forward(x, output_size) resolves the size itself: an independent oracle."""
    module = torch.nn.ConvTranspose2d(2, 4, 3, stride=(2, 3), padding=1, groups=2, dilation=(1, 1),
                                      dtype=torch.float64)
    weight = module.weight.detach().numpy().copy()
    bias = module.bias.detach().numpy().copy()
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 4))

    def torch_forward(input, weight, bias):
        op = module._output_padding(input, list(output_size), module.stride, module.padding, module.kernel_size,
                                    2, module.dilation)
        return TF.conv_transpose2d(input, weight, bias, module.stride, module.padding, op, module.groups,
                                   module.dilation)

    out = check_against_torch(
        forward=lambda input, weight, bias: F.conv_transpose2d(input, weight, bias, (2, 3), 1, groups=2,
                                                               output_size=output_size),
        vjp=lambda grad_output, input, weight, bias: F.conv_transpose_vjp(grad_output, input, weight, bias, (2, 3),
                                                                          1, groups=2, output_size=output_size),
        torch_forward=torch_forward,
        inputs={"input": x, "weight": weight, "bias": bias},
    )
    assert out.shape[2:] == tuple(output_size)[-2:]
    with torch.no_grad():
        direct = module(torch.from_numpy(x), output_size=list(output_size)).numpy()
    assert_close(out, direct, "against ConvTranspose2d.forward(output_size=...)")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv_transpose_output_padding_beyond_stride_matches_torch(algorithm):
    """output_padding may reach max(stride, dilation) - 1: here 2 with stride 1 and dilation 3."""
    rng = np.random.default_rng(11)
    inputs = {"input": rng.standard_normal((2, 2, 4)), "weight": rng.standard_normal((2, 3, 3)),
              "bias": rng.standard_normal(3)}
    # stride 1, padding 1, output_padding 2, groups 1, dilation 3
    out = check_against_torch(
        forward=lambda input, weight, bias: F.conv_transpose1d(input, weight, bias, 1, 1, 2, 1, 3,
                                                               algorithm=algorithm),
        vjp=lambda grad_output, input, weight, bias: F.conv_transpose_vjp(grad_output, input, weight, bias,
                                                                          1, 1, 2, 1, 3, algorithm=algorithm),
        torch_forward=lambda input, weight, bias: TF.conv_transpose1d(input, weight, bias, 1, 1, 2, 1, 3),
        inputs=inputs,
    )
    assert out.shape == (2, 3, 3 - 2 + 6 + 2 + 1)  # (I-1)s - 2p + d(k-1) + output_padding + 1
