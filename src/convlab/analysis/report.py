"""The analysis report: one row of facts per node, totals, and text/JSON/CSV/Markdown views."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..shapes import ReceptiveField
from ..spec import as_bool
from ._checks import check_itemsize

__all__ = ["CONVENTIONS", "LayerFacts", "Report"]

CONVENTIONS = {
    "counts": "for the whole input shape given (batch included); parameters are not multiplied",
    "macs": "multiply-accumulates of weighted sums with learned weights (conv, transposed conv, linear); "
    "0 for every other layer",
    "flops": "2 x MACs + bias additions for conv/transposed conv/linear; element operations for the others "
    "(bn 2/element, norm 8, activation 1, max pool k-1 and avg pool k per output, add/mul operands-1, "
    "softmax 3, lrn size+5, linear-mode upsampling 2*taps-1; concat/shuffle/slice/flatten/reshape/pad/"
    "identity/dropout 0)",
    "memory": "output elements x itemsize bytes; total = all nodes but the input",
    "params": "parameter elements (trainable + non-trainable); buffers (BatchNorm running statistics) "
    "are counted separately",
    "receptive_field": "per spatial dim, in input pixels: size, jump (effective stride), start of unit 0's "
    "field, its center, effective padding = -start (Araujo et al., Distill 2019); multi-path nodes take the "
    "union of the paths and warn when jumps or centers disagree",
}


@dataclass(frozen=True)
class LayerFacts:
    """Everything the analysis knows about one node."""

    id: int
    name: str
    kind: str
    op: str
    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    buffers: int
    macs: int
    flops: int
    bias_adds: int
    memory: int
    receptive_field: tuple[ReceptiveField, ...] | None
    scope: str
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def effective_padding(self) -> tuple | None:
        """Araujo et al.'s effective padding per spatial dim, ``-start``."""
        if self.receptive_field is None:
            return None
        return tuple(_plain(-f.start) for f in self.receptive_field)

    @property
    def center(self) -> tuple | None:
        """Center of output unit 0's field per spatial dim (unit ``o``: ``center + o*jump``)."""
        if self.receptive_field is None:
            return None
        return tuple(_plain(f.start + Fraction(f.size - 1) / 2) for f in self.receptive_field)

    def to_dict(self) -> dict:
        rf = None
        if self.receptive_field is not None:
            rf = [
                {
                    "size": _json_number(f.size),
                    "jump": _json_number(f.jump) if self.scope == "spatial" else None,
                    "start": _json_number(f.start),
                    "center": _json_number(c),
                    "effective_padding": _json_number(p),
                }
                for f, c, p in zip(self.receptive_field, self.center, self.effective_padding, strict=True)
            ]
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "op": self.op,
            "inputs": list(self.inputs),
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "bias_adds": self.bias_adds,
            "memory_bytes": self.memory,
            "receptive_field": rf,
            "receptive_field_scope": self.scope,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _plain(value):
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _json_number(value):
    value = _plain(value)
    return float(value) if isinstance(value, Fraction) else value


def _num(value) -> str:
    """An exact number for a table: ``7``, ``2.5``, ``1/3``."""
    value = _plain(value)
    if isinstance(value, Fraction):
        text = f"{float(value):.4g}"
        return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"
    return str(value)


def _per_dim(values) -> str:
    texts = [_num(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def _human(value: float, unit: str = "") -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:g} {unit}".rstrip()


def _bytes(value: int) -> str:
    for scale, prefix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value} B"


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


class Report:
    """Per-node facts and totals of one analysis; iterable over :class:`LayerFacts` rows.

    ``str(report)`` is an aligned plain-text table; :meth:`to_json`, :meth:`to_csv` and
    :meth:`to_markdown` give the same rows; :meth:`print` uses Rich when it is installed,
    fitting the table to the terminal. ``report[name]`` finds a row by node name.
    :attr:`warnings` lists the warnings of the nodes, :attr:`model_warnings` those about the
    model and its input as a whole (e.g. a stem that leaves a small input a few pixels).

    ``model_counts`` is ``(trainable, non-trainable, buffer)`` elements counted from the
    model itself (its ``parameters()`` and buffers); the totals are then the model's, even
    when the rows cover less of it (a trace that saw one branch of a data-dependent
    ``forward``), and a model warning says how much the rows cover. Without it the totals
    are the sums of the rows.
    """

    def __init__(
        self,
        rows: list[LayerFacts],
        input_shapes: list[tuple[int, ...]],
        *,
        itemsize: int = 4,
        batched: bool = True,
        outputs: Sequence[int] = (),
        notes: Sequence[str] = (),
        model_name: str = "",
        model_warnings: Sequence[str] = (),
        model_counts: tuple[int, int, int] | None = None,
    ) -> None:
        batched = as_bool("Report", "batched", batched)
        itemsize = check_itemsize("Report", itemsize)
        self.rows = rows
        self.model_warnings = list(model_warnings)  # about the model and input as a whole (e.g. the stem)
        self.model_counts = None if model_counts is None else tuple(int(c) for c in model_counts)
        if self.model_counts is not None:
            coverage = self._coverage_warning()
            if coverage is not None:
                self.model_warnings.append(coverage)
        self.input_shapes = input_shapes
        self.itemsize = itemsize
        self.batched = batched
        self.outputs = list(outputs) or [len(rows) - 1]
        self.notes = list(notes)
        self.model_name = model_name
        self._by_name = {}
        for row in rows:
            self._by_name.setdefault(row.name, row)

    # ------------------------------------------------------------------ access
    def __iter__(self) -> Iterator[LayerFacts]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> LayerFacts:
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise KeyError(f"Report: no node named {key!r}; names: {list(self._by_name)[:20]} ...") from None
        return self.rows[key]

    @property
    def layers(self) -> list[LayerFacts]:
        """The rows without the input placeholders."""
        return [r for r in self.rows if r.kind != "input"]

    # ------------------------------------------------------------------ totals
    @property
    def batch_size(self) -> int:
        return self.input_shapes[0][0] if self.batched else 1

    @property
    def table_params(self) -> int:
        """Parameters in the rows (what the graph reached); :attr:`total_params` is the model's when known."""
        return sum(r.params for r in self.rows)

    @property
    def table_buffers(self) -> int:
        """Buffer elements in the rows; :attr:`total_buffers` is the model's when known."""
        return sum(r.buffers for r in self.rows)

    @property
    def total_params(self) -> int:
        if self.model_counts is not None:
            return self.model_counts[0] + self.model_counts[1]
        return self.table_params

    @property
    def trainable_params(self) -> int:
        if self.model_counts is not None:
            return self.model_counts[0]
        return sum(r.trainable_params for r in self.rows)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_buffers(self) -> int:
        if self.model_counts is not None:
            return self.model_counts[2]
        return self.table_buffers

    def _coverage_warning(self) -> str | None:
        """What the rows miss of the model's own counts, or None when they hold all of it."""
        params, buffers = self.total_params, self.total_buffers
        rows_params, rows_buffers = self.table_params, self.table_buffers
        if (rows_params, rows_buffers) == (params, buffers):
            return None
        return (
            f"the per-layer rows hold {rows_params:,} of the model's {params:,} parameters and {rows_buffers:,} of "
            f"its {buffers:,} buffer elements; the totals are the model's own, the rows (and MACs, FLOPs, memory) "
            "cover only what the analysis reached"
        )

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_flops(self) -> int:
        return sum(r.flops for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return sum(r.memory for r in self.rows if r.kind != "input")

    @property
    def input_bytes(self) -> int:
        return sum(r.memory for r in self.rows if r.kind == "input")

    @property
    def param_bytes(self) -> int:
        """(parameters + buffers) x itemsize."""
        return (self.total_params + self.total_buffers) * self.itemsize

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.rows[self.outputs[0]].output_shape

    @property
    def receptive_field(self) -> tuple[ReceptiveField, ...] | None:
        """Receptive field of the (first) output node."""
        return self.rows[self.outputs[0]].receptive_field

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """``(node name, warning)`` for every warning of every node (the whole model's: :attr:`model_warnings`)."""
        return [(r.name, w) for r in self.rows for w in r.warnings]

    def totals(self) -> dict:
        return {
            "params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "buffers": self.total_buffers,
            "macs": self.total_macs,
            "flops": self.total_flops,
            "activation_bytes": self.activation_bytes,
            "input_bytes": self.input_bytes,
            "param_bytes": self.param_bytes,
            "output_shape": list(self.output_shape),
            "batch_size": self.batch_size,
        }

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "input_shapes": [list(s) for s in self.input_shapes],
            "batched": self.batched,
            "itemsize": self.itemsize,
            "conventions": dict(CONVENTIONS),
            "totals": self.totals(),
            "warnings": list(self.model_warnings),
            "notes": list(self.notes),
            "layers": [r.to_dict() for r in self.rows],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    _CSV_COLUMNS = (
        "id", "name", "kind", "op", "inputs", "output_shape", "params", "trainable_params", "buffers", "macs",
        "flops", "bias_adds", "memory_bytes", "rf_size", "rf_jump", "rf_start", "rf_center",
        "rf_effective_padding", "rf_scope", "warnings",
    )

    def to_csv(self) -> str:
        """One line per node; per-dim values joined by ``x``, inputs and warnings by ``;``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self._CSV_COLUMNS)
        for r in self.rows:
            rf = r.receptive_field
            dims = (
                ("", "", "", "", "")
                if rf is None
                else (
                    "x".join(_num(f.size) for f in rf),
                    "x".join(_num(f.jump) for f in rf) if r.scope == "spatial" else "",
                    "x".join(_num(f.start) for f in rf),
                    "x".join(_num(c) for c in r.center),
                    "x".join(_num(p) for p in r.effective_padding),
                )
            )
            writer.writerow((
                r.id, r.name, r.kind, r.op, ";".join(r.inputs), "x".join(str(s) for s in r.output_shape), r.params,
                r.trainable_params, r.buffers, r.macs, r.flops, r.bias_adds, r.memory, *dims, r.scope,
                ";".join(r.warnings),
            ))
        return buffer.getvalue()

    _HEADER = ("#", "Name", "Kind", "Output shape", "Params", "MACs", "FLOPs", "Memory", "RF", "Jump", "Start")

    def _table_rows(self) -> list[tuple[str, ...]]:
        out = []
        for r in self.rows:
            rf = r.receptive_field
            out.append((
                str(r.id),
                r.name + (" !" if r.warnings else ""),
                r.kind,
                _shape(r.output_shape),
                f"{r.params:,}",
                f"{r.macs:,}",
                f"{r.flops:,}",
                _bytes(r.memory),
                "-" if rf is None else _per_dim(f.size for f in rf),
                "-" if rf is None or r.scope != "spatial" else _per_dim(f.jump for f in rf),
                "-" if rf is None else _per_dim(f.start for f in rf),
            ))
        return out

    def _summary_lines(self) -> list[str]:
        shapes = ", ".join(_shape(s) for s in self.input_shapes)
        batch = f"batch {self.batch_size}" if self.batched else "unbatched"
        model = f"{self.model_name}: " if self.model_name else ""
        lines = [
            f"{model}input {shapes} ({batch}); counts are for this input, memory at {self.itemsize} bytes/element",
            f"Params: {self.total_params:,} (trainable {self.trainable_params:,}, non-trainable "
            f"{self.non_trainable_params:,}); buffers: {self.total_buffers:,}",
            f"MACs: {self.total_macs:,} ({_human(self.total_macs)}); FLOPs: {self.total_flops:,} "
            f"({_human(self.total_flops)})",
            f"Activation memory: {_bytes(self.activation_bytes)}; input {_bytes(self.input_bytes)}; "
            f"params + buffers {_bytes(self.param_bytes)}",
            f"Output shape: {_shape(self.output_shape)}",
        ]
        rf = self.receptive_field
        if rf is not None:
            last = self.rows[self.outputs[0]]
            lines.append(
                f"Receptive field of the output ({last.scope}): size {_per_dim(f.size for f in rf)}, "
                f"start {_per_dim(f.start for f in rf)}, effective padding {_per_dim(last.effective_padding)}"
            )
        lines.append(
            "MACs = multiply-accumulates of conv/linear layers; FLOPs = 2 x MACs + bias adds + element ops "
            "(see CONVENTIONS); RF/Jump/Start: receptive field size, effective stride and start in input "
            "pixels, per spatial dim (one value when all dims agree); '!' marks a warning"
        )
        return lines

    def _warning_lines(self) -> list[str]:
        return (
            [f"! {w}" for w in self.model_warnings]
            + [f"! {name}: {w}" for name, w in self.warnings]
            + [f"note: {r.name}: {n}" for r in self.rows for n in r.notes]
            + [f"note: {n}" for n in self.notes]
        )

    def __str__(self) -> str:
        rows = self._table_rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(self._HEADER)]
        left = {1, 2, 3}

        def line(cells):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                    strict=True)))

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        body = [line(self._HEADER), rule, *(line(r) for r in rows), rule]
        return "\n".join(body + self._summary_lines() + self._warning_lines())

    def __repr__(self) -> str:
        return (
            f"Report({len(self.rows)} nodes, params={self.total_params:,}, macs={self.total_macs:,}, "
            f"output_shape={self.output_shape})"
        )

    def to_markdown(self) -> str:
        rows = self._table_rows()

        def esc(text: str) -> str:
            return text.replace("|", "\\|")

        out = ["| " + " | ".join(self._HEADER) + " |", "|" + "|".join(
            "---" if i in (1, 2, 3) else "---:" for i in range(len(self._HEADER))
        ) + "|"]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        out.append("")
        out += [f"- {esc(x)}" for x in self._summary_lines() + self._warning_lines()]
        return "\n".join(out) + "\n"

    #: Columns a narrow terminal drops first (the rest: #, Name, Output shape, Params, MACs).
    _DROPPABLE = ("Start", "Jump", "FLOPs", "Memory", "Kind", "RF", "#")

    def rich_table(self, width: int):
        """The per-layer table as a ``rich.table.Table`` that fits ``width`` columns of text.

        Columns are dropped, least needed first (Start, Jump, FLOPs, Memory, Kind, RF, #),
        until the others fit unwrapped; past that, names and shapes wrap. Needs Rich (the ``cli`` extra).
        """
        from rich import box
        from rich.console import Console
        from rich.table import Table

        rows = self._table_rows()
        keep = list(range(len(self._HEADER)))
        measure = Console(width=1 << 16, file=io.StringIO())  # wide: measures the natural (unwrapped) width

        def build(columns: list[int]) -> Table:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
            for i in columns:
                numeric = i not in (1, 2, 3)
                table.add_column(self._HEADER[i], justify="right" if numeric else "left", no_wrap=numeric,
                                 overflow="fold")
            for r in rows:
                table.add_row(*(r[i] for i in columns))
            return table

        table = build(keep)
        for name in self._DROPPABLE:
            if measure.measure(table).maximum <= width:
                break
            keep.remove(self._HEADER.index(name))
            table = build(keep)
        return table

    def print(self, console=None) -> None:
        """Print the table, the totals and the warnings; with Rich when it is installed (the ``cli`` extra).

        With Rich the table fits the console's width (:meth:`rich_table`) and the text lines
        wrap; without it, ``print(str(self))``.
        """
        try:
            from rich.console import Console
        except ImportError:
            print(self)
            return
        console = console or Console()
        console.print(self.rich_table(console.width))
        for text in self._summary_lines() + self._warning_lines():
            console.print(text, markup=False, highlight=False, overflow="fold")
