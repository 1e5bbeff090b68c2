"""The report: the run's results as tables, in Markdown (plain text, files, pipes) or as Rich tables.

:func:`report_tables` turns a run (the dict :func:`.runner.run` returns, the
JSON) into tables as data: a title, a header, rows of strings, how many
columns are left-aligned and how many identify a row (the key columns).
:func:`format_report` writes them as aligned Markdown, :func:`rich_tables`
as Rich tables that fit a width: when a table is wider than the terminal, its
columns are dealt into as few tables as fit, each repeating the key columns.
Rich (the optional extra ``cli``) is imported inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from .suites import PASS_LABEL, PASSES, SCIPY, TORCH, TORCH_CHANNELS_LAST

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table as RichTable

__all__ = ["Table", "analysis_table", "format_analysis", "format_report", "print_rich", "report_tables",
           "rich_tables"]

MAIN_HEADER = ("layer", "pass", "convlab algorithm", "convlab ms", "torch ms", "torch CL ms", "convlab/torch",
               "convlab/torch CL", "convlab GFLOP/s", "torch GFLOP/s", "convlab MiB", "torch MiB", "memory ratio",
               "target", "auto/fastest", "auto/fastest measured rates")


class Table(NamedTuple):
    """One table of the report, as strings: ``left`` columns left-aligned, the first ``key`` name a row."""

    title: str | None
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    left: int = 1
    key: int = 1


def _f(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if digits == 2 and 0 < abs(value) < 0.01:
        return f"{value:.3f}"
    return f"{value:.{digits}f}"


def _limit(limit: float, strict: bool) -> str:
    return f"{'<' if strict else '<='} {limit:g}"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def _main_table(layers: list[dict]) -> Table:
    rows = []
    for entry in layers:
        checks = {(c["pass"]): c for c in entry["targets"] if c["target"] != "peak memory vs torch"
                  and not c["target"].endswith("SciPy")}
        for pass_ in PASSES:
            r = entry["passes"][pass_]
            ms, gflops, peak = r["ms"], r["gflops"], r["peak_memory_mib"]
            check = checks.get(pass_)
            rows.append((
                entry["name"], PASS_LABEL[pass_], (entry["algorithms"] or {}).get(pass_) or "-",
                _f(ms.get("convlab")), _f(ms.get(TORCH)), _f(ms.get(TORCH_CHANNELS_LAST)),
                _f(r["ratio"]), _f(r["ratio_channels_last"]),
                _f(gflops.get("convlab"), 1), _f(gflops.get(TORCH), 1),
                _f(peak.get("convlab"), 1), _f(peak.get(TORCH), 1), _f(r["memory_ratio"]),
                "-" if check is None else f"{_limit(check['limit'], check['strict'])} {_verdict(check['met'])}",
                _auto_fastest(r),
                _auto_fastest(r, "measured"),
            ))
    return Table(None, MAIN_HEADER, rows, left=3, key=2)


def _auto_fastest(entry: dict, rates: str | None = None) -> str:
    """``auto``'s time over the fastest algorithm's on the pass's calls, and the fastest where it differs.

    ``rates`` None: what ``auto`` ran (the rates in use); ``'measured'``: what it would run with the rates
    measured on this machine.
    """
    if rates is None:
        ratio = entry.get("ratio_auto_fastest")
    else:
        ratio = (entry.get("ratios_auto_fastest") or {}).get(rates)
    if ratio is None:
        return "-"
    calls = entry.get("auto_fastest_calls", [])
    chosen = [c["auto"] if rates is None else c.get("auto_with", {}).get(rates, c["auto"]) for c in calls]
    other = sorted({c["fastest"] for c, name in zip(calls, chosen, strict=True) if c["fastest"] != name})
    return _f(ratio) + (f" ({'+'.join(other)})" if other else "")


def _rates_table(report: dict) -> Table | None:
    """The cost model's rates in use (the constants unless calibration was asked for) and those measured here."""
    rates = report.get("cost_model")
    if not rates:
        return None
    measured = rates.get("measured") or {}
    units = [("GEMM (float32)", "gemm_flops", 1e-9, "{:.1f} GFLOP/s"),
             ("memory (copy)", "stream_bytes", 1e-9, "{:.1f} GB/s"),
             ("cache (elementwise)", "cache_bytes", 1e-9, "{:.1f} GB/s"), ("FFT", "fft_flops", 1e-9, "{:.1f} GFLOP/s"),
             ("NumPy call", "call_seconds", 1e6, "{:.2f} us"), ("strided row", "row_seconds", 1e9, "{:.1f} ns"),
             ("compiled kernel", "kernel_macs", 1e-9, "{:.1f} GMAC/s"), ("threads described", "threads", 1, "{:.0f}")]
    rows = [(label, form.format(rates[key] * scale) if key in rates else "-",
             form.format(measured[key] * scale) if key in measured else "-") for label, key, scale, form in units]
    if rates.get("gemm_flops_effective") not in (None, rates["gemm_flops"]):  # scaled by the BLAS kernels
        rows[0] = (rows[0][0], f"{rates['gemm_flops_effective'] * 1e-9:.1f} GFLOP/s "
                               f"({rates['gemm_flops'] * 1e-9:.0f} x BLAS kernels)", rows[0][2])
    kept = measured.get("rejected") or {}
    in_effect = rates.get("threads_in_effect")
    title = f"Cost model rates (in use: {rates['source']}" + (
        f"; threads in effect (BLAS, FFT, compiled): {', '.join(map(str, in_effect))}" if in_effect else "") + (
        f"; calibration measured in {measured['calibration_seconds'] * 1e3:.0f} ms" if measured else "") + (
        f"; implausible, not used: {', '.join(kept)}" if kept else "") + "):"
    return Table(title, ("rate", "in use", "measured here"), rows)


def _auto_table(report: dict) -> Table | None:
    """auto/fastest over the run: worst (where), geometric mean, passes within 1.1 and 1.3, per set of rates."""
    summary = report.get("auto_fastest")
    if not summary:
        return None
    rows = [(label, _f(s["worst"]), s["worst_at"], _f(s["geomean"]), f"{s['within_1_1']}/{s['passes']}",
             f"{s['within_1_3']}/{s['passes']}") for label, s in summary.items()]
    return Table("auto against the fastest algorithm on the same calls (medians of interleaved runs; rates in use, "
                 "the rates measured here, and 'tuned': tune.decide on a first measurement, judged by a second):",
                 ("rates", "worst", "worst at", "geomean", "within 1.1", "within 1.3"), rows, left=1)


def _scipy_table(layers: list[dict]) -> Table | None:
    rows = []
    for entry in layers:
        r = entry["passes"]["forward"]
        if "fastest_scipy" in r:
            ms = r["ms"]
            rows.append((entry["name"], _f(ms["convlab"]), _f(ms[TORCH]), *(_f(ms.get(name)) for name in SCIPY),
                         _f(r["ratio"]), f"{_f(r['ratio_fastest_scipy'])} ({r['fastest_scipy'].split('.', 1)[1]})"))
    if not rows:
        return None
    return Table("Single channel, forward, against SciPy (ms):",
                 ("layer", "convlab", "torch", "signal.correlate", "signal.fftconvolve", "ndimage.correlate",
                  "convlab/torch", "convlab/fastest SciPy"), rows)


def _class_table(classes: dict) -> Table:
    rows = []
    for name, summary in classes.items():
        g = summary["geomean_ratio"]
        rows.append((name, str(len(summary["layers"])), *(_f(g[pass_]) for pass_ in PASSES),
                     _f(summary["geomean_ratio_channels_last"]["forward"])))
    return Table("Geometric mean of convlab/torch NCHW per layer class (below 1: convlab is faster):",
                 ("class", "layers", "forward", "backward", "input grad", "weight grad", "forward vs torch CL"), rows)


def _target_table(targets: list[dict]) -> Table:
    by_target: dict[str, dict[str, dict]] = {}
    for t in targets:
        by_target.setdefault(t["target"], {})[t["pass"]] = t
    rows = []
    for name, per_pass in by_target.items():
        cells = []
        for pass_ in PASSES:
            t = per_pass.get(pass_)
            cells.append("-" if t is None else f"{_f(t['figure'])} ({_limit(t['limit'], t['strict'])}) "
                                               f"{_verdict(t['met'])}")
        count = len(next(iter(per_pass.values()))["layers"])
        rows.append((name, str(count), *cells))
    return Table("Targets (the worst layer's ratio; forward against torch NCHW unless said; gradients within "
                 "1.2x of the forward target):",
                 ("target", "layers", "forward", "backward", "input grad", "weight grad"), rows)


def report_tables(report: dict[str, object]) -> list[Table]:
    """The run's tables: per layer and pass, SciPy (single channel), per class (geometric means), targets."""
    layers: list[dict] = report["layers"]  # type: ignore[assignment]
    tables = [_main_table(layers), _scipy_table(layers), _class_table(report["classes"]),  # type: ignore[arg-type]
              _target_table(report["targets"]), _auto_table(report), _rates_table(report)]  # type: ignore[arg-type]
    return [table for table in tables if table is not None]


def _mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


def analysis_table(section: dict[str, object]) -> Table:
    """The analysis section: per zoo model, its wall time and extra peak memory against the targets."""
    targets: dict = section["targets"]  # type: ignore[assignment]
    seconds_limit, memory_limit = targets["seconds"], targets["peak_memory_bytes"]
    rows = []
    for entry in section["models"]:  # type: ignore[union-attr]
        shape = "x".join(map(str, entry["input_shape"]))
        if "failure" in entry:
            rows.append((entry["model"], shape, "-", "-", "-", "-", "-", "failed", "failed"))
            continue
        rows.append((entry["model"], shape, f"{entry['seconds']:.3f}", f"{entry['build_seconds']:.3f}",
                     f"{entry['analyze_seconds']:.3f}", _mb(entry["peak_memory_bytes"]),
                     _mb(entry["analyze_extra_memory_bytes"]),
                     f"<= {seconds_limit:g} s {_verdict(entry['met']['seconds'])}",
                     f"<= {memory_limit / 1e6:g} MB {_verdict(entry['met']['peak_memory'])}"))
    return Table("Analysis of the zoo models, as convlab summary runs it (build the model, then analyze it; "
                 "batch 1, the preset's input size; median seconds, tracemalloc peak in MB = 10^6 bytes):",
                 ("model", "input", "seconds", "build s", "analyze s", "peak MB", "analyze extra MB", "time target",
                  "memory target"), rows, left=2)


# --------------------------------------------------------------------------- Markdown


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An aligned Markdown table; the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = (str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                 strict=True)))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def _format(tables: Sequence[Table]) -> str:
    out = []
    for table in tables:
        if table.title:
            out.append(f"\n{table.title}\n")
        out.append(_markdown(table.header, table.rows, left=table.left))
    return "\n".join(out)


def format_report(report: dict[str, object]) -> str:
    """The tables in Markdown: per layer and pass, SciPy (single channel), per class (geometric means), targets."""
    return _format(report_tables(report))


def format_analysis(section: dict[str, object]) -> str:
    """The analysis section in Markdown (its title, then the table)."""
    return _format([analysis_table(section)])


# --------------------------------------------------------------------------- Rich


def _two_lines(header: str) -> str:
    """A header on at most two lines, split after a space or a slash where the longer line is shortest."""
    cuts = [i + 1 for i, char in enumerate(header) if char in " /"]
    if not cuts:
        return header
    cut = min(cuts, key=lambda i: max(len(header[:i].rstrip()), len(header[i:])))
    return f"{header[:cut].rstrip()}\n{header[cut:]}"


def _cell(text: str):
    from rich.text import Text

    style = "red" if text.endswith(("NOT MET", "failed")) else "green" if text.endswith("met") else ""
    return Text(text, style=style)


def _rich_table(table: Table, columns: Sequence[int]) -> RichTable:
    from rich import box
    from rich.table import Table as RichTable

    out = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i in columns:
        out.add_column(_two_lines(table.header[i]), justify="left" if i < table.left else "right",
                       no_wrap=i < table.key, overflow="fold")
    for row in table.rows:
        out.add_row(*(_cell(row[i]) for i in columns))
    return out


def rich_tables(table: Table, console: Console) -> list[RichTable]:
    """``table`` as Rich tables no wider than ``console.width``: its columns in as few tables as fit.

    Each table repeats the key columns (the layer and pass, the model...); the
    others are dealt in order while the table's natural width fits. Only a
    column too wide on its own beside the keys is left to Rich to wrap.
    """
    keys = list(range(table.key))
    unbounded = console.options.update_width(1 << 20)  # measure the natural width (Rich clamps to the given one)
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(table.key, len(table.header)):
        natural = console.measure(_rich_table(table, keys + current + [i]), options=unbounded).maximum
        if current and natural > console.width:
            groups.append(current)
            current = []
        current.append(i)
    groups.append(current)
    return [_rich_table(table, keys + group) for group in groups]


def print_rich(console: Console, tables: Sequence[Table]) -> None:
    """Print ``tables`` (their titles wrapped) on ``console``, each fitting its width."""
    from rich.text import Text

    for table in tables:
        if table.title:
            console.print()
            console.print(Text(table.title))
        for part in rich_tables(table, console):
            console.print()
            console.print(part)
