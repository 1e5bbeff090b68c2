"""Hostile numbers: any integer hyperparameter is answered at once, with a result or a ValueError/TypeError.

Every integer hyperparameter of :mod:`convlab.functional` (convolutions, transposed
convolutions, the single-gradient functions, pooling, adaptive pooling,
unpooling, unfold/fold, pad, channel shuffle) and of ``plan`` is drawn by
Hypothesis from the whole range: 0, 1, small values, ``2**31``, ``2**40``,
``2**62`` (the largest accepted, :data:`convlab.spec.MAX_INT`), ``2**63``,
``2**64``, negatives, bools, floats, NumPy integers and arrays of every shape.
On small inputs each call must

* return, or raise ``ValueError``/``TypeError`` (nothing else: no
  ``OverflowError`` from a C long, no numba ``TypingError``, no ``MemoryError``);
* answer within :data:`HANG_SECONDS` (a ``SIGALRM`` guard fails with the case);
* trace at most :data:`FEW_MB` of memory (tracemalloc sees NumPy's buffers),
  under a memory budget of :data:`BUDGET`: planning and shape work cost no
  more than the data, whatever the numbers. Where the platform allows it, the
  address space is capped as well for the duration of the call, so that an
  allocation tracemalloc cannot see (a compiled kernel's) fails instead of
  exhausting the machine.

When a call returns, its gradients (``*_vjp``) are called too, under the same
guard, and a convolution's result is compared with the reference algorithm's.
The two cases the probe found are pinned, and the closed forms that replaced
loops over a stride (sub-pixel phases, col2im's tap runs) and over a kernel
larger than the input (clipped pooling windows, gathered unfold/fold) are
checked against the enumerations they replace.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convlab.functional as F
from convlab.ops import memory_budget
from convlab.ops.algorithms import ALGORITHMS, plan, reference
from convlab.ops.algorithms.col2im import tap_run
from convlab.ops.algorithms.subpixel import Phase, phases
from convlab.ops.padding import pad_vjp
from convlab.shapes import conv_output_shape
from convlab.spec import MAX_INT, ConvSpec, PoolSpec, as_int, as_tuple, padding_pairs

from .helpers import assert_close

#: A call that has not answered after this long is a hang.
HANG_SECONDS = 10
#: The memory budget of one buffer while a hostile call runs.
BUDGET = 2**20
#: The most a hostile call may trace (tracemalloc), results included.
FEW_MB = 16 * 2**20
#: Address space a call may add (a backstop for allocations tracemalloc does not see).
ADDRESS_SPACE_HEADROOM = 4 * 2**30

HOSTILE_INTS = [0, 1, 2, 3, -1, -2, 2**31 - 1, 2**31, 2**40, 2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64,
                -(2**62), -(2**63), -(2**64), 10**7, 8192]
HOSTILE_OTHERS = [True, False, 2.0, 0.5, float("inf"), float("nan"), "2", None, np.int64(2), np.int32(-1),
                  np.uint64(2**63), np.int8(3), np.int64(2**62), np.array(2), np.array(2.0), np.array([2]),
                  np.array([[1, 2]]), np.array([True]), 1j]
SCALARS = st.one_of(st.sampled_from(HOSTILE_INTS), st.sampled_from(HOSTILE_OTHERS), st.integers(-3, 6),
                    st.integers(-(2**70), 2**70))
SMALL = st.integers(0, 4)
PADDING_WORDS = st.sampled_from(["valid", "same", "same_tf", "full", "causal", "SAME", "bogus", ""])


def _x(*shape: int) -> np.ndarray:
    """A small float64 array of distinct values."""
    return np.arange(1.0, 1.0 + math.prod(shape)).reshape(shape) / 7


# --------------------------------------------------------------------------- the guard


class _Hang(BaseException):
    """Raised by the alarm; a BaseException, so that no ``except Exception`` in the engine swallows it."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise :class:`_Hang` in the block after ``seconds`` (main thread with SIGALRM only; else no guard)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _address_space_cap(headroom: int) -> Iterator[None]:
    """Cap the address space at its current size plus ``headroom`` inside the block, where Linux allows it."""
    try:
        import resource
    except ImportError:
        yield
        return
    current = _address_space()
    if current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield  # already capped tighter
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def answers(case: str, call: Callable[[], object]) -> object | None:
    """``call()``'s result, or None where it raised ValueError/TypeError; anything else fails with ``case``."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = None
    try:
        with memory_budget(BUDGET), _address_space_cap(ADDRESS_SPACE_HEADROOM), _alarm(HANG_SECONDS):
            result = call()
    except _Hang:
        pytest.fail(f"no answer within {HANG_SECONDS} s: {case}")
    except (ValueError, TypeError):
        result = None
    except Exception as error:  # the point: nothing else may escape
        pytest.fail(f"{type(error).__name__}: {error}\n  in {case}")
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert peak <= FEW_MB, f"traced {peak:,} bytes (more than {FEW_MB:,}) in {elapsed:.2f} s: {case}"
    return result


@pytest.fixture(autouse=True, scope="module")
def _warm():
    """Run every algorithm once on small calls first: lazy imports (SciPy's FFT) and numba's compiled kernels
    (loading or compiling them traces tens of MB, once per process) are not what :func:`answers` measures."""
    for nd, name in itertools.product((1, 2), ALGORITHMS):
        for channels, kernel, stride, input_dilation in ((2, 3, 1, 1), (2, 3, 2, 1), (2, 3, 1, 2), (1, 3, 1, 1),
                                                         (1, 3, 2, 1), (1, 3, 1, 2), (1, 5, 1, 1)):
            x, w = _x(1, channels, *(4,) * nd), _x(channels, 1, *(kernel,) * nd)
            with contextlib.suppress(ValueError, TypeError):
                ALGORITHMS[name](x, w, (stride,) * nd, ((1, 1),) * nd, (1,) * nd, (input_dilation,) * nd, channels)
    plan((1, 2, 4, 4), (2, 2, 3, 3), padding=1, input_dilation=2)
    yield


def _show(value: object) -> str:
    return f"np.array({value.tolist()!r}, {value.dtype})" if isinstance(value, np.ndarray) else repr(value)


def _case(name: str, **kwargs) -> str:
    return f"{name}(" + ", ".join(f"{k}={_show(v)}" for k, v in kwargs.items()) + ")"


# --------------------------------------------------------------------------- strategies


@st.composite
def per_dim(draw, nd: int, pairs: bool = False):
    """A per-dimension hyperparameter: a scalar, a tuple/list (right or wrong length), a NumPy array."""
    kind = draw(st.sampled_from(["scalar", "scalar", "tuple", "list", "wrong", "array", "array2d"]
                                + (["pairs", "pair_array", "word"] if pairs else [])))
    if kind == "scalar":
        return draw(SCALARS)
    if kind == "tuple":
        return tuple(draw(st.lists(SCALARS, min_size=nd, max_size=nd)))
    if kind == "list":
        return draw(st.lists(st.one_of(SMALL, SCALARS), min_size=nd, max_size=nd))
    if kind == "wrong":
        return tuple(draw(st.lists(SCALARS, min_size=0, max_size=nd + 2)))
    if kind == "array":
        values = draw(st.lists(st.one_of(SMALL, st.sampled_from([2**31, 2**40, 2**62, -1])), min_size=nd,
                               max_size=nd))
        dtype = np.dtype(draw(st.sampled_from([np.int64, np.int32, np.uint8, np.uint64, np.float64])))
        fits = dtype.kind == "f" or all(np.iinfo(dtype).min <= v <= np.iinfo(dtype).max for v in values)
        return np.array(values, dtype=dtype if fits else np.int64)
    if kind == "array2d":
        return np.ones((nd, draw(st.integers(1, 3))), dtype=np.int64)
    if kind == "pairs":
        return tuple(draw(st.lists(st.tuples(SCALARS, st.one_of(SMALL, SCALARS)), min_size=nd, max_size=nd)))
    if kind == "pair_array":
        return np.array(draw(st.lists(st.tuples(SMALL, SMALL), min_size=nd, max_size=nd)), dtype=np.int64)
    return draw(PADDING_WORDS)


SPATIAL = {1: [(3,), (1,)], 2: [(3, 4), (1, 1), (1, 3)], 3: [(2, 3, 2), (1, 1, 1)]}
KERNEL = {1: (2,), 2: (2, 3), 3: (1, 2, 2)}


@st.composite
def conv_arrays(draw, nd: int, transposed: bool = False):
    """Small input and weight: 0-2 channels, so that depthwise, grouped and empty calls all come up.

    Spatial sizes of 1 matter: a transposed convolution of a single element with a huge stride is a
    small output, so nothing refuses the stride before the algorithms see it.
    """
    c_in = draw(st.sampled_from([1, 2, 2, 0]))
    per_group = draw(st.sampled_from([1, 2, 0]))
    c_out = draw(st.sampled_from([1, 2]))
    x = _x(1, c_in, *draw(st.sampled_from(SPATIAL[nd])))
    w = _x(c_in, per_group, *KERNEL[nd]) if transposed else _x(c_out, per_group, *KERNEL[nd])
    return x, w


@st.composite
def pool_input(draw, nd: int, channels=(1, 2, 0)):
    return _x(1, draw(st.sampled_from(channels)), *draw(st.sampled_from(SPATIAL[nd])))


def _trivially_zero(y: np.ndarray, x: np.ndarray, w: np.ndarray, case: str) -> bool:
    """Whether ``y`` is empty or sums over no input channel (then it must be zeros): nothing for an oracle.

    An explicit algorithm may refuse such a call where ``auto`` answers at once: its padded copy of an
    input without channels can be longer than any array, and the reference loops over every output position.
    """
    if y.size and min(x.shape[1], w.shape[1]) > 0:
        return False
    assert not y.any(), case
    return True


def _oracle(y: np.ndarray) -> str:
    """The algorithm to check a result against: the reference, whose Python loop runs over the output
    positions, up to a few hundred of them; beyond, gemm (im2col and one product, independent of the planner)."""
    return "reference" if math.prod(y.shape[2:]) <= 512 else "gemm"


def _vjp_ones(result: np.ndarray) -> np.ndarray:
    return np.ones(result.shape, dtype=result.dtype)


# --------------------------------------------------------------------------- convolutions

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
HOSTILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_conv_answers_any_numbers(nd, data):
    x, w = data.draw(conv_arrays(nd))
    kwargs = dict(stride=data.draw(per_dim(nd)), padding=data.draw(per_dim(nd, pairs=True)),
                  dilation=data.draw(per_dim(nd)), groups=data.draw(SCALARS))
    case = _case(f"conv{nd}d", x=x.shape, w=w.shape, **kwargs)
    y = answers(case, lambda: CONV[nd](x, w, None, **kwargs))
    if y is None or _trivially_zero(y, x, w, case):
        return
    oracle = _oracle(y)
    expected = answers(f"{oracle} {case}", lambda: CONV[nd](x, w, None, algorithm=oracle, **kwargs))
    assert expected is not None, case
    assert_close(y, expected, case)
    answers("vjp of " + case, lambda: F.conv_vjp(_vjp_ones(y), x, w, None, ndim=nd, **kwargs))


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_conv_transpose_answers_any_numbers(nd, data):
    x, w = data.draw(conv_arrays(nd, transposed=True))
    kwargs = dict(stride=data.draw(per_dim(nd)), padding=data.draw(st.one_of(per_dim(nd, pairs=True),
                                                                             st.sampled_from(["same", "valid"]))),
                  output_padding=data.draw(st.one_of(st.just(0), per_dim(nd))), groups=data.draw(SCALARS),
                  dilation=data.draw(st.one_of(st.just(1), per_dim(nd))))
    output_size = data.draw(st.one_of(st.none(), per_dim(nd)))
    case = _case(f"conv_transpose{nd}d", x=x.shape, w=w.shape, output_size=output_size, **kwargs)
    y = answers(case, lambda: CONV_T[nd](x, w, None, output_size=output_size, **kwargs))
    if y is None or _trivially_zero(y, x, w, case):
        return
    oracle = _oracle(y)
    expected = answers(f"{oracle} {case}", lambda: CONV_T[nd](x, w, None, output_size=output_size,
                                                              algorithm=oracle, **kwargs))
    assert expected is not None, case
    assert_close(y, expected, case)
    answers("vjp of " + case, lambda: F.conv_transpose_vjp(_vjp_ones(y), x, w, None, output_size=output_size,
                                                           ndim=nd, **kwargs))


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_single_gradients_answer_any_numbers(nd, data):
    x, w = data.draw(conv_arrays(nd))
    out = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    grad = _x(1, w.shape[0], *out)
    kwargs = dict(stride=data.draw(per_dim(nd)), padding=data.draw(per_dim(nd, pairs=True)),
                  dilation=data.draw(per_dim(nd)), groups=data.draw(SCALARS))
    sizes = st.one_of(st.lists(st.one_of(SMALL, SCALARS), min_size=nd + 2, max_size=nd + 2).map(tuple),
                      st.lists(st.one_of(SMALL, SCALARS), min_size=0, max_size=nd + 3),
                      st.just(x.shape), st.just(w.shape), SCALARS)
    input_size = data.draw(sizes)
    case = _case(f"conv{nd}d_input", input_size=input_size, w=w.shape, grad=grad.shape, **kwargs)
    answers(case, lambda: getattr(F, f"conv{nd}d_input")(input_size, w, grad, **kwargs))
    weight_size = data.draw(sizes)
    case = _case(f"conv{nd}d_weight", x=x.shape, weight_size=weight_size, grad=grad.shape, **kwargs)
    answers(case, lambda: getattr(F, f"conv{nd}d_weight")(x, weight_size, grad, **kwargs))


# --------------------------------------------------------------------------- pooling

MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE = {(kind, nd): getattr(F, f"adaptive_{kind}_pool{nd}d") for kind in ("max", "avg") for nd in (1, 2, 3)}
UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_max_pool_answers_any_numbers(nd, data):
    x = data.draw(pool_input(nd))
    kwargs = dict(kernel_size=data.draw(per_dim(nd)), stride=data.draw(st.one_of(st.none(), per_dim(nd))),
                  padding=data.draw(per_dim(nd, pairs=True)), dilation=data.draw(st.one_of(st.just(1), per_dim(nd))),
                  ceil_mode=data.draw(st.booleans()))
    case = _case(f"max_pool{nd}d", x=x.shape, **kwargs)
    out = answers(case, lambda: MAX_POOL[nd](x, return_indices=True, **kwargs))
    if out is None:
        return
    values, indices = out
    answers("vjp of " + case, lambda: F.max_pool_vjp(_vjp_ones(values), x, ndim=nd, **kwargs))
    answers("unpool of " + case, lambda: UNPOOL[nd](values, indices, kwargs["kernel_size"], kwargs["stride"],
                                                    kwargs["padding"]))


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_avg_pool_answers_any_numbers(nd, data):
    x = data.draw(pool_input(nd))
    kwargs = dict(kernel_size=data.draw(per_dim(nd)), stride=data.draw(st.one_of(st.none(), per_dim(nd))),
                  padding=data.draw(per_dim(nd, pairs=True)), ceil_mode=data.draw(st.booleans()),
                  count_include_pad=data.draw(st.booleans()),
                  divisor_override=data.draw(st.one_of(st.none(), SCALARS)))
    case = _case(f"avg_pool{nd}d", x=x.shape, **kwargs)
    y = answers(case, lambda: AVG_POOL[nd](x, **kwargs))
    if y is not None:
        answers("vjp of " + case, lambda: F.avg_pool_vjp(_vjp_ones(y), x, ndim=nd, **kwargs))


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.sampled_from(["max", "avg"]), st.data())
def test_adaptive_pool_answers_any_numbers(nd, kind, data):
    x = data.draw(pool_input(nd, (1, 2)))
    output_size = data.draw(st.one_of(per_dim(nd), st.lists(st.one_of(st.none(), SMALL, SCALARS), min_size=nd,
                                                            max_size=nd).map(tuple)))
    case = _case(f"adaptive_{kind}_pool{nd}d", x=x.shape, output_size=output_size)
    y = answers(case, lambda: ADAPTIVE[kind, nd](x, output_size))
    if y is not None:
        vjp = F.adaptive_max_pool_vjp if kind == "max" else F.adaptive_avg_pool_vjp
        answers("vjp of " + case, lambda: vjp(_vjp_ones(y), x, output_size, ndim=nd))


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_max_unpool_answers_any_numbers(nd, data):
    values = _x(1, 2, *(2,) * nd)
    indices = np.zeros(values.shape, dtype=np.int64)
    kwargs = dict(kernel_size=data.draw(per_dim(nd)), stride=data.draw(st.one_of(st.none(), per_dim(nd))),
                  padding=data.draw(per_dim(nd, pairs=True)),
                  output_size=data.draw(st.one_of(st.none(), per_dim(nd),
                                                  st.lists(SCALARS, min_size=nd + 2, max_size=nd + 2))))
    case = _case(f"max_unpool{nd}d", x=values.shape, **kwargs)
    y = answers(case, lambda: UNPOOL[nd](values, indices, **kwargs))
    if y is not None:
        answers("vjp of " + case, lambda: F.max_unpool_vjp(_vjp_ones(y), values, indices, ndim=nd, **kwargs))


# --------------------------------------------------------------------------- unfold, fold, pad, shuffle


@HOSTILE
@given(st.sampled_from([1, 2, 3]), st.data())
def test_unfold_and_fold_answer_any_numbers(nd, data):
    x = data.draw(pool_input(nd))
    kwargs = dict(kernel_size=data.draw(per_dim(nd)), dilation=data.draw(per_dim(nd)),
                  padding=data.draw(per_dim(nd, pairs=True)), stride=data.draw(per_dim(nd)))
    case = _case("unfold", x=x.shape, ndim=nd, **kwargs)
    cols = answers(case, lambda: F.unfold(x, ndim=nd, **kwargs))
    if cols is not None:
        answers("vjp of " + case, lambda: F.unfold_vjp(_vjp_ones(cols), x, ndim=nd, **kwargs))
        back = answers("fold of " + case, lambda: F.fold(cols, x.shape[2:], ndim=nd, **kwargs))
        assert back is not None, case
    cols = _x(1, data.draw(st.sampled_from([1, 2, 4])), data.draw(st.sampled_from([1, 2, 3, 4])))
    output_size = data.draw(per_dim(nd))
    case = _case("fold", cols=cols.shape, output_size=output_size, ndim=nd, **kwargs)
    y = answers(case, lambda: F.fold(cols, output_size, ndim=nd, **kwargs))
    if y is not None:
        answers("vjp of " + case, lambda: F.fold_vjp(_vjp_ones(y), cols, output_size, ndim=nd, **kwargs))


@HOSTILE
@given(st.data())
def test_pad_answers_any_numbers(data):
    x = _x(*data.draw(st.sampled_from([(4,), (2, 3), (1, 2, 3), (1, 0, 2)])))
    widths = data.draw(st.one_of(st.lists(st.one_of(SMALL, SCALARS), min_size=0, max_size=8).map(tuple),
                                 st.lists(SMALL, min_size=2, max_size=4).map(np.array), SCALARS))
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular", "symmetric"]))
    case = _case("pad", x=x.shape, pad=widths, mode=mode)
    y = answers(case, lambda: F.pad(x, widths, mode))
    if y is not None:
        answers("vjp of " + case, lambda: pad_vjp(_vjp_ones(y), x, widths, mode))


@HOSTILE
@given(st.data())
def test_channel_shuffle_answers_any_numbers(data):
    x = _x(1, data.draw(st.sampled_from([0, 1, 4, 6])), 2)
    groups = data.draw(SCALARS)
    case = _case("channel_shuffle", x=x.shape, groups=groups)
    y = answers(case, lambda: F.channel_shuffle(x, groups))
    if y is not None:
        answers("vjp of " + case, lambda: F.channel_shuffle_vjp(_vjp_ones(y), x, groups))


# --------------------------------------------------------------------------- plan


@HOSTILE
@given(st.sampled_from([1, 2]), st.data())
def test_plan_answers_any_numbers(nd, data):
    dims = st.one_of(SMALL, st.sampled_from([1, 3, 2**31, 2**40, 2**62, 2**63, -1]))
    x_shape = (data.draw(dims), data.draw(st.sampled_from([1, 2]))) + tuple(data.draw(st.lists(dims, min_size=nd,
                                                                                            max_size=nd)))
    w_shape = (data.draw(st.sampled_from([1, 2])), data.draw(st.sampled_from([1, 2]))) + tuple(
        data.draw(st.lists(st.one_of(SMALL, st.sampled_from([2**31, 2**62])), min_size=nd, max_size=nd)))
    kwargs = dict(stride=data.draw(per_dim(nd)), padding=data.draw(per_dim(nd, pairs=True)),
                  dilation=data.draw(per_dim(nd)), input_dilation=data.draw(per_dim(nd)),
                  groups=data.draw(st.one_of(st.sampled_from([1, 2]), SCALARS)))
    case = _case("plan", x_shape=x_shape, w_shape=w_shape, **kwargs)
    p = answers(case, lambda: plan(x_shape, w_shape, **kwargs))
    if p is not None:
        assert p.algorithm in p.estimates or p.call.is_empty, case


# --------------------------------------------------------------------------- the range and the forms, once


@pytest.mark.parametrize("value", [2**62 + 1, 2**63, 2**64, -(2**62) - 1, np.uint64(2**63)])
def test_as_int_refuses_numbers_out_of_range(value):
    with pytest.raises(ValueError, match=r"^f: `x` \(=-?\d+\) is out of range: integer hyperparameters must lie "
                                         r"within \+/-2\*\*62"):
        as_int("f", "x", value)


def test_as_int_accepts_the_whole_range():
    assert as_int("f", "x", MAX_INT) == MAX_INT == 2**62
    assert as_int("f", "x", -MAX_INT) == -MAX_INT
    assert as_int("f", "x", np.int64(2**62)) == 2**62
    assert as_int("f", "x", np.array(3)) == 3  # a 0-d integer array is an integer
    for bad in (np.array(3.0), np.array(True), np.array([3])):
        with pytest.raises(TypeError, match=r"^f: `x` must be an integer, got "):
            as_int("f", "x", bad)


def test_sequences_of_every_kind_are_per_dimension_values():
    assert as_tuple("f", "stride", np.array([2, 3]), 2) == (2, 3)
    assert as_tuple("f", "stride", np.array([2, 3], dtype=np.uint8), 2) == (2, 3)
    assert as_tuple("f", "stride", range(1, 3), 2) == (1, 2)
    assert as_tuple("f", "stride", [np.int64(2), 3], 2) == (2, 3)
    assert padding_pairs("f", np.array([[0, 1], [2, 2]]), 2) == ((0, 1), (2, 2))
    assert padding_pairs("f", np.array([1, 2]), 2) == ((1, 1), (2, 2))
    assert padding_pairs("f", [np.array([0, 1]), 2], 2) == ((0, 1), (2, 2))
    assert ConvSpec(np.array([3, 3])).kernel_size == (3, 3)
    assert PoolSpec(2, stride=np.array([], dtype=np.int64), ndim=2).stride == (2, 2)  # empty: the kernel size
    x = _x(1, 1, 5, 5)
    np.testing.assert_array_equal(F.conv2d(x, _x(1, 1, 3, 3), stride=np.array([2, 2])),
                                  F.conv2d(x, _x(1, 1, 3, 3), stride=2))
    np.testing.assert_array_equal(F.max_pool2d(x, np.array([2, 2])), F.max_pool2d(x, 2))
    np.testing.assert_array_equal(F.pad(x, np.array([1, 0])), F.pad(x, (1, 0)))


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), stride=np.array([[2, 2]])),
     r"conv2d: `stride` must be an int, or one int per spatial dimension \(a list, a tuple or a 1-D integer NumPy "
     r"array\), got an array of shape \(1, 2\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), padding=np.ones((2, 2, 2), dtype=int)),
     r"conv2d: `padding` must be an int, one int or \(lo, hi\) pair per spatial dimension .*shape \(2,\) or "
     r"\(2, 2\).*got an array of shape \(2, 2, 2\)"),
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 2, stride=np.array([2.0, 2.0])),
     r"max_pool2d: `stride\[0\]` must be an integer, got 2.0 \(float\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), stride=2**64),
     r"conv2d: `stride` \(=18446744073709551616\) is out of range"),
    (lambda: F.conv2d(_x(1, 2, 5, 5), _x(2, 1, 3, 3), stride=(1, 2**64), groups=2),
     r"conv2d: `stride\[1\]` \(=18446744073709551616\) is out of range"),
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 2, stride=2**64),
     r"max_pool2d: `stride` \(=18446744073709551616\) is out of range"),
    (lambda: F.avg_pool1d(_x(1, 1, 5), 2, divisor_override=2**63),
     r"avg_pool1d: `divisor_override` \(=9223372036854775808\) is out of range"),
    (lambda: F.channel_shuffle(_x(1, 4, 2), 2**64), r"channel_shuffle: `groups` \(=18446744073709551616\) is out"),
    (lambda: F.pad(_x(1, 4), (0, 2**63)), r"pad: `pad\[1\]` \(=9223372036854775808\) is out of range"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), (2**63, 1)),
     r"adaptive_avg_pool2d: `output_size\[0\]` \(=9223372036854775808\) is out of range"),
    (lambda: F.fold(_x(1, 4, 4), (2**64, 3), 2), r"fold: `output_size\[0\]` \(=18446744073709551616\) is out"),
    (lambda: F.unfold(_x(1, 1, 4, 4), 2, ndim=2**62), r"unfold: `ndim`: the number of spatial dimensions "
                                                      r"\(=4611686018427387904\) must be at most 64"),
    (lambda: F.conv_transpose1d(_x(1, 1, 3), _x(1, 1, 3), stride=2, output_size=(2**64,)),
     r"conv_transpose1d: `output_size\[0\]` \(=18446744073709551616\) is out of range"),
    (lambda: F.max_unpool1d(_x(1, 1, 2), np.zeros((1, 1, 2), dtype=np.int64), 2, output_size=np.array([2**62])),
     r"max_unpool1d: `output_size` \(=4611686018427387904\) is impossible"),
    (lambda: plan((1, 1, 2**63), (1, 1, 3)), r"plan: `x_shape\[2\]` \(=9223372036854775808\) is out of range"),
    (lambda: plan((1, 1, 4), (1, 1, 3), input_dilation=2**62), r"plan: the input dilated and padded \(shape "
                                                               r"\(1, 1, 13835058055282163713\)\) would have"),
])
def test_messages_name_the_parameter_and_the_forms(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# --------------------------------------------------------------------------- the two cases the probe found


def test_transposed_conv_with_a_huge_stride_answers_at_once():
    # A transposed convolution with stride s is an input dilation s: s**2 sub-pixel phases, of which
    # the planner used to enumerate all (28 s at s = 8192, growing with s**2).
    x, w = _x(1, 1, 1, 1), _x(1, 1, 3, 3)
    for stride in (8192, 10**6):
        y = answers(f"conv_transpose2d stride={stride}", lambda s=stride: F.conv_transpose2d(x, w, stride=s))
        assert_close(y, F.conv_transpose2d(x, w, stride=stride, algorithm="reference"))
        assert_close(y, w * x[0, 0, 0, 0])  # one input element: the kernel scaled by it
    p = answers("plan input_dilation=2**40", lambda: plan((1, 1, 1, 1), (1, 1, 3, 3), padding=2,
                                                          input_dilation=2**40))
    assert p is not None and p.estimates["subpixel"] > 0
    assert "1 phases" in p.reason or p.algorithm != "subpixel"


def _address_space_capped() -> bool:
    """Whether :func:`_address_space_cap` works here (Linux): the backstop the next test needs to run safely."""
    try:
        import resource  # noqa: F401
    except ImportError:
        return False
    return _address_space() is not None


@pytest.mark.skipif(not _address_space_capped(), reason="needs the address-space cap (Linux) to fail safely")
def test_depthwise_transposed_conv_with_a_huge_stride_answers_at_once():
    # The compiled kernel `direct` once kept an accumulator of max(input_dilation, out_w) elements per plane:
    # a transposed stride of 2**31 asked for 16 GiB. Its column phases now stop at out_w.
    x, w = _x(1, 2, 1, 1), _x(2, 1, 3, 3)
    y = answers("conv_transpose2d depthwise stride=2**31", lambda: F.conv_transpose2d(x, w, stride=2**31, groups=2))
    assert_close(y, F.conv_transpose2d(x, w, stride=2**31, groups=2, algorithm="reference"))


def test_conv_with_a_huge_stride_and_padding_answers_at_once():
    # col2im's tap runs looped over the stride (2 s at stride 10**7, growing with it).
    x, w = _x(1, 1, 3), _x(1, 1, 3)
    for stride in (10**7, 2**62):
        y = answers(f"conv1d stride={stride}", lambda s=stride: F.conv1d(x, w, stride=s, padding=1))
        assert y.shape == (1, 1, 1)
        assert_close(y, F.conv1d(x, w, stride=stride, padding=1, algorithm="reference"))
        for algorithm in ("col2im", "gemm"):
            assert_close(F.conv1d(x, w, stride=stride, padding=1, algorithm=algorithm), y, algorithm)


def test_pooling_with_a_kernel_far_larger_than_the_input():
    # Pooling padding may be half the kernel, so a huge kernel and padding are a valid call on a small
    # input: the windows are clipped to the input, never enumerated tap by tap.
    x = _x(1, 2, 3, 4)
    for k in (2**20, 2**40, 2**62):
        values, indices = answers(f"max_pool2d {k}", lambda k=k: F.max_pool2d(x, k, 1, k // 2, return_indices=True))
        assert values.shape == (1, 2, 4, 5)
        np.testing.assert_array_equal(values, np.broadcast_to(x.max(axis=(2, 3), keepdims=True), values.shape))
        np.testing.assert_array_equal(indices, np.full(values.shape, 11))
        mean = answers(f"avg_pool2d {k}", lambda k=k: F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False))
        assert_close(mean, np.broadcast_to(x.mean(axis=(2, 3), keepdims=True), mean.shape))
        scaled = answers(f"avg_pool2d {k} with padding", lambda k=k: F.avg_pool2d(x, k, 1, k // 2))
        assert_close(scaled * float(k) * float(k), np.broadcast_to(x.sum(axis=(2, 3), keepdims=True), mean.shape))


# --------------------------------------------------------------------------- closed forms against enumeration


def _phases_by_enumeration(size, kernel, stride, padding, dilation, input_dilation, out):
    """The loop the closed form replaced: every phase, its first tap found by search."""
    lo, _ = padding
    ld = input_dilation
    period = ld // math.gcd(stride, ld)
    step = ld // math.gcd(dilation, ld)
    result = []
    for phi in range(period):
        outputs = len(range(phi, out, period))
        k0 = next((k for k in range(step) if (phi * stride - lo + k * dilation) % ld == 0), None)
        if k0 is None or k0 >= kernel or outputs == 0:
            continue
        taps = (kernel - 1 - k0) // step + 1
        base = (phi * stride + k0 * dilation - lo) // ld
        sub_stride, sub_dilation = period * stride // ld, step * dilation // ld
        last = (outputs - 1) * sub_stride + base + (taps - 1) * sub_dilation
        result.append(Phase(phi, period, k0, step, taps, sub_stride, sub_dilation, (-base, last + 1 - size), outputs))
    return result


def test_subpixel_phases_in_closed_form_equal_the_enumeration():
    for args in itertools.product(range(1, 4), range(1, 5), range(1, 5), range(-4, 5), range(1, 4), range(1, 7),
                                  range(1, 8)):
        size, kernel, stride, lo, dilation, ld, out = args
        assert phases(size, kernel, stride, (lo, 0), dilation, ld, out) == _phases_by_enumeration(
            size, kernel, stride, (lo, 0), dilation, ld, out), args


def test_col2im_tap_runs_in_closed_form_equal_the_enumeration():
    for start, stop, out, k, stride, dilation, ld, lo in itertools.product(
            range(3), range(7), range(6), range(3), range(1, 6), range(1, 4), range(1, 6), range(-5, 6)):
        pairs = [(i, (i * ld + lo - k * dilation) // stride) for i in range(start, stop)
                 if (i * ld + lo - k * dilation) % stride == 0 and 0 <= (i * ld + lo - k * dilation) // stride < out]
        run = tap_run(start, stop, out, k, stride, dilation, ld, lo)
        if not pairs:
            assert run is None
            continue
        assert [(start + run.first + t * run.step, run.out0 + t * run.out_step) for t in range(run.count)] == pairs


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_clipped_pooling_windows_equal_the_reference(data):
    # Kernels up to twice the input: the windows gathered over the taps inside the input (where
    # some window has taps that never can be) against the reference loops over every tap.
    nd = data.draw(st.integers(1, 2))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    kernel = tuple(data.draw(st.lists(st.integers(1, 9), min_size=nd, max_size=nd)))
    stride = tuple(data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    dilation = tuple(data.draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd)))
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.integers(-2, 3, (2, 2) + shape).astype(np.float64)
    if data.draw(st.booleans()):
        x[0, 1].flat[int(rng.integers(x[0, 1].size))] = np.nan
    pairs = tuple((p, p) for p in padding)
    try:
        values, indices = F.max_pool(x, kernel, stride, padding, dilation, ceil_mode, True, ndim=nd)
    except ValueError:
        return  # a window without input, or a kernel that does not fit
    expected_values, expected_indices = reference.max_pool_general(x, kernel, stride, pairs, dilation,
                                                                   values.shape[2:])
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(indices, expected_indices)
    if all(d == 1 for d in dilation):
        for include in (True, False):
            y = F.avg_pool(x, kernel, stride, padding, ceil_mode, include, ndim=nd)
            assert_close(y, reference.avg_pool_general(x, kernel, stride, pairs, y.shape[2:], include))
            g = rng.standard_normal(y.shape)
            xf = rng.standard_normal(x.shape)
            gx = F.avg_pool_vjp(g, xf, kernel, stride, padding, ceil_mode, include, ndim=nd)
            lhs = float((F.avg_pool(xf, kernel, stride, padding, ceil_mode, include, ndim=nd) * g).sum())
            assert lhs == pytest.approx(float((xf * gx).sum()), rel=1e-9, abs=1e-9)  # the adjoint identity


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_gathered_unfold_and_fold_equal_the_reference(data):
    # Paddings up to twice the input and strides past it: the gathered windows (where a padded copy
    # would outgrow the data) against the reference loops.
    nd = data.draw(st.integers(1, 2))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    kernel = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    stride = tuple(data.draw(st.lists(st.integers(1, 6), min_size=nd, max_size=nd)))
    dilation = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    padding = tuple(data.draw(st.tuples(st.integers(0, 9), st.integers(0, 9))) for _ in range(nd))
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal((2, 2) + shape)
    try:
        cols = F.unfold(x, kernel, dilation, padding, stride)
    except ValueError:
        return  # the kernel does not fit
    spec = ConvSpec(kernel, stride, padding, dilation, ndim=nd)
    out_size = tuple(int(o) for o in conv_output_shape(spec, shape))
    np.testing.assert_array_equal(cols, reference.unfold_general(x, kernel, stride, padding, dilation, out_size))
    g = np.random.default_rng(1).standard_normal(cols.shape)
    assert_close(F.fold(g, shape, kernel, dilation, padding, stride),
                 reference.fold_general(g, shape, kernel, stride, padding, dilation, out_size))
