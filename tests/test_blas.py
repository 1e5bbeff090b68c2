"""The OpenBLAS core NumPy runs on, as the cost model and the bench read it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from convlab.ops.algorithms import _blas

costs = importlib.import_module("convlab.ops.algorithms._costs")


def _core_in(env_core: str) -> str:
    env = dict(os.environ, OPENBLAS_CORETYPE=env_core)
    code = "from convlab.ops.algorithms._blas import openblas_core; print(openblas_core())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip()


def test_the_core_follows_openblas_coretype():
    if _blas.openblas_core() is None:
        pytest.skip("NumPy is not linked to a readable OpenBLAS")
    assert _core_in("Haswell") == "Haswell"
    assert _core_in("Sandybridge") == "Sandybridge"


def test_the_gemm_rate_of_the_cost_model_follows_the_kernels(monkeypatch):
    import numpy as np

    from convlab.ops.algorithms import calibrate

    # The constants were measured on AVX2 kernels: they are scaled where AVX-512 kernels run.
    with calibrate.using(costs.CONSTANTS):
        monkeypatch.setattr(costs, "openblas_core", lambda: "SkylakeX")
        fast = costs.gemm_rate(np.dtype(np.float32))
        monkeypatch.setattr(costs, "openblas_core", lambda: "Haswell")
        slow = costs.gemm_rate(np.dtype(np.float32))
        monkeypatch.setattr(costs, "openblas_core", lambda: None)
        unknown = costs.gemm_rate(np.dtype(np.float32))
        # ... and priced at the threads BLAS runs on now (the constants describe MACHINE.threads)
        at_threads = costs.MACHINE.gemm_flops * costs.thread_factor(costs.blas_threads())
        assert fast == pytest.approx(costs.AVX512_SPEEDUP * slow) and unknown == slow == at_threads
    # Calibrated rates were measured on the kernels that run: not scaled.
    measured = costs.CONSTANTS._replace(gemm_flops=123e9, threads=costs.blas_threads())  # at the count in effect
    with calibrate.using(measured):
        monkeypatch.setattr(costs, "openblas_core", lambda: "SkylakeX")
        assert costs.gemm_rate(np.dtype(np.float32)) == 123e9
