"""``convlab bench``: the project's benchmark, convlab against PyTorch and SciPy on real layer shapes.

A measurement, not a test (no test asserts a time). For every layer of a named
suite (``--suite``; the default ``issue4`` is the issue-4 suite: ResNet-18/50,
VGG-16, MobileNetV2, ConvNeXt, RepLKNet, wav2vec 2.0, 3-D, transposed, dilated
and single-channel 1024x1024 layers, batch 8, float32) it times four passes:

* ``forward``: ``convlab.functional.conv{1,2,3}d`` / ``conv_transpose{1,2,3}d``
  against ``torch.nn.functional``'s (under ``torch.no_grad``);
* ``backward``: both gradients together, ``convlab.functional.conv_vjp`` /
  ``conv_transpose_vjp`` against ``torch.ops.aten.convolution_backward`` with
  ``output_mask=[True, True, False]`` (what autograd runs);
* ``input_grad``: the input gradient alone. convlab: ``conv_input_grad``
  (``conv_transpose_vjp(..., wrt="input")`` for a transposed layer); torch:
  ``convolution_backward`` with ``output_mask=[True, False, False]`` (as
  ``torch.nn.grad.conv2d_input``);
* ``weight_grad``: the weight gradient alone. convlab: ``conv_weight_grad``
  (``conv_transpose_vjp(..., wrt="weight")``); torch:
  ``output_mask=[False, True, False]`` (as ``torch.nn.grad.conv2d_weight``).

Each pass runs in torch twice: NCHW (contiguous) and channels-last
(``torch.channels_last`` / ``channels_last_3d``; not for 1-D). For the
single-channel layers the forward pass also runs ``scipy.signal.correlate``,
``scipy.signal.fftconvolve`` (with the flipped kernel) and
``scipy.ndimage.correlate`` (single-threaded, as SciPy runs them).

Method. Per layer: a warm-up call of every implementation and pass, which also
checks that all agree with torch NCHW (maximum relative error: largest absolute
difference over the largest absolute value), records which algorithms
``algorithm='auto'`` ran, and leaves out (and reports) an implementation that
raises; one call each measuring peak memory; then ``--repeat``
rounds, each calling every implementation of every pass once, round-robin with
the starting implementation rotated per round, so that drifts in the machine's
speed hit all alike (a call that took over a second at warm-up is timed in the
first three rounds only: its relative noise is small, and some torch gradients
of single-channel 31x31 take over ten seconds). Reported: the median time, GFLOP/s from the direct
convolution's FLOP count (``2 * MACs`` from :mod:`convlab.costs`; each gradient
costs what the forward does, the backward twice), the ratio convlab / torch
NCHW (below 1: convlab is faster) per layer and pass, the geometric mean of
those ratios per layer class, and the issue-4 targets, met or not met.

Peak memory: the extra resident memory of one call. On Linux, the free heap is
returned to the system (``malloc_trim(0)``), the resident size ``VmRSS`` is
read, the peak ``VmHWM`` is reset (``echo 5 > /proc/self/clear_refs``), the
call runs (its result still held) and ``VmHWM - VmRSS_before`` is its extra
peak: everything it touched, threads included, output included. Where
``clear_refs`` is not writable NumPy/SciPy calls are measured with
:mod:`tracemalloc` (NumPy reports its buffers to it) and torch's are reported
as unavailable.

Noise: other work on the machine slows the two libraries unequally (their
threads wait for each other), so the run reports the load average before it
and the share of the CPU time that other processes used during each layer
(``/proc/stat`` minus this process's own time), and warns when it was over 10%.

Fairness: OpenBLAS worker threads busy-wait after each NumPy BLAS call and slow
the next torch call three- to four-fold. So the run sets
``OPENBLAS_THREAD_TIMEOUT=1`` and the same thread count for both libraries
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
The other way round, torch's OpenMP worker threads spin after each torch call
and slowed the NumPy call that followed by up to 2x (a 1x1 layer: 13.2 ms
against 6.2 ms); ``OMP_WAIT_POLICY=PASSIVE`` puts them to sleep instead, which
left torch's own times within the run-to-run noise (4.00 against 3.99 ms on
the same layer).
OpenBLAS reads these when NumPy is loaded, and importing :mod:`convlab` loads
NumPy, so when they are not already set :func:`main` re-runs the benchmark in a
fresh interpreter (``python -m convlab.bench ...``) with them set.

Instruction sets: torch's oneDNN picks its own (``AVX512`` on the development
machine); NumPy's OpenBLAS picks its kernels at load time, unless
``OPENBLAS_CORETYPE`` names them. The run prints both (JSON ``kernels``), and
notes when OpenBLAS runs narrower vectors than torch: on the development
machine the environment set ``OPENBLAS_CORETYPE=Haswell`` (AVX2), which halves
NumPy's GEMM rate (230 against 420 GFLOP/s for a large ``sgemm``).
``--blas-core SkylakeX`` runs the same benchmark on OpenBLAS's AVX-512 kernels;
the README reports both.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

__all__ = [
    "CLASSES",
    "LAYERS",
    "PASSES",
    "SUITES",
    "TARGETS",
    "Layer",
    "Target",
    "add_arguments",
    "conv_flops",
    "format_report",
    "main",
    "run",
]

_CHILD_MARK = "CONVLAB_BENCH_CHILD"

#: The passes timed for every layer, in table order.
PASSES = ("forward", "backward", "input_grad", "weight_grad")
_PASS_LABEL = {"forward": "forward", "backward": "backward", "input_grad": "input grad",
               "weight_grad": "weight grad"}

#: The layer classes, each with a geometric mean of its ratios.
CLASSES = ("3x3", "1x1", "stem/strided", "depthwise small", "depthwise large", "1-D", "3-D", "transposed",
           "dilated", "single-channel")

_TORCH, _TORCH_CL = "torch", "torch_channels_last"
_SCIPY = ("scipy.signal.correlate", "scipy.signal.fftconvolve", "scipy.ndimage.correlate")


class Layer(NamedTuple):
    """One convolution of a real network: square (cubic) kernel, zero padding, no bias."""

    name: str
    layer_class: str  # one of CLASSES
    in_channels: int
    out_channels: int
    kernel_size: int  # the same in every spatial dimension
    size: tuple[int, ...]  # spatial input size; its length is the number of spatial dimensions
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False
    batch: int | None = None  # a fixed batch (the 3-D layer's 2); None: the run's batch

    @property
    def ndim(self) -> int:
        return len(self.size)


def _dw(name: str, layer_class: str, channels: int, k: int, size: int, stride: int = 1) -> Layer:
    return Layer(name, layer_class, channels, channels, k, (size, size), stride, k // 2, groups=channels)


LAYERS: tuple[Layer, ...] = (
    # 3x3, stride 1 (padding 1)
    Layer("resnet18.layer1.0.conv1", "3x3", 64, 64, 3, (56, 56), padding=1),
    Layer("resnet18.layer2.1.conv1", "3x3", 128, 128, 3, (28, 28), padding=1),
    Layer("resnet18.layer3.1.conv1", "3x3", 256, 256, 3, (14, 14), padding=1),
    Layer("resnet18.layer4.1.conv1", "3x3", 512, 512, 3, (7, 7), padding=1),
    Layer("vgg16.conv3_1", "3x3", 128, 256, 3, (56, 56), padding=1),
    Layer("vgg16.conv3_2", "3x3", 256, 256, 3, (56, 56), padding=1),
    # 1x1 (ResNet-50 bottlenecks)
    Layer("resnet50.layer1.0.conv3", "1x1", 64, 256, 1, (56, 56)),
    Layer("resnet50.layer1.1.conv1", "1x1", 256, 64, 1, (56, 56)),
    Layer("resnet50.layer3.1.conv1", "1x1", 1024, 256, 1, (14, 14)),
    Layer("resnet50.layer3.0.conv3", "1x1", 256, 1024, 1, (14, 14)),
    # the stem and strided convolutions
    Layer("resnet18.conv1", "stem/strided", 3, 64, 7, (224, 224), stride=2, padding=3),
    Layer("resnet18.layer2.0.conv1", "stem/strided", 64, 128, 3, (56, 56), stride=2, padding=1),
    Layer("resnet50.layer2.0.downsample.0", "stem/strided", 256, 512, 1, (56, 56), stride=2),
    # depthwise 3x3 (MobileNetV2) and 7x7 (ConvNeXt-T)
    _dw("mobilenetv2.features.2.conv.1.0", "depthwise small", 96, 3, 112, stride=2),
    _dw("mobilenetv2.features.3.conv.1.0", "depthwise small", 144, 3, 56),
    _dw("mobilenetv2.features.8.conv.1.0", "depthwise small", 384, 3, 14),
    _dw("mobilenetv2.features.15.conv.1.0", "depthwise small", 960, 3, 7),
    _dw("convnext_tiny.features.1.0.block.0", "depthwise small", 96, 7, 56),
    _dw("convnext_tiny.features.5.0.block.0", "depthwise small", 384, 7, 14),
    # depthwise 31x31 (RepLKNet-31B)
    _dw("replknet31b.stage1.large_kernel", "depthwise large", 128, 31, 56),
    _dw("replknet31b.stage2.large_kernel", "depthwise large", 256, 31, 28),
    # 1-D: wav2vec 2.0's first feature-extractor layer (no padding, as in the model) and a k9 conv
    Layer("wav2vec2.feature_extractor.conv_layers.0", "1-D", 1, 512, 10, (16000,), stride=5),
    Layer("conv1d.k9.c128", "1-D", 128, 128, 9, (16384,), padding=4),
    # 3-D: 3x3x3 on 8 frames of 56x56, batch 2
    Layer("conv3d.k3.c64", "3-D", 64, 64, 3, (8, 56, 56), padding=1, batch=2),
    # transposed: DCGAN-style 4x4/2 (padding 1) and U-Net's 2x2/2 up-convolution
    Layer("dcgan.up4x4s2.c128", "transposed", 128, 64, 4, (28, 28), stride=2, padding=1, transposed=True),
    Layer("unet.up2x2s2.c256", "transposed", 256, 128, 2, (28, 28), stride=2, transposed=True),
    # dilated (DeepLab-style atrous 3x3, dilation 2)
    Layer("deeplab.3x3d2.c256", "dilated", 256, 256, 3, (28, 28), padding=2, dilation=2),
    # single channel (image filtering)
    Layer("image1024.k3", "single-channel", 1, 1, 3, (1024, 1024), padding=1),
    Layer("image1024.k11", "single-channel", 1, 1, 11, (1024, 1024), padding=5),
    Layer("image1024.k31", "single-channel", 1, 1, 31, (1024, 1024), padding=15),
)

_BY_NAME = {layer.name: layer for layer in LAYERS}

#: Named suites (``--suite``): tuples of layer names.
SUITES: dict[str, tuple[str, ...]] = {
    "issue4": tuple(_BY_NAME),
    "resnet18": tuple(n for n in _BY_NAME if n.startswith("resnet18.")),
    "resnet50": tuple(n for n in _BY_NAME if n.startswith("resnet50.")),
    "depthwise": tuple(n for n, layer in _BY_NAME.items() if layer.layer_class.startswith("depthwise")),
    "image": tuple(n for n, layer in _BY_NAME.items() if layer.layer_class == "single-channel"),
    # --quick's default: cheap layers of five classes, for CI smoke runs
    "quick": ("resnet18.layer3.1.conv1", "resnet50.layer3.1.conv1", "mobilenetv2.features.8.conv.1.0",
              "unet.up2x2s2.c256", "image1024.k3"),
}


class Target(NamedTuple):
    """An issue-4 target: the ratio convlab / torch NCHW (or / the fastest SciPy function) of some layers.

    ``limit`` bounds the forward ratio; the input and weight gradients get
    ``1.2 * limit`` unless ``weight_limit`` says otherwise; ``strict`` means
    "faster than" (``<``) for the forward pass.
    """

    name: str
    applies: Callable[[Layer], bool]
    limit: float
    versus: str = _TORCH  # or "scipy": the fastest of the SciPy functions (forward only)
    weight_limit: float | None = None
    strict: bool = False


def _big_3x3(layer: Layer) -> bool:
    return min(layer.in_channels, layer.out_channels) >= 128 and min(layer.size) >= 56


TARGETS: tuple[Target, ...] = (
    Target("3x3 s1, >= 128 ch, >= 56x56", lambda la: la.layer_class == "3x3" and _big_3x3(la), 0.55),
    Target("3x3 s1, other", lambda la: la.layer_class == "3x3" and not _big_3x3(la), 1.0),
    Target("1x1", lambda la: la.layer_class == "1x1", 1.0),
    Target("stem and strided", lambda la: la.layer_class == "stem/strided", 1.2),
    Target("dilated", lambda la: la.layer_class == "dilated", 1.2),
    Target("transposed", lambda la: la.layer_class == "transposed", 1.2),
    Target("1-D", lambda la: la.layer_class == "1-D", 1.2),
    Target("3-D", lambda la: la.layer_class == "3-D", 1.5),
    Target("depthwise 3x3 and 7x7", lambda la: la.layer_class == "depthwise small", 3.0),
    Target("depthwise >= 13x13", lambda la: la.layer_class == "depthwise large", 0.1, weight_limit=0.1),
    Target("single channel vs torch", lambda la: la.layer_class == "single-channel", 1.0, strict=True),
    Target("single channel vs fastest SciPy", lambda la: la.layer_class == "single-channel", 1.0,
           versus="scipy", strict=True),
)
_MEMORY_LIMIT = 2.0  # peak memory <= 2x torch NCHW's, every layer and pass
_GRADIENT_FACTOR = 1.2  # gradients within 1.2x of the forward target of their class
_SLOW_SECONDS, _SLOW_REPEAT = 1.0, 3  # a call slower than 1 s at warm-up is timed at most 3 times
_BUSY_LOAD_PER_CORE = 0.6  # a 1-minute load average above this (per core) before the run: warn
_BUSY_SHARE = 0.1  # other processes using over 10% of the CPU time during a layer: warn


def _pass_limit(target: Target, pass_: str) -> tuple[float, bool] | None:
    """(limit, strict) of ``target`` for one pass; None where the target says nothing about the pass."""
    if pass_ == "forward":
        return target.limit, target.strict
    if target.versus != _TORCH or pass_ == "backward":
        return None
    if pass_ == "weight_grad" and target.weight_limit is not None:
        return target.weight_limit, False
    return round(_GRADIENT_FACTOR * target.limit, 6), False


def _meets(figure: float, limit: float, strict: bool) -> bool:
    return figure < limit if strict else figure <= limit


# --------------------------------------------------------------------------- options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``convlab bench`` and ``python -m convlab.bench``)."""
    parser.add_argument("--suite", choices=tuple(SUITES), default=None,
                        help="the layers to run (default issue4, all of them; 'quick' with --quick)")
    parser.add_argument("--layers", default=None, metavar="NAMES",
                        help="comma list of layer names (from any suite; replaces --suite); see --list")
    parser.add_argument("--list", action="store_true", help="list the suites and layers, then exit")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run for CI: batch 1, 1 repeat, the 'quick' suite (the numbers mean little)")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="timed rounds per layer, reported as the median (default 5, or 1 with --quick)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="batch size (default 8, or 1 with --quick; the 3-D layer uses at most 2)")
    parser.add_argument("--threads", type=int, default=2, metavar="T",
                        help="threads for both OpenBLAS and torch (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--blas-core", metavar="CORE", default=None,
                        help="run NumPy's OpenBLAS on these kernels (sets OPENBLAS_CORETYPE for the run, e.g. "
                             "SkylakeX for AVX-512 or Haswell for AVX2; default: as the environment says)")


# --------------------------------------------------------------------------- measurement helpers


def conv_flops(layer: Layer, batch: int, out_size: Sequence[int]) -> int:
    """FLOPs of the forward (transposed) convolution of a batch, ``2 * MACs`` from :mod:`convlab.costs`.

    Each gradient costs the same; the backward pass (both gradients) twice this.
    """
    from .costs import conv_cost, conv_transpose_cost

    kernel = (layer.kernel_size,) * layer.ndim
    if layer.transposed:
        cost = conv_transpose_cost(layer.in_channels, layer.out_channels, kernel, layer.size, tuple(out_size),
                                   layer.groups)
    else:
        cost = conv_cost(layer.in_channels, layer.out_channels, kernel, tuple(out_size), layer.groups)
    return batch * cost.flops


def _pass_flops(forward_flops: int, pass_: str) -> int:
    return 2 * forward_flops if pass_ == "backward" else forward_flops


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _environment_ready(threads: int, blas_core: str | None) -> bool:
    return (os.environ.get("OPENBLAS_THREAD_TIMEOUT") == "1"
            and (blas_core is None or os.environ.get("OPENBLAS_CORETYPE") == blas_core)
            and os.environ.get("OPENBLAS_NUM_THREADS") == str(threads)
            and os.environ.get("OMP_NUM_THREADS") == str(threads)
            and os.environ.get("OMP_WAIT_POLICY") == "PASSIVE")


def _kernels() -> dict[str, object]:
    """The instruction sets each library runs on: OpenBLAS's core (and what chose it) and torch's capability."""
    import torch

    from .ops.algorithms._blas import AVX512_CORES, openblas_core

    core = openblas_core()
    return {
        "openblas_core": core,
        "openblas_core_avx512": None if core is None else core.lower() in AVX512_CORES,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _machine() -> dict[str, object]:
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


class _OtherCpu:
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


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class _PeakMemory:
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
        import tracemalloc

        tracemalloc.start()
        try:
            result = fn()
            peak = tracemalloc.get_traced_memory()[1]
            del result
        finally:
            tracemalloc.stop()
        return peak


@contextlib.contextmanager
def _recording_algorithms(names: list[str]) -> Iterator[None]:
    """Record the algorithms the convolution primitive runs (outermost calls only) while inside.

    Used on the warm-up calls only: it wraps the entries of
    ``convlab.ops.algorithms.ALGORITHMS``, which ``algorithm='auto'`` looks up
    per call after :func:`convlab.ops.algorithms.plan` has chosen. Without a
    planner (no ``plan`` there) nothing is recorded.
    """
    try:
        from .ops import algorithms
    except ImportError:
        algorithms = None
    table = getattr(algorithms, "ALGORITHMS", None)
    if not hasattr(algorithms, "plan") or not isinstance(table, dict):
        yield
        return
    original = dict(table)
    depth = [0]

    def recorded(name: str, fn: Callable) -> Callable:
        def call(*args, **kwargs):
            if depth[0] == 0:
                names.append(name)
            depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
        return call

    for name, fn in original.items():
        table[name] = recorded(name, fn)
    try:
        yield
    finally:
        table.update(original)


def _relative_error(ours, reference) -> float:
    import numpy as np

    ours = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    reference = reference.detach().numpy() if hasattr(reference, "detach") else np.asarray(reference)
    if ours.shape != reference.shape:
        return math.inf
    scale = max(float(np.abs(reference).max(initial=0.0)), 1e-30)
    return float(np.abs(ours.astype(np.float64) - reference).max(initial=0.0)) / scale


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

    from . import functional as F
    from .shapes import conv_output_shape, conv_transpose_output_shape
    from .spec import ConvSpec

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
    layouts = {_TORCH: torch.contiguous_format}
    if nd in (2, 3):
        layouts[_TORCH_CL] = torch.channels_last if nd == 2 else torch.channels_last_3d
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


def _run_layer(case: _Case, repeat: int, memory: _PeakMemory) -> dict[str, object]:
    layer, calls = case.layer, case.calls
    # Warm-up: every call once; compare with torch NCHW; record convlab's algorithms.
    errors: dict[str, dict[str, float]] = {}
    algorithms: dict[str, str | None] = {}
    warm_up: dict[str, dict[str, float]] = {pass_: {} for pass_ in calls}
    failures: dict[str, dict[str, str]] = {}
    for pass_, impls in calls.items():
        start = time.perf_counter()
        reference = _results_of(pass_, impls[_TORCH]())
        warm_up[pass_][_TORCH] = time.perf_counter() - start
        errors[pass_] = {}
        for impl, fn in impls.items():
            if impl == _TORCH:
                continue
            names: list[str] = []
            start = time.perf_counter()
            try:
                if impl == "convlab":
                    with _recording_algorithms(names):
                        result = fn()
                    algorithms[pass_] = "+".join(dict.fromkeys(names)) or None
                else:
                    result = fn()
            except Exception as exc:  # an engine under development: report it, measure the rest
                failures.setdefault(pass_, {})[impl] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                continue
            warm_up[pass_][impl] = time.perf_counter() - start
            ours = _results_of(pass_, result)
            errors[pass_][impl] = max(_relative_error(a, b) for a, b in zip(ours, reference, strict=True))
            del result, ours
        del reference
    for pass_, failed in failures.items():
        for impl in failed:
            del calls[pass_][impl]
    # Peak memory: one call each.
    peaks = {pass_: {impl: memory.extra_peak(fn, numpy_side=not impl.startswith("torch"))
                     for impl, fn in impls.items()}
             for pass_, impls in calls.items()}
    # Timing: round-robin, the first implementation rotated per round; slow calls get fewer rounds.
    samples: dict[str, dict[str, list[float]]] = {pass_: {impl: [] for impl in impls} for pass_, impls in calls.items()}
    quota = {pass_: {impl: repeat if seconds < _SLOW_SECONDS else min(repeat, _SLOW_REPEAT)
                     for impl, seconds in warm_up[pass_].items()} for pass_ in calls}
    gc.collect()
    for round_ in range(repeat):
        for pass_, impls in calls.items():
            order = list(impls)
            shift = round_ % len(order)
            for impl in order[shift:] + order[:shift]:
                if round_ < quota[pass_][impl]:
                    samples[pass_][impl].append(_timed(impls[impl]))

    forward_flops = conv_flops(layer, case.batch, case.out_size)
    passes: dict[str, object] = {}
    for pass_, impls in calls.items():
        flops = _pass_flops(forward_flops, pass_)
        times = {impl: 1e3 * statistics.median(samples[pass_][impl]) for impl in impls}
        entry: dict[str, object] = {
            "flops": flops,
            "ms": times,
            "min_ms": {impl: 1e3 * min(samples[pass_][impl]) for impl in impls},
            "timed_calls": {impl: len(samples[pass_][impl]) for impl in impls},
            "gflops": {impl: flops / ms / 1e6 for impl, ms in times.items()},
            "peak_memory_mib": {impl: None if b is None else b / 2**20 for impl, b in peaks[pass_].items()},
            "ratio": None, "ratio_channels_last": None, "memory_ratio": None,
        }
        if "convlab" in times:
            entry["ratio"] = times["convlab"] / times[_TORCH]
            if _TORCH_CL in times:
                entry["ratio_channels_last"] = times["convlab"] / times[_TORCH_CL]
            ours_peak, torch_peak = peaks[pass_].get("convlab"), peaks[pass_].get(_TORCH)
            if ours_peak is not None and torch_peak:
                entry["memory_ratio"] = ours_peak / torch_peak
            scipy_times = {impl: ms for impl, ms in times.items() if impl.startswith("scipy.")}
            if scipy_times:
                fastest = min(scipy_times, key=scipy_times.__getitem__)
                entry["fastest_scipy"] = fastest
                entry["ratio_fastest_scipy"] = times["convlab"] / scipy_times[fastest]
        passes[pass_] = entry

    report: dict[str, object] = {
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
    }
    report["targets"] = _layer_targets(layer, passes)
    return report


def _layer_targets(layer: Layer, passes: dict) -> list[dict[str, object]]:
    checks = []
    for target in TARGETS:
        if not target.applies(layer):
            continue
        for pass_ in PASSES:
            bound = _pass_limit(target, pass_)
            entry = passes[pass_]
            figure = entry.get("ratio_fastest_scipy") if target.versus == "scipy" else entry["ratio"]
            if bound is None or figure is None:
                continue
            limit, strict = bound
            checks.append({"target": target.name, "pass": pass_, "limit": limit, "strict": strict,
                           "figure": figure, "met": _meets(figure, limit, strict)})
    for pass_ in PASSES:
        figure = passes[pass_]["memory_ratio"]
        if figure is not None:
            checks.append({"target": "peak memory vs torch", "pass": pass_, "limit": _MEMORY_LIMIT, "strict": False,
                           "figure": figure, "met": _meets(figure, _MEMORY_LIMIT, False)})
    return checks


# --------------------------------------------------------------------------- the run


def _geomean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _summaries(layers: list[dict]) -> tuple[dict, list]:
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


def run(layers: Sequence[Layer], batch: int, repeat: int, threads: int,
        progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Time every layer (see the module docstring); return the results as a dict (the JSON)."""
    import numpy as np
    import scipy
    import torch

    torch.set_num_threads(threads)
    memory = _PeakMemory()
    load_before = _load_average()
    rng = np.random.default_rng(0)
    results = []
    started, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M")
    whole_run = _OtherCpu()
    for layer in layers:
        layer_batch = batch if layer.batch is None else min(layer.batch, batch)
        this_layer = _OtherCpu()
        case = _prepare(layer, layer_batch, rng)
        results.append(_run_layer(case, repeat, memory))
        results[-1]["other_processes_cpu_share"] = this_layer.share()
        del case
        if progress is not None:
            progress(f"{layer.name} ({time.perf_counter() - started:.0f} s)")
    classes, targets = _summaries(results)
    return {
        "date": date,  # when the run started
        "machine": _machine(),
        "load_average": {"before": load_before, "after": _load_average()},
        "other_processes_cpu_share": whole_run.share(),
        "threads": threads,
        "batch": batch,
        "repeat": repeat,
        "dtype": "float32",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "kernels": _kernels(),
        "memory_method": memory.method,
        "seconds": round(time.perf_counter() - started, 1),
        "layers": results,
        "classes": classes,
        "targets": targets,
    }


# --------------------------------------------------------------------------- printing


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An aligned Markdown table; the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = (str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def _f(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if digits == 2 and 0 < abs(value) < 0.01:
        return f"{value:.3f}"
    return f"{value:.{digits}f}"


def _limit(limit: float, strict: bool) -> str:
    return f"{'<' if strict else '<='} {limit:g}"


def format_report(report: dict[str, object]) -> str:
    """The tables: per layer and pass, SciPy (single channel), per class (geometric means), targets."""
    layers: list[dict] = report["layers"]  # type: ignore[assignment]
    out = []
    rows = []
    for entry in layers:
        checks = {(c["pass"]): c for c in entry["targets"] if c["target"] != "peak memory vs torch"
                  and not c["target"].endswith("SciPy")}
        for pass_ in PASSES:
            r = entry["passes"][pass_]
            ms, gflops, peak = r["ms"], r["gflops"], r["peak_memory_mib"]
            check = checks.get(pass_)
            rows.append((
                entry["name"], _PASS_LABEL[pass_], (entry["algorithms"] or {}).get(pass_) or "-",
                _f(ms.get("convlab")), _f(ms.get(_TORCH)), _f(ms.get(_TORCH_CL)),
                _f(r["ratio"]), _f(r["ratio_channels_last"]),
                _f(gflops.get("convlab"), 1), _f(gflops.get(_TORCH), 1),
                _f(peak.get("convlab"), 1), _f(peak.get(_TORCH), 1), _f(r["memory_ratio"]),
                "-" if check is None else f"{_limit(check['limit'], check['strict'])} "
                                          f"{'met' if check['met'] else 'NOT MET'}",
            ))
    out.append(_markdown(("layer", "pass", "convlab algorithm", "convlab ms", "torch ms", "torch CL ms",
                          "convlab/torch", "convlab/torch CL", "convlab GFLOP/s", "torch GFLOP/s",
                          "convlab MiB", "torch MiB", "memory ratio", "target"), rows, left=3))
    scipy_rows = []
    for entry in layers:
        r = entry["passes"]["forward"]
        if "fastest_scipy" in r:
            ms = r["ms"]
            scipy_rows.append((entry["name"], _f(ms["convlab"]), _f(ms[_TORCH]),
                               *(_f(ms.get(name)) for name in _SCIPY), _f(r["ratio"]),
                               f"{_f(r['ratio_fastest_scipy'])} ({r['fastest_scipy'].split('.', 1)[1]})"))
    if scipy_rows:
        out.append("\nSingle channel, forward, against SciPy (ms):\n")
        out.append(_markdown(("layer", "convlab", "torch", "signal.correlate", "signal.fftconvolve",
                              "ndimage.correlate", "convlab/torch", "convlab/fastest SciPy"), scipy_rows))
    class_rows = []
    for name, summary in report["classes"].items():  # type: ignore[union-attr]
        g = summary["geomean_ratio"]
        class_rows.append((name, str(len(summary["layers"])), *(_f(g[pass_]) for pass_ in PASSES),
                           _f(summary["geomean_ratio_channels_last"]["forward"])))
    out.append("\nGeometric mean of convlab/torch NCHW per layer class (below 1: convlab is faster):\n")
    out.append(_markdown(("class", "layers", "forward", "backward", "input grad", "weight grad",
                          "forward vs torch CL"), class_rows))
    out.append("\nTargets (the worst layer's ratio; forward against torch NCHW unless said; gradients within "
               "1.2x of the forward target):\n")
    by_target: dict[str, dict[str, dict]] = {}
    for t in report["targets"]:  # type: ignore[union-attr]
        by_target.setdefault(t["target"], {})[t["pass"]] = t
    target_rows = []
    for name, per_pass in by_target.items():
        cells = []
        for pass_ in PASSES:
            t = per_pass.get(pass_)
            cells.append("-" if t is None else
                         f"{_f(t['figure'])} ({_limit(t['limit'], t['strict'])}) {'met' if t['met'] else 'NOT MET'}")
        count = len(next(iter(per_pass.values()))["layers"])
        target_rows.append((name, str(count), *cells))
    out.append(_markdown(("target", "layers", "forward", "backward", "input grad", "weight grad"), target_rows))
    return "\n".join(out)


# --------------------------------------------------------------------------- entry point


def _select(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, tuple[Layer, ...]]:
    if args.layers:
        wanted = [n.strip() for n in args.layers.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in _BY_NAME]
        if unknown:
            parser.error(f"--layers: unknown layer(s) {unknown}; known: {list(_BY_NAME)}")
        return "custom", tuple(_BY_NAME[n] for n in wanted)
    suite = args.suite or ("quick" if args.quick else "issue4")
    return suite, tuple(_BY_NAME[n] for n in SUITES[suite])


def _listing() -> str:
    lines = ["suites: " + ", ".join(f"{name} ({len(names)} layers)" for name, names in SUITES.items()), ""]
    for layer in LAYERS:
        kind = "transposed " if layer.transposed else ""
        extra = "".join(f", {key} {value}" for key, value in (("stride", layer.stride), ("dilation", layer.dilation),
                                                            ("groups", layer.groups), ("batch", layer.batch or 1))
                        if value != 1)
        size = "x".join(map(str, layer.size))
        kernel = "x".join([str(layer.kernel_size)] * layer.ndim)
        lines.append(f"{layer.name:42s} {layer.layer_class:16s} {kind}{kernel} {layer.in_channels}->"
                     f"{layer.out_channels} at {size}, padding {layer.padding}{extra}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convlab bench`` and ``python -m convlab.bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="convlab bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        print(_listing())
        return 0
    if args.threads < 1:
        parser.error(f"--threads (={args.threads}) must be >= 1")
    suite, layers = _select(parser, args)
    batch = args.batch if args.batch is not None else (1 if args.quick else 8)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    if repeat < 1 or batch < 1:
        parser.error(f"--repeat (={repeat}) and --batch (={batch}) must be >= 1")
    if args.blas_core is not None and not args.blas_core.isalnum():
        parser.error(f"--blas-core (={args.blas_core!r}) must be an OpenBLAS core name such as SkylakeX or Haswell")
    if not _environment_ready(args.threads, args.blas_core):
        if os.environ.get(_CHILD_MARK):
            print("convlab bench: warning: could not set the OpenBLAS environment; torch timings may be unfair",
                  file=sys.stderr)
        else:
            env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="1", OPENBLAS_NUM_THREADS=str(args.threads),
                       OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE", **{_CHILD_MARK: "1"})
            if args.blas_core is not None:
                env["OPENBLAS_CORETYPE"] = args.blas_core
            return subprocess.call([sys.executable, "-m", "convlab.bench", *argv], env=env)
    try:
        import scipy  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        print("convlab bench: error: needs torch and scipy (pip install -e '.[torch]' -c constraints.txt)",
              file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"convlab bench: done {message}", file=sys.stderr, flush=True)

    report = run(layers, batch, repeat, args.threads, progress)
    report["suite"] = suite
    machine, load = report["machine"], report["load_average"]
    print(f"convlab bench: suite {suite} ({len(layers)} layers), batch {batch}, float32, median of {repeat} "
          f"(of at most {_SLOW_REPEAT} for calls over {_SLOW_SECONDS:g} s), "
          f"{args.threads} threads for convlab and torch; {report['date']}, {machine['cpu']} "
          f"({machine['cores']} cores), load average {load['before']}")
    kernels = report["kernels"]
    chosen = (f"set by OPENBLAS_CORETYPE={kernels['OPENBLAS_CORETYPE']}" if kernels["OPENBLAS_CORETYPE"]
              else "chosen by OpenBLAS for this CPU")
    print(f"kernels: NumPy's OpenBLAS {kernels['openblas_core'] or 'unknown'} ({chosen}); "
          f"torch {kernels['torch_cpu_capability']}")
    if kernels["openblas_core_avx512"] is False and "AVX512" in str(kernels["torch_cpu_capability"]):
        print("note: torch runs AVX-512 code while NumPy's OpenBLAS runs narrower kernels; every GEMM of convlab "
              "is about 1.8x slower than it could be here (--blas-core SkylakeX runs OpenBLAS's AVX-512 kernels)")
    print("ratios are convlab / torch NCHW (below 1: convlab is faster); CL = torch channels_last; "
          "GFLOP/s from the direct convolution's FLOPs; MiB = extra peak memory of one call")
    if args.quick:
        print("quick mode: a smoke run, the numbers mean little")
    print()
    print(format_report(report))
    met = sum(t["met"] for t in report["targets"])  # type: ignore[union-attr]
    print(f"\n{met} of {len(report['targets'])} target checks met; took {report['seconds']} s")
    share = report["other_processes_cpu_share"]
    if share is not None:
        print(f"other processes used {100 * share:.0f}% of the machine's CPU time during the run")
    disturbed = [f"{entry['name']} ({100 * entry['other_processes_cpu_share']:.0f}%)"
                 for entry in report["layers"]  # type: ignore[union-attr]
                 if (entry["other_processes_cpu_share"] or 0) > _BUSY_SHARE]
    if (load["before"] and load["before"][0] > _BUSY_LOAD_PER_CORE * (os.cpu_count() or 1)) or disturbed:
        print(f"convlab bench: warning: the machine was busy (load average {load['before']} before the run; "
              f"other processes used over {100 * _BUSY_SHARE:.0f}% of the CPU time during "
              f"{', '.join(disturbed) or 'no layer'}); the timings are unreliable, rerun on an idle machine",
              file=sys.stderr)
    for entry in report["layers"]:  # type: ignore[union-attr]
        for pass_, failed in entry["failures"].items():
            for impl, message in failed.items():
                print(f"convlab bench: warning: {entry['name']} {pass_}: {impl} failed: {message}", file=sys.stderr)
    worst = max((err for entry in report["layers"] for per_pass in entry["max_relative_error"].values()  # type: ignore
                 for err in per_pass.values()), default=0.0)
    if worst > 1e-3:
        print(f"convlab bench: warning: the implementations differ from torch by up to {worst:.2e} (relative)",
              file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
