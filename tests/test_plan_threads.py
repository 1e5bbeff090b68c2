"""The cost model at the thread count in effect, and estimates the bench found wrong (convlab.ops.algorithms).

Decisions are tested on shapes where the answer is not a close call; no test times anything: the thread
counts and the rates are set (monkeypatched), so the tests do not depend on the machine or its load.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from convlab.ops.algorithms import Call, calibrate
from convlab.ops.algorithms.plan import estimate, estimate_call

costs = importlib.import_module("convlab.ops.algorithms._costs")
direct = importlib.import_module("convlab.ops.algorithms.direct")
F32 = np.dtype(np.float32)


def conv(x, w, padding=0, groups=1, stride=1, input_dilation=1, dilation=1) -> Call:
    nd = len(x) - 2
    return Call(tuple(x), tuple(w), (stride,) * nd, ((padding, padding),) * nd, (dilation,) * nd,
                (input_dilation,) * nd, groups, F32)


RESNET_LAYER4 = conv((8, 512, 7, 7), (512, 512, 3, 3), padding=1)


@pytest.fixture
def threads(monkeypatch):
    """Set the BLAS, FFT and compiled-kernel thread counts the cost model sees: ``threads(blas, fft, kernels)``."""
    def set_counts(blas: int, fft: int | None = None, kernels: int | None = None) -> None:
        fft, kernels = fft or blas, kernels or blas
        monkeypatch.setattr(costs, "cpus", lambda: 64)
        monkeypatch.setattr(costs, "blas_threads", lambda: blas)
        monkeypatch.setattr(costs, "fft_threads", lambda: fft)
        monkeypatch.setattr(costs, "kernel_threads", lambda: kernels)
    return set_counts


def test_the_constants_describe_two_threads_and_scale_to_the_count_in_effect(threads):
    with calibrate.using(calibrate.CONSTANTS):
        threads(2)
        at_two = costs.gemm_rate(F32), costs.kernel_speed()
        threads(1)
        at_one = costs.gemm_rate(F32), costs.kernel_speed()
        threads(4)
        at_four = costs.gemm_rate(F32), costs.kernel_speed()
    assert calibrate.CONSTANTS.threads == 2 and at_two[1] == 1.0
    assert at_one == pytest.approx((at_two[0] / 2, 0.5)) and at_four == pytest.approx((2 * at_two[0], 2.0))


def test_the_planner_follows_the_thread_count(threads):
    """Its cache keys on the counts: one thread doubles the GEMM's compute time, not NumPy's copies."""
    with calibrate.using(calibrate.CONSTANTS):
        threads(2)
        two = estimate_call(RESNET_LAYER4).estimates["gemm"]
        threads(1)
        one = estimate_call(RESNET_LAYER4).estimates["gemm"]
        copies_only = estimate("gemm", RESNET_LAYER4).seconds
    assert one == copies_only  # the cached plan of two threads was not reused
    assert 1.5 * two < one < 2 * two  # the compute doubles; the copies and overheads do not


def test_a_gemm_bound_choice_flips_to_memory_bound_work_only_at_fewer_threads(threads):
    """On one thread the GEMM is half as fast against the same memory-bound work: given rates under which a
    GEMM-heavy call is a clear win on many threads, it becomes a clear loss on one."""
    call = conv((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    with calibrate.using(calibrate.CONSTANTS):
        threads(2)
        est2 = estimate_call(call).estimates
        threads(1)
        est1 = estimate_call(call).estimates
    # the GEMM parts double, the stream parts do not: every GEMM-based estimate grows, by less than 2x
    for name in ("gemm", "winograd_f4"):
        assert est2[name] < est1[name] < 2 * est2[name] + 1e-12, name


def test_calibrated_rates_are_measured_again_at_a_new_thread_count(monkeypatch):
    counts = [(1, 1, 1)]
    measured = []

    def fake_measure(repeat=3):
        key = counts[0]
        measured.append(key)
        return calibrate.Calibration(calibrate.CONSTANTS._replace(gemm_flops=1e10 * key[0], threads=key[0]),
                                     0.01, {})

    monkeypatch.setattr(calibrate, "measure", fake_measure)
    monkeypatch.setattr(calibrate, "threads_in_effect", lambda: counts[0])
    with calibrate.using(None):
        assert calibrate.rates().threads == 1 and calibrate.rates().gemm_flops == 1e10
        counts[0] = (2, 2, 2)
        version = calibrate.version()
        assert calibrate.rates().threads == 2 and calibrate.rates().gemm_flops == 2e10
        counts[0] = (1, 1, 1)
        assert calibrate.rates().threads == 1 and calibrate.version() != version  # kept, not measured again
        assert calibrate.source() == "calibrated"
    assert measured == [(1, 1, 1), (2, 2, 2)]
    assert calibrate.source() == "constants"


def test_a_measurement_records_its_thread_count():
    result = calibrate.measure(repeat=1)
    assert result.machine.threads == costs.blas_threads()
    assert "kernel_macs" in result.machine._fields


# --------------------------------------------------------------------------- estimates the bench found wrong


@pytest.mark.skipif(not direct.numba_available(), reason="the compiled kernels need numba (the fast extra)")
def test_direct_pays_for_planes_beyond_the_cache_on_a_single_channel_1024_image(threads):
    """A single-channel 1024x1024 image, 11x11: direct's planes (4 MiB) outgrow the L2 cache and each pair
    of kernel columns streams them again; measured 1.7x slower than depthwise on the Xeon of the bench."""
    threads(2)
    with calibrate.using(calibrate.CONSTANTS):
        big = conv((8, 1, 1024, 1024), (1, 1, 11, 11), padding=5)
        p = estimate_call(big)
        assert p.algorithm != "direct", str(p)
        assert "outgrow the L2 cache" in estimate("direct", big).terms
        # LeNet's second layer (14x14 planes) stays in the cache: no traffic term
        lenet = conv((64, 6, 14, 14), (16, 6, 5, 5))
        assert "outgrow" not in estimate("direct", lenet).terms


def test_compiled_kernels_are_priced_at_their_thread_count(threads):
    lenet = conv((64, 6, 14, 14), (16, 6, 5, 5))
    if not direct.uses_numba(lenet):
        pytest.skip("the compiled kernels need numba (the fast extra)")
    with calibrate.using(calibrate.CONSTANTS):
        threads(2, kernels=2)
        two = direct.estimate(lenet).seconds
        threads(2, kernels=1)
        one = direct.estimate(lenet).seconds
    assert 1.5 * two < one < 2 * two


def test_subpixel_pays_for_its_transposed_interleaving(threads):
    """U-Net's 2x2/2 up-convolution: four 1x1 phases, each result written channels-last through a transpose
    (twice a plain strided copy), after the output is zeroed: five passes over the output, not two."""
    from convlab.ops.algorithms import subpixel
    from convlab.ops.algorithms._registry import RECORDS

    threads(2)
    call = conv((8, 256, 28, 28), (128, 256, 2, 2), padding=1, input_dilation=2)
    out_bytes = 8 * 128 * 56 * 56 * 4
    with calibrate.using(calibrate.CONSTANTS):
        phases = [estimate_call(sub) for sub in subpixel.phase_calls(call)]
        assert [p.algorithm for p in phases] == ["gemm"] * 4  # 1x1 phases: channels-first results
        parts = sum(min(p.estimates.values()) for p in phases)
        copies = estimate("subpixel", call).seconds - parts - RECORDS["subpixel"].fixed_seconds
        assert copies == pytest.approx(5 * out_bytes / costs.MACHINE.stream_bytes, rel=1e-9)
