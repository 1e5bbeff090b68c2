"""Measured planning: time the applicable algorithms of a call on this machine once, and remember the fastest.

``algorithm='auto'`` chooses by a cost model (:mod:`.plan`), a first guess
that can be wrong on a CPU unlike the ones it was checked on. Like FFTW's
``FFTW_MEASURE`` planner, cuDNN's ``benchmark`` mode and SciPy's
``choose_conv_method(measure=True)``, tuning measures instead: for one
*signature* (the primitive call's shapes, dtype, stride, padding, dilation,
input dilation and groups, the role of the call: ``'forward'``,
``'input_grad'`` or ``'weight_grad'``, and the number of BLAS threads) it times
every algorithm ``auto`` could run there and remembers the fastest in a
process-wide table, which the planner reads before its estimate
(:func:`~.plan.plan` then says ``measured``).

Ways in, all explicit (no environment variable):

- ``tune(x_shape, w_shape, ...)``: one signature, the arguments of :func:`~.plan.plan`;
- ``algorithm='tune'`` on any op or layer: ``auto``, tuning each signature the first time it is met;
- ``with tuning():``: every ``auto`` call inside tunes its signatures;
- ``model.tune(input_shape)`` (:meth:`convlab.nn.Module.tune`): a forward and backward of the
  whole network inside :func:`tuning`, so every convolution's forward and both gradients are tuned.

The candidates are the algorithms with a cost estimate that apply to the call
(exact for its dtype: integers get only exact algorithms), ordered by
estimate, leaving out those estimated over :data:`SKIP_RATIO` times slower than
the best estimate. Each runs once to warm up (a compiled kernel compiles on
its first call: never a sample) and once timed, in the order of the estimates;
one whose timed run took over three times the best so far cannot win and is
not run again. The others then run in ``repeat - 1`` interleaved rounds (each
once per round, the first one rotated), so that a change of the machine's load
falls on all of them alike. Each candidate's time is the median of its timed
runs: what a user's repeated calls see, a cost paid on some calls only (the page
faults of fresh large temporaries) included, which the fastest run would hide,
while one run slowed by another process does not move it. Candidates within
:data:`TIE` of the fastest (a near tie, where noise decides) get up to
:data:`TIE_ROUNDS` more interleaved rounds among themselves. The fastest then
replaces the cost model's choice only where it is faster by more than
:data:`MARGIN` (:func:`decide`): a tie keeps the model's answer, so tuning does
not flip between equals from one process to the next. Once the signature's
time ``budget`` (the sum of its runs' seconds, warm-ups included) is spent no
further candidate or round is started. The weight gradient of a convolution
with at least four input channels per group runs as im2col + GEMM directly
(:func:`.gemm.weight_grad`); its ``gemm`` candidate is timed that way, and a
depthwise layer's (``groups == C_in``) ``depthwise`` and ``fft`` candidates
are timed as the ops run them (read in place; a block of channels at a time).

The table can be kept across processes in a small JSON file in the user's
cache folder (``$XDG_CACHE_HOME/convlab`` or ``~/.cache/convlab``), named by a
hash of what makes timings differ between machines (:func:`machine`: CPU
model, instruction sets, BLAS core, library versions), so a file written on
another machine is never read. :func:`save` and :func:`load` are explicit
calls (``tune(..., cache=True)`` does both around one signature). Writes are
atomic; a corrupt or foreign file is ignored with a warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import math
import os
import platform
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..._files import atomic_writer
from ._blas import openblas_core, openblas_threads
from ._layout import Call
from ._registry import RECORDS

__all__ = ["FORMAT", "MARGIN", "ROLES", "SKIP_RATIO", "TIE", "TIE_ROUNDS", "Tuned", "cache_path", "clear", "decide",
           "entries", "load", "lookup", "machine", "machine_key", "measure_call", "save", "threads", "tune",
           "tune_call", "tuning"]

#: Candidates estimated more than this many times slower than the best estimate are not timed.
SKIP_RATIO = 20.0
#: Candidates whose median is within this fraction of the fastest one's are a near tie: they get more rounds.
TIE = 0.1
#: At most this many extra interleaved rounds among the near ties (within the budget).
TIE_ROUNDS = 4
#: A measured winner replaces the cost model's choice only where it is faster by more than this fraction.
MARGIN = 0.05
#: The roles a primitive call plays for its op (the trace's).
ROLES = ("forward", "input_grad", "weight_grad")
#: The version of the cache file's layout.
FORMAT = 1
#: Input channels per group from which the ops compute the weight gradient by im2col + GEMM directly
#: (``ops._conv_common.DIRECT_WEIGHT_GRAD_CHANNELS``, read lazily: that module imports this package).
_DIRECT = None

Measure = Callable[[str, Callable[[], object]], float]


class Tuned(NamedTuple):
    """What tuning found for one signature: the fastest algorithm, the seconds of each, and what was not timed."""

    algorithm: str  # the fastest measured, or the cost model's choice where it is within MARGIN of it
    seconds: dict[str, float]  # median of the timed runs, per candidate timed
    skipped: dict[str, str]  # candidate -> why it was not timed
    call: Call
    role: str
    threads: int

    def __str__(self) -> str:
        timed = ", ".join(f"{name} {s * 1e3:.3g} ms" for name, s in sorted(self.seconds.items(), key=lambda i: i[1]))
        return f"{self.algorithm}: measured fastest of {timed}"


def threads() -> int:
    """The number of threads NumPy's BLAS runs now (OpenBLAS's own count, else the CPU count)."""
    count = openblas_threads()
    return count if count and count > 0 else (os.cpu_count() or 1)


# --------------------------------------------------------------------------- the table

_LOCK = threading.RLock()
_TABLE: dict[tuple[Call, str, int], Tuned] = {}


def lookup(call: Call, role: str | None = None) -> Tuned | None:
    """The tuned answer for ``call`` in ``role`` at the current thread count (any role when None), or None."""
    if not _TABLE:
        return None
    count = threads()
    if role is not None:
        return _TABLE.get((call, role, count))
    for r in ROLES:
        found = _TABLE.get((call, r, count))
        if found is not None:
            return found
    return None


def entries() -> list[Tuned]:
    """Every tuned signature of this process (a copy)."""
    with _LOCK:
        return list(_TABLE.values())


def clear() -> None:
    """Forget every tuned signature of this process (the cache file is left as it is)."""
    with _LOCK:
        _TABLE.clear()


def _remember(found: Tuned) -> None:
    with _LOCK:
        _TABLE[(found.call, found.role, found.threads)] = found


# --------------------------------------------------------------------------- measuring


def _check_role(fn: str, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"{fn}: `role` (={role!r}) must be one of {ROLES}")
    return role


def _check_number(fn: str, name: str, value: object, low: float, high: float, integer: bool = False) -> float:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{fn}: `{name}` (={value!r}) must be {what} from {low:g} to {high:g}")
    return value  # type: ignore[return-value]


def _array(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if dtype.kind in "iub":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _direct_weight_grad(call: Call, role: str) -> bool:
    """Whether the ops compute this weight-gradient call as im2col + GEMM directly (``gemm.weight_grad``)."""
    global _DIRECT
    if role != "weight_grad":
        return False
    if _DIRECT is None:
        from .._conv_common import DIRECT_WEIGHT_GRAD_CHANNELS

        _DIRECT = DIRECT_WEIGHT_GRAD_CHANNELS
    return call.x_shape[0] >= _DIRECT


def _depthwise_weight_grad(call: Call, role: str) -> bool:
    """Whether this weight-gradient correlation is a depthwise layer's (``groups == C_in``), which the ops compute
    without padded or transposed copies for ``depthwise`` and ``fft`` (``ops._conv_common.depthwise_weight_grad``).

    The correlation of a layer with input ``(N, C_in, *S)`` is ``x (C_in/g, g*N, *S_padded)`` and kernel
    ``(C_out, N, *O)``: one channel per group is ``x_shape[0] == 1``, ``x_shape[1] == groups * N``.
    """
    return (role == "weight_grad" and call.x_shape[0] == 1 and call.x_shape[1] == call.groups * call.w_shape[1]
            and all(p == (0, 0) for p in call.padding) and all(d == 1 for d in call.input_dilation))


def _runners(call: Call, role: str, names: Sequence[str], x: np.ndarray | None,
             weight: np.ndarray | None) -> dict[str, Callable[[], object]]:
    """One closure per candidate computing ``call`` (on the given arrays, or on random ones of its shapes)."""
    from .plan import primitive

    rng = np.random.default_rng(0)
    if x is None or weight is None:
        x, weight = _array(call.x_shape, call.dtype, rng), _array(call.w_shape, call.dtype, rng)
    args = (call.stride, call.padding, call.dilation, call.input_dilation, call.groups)
    runners: dict[str, Callable[[], object]] = {}
    for name in names:
        run = primitive(name)
        runners[name] = lambda run=run: run(x, weight, *args)
    if _depthwise_weight_grad(call, role) and ({"fft", "depthwise"} & set(runners)):
        from . import depthwise, fft

        # A depthwise layer's weight gradient (groups == C_in): the ops read the input and the output gradient
        # where they are (ops._conv_common.depthwise_weight_grad): `depthwise` by its weight-gradient kernel,
        # `fft` a block of channels at a time, not the correlation as a whole. The layer: N = the correlation's
        # kernel channels, the input already padded (the same sum), stride and dilation swapped back.
        n, groups = call.w_shape[1], call.groups
        xl = _array((n, groups) + call.size, call.dtype, rng)  # (N, C_in, *S_padded)
        gy = _array((n, call.w_shape[0]) + call.kernel, call.dtype, rng)  # (N, C_out, *O)
        zero = ((0, 0),) * call.nd
        layer = (zero, call.dilation, call.stride, call.out_size)  # padding, stride, dilation, kernel
        if "fft" in runners:
            runners["fft"] = lambda: fft.depthwise_weight_grad(xl, gy, *layer)
        if "depthwise" in runners:
            runners["depthwise"] = lambda: depthwise.weight_grad(xl, gy, *layer)
    if "gemm" in runners and _direct_weight_grad(call, role):
        from . import gemm

        # The correlation's input (C_in/g, g*N, *S) and kernel (C_out, N, *O) are the ops' padded input
        # (N, C_in, *S) and output gradient (N, C_out, *O); its stride and dilation swap back.
        n, c_out, cg = call.w_shape[1], call.w_shape[0], call.x_shape[0]
        xp = _array((n, cg * call.groups) + call.size, call.dtype, rng)
        gy = _array((n, c_out) + call.kernel, call.dtype, rng)
        kernel, stride, dilation = call.out_size, call.dilation, call.stride
        runners["gemm"] = lambda: gemm.weight_grad(xp, gy, kernel, stride, dilation, call.groups)
    return runners


def _perf_counter(name: str, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure_call(
    call: Call,
    role: str = "forward",
    *,
    x: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    repeat: int = 3,
    budget: float = 2.0,
    measure: Measure | None = None,
    first: str | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """The seconds of each candidate of ``call`` (the median of ``repeat`` interleaved runs after a warm-up,
    more rounds for near ties), and the candidates not timed with why (see the module docstring).

    What :func:`tune_call` measures, without remembering anything (the benchmark's
    ratio of ``auto`` to the fastest algorithm uses it). ``first``: a candidate timed
    first whatever its estimate (the benchmark's: what ``auto`` ran, so that the budget
    never leaves it out).
    """
    fn = "tune"
    _check_role(fn, role)
    repeat = int(_check_number(fn, "repeat", repeat, 1, 1000, integer=True))
    budget = float(_check_number(fn, "budget", budget, 0.0, 86400.0))
    from .plan import estimate_call

    estimated = estimate_call(call)
    if call.is_empty or call.cg == 0 or not estimated.estimates:
        return {}, {"all": "nothing to compute"}
    best_estimate = min(estimated.estimates.values())
    order = sorted(estimated.estimates, key=estimated.estimates.__getitem__)
    skipped = {name: f"estimated {estimated.estimates[name] / max(best_estimate, 1e-12):.0f}x the best estimate"
               for name in order if estimated.estimates[name] > SKIP_RATIO * best_estimate}
    candidates = [name for name in order if name not in skipped]
    if first is not None and first in estimated.estimates:
        skipped.pop(first, None)
        candidates = [first] + [name for name in candidates if name != first]
    runners = _runners(call, role, candidates, x, weight)
    clock = measure or _perf_counter
    samples: dict[str, list[float]] = {}
    spent = 0.0  # the seconds the runs took, warm-ups included, by the clock in use (the budget counts them)
    with np.errstate(all="ignore"):
        # One warm-up (a compiled kernel's first call compiles it; first touches of fresh buffers) and one timed
        # run per candidate, in the order of the estimates; one whose timed run took over three times the best
        # so far cannot win and is not run again.
        finalists: list[str] = []
        for i, name in enumerate(candidates):
            if i > 0 and spent > budget:
                skipped.update({rest: "the signature's time budget was spent" for rest in candidates[i:]})
                break
            spent += clock(name, runners[name])  # the warm-up: never a sample
            timed = clock(name, runners[name])
            spent += timed
            samples[name] = [timed]
            best = min((min(v) for other, v in samples.items() if other != name), default=math.inf)
            if timed <= 3 * best:
                finalists.append(name)
        # Then rounds: every finalist once per round, the first one rotated, so that a change in the machine's
        # load (other processes) falls on all of them alike instead of on whichever was timed at that moment.
        for round_ in range(1, repeat):
            if spent > budget or not finalists:
                break
            shift = round_ % len(finalists)
            for name in finalists[shift:] + finalists[:shift]:
                samples[name].append(clock(name, runners[name]))
                spent += samples[name][-1]
        # Near ties: more rounds among the candidates within TIE of the fastest, so that noise does not decide.
        for round_ in range(TIE_ROUNDS if repeat > 1 else 0):
            medians = {name: statistics.median(samples[name]) for name in finalists}
            fastest = min(medians.values(), default=math.inf)
            close = [name for name in finalists if medians[name] <= (1 + TIE) * fastest]
            if len(close) < 2 or spent > budget:
                break
            shift = round_ % len(close)
            for name in close[shift:] + close[:shift]:
                samples[name].append(clock(name, runners[name]))
                spent += samples[name][-1]
    # The median of each: what repeated calls take, a cost paid on some of them only included (the minimum
    # would hide it), one run slowed by another process left out; the rounds are interleaved, so a change
    # of the machine's load falls on every candidate alike.
    seconds = {name: statistics.median(values) for name, values in samples.items()}
    return seconds, skipped


def decide(seconds: dict[str, float], preferred: str | None = None) -> str:
    """The algorithm tuning keeps: the fastest of ``seconds``, unless ``preferred`` (the cost model's choice)
    was timed and the fastest beats it by no more than :data:`MARGIN` of its time (a tie keeps the model's).

    >>> decide({"gemm": 6.2e-3, "col2im": 6.1e-3}, preferred="gemm")
    'gemm'
    >>> decide({"gemm": 9.0e-3, "col2im": 6.1e-3}, preferred="gemm")
    'col2im'
    """
    if not seconds:
        raise ValueError("tune.decide: `seconds` is empty")
    winner = min(seconds, key=seconds.__getitem__)
    if preferred in seconds and seconds[winner] >= (1 - MARGIN) * seconds[preferred]:
        return preferred
    return winner


def tune_call(
    call: Call,
    role: str = "forward",
    *,
    x: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    repeat: int = 3,
    budget: float = 2.0,
    force: bool = False,
    measure: Measure | None = None,
) -> Tuned:
    """Time the candidates of ``call`` (see the module docstring), remember the fastest, return what was found.

    ``x`` and ``weight``, when given, are the call's arrays (the dispatcher passes
    them; otherwise random arrays of the call's shapes are made). An already tuned
    signature is returned as it is unless ``force``. ``measure(name, run)``
    replaces the clock: it returns the seconds of one run of candidate ``name``
    (``run()`` computes it); the default times ``run()`` with ``time.perf_counter``.
    """
    fn = "tune"
    _check_role(fn, role)
    repeat = int(_check_number(fn, "repeat", repeat, 1, 1000, integer=True))
    budget = float(_check_number(fn, "budget", budget, 0.0, 86400.0))
    count = threads()
    if not force:
        known = _TABLE.get((call, role, count))
        if known is not None:
            return known
    seconds, skipped = measure_call(call, role, x=x, weight=weight, repeat=repeat, budget=budget, measure=measure)
    if not seconds:
        from .plan import estimate_call

        found = Tuned(estimate_call(call).algorithm, {}, skipped, call, role, count)
        _remember(found)
        return found
    from .plan import estimate_call

    # the ops' own choice without tuning: the model's, or gemm where they compute the weight gradient directly
    preferred = "gemm" if _direct_weight_grad(call, role) else estimate_call(call).algorithm
    winner = decide(seconds, preferred)
    found = Tuned(winner, seconds, skipped, call, role, count)
    _remember(found)
    return found


def tune(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Sequence[tuple[int, int]] | str = 0,
    dilation: int | Sequence[int] = 1,
    input_dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    dtype: np.dtype | type | str = np.float32,
    role: str = "forward",
    repeat: int = 3,
    budget: float = 2.0,
    cache: bool = False,
    force: bool = False,
) -> Tuned:
    """Time the algorithms ``auto`` could run on one primitive call, and make ``auto`` run the fastest from now on.

    The arguments describe the call as :func:`~.plan.plan`'s do (and are checked
    by the same rules); ``role`` is the role the call plays (``'forward'``,
    ``'input_grad'``, ``'weight_grad'``), ``repeat`` the timed runs per candidate
    after a warm-up, ``budget`` the seconds one signature may take (roughly: a
    started run is finished). ``cache=True`` loads this machine's cache file
    first (a signature found there is not measured again) and saves the table
    to it after. ``force=True`` measures again a signature already tuned.

    Returns
    -------
    Tuned
        ``algorithm`` (the fastest measured, or the cost model's choice within :data:`MARGIN` of it),
        ``seconds`` per candidate timed (medians),
        ``skipped`` (candidates not timed, and why), the ``call``, ``role`` and ``threads``.

    Examples
    --------
    >>> from convlab.ops.algorithms import plan, tune
    >>> found = tune((1, 8, 12, 12), (8, 8, 3, 3), padding=1, repeat=1)
    >>> plan((1, 8, 12, 12), (8, 8, 3, 3), padding=1).algorithm == found.algorithm
    True
    >>> plan((1, 8, 12, 12), (8, 8, 3, 3), padding=1).source
    'measured'
    >>> tune.clear()
    """
    from .plan import plan

    fn = "tune"
    _check_role(fn, role)
    cache = _check_bool(fn, "cache", cache)
    force = _check_bool(fn, "force", force)
    call = plan(x_shape, w_shape, stride, padding, dilation, input_dilation, groups, dtype=dtype).call
    if cache and not force:
        load(quiet=True)
    known = None if force else lookup(call, role)
    if known is not None:
        return known
    found = tune_call(call, role, repeat=repeat, budget=budget, force=force)
    if cache:
        save()
    return found


def _check_bool(fn: str, name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: `{name}` must be True or False, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------- the tuning context


class _Tuning(NamedTuple):
    repeat: int
    budget: float


_TUNING: contextvars.ContextVar[_Tuning | None] = contextvars.ContextVar("convlab_tuning", default=None)


def active() -> _Tuning | None:
    """The settings of the :func:`tuning` block this code runs in, or None."""
    return _TUNING.get()


@contextlib.contextmanager
def tuning(repeat: int = 3, budget: float = 2.0) -> Iterator[None]:
    """``with tuning():``: every ``algorithm='auto'`` call inside tunes its signature the first time it meets it.

    The calls themselves then run the fastest algorithm measured. ``repeat`` and
    ``budget`` are :func:`tune_call`'s.
    """
    fn = "tuning"
    settings = _Tuning(int(_check_number(fn, "repeat", repeat, 1, 1000, integer=True)),
                       float(_check_number(fn, "budget", budget, 0.0, 86400.0)))
    token = _TUNING.set(settings)
    try:
        yield
    finally:
        _TUNING.reset(token)


# --------------------------------------------------------------------------- the cache file

_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
          "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2", "sme")


def _cpu() -> tuple[str, list[str]]:
    """The CPU's model name and the instruction-set flags of :data:`_FLAGS` it has (``/proc/cpuinfo``)."""
    model, flags = "", set()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                if model and flags:
                    break
    return model or platform.processor() or platform.machine(), sorted(f for f in _FLAGS if f in flags)


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What makes timings differ between machines: CPU model, instruction sets, BLAS core, library versions."""
    import scipy

    model, flags = _cpu()
    return {
        "cpu": model,
        "arch": platform.machine(),
        "flags": flags,
        "blas_core": openblas_core(),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "numba": _version("numba"),
                     "convlab": _version("convlab"), "python": platform.python_version()},
    }


def machine_key() -> str:
    """A short hash of :func:`machine`: the cache file's name for this machine."""
    text = json.dumps(machine(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path() -> str:
    """This machine's cache file: ``$XDG_CACHE_HOME/convlab/tuning-<key>.json`` (``~/.cache`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "convlab", f"tuning-{machine_key()}.json")


def _entry_json(found: Tuned) -> dict[str, Any]:
    c = found.call
    return {"x_shape": list(c.x_shape), "w_shape": list(c.w_shape), "stride": list(c.stride),
            "padding": [list(p) for p in c.padding], "dilation": list(c.dilation),
            "input_dilation": list(c.input_dilation), "groups": c.groups, "dtype": c.dtype.str,
            "role": found.role, "threads": found.threads, "algorithm": found.algorithm,
            "seconds": found.seconds}


def _entry_of(item: dict[str, Any]) -> Tuned:
    call = Call(tuple(int(v) for v in item["x_shape"]), tuple(int(v) for v in item["w_shape"]),
                tuple(int(v) for v in item["stride"]), tuple((int(lo), int(hi)) for lo, hi in item["padding"]),
                tuple(int(v) for v in item["dilation"]), tuple(int(v) for v in item["input_dilation"]),
                int(item["groups"]), np.dtype(item["dtype"]))
    name, role = str(item["algorithm"]), str(item["role"])
    record = RECORDS.get(name)
    if record is None or not record.automatic or record.why_not(call) is not None or role not in ROLES:
        raise ValueError(f"algorithm {name!r} (role {role!r}) is not one auto may run on {call.describe()}")
    seconds = {str(k): float(v) for k, v in dict(item.get("seconds", {})).items()}
    return Tuned(name, seconds, {}, call, role, int(item["threads"]))


def _read(path: str) -> list[Tuned] | None:
    """The entries of a cache file written on this machine; None (with a warning) for a foreign or corrupt one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a convlab tuning file of format {FORMAT}")
        if data.get("machine") != machine():
            warnings.warn(f"convlab: the tuning file {path} was written on another machine or with other library "
                          f"versions; it is ignored", RuntimeWarning, stacklevel=3)
            return None
        return [_entry_of(item) for item in data["entries"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        warnings.warn(f"convlab: the tuning file {path} cannot be read ({type(exc).__name__}: {exc}); it is "
                      f"ignored", RuntimeWarning, stacklevel=3)
        return None


def load(path: str | os.PathLike[str] | None = None, *, quiet: bool = False) -> int:
    """Read tuned signatures from ``path`` (default: this machine's :func:`cache_path`) into the table.

    Only a file written on this machine (the same :func:`machine`) is read; a
    foreign or corrupt one is ignored with a ``RuntimeWarning``. A missing
    file reads nothing (``quiet``: no warning either way for the default file,
    used by ``tune(..., cache=True)``). Signatures already tuned in this process
    are kept. Returns the number of signatures added.
    """
    target = cache_path() if path is None else os.fspath(path)
    if not os.path.exists(target):
        if path is not None and not quiet:
            raise FileNotFoundError(f"tune.load: `path` (={target!r}) does not exist")
        return 0
    found = _read(target)
    if found is None:
        return 0
    added = 0
    with _LOCK:
        for entry in found:
            key = (entry.call, entry.role, entry.threads)
            if key not in _TABLE:
                _TABLE[key] = entry
                added += 1
    return added


def save(path: str | os.PathLike[str] | None = None, *, overwrite: bool = False) -> str:
    """Write the table to ``path`` (default: this machine's :func:`cache_path`), atomically; return the path.

    The default file is updated: the signatures it holds are kept beside this
    process's (which win). An explicit ``path`` that exists is refused unless
    ``overwrite=True``.
    """
    default = path is None
    target = cache_path() if default else os.fspath(path)
    with _LOCK:
        current = {(e.call, e.role, e.threads): e for e in _TABLE.values()}
    if default:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            for entry in _read(target) or []:
                current.setdefault((entry.call, entry.role, entry.threads), entry)
    data = {"format": FORMAT, "machine": machine(), "key": machine_key(),
            "entries": [_entry_json(e) for e in current.values()]}
    with atomic_writer(target, text=True, overwrite=default or overwrite) as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return target


# ``tune.save()``, ``tune.load()``...: the table's functions as attributes of the public function.
tune.save = save  # type: ignore[attr-defined]
tune.load = load  # type: ignore[attr-defined]
tune.clear = clear  # type: ignore[attr-defined]
tune.entries = entries  # type: ignore[attr-defined]
tune.lookup = lookup  # type: ignore[attr-defined]
tune.tuning = tuning  # type: ignore[attr-defined]
tune.cache_path = cache_path  # type: ignore[attr-defined]
