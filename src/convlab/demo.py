"""A walk through the tutorials' worked examples, each computed by the engine.

Every step prints its input, kernel, settings, the output and the output-size
formula with the numbers substituted (from :mod:`convlab.shapes`, the one place
that knows the rule). The data lives here; nothing is downloaded. Run it with
``convlab demo`` or ``python -m convlab.demo``.

:func:`worked_example` is the piece ``convlab conv`` shares: compute one
(transposed) convolution with the engine and render it as text.

>>> ex = worked_example([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], [[[[0, 1], [2, 3]]]])
>>> ex.output.tolist()
[[[19, 25], [37, 43]]]
>>> print(ex.explanations[0])
H_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import functional as F
from .costs import conv_cost
from .ops.explain import explain_conv, explain_conv_transpose
from .shapes import Explained, conv_output_shape, conv_transpose_output_shape, resolve_padding
from .spec import ConvSpec

__all__ = ["WorkedExample", "format_array", "main", "run", "worked_example"]

_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


# --------------------------------------------------------------------------- formatting


def _format_value(value: object) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (complex, np.complexfloating)):
        return f"{complex(value):.6g}"
    value = float(value) + 0.0  # turns -0.0 into 0.0
    return f"{value:.6g}"


def format_matrix(matrix: np.ndarray, indent: str = "  ") -> str:
    """A 1-D or 2-D array as right-aligned columns, one row per line.

    >>> print(format_matrix(np.array([[1, -10], [100, 2]])))
        1  -10
      100    2
    """
    rows = np.atleast_2d(matrix)
    cells = [[_format_value(v) for v in row] for row in rows.tolist()]
    width = max((len(c) for row in cells for c in row), default=1)
    return "\n".join(indent + "  ".join(c.rjust(width) for c in row) for row in cells)


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def format_array(array: np.ndarray, leading: Sequence[str], indent: str = "  ") -> str:
    """An array whose first ``len(leading)`` axes are labelled (``'channel'``, ``'filter'``) and
    whose remaining 1 or 2 axes are shown as aligned matrices.

    Axes of size 1 are not labelled, so a one-channel 2-D image prints as a plain matrix.
    """
    array = np.asarray(array)
    lead = array.shape[: len(leading)]
    blocks = []
    for index in np.ndindex(*lead):
        label = ", ".join(f"{name} {i}" for name, i, n in zip(leading, index, lead, strict=True) if n > 1)
        body = format_matrix(array[index], indent + ("  " if label else ""))
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

    def text(self) -> str:
        """The example as readable text: input, kernel, settings, output, shape formula."""
        lines = []
        if self.title:
            lines += [self.title, "-" * len(self.title)]
        lines += [f"  {note}" for note in self.notes]
        c_in = self.input.shape[0]
        lines.append(f"input ({c_in} channel{'s' * (c_in != 1)}, {_size(self.input.shape[1:])}):")
        lines.append(format_array(self.input, ("channel",)))
        a, b = self.weight.shape[:2]
        if self.transposed:
            kernel_head = f"kernel ({a} input channel{'s' * (a != 1)} x {b} output channel{'s' * (b != 1)} per group"
            leading = ("input channel", "output channel")
        else:
            kernel_head = f"kernel ({a} filter{'s' * (a != 1)} x {b} channel{'s' * (b != 1)}"
            leading = ("filter", "channel")
        lines.append(f"{kernel_head}, {_size(self.weight.shape[2:])}):")
        lines.append(format_array(self.weight, leading))
        lines.append(f"call: {self.call}")
        lines += self.padding_lines
        c_out = self.output.shape[0]
        out_size = _size(self.output.shape[1:])
        lines.append(f"output ({c_out} channel{'s' * (c_out != 1)}, {out_size}, {self.output.dtype}):")
        lines.append(format_array(self.output, ("channel",)))
        lines.append(f"output size: O = {self.formula}")
        lines += [f"  {e}" for e in self.explanations]
        if self.explanation:
            lines.append("one output element, written out:")
            lines += [f"  {line}" for line in self.explanation.splitlines()]
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
    out as products and a sum. Errors are the engine's ``ValueError``/``TypeError``,
    raised before anything is printed.
    """
    x = np.asarray(input)
    w = np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    nd = w.ndim - 2
    dims = _DIM_NAMES.get(nd, tuple(f"S{i}" for i in range(nd)))
    if transposed:
        name = f"conv_transpose{nd}d" if nd in (1, 2, 3) else "conv_transpose"
        if flip_kernel:
            raise ValueError(f"{name}: `flip_kernel` applies to convolution only, not to a transposed convolution")
        op = getattr(F, name) if nd in (1, 2, 3) else F.conv_transpose
        out = op(x, w, b, stride, padding, output_padding, groups, dilation)
        settings = {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups,
                    "dilation": dilation}
        defaults = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, transposed=True,
                        output_padding=output_padding, ndim=nd, name=name)
        sizes = conv_transpose_output_shape(spec, x.shape[1:])
        padding_lines = []
        if explain is not None:
            explained = explain_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation,
                                               position=explain)
    else:
        name = f"conv{nd}d" if nd in (1, 2, 3) else "conv"
        op = getattr(F, name) if nd in (1, 2, 3) else F.conv
        out = op(x, w, b, stride, padding, dilation, groups, padding_mode=padding_mode, flip_kernel=flip_kernel)
        settings = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                    "padding_mode": padding_mode, "flip_kernel": flip_kernel}
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros",
                    "flip_kernel": False}
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, ndim=nd, name=name)
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
        explanation="" if explain is None else str(explained),
    )


# --------------------------------------------------------------------------- the walk

# Seed 000 (CSDN tutorial on convolution, padding, dilation and transposed convolution).
SEED000_INPUT = [[0, 1, 2, 3], [2, 1, 3, 2], [0, 1, 3, 0], [0, 4, 1, 2]]
SEED000_KERNEL = [[2, 1, 0], [2, 1, 0], [1, 0, 2]]
# Seed 003 (Dive into Deep Learning, TF2 edition, 5.1): the figure 5.1 example.
SEED003_INPUT = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
SEED003_KERNEL = [[0, 1], [2, 3]]
SEED003_OUTPUT = [[19, 25], [37, 43]]
# Seed 002 (a 3x3 input and a 2x2 kernel, explained by hand).
SEED002_INPUT = [[1, 0, 1], [2, 1, 0], [0, 1, 1]]
SEED002_KERNEL = [[1, 0], [0, 1]]
SEED002_PRINTED = [[2, 0], [3, 2]]


def _edge_image() -> np.ndarray:
    """Seed 003's 6x8 image: white (1) with the four middle columns black (0)."""
    image = np.ones((6, 8), dtype=np.int64)
    image[:, 2:6] = 0
    return image


def _steps() -> list[WorkedExample | str]:
    """The demo, in order: worked examples and short interludes of text."""
    x4, k3 = np.array([SEED000_INPUT]), np.array([[SEED000_KERNEL]])
    steps: list[WorkedExample | str] = []

    steps.append(worked_example(
        x4, k3, explain=(0, 0), title="1. Sliding a 3x3 kernel over a 4x4 input, stride 1 (seed 000)",
        notes=["Each output is the sum of the window times the kernel (cross-correlation, as in PyTorch)."]))
    steps.append(worked_example(
        x4, k3, stride=2, title="2. The same with stride 2 (seed 000)",
        notes=["The window jumps two positions; only one fits."]))
    steps.append(worked_example(
        x4, k3, padding=1, explain=(0, 0), title="3. The same with stride 1 and padding 1 (seed 000)",
        notes=["A ring of zeros around the input keeps the 4x4 size."]))

    ex = worked_example(
        [SEED003_INPUT], [[SEED003_KERNEL]], explain=(1, 1),
        title="4. Two-dimensional cross-correlation (seed 003, figure 5.1)",
        notes=["0*0 + 1*1 + 3*2 + 4*3 = 19, and so on; the tutorial's corr2d gives [[19, 25], [37, 43]]."])
    ex.notes.append(f"The engine agrees with the tutorial: {ex.output[0].tolist() == SEED003_OUTPUT}.")
    steps.append(ex)
    true_conv = worked_example(
        [SEED003_INPUT], [[SEED003_KERNEL]], flip_kernel=True,
        title="5. The true (flipped-kernel) convolution of the same arrays (seed 003)",
        notes=["Flipping the kernel up-down and left-right turns cross-correlation into convolution.",
               "The numbers differ, but a layer that learns its kernel would simply learn the flipped one,",
               "so deep learning computes cross-correlation and still calls it convolution."])
    steps.append(true_conv)

    seed002 = worked_example(
        [SEED002_INPUT], [[SEED002_KERNEL]], explain=(0, 0), title="6. A 3x3 input and a 2x2 kernel (seed 002)")
    engine = seed002.output[0].tolist()
    seed002.notes = [
        f"The tutorial prints {SEED002_PRINTED}; the engine gives {engine}"
        + (" (the same)." if engine == SEED002_PRINTED else " (they DIFFER)."),
        "Its hand computation of the first element, 1*1+0*2+0*1+1*0 = 1, disagrees with its own printed",
        f"{SEED002_PRINTED[0][0]}: the window [[1, 0], [2, 1]] meets the kernel as written out below "
        f"(= {int(seed002.output[0, 0, 0])}).",
        "(This kernel is unchanged by the 180-degree flip, so true convolution gives the same numbers.)",
    ]
    steps.append(seed002)

    edge = worked_example(
        _edge_image()[None], [[[[1, -1]]]], title="7. Edge detection with a 1x2 kernel [[1, -1]] (seed 003)",
        notes=["A 6x8 image of ones with the four middle columns zero; the kernel answers 0 where",
               "neighbours agree, 1 on the white-to-black edge and -1 on the black-to-white edge."])
    steps.append(edge)

    dilated = worked_example(
        x4, [[[[2, 1], [2, 1]]]], dilation=2,
        title="8. Dilation (atrous convolution): a 2x2 kernel at dilation 2 (seed 000)",
        notes=["Dilation 2 puts one hole between taps: the kernel [[2, 1], [2, 1]] covers 3x3."])
    inserted = worked_example(
        x4, [[[[2, 0, 1], [0, 0, 0], [2, 0, 1]]]],
        title="9. ... equals a 3x3 kernel with zeros inserted, at dilation 1",
        notes=["[[2, 0, 1], [0, 0, 0], [2, 0, 1]] at dilation 1 gives the same output as step 8."])
    same = np.array_equal(dilated.output, inserted.output)
    inserted.notes.append(f"Equal to step 8: {same}.")
    steps += [dilated, inserted]

    steps.append(worked_example(
        x4, [[[[1, 1], [1, 1]]]], padding="same",
        title="10. padding='same' (PyTorch): output size = input size at stride 1",
        notes=["The total padding d*(k-1) = 1 is odd; PyTorch puts the extra element on the right/bottom."]))
    steps.append(worked_example(
        x4, k3, stride=2, padding="same_tf",
        title="11. padding='same_tf' (TensorFlow/Keras/JAX 'same'): output = ceil(I / s) at any stride",
        notes=["The padding depends on the input size, so it is resolved by a rule of its own:"]))

    x_small = np.arange(1, 10).reshape(1, 3, 3)
    ones = np.ones((1, 1, 3, 3), dtype=np.int64)
    transposed = worked_example(
        x_small, ones, stride=2, padding=1, transposed=True, explain=(1, 1),
        title="12. Transposed convolution (deconvolution), s=2, p=1, k=3: 3x3 -> 5x5 (seed 000)",
        notes=["Insert s-1 = 1 zero between input elements, pad k-p-1 = 1 around, flip the kernel and",
               "run an ordinary stride-1 convolution (the seed's recipe)."])
    stuffed = np.zeros((1, 5, 5), dtype=np.int64)
    stuffed[:, ::2, ::2] = x_small
    recipe = F.conv2d(stuffed, ones, padding=1, flip_kernel=True)
    transposed.notes.append(f"The recipe gives the same 5x5 output: {np.array_equal(recipe, transposed.output)}.")
    steps.append(transposed)

    steps.append(_grouped_step())
    steps.append(_padding_modes_step())
    if hasattr(F, "max_pool2d") and hasattr(F, "avg_pool2d"):  # pooling arrived while this demo was written
        steps.append(_pooling_step())
    return steps


def _grouped_step() -> str:
    """Depthwise and grouped convolution with parameter and multiplication counts (seed 001)."""
    rng = np.random.default_rng(0)
    lines = ["13. Grouped and depthwise-separable convolution (seed 001)",
             "-" * 58]
    small = worked_example(
        np.array([SEED003_INPUT, np.eye(3, dtype=np.int64).tolist()]), [[[[1, 0], [0, 1]]], [[[0, 1], [2, 3]]]],
        groups=2, notes=["groups=2 with 2 channels (depthwise): each channel has its own kernel and",
                         "the channels never mix."])
    lines.append(small.text())
    lines.append("")
    lines.append("Seed 001's 7x7x3 -> 5x5x128 layer: one standard convolution, or a depthwise one followed")
    lines.append("by a pointwise (1x1) one; computed on random float32 data, counts from convlab.costs:")
    x = rng.standard_normal((1, 3, 7, 7)).astype(np.float32)
    depthwise = "depthwise 3x3, groups=3"
    layers = [  # (label, weight, groups, which output it reads: None = the input)
        ("standard 3x3, 3 -> 128", rng.standard_normal((128, 3, 3, 3)).astype(np.float32), 1, None),
        (depthwise, rng.standard_normal((3, 1, 3, 3)).astype(np.float32), 3, None),
        ("pointwise 1x1, 3 -> 128", rng.standard_normal((128, 3, 1, 1)).astype(np.float32), 1, depthwise),
    ]
    outputs: dict[str, np.ndarray] = {}
    costs = []
    rows = []
    for label, w, groups, source in layers:
        source_array = outputs[source] if source else x
        y = F.conv2d(source_array, w, groups=groups)
        outputs[label] = y
        cost = conv_cost(source_array.shape[1], w.shape[0], w.shape[2:], y.shape[2:], groups=groups)
        costs.append(cost)
        rows.append((label, _size(w.shape), _size(y.shape[1:]), cost.params, cost.multiplications))
    header = ("layer", "weight", "output", "params", "multiplications")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        lines.append("  " + "  ".join(str(v).ljust(widths[i]) if i < 3 else str(v).rjust(widths[i])
                                      for i, v in enumerate(r)))
    standard, separable = costs[0], costs[1] + costs[2]
    lines.append(f"  standard:  {standard.params} params, {standard.multiplications} multiplications")
    lines.append(f"  separable: {separable.params} params, {separable.multiplications} multiplications "
                 f"({100 * separable.ratio(standard):.0f}% of the standard layer's, as the seed says)")
    return "\n".join(lines)


def _padding_modes_step() -> str:
    """The five padding modes on 1 2 3 4, padded by 2 (a 1-tap kernel shows the padded signal)."""
    lines = ["14. Padding modes, shown on 1 2 3 4 padded by 2 on each side", "-" * 61]
    signal = np.array([[1, 2, 3, 4]])
    for mode in ("zeros", "reflect", "replicate", "circular", "symmetric"):
        padded = F.conv1d(signal, np.array([[[1]]]), padding=2, padding_mode=mode)
        lines.append(f"  {mode:<10} {' '.join(map(str, padded[0].tolist()))}")
    return "\n".join(lines)


def _pooling_step() -> str:
    """Seed 004's pool2d: max and average of every 2x2 window of the figure 5.1 input."""
    from .ops.explain import explain_pool
    from .shapes import pool_output_shape
    from .spec import PoolSpec

    x = np.array([SEED003_INPUT], dtype=np.float64)
    lines = ["15. Max and average pooling, 2x2 window, stride 1 (seed 004's pool2d)", "-" * 70,
             "  A pooling window has no weights: it returns the maximum or the mean of what it covers.",
             "input (1 channel, 3x3):", format_matrix(x[0]), "call: F.max_pool2d(input, 2, stride=1)",
             "output:", format_matrix(F.max_pool2d(x, 2, stride=1)[0]),
             "call: F.avg_pool2d(input, 2, stride=1)",
             "output:", format_matrix(F.avg_pool2d(x, 2, stride=1)[0])]
    sizes = pool_output_shape(PoolSpec(2, stride=1, ndim=2, name="max_pool2d"), x.shape[1:])
    lines.append(f"output size: O = {sizes[0].formula}")
    lines += [f"  {d}_out = {size.explanation}" for d, size in zip(("H", "W"), sizes, strict=True)]
    lines.append("the first element of each, written out:")
    for mode in ("max", "avg"):
        lines += [f"  {line}" for line in str(explain_pool(x, (2, 2), stride=1, position=(0, 0), mode=mode))
                  .splitlines()]
    lines.append("Without a stride PyTorch (and convlab) use stride = kernel size: F.max_pool2d(input, 2)")
    lines.append("on the 4x4 input of step 1 keeps one maximum per 2x2 block:")
    lines.append(format_matrix(F.max_pool2d(np.array([SEED000_INPUT]), 2)[0]))
    return "\n".join(lines)


def run(file=None) -> None:
    """Print the whole walk to ``file`` (standard output by default)."""
    out = file or sys.stdout
    print("convlab demo: the tutorials' worked examples, computed by the engine", file=out)
    print("(import convlab.functional as F; arrays are (C, H, W) without a batch axis here)", file=out)
    for step in _steps():
        print(file=out)
        print(step.text() if isinstance(step, WorkedExample) else step, file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convlab demo`` and ``python -m convlab.demo``."""
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
