"""Measurement: FLOPs, wall time, extra peak memory, the machine's load, relative error, the algorithms that ran.

Peak memory (:class:`PeakMemory`): the extra resident memory of one call. On
Linux, the free heap is returned to the system (``malloc_trim(0)``), the
resident size ``VmRSS`` is read, the peak ``VmHWM`` is reset (``echo 5 >
/proc/self/clear_refs``), the call runs (its result still held) and ``VmHWM -
VmRSS_before`` is its extra peak: everything it touched, threads included,
output included. Where ``clear_refs`` is not writable NumPy/SciPy calls are
measured with :mod:`tracemalloc` (NumPy reports its buffers to it) and torch's
are reported as unavailable.

Noise (:class:`OtherCpu`): other work on the machine slows the two libraries
unequally (their threads wait for each other), so the run reports the load
average before it and the share of the CPU time that other processes used
during each layer (``/proc/stat`` minus this process's own time).

Every import of NumPy, torch and the engine is inside a function: importing
this module costs the standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .suites import Layer

if TYPE_CHECKING:
    from ..ops.algorithms import TraceEvent

__all__ = [
    "OtherCpu",
    "PeakMemory",
    "algorithms_ran",
    "available_memory",
    "conv_flops",
    "kernels",
    "layer_bytes",
    "load_average",
    "machine",
    "pass_flops",
    "relative_error",
    "timed",
    "traced_peak",
]


def conv_flops(layer: Layer, batch: int, out_size: Sequence[int]) -> int:
    """FLOPs of the forward (transposed) convolution of a batch, ``2 * MACs`` from :mod:`convlab.costs`.

    Each gradient costs the same; the backward pass (both gradients) twice this.
    """
    from ..costs import conv_cost, conv_transpose_cost

    kernel = (layer.kernel_size,) * layer.ndim
    if layer.transposed:
        cost = conv_transpose_cost(layer.in_channels, layer.out_channels, kernel, layer.size, tuple(out_size),
                                   layer.groups)
    else:
        cost = conv_cost(layer.in_channels, layer.out_channels, kernel, tuple(out_size), layer.groups)
    return batch * cost.flops


def layer_bytes(layer: Layer, batch: int) -> dict[str, int]:
    """Bytes of a layer's float32 input, output and weight for a batch (what the run holds for it).

    The batch is the layer's own when it has one (at most ``batch``); sizes come
    from :mod:`convlab.shapes` (the standard library only, nothing is allocated).
    """
    from ..shapes import conv_output_shape, conv_transpose_output_shape
    from ..spec import ConvSpec

    batch = batch if layer.batch is None else min(layer.batch, batch)
    spec = ConvSpec(layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.groups,
                    transposed=layer.transposed, ndim=layer.ndim, name=layer.name)
    rule = conv_transpose_output_shape if layer.transposed else conv_output_shape
    out_size = tuple(int(o) for o in rule(spec, layer.size))
    kernel = layer.kernel_size ** layer.ndim
    weight = layer.out_channels * layer.in_channels // layer.groups * kernel
    return {"input": 4 * batch * layer.in_channels * math.prod(layer.size),
            "output": 4 * batch * layer.out_channels * math.prod(out_size),
            "weight": 4 * weight}


def available_memory() -> int | None:
    """Bytes of memory available to a new workload (``MemAvailable`` of ``/proc/meminfo``); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def pass_flops(forward_flops: int, pass_: str) -> int:
    """FLOPs of one pass: each gradient costs the forward's, the backward (both gradients) twice."""
    return 2 * forward_flops if pass_ == "backward" else forward_flops


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def kernels() -> dict[str, object]:
    """The instruction sets each library runs on: OpenBLAS's core (and what chose it) and torch's capability."""
    import torch

    from ..ops.algorithms._blas import AVX512_CORES, openblas_core

    core = openblas_core()
    return {
        "openblas_core": core,
        "openblas_core_avx512": None if core is None else core.lower() in AVX512_CORES,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def machine() -> dict[str, object]:
    """The CPU's model name (``/proc/cpuinfo``), the number of cores, Python and the system."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()}


class OtherCpu:
    """The share of the machine's CPU time that other processes used while this one ran.

    From ``/proc/stat`` (all busy time) minus this process's own CPU time
    (``os.times``), over the wall time times the number of cores; None where
    ``/proc/stat`` is missing. Other work on the machine slows both sides, but
    not alike (torch's and OpenBLAS's threads wait for each other), so a
    noticeable share makes the ratios unreliable.
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system (idle iowait) irq softirq steal
        own = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.monotonic()

    def share(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = (end[2] - self.start[2]) * (os.cpu_count() or 1)
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return round(min(max(others / wall, 0.0), 1.0), 3) if wall > 0 else None


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages; None where the system has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class PeakMemory:
    """The extra peak memory of one call (see the module docstring for the method)."""

    def __init__(self) -> None:
        self.proc = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.proc = self._status("VmHWM") is not None
        except OSError:
            pass
        self._trim: Callable[[int], int] | None = None
        if self.proc:
            with contextlib.suppress(OSError, AttributeError):
                import ctypes
                import ctypes.util

                self._trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim

    @property
    def method(self) -> str:
        if self.proc:
            return ("VmHWM after resetting it through /proc/self/clear_refs, minus VmRSS before the call "
                    f"({'after' if self._trim else 'without'} malloc_trim(0)); all implementations")
        return "tracemalloc peak (NumPy and SciPy only; torch's unavailable)"

    @staticmethod
    def _status(key: str) -> int | None:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return None

    def extra_peak(self, fn: Callable[[], object], numpy_side: bool) -> int | None:
        """Bytes of extra peak memory of ``fn()``; None where it cannot be measured."""
        gc.collect()
        if self.proc:
            if self._trim is not None:
                self._trim(0)
            before = self._status("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            result = fn()
            peak = self._status("VmHWM")
            del result
            return None if before is None or peak is None else max(0, peak - before)
        if not numpy_side:
            return None
        return traced_peak(fn)


def traced_peak(fn: Callable[[], object]) -> int:
    """Bytes of extra peak memory of ``fn()`` by :mod:`tracemalloc` (Python objects and NumPy buffers)."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak


def algorithms_ran(events: Sequence[TraceEvent]) -> str | None:
    """The algorithms a traced call ran, in order of first use, joined by ``+`` (e.g. ``'col2im+gemm'``).

    ``events`` come from :func:`convlab.ops.algorithms.trace`, which records the
    outermost primitive calls with the algorithm that actually ran (what
    ``algorithm='auto'`` chose, or the fallback); None when none ran.
    """
    return "+".join(dict.fromkeys(event.algorithm for event in events)) or None


def relative_error(ours, reference) -> float:
    """Largest absolute difference over the largest absolute value of ``reference`` (inf if the shapes differ)."""
    import numpy as np

    ours = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    reference = reference.detach().numpy() if hasattr(reference, "detach") else np.asarray(reference)
    if ours.shape != reference.shape:
        return math.inf
    scale = max(float(np.abs(reference).max(initial=0.0)), 1e-30)
    return float(np.abs(ours.astype(np.float64) - reference).max(initial=0.0)) / scale
