"""What an animation shows, from the engine's own description of every output (no drawing here).

A :class:`Scene` holds the input canvas (the padded input, or for a transposed
convolution the input with zeros inserted between its elements and the
padding around them), the kind of every canvas cell, the labels, and one
:class:`~convlab.ops.explain.OutputExplanation` per output element, in frame
order. The sliding rule is the engine's: every highlighted cell is a tap (or a
skipped window position) of ``convlab.ops.explain``; the canvas is only the
union of those positions with the input and its padding.

Coordinates: a tap's ``padded_position`` is in the padded input for convolution
and pooling, and in the zero-inserted input (input element ``i`` at ``i*stride``)
for a transposed convolution; canvas cell ``j`` holds tap position
``origin + j`` in each dimension.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..ops.explain import OutputExplanation, explain_conv, explain_conv_transpose, explain_pool
from ..ops.padding import source_index
from ..shapes import conv_output_shape, conv_transpose_output_shape, pool_output_shape, resolve_padding
from ..spec import ConvSpec, PoolSpec

# Kinds of input-canvas cells.
INPUT, PADDING, ZERO, OUTSIDE = 0, 1, 2, 3
KIND_NAMES = {INPUT: "input", PADDING: "padding", ZERO: "inserted zero", OUTSIDE: "outside the padded input"}

# Bounds checked before anything is explained or drawn (the refusals name them and the requested number).
MAX_CELLS = 4096  # cells of the drawn input over all channels (a 64x64 padded input)
MAX_SIDE = 256  # cells along one dimension of the drawn input (a 1-D row)
MAX_FRAMES = 4096  # frames: one per output element
MAX_TAPS = 1 << 18  # kernel positions written out over all frames

_DIM_NAMES = {1: ("L",), 2: ("H", "W")}


@dataclass
class Scene:
    """Everything one animation shows, computed by the engine; see the module docstring for coordinates."""

    op: str  # 'conv', 'conv_transpose', 'max_pool', 'avg_pool'
    name: str  # the functional's name, e.g. 'conv2d'
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    canvas_shape: tuple[int, ...]
    origin: tuple[int, ...]
    kinds: np.ndarray  # (canvas_shape) int8: INPUT, PADDING, ZERO, OUTSIDE
    input_labels: list[np.ndarray]  # per input channel, (canvas_shape) of str
    explanations: list[OutputExplanation]  # one per output element, order (channel, *spatial) row-major
    output_labels: list[str]  # the value of each output element ('' without values)
    labels: str  # 'values', 'indices' or 'none'
    title: str
    lines: list[str]  # the size formula with the numbers substituted, padding, notes
    padding_drawn: tuple[tuple[int, int], ...] = ()  # padding cells before/after the input, per dimension
    notes: list[str] = field(default_factory=list)

    @property
    def ndim(self) -> int:
        return len(self.output_size)

    def canvas(self, position) -> tuple[int, ...]:
        """Canvas cell of a tap's ``padded_position``."""
        return tuple(int(p) - o for p, o in zip(position, self.origin, strict=True))

    def output_position(self, frame: int) -> tuple[int, tuple[int, ...]]:
        """(output channel, spatial index) of a frame's output element."""
        index = self.explanations[frame].index
        return int(index[1]), tuple(int(i) for i in index[2:])

    def window(self, frame: int) -> dict[int, list[tuple[tuple[int, ...], str]]]:
        """Per input channel: the canvas cells of the window and their role ('tap', 'chosen' or 'skipped')."""
        e = self.explanations[frame]
        out: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        for i, tap in enumerate(e.taps):
            role = "chosen" if (e.chosen == i and self.labels == "values") else "tap"
            out.setdefault(tap.channel, []).append((self.canvas(tap.padded_position), role))
        for tap in e.skipped:
            out.setdefault(tap.channel, []).append((self.canvas(tap.padded_position), "skipped"))
        return out

    def gaps(self, cells: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Cells inside the window's bounding box that the window does not read: the dilation gaps."""
        if not cells:
            return []
        lo = [min(c[d] for c in cells) for d in range(self.ndim)]
        hi = [max(c[d] for c in cells) for d in range(self.ndim)]
        taken = set(cells)
        return [c for c in itertools.product(*(range(a, b + 1) for a, b in zip(lo, hi, strict=True)))
                if c not in taken]

    def equation(self, frame: int) -> str:
        """The engine's text of this output element (``convlab conv --explain``), named ``y[channel, *index]``."""
        e = self.explanations[frame]
        e = dataclasses.replace(e, index=e.index[1:])
        text = str(e)
        if self.labels != "values":  # without numbers only the first line (which inputs meet which weights)
            text = text.splitlines()[0]
        return text


def format_value(value: object) -> str:
    """A cell's number: integers as integers, others with 3 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if math.isfinite(v) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.3g}"


def _index_text(index: tuple[int, ...]) -> str:
    return ",".join(map(str, index))


def check_limit(what: str, requested: int, limit: int, hint: str) -> None:
    if requested > limit:
        raise ValueError(f"animate: the animation would have {requested} {what}, more than the limit of {limit} "
                         f"({hint})")


def build_scene(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, *, kernel_size, stride, padding,
                dilation, groups: int, padding_mode: str, flip_kernel: bool, transposed: bool, output_padding,
                pool: str | None, ceil_mode: bool, count_include_pad: bool, labels: str,
                max_cells: int = MAX_CELLS, max_frames: int = MAX_FRAMES) -> Scene:
    """The scene of one (transposed) convolution or pooling of ``x`` (``(C_in, *spatial)``, unbatched).

    Sizes are checked against the limits (cells, frames, taps) before any output is explained.
    """
    nd = x.ndim - 1
    size = tuple(int(s) for s in x.shape[1:])
    c_in = int(x.shape[0])
    dims = _DIM_NAMES.get(nd, tuple(f"S{i}" for i in range(nd)))
    if pool is not None:
        op = f"{pool}_pool"
        name = f"{pool}_pool{nd}d"
        spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, ndim=nd, name=name)
        out = pool_output_shape(spec, size)
        pads = spec.padding
        c_out = c_in
        kernel = spec.kernel_size
        per_output_taps = math.prod(kernel)
        # Window positions reach at most (O-1)*s + d*(k-1) (ceil mode may pass the padded input).
        extents = [max(n + lo + hi, (o - 1) * s + d * (k - 1) + 1)
                   for n, (lo, hi), o, s, d, k in zip(size, pads, out, spec.stride, spec.dilation, kernel, strict=True)]
    elif transposed:
        op, name = "conv_transpose", f"conv_transpose{nd}d"
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, transposed=True,
                        output_padding=output_padding, ndim=nd, name=name)
        if padding_mode != "zeros":
            raise ValueError(f"animate: a transposed convolution is drawn with padding_mode='zeros' only (the "
                             f"engine's explain_conv_transpose writes that mode out), got {padding_mode!r}")
        if flip_kernel:
            raise ValueError("animate: `flip_kernel` applies to convolution only, not to a transposed convolution")
        if c_in % spec.groups or int(w.shape[0]) != c_in:
            raise ValueError(f"animate: `groups` (={spec.groups}) must divide the input channels (={c_in}), which must "
                             f"equal the weight's first dimension (weight {tuple(w.shape)}: (C_in, C_out/groups, *k))")
        out = conv_transpose_output_shape(spec, size)
        pads = spec.padding
        c_out = int(w.shape[1]) * spec.groups
        kernel = spec.kernel_size
        per_output_taps = (c_in // spec.groups) * math.prod(kernel)
        # The window of output q covers q + p_lo - d*k (k = 0..K-1); the input spans 0..(I-1)*s.
        extents = [max((n - 1) * s, o - 1 + lo) - min(0, lo - d * (k - 1)) + 1
                   for n, (lo, _), o, s, d, k in zip(size, pads, out, spec.stride, spec.dilation, kernel, strict=True)]
    else:
        op, name = "conv", f"conv{nd}d"
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, ndim=nd, name=name)
        if int(w.shape[0]) % spec.groups or c_in != int(w.shape[1]) * spec.groups:
            raise ValueError(f"animate: `groups` (={spec.groups}) must divide the output channels (={w.shape[0]}), and "
                             f"the input channels (={c_in}) must be weight.shape[1] * groups (={w.shape[1]} * "
                             f"{spec.groups}; weight {tuple(w.shape)}: (C_out, C_in/groups, *k))")
        out = conv_output_shape(spec, size)
        pads = resolve_padding(spec, size)
        c_out = int(w.shape[0])
        kernel = spec.kernel_size
        per_output_taps = int(w.shape[1]) * math.prod(kernel)
        extents = [n + lo + hi for n, (lo, hi) in zip(size, pads, strict=True)]
    side = max(extents)
    check_limit("cells along one dimension of the drawn input", side, MAX_SIDE,
                f"drawn input {'x'.join(map(str, extents))}: padding and inserted zeros included")
    cells = c_in * math.prod(extents)
    check_limit("input cells", cells, max_cells,
                f"{c_in} channel{'s' * (c_in != 1)} of {'x'.join(map(str, extents))} cells, padding and inserted "
                "zeros included")
    frames = c_out * math.prod(int(o) for o in out)
    check_limit("frames", frames, max_frames,
                f"one per output element: {c_out} channel{'s' * (c_out != 1)} of {'x'.join(map(str, map(int, out)))}")
    check_limit("kernel positions written out", frames * per_output_taps, MAX_TAPS,
                f"{frames} frames of {per_output_taps} each")

    # One explanation per output element, from the engine.
    xb = x[None]
    explanations = []
    for c in range(c_out):
        for p in itertools.product(*(range(int(o)) for o in out)):
            position = (0, c) + p
            if pool is not None:
                e = explain_pool(xb, kernel_size, stride, padding, dilation, position=position, mode=pool,
                                 ceil_mode=ceil_mode, count_include_pad=count_include_pad, ndim=nd)
            elif transposed:
                e = explain_conv_transpose(xb, w, b, stride, padding, output_padding, groups, dilation,
                                           position=position)
            else:
                e = explain_conv(xb, w, b, stride, padding, dilation, groups, position=position,
                                 padding_mode=padding_mode, flip_kernel=flip_kernel)
            explanations.append(e)

    # The canvas: the input (and its padding) united with every window position.
    if transposed:
        s_ = spec.stride
        low = [0] * nd
        high = [(n - 1) * s for n, s in zip(size, s_, strict=True)]
    else:
        low = [0] * nd
        high = [n + lo + hi - 1 for n, (lo, hi) in zip(size, pads, strict=True)]
    for e in explanations:
        for tap in itertools.chain(e.taps, e.skipped):
            for d, q in enumerate(tap.padded_position):
                low[d] = min(low[d], int(q))
                high[d] = max(high[d], int(q))
    origin = tuple(low)
    shape = tuple(h - lo + 1 for lo, h in zip(low, high, strict=True))
    coords = [np.arange(lo, h + 1) for lo, h in zip(low, high, strict=True)]  # tap coordinates per dimension

    # Kind and source (input index per dimension, -1 for none) of every canvas cell, per dimension.
    kind_1d, source_1d = [], []
    for d in range(nd):
        q = coords[d]
        n = size[d]
        if transposed:
            s = spec.stride[d]
            inside = (q >= 0) & (q <= (n - 1) * s)
            kind = np.where(inside & (q % s == 0), INPUT, np.where(inside, ZERO, PADDING))
            source = np.where(kind == INPUT, q // s, -1)
        else:
            lo, hi = (int(v) for v in pads[d])
            in_padded = (q >= 0) & (q < n + lo + hi)
            kind = np.where((q >= lo) & (q < lo + n), INPUT, np.where(in_padded, PADDING, OUTSIDE))
            if pool is None and padding_mode != "zeros":
                mode = padding_mode
                mapped = source_index(name, mode, n, lo, hi, d)  # the engine's padding map
                source = np.where(in_padded, mapped[np.clip(q, 0, n + lo + hi - 1)], -1)
            else:
                source = np.where(kind == INPUT, q - lo, -1)
        kind_1d.append(kind)
        source_1d.append(source)
    grids = np.meshgrid(*kind_1d, indexing="ij")
    kinds = np.full(shape, INPUT, dtype=np.int8)
    for g in grids:  # padding wins over an inserted zero, outside over both
        kinds = np.maximum(kinds, np.where(g == ZERO, 1, np.where(g == PADDING, 2, np.where(g == OUTSIDE, 3, 0))))
    kinds = np.choose(kinds, [INPUT, ZERO, PADDING, OUTSIDE]).astype(np.int8)

    input_labels = []
    for c in range(c_in):
        grid = np.full(shape, "", dtype=object)
        if labels != "none":
            for cell in itertools.product(*(range(s) for s in shape)):
                src = tuple(int(source_1d[d][cell[d]]) for d in range(nd))
                if any(v < 0 for v in src):
                    continue
                grid[cell] = format_value(x[(c,) + src]) if labels == "values" else _index_text(src)
        input_labels.append(grid)
    output_labels = [format_value(e.result) if labels == "values" else
                     (_index_text(e.index[2:]) if labels == "indices" else "") for e in explanations]

    # Padding drawn before and after the input along each dimension (for the caption).
    padding_drawn = []
    for d in range(nd):
        k = kind_1d[d]
        first = int(np.argmax(k != PADDING)) if (k != PADDING).any() else len(k)
        last = int(np.argmax(k[::-1] != PADDING)) if (k != PADDING).any() else 0
        padding_drawn.append((first, last))

    title, lines = _caption(op, name, spec, size, out, pads, dims, c_in, c_out, padding, padding_mode, transposed,
                            pool, tuple(padding_drawn), shape)
    if flip_kernel:
        lines.insert(0, "flip_kernel: true convolution, the kernel is flipped in every dimension (w[..., k-1-i])")
    if b is not None:
        lines.insert(0, "with a bias: each output adds b[channel] (written as + b)")
    return Scene(op=op, name=name, input_size=size, output_size=tuple(int(o) for o in out), in_channels=c_in,
                 out_channels=c_out, canvas_shape=shape, origin=origin, kinds=kinds, input_labels=input_labels,
                 explanations=explanations, output_labels=output_labels, labels=labels, title=title, lines=lines,
                 padding_drawn=tuple(padding_drawn))


def _size_text(size) -> str:
    return "x".join(str(int(s)) for s in size)


def _caption(op, name, spec, size, out, pads, dims, c_in, c_out, padding, padding_mode, transposed, pool,
             padding_drawn, shape) -> tuple[str, list[str]]:
    parts = [f"{name}: input {c_in}x{_size_text(size)}", f"kernel {_size_text(spec.kernel_size)}"]
    if any(s != 1 for s in spec.stride) or pool is not None:
        parts.append(f"stride {_size_text(spec.stride)}")
    if isinstance(padding, str):
        parts.append(f"padding {padding!r}")
    elif any(v for pair in pads for v in pair):
        parts.append("padding " + ",".join(f"{int(lo)}:{int(hi)}" if lo != hi else str(int(lo)) for lo, hi in pads))
    if pool is None and padding_mode != "zeros":
        parts.append(f"{padding_mode} padding")
    if any(d != 1 for d in spec.dilation):
        parts.append(f"dilation {_size_text(spec.dilation)}")
    if pool is None and spec.groups != 1:
        parts.append(f"groups {spec.groups}")
    if transposed and any(spec.output_padding):
        parts.append(f"output_padding {_size_text(spec.output_padding)}")
    if pool is not None and spec.ceil_mode:
        parts.append("ceil_mode")
    title = ", ".join(parts) + f" -> output {c_out}x{_size_text(out)}"
    lines = [f"output size: O = {out[0].formula}"]
    lines += [f"  {d}_out = {o.explanation}" for d, o in zip(dims, out, strict=True)]
    if padding == "same_tf":
        for d, (lo, hi) in zip(dims, pads, strict=True):
            lines.append(f"  p_lo({d}) = {lo.explanation};  p_hi({d}) = {hi.explanation}")
    if transposed:
        zeros = [s - 1 for s in spec.stride]
        drawn = ", ".join(f"{d}: {lo} before, {hi} after" for d, (lo, hi) in zip(dims, padding_drawn, strict=True))
        lines.append(f"drawn as a stride-1 convolution of the input with {_size_text(zeros)} zero(s) inserted "
                     f"between elements and padding ({drawn}), drawn input {_size_text(shape)}")
        if any(spec.output_padding):
            lines.append("output_padding adds its rows/columns on the high side (bottom/right), as torch does")
    if pool is None and spec.groups != 1:
        lines.append(f"all channels are drawn: output channel c reads the {c_in // spec.groups} input channel(s) "
                     f"of its group (groups={spec.groups})")
    if op == "max_pool":
        lines.append("max pooling: the padding is -inf (never chosen); the maximum is drawn in blue")
    return title, lines
