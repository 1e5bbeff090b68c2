"""The training benchmark: one training step of convlab's NumPy engine against one of PyTorch, same model and batch.

``python -m convlab.bench.training`` (issue 11, "Speed and memory"). For each
model (default: LeNet, batch 256 on 1x28x28, and ResNet-18 with the CIFAR stem,
batch 128 on 3x32x32) the same initial weights run, on the same batch, one
training step on each engine:

* convlab: ``model.zero_grad()``, ``logits = model(x)``, the cross-entropy
  loss and its gradient with respect to the logits, ``model.backward(grad)``
  and the SGD update ``p.data -= lr * p.grad``. The first layer's input is the
  data, so its input gradient is not computed (``needs_input_grad = False`` on
  the first layer, see :func:`skip_data_gradient`);
* torch: the :func:`convlab.interop.torch.to_torch` mirror in training mode,
  ``optimizer.zero_grad()``, ``F.cross_entropy(model(x), y).backward()``,
  ``torch.optim.SGD.step()`` (the input does not require a gradient).

Until ``convlab.nn.CrossEntropyLoss`` and ``convlab.optim.SGD`` exist, the loss
and its gradient are computed here: ``loss = mean_i(logsumexp(z_i) - z_i[y_i])``
and ``dloss/dz = (softmax(z) - onehot(y)) / N`` (the formulas of torch's
``cross_entropy`` with ``reduction='mean'``); the update is plain SGD without
momentum, as ``torch.optim.SGD(lr=lr)`` does it.

Method. Both engines run in one process with the same thread count (2 by
default: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
``torch.set_num_threads``) and ``OPENBLAS_THREAD_TIMEOUT=1``,
``OMP_WAIT_POLICY=PASSIVE`` set before NumPy loads (the command re-runs itself
in a fresh interpreter when they are not set, as ``convlab bench`` does; see
:mod:`.cli`). Per model: one checked step on each engine from the same weights
(the losses must agree; the largest difference of the updated weights is
reported), a warm-up step each, the peak memory of one step each, then
``repeat`` interleaved rounds (convlab then torch, the order swapped every
round) of one step each; reported are the medians as examples per second and
their ratio convlab / torch (above 1: convlab is faster).

Peak memory. ``rss``: the extra resident memory of one step, the same method
for both engines (:class:`.measure.PeakMemory`: ``VmHWM`` reset through
``/proc/self/clear_refs`` minus ``VmRSS`` before, after ``malloc_trim(0)``),
with the weights, the batch and the previous step's gradients resident before
it; convlab's activations cached by the previous forward are released first,
as torch frees its graph after ``backward``. ``tracemalloc``: convlab's NumPy
allocations live at once during the step (:func:`.measure.traced_peak`). Where
``clear_refs`` is not writable, torch's figure is unavailable and convlab's is
the tracemalloc one.

The machine's load (the load average and the share of CPU time other processes
used during each model, :class:`.measure.OtherCpu`) is printed with the figures:
on a shared machine the ratios move with it. The table also gives the ratio of
examples per second of CPU time (``time.process_time`` around each step, all the
process's threads): waiting for a core that another process holds does not count,
so it moves less with the load than the wall-time ratio (spinning threads still count).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import measure
from .cli import _CHILD_MARK, _environment_ready
from .report import _markdown

__all__ = ["MODELS", "Case", "cross_entropy", "main", "make_case", "run", "skip_data_gradient"]

#: The benchmarked models: zoo name -> (batch, examples/s target as a ratio of torch's). Issue 11.
MODELS: dict[str, tuple[int, float]] = {"lenet": (256, 0.8), "resnet18_cifar": (128, 0.6)}
#: Peak memory target: convlab's at most this many times torch's.
MEMORY_LIMIT = 2.0
#: Learning rate of the SGD steps (small: the timed steps keep training on one batch).
LEARNING_RATE = 0.01


def cross_entropy(logits, target):
    """``(loss, dloss/dlogits)`` of torch's ``cross_entropy(logits, target, reduction='mean')``.

    ``loss = mean_i(logsumexp(z_i) - z_i[y_i])`` and ``dz = (softmax(z) - onehot(y)) / N``
    (the gradient of the log-softmax, as ``torch.nn.functional.log_softmax``'s backward),
    computed in the logits' dtype with the maximum subtracted first.
    """
    import numpy as np

    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)  # (N, 1)
    rows = np.arange(n)
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, target])
    grad = exp / total  # softmax
    grad[rows, target] -= 1
    grad /= n
    return loss, grad


def skip_data_gradient(model) -> bool:
    """Switch off the input gradient of the layer that reads the data; True when there is one to switch off.

    The first layer of a zoo model (a ``Sequential``: its first child, descending into nested
    ``Sequential`` containers) reads the batch. Convolutions have ``needs_input_grad``
    (:mod:`convlab.nn.conv`): set to False, their backward computes only the parameter
    gradients and returns None, which ends ``model.backward``.
    """
    from ..nn import Sequential

    layer = model
    while isinstance(layer, Sequential) and len(layer):
        layer = layer[0]
    if hasattr(layer, "needs_input_grad"):
        layer.needs_input_grad = False
        return True
    return False


class Case(NamedTuple):
    """One model ready to step on both engines: ``convlab_step()`` / ``torch_step()`` return the loss."""

    name: str
    batch: int
    target: float
    model: Any  # the convlab model
    torch_model: Any
    convlab_step: Callable[[], float]
    torch_step: Callable[[], float]
    release: Callable[[], None]  # drops convlab's cached activations (what torch frees after backward)


def make_case(name: str, batch: int | None = None, seed: int = 0, lr: float = LEARNING_RATE,
              dtype: str = "float32") -> Case:
    """Build the model ``name`` (zoo), its torch mirror with the same weights, a random batch, and the steps."""
    import numpy as np
    import torch

    from .. import models
    from ..interop.torch import to_torch

    default_batch, target = MODELS.get(name, (8, float("nan")))
    batch = default_batch if batch is None else batch
    model = models.create(name, rng=seed, dtype=np.dtype(dtype))
    model.train()
    mirror = to_torch(model)
    mirror.train()
    skip_data_gradient(model)
    rng = np.random.default_rng(seed)
    x = rng.random((batch,) + tuple(model.input_size), dtype=np.dtype(dtype))
    y = rng.integers(0, model.num_classes, batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.SGD(mirror.parameters(), lr=lr)
    params = list(model.parameters())

    def convlab_step() -> float:
        model.zero_grad()
        logits = model(x)
        loss, grad = cross_entropy(logits, y)
        model.backward(grad)
        for p in params:
            p.data -= lr * p.grad
        return float(loss)

    def torch_step() -> float:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(mirror(tx), ty)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def release() -> None:
        for module in model.modules():
            module._caches.clear()  # what the next forward would drop as it goes

    return Case(name, batch, target, model, mirror, convlab_step, torch_step, release)


def max_weight_difference(case: Case) -> float:
    """Largest difference between the two engines' parameters, relative to the largest parameter."""
    import numpy as np

    ours = case.model.state_dict()
    theirs = {k: v.detach().numpy() for k, v in case.torch_model.state_dict().items()}
    worst = 0.0
    for key, value in ours.items():
        if value.dtype.kind != "f":
            continue
        scale = max(float(np.abs(theirs[key]).max(initial=0.0)), 1e-30)
        worst = max(worst, float(np.abs(value - theirs[key]).max(initial=0.0)) / scale)
    return worst


def _median_rate(batch: int, seconds: Sequence[float]) -> float:
    return batch / statistics.median(seconds)


def run_case(case: Case, repeat: int, memory: measure.PeakMemory) -> dict[str, object]:
    """Check, warm up, measure memory, then time ``repeat`` interleaved rounds (module docstring)."""
    other = measure.OtherCpu()
    loss_convlab, loss_torch = case.convlab_step(), case.torch_step()  # from the same weights and batch
    weight_difference = max_weight_difference(case)
    case.convlab_step()
    case.torch_step()  # warm-up (oneDNN's primitives, numba's compiled kernels, OpenBLAS's buffers)
    case.release()
    rss_convlab = memory.extra_peak(case.convlab_step, numpy_side=True) if memory.proc else None
    case.release()
    traced_convlab = measure.traced_peak(case.convlab_step)
    rss_torch = memory.extra_peak(case.torch_step, numpy_side=False) if memory.proc else None
    seconds: dict[str, list[float]] = {"convlab": [], "torch": []}
    cpu: dict[str, list[float]] = {"convlab": [], "torch": []}
    steps = {"convlab": case.convlab_step, "torch": case.torch_step}
    gc.collect()
    for round_ in range(repeat):
        order = ("convlab", "torch") if round_ % 2 == 0 else ("torch", "convlab")
        for engine in order:
            start = time.process_time()  # this process's CPU time, all its threads
            seconds[engine].append(measure.timed(steps[engine]))
            cpu[engine].append(time.process_time() - start)
    rate = {engine: _median_rate(case.batch, values) for engine, values in seconds.items()}
    cpu_rate = {engine: _median_rate(case.batch, values) for engine, values in cpu.items()}
    peak_convlab = rss_convlab if rss_convlab is not None else traced_convlab
    memory_ratio = peak_convlab / rss_torch if rss_torch else None
    ratio = rate["convlab"] / rate["torch"]
    return {
        "model": case.name,
        "batch": case.batch,
        "input_size": list(case.model.input_size),
        "loss": {"convlab": loss_convlab, "torch": loss_torch},
        "max_weight_difference": weight_difference,
        "ms": {engine: 1e3 * statistics.median(values) for engine, values in seconds.items()},
        "min_ms": {engine: 1e3 * min(values) for engine, values in seconds.items()},
        "examples_per_second": rate,
        "ratio": ratio,
        "cpu_ms": {engine: 1e3 * statistics.median(values) for engine, values in cpu.items()},
        "examples_per_cpu_second": cpu_rate,
        "cpu_ratio": cpu_rate["convlab"] / cpu_rate["torch"],
        "target": case.target,
        "met": ratio >= case.target if not math.isnan(case.target) else None,
        "peak_memory_mib": {"convlab_rss": None if rss_convlab is None else rss_convlab / 2**20,
                            "convlab_tracemalloc": traced_convlab / 2**20,
                            "torch_rss": None if rss_torch is None else rss_torch / 2**20},
        "memory_ratio": memory_ratio,
        "memory_met": None if memory_ratio is None else memory_ratio <= MEMORY_LIMIT,
        "other_processes_cpu_share": other.share(),
    }


def run(names: Sequence[str], repeat: int = 7, threads: int = 2, batch: int | None = None,
        progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Measure every model of ``names`` (see the module docstring); the results as a dict (the JSON)."""
    import numpy as np
    import scipy
    import torch

    torch.set_num_threads(threads)
    memory = measure.PeakMemory()
    load_before = measure.load_average()
    started, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M")
    whole = measure.OtherCpu()
    results = []
    for name in names:
        case = make_case(name, batch)
        results.append(run_case(case, repeat, memory))
        del case
        gc.collect()
        if progress is not None:
            progress(f"{name} ({time.perf_counter() - started:.0f} s)")
    return {
        "date": date,
        "machine": measure.machine(),
        "load_average": {"before": load_before, "after": measure.load_average()},
        "other_processes_cpu_share": whole.share(),
        "threads": threads,
        "repeat": repeat,
        "dtype": "float32",
        "learning_rate": LEARNING_RATE,
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "kernels": measure.kernels(),
        "memory_method": memory.method,
        "seconds": round(time.perf_counter() - started, 1),
        "models": results,
    }


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_report(report: dict[str, object]) -> str:
    """The header lines and the table, in Markdown."""
    machine, load = report["machine"], report["load_average"]
    versions = report["versions"]
    kernels = report["kernels"]
    share = report["other_processes_cpu_share"]
    lines = [
        f"convlab training step (forward, cross-entropy gradient, backward, SGD update) against torch; float32, "
        f"{report['threads']} threads each, median of {report['repeat']} interleaved steps; {report['date']}",
        f"CPU: {machine['cpu']} ({machine['cores']} cores); NumPy {versions['numpy']} (OpenBLAS "
        f"{kernels['openblas_core'] or 'unknown'}), SciPy {versions['scipy']}, torch {versions['torch']} "
        f"({kernels['torch_cpu_capability']}), Python {versions['python']}",
        f"load average before {load['before']}, after {load['after']}; other processes used "
        f"{'an unknown share' if share is None else f'{100 * share:.0f}%'} of the CPU time during the run",
        "",
    ]
    header = ("model", "batch", "convlab ex/s", "torch ex/s", "convlab/torch", "target", "CPU-time ratio",
              "convlab MiB", "convlab MiB (tracemalloc)", "torch MiB", "memory ratio", "target ", "loss convlab",
              "loss torch", "weights after 1 step", "others' CPU")
    rows = []
    for entry in report["models"]:
        rate, peak = entry["examples_per_second"], entry["peak_memory_mib"]
        verdict = "-" if entry["met"] is None else ("met" if entry["met"] else "NOT MET")
        memory_verdict = "-" if entry["memory_met"] is None else ("met" if entry["memory_met"] else "NOT MET")
        share = entry["other_processes_cpu_share"]
        rows.append((
            entry["model"], str(entry["batch"]), f"{rate['convlab']:,.0f}", f"{rate['torch']:,.0f}",
            f"{entry['ratio']:.2f}", f">= {entry['target']:g} {verdict}", f"{entry['cpu_ratio']:.2f}",
            _mib(peak["convlab_rss"]),
            _mib(peak["convlab_tracemalloc"]), _mib(peak["torch_rss"]),
            "-" if entry["memory_ratio"] is None else f"{entry['memory_ratio']:.2f}",
            f"<= {MEMORY_LIMIT:g} {memory_verdict}", f"{entry['loss']['convlab']:.6f}",
            f"{entry['loss']['torch']:.6f}", f"{entry['max_weight_difference']:.1e}",
            "-" if share is None else f"{100 * share:.0f}%",
        ))
    lines.append(_markdown(header, rows, left=1))
    lines += ["", f"ex/s: examples per second (batch / median step time); convlab/torch above 1: convlab faster. "
                  f"CPU-time ratio: the same ratio from the process's CPU time per step (all threads), less "
                  f"sensitive to other processes than wall time on a busy machine. "
                  f"MiB: extra peak memory of one step ({report['memory_method']}); tracemalloc: convlab's NumPy "
                  f"allocations. weights after 1 step: largest difference of the two engines' parameters after "
                  f"one step from the same weights, relative to the largest parameter."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convlab.bench.training``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m convlab.bench.training",
                                     description="One training step of convlab's NumPy engine against torch.")
    parser.add_argument("--models", default=",".join(MODELS), metavar="NAMES",
                        help=f"comma list of zoo models (default {','.join(MODELS)}, at batch "
                             f"{', '.join(str(b) for b, _ in MODELS.values())})")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="batch size for every model (default: each model's own)")
    parser.add_argument("--repeat", type=int, default=7, metavar="N", help="timed rounds (default 7)")
    parser.add_argument("--threads", type=int, default=2, metavar="T", help="threads for both engines (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    from .. import models
    from .cli import _check_json_path, _write_json

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.list()]
    if unknown or not names:
        parser.error(f"--models (={args.models!r}): unknown model(s) {unknown}; known: {models.list()}")
    for option, value in (("--repeat", args.repeat), ("--threads", args.threads), ("--batch", args.batch)):
        if value is not None and value < 1:
            parser.error(f"{option} (={value}) must be >= 1")
    _check_json_path(parser, args.json)
    if not _environment_ready(args.threads, None):
        if os.environ.get(_CHILD_MARK):
            print("convlab bench: warning: could not set the OpenBLAS environment; torch timings may be unfair",
                  file=sys.stderr)
        else:
            env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="1", OPENBLAS_NUM_THREADS=str(args.threads),
                       OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE", **{_CHILD_MARK: "1"})
            return subprocess.call([sys.executable, "-m", "convlab.bench.training", *argv], env=env)

    def line(message: str) -> None:
        print(f"convlab bench training: done {message}", file=sys.stderr, flush=True)

    report = run(names, args.repeat, args.threads, args.batch, line)
    print(format_report(report))
    if args.json is not None:
        _write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
