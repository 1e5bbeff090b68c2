"""The analysis section (``convlab bench --analysis``): what ``convlab summary MODEL`` costs for the zoo.

For every zoo model (:func:`convlab.models.list`) at its preset's input size,
batch 1, the path ``convlab summary`` takes from a name to the report:
``convlab.models.create(name, input_size=size)`` (build) then
``convlab.analysis.analyze(model, (1, *size))`` (analyze); printing the report
is left out. Measured per model:

* wall time: a first call (under :mod:`tracemalloc`, untimed) warms the
  imports; then ``repeat`` timed calls (at most three for a call over a
  second), reported as the median of the whole path and of each step;
* extra peak memory: the :mod:`tracemalloc` peak of the first call (Python
  objects and NumPy buffers, from a clean start), and the analysis' own extra
  peak above the built model.

Targets (:data:`.suites.ANALYSIS_TARGETS`): the median whole path within
0.5 s and its peak within 100 MB (10^8 bytes), per model.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence

from .suites import ANALYSIS_TARGETS

__all__ = ["METHOD", "run_analysis"]

METHOD = ("convlab.models.create(name, input_size=size) then convlab.analysis.analyze(model, (1, *size)), "
          "as convlab summary NAME; time: median of the timed calls after an untimed first call; "
          "memory: tracemalloc peak of the first call")


def _build_and_analyze(name: str, size: tuple[int, ...], clock: Callable[[], None]) -> None:
    """What ``convlab summary NAME`` runs before printing; ``clock()`` is called between the two steps.

    The model is built as the summary builds it: inside :func:`convlab.nn.skeleton`, without weights.
    """
    from .. import models
    from ..analysis import analyze
    from ..nn import skeleton

    with skeleton():
        model = models.create(name, input_size=size)
    clock()
    analyze(model, (1, *size))


def _memory(name: str, size: tuple[int, ...]) -> tuple[int, int, int]:
    """(peak of the whole path, peak of the build, the analysis' extra peak above the built model), bytes."""
    import tracemalloc

    marks: list[tuple[int, int]] = []

    def clock() -> None:
        marks.append(tracemalloc.get_traced_memory())  # (current, peak) after the build
        tracemalloc.reset_peak()

    gc.collect()
    tracemalloc.start()
    try:
        _build_and_analyze(name, size, clock)
        analyze_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (built, build_peak), = marks
    return max(build_peak, analyze_peak), build_peak, max(0, analyze_peak - built)


def _timed(name: str, size: tuple[int, ...]) -> tuple[float, float]:
    """(seconds of the build, seconds of the analysis) of one call."""
    marks = [time.perf_counter()]
    _build_and_analyze(name, size, lambda: marks.append(time.perf_counter()))
    end = time.perf_counter()
    return marks[1] - marks[0], end - marks[1]


def _measure_model(name: str, repeat: int, slow_seconds: float, slow_repeat: int) -> dict[str, object]:
    from .. import models

    size = tuple(int(v) for v in models.defaults(name)["input_size"])
    entry: dict[str, object] = {"model": name, "input_shape": [1, *size]}
    try:
        start = time.perf_counter()
        peak, build_peak, analyze_extra = _memory(name, size)
        first = time.perf_counter() - start
        rounds = repeat if first < slow_seconds else min(repeat, slow_repeat)
        samples = []
        for _ in range(rounds):
            gc.collect()
            samples.append(_timed(name, size))
    except Exception as exc:  # a model or an analysis under development: report it, measure the rest
        entry["failure"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return entry
    totals = [build + analyze for build, analyze in samples]
    seconds = statistics.median(totals)
    entry.update({
        "seconds": seconds,
        "min_seconds": min(totals),
        "timed_calls": len(totals),
        "build_seconds": statistics.median(build for build, _ in samples),
        "analyze_seconds": statistics.median(analyze for _, analyze in samples),
        "peak_memory_bytes": peak,
        "build_peak_memory_bytes": build_peak,
        "analyze_extra_memory_bytes": analyze_extra,
        "met": {"seconds": seconds <= ANALYSIS_TARGETS["seconds"],
                "peak_memory": peak <= ANALYSIS_TARGETS["peak_memory_bytes"]},
    })
    return entry


def run_analysis(names: Sequence[str] | None = None, repeat: int = 5,
                 progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Measure the analysis of the zoo models ``names`` (default: all of them); return the section as a dict.

    ``progress``, when given, is called after each model with its name and the seconds so far.
    """
    from .. import models
    from .runner import SLOW_REPEAT, SLOW_SECONDS

    names = models.list() if names is None else list(names)
    started = time.perf_counter()
    entries = []
    for name in names:
        entries.append(_measure_model(name, repeat, SLOW_SECONDS, SLOW_REPEAT))
        if progress is not None:
            progress(f"{name} ({time.perf_counter() - started:.0f} s)")
    measured = [entry for entry in entries if "met" in entry]
    return {
        "method": METHOD,
        "repeat": repeat,
        "targets": dict(ANALYSIS_TARGETS),
        "models": entries,
        "met": {"seconds": sum(entry["met"]["seconds"] for entry in measured),
                "peak_memory": sum(entry["met"]["peak_memory"] for entry in measured),
                "of": len(measured)},
        "seconds": round(time.perf_counter() - started, 1),
    }
