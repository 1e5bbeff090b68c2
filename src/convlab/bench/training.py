"""The training benchmark: an epoch slice of convlab's NumPy engine, the torch engine, and torch DDP on 2 processes.

``convlab bench --suite train`` (or ``python -m convlab.bench.training``; issue 13,
"The training benchmark"). For each model (default: LeNet, batch 256 on
1x28x28, and ResNet-18 with the CIFAR stem, batch 128 on 3x32x32) three
columns are measured in one run, on the same weights and the same batches:

* ``numpy``: :class:`convlab.train.NumpyEngine` (``convlab train``'s engine:
  the forward, :class:`convlab.nn.CrossEntropyLoss` and its gradient,
  ``model.backward``, the finite check, :class:`convlab.optim.SGD`), with the
  first layer's input gradient switched off (:func:`skip_data_gradient`: torch
  does not compute it either, the data does not require a gradient);
* ``torch_1``: :class:`convlab.train.torch_engine.TorchEngine` (``--engine
  torch``: the :func:`~convlab.interop.torch.to_torch` mirror, autograd,
  ``F.cross_entropy``, ``torch.optim.SGD``) in this process;
* ``torch_2``: the same engine under ``DistributedDataParallel`` on 2
  processes (gloo, torchrun's environment, ``OMP_NUM_THREADS`` = threads // 2
  each, as ``convlab train --engine torch --nproc 2`` starts them): every rank
  receives the global batch and trains on ``batch[rank::2]``.

An *epoch slice*: ``steps`` optimizer steps on distinct random batches (the
batches are made in memory beforehand: no reader or augmentation is timed),
after two untimed steps. The first is the same-step check: both engines start
from the same weights and take a step on the same batch; their losses and the
largest difference of their updated weights are reported. The second measures
the peak memory. The numpy and torch_1 steps are interleaved (one step each,
the order swapped every step) so both see the same load; DDP runs afterwards in
its own processes while this one waits. Reported per column: examples per
second (global batch / the median step time; for DDP each step starts on a
barrier and takes as long as its slowest rank), examples per second of CPU
time (all threads; DDP: both ranks' CPU time) and the peak memory, with the
ratios numpy / torch_1 and torch_2 / torch_1 and the targets of issue 13:
numpy at least 0.8x torch_1's examples/s on LeNet and 0.6x on ResNet-18, peak
memory at most 2x torch_1's.

Peak memory. The extra resident memory of one step, the same method for every
column (:class:`.measure.PeakMemory`: ``VmHWM`` reset through
``/proc/self/clear_refs`` minus ``VmRSS`` before, after ``malloc_trim(0)``),
with the weights, the batch and the previous step's gradients resident before
it; convlab's activations cached by the previous forward are released first,
as torch frees its graph after ``backward``. DDP: the largest over the ranks;
the ranks' whole-process peak (``VmHWM``, the libraries included) is given
too. Where ``clear_refs`` is not writable, torch's figures are unavailable and
convlab's is the :mod:`tracemalloc` one.

Method. This process and the workers run with ``OPENBLAS_THREAD_TIMEOUT=1``,
``OMP_WAIT_POLICY=PASSIVE`` and the thread counts set before NumPy loads (the
command re-runs itself in a fresh interpreter when they are not set, as
``convlab bench`` does; see :mod:`.cli`). The machine's load (the load average,
and the share of the CPU time other processes used during each model,
:class:`.measure.OtherCpu` less this process and its workers) is recorded with
the figures: on a shared machine the ratios move with it, the CPU-time ratio
less than the wall-time one.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import measure
from .report import Table, _format

__all__ = ["COLUMNS", "MODELS", "STEPS", "Case", "format_report", "main", "make_batches", "make_case",
           "max_weight_difference", "run", "run_case", "run_ddp", "skip_data_gradient"]

#: The benchmarked models: zoo name -> (batch, examples/s target as a ratio of torch's). Issue 13.
MODELS: dict[str, tuple[int, float]] = {"lenet": (256, 0.8), "resnet18_cifar": (128, 0.6)}
#: Timed steps per model (about a minute or two each on a 2-core machine), and with ``--quick``.
STEPS: dict[str, int] = {"lenet": 100, "resnet18_cifar": 4}
QUICK_STEPS: dict[str, int] = {"lenet": 5, "resnet18_cifar": 1}
#: Peak memory target: convlab's at most this many times torch's.
MEMORY_LIMIT = 2.0
#: Learning rate of the SGD steps (small: the slice keeps training on random batches).
LEARNING_RATE = 0.01
#: The columns: the NumPy engine, the torch engine on 1 process, torch DDP on 2 processes.
COLUMNS = ("numpy", "torch_1", "torch_2")
DDP_PROCESSES = 2
_UNTIMED = 2  # the check step and the memory step
_DDP_TIMEOUT = 900.0  # seconds the DDP column may take before its workers are stopped


def skip_data_gradient(model) -> bool:
    """Switch off the input gradient of the layer that reads the data for good; True when there is one.

    (:class:`convlab.train.NumpyEngine` does the same for each step: :func:`convlab.train.engine.data_layer`.)
    """
    from ..train.engine import data_layer

    layer = data_layer(model)
    if layer is None:
        return False
    layer.needs_input_grad = False
    return True


def make_batches(model, batch: int, count: int, seed: int = 0, dtype: str = "float32") -> list[tuple[Any, Any]]:
    """``count`` random batches ``(x, y)`` for ``model`` (its ``input_size`` and ``num_classes``), from ``seed``.

    Every process that calls it with the same arguments gets the same batches (the DDP workers do).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(model.input_size)
    return [(rng.random(shape, dtype=np.dtype(dtype)), rng.integers(0, model.num_classes, batch))
            for _ in range(count)]


class Case(NamedTuple):
    """One model on both engines: ``convlab_step()`` / ``torch_step()`` train on each engine's next batch."""

    name: str
    batch: int
    target: float
    model: Any  # the NumPy engine's convlab model
    torch_model: Any  # the torch engine's module (on the CPU its arrays are a second convlab model's)
    numpy_engine: Any
    torch_engine: Any
    batches: list[tuple[Any, Any]]
    convlab_step: Callable[[], float]
    torch_step: Callable[[], float]
    release: Callable[[], None]  # drops convlab's cached activations (what torch frees after backward)


def make_case(name: str, batch: int | None = None, seed: int = 0, lr: float = LEARNING_RATE,
              dtype: str = "float32", count: int = 1) -> Case:
    """Build ``name`` (zoo) twice from ``seed``, a NumpyEngine on one and a TorchEngine on the other, ``count`` batches.

    Each engine steps through the batches in order (cycling), so the k-th step of both is on the same batch.
    """
    import numpy as np

    from .. import models
    from ..train.engine import NumpyEngine
    from ..train.torch_engine import TorchEngine

    default_batch, target = MODELS.get(name, (8, float("nan")))
    batch = default_batch if batch is None else batch
    model = models.create(name, rng=seed, dtype=np.dtype(dtype))
    twin = models.create(name, rng=seed, dtype=np.dtype(dtype))  # the same weights: TorchEngine shares its arrays
    skip_data_gradient(model)
    numpy_engine = NumpyEngine(model, optimizer="sgd", lr=lr)
    torch_engine = TorchEngine(twin, optimizer="sgd", lr=lr)
    batches = make_batches(model, batch, count, seed, dtype)
    done = {"numpy": 0, "torch": 0}

    def stepper(engine: Any, key: str) -> Callable[[], float]:
        def step() -> float:
            x, y = batches[done[key] % len(batches)]
            done[key] += 1
            result = engine.train_step(x, y)
            if not result.finite:
                raise FloatingPointError(f"convlab bench train: {name} on the {key} engine: the loss or a "
                                         f"gradient is not finite (loss {result.loss})")
            return result.loss
        return step

    def release() -> None:
        for module in model.modules():
            module._caches.clear()  # what the next forward would drop as it goes

    return Case(name, batch, target, model, torch_engine.module, numpy_engine, torch_engine, batches,
                stepper(numpy_engine, "numpy"), stepper(torch_engine, "torch"), release)


def max_weight_difference(case: Case) -> float:
    """Largest difference between the two engines' parameters and buffers, relative to the largest value.

    The torch side is read from the torch module's own ``state_dict``.
    """
    import numpy as np

    ours = case.model.state_dict()
    theirs = {k: v.detach().cpu().numpy() for k, v in case.torch_model.state_dict().items()}
    worst = 0.0
    for key, value in ours.items():
        if value.dtype.kind != "f":
            continue
        scale = max(float(np.abs(theirs[key]).max(initial=0.0)), 1e-30)
        worst = max(worst, float(np.abs(value - theirs[key]).max(initial=0.0)) / scale)
    return worst


class _OtherCpu(measure.OtherCpu):
    """:class:`.measure.OtherCpu` that also counts this process's finished children (the DDP workers) as its own."""

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        sample = measure.OtherCpu._sample()
        if sample is None:
            return None
        own = os.times()
        return sample[0], sample[1] + own.children_user + own.children_system, sample[2]


def _column(batch: int, seconds: Sequence[float], cpu: Sequence[float], peak: float | None,
            **extra: object) -> dict[str, object]:
    median, cpu_median = statistics.median(seconds), statistics.median(cpu)
    return {"examples_per_second": batch / median, "examples_per_cpu_second": batch / max(cpu_median, 1e-9),
            "ms": 1e3 * median, "min_ms": 1e3 * min(seconds), "cpu_ms": 1e3 * cpu_median, "steps": len(seconds),
            "peak_memory_mib": None if peak is None else peak / 2**20, **extra}


def run_case(case: Case, steps: int, memory: measure.PeakMemory) -> dict[str, object]:
    """The numpy and torch_1 columns: the check step, the memory step, ``steps`` interleaved timed steps."""
    loss_convlab, loss_torch = case.convlab_step(), case.torch_step()  # from the same weights, on the same batch
    weight_difference = max_weight_difference(case)
    case.release()
    if memory.proc:
        peak_numpy = memory.extra_peak(case.convlab_step, numpy_side=True)
    else:
        peak_numpy = measure.traced_peak(case.convlab_step)
    peak_torch = memory.extra_peak(case.torch_step, numpy_side=False) if memory.proc else None
    seconds: dict[str, list[float]] = {"numpy": [], "torch_1": []}
    cpu: dict[str, list[float]] = {"numpy": [], "torch_1": []}
    run_step = {"numpy": case.convlab_step, "torch_1": case.torch_step}
    gc.collect()
    for round_ in range(steps):
        for column in (("numpy", "torch_1") if round_ % 2 == 0 else ("torch_1", "numpy")):
            start = time.process_time()  # this process's CPU time, all its threads
            seconds[column].append(measure.timed(run_step[column]))
            cpu[column].append(time.process_time() - start)
    return {
        "loss": {"convlab": loss_convlab, "torch": loss_torch},
        "max_weight_difference": weight_difference,
        "numpy": _column(case.batch, seconds["numpy"], cpu["numpy"], peak_numpy,
                         memory_method="rss" if memory.proc else "tracemalloc"),
        "torch_1": _column(case.batch, seconds["torch_1"], cpu["torch_1"], peak_torch),
    }


# --------------------------------------------------------------------------- torch DDP on 2 processes


def _status_bytes(key: str) -> int | None:
    try:
        return measure.PeakMemory._status(key)
    except OSError:
        return None


def _ddp_worker(settings_path: str) -> int:
    """One rank of the DDP column (started by :func:`run_ddp` with torchrun's environment); writes its timings."""
    import datetime

    import numpy as np
    import torch
    import torch.distributed as dist

    from .. import models
    from .._files import atomic_writer
    from ..train.torch_engine import TorchEngine

    with open(settings_path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=_DDP_TIMEOUT))
    try:
        model = models.create(s["model"], rng=s["seed"], dtype=np.float32)
        engine = TorchEngine(model, optimizer="sgd", lr=s["lr"], distributed=True)
        batches = make_batches(model, s["batch"], _UNTIMED + s["steps"], s["seed"])
        memory = measure.PeakMemory()
        first = engine.train_step(*batches[0])  # the check step (and warm-up)
        dist.barrier()
        peak = memory.extra_peak(lambda: engine.train_step(*batches[1]), numpy_side=False) if memory.proc else None
        seconds, cpu = [], []
        for x, y in batches[_UNTIMED:]:
            dist.barrier()  # every rank starts the step together: a step lasts as long as its slowest rank
            start_cpu, start = time.process_time(), time.perf_counter()
            engine.train_step(x, y)
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        dist.barrier()
        record = {"rank": rank, "seconds": seconds, "cpu": cpu, "extra_peak": peak, "loss": first.loss,
                  "peak_rss": _status_bytes("VmHWM"), "threads": torch.get_num_threads()}
        with atomic_writer(os.path.join(s["folder"], f"rank{rank}.json"), text=True) as f:
            json.dump(record, f)
    finally:
        dist.destroy_process_group()
    return 0


def run_ddp(name: str, batch: int, steps: int, threads: int, seed: int = 0, lr: float = LEARNING_RATE,
            nproc: int = DDP_PROCESSES, timeout: float = _DDP_TIMEOUT) -> dict[str, object]:
    """The torch_2 column: ``nproc`` worker processes (torchrun's environment, gloo), their timings combined.

    A worker that fails stops the others; the error names the rank and ends with its stderr.
    """
    from ..train.distributed import _free_port

    per_rank_threads = max(1, threads // nproc)
    with tempfile.TemporaryDirectory(prefix="convlab-bench-ddp-") as folder:
        settings = os.path.join(folder, "settings.json")
        with open(settings, "w") as f:
            json.dump({"model": name, "batch": batch, "steps": steps, "seed": seed, "lr": lr, "folder": folder,
                       "threads": per_rank_threads}, f)
        port = _free_port()
        procs, logs = [], []
        try:
            for rank in range(nproc):
                env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                           LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                           OMP_NUM_THREADS=str(per_rank_threads), OPENBLAS_NUM_THREADS=str(per_rank_threads),
                           OPENBLAS_THREAD_TIMEOUT="1", OMP_WAIT_POLICY="PASSIVE")
                log = open(os.path.join(folder, f"rank{rank}.stderr"), "wb")
                logs.append(log)
                procs.append(subprocess.Popen([sys.executable, "-m", "convlab.bench.training", "--ddp-worker",
                                               settings], env=env, stdout=subprocess.DEVNULL, stderr=log))
            deadline = time.monotonic() + timeout
            while any(p.poll() is None for p in procs):
                failed = [p for p in procs if p.poll() not in (None, 0)]
                if failed or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            for log in logs:
                log.close()
        codes = [p.returncode for p in procs]
        if any(code != 0 for code in codes):
            rank = next((r for r, code in enumerate(codes) if code not in (0, -9)), 0)
            with open(os.path.join(folder, f"rank{rank}.stderr"), errors="replace") as f:
                tail = "\n".join(f.read().rstrip().splitlines()[-12:])
            timed_out = all(code in (0, -9) for code in codes)
            what = f"took over {timeout:g} s" if timed_out else f"rank {rank} failed (exit statuses {codes})"
            raise RuntimeError(f"convlab bench train: the DDP column of {name} {what}:\n{tail}")
        records = []
        for rank in range(nproc):
            with open(os.path.join(folder, f"rank{rank}.json")) as f:
                records.append(json.load(f))
    seconds = [max(r["seconds"][i] for r in records) for i in range(steps)]  # the slowest rank's step
    cpu = [sum(r["cpu"][i] for r in records) for i in range(steps)]  # both ranks' CPU time
    peaks = [r["extra_peak"] for r in records]
    rss = [r["peak_rss"] for r in records]
    return _column(batch, seconds, cpu, None if None in peaks else max(peaks), processes=nproc,
                   threads_per_process=per_rank_threads, loss=records[0]["loss"],
                   process_peak_rss_mib=None if None in rss else max(rss) / 2**20)


# --------------------------------------------------------------------------- the run


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def run(names: Sequence[str], steps: int | dict[str, int] | None = None, threads: int = 2, batch: int | None = None,
        progress: Callable[[str], None] | None = None, quick: bool = False) -> dict[str, object]:
    """Measure every model of ``names`` (see the module docstring); the results as a dict (the JSON).

    ``steps``: timed steps for every model, or per model (default :data:`STEPS`, :data:`QUICK_STEPS` with
    ``quick``); ``batch``: the global batch of every model (default: each model's own).
    """
    import numpy as np
    import scipy
    import torch

    torch.set_num_threads(threads)
    memory = measure.PeakMemory()
    load_before = measure.load_average()
    started, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M")
    whole = _OtherCpu()
    results = []
    for name in names:
        count = steps if isinstance(steps, int) else (steps or (QUICK_STEPS if quick else STEPS)).get(name, 3)
        other = _OtherCpu()
        case = make_case(name, batch, count=_UNTIMED + count)
        entry = {"model": name, "batch": case.batch, "input_size": list(case.model.input_size), "steps": count,
                 **run_case(case, count, memory)}
        del case
        gc.collect()
        entry["torch_2"] = run_ddp(name, entry["batch"], count, threads)
        rate = {column: entry[column]["examples_per_second"] for column in COLUMNS}
        cpu_rate = {column: entry[column]["examples_per_cpu_second"] for column in COLUMNS}
        target = MODELS.get(name, (0, float("nan")))[1]
        entry["ratios"] = {
            "numpy_torch_1": rate["numpy"] / rate["torch_1"],
            "torch_2_torch_1": rate["torch_2"] / rate["torch_1"],
            "numpy_torch_1_cpu": cpu_rate["numpy"] / cpu_rate["torch_1"],
            "memory_numpy_torch_1": _ratio(entry["numpy"]["peak_memory_mib"], entry["torch_1"]["peak_memory_mib"]),
            "memory_torch_2_torch_1": _ratio(entry["torch_2"]["peak_memory_mib"],
                                             entry["torch_1"]["peak_memory_mib"]),
        }
        memory_ratio = entry["ratios"]["memory_numpy_torch_1"]
        entry["targets"] = {
            "examples_per_second": target,
            "met": None if math.isnan(target) else entry["ratios"]["numpy_torch_1"] >= target,
            "memory": MEMORY_LIMIT,
            "memory_met": None if memory_ratio is None else memory_ratio <= MEMORY_LIMIT,
        }
        entry["other_processes_cpu_share"] = other.share()
        results.append(entry)
        if progress is not None:
            progress(f"{name} ({time.perf_counter() - started:.0f} s)")
    return {
        "suite": "train",
        "date": date,
        "machine": measure.machine(),
        "load_average": {"before": load_before, "after": measure.load_average()},
        "other_processes_cpu_share": whole.share(),
        "threads": threads,
        "ddp": {"processes": DDP_PROCESSES, "threads_per_process": max(1, threads // DDP_PROCESSES),
                "backend": "gloo"},
        "untimed_steps": _UNTIMED,
        "dtype": "float32",
        "learning_rate": LEARNING_RATE,
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "kernels": measure.kernels(),
        "memory_method": memory.method,
        "seconds": round(time.perf_counter() - started, 1),
        "models": results,
    }


# --------------------------------------------------------------------------- the report


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT MET")


def header_lines(report: dict[str, object]) -> list[str]:
    """What ran, on what, under which load."""
    machine, load, versions, kernels = report["machine"], report["load_average"], report["versions"], \
        report["kernels"]
    share = report["other_processes_cpu_share"]
    ddp = report["ddp"]
    return [
        f"convlab bench: suite train, an epoch slice per model (after {report['untimed_steps']} untimed steps: the "
        f"same-step check and the memory step); float32, SGD lr {report['learning_rate']:g}; numpy and torch_1: "
        f"{report['threads']} threads each in one process, steps interleaved; torch_2: DDP on {ddp['processes']} "
        f"processes ({ddp['backend']}, {ddp['threads_per_process']} thread(s) each); {report['date']}",
        f"CPU: {machine['cpu']} ({machine['cores']} cores); NumPy {versions['numpy']} (OpenBLAS "
        f"{kernels['openblas_core'] or 'unknown'}), SciPy {versions['scipy']}, torch {versions['torch']} "
        f"({kernels['torch_cpu_capability']}), Python {versions['python']}",
        f"load average before {load['before']}, after {load['after']}; other processes used "
        f"{'an unknown share' if share is None else f'{100 * share:.0f}%'} of the CPU time during the run "
        f"(took {report['seconds']} s)",
    ]


def report_table(report: dict[str, object]) -> Table:
    """The models' rows: the three columns' examples/s and peak memory, the ratios and the targets."""
    header = ("model", "batch", "steps", "numpy ex/s", "torch_1 ex/s", "torch_2 ex/s", "numpy/torch_1", "target",
              "torch_2/torch_1", "numpy/torch_1 CPU", "numpy MiB", "torch_1 MiB", "torch_2 MiB", "memory ratio",
              "memory target", "loss numpy", "loss torch", "weights after 1 step", "others' CPU")
    rows = []
    for e in report["models"]:  # type: ignore[union-attr]
        ratios, targets = e["ratios"], e["targets"]
        share = e["other_processes_cpu_share"]
        rows.append((
            e["model"], str(e["batch"]), str(e["steps"]),
            *(_rate(e[column]["examples_per_second"]) for column in COLUMNS),
            _r(ratios["numpy_torch_1"]), f">= {targets['examples_per_second']:g} {_verdict(targets['met'])}",
            _r(ratios["torch_2_torch_1"]), _r(ratios["numpy_torch_1_cpu"]),
            *(_mib(e[column]["peak_memory_mib"]) for column in COLUMNS),
            _r(ratios["memory_numpy_torch_1"]), f"<= {targets['memory']:g} {_verdict(targets['memory_met'])}",
            f"{e['loss']['convlab']:.6f}", f"{e['loss']['torch']:.6f}", f"{e['max_weight_difference']:.1e}",
            "-" if share is None else f"{100 * share:.0f}%",
        ))
    return Table(None, header, rows, left=1, key=1)


FOOTNOTE = ("ex/s: examples per second (global batch / median step time); numpy/torch_1 above 1: the NumPy engine "
            "is faster. CPU: the same ratio per second of CPU time (all threads), less sensitive to other processes. "
            "MiB: extra peak memory of one step (torch_2: the larger rank). weights after 1 step: largest difference "
            "of the two engines' weights after one step from the same weights, relative to the largest weight.")


def format_report(report: dict[str, object]) -> str:
    """The header lines, the table (Markdown) and its footnote."""
    return "\n".join([*header_lines(report), "", _format([report_table(report)]), "", FOOTNOTE])


# --------------------------------------------------------------------------- the command


def _positive(parser: argparse.ArgumentParser, option: str, value: int | None) -> None:
    if value is not None and value < 1:
        parser.error(f"{option} (={value}) must be >= 1")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convlab.bench.training`` (and ``convlab bench --suite train``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--ddp-worker"] and len(argv) == 2:
        return _ddp_worker(argv[1])
    from .cli import _OneLineParser

    parser = _OneLineParser(prog="convlab bench --suite train",
                            description="An epoch slice of convlab's NumPy engine, the torch engine and torch DDP "
                                        "on 2 processes.")
    parser.add_argument("--models", default=",".join(MODELS), metavar="NAMES",
                        help=f"comma list of zoo models (default {','.join(MODELS)}, at batch "
                             f"{', '.join(str(b) for b, _ in MODELS.values())})")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="global batch for every model (default: each model's own)")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help=f"timed steps per model (default {STEPS}; with --quick {QUICK_STEPS})")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, metavar="T",
                        help="threads of each of the first two columns; DDP gives each of its processes T // 2 "
                             "(default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--plain", action="store_true", help="Markdown even on a terminal")
    args = parser.parse_args(argv)
    from .. import models
    from .cli import _check_json_path, _print, _rich_console, rerun_environment, save_json

    names = [n.strip().lower() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.list()]
    if unknown or not names:
        parser.error(f"--models (={args.models!r}): unknown model(s) {unknown}; known: {models.list()}")
    for option, value in (("--steps", args.steps), ("--threads", args.threads), ("--batch", args.batch)):
        _positive(parser, option, value)
    if args.batch is not None and args.batch < DDP_PROCESSES:
        parser.error(f"--batch (={args.batch}) must be >= {DDP_PROCESSES}: each of the {DDP_PROCESSES} DDP "
                     f"processes trains on its share of the batch")
    _check_json_path(parser, args.json)
    env = rerun_environment(args.threads, None)
    if env is not None:
        return subprocess.call([sys.executable, "-m", "convlab.bench.training", *argv], env=env)
    try:
        import torch  # noqa: F401
    except ImportError:
        print('convlab bench: error: --suite train needs torch (pip install "convlab[torch]")', file=sys.stderr)
        return 2

    def line(message: str) -> None:
        print(f"convlab bench train: done {message}", file=sys.stderr, flush=True)

    report = run(names, args.steps, args.threads, args.batch, line, quick=args.quick)
    console = _rich_console(args.plain)
    if console is None:
        print(format_report(report))
    else:
        from .report import print_rich

        for text in header_lines(report):
            _print(console, text)
        print_rich(console, [report_table(report)])
        _print(console)
        _print(console, FOOTNOTE)
    return save_json(args.json, report)


if __name__ == "__main__":
    sys.exit(main())
