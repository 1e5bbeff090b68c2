"""Running a suite: per layer, a warm-up that checks the numbers, peak memory, then interleaved timed rounds.

Method. Per layer: a warm-up call of every implementation and pass, which also
checks that all agree with torch NCHW (maximum relative error: largest absolute
difference over the largest absolute value), records which algorithms
``algorithm='auto'`` ran (the engine's trace hook,
:func:`convlab.ops.algorithms.trace`), and leaves out (and reports) an
implementation that raises; one call each measuring peak memory; then ``repeat`` rounds, each
calling every implementation of every pass once, round-robin with the starting
implementation rotated per round, so that drifts in the machine's speed hit all
alike (a call that took over a second at warm-up is timed in the first three
rounds only: its relative noise is small, and some torch gradients of
single-channel 31x31 take over ten seconds). Reported: the median time, GFLOP/s
from the direct convolution's FLOP count (``2 * MACs`` from
:mod:`convlab.costs`; each gradient costs what the forward does, the backward
twice), the ratio convlab / torch NCHW (below 1: convlab is faster) per layer
and pass, the ratio of what ``auto`` ran to the fastest algorithm on the same
primitive calls (every candidate timed alike after the rounds:
:func:`convlab.ops.algorithms.tune.measure_call`), and of what ``auto`` would
run with the rates measured on this machine (:func:`convlab.ops.algorithms.calibrate.measure`, taken
once at the start) to the same fastest, the cost model's rates (in use and measured),
the geometric mean of the ratios against torch per layer class, and the
targets (:data:`.suites.TARGETS`), met or not met.
"""

from __future__ import annotations

import gc
import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from . import measure
from .suites import CLASSES, GRADIENT_FACTOR, MEMORY_LIMIT, PASSES, TARGETS, TORCH, TORCH_CHANNELS_LAST, Layer, Target

__all__ = ["SLOW_REPEAT", "SLOW_SECONDS", "auto_summary", "layer_targets", "meets", "pass_limit", "run", "summaries"]

SLOW_SECONDS, SLOW_REPEAT = 1.0, 3  # a call slower than 1 s at warm-up is timed at most 3 times


def pass_limit(target: Target, pass_: str) -> tuple[float, bool] | None:
    """(limit, strict) of ``target`` for one pass; None where the target says nothing about the pass."""
    if pass_ == "forward":
        return target.limit, target.strict
    if target.versus != TORCH or pass_ == "backward":
        return None
    if pass_ == "weight_grad" and target.weight_limit is not None:
        return target.weight_limit, False
    return round(GRADIENT_FACTOR * target.limit, 6), False


def meets(figure: float, limit: float, strict: bool) -> bool:
    """Whether ``figure`` is within ``limit`` (strictly below it when ``strict``)."""
    return figure < limit if strict else figure <= limit


# --------------------------------------------------------------------------- one layer


class _Case(NamedTuple):
    layer: Layer
    batch: int
    out_size: tuple[int, ...]
    weight_shape: tuple[int, ...]
    calls: dict[str, dict[str, Callable[[], object]]]  # pass -> implementation -> call


def _prepare(layer: Layer, batch: int, rng) -> _Case:
    import numpy as np
    import torch
    import torch.nn.functional as tF

    from .. import functional as F
    from ..shapes import conv_output_shape, conv_transpose_output_shape
    from ..spec import ConvSpec

    nd = layer.ndim
    kernel = (layer.kernel_size,) * nd
    c_in, c_out, g = layer.in_channels, layer.out_channels, layer.groups
    s, p, d = layer.stride, layer.padding, layer.dilation
    spec = ConvSpec(layer.kernel_size, s, p, d, g, transposed=layer.transposed, ndim=nd, name=layer.name)
    if layer.transposed:
        out_size = tuple(int(o) for o in conv_transpose_output_shape(spec, layer.size))
        weight_shape = (c_in, c_out // g) + kernel
    else:
        out_size = tuple(int(o) for o in conv_output_shape(spec, layer.size))
        weight_shape = (c_out, c_in // g) + kernel
    fan_in = c_in // g * math.prod(kernel)
    x = rng.standard_normal((batch, c_in) + layer.size, dtype=np.float32)
    w = (rng.standard_normal(weight_shape, dtype=np.float32) / np.float32(math.sqrt(fan_in)))
    gy = rng.standard_normal((batch, c_out) + out_size, dtype=np.float32)

    calls: dict[str, dict[str, Callable[[], object]]] = {pass_: {} for pass_ in PASSES}
    # convlab
    if layer.transposed:
        conv_t = getattr(F, f"conv_transpose{nd}d")
        calls["forward"]["convlab"] = lambda: conv_t(x, w, stride=s, padding=p, groups=g, dilation=d)
        calls["backward"]["convlab"] = lambda: F.conv_transpose_vjp(gy, x, w, stride=s, padding=p, groups=g,
                                                                    dilation=d)
        calls["input_grad"]["convlab"] = lambda: F.conv_transpose_vjp(gy, x, w, stride=s, padding=p, groups=g,
                                                                      dilation=d, wrt="input")
        calls["weight_grad"]["convlab"] = lambda: F.conv_transpose_vjp(gy, x, w, stride=s, padding=p, groups=g,
                                                                       dilation=d, wrt="weight")
    else:
        conv = getattr(F, f"conv{nd}d")
        calls["forward"]["convlab"] = lambda: conv(x, w, stride=s, padding=p, dilation=d, groups=g)
        calls["backward"]["convlab"] = lambda: F.conv_vjp(gy, x, w, stride=s, padding=p, dilation=d, groups=g)
        calls["input_grad"]["convlab"] = lambda: F.conv_input_grad(x.shape, w, gy, stride=s, padding=p, dilation=d,
                                                                   groups=g)
        calls["weight_grad"]["convlab"] = lambda: F.conv_weight_grad(x, w.shape, gy, stride=s, padding=p,
                                                                     dilation=d, groups=g)

    # torch, NCHW and channels-last
    layouts = {TORCH: torch.contiguous_format}
    if nd in (2, 3):
        layouts[TORCH_CHANNELS_LAST] = torch.channels_last if nd == 2 else torch.channels_last_3d
    forward = getattr(tF, f"conv_transpose{nd}d" if layer.transposed else f"conv{nd}d")
    backward = torch.ops.aten.convolution_backward
    for impl, layout in layouts.items():
        tx, tw, tgy = (torch.from_numpy(a).contiguous(memory_format=layout) for a in (x, w, gy))

        def torch_forward(tx=tx, tw=tw):
            with torch.no_grad():
                if layer.transposed:
                    return forward(tx, tw, stride=s, padding=p, groups=g, dilation=d)
                return forward(tx, tw, stride=s, padding=p, dilation=d, groups=g)

        def torch_backward(mask, tx=tx, tw=tw, tgy=tgy):
            def call():
                with torch.no_grad():
                    return backward(tgy, tx, tw, None, [s] * nd, [p] * nd, [d] * nd, layer.transposed,
                                    [0] * nd, g, mask)
            return call

        calls["forward"][impl] = torch_forward
        calls["backward"][impl] = torch_backward([True, True, False])
        calls["input_grad"][impl] = torch_backward([True, False, False])
        calls["weight_grad"][impl] = torch_backward([False, True, False])

    # SciPy, single channel: y = correlate(x, w) with zero 'same' padding (odd kernels: k // 2 each side)
    if layer.layer_class == "single-channel":
        import scipy.ndimage
        import scipy.signal

        flipped = np.ascontiguousarray(w[(...,) + (slice(None, None, -1),) * nd])
        axes = tuple(range(2, 2 + nd))
        calls["forward"]["scipy.signal.correlate"] = lambda: scipy.signal.correlate(x, w, mode="same")
        calls["forward"]["scipy.signal.fftconvolve"] = lambda: scipy.signal.fftconvolve(x, flipped, mode="same",
                                                                                        axes=axes)
        calls["forward"]["scipy.ndimage.correlate"] = lambda: scipy.ndimage.correlate(x, w, mode="constant")
    return _Case(layer, batch, out_size, weight_shape, calls)


def _results_of(pass_: str, result) -> tuple:
    """The arrays a call returned, as a tuple comparable across implementations."""
    if pass_ == "backward":
        return (result[0], result[1])
    if pass_ == "input_grad" and isinstance(result, tuple):
        return (result[0],)
    if pass_ == "weight_grad" and isinstance(result, tuple):
        return (result[1],)
    return (result,)


def _warm_up(calls: dict[str, dict[str, Callable[[], object]]]) -> tuple[dict, dict, dict, dict]:
    """Every call once: seconds, relative error against torch NCHW, convlab's algorithms, and failures.

    convlab's calls run inside :func:`convlab.ops.algorithms.trace`, which names the algorithms that ran.
    """
    from ..ops.algorithms import trace

    errors: dict[str, dict[str, float]] = {}
    algorithms: dict[str, str | None] = {}
    traced: dict[str, list] = {}
    seconds: dict[str, dict[str, float]] = {pass_: {} for pass_ in calls}
    failures: dict[str, dict[str, str]] = {}
    for pass_, impls in calls.items():
        start = time.perf_counter()
        reference = _results_of(pass_, impls[TORCH]())
        seconds[pass_][TORCH] = time.perf_counter() - start
        errors[pass_] = {}
        for impl, fn in impls.items():
            if impl == TORCH:
                continue
            start = time.perf_counter()
            try:
                if impl == "convlab":
                    with trace() as events:
                        result = fn()
                    algorithms[pass_] = measure.algorithms_ran(events)
                    traced[pass_] = list(events)
                else:
                    result = fn()
            except Exception as exc:  # an engine under development: report it, measure the rest
                failures.setdefault(pass_, {})[impl] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                continue
            seconds[pass_][impl] = time.perf_counter() - start
            ours = _results_of(pass_, result)
            errors[pass_][impl] = max(measure.relative_error(a, b) for a, b in zip(ours, reference, strict=True))
            del result, ours
        del reference
    _TRACED.clear()
    _TRACED.update(traced)
    return seconds, errors, algorithms, failures


#: The primitive calls convlab's warm-up made, per pass (read by :func:`_auto_against_fastest`).
_TRACED: dict[str, list] = {}


def _choices(event, machines: dict[str, object]) -> dict[str, str]:
    """What ``auto`` runs on the traced primitive call under each set of rates (label -> algorithm).

    The label ``'in use'`` is what the warm-up ran. A weight gradient the ops compute as im2col + GEMM
    directly runs ``gemm`` whatever the rates (only a measurement changes it: :mod:`~convlab.ops.algorithms.tune`).
    """
    from ..ops.algorithms import calibrate
    from ..ops.algorithms.plan import estimate_call
    from ..ops.algorithms.tune import _direct_weight_grad

    choices = {"in use": event.algorithm}
    for label, machine in machines.items():
        if _direct_weight_grad(event.call, event.role):
            choices[label] = event.algorithm
            continue
        with calibrate.using(machine):
            choices[label] = estimate_call(event.call).algorithm
    return choices


def _auto_against_fastest(traced: dict[str, list], repeat: int, machines: dict[str, object] | None = None,
                          tuned: bool = False) -> dict[str, dict[str, object]]:
    """Per pass: the seconds of what ``auto`` ran and of the fastest algorithm, per primitive call, and their ratio.

    Every algorithm ``auto`` could run on each primitive call of the pass is timed
    alike (:func:`convlab.ops.algorithms.tune.measure_call`: a warm-up, then the
    median of ``repeat`` interleaved runs, more rounds for near ties; each candidate as the ops run it;
    nothing is remembered). A pass of several calls (the backward) sums them: ``auto`` against the
    fastest choice per call. ``machines`` (label -> rates, e.g. ``{'measured': the calibration}``) adds
    the ratio of what ``auto`` would run with those rates (``ratios[label]``), read from the same timings;
    ``ratios['in use']`` is ``ratio``. ``tuned``: every call is measured a second time, independently,
    and ``ratios['tuned']`` is what tuning would choose from the first measurement
    (:func:`~convlab.ops.algorithms.tune.decide`, as :func:`~convlab.ops.algorithms.tune.tune_call` does:
    the fastest, unless the cost model's choice is within ``tune.MARGIN`` of it) against the fastest of
    the second. The judgement is fair in that the second measurement is independent of the first (a
    choice that won by noise pays for it), every candidate is timed by the same rule, and a near tie
    costs at most its own difference.
    """
    from ..ops.algorithms.plan import estimate_call
    from ..ops.algorithms.tune import _direct_weight_grad, decide, measure_call

    machines = machines or {}
    out: dict[str, dict[str, object]] = {}
    measured: dict[tuple, dict[str, float]] = {}
    again: dict[tuple, dict[str, float]] = {}
    for pass_, events in traced.items():
        labels = ("in use", *machines) + (("tuned",) if tuned else ())
        tuned_total = tuned_fastest = 0.0
        totals = dict.fromkeys(labels, 0.0)
        fastest = 0.0
        calls = []
        for event in events:
            key = (event.call, event.role)
            if key not in measured:
                measured[key] = measure_call(event.call, event.role, repeat=min(repeat, 3), budget=5.0,
                                             first=event.algorithm)[0]
            seconds = measured[key]
            if not seconds or event.algorithm not in seconds:
                continue
            choices = _choices(event, machines)
            best = min(seconds, key=seconds.__getitem__)
            for label in labels:
                if label == "tuned":
                    continue
                # a choice tuning did not time (estimated far slower, or over the budget) counts as the in-use one
                totals[label] += seconds.get(choices[label], seconds[event.algorithm])
            fastest += seconds[best]
            if tuned:
                if key not in again:
                    again[key] = measure_call(event.call, event.role, repeat=min(repeat, 3), budget=5.0,
                                              first=event.algorithm)[0]
                second = again[key] or seconds
                model = event.algorithm if _direct_weight_grad(event.call, event.role) else \
                    estimate_call(event.call).algorithm
                choices["tuned"] = decide(seconds, model)
                best_tuned = choices["tuned"]
                tuned_total += second.get(best_tuned, min(second.values()))
                tuned_fastest += min(second.values())
            calls.append({"role": event.role, "auto": event.algorithm, "fastest": best,
                          "auto_with": {label: choices[label] for label in labels if label != "in use"},
                          "ms": {name: 1e3 * v for name, v in seconds.items()}})
        ratios = {label: totals[label] / fastest if fastest > 0 else None for label in labels if label != "tuned"}
        if tuned:
            ratios["tuned"] = tuned_total / tuned_fastest if tuned_fastest > 0 else None
        out[pass_] = {"ratio": ratios["in use"], "ratios": ratios, "calls": calls}
    return out


def _interleaved(calls: dict[str, dict[str, Callable[[], object]]], warm_up: dict[str, dict[str, float]],
                 repeat: int) -> dict[str, dict[str, list[float]]]:
    """Timed rounds: round-robin, the first implementation rotated per round; slow calls get fewer rounds."""
    samples: dict[str, dict[str, list[float]]] = {pass_: {impl: [] for impl in impls} for pass_, impls in calls.items()}
    quota = {pass_: {impl: repeat if seconds < SLOW_SECONDS else min(repeat, SLOW_REPEAT)
                     for impl, seconds in warm_up[pass_].items()} for pass_ in calls}
    gc.collect()
    for round_ in range(repeat):
        for pass_, impls in calls.items():
            order = list(impls)
            shift = round_ % len(order)
            for impl in order[shift:] + order[:shift]:
                if round_ < quota[pass_][impl]:
                    samples[pass_][impl].append(measure.timed(impls[impl]))
    return samples


def _pass_entry(flops: int, samples: dict[str, list[float]], peaks: dict[str, int | None]) -> dict[str, object]:
    """One pass of one layer: medians, GFLOP/s, peak memory and the ratios against torch and SciPy."""
    times = {impl: 1e3 * statistics.median(values) for impl, values in samples.items()}
    entry: dict[str, object] = {
        "flops": flops,
        "ms": times,
        "min_ms": {impl: 1e3 * min(values) for impl, values in samples.items()},
        "timed_calls": {impl: len(values) for impl, values in samples.items()},
        "gflops": {impl: flops / ms / 1e6 for impl, ms in times.items()},
        "peak_memory_mib": {impl: None if b is None else b / 2**20 for impl, b in peaks.items()},
        "ratio": None, "ratio_channels_last": None, "memory_ratio": None,
    }
    if "convlab" in times:
        entry["ratio"] = times["convlab"] / times[TORCH]
        if TORCH_CHANNELS_LAST in times:
            entry["ratio_channels_last"] = times["convlab"] / times[TORCH_CHANNELS_LAST]
        ours_peak, torch_peak = peaks.get("convlab"), peaks.get(TORCH)
        if ours_peak is not None and torch_peak:
            entry["memory_ratio"] = ours_peak / torch_peak
        scipy_times = {impl: ms for impl, ms in times.items() if impl.startswith("scipy.")}
        if scipy_times:
            fastest = min(scipy_times, key=scipy_times.__getitem__)
            entry["fastest_scipy"] = fastest
            entry["ratio_fastest_scipy"] = times["convlab"] / scipy_times[fastest]
    return entry


def _run_layer(case: _Case, repeat: int, memory: measure.PeakMemory,
               machines: dict[str, object] | None = None, tuned: bool = False) -> dict[str, object]:
    layer, calls = case.layer, case.calls
    warm_up, errors, algorithms, failures = _warm_up(calls)
    for pass_, failed in failures.items():
        for impl in failed:
            del calls[pass_][impl]
    peaks = {pass_: {impl: memory.extra_peak(fn, numpy_side=not impl.startswith("torch"))
                     for impl, fn in impls.items()}
             for pass_, impls in calls.items()}
    samples = _interleaved(calls, warm_up, repeat)
    against_fastest = _auto_against_fastest(dict(_TRACED), repeat, machines, tuned)
    forward_flops = measure.conv_flops(layer, case.batch, case.out_size)
    passes = {pass_: _pass_entry(measure.pass_flops(forward_flops, pass_), samples[pass_], peaks[pass_])
              for pass_ in calls}
    for pass_, entry in passes.items():
        found = against_fastest.get(pass_, {})
        entry["ratio_auto_fastest"] = found.get("ratio")
        entry["ratios_auto_fastest"] = found.get("ratios", {})
        entry["auto_fastest_calls"] = found.get("calls", [])
    return {
        "name": layer.name,
        "class": layer.layer_class,
        "transposed": layer.transposed,
        "input_shape": [case.batch, layer.in_channels, *layer.size],
        "weight_shape": list(case.weight_shape),
        "output_shape": [case.batch, layer.out_channels, *case.out_size],
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "groups": layer.groups,
        "flops": forward_flops,
        "algorithms": algorithms,
        "max_relative_error": errors,
        "failures": failures,
        "passes": passes,
        "targets": layer_targets(layer, passes),
    }


def layer_targets(layer: Layer, passes: dict) -> list[dict[str, object]]:
    """The target checks of one layer: every target that covers it, per pass, and peak memory against torch."""
    checks = []
    for target in TARGETS:
        if not target.applies(layer):
            continue
        for pass_ in PASSES:
            bound = pass_limit(target, pass_)
            entry = passes[pass_]
            figure = entry.get("ratio_fastest_scipy") if target.versus == "scipy" else entry["ratio"]
            if bound is None or figure is None:
                continue
            limit, strict = bound
            checks.append({"target": target.name, "pass": pass_, "limit": limit, "strict": strict,
                           "figure": figure, "met": meets(figure, limit, strict)})
    for pass_ in PASSES:
        figure = passes[pass_]["memory_ratio"]
        if figure is not None:
            checks.append({"target": "peak memory vs torch", "pass": pass_, "limit": MEMORY_LIMIT, "strict": False,
                           "figure": figure, "met": meets(figure, MEMORY_LIMIT, False)})
    return checks


# --------------------------------------------------------------------------- the run


def _geomean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summaries(layers: list[dict]) -> tuple[dict, list]:
    """Per layer class the geometric means of the ratios; per target and pass the worst layer."""
    classes: dict[str, object] = {}
    for name in CLASSES:
        members = [entry for entry in layers if entry["class"] == name]
        if not members:
            continue
        classes[name] = {
            "layers": [entry["name"] for entry in members],
            "geomean_ratio": {pass_: _geomean([e["passes"][pass_]["ratio"] for e in members]) for pass_ in PASSES},
            "geomean_ratio_channels_last": {
                pass_: _geomean([e["passes"][pass_]["ratio_channels_last"] for e in members]) for pass_ in PASSES},
        }
    targets = []
    for target_name in [t.name for t in TARGETS] + ["peak memory vs torch"]:
        for pass_ in PASSES:
            checks = [(entry["name"], check) for entry in layers for check in entry["targets"]
                      if check["target"] == target_name and check["pass"] == pass_]
            if not checks:
                continue
            worst_layer, worst = max(checks, key=lambda item: item[1]["figure"])
            targets.append({
                "target": target_name, "pass": pass_, "limit": worst["limit"], "strict": worst["strict"],
                "figure": worst["figure"], "worst_layer": worst_layer,
                "layers": [name for name, _ in checks],
                "not_met": [name for name, check in checks if not check["met"]],
                "met": all(check["met"] for _, check in checks),
            })
    return classes, targets


def auto_summary(layers: list[dict]) -> dict[str, dict[str, object]]:
    """Per set of rates (``'in use'``, ``'measured'``): the worst auto/fastest over every layer and pass, where,
    the geometric mean, and how many passes are within 1.1 and 1.3 (the targets after tuning and of the model)."""
    out: dict[str, dict[str, object]] = {}
    figures: dict[str, list[tuple[float, str]]] = {}
    for entry in layers:
        for pass_, r in entry["passes"].items():
            for label, ratio in (r.get("ratios_auto_fastest") or {}).items():
                if ratio is not None:
                    figures.setdefault(label, []).append((ratio, f"{entry['name']} {pass_}"))
    for label, values in figures.items():
        worst, where = max(values)
        out[label] = {"worst": worst, "worst_at": where, "geomean": _geomean([v for v, _ in values]),
                      "passes": len(values), "within_1_1": sum(v <= 1.1 for v, _ in values),
                      "within_1_3": sum(v <= 1.3 for v, _ in values)}
    return out


def _cost_model(calibration) -> dict[str, object]:
    """The rates the cost model uses (the constants unless calibration was asked for) and the rates measured here."""
    from ..ops.algorithms import calibrate

    rates = calibrate.describe()
    rates["measured"] = {**calibration.machine._asdict(), "calibration_seconds": round(calibration.seconds, 4),
                         "rejected": dict(calibration.rejected)}
    return rates


def run(layers: Sequence[Layer], batch: int, repeat: int, threads: int,
        progress: Callable[[str], None] | None = None, tuned: bool = False) -> dict[str, object]:
    """Time every layer (see the module docstring); return the results as a dict (the JSON).

    ``tuned``: also auto/fastest after tuning (every primitive call measured twice: :func:`_auto_against_fastest`).

    ``progress``, when given, is called after each layer with its name and the seconds so far.
    """
    import numpy as np
    import scipy
    import torch

    torch.set_num_threads(threads)
    memory = measure.PeakMemory()
    load_before = measure.load_average()
    rng = np.random.default_rng(0)
    results = []
    started, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M")
    whole_run = measure.OtherCpu()
    from ..ops.algorithms import calibrate

    # the rates measured here: auto/fastest is reported for the rates in use and for these
    calibration = calibrate.measure()
    machines = {"measured": calibration.machine}
    for layer in layers:
        layer_batch = batch if layer.batch is None else min(layer.batch, batch)
        this_layer = measure.OtherCpu()
        case = _prepare(layer, layer_batch, rng)
        results.append(_run_layer(case, repeat, memory, machines, tuned))
        results[-1]["other_processes_cpu_share"] = this_layer.share()
        del case
        if progress is not None:
            progress(f"{layer.name} ({time.perf_counter() - started:.0f} s)")
    classes, targets = summaries(results)
    return {
        "date": date,  # when the run started
        "machine": measure.machine(),
        "load_average": {"before": load_before, "after": measure.load_average()},
        "other_processes_cpu_share": whole_run.share(),
        "threads": threads,
        "batch": batch,
        "repeat": repeat,
        "dtype": "float32",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "kernels": measure.kernels(),
        "cost_model": _cost_model(calibration),
        "memory_method": memory.method,
        "seconds": round(time.perf_counter() - started, 1),
        "layers": results,
        "classes": classes,
        "targets": targets,
        "auto_fastest": auto_summary(results),
    }
