"""Measured planning (convlab.ops.algorithms.tune): the fastest measured wins, results stay the reference's,
plan() says measured, the cache file is keyed by machine and written atomically, model.tune covers every call.

Timings are injected (a fake clock per candidate), so the tests do not depend on the machine.
"""

from __future__ import annotations

import importlib
import json
import os

import numpy as np
import pytest

import convlab.functional as F
from convlab.nn import Conv2d, ReLU, Sequential
from convlab.ops.algorithms import Call, plan, reference, trace
from convlab.ops.algorithms.plan import estimate_call, plan_call

tune = importlib.import_module("convlab.ops.algorithms.tune")

CALL = Call((2, 8, 12, 12), (8, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1, np.dtype(np.float64))
ARGS = dict(padding=1)


@pytest.fixture(autouse=True)
def _empty_table(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where the cache file would go
    tune.clear()
    yield
    tune.clear()


def fake_clock(seconds: dict[str, float], ran: list[str] | None = None):
    """A measure hook: candidate ``name`` takes ``seconds[name]`` (it still runs, so its numbers are real)."""
    def measure(name, run):
        run()
        if ran is not None:
            ran.append(name)
        return seconds.get(name, 0.01)
    return measure


def candidates(call: Call) -> list[str]:
    est = estimate_call(call).estimates
    best = min(est.values())
    return sorted((name for name, s in est.items() if s <= tune.SKIP_RATIO * best), key=est.__getitem__)


def test_the_fastest_measured_candidate_wins_and_plan_says_measured():
    names = candidates(CALL)
    assert len(names) >= 3, names
    before = plan_call(CALL)
    assert before.source == "estimated"
    slowest_estimate = max(names, key=before.estimates.__getitem__)
    seconds = {name: 1.0 + i for i, name in enumerate(names)}
    seconds[slowest_estimate] = 0.5  # the cost model's last choice is the fastest measured
    ran: list[str] = []
    found = tune.tune_call(CALL, measure=fake_clock(seconds, ran), repeat=2, budget=3600.0)
    assert found.algorithm == slowest_estimate
    assert set(found.seconds) == set(names) and found.seconds[slowest_estimate] == 0.5
    assert set(ran) == set(names)
    after = plan_call(CALL)
    assert (after.algorithm, after.source) == (slowest_estimate, "measured")
    assert after.reason.startswith("measured 500 ms on this machine (forward)")
    p = plan((2, 8, 12, 12), (8, 8, 3, 3), padding=1, dtype=np.float64)
    assert (p.algorithm, p.source) == (slowest_estimate, "measured")
    # a tuned signature is not measured again unless forced
    assert tune.tune_call(CALL, measure=fake_clock({})) is found
    assert tune.tune_call(CALL, measure=fake_clock({}), force=True).algorithm == min(names, key=names.index)


def test_a_slow_warm_up_is_not_repeated_and_far_estimates_are_not_timed():
    call = Call((1, 4, 40, 40), (4, 4, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, np.dtype(np.float32))
    est = estimate_call(call).estimates
    first = min(est, key=est.__getitem__)
    ran: list[str] = []
    seconds = {name: (0.001 if name == first else 1.0) for name in est}
    found = tune.tune_call(call, measure=fake_clock(seconds, ran), repeat=3, budget=3600.0)
    assert found.algorithm == first
    assert ran.count(first) == 4  # warm-up, a timed run and two rounds
    # warm-up and one timed run over 3x the best: not run again
    assert all(ran.count(name) == 2 for name in found.seconds if name != first)
    far = {name for name, s in est.items() if s > tune.SKIP_RATIO * est[first]}
    assert far == {name for name, why in found.skipped.items() if "estimate" in why}
    assert not far & set(ran)


def sequence_clock(times: dict[str, list[float]], ran: list[str]):
    """A measure hook: the k-th run of candidate ``name`` takes ``times[name][k]`` (the last value after that)."""
    def measure(name, run):
        run()
        k = sum(1 for other in ran if other == name)
        ran.append(name)
        series = times.get(name, [0.01])
        return series[min(k, len(series) - 1)]
    return measure


def test_a_slow_first_call_is_a_warm_up_and_a_disturbed_run_does_not_count():
    names = candidates(CALL)[:3]
    a, b, c = names
    assert len(names) == 3
    # a compiles on its first call (10 s), then runs 2 ms; b is 3 ms then disturbed by a load burst in
    # one round (9 ms); c is 5 ms throughout
    times = {a: [10.0, 0.002], b: [0.003, 0.003, 0.009, 0.003], c: [0.005]}
    ran: list[str] = []
    others = {n: [1.0] for n in candidates(CALL) if n not in names}
    found = tune.tune_call(CALL, measure=sequence_clock({**times, **others}, ran), repeat=4, budget=3600.0)
    assert found.algorithm == a  # its compile was the warm-up, not a sample
    assert found.seconds[a] == 0.002 and found.seconds[b] == 0.003  # the median: the burst left out
    # warm-up and a timed run each in the estimates' order, then interleaved rounds with a rotated start
    timed = [n for n in ran if n in names]
    assert timed[:6] == [a, a, b, b, c, c]
    rounds = [timed[6:9], timed[9:12], timed[12:15]]
    assert all(sorted(r) == sorted(names) for r in rounds)
    assert len({r[0] for r in rounds}) == 3  # each round starts with another candidate
    assert len(timed) == 15


def test_a_candidate_fast_only_sometimes_loses_to_a_steady_one():
    """The median of the runs, what repeated calls take: a candidate fast on one run in three (page faults of
    fresh temporaries on the others) is slower than a steady one, though its fastest run is faster."""
    a, b = candidates(CALL)[:2]
    times = {a: [0.001, 0.001, 0.008, 0.008, 0.001, 0.008], b: [0.004]}
    ran: list[str] = []
    others = {n: [1.0] for n in candidates(CALL) if n not in (a, b)}
    found = tune.tune_call(CALL, measure=sequence_clock({**times, **others}, ran), repeat=3, budget=3600.0)
    assert found.algorithm == b
    assert found.seconds == {a: 0.008, b: 0.004, **{n: 1.0 for n in others}}


def test_near_ties_get_more_rounds_and_a_clear_winner_does_not():
    a, b = candidates(CALL)[:2]
    others = {n: [1.0] for n in candidates(CALL) if n not in (a, b)}
    ran: list[str] = []
    tune.tune_call(CALL, measure=sequence_clock({a: [0.0100], b: [0.0104], **others}, ran), repeat=3,
                   budget=3600.0)
    # warm-up, a timed run and two rounds each, then TIE_ROUNDS more rounds of the two close ones
    assert ran.count(a) == ran.count(b) == 4 + tune.TIE_ROUNDS
    assert all(ran.count(n) == 2 for n in others)  # over 3x the best: warm-up and one timed run only
    ran.clear()
    tune.tune_call(CALL, measure=sequence_clock({a: [0.0100], b: [0.0200], **others}, ran), repeat=3,
                   budget=3600.0, force=True)
    assert ran.count(a) == ran.count(b) == 4


def test_a_tie_keeps_the_cost_models_choice():
    """The measured fastest replaces the model's choice only when faster by more than MARGIN."""
    model = estimate_call(CALL).algorithm
    other = next(n for n in candidates(CALL) if n != model)
    others = {n: 1.0 for n in candidates(CALL) if n not in (model, other)}
    close = {model: 0.0100, other: 0.0100 * (1 - tune.MARGIN / 2), **others}
    assert tune.tune_call(CALL, measure=fake_clock(close), force=True).algorithm == model
    clear = {model: 0.0100, other: 0.0100 * (1 - 2 * tune.MARGIN), **others}
    assert tune.tune_call(CALL, measure=fake_clock(clear), force=True).algorithm == other
    assert tune.decide({"gemm": 2.0, "fft": 1.0}, "col2im") == "fft"  # the preferred one was not timed
    with pytest.raises(ValueError, match=r"tune\.decide: `seconds` is empty"):
        tune.decide({}, "gemm")


@pytest.mark.parametrize("stride", [1, 2])
def test_a_depthwise_layers_weight_gradient_is_timed_as_the_ops_compute_it(stride, rng, monkeypatch):
    """The ops compute a depthwise layer's weight gradient without the correlation's copies: `depthwise` reads
    the arrays in place, `fft` a block of channels at a time. Tuning times those (the numbers: the layer's)."""
    from convlab.ops import _conv_common

    x = rng.standard_normal((3, 4, 11, 11))
    w_shape = (8, 1, 3, 3)  # channel multiplier 2
    gy_shape = (3, 8) + ((9, 9) if stride == 1 else (5, 5))
    with trace() as events:
        F.conv_weight_grad(x, w_shape, rng.standard_normal(gy_shape), stride=stride, groups=4)
    (event,) = [e for e in events if e.role == "weight_grad"]
    assert tune._depthwise_weight_grad(event.call, "weight_grad")
    assert not tune._depthwise_weight_grad(CALL, "weight_grad") and not tune._depthwise_weight_grad(event.call,
                                                                                                   "forward")
    made = []
    array = tune._array

    def recording(shape, dtype, generator):
        made.append(array(shape, dtype, generator))
        return made[-1]

    monkeypatch.setattr(tune, "_array", recording)
    runners = tune._runners(event.call, "weight_grad", ["fft", "depthwise", "gemm"], None, None)
    results = {name: run() for name, run in runners.items()}
    # the layer's weight gradient (C_out, 1, *K') of the runners' own arrays (the padded input, the output
    # gradient), by the reference
    kernel = event.call.out_size
    layer_x, layer_gy = made[2], made[3]
    assert layer_x.shape == (3, 4) + event.call.size and layer_gy.shape == (3, 8) + event.call.kernel
    expected = F.conv_weight_grad(layer_x, (8, 1) + kernel, layer_gy, stride=stride, groups=4,
                                  algorithm="reference")
    for name in ("fft", "depthwise"):
        np.testing.assert_allclose(results[name], expected, rtol=1e-9, atol=1e-9, err_msg=name)
    assert results["gemm"].shape == event.call.out_shape  # the correlation itself, as the primitive runs it
    assert _conv_common.DEPTHWISE_WEIGHT_GRAD == ("depthwise", "depthwise_numpy")


def test_the_budget_stops_the_rounds():
    names = candidates(CALL)
    ran: list[str] = []
    found = tune.tune_call(CALL, measure=sequence_clock({n: [0.4] for n in names}, ran), repeat=50, budget=2.0)
    # 2 s spent after the first three candidates' warm-up and timed run: the rest are not started
    assert len(ran) == 6 and set(found.seconds) == set(names[:3])
    assert all(why == "the signature's time budget was spent" for name, why in found.skipped.items()
               if name in names[3:])


@pytest.mark.parametrize("winner", ["gemm", "winograd_f4", "winograd_f2", "fft", "col2im"])
def test_results_equal_the_reference_whichever_algorithm_wins(winner, rng):
    x = rng.standard_normal((2, 8, 12, 12))
    w = rng.standard_normal((8, 8, 3, 3))
    if winner not in candidates(CALL):
        pytest.skip(f"{winner} is estimated over {tune.SKIP_RATIO}x the best here")
    found = tune.tune_call(CALL, measure=fake_clock({winner: 1e-6}))
    assert found.algorithm == winner
    with trace() as events:
        got = F.conv2d(x, w, **ARGS)
    assert [e.algorithm for e in events] == [winner]
    expected = reference.conv_general(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_a_measured_weight_gradient_replaces_the_direct_gemm(rng):
    x, w = rng.standard_normal((2, 8, 10, 10)), rng.standard_normal((8, 8, 3, 3))
    gy = rng.standard_normal((2, 8, 10, 10))
    with trace() as events:
        F.conv_weight_grad(x, w.shape, gy, padding=1)
    (event,) = events
    assert (event.role, event.algorithm) == ("weight_grad", "gemm")  # the direct im2col + GEMM
    found = tune.tune_call(event.call, "weight_grad", measure=fake_clock({"fft": 1e-6}))
    assert found.algorithm == "fft"
    with trace() as events:
        got = F.conv_weight_grad(x, w.shape, gy, padding=1)
    assert [(e.role, e.algorithm) for e in events] == [("weight_grad", "fft")]
    expected = F.conv_weight_grad(x, w.shape, gy, padding=1, algorithm="reference")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_algorithm_tune_measures_a_new_signature_once(rng, monkeypatch):
    x, w = rng.standard_normal((1, 4, 9, 9)), rng.standard_normal((4, 4, 3, 3))
    calls = []
    original = tune.tune_call
    monkeypatch.setattr(tune, "tune_call", lambda *a, **k: calls.append(a[0]) or original(*a, **dict(k, repeat=1)))
    dispatch = importlib.import_module("convlab.ops.algorithms.dispatch")
    monkeypatch.setattr(dispatch, "tune_call", tune.tune_call)
    y1 = F.conv2d(x, w, padding=1, algorithm="tune")
    y2 = F.conv2d(x, w, padding=1, algorithm="tune")
    assert len(calls) == 1 and tune.lookup(calls[0], "forward") is not None
    np.testing.assert_allclose(y1, F.conv2d(x, w, padding=1, algorithm="reference"), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(y1, y2)


def test_model_tune_covers_every_conv_layers_forward_and_gradients():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(3, 8, 3, padding=1, rng=rng), ReLU(), Conv2d(8, 8, 3, stride=2, padding=1, rng=rng),
                       ReLU(), Conv2d(8, 8, 3, padding=1, groups=8, rng=rng))
    found = model.tune((2, 3, 16, 16), repeat=1)
    assert all(p.grad is None for p in model.parameters())  # the pass left no gradients behind
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    with trace() as events:
        y = model(x)
        model.backward(np.ones_like(y))
    roles = [e.role for e in events]
    assert len(events) == len(found) == 9
    assert roles.count("forward") == roles.count("input_grad") == roles.count("weight_grad") == 3
    assert [(f.call, f.role) for f in found] == [(e.call, e.role) for e in events]
    for event in events:
        tuned = tune.lookup(event.call, event.role)
        assert tuned is not None, event
        assert event.algorithm == tuned.algorithm, event
        assert plan_call(event.call, role=event.role).source == "measured"


def test_the_cache_file_round_trips_on_this_machine_only():
    tune.tune_call(CALL, measure=fake_clock({"gemm": 1e-6}))
    path = tune.save()
    assert path == tune.cache_path() and os.path.basename(path) == f"tuning-{tune.machine_key()}.json"
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temporary file left
    data = json.loads(open(path).read())
    assert data["machine"] == tune.machine() and data["entries"][0]["algorithm"] == "gemm"
    tune.clear()
    assert plan_call(CALL).source == "estimated"
    assert tune.load() == 1
    assert (plan_call(CALL).algorithm, plan_call(CALL).source) == ("gemm", "measured")
    # a file for another CPU (at this machine's path) is never read
    tune.clear()
    data["machine"] = dict(data["machine"], cpu="Another CPU")
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.warns(RuntimeWarning, match="another machine"):
        assert tune.load() == 0
    assert plan_call(CALL).source == "estimated"


def test_the_key_names_the_cpu_and_a_different_machine_gets_another_file(monkeypatch):
    here = tune.cache_path()
    machine = tune.machine()
    assert {"cpu", "flags", "blas_core", "versions"} <= set(machine)
    assert set(machine["versions"]) >= {"numpy", "scipy", "numba", "convlab"}
    monkeypatch.setattr(tune, "machine", lambda: dict(machine, cpu="Another CPU"))
    assert tune.cache_path() != here


def test_a_corrupt_file_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "tuning.json"
    path.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert tune.load(path) == 0
    path.write_text(json.dumps({"format": tune.FORMAT, "machine": tune.machine(),
                                "entries": [{"x_shape": [1], "algorithm": "gemm"}]}))
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert tune.load(path) == 0
    assert tune.entries() == []


def test_an_explicit_file_is_not_overwritten_unless_asked(tmp_path):
    tune.tune_call(CALL, measure=fake_clock({"gemm": 1e-6}))
    path = tmp_path / "mine.json"
    path.write_text("keep")
    with pytest.raises(FileExistsError):
        tune.save(path)
    assert path.read_text() == "keep"
    tune.save(path, overwrite=True)
    tune.clear()
    assert tune.load(path) == 1
    with pytest.raises(FileNotFoundError, match=r"tune\.load: `path`"):
        tune.load(tmp_path / "missing.json")


def test_tune_with_cache_saves_and_reads_back(monkeypatch):
    found = tune.tune((1, 4, 8, 8), (4, 4, 3, 3), padding=1, repeat=1, cache=True)
    tune.clear()
    monkeypatch.setattr(tune, "tune_call", lambda *a, **k: pytest.fail("measured again"))
    again = tune.tune((1, 4, 8, 8), (4, 4, 3, 3), padding=1, repeat=1, cache=True)
    # tune_call is replaced: the answer came from the file, through the table
    assert (again.algorithm, again.seconds) == (found.algorithm, found.seconds)
    assert plan((1, 4, 8, 8), (4, 4, 3, 3), padding=1).source == "measured"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(role="backward"), ValueError, r"tune: `role` \(='backward'\) must be one of"),
    (dict(repeat=0), ValueError, r"tune: `repeat` \(=0\) must be an integer from 1"),
    (dict(budget=-1.0), ValueError, r"tune: `budget` \(=-1.0\) must be a number from 0"),
    (dict(cache="yes"), TypeError, r"tune: `cache` must be True or False"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        tune.tune((1, 4, 8, 8), (4, 4, 3, 3), **kwargs)


def test_a_first_candidate_is_timed_before_the_budget_runs_out():
    names = candidates(CALL)
    last = names[-1]
    ran: list[str] = []
    seconds, skipped = tune.measure_call(CALL, measure=sequence_clock({n: [0.4] for n in names}, ran), repeat=1,
                                         budget=0.5, first=last)
    assert ran[:2] == [last, last] and last in seconds  # warm-up and timed run, before the estimated-best
    assert last not in skipped
