"""One record per algorithm, the trace hook, the spec entry points, the memory budget setting.

What the engine's structure promises: every table is derived from the records;
``trace()`` reports which algorithm ran for which role; ``plan`` validates like
the ops; changing the memory budget changes what is refused; nn layers pass
their spec and their ``algorithm`` and compute only the gradients someone needs.
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as F
import convlab.nn as nn
import convlab.ops as ops
from convlab.ops.algorithms import ALGORITHMS, AUTO_ALGORITHMS, RECORDS, Algorithm, choose, plan, trace
from convlab.ops.algorithms.plan import FIXED_SECONDS, primitive
from convlab.ops.conv import conv_spec, conv_spec_vjp, conv_transpose_spec
from convlab.spec import ConvSpec

from .helpers import assert_close

# --------------------------------------------------------------------------- records


def test_every_table_is_derived_from_the_records():
    assert set(ALGORITHMS) == set(RECORDS)
    assert AUTO_ALGORITHMS == tuple(name for name, r in RECORDS.items() if r.estimate is not None)
    assert set(FIXED_SECONDS) == set(AUTO_ALGORITHMS)
    for name, record in RECORDS.items():
        assert isinstance(record, Algorithm) and record.name == name
        assert record.summary and callable(record.primitive)
    covering = {name for name, r in RECORDS.items() if r.covers_every_call}
    assert {"reference", "im2col", "matrix", "gemm", "col2im"} <= covering


def test_a_record_added_at_run_time_is_offered_by_name(monkeypatch):
    # Adding an algorithm is adding a record: choose() and ALGORITHMS-style dispatch find it by name.
    calls = []

    def doubled_reference(x, w, *args):
        calls.append(x.shape)
        return RECORDS["reference"].primitive(x, w, *args)

    record = Algorithm("probe", "the reference, counted", doubled_reference,
                       unsupported=lambda call: None if call.groups == 1 else "it needs groups == 1")
    monkeypatch.setitem(RECORDS, "probe", record)
    primitive.cache_clear()
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    assert_close(F.conv2d(x, w, algorithm="probe"), F.conv2d(x, w, algorithm="reference"))
    assert calls == [(1, 2, 5, 5)]
    with pytest.raises(ValueError, match=r"conv2d: `algorithm` 'probe' does not apply to this convolution: "
                                         r"it needs groups == 1"):
        F.conv2d(np.ones((1, 2, 5, 5)), np.ones((2, 1, 3, 3)), groups=2, algorithm="probe")
    # the gradients fall back to gemm where it does not apply
    grads = F.conv_vjp(np.ones((1, 2, 3, 3)), np.ones((1, 2, 5, 5)), np.ones((2, 1, 3, 3)), groups=2,
                       algorithm="probe")
    assert grads.input.shape == (1, 2, 5, 5)
    primitive.cache_clear()


def test_integer_calls_only_reach_exact_algorithms():
    x = np.arange(2 * 4 * 7 * 7).reshape(2, 4, 7, 7) % 5
    for w_shape, groups in (((4, 4, 3, 3), 1), ((4, 1, 3, 3), 4), ((6, 2, 1, 1), 2)):
        p = plan(x.shape, w_shape, padding=1, groups=groups, dtype=np.int64)
        assert RECORDS[p.algorithm].exact_integers, p
        assert {"fft", "winograd_f4"} <= set(p.refused)  # the inexact ones refuse integers


# --------------------------------------------------------------------------- trace


def test_trace_names_op_role_and_algorithm_of_every_primitive_call():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 8, 9, 9)), rng.standard_normal((8, 8, 3, 3))
    with trace() as events:
        y = F.conv2d(x, w, padding=1, algorithm="gemm")
        F.conv_vjp(np.ones_like(y), x, w, padding=1, algorithm="winograd_f4")
    assert [(e.op, e.role) for e in events] == [("conv2d", "forward"), ("conv_vjp", "input_grad"),
                                               ("conv_vjp", "weight_grad")]
    assert events[0].algorithm == "gemm" and events[1].algorithm == "winograd_f4"
    # Winograd's weight gradient (the adjoint of F(4x4, 3x3)) runs where named, on finite data
    assert events[2].algorithm == "winograd_f4"
    assert events[0].call.out_shape == (2, 8, 9, 9)
    assert all(e.seconds >= 0 for e in events)
    assert "conv2d forward: gemm" in str(events[0])


def test_trace_reports_what_auto_chose_and_nests():
    x, w = np.ones((1, 4, 6, 6), np.float32), np.ones((4, 1, 3, 3), np.float32)
    with trace() as outer:
        with trace() as inner:
            F.conv2d(x, w, padding=1, groups=4)
        F.conv_transpose2d(x, np.ones((4, 2, 3, 3), np.float32), stride=2)
    expected = plan(x.shape, w.shape, padding=1, groups=4).algorithm
    assert [e.algorithm for e in inner] == [expected]
    assert len(outer) == 2 and outer[0] is inner[0]
    assert outer[1].op == "conv_transpose2d" and outer[1].call.input_dilation == (2, 2)
    with trace() as after:
        pass
    assert after == []


def test_layers_are_traced_with_their_names():
    conv = nn.Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(0), algorithm="gemm")
    x = np.ones((1, 3, 8, 8), np.float32)
    with trace() as events:
        y = conv(x)
        conv.backward(np.ones_like(y))
    assert [(e.op, e.role, e.algorithm) for e in events] == [
        ("Conv2d", "forward", "gemm"), ("Conv2d.backward", "input_grad", "gemm"),
        ("Conv2d.backward", "weight_grad", "gemm")]


# --------------------------------------------------------------------------- plan validates like the ops


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    (dict(stride=True), TypeError, r"plan: `stride` must be an integer, got True"),
    (dict(stride=(1, 1, 1)), ValueError, r"plan: `stride` has 3 entries \(1, 1, 1\), but the operation has 2"),
    (dict(dilation=0), ValueError, r"plan: `dilation` \(=0\) must be >= 1"),
    (dict(padding=((1, 1),) * 3), ValueError, r"plan: `padding` has 3 entries"),
    (dict(input_dilation=(1, 0)), ValueError, r"plan: `input_dilation\[1\]` \(=0\) must be >= 1"),
    (dict(groups=3), ValueError, r"plan: `x_shape\[1\]` \(=8\) must equal w_shape\[1\] \* groups"),
])
def test_plan_validates_through_the_spec(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        plan((1, 8, 10, 10), (4, 8, 3, 3), **kwargs)


def test_plan_accepts_crops_and_padding_strings():
    assert plan((1, 8, 10, 10), (4, 8, 3, 3), padding=((-1, 2), (0, 0))).call.padding == ((-1, 2), (0, 0))
    assert plan((1, 8, 10, 10), (4, 8, 3, 4), padding="same").call.padding == ((1, 1), (1, 2))
    with pytest.raises(TypeError, match=r"plan: `x_shape` must be a sequence of ints"):
        plan(7, (4, 8, 3, 3))


# --------------------------------------------------------------------------- memory budget


def test_changing_the_budget_changes_the_refusal():
    x, w = np.ones((1, 1, 64, 64)), np.ones((1, 1, 3, 3))
    assert F.conv2d(x, w).shape == (1, 1, 62, 62)  # 31 KB of output: within the default budget
    with ops.memory_budget(16 * 1024) as budget:
        assert ops.get_memory_budget() == budget == 16384
        with pytest.raises(ValueError, match=r"conv2d: the output of shape \(1, 1, 62, 62\) would need 30,752 "
                                             r"bytes .* more than the memory budget of 16,384 bytes "
                                             r"\(convlab.ops.set_memory_budget changes it\)"):
            F.conv2d(x, w)
    assert ops.get_memory_budget() == ops.DEFAULT_MEMORY_BUDGET_BYTES
    assert F.conv2d(x, w).shape == (1, 1, 62, 62)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-5, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_budgets_are_refused(value, error):
    with pytest.raises(error, match="set_memory_budget: `nbytes`"):
        ops.set_memory_budget(value)
    assert ops.get_memory_budget() == ops.DEFAULT_MEMORY_BUDGET_BYTES


# --------------------------------------------------------------------------- the spec entry points


def test_spec_entry_points_equal_the_loose_arguments():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2))
    spec = ConvSpec((3, 2), stride=2, padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2, name="mine")
    loose = dict(stride=2, padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    assert_close(conv_spec(x, w, spec), F.conv2d(x, w, **loose))
    g = rng.standard_normal(F.conv2d(x, w, **loose).shape)
    ours, theirs = conv_spec_vjp(g, x, w, spec), F.conv_vjp(g, x, w, **loose)
    assert_close(ours.input, theirs.input)
    assert_close(ours.weight, theirs.weight)
    with pytest.raises(ValueError, match=r"mine: `groups` \(=2\) must divide the input channels \(=3\)"):
        conv_spec(x[:, :3], w, spec)
    with pytest.raises(ValueError, match=r"mine: `weight` of shape .* has kernel \(3, 3\), but the spec says"):
        conv_spec(x, np.ones((6, 2, 3, 3)), spec)
    with pytest.raises(ValueError, match=r"conv_transpose2d: `spec` describes a \(non-transposed\) convolution"):
        conv_transpose_spec(x, w, spec.with_name("conv_transpose2d"))
    with pytest.raises(TypeError, match=r"conv_spec: `spec` must be a convlab.spec.ConvSpec, got dict"):
        conv_spec(x, w, {"stride": 2})


def test_a_layer_builds_its_spec_once(monkeypatch):
    conv = nn.Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(0))
    built = []
    original = ConvSpec.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs.get("name"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(ConvSpec, "__init__", counting)
    y = conv(np.ones((1, 2, 5, 5), np.float32))
    conv.backward(np.ones_like(y))
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, rng=np.random.default_rng(0))
    built.clear()
    z = up(y, output_size=(10, 10))
    up.backward(np.ones_like(z))
    assert built == []


# --------------------------------------------------------------------------- nn: algorithm= and needed gradients


def test_layer_algorithm_is_checked_and_used():
    with pytest.raises(ValueError, match=r"Conv2d: `algorithm` \(='fastest'\) must be 'auto' or one of"):
        nn.Conv2d(2, 3, 3, algorithm="fastest")
    conv = nn.Conv2d(4, 4, 3, groups=4, algorithm="depthwise", rng=np.random.default_rng(0))
    assert "algorithm='depthwise'" in repr(conv)
    x = np.random.default_rng(1).standard_normal((1, 4, 6, 6)).astype(np.float32)
    with trace() as events:
        y = conv(x)
    assert events[0].algorithm == "depthwise"
    reference = nn.Conv2d(4, 4, 3, groups=4, algorithm="reference")
    reference.load_state_dict(conv.state_dict())
    assert_close(y, reference(x))
    strict = nn.Conv2d(4, 4, 3, algorithm="depthwise")
    with pytest.raises(ValueError, match="'depthwise' does not apply"):
        strict(x)


def test_frozen_weights_and_data_inputs_cost_no_gradient():
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(3, 4, 3, padding=1, rng=rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = conv(x)
    g = np.ones_like(y)
    full = conv.backward(g)
    expected_weight = conv.weight.grad.copy()
    conv.zero_grad()
    conv.weight.requires_grad = False
    with trace() as events:
        assert_close(conv.backward(g), full)
    assert [e.role for e in events] == ["input_grad"]
    assert conv.weight.grad is None and conv.bias.grad is not None
    conv.weight.requires_grad = True
    conv.zero_grad()
    conv.needs_input_grad = False
    with trace() as events:
        assert conv.backward(g) is None
    assert [e.role for e in events] == ["weight_grad"]
    assert_close(conv.weight.grad, expected_weight)


def test_choose_refuses_unknown_algorithms():
    with pytest.raises(TypeError, match=r"conv: `algorithm` must be a string"):
        choose("conv", 3)
    assert repr(choose("conv_vjp", "fft", fallback="gemm")) == "<convolution primitive 'fft', else 'gemm'>"
    assert repr(choose("conv_vjp", "reference", fallback="gemm")) == "<convolution primitive 'reference'>"
