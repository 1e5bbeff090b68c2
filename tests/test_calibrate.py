"""The cost model's rates measured on this machine (convlab.ops.algorithms.calibrate), the constants as fallback."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from convlab.ops.algorithms import Call, calibrate
from convlab.ops.algorithms.plan import estimate, estimate_call

costs = importlib.import_module("convlab.ops.algorithms._costs")

#: The rates of work that runs on several threads (measured at the thread count in effect).
_THREADED = ("gemm_flops", "fft_flops", "kernel_macs")

ONE_BY_ONE = Call((8, 256, 28, 28), (256, 256, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1,
                  np.dtype(np.float32))


def test_the_measured_rates_are_positive_and_finite():
    result = calibrate.measure(repeat=1)
    assert set(result.machine._fields) == set(costs.CONSTANTS._fields)
    for name, value in result.machine._asdict().items():
        assert math.isfinite(value) and value > 0, name
    assert result.seconds > 0
    for name in result.rejected:  # a busy machine may keep a constant; it says which and why
        scale = result.machine.threads / costs.CONSTANTS.threads if name in _THREADED else 1
        assert getattr(result.machine, name) == getattr(costs.CONSTANTS, name) * scale


def test_the_rates_in_use_are_calibrated_at_first_use():
    with calibrate.using(None):
        assert calibrate.source() == "calibrated"
        described = calibrate.describe()
        assert described["source"] == "calibrated" and described["calibration_seconds"] > 0
        assert costs.MACHINE.stream_bytes == calibrate.rates().stream_bytes


def test_the_estimates_use_the_rates_in_use():
    slow = costs.CONSTANTS._replace(gemm_flops=10e9, stream_bytes=5e9, cache_bytes=20e9, call_seconds=4e-6)
    fast = costs.CONSTANTS._replace(gemm_flops=40e9, stream_bytes=20e9, cache_bytes=80e9, call_seconds=1e-6)
    with calibrate.using(slow):
        assert calibrate.source() == "given"
        at_slow = estimate("gemm", ONE_BY_ONE).seconds
        planned_slow = estimate_call(ONE_BY_ONE).estimates["gemm"]
    with calibrate.using(fast):
        at_fast = estimate("gemm", ONE_BY_ONE).seconds
        planned_fast = estimate_call(ONE_BY_ONE).estimates["gemm"]  # the planner's cache follows the rates
    fixed = importlib.import_module("convlab.ops.algorithms._registry").RECORDS["gemm"]
    variable_slow, variable_fast = at_slow - fixed.fixed_seconds, at_fast - fixed.fixed_seconds
    assert variable_slow == pytest.approx(4 * variable_fast, rel=1e-9)  # every term scales with the rates
    assert (planned_slow, planned_fast) == (at_slow, at_fast)


def test_the_constants_are_the_documented_fallback(monkeypatch):
    with calibrate.using(calibrate.CONSTANTS):
        assert calibrate.source() == "constants" and calibrate.rates() is costs.CONSTANTS
    monkeypatch.setattr(calibrate, "measure", lambda: (_ for _ in ()).throw(OSError("no clock")))
    with pytest.warns(RuntimeWarning, match="calibrating the cost model failed"), calibrate.using(None):
        assert calibrate.rates() is costs.CONSTANTS
        assert calibrate.source() == "constants"


def test_a_failed_or_implausible_measurement_keeps_that_constant(monkeypatch):
    monkeypatch.setattr(calibrate, "_gemm_flops", lambda repeat: 1 / 0)
    monkeypatch.setattr(calibrate, "_stream_bytes", lambda repeat: costs.CONSTANTS.stream_bytes * 1e3)
    monkeypatch.setattr(calibrate, "_fft_flops", lambda repeat: float("nan"))
    result = calibrate.measure(repeat=1)
    assert {"gemm_flops", "stream_bytes", "fft_flops"} <= set(result.rejected)  # a busy machine may add one
    assert "ZeroDivisionError" in result.rejected["gemm_flops"]
    assert "away from the constant" in result.rejected["stream_bytes"]
    assert result.machine.threads == costs.blas_threads()
    for name in result.rejected:  # the constants describe two threads: a kept one is at the BLAS threads now
        scale = result.machine.threads / costs.CONSTANTS.threads if name in _THREADED else 1
        assert getattr(result.machine, name) == getattr(costs.CONSTANTS, name) * scale
    with pytest.warns(RuntimeWarning, match="kept the constants of gemm_flops"), calibrate.using(None):
        calibrate.rates()


def test_using_restores_the_previous_rates():
    given = costs.CONSTANTS._replace(gemm_flops=1e9)
    before = calibrate.rates()
    with calibrate.using(given):
        assert calibrate.rates() is given
    assert calibrate.rates() is before


@pytest.mark.parametrize(("value", "error", "match"), [
    ("fast", TypeError, r"calibrate\.set_rates: `machine` must be a Machine or None, got str"),
    (costs.CONSTANTS._replace(gemm_flops=-1.0), ValueError, r"gemm_flops=-1\.0"),
    (costs.CONSTANTS._replace(call_seconds=float("inf")), ValueError, r"call_seconds=inf"),
])
def test_bad_rates_are_refused(value, error, match):
    with pytest.raises(error, match=match):
        calibrate.set_rates(value)


@pytest.mark.parametrize("repeat", [0, 1.5, True, 10**6])
def test_bad_repeat_is_refused(repeat):
    with pytest.raises(ValueError, match=r"calibrate\.measure: `repeat`"):
        calibrate.measure(repeat=repeat)


def test_describe_gives_the_gemm_rate_the_estimates_use():
    import numpy as np

    from convlab.ops.algorithms._costs import gemm_rate

    with calibrate.using(calibrate.CONSTANTS):
        d = calibrate.describe()
        assert d["source"] == "constants" and d["gemm_flops"] == calibrate.CONSTANTS.gemm_flops
        assert d["gemm_flops_effective"] == gemm_rate(np.dtype(np.float32))  # scaled by the BLAS kernels
    given = calibrate.CONSTANTS._replace(gemm_flops=1e11)
    with calibrate.using(given):
        d = calibrate.describe()
        # no scaling by the BLAS kernels; by the BLAS threads against the two the rates describe
        assert d["source"] == "given" and d["gemm_flops"] == 1e11
        assert d["gemm_flops_effective"] == pytest.approx(1e11 * costs.blas_threads() / 2, rel=1e-12)
