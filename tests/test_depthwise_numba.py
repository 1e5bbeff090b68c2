"""The depthwise algorithm's two records, ``depthwise`` (compiled kernels where numba imports) and
``depthwise_numpy`` (the NumPy loops), equal the reference.

The random calls and op specs are those of ``test_algorithms`` (forward, and the
input and weight gradients through ``conv_vjp`` with the algorithm named),
run once per record. The compiled cases skip when numba is not installed; the
NumPy ones always run.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops.algorithms import ALGORITHMS, RECORDS, depthwise, reference
from convlab.ops.algorithms._layout import Call

from .helpers import assert_close
from .test_algorithms import _args, _arrays, _check_conv_and_vjp, _check_transpose_and_vjp, op_cases, primitive_calls

BACKENDS = pytest.mark.parametrize("backend", ["depthwise", "depthwise_numpy"])


def _using(backend: str):
    """The primitive of the record ``backend``; the compiled one skips without numba."""
    if backend == "depthwise":
        pytest.importorskip("numba")
    return ALGORITHMS[backend]


@pytest.fixture
def kernels():
    pytest.importorskip("numba")
    from convlab.ops.algorithms import _depthwise_numba

    return _depthwise_numba


def _uses_numba(backend: str, case, dtype) -> bool:
    x, w = _arrays(case, dtype)
    return backend == "depthwise" and depthwise.uses_numba(Call.of(x, w, *_args(case)))


# --------------------------------------------------------------------------- the primitive


@BACKENDS
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_primitive_equals_reference(backend, data):
    run = _using(backend)
    case = data.draw(primitive_calls("depthwise"))
    x, w = _arrays(case)
    assert _uses_numba(backend, case, np.float64) == (backend == "depthwise" and len(case["x_shape"]) < 5)
    assert_close(run(x, w, *_args(case)), reference.conv_general(x, w, *_args(case)), str(case))


@BACKENDS
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_float32_within_the_suite_tolerance(backend, data):
    run = _using(backend)
    case = data.draw(primitive_calls("depthwise"))
    x, w = _arrays(case)
    expected = reference.conv_general(x, w, *_args(case)).astype(np.float32)
    got = run(x.astype(np.float32), w.astype(np.float32), *_args(case))
    assert_close(got, expected, f"float32 {case}")


@BACKENDS
@settings(max_examples=40, deadline=None)
@given(case=primitive_calls())
def test_every_call_it_accepts_equals_reference(backend, case):
    run = _using(backend)
    # Random grouped calls: those depthwise accepts (groups == C_in, and the gradient forms with several
    # input channels per group) equal the reference; the others are refused with the reason.
    x, w = _arrays(case)
    reason = depthwise.unsupported(Call.of(x, w, *_args(case)))
    if reason is None:
        assert_close(run(x, w, *_args(case)), reference.conv_general(x, w, *_args(case)))
    else:
        with pytest.raises(ValueError, match="groups == C_in"):
            run(x, w, *_args(case))


@BACKENDS
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_integers_stay_exact(backend, data):
    run = _using(backend)
    # numba handles floats only: integer calls take the NumPy loops on both backends
    case = data.draw(primitive_calls("depthwise"))
    x, w = _arrays(case, np.int64)
    assert not _uses_numba(backend, case, np.int64)
    got = run(x, w, *_args(case))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference.conv_general(x, w, *_args(case)))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_compiled_forward_equals_numpy_loop_bit_for_bit(data):
    # flat and direct add the taps in the NumPy loop's order, one multiply then one add
    pytest.importorskip("numba")
    case = data.draw(primitive_calls("depthwise"))
    x, w = _arrays(case, np.float32)
    call = Call.of(x, w, *_args(case))
    compiled = ALGORITHMS["depthwise"](x, w, *_args(case))
    numpy_loop = depthwise._per_tap(call, x, w) if not call.is_empty else compiled
    if len(case["x_shape"]) < 5 and not (call.out_size[-1] < call.kernel[-1]):
        np.testing.assert_array_equal(compiled, numpy_loop)


@settings(max_examples=25, deadline=None)
@given(case=primitive_calls())
def test_numpy_loops_over_taps_and_over_positions_agree(case):
    x, w = _arrays(case)
    call = Call.of(x, w, *_args(case))
    if depthwise.unsupported(call) is not None or call.is_empty:
        return
    expected = reference.conv_general(x, w, *_args(case))
    assert_close(depthwise._per_tap(call, x, w), expected, "per tap")
    assert_close(depthwise._per_position(call, x, w), expected, "per position")


# --------------------------------------------------------------------------- through the ops: both gradients


@BACKENDS
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_ops_and_both_gradients_equal_reference(backend, data):
    _using(backend)
    case = data.draw(op_cases("depthwise"))
    _check_conv_and_vjp(case, backend)
    _check_transpose_and_vjp(case, backend)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("multiplier", [1, 2])
def test_layer_gradients_run_on_the_compiled_kernels(kernels, monkeypatch, stride, multiplier):
    # forward, input gradient and weight gradient of a depthwise layer all reach a compiled kernel
    ran = []
    for name in ("flat", "direct", "phases", "strided", "small_output", "weight_grad"):
        kernel = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _k=kernel, _n=name: (ran.append(_n), _k(*a))[1])
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((3, 4, 12, 11)).astype(np.float32)
    w = rng.standard_normal((4 * multiplier, 1, 3, 3)).astype(np.float32)
    kw = dict(stride=stride, padding=1, groups=4)
    y = F.conv2d(x, w, **kw, algorithm="depthwise")
    g = rng.standard_normal(y.shape).astype(np.float32)
    grads = F.conv_vjp(g, x, w, **kw, algorithm="depthwise")
    expected = F.conv_vjp(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), **kw,
                          algorithm="reference")
    assert_close(grads.input, expected.input.astype(np.float32), "input gradient")
    assert_close(grads.weight, expected.weight.astype(np.float32), "weight gradient")
    forward = "flat" if stride == 1 else "strided"
    input_grad = "flat" if stride == 1 else "phases"  # a strided layer's: input dilation, phase by phase
    # the weight gradient is read in place by its own kernel (no padded or transposed copies)
    assert ran == [forward, input_grad, "weight_grad"], ran


@BACKENDS
def test_large_kernel_and_crops(backend):
    run = _using(backend)
    # a 31x31 kernel on a 40x40 plane (the RepLKNet case) and negative pads, float32
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 40, 40))
    w = rng.standard_normal((3, 1, 31, 31)) / 31
    for pads in (((15, 15), (15, 15)), ((-2, 3), (4, -1))):
        args = ((1, 1), pads, (1, 1), (1, 1), 3)
        expected = reference.conv_general(x, w, *args).astype(np.float32)
        assert_close(run(x.astype(np.float32), w.astype(np.float32), *args), expected)


# --------------------------------------------------------------------------- the records and the import


def test_two_records_one_switch():
    # The choice of loops is an algorithm name, not a global setting: depthwise_numpy never runs compiled
    # code, auto considers only depthwise, and both describe the same calls.
    call = Call.of((1, 2, 5, 5), (2, 1, 3, 3), (1, 1), ((1, 1),) * 2, (1, 1), (1, 1), 2, np.float32)
    assert RECORDS["depthwise"].automatic and not RECORDS["depthwise_numpy"].automatic
    assert RECORDS["depthwise_numpy"].why_not(call) is None and RECORDS["depthwise"].why_not(call) is None
    assert not hasattr(depthwise, "set_backend")
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(depthwise, "_compiled", lambda *a: pytest.fail("depthwise_numpy ran the compiled kernel"))
        got = F.conv2d(x, w, padding=1, groups=2, algorithm="depthwise_numpy")
    assert_close(got, reference.conv_general(x, w, (1, 1), ((1, 1),) * 2, (1, 1), (1, 1), 2))


def test_without_numba_depthwise_takes_the_numpy_loops(monkeypatch):
    monkeypatch.setattr(depthwise, "_kernels", False)  # as if numba did not import
    assert not depthwise.numba_available()
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32)
    assert_close(ALGORITHMS["depthwise"](x, w, (1, 1), ((1, 1),) * 2, (1, 1), (1, 1), 2),
                 reference.conv_general(x, w, (1, 1), ((1, 1),) * 2, (1, 1), (1, 1), 2))


def test_importing_convlab_does_not_import_numba():
    code = "import sys, convlab, convlab.functional, convlab.ops.algorithms; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
