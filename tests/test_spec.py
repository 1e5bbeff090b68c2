"""ConvSpec / PoolSpec: every accepted form normalized to canonical tuples, and the rules they enforce."""

from __future__ import annotations

import dataclasses
import doctest
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlab.spec
from convlab.shapes import conv_output_length
from convlab.spec import PADDING_MODES, PADDING_STRINGS, ConvSpec, PoolSpec, as_int, as_tuple

# --------------------------------------------------------------------------- int / tuple expansion


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_int_arguments_expand_to_one_entry_per_dimension(ndim):
    spec = ConvSpec(3, stride=2, padding=1, dilation=2, groups=4, ndim=ndim)
    assert spec.ndim == ndim
    assert spec.kernel_size == (3,) * ndim
    assert spec.stride == (2,) * ndim
    assert spec.dilation == (2,) * ndim
    assert spec.padding == ((1, 1),) * ndim
    assert spec.groups == 4
    assert spec.output_padding == (0,) * ndim
    assert spec.padding_mode == "zeros"
    assert spec.transposed is False


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_defaults(ndim):
    spec = ConvSpec((3,) * ndim)
    assert spec.stride == (1,) * ndim
    assert spec.dilation == (1,) * ndim
    assert spec.padding == ((0, 0),) * ndim
    assert spec.groups == 1


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_per_dimension_tuples(ndim):
    kernel = tuple(range(1, ndim + 1))
    stride = tuple(range(2, ndim + 2))
    dilation = tuple(range(3, ndim + 3))
    padding = tuple(range(ndim))
    spec = ConvSpec(kernel, stride=stride, padding=padding, dilation=dilation)
    assert spec.ndim == ndim  # taken from the kernel tuple
    assert spec.kernel_size == kernel
    assert spec.stride == stride
    assert spec.dilation == dilation
    assert spec.padding == tuple((p, p) for p in padding)


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_lo_hi_pairs_stay_asymmetric(ndim):
    pairs = tuple((i, 2 * i + 1) for i in range(ndim))
    spec = ConvSpec((3,) * ndim, padding=pairs)
    assert spec.padding == pairs


def test_mixed_ints_and_pairs_and_lists():
    spec = ConvSpec([3, 3, 3], stride=[1, 2, 1], padding=[1, [0, 2], (3, 1)])
    assert spec.kernel_size == (3, 3, 3)
    assert spec.stride == (1, 2, 1)
    assert spec.padding == ((1, 1), (0, 2), (3, 1))


def test_canonical_values_are_plain_python_ints():
    spec = ConvSpec(np.int64(3), stride=np.int32(2), padding=(np.int16(1), (np.uint8(0), 2)), ndim=2)
    for value in (*spec.kernel_size, *spec.stride, *(v for pair in spec.padding for v in pair)):
        assert type(value) is int
    assert spec.kernel_size == (3, 3)
    assert spec.padding == ((1, 1), (0, 2))


def test_one_dimensional_pair_is_not_mistaken_for_lo_hi():
    # For 1 spatial dimension, (1, 2) would be ambiguous: it must be written ((1, 2),).
    assert ConvSpec((3,), padding=((1, 2),)).padding == ((1, 2),)
    with pytest.raises(ValueError, match=r"`padding` has 2 entries \(1, 2\).*1 spatial dimension"):
        ConvSpec((3,), padding=(1, 2))


def test_ndim_from_kernel_tuple_or_keyword():
    assert ConvSpec((3, 3)).ndim == 2
    assert ConvSpec(3, ndim=3).ndim == 3
    with pytest.raises(ValueError, match=r"conv: `ndim` is needed when `kernel_size` \(=3\) is a single int"):
        ConvSpec(3)
    with pytest.raises(ValueError, match=r"spatial dimensions \(=0\) must be >= 1"):
        ConvSpec(3, ndim=0)
    with pytest.raises(ValueError, match=r"`kernel_size` has 2 entries \(3, 3\).*3 spatial dimensions"):
        ConvSpec((3, 3), ndim=3)


def test_effective_kernel_size():
    assert ConvSpec((3, 4, 1), dilation=(2, 3, 5)).effective_kernel_size == (5, 10, 1)


# --------------------------------------------------------------------------- padding strings


def test_valid():
    assert ConvSpec((3, 5), padding="valid").padding == ((0, 0), (0, 0))


@pytest.mark.parametrize(
    ("kernel", "dilation", "expected"),
    [
        (1, 1, (0, 0)),
        (2, 1, (0, 1)),
        (3, 1, (1, 1)),
        (4, 1, (1, 2)),  # PyTorch: total 3, the extra element on the right
        (5, 1, (2, 2)),
        (4, 2, (3, 3)),  # total 2*(4-1) = 6
        (2, 3, (1, 2)),  # total 3
        (3, 2, (2, 2)),
    ],
)
def test_same_is_pytorch_rule(kernel, dilation, expected):
    assert ConvSpec(kernel, padding="same", dilation=dilation, ndim=1).padding == (expected,)


def test_same_five_dimensions():
    spec = ConvSpec((1, 2, 3, 4, 5), padding="same", dilation=(1, 1, 1, 1, 2))
    assert spec.padding == ((0, 0), (0, 1), (1, 1), (1, 2), (4, 4))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_matches_torch_conv_output():
    torch = pytest.importorskip("torch")
    for k in range(1, 6):
        for d in range(1, 4):
            (lo, hi), = ConvSpec(k, padding="same", dilation=d, ndim=1).padding
            x = torch.arange(12.0).reshape(1, 1, 12)
            w = torch.arange(1.0, k + 1).reshape(1, 1, k)
            expected = torch.nn.functional.conv1d(x, w, padding="same", dilation=d)
            ours = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (lo, hi)), w, dilation=d)
            torch.testing.assert_close(ours, expected)


@given(k=st.integers(1, 9), d=st.integers(1, 5), size=st.integers(1, 40))
def test_same_full_causal_properties(k, d, size):
    span = d * (k - 1)
    (lo, hi), = ConvSpec(k, padding="same", dilation=d, ndim=1).padding
    assert lo + hi == span and hi - lo in (0, 1)
    assert conv_output_length(size, k, 1, (lo, hi), d) == size
    assert ConvSpec(k, padding="full", dilation=d, ndim=1).padding == ((span, span),)
    assert conv_output_length(size, k, 1, (span, span), d) == size + span
    assert ConvSpec(k, padding="causal", dilation=d, ndim=1).padding == ((span, 0),)
    assert conv_output_length(size, k, 1, (span, 0), d) == size


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_same_tf_stays_symbolic_with_any_stride(ndim):
    spec = ConvSpec(3, stride=2, padding="same_tf", ndim=ndim)
    assert spec.padding == "same_tf"
    assert spec.stride == (2,) * ndim


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_full_and_causal_per_dimension(ndim):
    kernel = tuple(range(1, ndim + 1))
    dilation = tuple(range(ndim, 0, -1))
    spans = tuple(d * (k - 1) for k, d in zip(kernel, dilation, strict=True))
    assert ConvSpec(kernel, padding="full", dilation=dilation).padding == tuple((s, s) for s in spans)
    assert ConvSpec(kernel, padding="causal", dilation=dilation).padding == tuple((s, 0) for s in spans)


def test_strings_other_than_same_allow_any_stride():
    for mode in ("valid", "same_tf", "full", "causal"):
        ConvSpec(3, stride=2, padding=mode, ndim=2)


def test_same_needs_stride_one_and_points_to_same_tf():
    with pytest.raises(ValueError, match=r"conv: padding='same'.*stride 1.*stride=\(1, 2\).*'same_tf'"):
        ConvSpec(3, stride=(1, 2), padding="same", ndim=2)


def test_padding_strings_constant():
    assert PADDING_STRINGS == ("valid", "same", "same_tf", "full", "causal")
    assert PADDING_MODES == ("zeros", "reflect", "replicate", "circular", "symmetric")


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_padding_modes_accepted(mode):
    assert ConvSpec(3, padding=1, padding_mode=mode, ndim=2).padding_mode == mode


# --------------------------------------------------------------------------- frozen, equality, hash


def test_conv_spec_is_frozen():
    spec = ConvSpec(3, ndim=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stride = (2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.new_attribute = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del spec.kernel_size
    assert spec.stride == (1, 1)


def test_pool_spec_is_frozen():
    spec = PoolSpec(2, ndim=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stride = (1, 1)


def test_equal_forms_give_equal_specs_and_hashes():
    forms = [
        ConvSpec(3, stride=2, padding=1, ndim=2),
        ConvSpec((3, 3), stride=(2, 2), padding=(1, 1)),
        ConvSpec([3, 3], stride=[2, 2], padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1),
        ConvSpec((3, 3), stride=2, padding=[[1, 1], 1], name="conv2d"),  # the name is not compared
    ]
    for spec in forms[1:]:
        assert spec == forms[0]
        assert hash(spec) == hash(forms[0])
    assert len(set(forms)) == 1


def test_same_resolves_to_the_same_spec_as_its_pairs():
    assert ConvSpec((3, 4), padding="same") == ConvSpec((3, 4), padding=((1, 1), (1, 2)))
    assert ConvSpec(3, padding="valid", ndim=2) == ConvSpec(3, padding=0, ndim=2)


@pytest.mark.parametrize(
    "other",
    [
        ConvSpec(3, stride=1, padding=1, ndim=2),
        ConvSpec(3, stride=2, padding=0, ndim=2),
        ConvSpec(3, stride=2, padding=((1, 1), (1, 2)), ndim=2),
        ConvSpec(3, stride=2, padding=1, dilation=2, ndim=2),
        ConvSpec(3, stride=2, padding=1, groups=2, ndim=2),
        ConvSpec(3, stride=2, padding=1, padding_mode="reflect", ndim=2),
        ConvSpec(3, stride=2, padding=1, transposed=True, ndim=2),
        ConvSpec(3, stride=2, padding=1, ndim=3),
        ConvSpec(5, stride=2, padding=1, ndim=2),
    ],
    ids=["stride", "padding", "asym-padding", "dilation", "groups", "mode", "transposed", "ndim", "kernel"],
)
def test_different_specs_are_not_equal(other):
    assert ConvSpec(3, stride=2, padding=1, ndim=2) != other


def test_with_name_keeps_everything_but_the_name():
    spec = ConvSpec(3, stride=2, padding="same_tf", ndim=2)
    named = spec.with_name("conv2d")
    assert named.name == "conv2d" and spec.name == "conv"
    assert named == spec and hash(named) == hash(spec)
    assert isinstance(named, ConvSpec)
    assert all(getattr(named, f.name) == getattr(spec, f.name) for f in dataclasses.fields(ConvSpec) if f.compare)


def test_name_appears_in_errors_but_not_in_repr():
    with pytest.raises(ValueError, match=r"^my_layer: `stride` \(=0\) must be >= 1"):
        ConvSpec(3, stride=0, ndim=1, name="my_layer")
    assert "my_layer" not in repr(ConvSpec(3, ndim=1, name="my_layer"))


def test_specs_pickle():
    for spec in (ConvSpec((3, 4), padding="same", name="conv2d"), PoolSpec(3, stride=2, padding=1, ndim=2)):
        restored = pickle.loads(pickle.dumps(spec))
        assert restored == spec


# --------------------------------------------------------------------------- transposed / output_padding


@pytest.mark.parametrize(
    ("stride", "dilation", "output_padding"),
    [(2, 1, 1), (3, 1, 2), (1, 2, 1), (2, 3, 2), (3, 2, 2), (1, 1, 0)],
)
def test_output_padding_below_max_stride_dilation_is_accepted(stride, dilation, output_padding):
    spec = ConvSpec(3, stride=stride, dilation=dilation, transposed=True, output_padding=output_padding, ndim=2)
    assert spec.output_padding == (output_padding,) * 2


@pytest.mark.parametrize(
    ("stride", "dilation", "output_padding"),
    [(2, 1, 2), (1, 1, 1), (1, 2, 2), (2, 3, 3), (3, 2, 3)],
)
def test_output_padding_at_or_above_max_stride_dilation_is_refused(stride, dilation, output_padding):
    with pytest.raises(
        ValueError,
        match=rf"conv: `output_padding` \(={output_padding}\) must be smaller than either "
        rf"stride \(={stride}\) or dilation \(={dilation}\) in spatial dimension 0",
    ):
        ConvSpec(3, stride=stride, dilation=dilation, transposed=True, output_padding=output_padding, ndim=2)


def test_output_padding_per_dimension():
    spec = ConvSpec((3, 3), stride=(2, 1), dilation=(1, 3), transposed=True, output_padding=(1, 2))
    assert spec.output_padding == (1, 2)
    with pytest.raises(ValueError, match=r"`output_padding` \(=2\).*stride \(=1\).*dilation \(=2\).*dimension 1"):
        ConvSpec((3, 3), stride=(2, 1), dilation=(1, 2), transposed=True, output_padding=(1, 2))


def test_output_padding_only_for_transposed():
    with pytest.raises(ValueError, match=r"conv: `output_padding` \(=\(1, 1\)\) is only meaningful for a transposed"):
        ConvSpec(3, stride=2, output_padding=1, ndim=2)
    assert ConvSpec(3, stride=2, output_padding=0, ndim=2).output_padding == (0, 0)


def test_transposed_padding_words_and_modes():
    assert ConvSpec(3, padding="valid", transposed=True, ndim=1).padding == ((0, 0),)
    assert ConvSpec(3, padding=((1, 2),), transposed=True, ndim=1).padding == ((1, 2),)
    # 'same' (TensorFlow's, output I*s) resolves at construction; every padding mode is accepted (the adjoint).
    same = ConvSpec(3, stride=2, padding="same", transposed=True, ndim=1)
    assert (same.padding, same.output_padding, same.same_output) == (((0, 1),), (0,), True)
    assert ConvSpec(3, padding=1, padding_mode="reflect", transposed=True, ndim=1).padding_mode == "reflect"
    for word in ("same_tf", "full", "causal"):
        with pytest.raises(ValueError, match=rf"conv: `padding` \(='{word}'\) is not supported for a transposed "
                                             r"convolution.*'same' \(TensorFlow/Keras.*no transposed meaning"):
            ConvSpec(3, padding=word, transposed=True, ndim=1)
    with pytest.raises(ValueError, match=r"conv: `output_padding` \(=\(1,\)\) must be 0 with padding='same'"):
        ConvSpec(3, stride=2, padding="same", output_padding=1, transposed=True, ndim=1)


# --------------------------------------------------------------------------- PoolSpec


@pytest.mark.parametrize("ndim", [1, 2, 3, 5])
def test_pool_stride_defaults_to_kernel(ndim):
    kernel = tuple(range(2, ndim + 2))
    assert PoolSpec(kernel).stride == kernel
    assert PoolSpec(kernel, stride=None).stride == kernel
    assert PoolSpec(kernel, stride=[]).stride == kernel  # PyTorch's empty list
    assert PoolSpec(kernel, stride=()).stride == kernel
    assert PoolSpec(kernel, stride=1).stride == (1,) * ndim


def test_pool_defaults_and_flags():
    spec = PoolSpec((3, 2), stride=(1, 2), padding=((1, 0), 1), dilation=2, ceil_mode=True,
                    count_include_pad=False, divisor_override=7)
    assert spec.kernel_size == (3, 2)
    assert spec.stride == (1, 2)
    assert spec.padding == ((1, 0), (1, 1))
    assert spec.dilation == (2, 2)
    assert spec.ceil_mode is True and spec.count_include_pad is False and spec.divisor_override == 7
    assert spec.ndim == 2


@pytest.mark.parametrize(("kernel", "largest"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (7, 3)])
def test_pool_padding_at_most_half_the_kernel(kernel, largest):
    assert PoolSpec(kernel, padding=largest, ndim=1).padding == ((largest, largest),)
    assert PoolSpec(kernel, padding=((0, largest),), ndim=1).padding == ((0, largest),)
    with pytest.raises(
        ValueError,
        match=rf"pool: `padding` \(=\({largest + 1}, {largest + 1}\)\) must be at most half the kernel size "
        rf"\(kernel_size={kernel}, so at most {largest}\) in spatial dimension 0",
    ):
        PoolSpec(kernel, padding=largest + 1, ndim=1)
    with pytest.raises(ValueError, match=rf"\(=\(0, {largest + 1}\)\).*at most {largest}"):
        PoolSpec(kernel, padding=((0, largest + 1),), ndim=1)


def test_pool_padding_strings():
    assert PoolSpec(3, padding="valid", ndim=2).padding == ((0, 0), (0, 0))
    for mode in ("same", "same_tf", "full", "causal"):
        with pytest.raises(ValueError, match=rf"pool: `padding` \(='{mode}'\) must be .*'valid'"):
            PoolSpec(3, padding=mode, ndim=2)


def test_pool_equality_and_hash():
    a = PoolSpec(2, ndim=2)
    b = PoolSpec((2, 2), stride=(2, 2), padding=0, name="max_pool2d")
    assert a == b and hash(a) == hash(b)
    assert a != PoolSpec(2, ndim=2, ceil_mode=True)
    assert a != PoolSpec(2, stride=1, ndim=2)


def test_pool_flag_and_divisor_checks():
    with pytest.raises(TypeError, match=r"pool: `ceil_mode` must be a bool, got 1"):
        PoolSpec(2, ndim=1, ceil_mode=1)
    with pytest.raises(TypeError, match=r"pool: `count_include_pad` must be a bool, got 'yes'"):
        PoolSpec(2, ndim=1, count_include_pad="yes")
    with pytest.raises(ValueError, match=r"pool: `divisor_override` must be non-zero, got 0"):
        PoolSpec(2, ndim=1, divisor_override=0)
    with pytest.raises(TypeError, match=r"pool: `divisor_override` must be an integer, got 2.5"):
        PoolSpec(2, ndim=1, divisor_override=2.5)


# --------------------------------------------------------------------------- helpers


def test_as_int():
    assert as_int("f", "x", 3) == 3
    assert type(as_int("f", "x", np.int64(3))) is int
    for bad in (True, 2.0, "2", None, np.float64(2.0)):
        with pytest.raises(TypeError, match=r"^f: `x` must be an integer, got "):
            as_int("f", "x", bad)


def test_as_tuple():
    assert as_tuple("f", "x", 2, 3) == (2, 2, 2)
    assert as_tuple("f", "x", [1, 2], 2, minimum=1) == (1, 2)
    with pytest.raises(ValueError, match=r"^f: `x\[1\]` \(=0\) must be >= 1$"):
        as_tuple("f", "x", (1, 0), 2, minimum=1)
    with pytest.raises(ValueError, match=r"^f: `x` \(=0\) must be >= 1$"):
        as_tuple("f", "x", 0, 2, minimum=1)
    with pytest.raises(ValueError, match=r"^f: `x` has 3 entries \(1, 2, 3\), but the operation has 2 spatial"):
        as_tuple("f", "x", (1, 2, 3), 2)


# --------------------------------------------------------------------------- docstring examples


def test_docstring_examples():
    spec = ConvSpec(3, stride=2, padding="same_tf", ndim=2)
    assert (spec.kernel_size, spec.stride, spec.padding) == ((3, 3), (2, 2), "same_tf")
    assert ConvSpec((3, 4), padding="same").padding == ((1, 1), (1, 2))
    assert repr(PoolSpec(2, ndim=2)) == (
        "PoolSpec(kernel_size=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1), "
        "ceil_mode=False, count_include_pad=True, divisor_override=None)"
    )


def test_module_doctests_pass():
    result = doctest.testmod(convlab.spec, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3
    assert result.failed == 0
