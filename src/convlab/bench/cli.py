"""The command: ``convlab bench`` (and ``python -m convlab.bench``): options, the fair environment, printing.

Fairness: OpenBLAS worker threads busy-wait after each NumPy BLAS call and slow
the next torch call three- to four-fold. So the run sets
``OPENBLAS_THREAD_TIMEOUT=1`` and the same thread count for both libraries
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
The other way round, torch's OpenMP worker threads spin after each torch call
and slowed the NumPy call that followed by up to 2x (a 1x1 layer: 13.2 ms
against 6.2 ms); ``OMP_WAIT_POLICY=PASSIVE`` puts them to sleep instead, which
left torch's own times within the run-to-run noise (4.00 against 3.99 ms on
the same layer). OpenBLAS reads these when NumPy is loaded, and importing
:mod:`convlab` loads NumPy, so when they are not already set :func:`main`
re-runs the benchmark in a fresh interpreter (``python -m convlab.bench ...``)
with them set.

Instruction sets: torch's oneDNN picks its own (``AVX512`` on the development
machine); NumPy's OpenBLAS picks its kernels at load time, unless
``OPENBLAS_CORETYPE`` names them. The run prints both (JSON ``kernels``), and
notes when OpenBLAS runs narrower vectors than torch: on the development
machine the environment set ``OPENBLAS_CORETYPE=Haswell`` (AVX2), which halves
NumPy's GEMM rate (230 against 420 GFLOP/s for a large ``sgemm``).
``--blas-core SkylakeX`` runs the same benchmark on OpenBLAS's AVX-512 kernels.

Output: on a terminal, with Rich installed (the extra ``cli``), the tables are
Rich tables that fit the terminal's width and a progress bar follows the run;
otherwise (a pipe, a file, ``--plain``) Markdown tables and one line per layer
on stderr. ``--json`` writes the same results either way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from .report import analysis_table, format_analysis, format_report, print_rich, report_tables
from .suites import BY_NAME, DEFAULT_SUITE, LAYERS, SUITE_ALIASES, SUITES, Layer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DESCRIPTION", "OPENBLAS_CORES", "add_arguments", "machine_verdict", "main"]

DESCRIPTION = "The project's benchmark: convlab against PyTorch and SciPy on real layer shapes."

_CHILD_MARK = "CONVLAB_BENCH_CHILD"
TRAIN_SUITE = "train"  # --suite train: convlab.bench.training (models, not layers)
_BUSY_SHARE = 0.1  # other processes using over 10% of the CPU time during the run or a layer: busy
_BUSY_LOAD_PER_CORE = 0.6  # only where that share cannot be measured: a 1-minute load average above this per core
_MEMORY_FACTOR = 4  # the run holds about this many times a layer's input, output and weight (see _check_batch)

#: The core names OpenBLAS's ``OPENBLAS_CORETYPE`` accepts (compared case-insensitively), from the ``corename``
#: tables of OpenBLAS's driver/others/dynamic.c (x86-64) and dynamic_arm64.c (AArch64). A name it does not know
#: is ignored silently (OpenBLAS picks its kernels for the CPU), so the run would not be what was asked for.
OPENBLAS_CORES = {
    "x86_64": ("Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
               "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge", "Bobcat",
               "Bulldozer", "Piledriver", "Haswell", "Steamroller", "Excavator", "Zen", "SkylakeX", "Cooperlake",
               "SapphireRapids"),
    "aarch64": ("armv8", "cortexa53", "cortexa55", "cortexa57", "cortexa72", "cortexa73", "cortexa510",
                "cortexa710", "cortexx1", "cortexx2", "neoversen1", "neoversen2", "neoversev1", "thunderx",
                "thunderx2t99", "thunderx3t110", "tsv110", "emag8180", "falkor", "vortex", "a64fx", "armv8sve",
                "ft2000"),
}
_MACHINE_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


def _suite_name(text: str) -> str:
    return SUITE_ALIASES.get(text, text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``convlab bench`` and ``python -m convlab.bench``)."""
    parser.add_argument("--suite", type=_suite_name, choices=(*SUITES, TRAIN_SUITE), default=None,
                        help=f"the layers to run (default {DEFAULT_SUITE}: all {len(LAYERS)} layers of real "
                             f"networks; 'quick' with --quick); '{TRAIN_SUITE}': training epoch slices of the "
                             f"NumPy engine, the torch engine and torch DDP on 2 processes (convlab.bench.training)")
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
    parser.add_argument("--analysis", action="store_true",
                        help="measure the analysis instead (with --suite or --layers: as well): wall time and "
                             "peak memory of what `convlab summary MODEL` computes, for every zoo model at its "
                             "default input, against 0.5 s and 100 MB")
    parser.add_argument("--models", default=None, metavar="NAMES",
                        help="comma list of zoo models for --analysis (default: all of convlab.models.list())")
    parser.add_argument("--tuned", action="store_true",
                        help="also report auto/fastest after tuning: every primitive call is measured a second "
                             "time, and what tuning keeps from the first measurement (the fastest median, unless "
                             "the cost model's choice is within 5%% of it) is judged by the second")
    parser.add_argument("--plain", action="store_true",
                        help="Markdown tables and plain progress lines even on a terminal (the default when the "
                             "output is a pipe or a file, or Rich is not installed)")


# --------------------------------------------------------------------------- choices


def _select(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, tuple[Layer, ...]]:
    if args.layers is not None:
        wanted = [n.strip() for n in args.layers.split(",") if n.strip()]
        if not wanted:
            parser.error(f"--layers (={args.layers!r}) names no layer: give a comma list of layer names "
                         f"(convlab bench --list shows them), or leave --layers out to run --suite")
        unknown = [n for n in wanted if n not in BY_NAME]
        if unknown:
            parser.error(f"--layers: unknown layer(s) {unknown} (convlab bench --list shows them); "
                         f"known: {list(BY_NAME)}")
        return "custom", tuple(BY_NAME[n] for n in wanted)
    suite = args.suite or ("quick" if args.quick else DEFAULT_SUITE)
    return suite, tuple(BY_NAME[n] for n in SUITES[suite])


def _blas_core(parser: argparse.ArgumentParser, text: str | None) -> str | None:
    """``--blas-core`` as OpenBLAS spells it (case-insensitive), or a usage error listing the names."""
    if text is None:
        return None
    import platform

    arch = platform.machine().lower()
    arch = _MACHINE_ALIASES.get(arch, arch)
    names = OPENBLAS_CORES.get(arch) or tuple(n for cores in OPENBLAS_CORES.values() for n in cores)
    by_lower = {name.lower(): name for name in names}
    if text.lower() not in by_lower:
        parser.error(f"--blas-core (={text!r}) must be an OpenBLAS core name (what OPENBLAS_CORETYPE accepts, "
                     f"case-insensitive) for this machine ({arch}): {', '.join(names)}")
    return by_lower[text.lower()]


def _check_json_path(parser: argparse.ArgumentParser, path: str | None) -> None:
    """Refuse, before any work, a ``--json`` path the results could not be written to."""
    if path is None:
        return
    import tempfile

    if not path.strip():
        parser.error(f"--json (={path!r}) must name a file")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        what = "is a directory" if os.path.isdir(path) else "ends with a path separator (a folder)"
        parser.error(f"--json (={path!r}) {what}; name a file, e.g. {os.path.join(path, 'bench.json')}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        parser.error(f"--json (={path!r}): the folder {folder!r} does not exist; create it first")
    if not os.path.isdir(folder):
        parser.error(f"--json (={path!r}): {folder!r} is not a folder")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        parser.error(f"--json (={path!r}): the file exists and is not writable")
    try:  # the way the results will be written: a temporary file in the same folder, then os.replace
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"):
            pass
    except OSError as exc:
        parser.error(f"--json (={path!r}): cannot write in the folder {folder!r} ({exc.strerror or exc})")


def _write_json(path: str, report: dict) -> None:
    """Write ``report`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    An existing file is replaced (it is the output asked for) and keeps its permissions; an
    interrupted or failed write leaves it as it was and no temporary file behind.
    """
    from .._files import atomic_writer

    with atomic_writer(path, text=True) as f:
        json.dump(report, f, indent=2)
        f.write("\n")


def _largest_batch(layers: Sequence[Layer], budget: int, available: int | None) -> int:
    """The largest batch whose every layer fits (a lower bound: the per-sample sizes, layer caps ignored)."""
    from .measure import layer_bytes

    fits = []
    for layer in layers:
        one = layer_bytes(layer, 1)
        fits.append(budget // max(one["input"], one["output"], 1))
        if available is not None:
            fits.append((available // _MEMORY_FACTOR - one["weight"]) // max(one["input"] + one["output"], 1))
    return max(min(fits), 0)


def _check_batch(parser: argparse.ArgumentParser, layers: Sequence[Layer], batch: int) -> None:
    """Refuse, before any layer runs, a ``--batch`` whose largest layer would not fit in memory.

    Per layer the run holds its input, output and weight, torch's channels-last copies of them, and
    the result of each call: about ``_MEMORY_FACTOR`` times their sum, which must fit in the memory
    available. The input and the output must also each fit the engine's memory budget (the largest
    single buffer an op may allocate), which would refuse them anyway, after the work before them.
    """
    from ..ops._checks import get_memory_budget
    from .measure import available_memory, layer_bytes

    if not layers:
        return
    sizes = {layer.name: layer_bytes(layer, batch) for layer in layers}
    budget = get_memory_budget()
    available = available_memory()
    name, parts = max(sizes.items(), key=lambda item: max(item[1]["input"], item[1]["output"]))
    if max(parts["input"], parts["output"]) > budget:
        problem = (f"layer {name} would have an input of {parts['input']:,} bytes and an output of "
                   f"{parts['output']:,} bytes, more than the memory budget of {budget:,} bytes (the largest "
                   f"single buffer convlab allocates)")
    else:
        if available is None:
            return
        name, parts = max(sizes.items(), key=lambda item: sum(item[1].values()))
        need = _MEMORY_FACTOR * sum(parts.values())
        if need <= available:
            return
        problem = (f"layer {name} would hold an input of {parts['input']:,} bytes, an output of "
                   f"{parts['output']:,} and a weight of {parts['weight']:,}, about {need:,} bytes with the copies "
                   f"the run makes ({_MEMORY_FACTOR}x), more than the {available:,} bytes of memory available "
                   f"(MemAvailable)")
    fits = _largest_batch(layers, budget, available)
    hint = f"use --batch {fits} or less" if fits >= 1 else "free some memory"
    parser.error(f"--batch (={batch}): {problem}; {hint}")


def _select_models(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    from .. import models

    known = models.list()
    if args.models is None:
        return known
    wanted = [n.strip().lower() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        parser.error(f"--models (={args.models!r}): unknown model(s) {unknown}; known: {known}")
    return wanted


def _train_models() -> tuple[str, ...]:
    from .training import MODELS

    return tuple(MODELS)


def _listing() -> str:
    lines = ["suites: " + ", ".join(f"{name} ({len(names)} layers)" for name, names in SUITES.items()),
             f"{TRAIN_SUITE}: training epoch slices of {', '.join(_train_models())} (numpy, torch, torch DDP x2)",
             "--analysis: every zoo model of convlab.models.list() at its default input", ""]
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


def _environment_ready(threads: int, blas_core: str | None) -> bool:
    return (os.environ.get("OPENBLAS_THREAD_TIMEOUT") == "1"
            and (blas_core is None or os.environ.get("OPENBLAS_CORETYPE") == blas_core)
            and os.environ.get("OPENBLAS_NUM_THREADS") == str(threads)
            and os.environ.get("OMP_NUM_THREADS") == str(threads)
            and os.environ.get("OMP_WAIT_POLICY") == "PASSIVE")


# --------------------------------------------------------------------------- output


def _rich_console(plain: bool, stderr: bool = False) -> Console | None:
    """A Rich console on stdout (stderr) when it is a terminal, Rich is installed and ``--plain`` not given."""
    if plain:
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console(stderr=stderr, highlight=False)
    return console if console.is_terminal else None


@contextlib.contextmanager
def _progress(names: Sequence[str], plain: bool) -> Iterator[Callable[[str], None]]:
    """A callback for each finished item: a Rich progress bar on a terminal, else a line on stderr.

    The bar is redrawn only when an item finishes (no refresh thread competes with the timed calls).
    """
    console = _rich_console(plain, stderr=True)
    if console is None:
        def line(message: str) -> None:
            print(f"convlab bench: done {message}", file=sys.stderr, flush=True)
        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, auto_refresh=False, transient=True) as bar:
        task = bar.add_task(names[0] if names else "", total=len(names))
        done = [0]

        def advance(message: str) -> None:
            done[0] += 1
            upcoming = names[done[0]] if done[0] < len(names) else "done"
            bar.update(task, advance=1, description=upcoming, refresh=True)
        bar.refresh()
        yield advance


def _print(console: Console | None, line: str = "") -> None:
    if console is None:
        print(line)
    else:
        from rich.text import Text

        console.print(Text(line))


def _header_lines(report: dict, suite: str, layers: Sequence[Layer], threads: int, quick: bool) -> list[str]:
    from .runner import SLOW_REPEAT, SLOW_SECONDS

    machine, load, kernels = report["machine"], report["load_average"], report["kernels"]
    lines = [f"convlab bench: suite {suite} ({len(layers)} layers), batch {report['batch']}, float32, median of "
             f"{report['repeat']} (of at most {SLOW_REPEAT} for calls over {SLOW_SECONDS:g} s), "
             f"{threads} threads for convlab and torch; {report['date']}, {machine['cpu']} "
             f"({machine['cores']} cores), load average {load['before']}"]
    chosen = (f"set by OPENBLAS_CORETYPE={kernels['OPENBLAS_CORETYPE']}" if kernels["OPENBLAS_CORETYPE"]
              else "chosen by OpenBLAS for this CPU")
    lines.append(f"kernels: NumPy's OpenBLAS {kernels['openblas_core'] or 'unknown'} ({chosen}); "
                 f"torch {kernels['torch_cpu_capability']}")
    if kernels["openblas_core_avx512"] is False and "AVX512" in str(kernels["torch_cpu_capability"]):
        lines.append("note: torch runs AVX-512 code while NumPy's OpenBLAS runs narrower kernels; every GEMM of "
                     "convlab is about 1.8x slower than it could be here (--blas-core SkylakeX runs OpenBLAS's "
                     "AVX-512 kernels)")
    lines.append("ratios are convlab / torch NCHW (below 1: convlab is faster); CL = torch channels_last; "
                 "GFLOP/s from the direct convolution's FLOPs; MiB = extra peak memory of one call")
    if quick:
        lines.append("quick mode: a smoke run, the numbers mean little")
    return lines


def _print_layers(console: Console | None, report: dict, header: list[str]) -> None:
    for line in header:
        _print(console, line)
    _print(console)
    if console is None:
        print(format_report(report))
    else:
        print_rich(console, report_tables(report))
    met = sum(t["met"] for t in report["targets"])
    _print(console)
    _print(console, f"{met} of {len(report['targets'])} target checks met; took {report['seconds']} s")
    busy, line = machine_verdict(report)
    if not busy:
        _print(console, line)


def machine_verdict(report: dict) -> tuple[bool, str]:
    """Whether other work disturbed the run, and the one line that says so (with the numbers).

    The rule: the machine was busy when other processes used over 10% of its CPU time during the
    whole run or during any layer (``OtherCpu``: ``/proc/stat`` minus this process's time, measured
    while the layers ran). The load average before the run is shown in the header but decides only
    where that share cannot be measured: it is a decaying 1-minute average that counts this very
    command's start (the interpreter, the imports) and work that ended before the first layer.
    """
    share = report.get("other_processes_cpu_share")
    layers = [(entry["name"], entry["other_processes_cpu_share"]) for entry in report["layers"]
              if entry.get("other_processes_cpu_share") is not None]
    limit = f"{100 * _BUSY_SHARE:.0f}%"
    if share is not None or layers:
        disturbed = [f"{name} ({100 * value:.0f}%)" for name, value in layers if value > _BUSY_SHARE]
        busy = (share is not None and share > _BUSY_SHARE) or bool(disturbed)
        whole = "an unknown share" if share is None else f"{100 * share:.0f}%"
        worst = f" (at most {100 * max(value for _, value in layers):.0f}% during one layer)" if layers else ""
        line = f"other processes used {whole} of the machine's CPU time during the run{worst}"
        if busy:
            return True, (f"{line}: the machine was busy (over {limit}"
                          f"{' during ' + ', '.join(disturbed) if disturbed else ''}); the timings are "
                          f"unreliable, rerun on an idle machine")
        return False, f"{line}: the machine was quiet (at most {limit})"
    load = (report.get("load_average") or {}).get("before")
    cores = (report.get("machine") or {}).get("cores") or os.cpu_count() or 1
    if not load:
        return False, "the machine's load could not be measured (no /proc/stat, no load average)"
    busy = load[0] > _BUSY_LOAD_PER_CORE * cores
    line = (f"other processes' CPU time could not be measured (no /proc/stat); the load average before the run "
            f"was {load[0]} on {cores} cores")
    if busy:
        return True, (f"{line}: the machine was busy (over {_BUSY_LOAD_PER_CORE} per core); the timings are "
                      f"unreliable, rerun on an idle machine")
    return False, f"{line}: the machine was quiet (at most {_BUSY_LOAD_PER_CORE} per core)"


def _warn_layers(report: dict) -> None:
    busy, line = machine_verdict(report)
    if busy:
        print(f"convlab bench: warning: {line}", file=sys.stderr)
    for entry in report["layers"]:
        for pass_, failed in entry["failures"].items():
            for impl, message in failed.items():
                print(f"convlab bench: warning: {entry['name']} {pass_}: {impl} failed: {message}", file=sys.stderr)
    worst = max((err for entry in report["layers"] for per_pass in entry["max_relative_error"].values()
                 for err in per_pass.values()), default=0.0)
    if worst > 1e-3:
        print(f"convlab bench: warning: the implementations differ from torch by up to {worst:.2e} (relative)",
              file=sys.stderr)


def _print_analysis(console: Console | None, section: dict) -> None:
    if console is None:
        print(format_analysis(section))
    else:
        print_rich(console, [analysis_table(section)])
    met, targets = section["met"], section["targets"]
    _print(console)
    _print(console, f"analysis: {met['seconds']} of {met['of']} models within {targets['seconds']:g} s, "
                    f"{met['peak_memory']} of {met['of']} within {targets['peak_memory_bytes'] / 1e6:g} MB; "
                    f"took {section['seconds']} s")
    for entry in section["models"]:
        if "failure" in entry:
            print(f"convlab bench: warning: analysis of {entry['model']} failed: {entry['failure']}", file=sys.stderr)


# --------------------------------------------------------------------------- entry point


def _run_train_suite(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--suite train``: :func:`convlab.bench.training.main` with the options that apply (``--repeat``: steps)."""
    for option, value in (("--layers", args.layers), ("--blas-core", args.blas_core)):
        if value is not None:
            parser.error(f"{option} (={value!r}) does not combine with --suite {TRAIN_SUITE}")
    if args.analysis:
        parser.error(f"--analysis does not combine with --suite {TRAIN_SUITE}")
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat (={args.repeat}) must be >= 1 (the timed steps of --suite {TRAIN_SUITE})")
    from .training import main as training_main

    argv = [f"--threads={args.threads}"]
    for option, value in (("--models", args.models), ("--batch", args.batch), ("--steps", args.repeat),
                          ("--json", args.json)):
        if value is not None:
            argv.append(f"{option}={value}")
    argv += ["--quick"] * args.quick + ["--plain"] * args.plain
    return training_main(argv)


class _OneLineParser(argparse.ArgumentParser):
    """argparse with its refusals on one line, like the rest of the ``convlab`` command (exit status 2)."""

    def error(self, message: str):
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def rerun_environment(threads: int, blas_core: str | None) -> dict[str, str] | None:
    """The environment to run the measurement again in, a fresh interpreter, or None to measure here.

    None when this process already has it, or when it is the re-run and still could not get it
    (then with a warning: torch's timings may be unfair).
    """
    if _environment_ready(threads, blas_core):
        return None
    if os.environ.get(_CHILD_MARK):
        print("convlab bench: warning: could not set the OpenBLAS environment; torch timings may be unfair",
              file=sys.stderr)
        return None
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="1", OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE", **{_CHILD_MARK: "1"})
    if blas_core is not None:
        env["OPENBLAS_CORETYPE"] = blas_core
    return env


def save_json(path: str | None, report: dict) -> int:
    """Write ``report`` to ``--json path`` (when given) atomically; the exit status: 0, or 1 when it failed."""
    if path is None:
        return 0
    try:
        _write_json(path, report)
    except OSError as exc:
        print(f"convlab bench: error: could not write --json {path!r}: {exc}; the results printed "
              f"above are complete", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convlab bench`` and ``python -m convlab.bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _OneLineParser(prog="convlab bench", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        print(_listing())
        return 0
    if args.threads < 1:
        parser.error(f"--threads (={args.threads}) must be >= 1")
    if args.suite == TRAIN_SUITE:
        return _run_train_suite(parser, args)
    run_layers = not args.analysis or args.suite is not None or args.layers is not None
    suite, layers = _select(parser, args)
    model_names = _select_models(parser, args) if args.analysis else []
    batch = args.batch if args.batch is not None else (1 if args.quick else 8)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    if repeat < 1 or batch < 1:
        parser.error(f"--repeat (={repeat}) and --batch (={batch}) must be >= 1")
    args.blas_core = _blas_core(parser, args.blas_core)
    # Everything that can be checked is checked before the work starts (and before the re-run below).
    _check_json_path(parser, args.json)
    if run_layers:
        _check_batch(parser, layers, batch)
    env = rerun_environment(args.threads, args.blas_core) if run_layers else None
    if env is not None:
        return subprocess.call([sys.executable, "-m", "convlab.bench", *argv], env=env)
    if run_layers:
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            print("convlab bench: error: needs torch and scipy (pip install -e '.[torch]' -c constraints.txt)",
                  file=sys.stderr)
            return 2

    from .analysis import run_analysis
    from .measure import load_average, machine
    from .runner import run

    console = _rich_console(args.plain)
    if run_layers:
        with _progress([layer.name for layer in layers], args.plain) as progress:
            report = run(layers, batch, repeat, args.threads, progress, tuned=args.tuned)
        report["suite"] = suite
        report["machine_busy"] = machine_verdict(report)[0]  # the verdict the last line prints
        _print_layers(console, report, _header_lines(report, suite, layers, args.threads, args.quick))
        _warn_layers(report)
    else:
        report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                  "load_average": {"before": load_average()}}
    if args.analysis:
        with _progress(model_names, args.plain) as progress:
            report["analysis"] = run_analysis(model_names, repeat, progress)
        if run_layers:
            _print(console)
        else:
            cpu = report["machine"]
            _print(console, f"convlab bench: the analysis of {len(model_names)} zoo models, median of {repeat}; "
                            f"{report['date']}, {cpu['cpu']} ({cpu['cores']} cores), "
                            f"load average {report['load_average']['before']}")
        _print_analysis(console, report["analysis"])
    return save_json(args.json, report)
