"""Text for worked examples: aligned matrices, and one (transposed) convolution computed and explained.

:func:`worked_example` computes one unbatched (transposed) convolution with the
engine and keeps everything needed to explain it: the equivalent
``convlab.functional`` call, the padding as ``(lo, hi)`` pairs, the output and
its size formula with the numbers substituted (from :mod:`convlab.shapes`, the
one place that knows the rule). ``convlab conv``, ``convlab demo`` and every
example in :mod:`convlab.examples` print through it. :class:`Page` is where an
example writes: headings, labelled arrays and worked examples, to standard
output or any text file.

>>> ex = worked_example([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], [[[[0, 1], [2, 3]]]])
>>> ex.output.tolist()
[[[19, 25], [37, 43]]]
>>> print(ex.explanations[0])
H_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .. import functional as F
from ..ops.explain import explain_conv, explain_conv_transpose
from ..shapes import Explained, conv_output_shape, conv_transpose_output_shape, resolve_padding
from ..spec import ConvSpec

__all__ = ["Page", "WorkedExample", "format_array", "format_matrix", "worked_example"]

_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


# --------------------------------------------------------------------------- formatting


def _format_value(value: object) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (complex, np.complexfloating)):
        return f"{complex(value):.6g}"
    value = float(value) + 0.0  # turns -0.0 into 0.0
    return f"{value:.6g}"


# NumPy's print options: an array of more than THRESHOLD values is summarised, each long axis showing
# EDGEITEMS entries at each end around '...' (numpy.set_printoptions: threshold=1000, edgeitems=3).
THRESHOLD = 1000
EDGEITEMS = 3


def _edgeitems(array: np.ndarray, full: bool) -> int | None:
    """How many entries to show at each end of a long axis: None (all) unless the array is summarised."""
    return None if full or np.size(array) <= THRESHOLD else EDGEITEMS


def _shown(length: int, edgeitems: int | None) -> list[int | None]:
    """The indices shown along an axis, None where '...' stands for the ones left out."""
    if edgeitems is None or length <= 2 * edgeitems:
        return list(range(length))
    return [*range(edgeitems), None, *range(length - edgeitems, length)]


def format_matrix(matrix: np.ndarray, indent: str = "  ", *, edgeitems: int | None = None) -> str:
    """A 1-D or 2-D array as right-aligned columns, one row per line.

    With ``edgeitems``, rows and columns beyond ``2 * edgeitems`` show that many at each end around ``...``
    (NumPy's summarised printing); only the values shown are formatted.

    >>> print(format_matrix(np.array([[1, -10], [100, 2]])))
        1  -10
      100    2
    >>> print(format_matrix(np.arange(64).reshape(8, 8), edgeitems=2))
       0   1  ...   6   7
       8   9  ...  14  15
      ...
      48  49  ...  54  55
      56  57  ...  62  63
    """
    rows = np.atleast_2d(np.asarray(matrix))
    row_indices = _shown(rows.shape[0], edgeitems)
    column_indices = _shown(rows.shape[1], edgeitems)
    columns = [j for j in column_indices if j is not None]
    cells: list[list[str] | None] = []
    for i in row_indices:
        if i is None:
            cells.append(None)
            continue
        values = iter(_format_value(v) for v in rows[i, columns].tolist())  # (shown columns,)
        cells.append(["..." if j is None else next(values) for j in column_indices])
    width = max((len(c) for row in cells if row is not None for c in row if c != "..."), default=1)
    return "\n".join(indent + ("..." if row is None else "  ".join(c.rjust(width) for c in row)) for row in cells)


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def format_array(array: np.ndarray, leading: Sequence[str], indent: str = "  ", *, full: bool = True) -> str:
    """An array whose first ``len(leading)`` axes are labelled (``'channel'``, ``'filter'``) and
    whose remaining 1 or 2 axes are shown as aligned matrices.

    Axes of size 1 are not labelled, so a one-channel 2-D image prints as a plain matrix. With
    ``full=False`` an array of more than :data:`THRESHOLD` values is summarised as NumPy prints it:
    every axis longer than ``2 * EDGEITEMS`` (channels, rows, columns) shows :data:`EDGEITEMS`
    entries at each end around ``...``.
    """
    array = np.asarray(array)
    lead = array.shape[: len(leading)]
    edgeitems = _edgeitems(array, full)
    blocks = []
    for index in itertools.product(*(_shown(n, edgeitems) for n in lead)):
        if None in index:  # one '...' line for a run of left-out channels or filters
            if blocks[-1:] != [f"{indent}..."]:
                blocks.append(f"{indent}...")
            continue
        label = ", ".join(f"{name} {i}" for name, i, n in zip(leading, index, lead, strict=True) if n > 1)
        body = format_matrix(array[index], indent + ("  " if label else ""), edgeitems=edgeitems)
        blocks.append(f"{indent}{label}:\n{body}" if label else body)
    return "\n".join(blocks)


# --------------------------------------------------------------------------- one example


@dataclass
class WorkedExample:
    """One computed (transposed) convolution and everything needed to explain it."""

    input: np.ndarray  # (C_in, *spatial), unbatched
    weight: np.ndarray
    output: np.ndarray  # (C_out, *spatial_out)
    call: str  # the equivalent convlab.functional call
    padding_lines: list[str] = field(default_factory=list)
    formula: str = ""
    explanations: list[str] = field(default_factory=list)
    transposed: bool = False
    title: str = ""
    notes: list[str] = field(default_factory=list)
    explanation: str = ""  # one output element written out (convlab.ops.explain), when asked for
    sizes: tuple[Explained, ...] = ()  # the spatial output size, from convlab.shapes
    padding: tuple[tuple[int, int], ...] = ()  # the padding as explicit (lo, hi) pairs per dimension

    def text(self, full: bool = False) -> str:
        """The example as readable text: input, kernel, settings, output, shape formula.

        Arrays of more than :data:`THRESHOLD` values are summarised (``...``) unless ``full``; the sizes,
        the call and the formulas are always given in full. Non-finite values (inf, nan) are printed as
        values, with a note.
        """
        lines = []
        if self.title:
            lines += [self.title, "-" * len(self.title)]
        lines += [f"  {note}" for note in self.notes]
        c_in = self.input.shape[0]
        lines.append(f"input ({c_in} channel{'s' * (c_in != 1)}, {_size(self.input.shape[1:])}):")
        lines.append(format_array(self.input, ("channel",), full=full))
        a, b = self.weight.shape[:2]
        if self.transposed:
            kernel_head = f"kernel ({a} input channel{'s' * (a != 1)} x {b} output channel{'s' * (b != 1)} per group"
            leading = ("input channel", "output channel")
        else:
            kernel_head = f"kernel ({a} filter{'s' * (a != 1)} x {b} channel{'s' * (b != 1)}"
            leading = ("filter", "channel")
        if all(k == 1 for k in self.weight.shape[2:]) and max(a, b) > 1:  # a 1x1 kernel: one matrix
            lines.append(f"{kernel_head}, {_size(self.weight.shape[2:])}), as a {a}x{b} matrix:")
            lines.append(format_matrix(self.weight.reshape(a, b), edgeitems=_edgeitems(self.weight, full)))
        else:
            lines.append(f"{kernel_head}, {_size(self.weight.shape[2:])}):")
            lines.append(format_array(self.weight, leading, full=full))
        lines.append(f"call: {self.call}")
        lines += self.padding_lines
        c_out = self.output.shape[0]
        out_size = _size(self.output.shape[1:])
        lines.append(f"output ({c_out} channel{'s' * (c_out != 1)}, {out_size}, {self.output.dtype}):")
        lines.append(format_array(self.output, ("channel",), full=full))
        lines.append(f"output size: O = {self.formula}")
        lines += [f"  {e}" for e in self.explanations]
        if self.explanation:
            lines.append("one output element, written out:")
            lines += [f"  {line}" for line in self.explanation.splitlines()]
        if not all(np.isfinite(a).all() for a in (self.input, self.weight, self.output) if a.dtype.kind in "fc"):
            lines.append("note: non-finite values (inf, nan) were met; they follow IEEE arithmetic "
                         "(inf - inf = nan, 0 * inf = nan, overflow gives inf)")
        summarised = [name for name, a in (("input", self.input), ("kernel", self.weight), ("output", self.output))
                      if _edgeitems(a, full) is not None]
        if summarised:
            lines.append(f"note: the {', '.join(summarised)} (over {THRESHOLD} values) "
                         f"{'is' if len(summarised) == 1 else 'are'} summarised with '...', as NumPy prints "
                         "them; `convlab conv --full` (or text(full=True)) prints every value")
        return "\n".join(lines)


def _call_text(name: str, settings: dict[str, object], defaults: dict[str, object]) -> str:
    shown = [f"{k}={v!r}" for k, v in settings.items() if v is not None and v != defaults.get(k)]
    return f"F.{name}(input, weight{''.join(', ' + s for s in shown)})"


def worked_example(
    input: object,
    weight: object,
    bias: object | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: object = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
    transposed: bool = False,
    output_padding: int | Sequence[int] = 0,
    title: str = "",
    notes: Sequence[str] = (),
    explain: Sequence[int] | None = None,
) -> WorkedExample:
    """Compute one unbatched (transposed) convolution with the engine and explain its shape.

    ``input`` is ``(C_in, *spatial)``; ``weight`` is ``(C_out, C_in/groups, *k)``
    or, when ``transposed``, ``(C_in, C_out/groups, *k)``. ``explain`` is the
    index of one output element (spatial, or ``(channel, *spatial)``) to write
    out as products and a sum; the written-out element is named by that index as
    given (``y[1, 1]`` or ``y[0, 1, 1]``). The settings are checked once, by
    :class:`~convlab.spec.ConvSpec` (e.g. ``output_padding`` applies to
    transposed convolution only); ``flip_kernel`` applies to convolution only. A
    transposed convolution with a ``padding_mode`` other than 'zeros' (the
    adjoint of the convolution with that mode) is computed by the N-d
    ``F.conv_transpose`` and cannot be explained element by element. Errors are
    the spec's and the engine's ``ValueError``/``TypeError``, raised before
    anything is printed.

    >>> ex = worked_example([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], [[[[0, 1], [2, 3]]]], explain=(0, 1, 1))
    >>> print(ex.explanation)
    y[0, 1, 1] = x[0,1,1]*w[0,0,0,0] + x[0,1,2]*w[0,0,0,1] + x[0,2,1]*w[0,0,1,0] + x[0,2,2]*w[0,0,1,1]
               = 4*0 + 5*1 + 7*2 + 8*3
               = 43
    """
    x = np.asarray(input)
    w = np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    # inf/nan in the input and float overflow give IEEE values (inf, nan), printed as values and noted by
    # WorkedExample.text; NumPy's RuntimeWarnings about them would only repeat that on stderr.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _worked_example(x, w, b, stride, padding, dilation, groups, padding_mode, flip_kernel, transposed,
                               output_padding, title, notes, explain)


def _worked_example(x, w, b, stride, padding, dilation, groups, padding_mode, flip_kernel, transposed,
                    output_padding, title, notes, explain) -> WorkedExample:
    nd = w.ndim - 2
    dims = _DIM_NAMES.get(nd, tuple(f"S{i}" for i in range(nd)))
    if transposed:
        name = f"conv_transpose{nd}d" if nd in (1, 2, 3) else "conv_transpose"
        if flip_kernel:
            raise ValueError(f"{name}: `flip_kernel` applies to convolution only, not to a transposed convolution")
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, transposed=True,
                        output_padding=output_padding, ndim=nd, name=name)
        if padding_mode != "zeros":  # the adjoint of the convolution with that mode: the N-d call takes it
            if explain is not None:
                raise ValueError(f"{name}: `explain` writes out padding_mode='zeros' only, got {padding_mode!r}")
            name = "conv_transpose"
        out = getattr(F, name)(x, w, b, stride, padding, output_padding, groups, dilation,
                               **({"padding_mode": padding_mode} if padding_mode != "zeros" else {}))
        settings = {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups,
                    "dilation": dilation, "padding_mode": padding_mode}
        defaults = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1,
                    "padding_mode": "zeros"}
        sizes = conv_transpose_output_shape(spec, x.shape[1:])
        pads = spec.padding
        padding_lines = []
        if explain is not None:
            explained = explain_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation,
                                               position=explain)
    else:
        name = f"conv{nd}d" if nd in (1, 2, 3) else "conv"
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, output_padding=output_padding,
                        ndim=nd, name=name)
        op = getattr(F, name) if nd in (1, 2, 3) else F.conv
        out = op(x, w, b, stride, padding, dilation, groups, padding_mode=padding_mode, flip_kernel=flip_kernel)
        settings = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                    "padding_mode": padding_mode, "flip_kernel": flip_kernel}
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros",
                    "flip_kernel": False}
        sizes = conv_output_shape(spec, x.shape[1:])
        pads = resolve_padding(spec, x.shape[1:])
        padding_lines = []
        if explain is not None:
            explained = explain_conv(x, w, b, stride, padding, dilation, groups, position=explain,
                                     padding_mode=padding_mode, flip_kernel=flip_kernel)
        if isinstance(padding, str) or any(lo != hi for lo, hi in pads):
            pairs = ", ".join(f"{d}: ({lo}, {hi})" for d, (lo, hi) in zip(dims, pads, strict=True))
            padding_lines.append(f"padding {padding!r} as (lo, hi) per dimension: {pairs}")
        for d, (lo, hi) in zip(dims, pads, strict=True):
            if isinstance(lo, Explained):  # 'same_tf': the padding itself comes from a rule
                padding_lines.append(f"  p_lo({d}) = {lo.explanation}")
                padding_lines.append(f"  p_hi({d}) = {hi.explanation}")
    if b is not None:
        settings = {"bias": b.tolist(), **settings}
    call = _call_text(name, settings, defaults)
    return WorkedExample(
        input=x, weight=w, output=out, call=call, padding_lines=padding_lines, formula=sizes[0].formula,
        explanations=[f"{d}_out = {s.explanation}" for d, s in zip(dims, sizes, strict=True)],
        transposed=transposed, title=title, notes=list(notes),
        explanation="" if explain is None else _as_given(explained, explain), sizes=tuple(sizes),
        padding=tuple((int(lo), int(hi)) for lo, hi in pads),
    )


def _as_given(explained: object, position: Sequence[int]) -> str:
    """The explanation's text with the element named by the index the caller gave, not its (n, c, *spatial) form."""
    return str(dataclasses.replace(explained, index=tuple(int(p) for p in position)))


# --------------------------------------------------------------------------- where an example writes


class Page:
    """Where an example writes: a text file (standard output by default), with headings and arrays.

    An example's title is ``"N. title"`` underlined with ``=`` when the demo
    numbers it, its steps are underlined with ``-``.

    >>> import io
    >>> page = Page(io.StringIO())
    >>> page.title("Edge detection", number=4)
    >>> page.array("output", np.array([[0, 1, -1]]))
    >>> print(page.file.getvalue(), end="")
    4. Edge detection
    =================
    output:
       0   1  -1
    """

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file if file is not None else sys.stdout

    def line(self, *lines: str) -> None:
        """Print each argument as a line (a string with newlines prints as several)."""
        for text in lines:
            print(text, file=self.file)

    def title(self, title: str, number: int | None = None) -> None:
        """The example's heading: ``"N. title"`` when numbered, underlined with ``=``."""
        text = f"{number}. {title}" if number is not None else title
        self.line(text, "=" * len(text))

    def step(self, title: str) -> None:
        """A step inside an example, after a blank line, underlined with ``-``."""
        self.line("", title, "-" * len(title))

    def array(self, label: str, array: object, leading: Sequence[str] = ()) -> None:
        """``label:`` and the array below it (``leading`` names its labelled axes, as in :func:`format_array`)."""
        self.line(f"{label}:", format_array(np.asarray(array), leading) if leading else format_matrix(array))

    def worked(self, example: WorkedExample) -> None:
        """A :class:`WorkedExample` after a blank line (its title underlined with ``-``)."""
        self.line("", example.text())
