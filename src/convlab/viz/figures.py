"""Static figures drawn from the engine's and the analysis' own numbers.

Each ``*_counts``/``*_array`` function returns the numbers a picture shows; the
picture function draws them and returns a :class:`matplotlib.figure.Figure` on an
Agg canvas (no pyplot, :mod:`convlab.viz._style`), titled with its parameters. Only
the command line (``convlab draw``) writes files.

* :func:`coverage_counts` / :func:`coverage`: how many kernel windows cover each input
  pixel -- the engine's input gradient of all-ones (``conv_input_grad``), so the count
  is the engine's sliding rule, not a second one;
* :func:`checkerboard_counts` / :func:`checkerboard`: how many kernel taps write each
  output pixel of a transposed convolution (the engine's ``conv_transpose`` of ones):
  uneven when the kernel size is not divisible by the stride (Odena, Dumoulin & Olah,
  "Deconvolution and Checkerboard Artifacts", Distill 2016);
* :func:`conv_matrix`: the convolution matrix ``C`` (``convlab.functional.conv_matrix``)
  beside the input and output grids (seed 001: a 3x3 kernel on a 4x4 input gives 4x16);
* :func:`feature_maps`, :func:`kernels`: a model's activations and weights;
* :func:`receptive_field`: the analysis' theoretical fields (size, jump, start) of one unit,
  layer by layer, on the input;
* :func:`erf`: an :class:`~convlab.analysis.EffectiveReceptiveField` as a heat map with its
  theoretical field's outline;
* :func:`curves`: training curves from a run's ``metrics.jsonl``;
* :func:`correlation_matrix` / :func:`correlation`: the correlation of the filters of two
  adjacent layers (their responses), after Ioannou et al.'s Deep Roots figures.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._style import COUNTS, DIVERGING, SEQUENTIAL, new_figure, signed_limits

__all__ = [
    "checkerboard",
    "checkerboard_counts",
    "conv_matrix",
    "correlation",
    "correlation_matrix",
    "coverage",
    "coverage_counts",
    "curves",
    "erf",
    "erf_panel",
    "feature_map_arrays",
    "feature_maps",
    "kernels",
    "layer_module",
    "read_metrics",
    "receptive_field",
    "receptive_field_boxes",
]

#: Largest grid a counting figure draws (cells), and most channels a feature-map row shows.
MAX_CELLS = 4096
MAX_TILES = 64


def _pair(fn: str, name: str, value: object) -> tuple[int, int]:
    """An int or a pair of ints (``(h, w)``) as a pair, each checked by the spec's integer rule."""
    from ..spec import as_int

    values = value if isinstance(value, Sequence) and not isinstance(value, str) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{fn}: `{name}` must be an int or a pair (height, width), got {value!r}")
    return as_int(fn, name, values[0]), as_int(fn, name, values[1])


def _positive(fn: str, name: str, value: object, *, allow_zero: bool = False) -> tuple[int, int]:
    pair = _pair(fn, name, value)
    low = 0 if allow_zero else 1
    if min(pair) < low:
        raise ValueError(f"{fn}: `{name}` (={value!r}) must be >= {low}")
    return pair


def _check_cells(fn: str, shape: Sequence[int]) -> None:
    cells = int(np.prod(shape))
    if cells > MAX_CELLS:
        raise ValueError(f"{fn}: the grid {tuple(shape)} has {cells} cells; a figure draws at most {MAX_CELLS} "
                         f"(use a smaller size)")


def _annotate(ax: Any, values: np.ndarray, fmt: str = "{:g}") -> None:
    """Write each value in its cell, dark on light cells and light on dark ones."""
    if values.size > 400:
        return
    high, low = float(values.max()), float(values.min())
    middle = (high + low) / 2
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                color="black" if v > middle else "white")


def _grid_axes(ax: Any, shape: Sequence[int]) -> None:
    ax.set_xticks(np.arange(shape[1]))
    ax.set_yticks(np.arange(shape[0]))
    ax.tick_params(labelsize=7)


# --------------------------------------------------------------------------- coverage and checkerboard


def check_fits(fn: str, size: Sequence[int], k: Sequence[int], p: Sequence[int], d: Sequence[int]) -> None:
    """A ValueError unless the (dilated) kernel fits in the padded input along both axes."""
    for dim in range(2):
        span = d[dim] * (k[dim] - 1) + 1
        if span > size[dim] + 2 * p[dim]:
            raise ValueError(f"{fn}: the kernel ({k[dim]}, dilated to {span}) is larger than the padded input "
                             f"({size[dim]} + 2*{p[dim]} = {size[dim] + 2 * p[dim]}) in spatial dimension {dim}")


def coverage_counts(input_size: int | Sequence[int], kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
                    padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1) -> np.ndarray:
    """How many windows of a 2-d convolution read each input pixel (``(H, W)`` int64).

    The engine's input gradient of an all-ones kernel with an all-ones output gradient:
    ``conv_input_grad`` adds one per window an element sits in (seed 000: padding 0, 3x3,
    stride 1 on 5x5 covers the corners once and the middle nine times).

    >>> coverage_counts(5, 3)
    array([[1, 2, 3, 2, 1],
           [2, 4, 6, 4, 2],
           [3, 6, 9, 6, 3],
           [2, 4, 6, 4, 2],
           [1, 2, 3, 2, 1]])
    """
    from .. import functional as F
    from ..shapes import conv_output_length

    fn = "coverage"
    size = _positive(fn, "input_size", input_size)
    k = _positive(fn, "kernel_size", kernel_size)
    s = _positive(fn, "stride", stride)
    p = _positive(fn, "padding", padding, allow_zero=True)
    d = _positive(fn, "dilation", dilation)
    _check_cells(fn, size)
    check_fits(fn, size, k, p, d)
    out = [int(conv_output_length(size[dim], k[dim], s[dim], p[dim], d[dim])) for dim in range(2)]
    grad = F.conv_input_grad((1, 1, *size), np.ones((1, 1, *k), np.int64), np.ones((1, 1, *out), np.int64),
                             stride=s, padding=p, dilation=d)
    return np.asarray(grad[0, 0], dtype=np.int64)


def checkerboard_counts(input_size: int | Sequence[int], kernel_size: int | Sequence[int],
                        stride: int | Sequence[int] = 2, padding: int | Sequence[int] = 0) -> np.ndarray:
    """How many input-kernel products a transposed convolution adds into each output pixel (``(H, W)`` int64).

    The engine's ``conv_transpose`` of an all-ones input with an all-ones kernel: with a kernel
    size not divisible by the stride the counts alternate (Odena et al., Distill 2016), e.g. a
    3-tap kernel at stride 2 writes 1, 2, 1, 2, ... along each axis.

    >>> checkerboard_counts(3, 3, 2)
    array([[1, 1, 2, 1, 2, 1, 1],
           [1, 1, 2, 1, 2, 1, 1],
           [2, 2, 4, 2, 4, 2, 2],
           [1, 1, 2, 1, 2, 1, 1],
           [2, 2, 4, 2, 4, 2, 2],
           [1, 1, 2, 1, 2, 1, 1],
           [1, 1, 2, 1, 2, 1, 1]])
    """
    from .. import functional as F

    fn = "checkerboard"
    size = _positive(fn, "input_size", input_size)
    k = _positive(fn, "kernel_size", kernel_size)
    s = _positive(fn, "stride", stride)
    p = _positive(fn, "padding", padding, allow_zero=True)
    out_size = [(size[i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(2)]  # torch's ConvTranspose2d size rule
    if min(out_size) < 1:
        raise ValueError(f"{fn}: the output would be empty ({out_size}); padding {p} is too large for the "
                         f"kernel {k} and input {size}")
    _check_cells(fn, out_size)
    y = F.conv_transpose(np.ones((1, 1, *size), np.int64), np.ones((1, 1, *k), np.int64), stride=s, padding=p)
    return np.asarray(y[0, 0], dtype=np.int64)


def _count_figure(counts: np.ndarray, title: str, label: str) -> Any:
    h, w = counts.shape
    fig = new_figure(max(3.0, 0.45 * w + 1.5), max(2.6, 0.45 * h + 1.0))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap=COUNTS, vmin=0, interpolation="nearest")
    _annotate(ax, counts, "{:d}")
    _grid_axes(ax, counts.shape)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    ax.set_title(title, fontsize=9)
    return fig


def coverage(input_size: int | Sequence[int] = 5, kernel_size: int | Sequence[int] = 3,
             stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
             dilation: int | Sequence[int] = 1) -> Any:
    """The coverage counts (:func:`coverage_counts`) as an annotated heat map."""
    counts = coverage_counts(input_size, kernel_size, stride, padding, dilation)
    title = (f"coverage: input {_size(input_size)}, kernel {_size(kernel_size)}, stride {_size(stride)}, "
             f"padding {_size(padding)}, dilation {_size(dilation)}")
    return _count_figure(counts, title, "windows covering the pixel")


def checkerboard(input_size: int | Sequence[int] = 5, kernel_size: int | Sequence[int] = 3,
                 stride: int | Sequence[int] = 2, padding: int | Sequence[int] = 0) -> Any:
    """The overlap map of a transposed convolution (:func:`checkerboard_counts`) as an annotated heat map."""
    counts = checkerboard_counts(input_size, kernel_size, stride, padding)
    k, s = _pair("checkerboard", "kernel_size", kernel_size), _pair("checkerboard", "stride", stride)
    even = all(ki % si == 0 for ki, si in zip(k, s, strict=True))
    pattern = "even overlap" if even else "kernel not divisible by stride: checkerboard"
    title = (f"transposed conv overlap: input {_size(input_size)}, kernel {_size(kernel_size)}, stride "
             f"{_size(stride)}, padding {_size(padding)} ({pattern})")
    return _count_figure(counts, title, "products summed into the pixel")


def _size(value: object) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "x".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- the convolution matrix


def conv_matrix(input_size: int | Sequence[int] = 4, kernel_size: int | Sequence[int] = 3, *,
                weight: np.ndarray | None = None, stride: int | Sequence[int] = 1,
                padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1) -> Any:
    """The convolution matrix ``C`` (``vec(y) = C @ vec(x)``) as a heat map, beside the input and output grids.

    The kernel is ``weight`` (2-d) or ``1 .. k*k``; ``C`` is ``convlab.functional.conv_matrix``'s, its
    rows are output cells and its columns input cells, both in row-major order (seed 001: 4x16).
    ``fig.axes[1].images[0].get_array()`` is ``C``.
    """
    from .. import functional as F

    fn = "conv_matrix"
    size = _positive(fn, "input_size", input_size)
    if weight is None:
        k = _positive(fn, "kernel_size", kernel_size)
        kernel = np.arange(1, k[0] * k[1] + 1, dtype=np.float64).reshape(k)
    else:
        kernel = np.asarray(weight, dtype=np.float64)
        if kernel.ndim != 2:
            raise ValueError(f"{fn}: `weight` must be a 2-d kernel, got the shape {kernel.shape}")
    if size[0] * size[1] > 64:
        raise ValueError(f"{fn}: the input {size} has {size[0] * size[1]} cells; the matrix figure draws at most 64")
    check_fits(fn, size, kernel.shape, _positive(fn, "padding", padding, allow_zero=True),
               _positive(fn, "dilation", dilation))
    matrix = F.conv_matrix(kernel[None, None], size, stride=stride, padding=padding, dilation=dilation)
    matrix = np.asarray(matrix)
    n_out = matrix.shape[0]
    x = np.arange(size[0] * size[1]).reshape(size)
    from ..shapes import conv_output_length

    s, p, d = _pair(fn, "stride", stride), _pair(fn, "padding", padding), _pair(fn, "dilation", dilation)
    out_shape = tuple(int(conv_output_length(size[i], kernel.shape[i], s[i], p[i], d[i])) for i in range(2))
    fig = new_figure(3.0 + 0.32 * matrix.shape[1], 2.2 + 0.32 * n_out)
    grid = fig.add_gridspec(1, 3, width_ratios=[size[1], matrix.shape[1], max(out_shape[1], 1)])
    ax_in, ax_c, ax_out = (fig.add_subplot(grid[0, i]) for i in range(3))
    ax_in.imshow(np.zeros(size), cmap="Greys", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(x):
        ax_in.text(j, i, f"x{v}", ha="center", va="center", fontsize=7)
    ax_in.set_title(f"input {size[0]}x{size[1]}\n(column j of C = x_j)", fontsize=8)
    _grid_axes(ax_in, size)
    lo, hi = signed_limits(matrix)
    image = ax_c.imshow(matrix, cmap=DIVERGING, vmin=lo, vmax=hi, interpolation="nearest")
    _annotate_signed(ax_c, matrix)
    ax_c.set_xlabel("input cell (row-major)", fontsize=8)
    ax_c.set_ylabel("output cell", fontsize=8)
    _grid_axes(ax_c, matrix.shape)
    fig.colorbar(image, ax=ax_c, shrink=0.7, label="weight")
    ax_c.set_title(f"C ({matrix.shape[0]}x{matrix.shape[1]}): vec(y) = C vec(x)", fontsize=8)
    ax_out.imshow(np.zeros(out_shape), cmap="Greys", vmin=0, vmax=1)
    for (i, j), _ in np.ndenumerate(np.zeros(out_shape)):
        ax_out.text(j, i, f"y{i * out_shape[1] + j}", ha="center", va="center", fontsize=7)
    ax_out.set_title(f"output {out_shape[0]}x{out_shape[1]}", fontsize=8)
    _grid_axes(ax_out, out_shape)
    kernel_text = f"1..{kernel.size}" if weight is None else "given"
    fig.suptitle(f"convolution matrix: input {size[0]}x{size[1]}, kernel {kernel.shape[0]}x{kernel.shape[1]} "
                 f"({kernel_text}), stride {_size(stride)}, padding {_size(padding)}, dilation {_size(dilation)}",
                 fontsize=9)
    return fig


def _annotate_signed(ax: Any, values: np.ndarray) -> None:
    if values.size > 400:
        return
    for (i, j), v in np.ndenumerate(values):
        if v != 0:
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=6, color="black")


# --------------------------------------------------------------------------- layers of a model


def _named_modules(model: Any) -> dict[str, Any]:
    return {name: module for name, module in model.named_modules() if name}


def layer_module(model: Any, layer: str, fn: str = "layer") -> Any:
    """The submodule named ``layer`` (as in ``model.named_modules()``), or a ValueError listing close names."""
    modules = _named_modules(model)
    if not isinstance(layer, str) or layer not in modules:
        names = list(modules)
        close = difflib.get_close_matches(str(layer), names, n=5, cutoff=0.4)
        hint = f"close names: {', '.join(close)}" if close else f"names: {', '.join(names[:12])} ..."
        raise ValueError(f"{fn}: the model has no layer named {layer!r}; {hint}")
    return modules[layer]


def _as_batch(fn: str, image: object, input_size: Sequence[int] | None) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"{fn}: `image` must be (C, H, W) or (1, C, H, W), got the shape {np.shape(image)}")
    if input_size is not None and tuple(x.shape[1:]) != tuple(input_size):
        raise ValueError(f"{fn}: `image` has the shape {tuple(x.shape[1:])}; the model takes {tuple(input_size)}")
    return x


def feature_map_arrays(model: Any, image: np.ndarray, layers: Sequence[str], *,
                       stop_after: bool = False) -> dict[str, np.ndarray]:
    """The outputs of the named layers for one image: ``{name: (C, h, w)}`` (one forward pass, no_grad, eval mode).

    Through :func:`convlab.nn.capture_outputs`, the one reader of intermediate outputs; ``stop_after=True``
    ends the pass once the named layers have run (the later layers are not computed).
    """
    from ..nn import capture_outputs

    fn = "feature_maps"
    if isinstance(layers, str):
        layers = [layers]
    for name in layers:
        layer_module(model, name, fn)  # an unknown name: a ValueError listing close names
    x = _as_batch(fn, image, getattr(model, "input_size", None))
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float64))
    captured = capture_outputs(model, x.astype(dtype), list(layers), stop_after=stop_after)
    return {name: captured[name][0] for name in layers}


def _tile_grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def feature_maps(model: Any, image: np.ndarray, layers: Sequence[str], *, max_channels: int = 16,
                 model_name: str | None = None) -> Any:
    """A grid of feature maps per layer (the first ``max_channels`` channels), each map on its own scale.

    Rows of panels, one per layer; in each, ``viridis`` tiles of the channels. The tiles' data are
    the arrays of :func:`feature_map_arrays` (``ax.images[0].get_array()``).
    """
    maps = feature_map_arrays(model, image, layers)
    if not 1 <= max_channels <= MAX_TILES:
        raise ValueError(f"feature_maps: `max_channels` (={max_channels}) must be in 1..{MAX_TILES}")
    shown = {name: m[:max_channels] if m.ndim == 3 else m.reshape(-1, 1, 1)[:max_channels] for name, m in maps.items()}
    grids = {name: _tile_grid(len(m)) for name, m in shown.items()}
    rows_total = sum(r for r, _ in grids.values())
    cols = max(c for _, c in grids.values())
    fig = new_figure(1.3 * cols + 0.5, 1.3 * rows_total + 0.6 * len(shown) + 0.5)
    subfigs = fig.subfigures(len(shown), 1, height_ratios=[r for r, _ in grids.values()], squeeze=False)[:, 0]
    for sub, (name, stack) in zip(subfigs, shown.items(), strict=True):
        rows, _ = grids[name]
        full = maps[name]
        sub.suptitle(f"{name}: output {tuple(full.shape)}, channels 0-{len(stack) - 1}", fontsize=8)
        axes = sub.subplots(rows, cols, squeeze=False)
        for index, ax in enumerate(axes.ravel()):
            ax.set_axis_off()
            if index < len(stack):
                ax.imshow(stack[index], cmap=SEQUENTIAL, interpolation="nearest")
                ax.set_title(str(index), fontsize=6)
    label = model_name or type(model).__name__
    fig.suptitle(f"feature maps of {label} for an input {tuple(np.shape(image)[-3:])}: {', '.join(maps)}",
                 fontsize=9)
    return fig


def kernels(model: Any, layer: str, *, max_filters: int = 64, max_channels: int = 16,
            model_name: str | None = None) -> Any:
    """The kernels of a convolution layer.

    A layer with 3 input channels (a first layer on RGB): each filter a colour patch, each
    min-max normalised on its own to [0, 1] (as AlexNet's conv1 is shown, Krizhevsky et al. 2012,
    figure 3). Otherwise one grey tile per (filter, input channel), each filter on its own scale.
    """
    fn = "kernels"
    module = layer_module(model, layer, fn)
    weight = getattr(module, "weight", None)
    array = None if weight is None else np.asarray(getattr(weight, "data", weight))
    if array is None or array.ndim != 4:
        raise ValueError(f"{fn}: layer {layer!r} ({type(module).__name__}) has no 2-d convolution weight "
                         f"(C_out, C_in/groups, kh, kw)")
    label = model_name or type(model).__name__
    c_out, c_in, kh, kw = array.shape
    n = min(c_out, max_filters)
    if c_in == 3:
        rows, cols = _tile_grid(n)
        fig = new_figure(0.8 * cols + 0.4, 0.8 * rows + 0.7)
        axes = fig.subplots(rows, cols, squeeze=False)
        for index, ax in enumerate(axes.ravel()):
            ax.set_axis_off()
            if index < n:
                ax.imshow(_minmax(array[index]).transpose(1, 2, 0), interpolation="nearest")
        fig.suptitle(f"{label} {layer}: {n} of {c_out} RGB kernels {kh}x{kw}, each min-max normalised", fontsize=9)
        return fig
    m = min(c_in, max_channels)
    fig = new_figure(0.55 * m + 0.8, 0.55 * min(n, 16) + 0.8)
    axes = fig.subplots(min(n, 16), m, squeeze=False)
    for f in range(min(n, 16)):
        patch = _minmax(array[f])
        for c in range(m):
            ax = axes[f, c]
            ax.imshow(patch[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(str(f), fontsize=6)
    fig.suptitle(f"{label} {layer}: filters 0-{min(n, 16) - 1} of {c_out} x input channels 0-{m - 1} of {c_in}, "
                 f"{kh}x{kw}, each filter min-max normalised (grey)", fontsize=9)
    return fig


def _minmax(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


# --------------------------------------------------------------------------- receptive fields


def receptive_field_boxes(model: Any, input_size: Sequence[int], layer: str, unit: Sequence[int]
                          ) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The theoretical field of a unit at each layer up to ``layer``: ``[(name, (top, left, bottom, right))]``.

    From :func:`convlab.analysis.analyze` (size, jump, start per spatial dim; Araujo et al., Distill 2019).
    At ``layer`` the unit is ``unit = (i, j)`` of its output; at each earlier layer whose field differs from
    the one before, the unit whose centre is nearest to that unit's centre. Bounds are inclusive input
    coordinates and may lie outside the input (in the padding).
    """
    from ..analysis import analyze

    fn = "receptive_field"
    shape = tuple(input_size)
    report = analyze(model, (1, *shape))
    names = [r.name for r in report]
    if layer not in names:
        close = difflib.get_close_matches(str(layer), names, n=5, cutoff=0.4)
        raise ValueError(f"{fn}: the model has no layer named {layer!r}; close names: {', '.join(close) or '-'}")
    target = report[layer]
    if target.receptive_field is None or len(target.output_shape) != 4 or target.scope != "spatial":
        raise ValueError(f"{fn}: layer {layer!r} has no spatial output (its output is {target.output_shape})")
    h, w = target.output_shape[2:]
    if (isinstance(unit, str) or not isinstance(unit, Sequence) or len(unit) != 2
            or not all(isinstance(u, (int, np.integer)) for u in unit)):
        raise TypeError(f"{fn}: `unit` must be (i, j), got {unit!r}")
    if not (0 <= unit[0] < h and 0 <= unit[1] < w):
        raise ValueError(f"{fn}: `unit` (={tuple(unit)}) is not in the output of {layer!r}, which is {h}x{w}: "
                         f"rows 0..{h - 1}, columns 0..{w - 1}")
    fields = target.receptive_field
    centre = [float(f.start + u * f.jump + (f.size - 1) / 2) for f, u in zip(fields, unit, strict=True)]
    boxes: list[tuple[str, tuple[float, float, float, float]]] = []
    previous = None
    for row in report:
        rf = row.receptive_field
        if row.kind == "input" or rf is None or row.scope != "spatial" or len(row.output_shape) != 4:
            continue
        if rf != previous:
            units = [min(max(round((c - float(f.start) - (float(f.size) - 1) / 2) / float(f.jump)), 0), n - 1)
                     for c, f, n in zip(centre, rf, row.output_shape[2:], strict=True)]
            lo = [float(f.start + u * f.jump) for f, u in zip(rf, units, strict=True)]
            boxes.append((row.name, (lo[0], lo[1], lo[0] + float(rf[0].size) - 1, lo[1] + float(rf[1].size) - 1)))
            previous = rf
        if row.name == layer:
            break
    return boxes


def receptive_field(model: Any, input_size: Sequence[int], layer: str, unit: Sequence[int],
                    image: np.ndarray | None = None, *, model_name: str | None = None) -> Any:
    """The theoretical field of ``unit`` of ``layer``, and of its nearest units at the layers before, on the input.

    One outlined rectangle per layer (:func:`receptive_field_boxes`), coloured from light (early) to dark
    (deep) along ``viridis``; the input is the image (channels averaged) or a grey grid; the view extends
    over the padding the fields reach into.
    """
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    boxes = receptive_field_boxes(model, input_size, layer, unit)
    c, h, w = tuple(input_size)
    fig = new_figure(6.4, 5.6)
    ax = fig.add_subplot()
    if image is not None:
        picture = _as_batch("receptive_field", image, (c, h, w))[0]
        shown = picture.transpose(1, 2, 0) if c == 3 else picture.mean(axis=0)
        ax.imshow(_minmax(shown), cmap=None if c == 3 else "gray", interpolation="nearest")
    else:
        ax.imshow(np.zeros((h, w)), cmap="Greys", vmin=0, vmax=1)
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="black", linewidth=1))
    cmap = colormaps[SEQUENTIAL]
    for index, (name, (top, left, bottom, right)) in enumerate(boxes):
        colour = cmap(1 - index / max(1, len(boxes) - 1) * 0.9 if len(boxes) > 1 else 0.0)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                               edgecolor=colour, linewidth=1.6, label=f"{name}: {int(bottom - top + 1)}x"
                                                                    f"{int(right - left + 1)}"))
    tops = [b[1][0] for b in boxes] + [0]
    lefts = [b[1][1] for b in boxes] + [0]
    bottoms = [b[1][2] for b in boxes] + [h - 1]
    rights = [b[1][3] for b in boxes] + [w - 1]
    ax.set_xlim(min(lefts) - 1.5, max(rights) + 1.5)
    ax.set_ylim(max(bottoms) + 1.5, min(tops) - 1.5)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    label = model_name or type(model).__name__
    ax.set_title(f"receptive field of {label} {layer} unit {tuple(unit)} on the input {c}x{h}x{w}", fontsize=9)
    return fig


def erf(result: Any, *, image: np.ndarray | None = None, model_name: str | None = None) -> Any:
    """An effective receptive field (:func:`convlab.analysis.effective_receptive_field`) as a heat map.

    ``viridis`` heat map of ``result.map`` (``ax.images[0].get_array()``), the theoretical field of the unit
    outlined (dashed white), the Gaussian fit's 1- and 2-sigma extents marked, and the statistics in the title.
    """
    from matplotlib.patches import Ellipse, Rectangle

    data = np.asarray(result.map)
    h, w = data.shape
    fig = new_figure(6.4, 5.4)
    ax = fig.add_subplot()
    picture = ax.imshow(data, cmap=SEQUENTIAL, interpolation="nearest")
    fig.colorbar(picture, ax=ax, shrink=0.8, label="mean |d unit / d input| (summed over channels)")
    if result.field is not None:
        lo = [float(f.start + u * f.jump) for f, u in zip(result.field, result.unit[1:], strict=True)]
        size = [float(f.size) for f in result.field]
        ax.add_patch(Rectangle((lo[1] - 0.5, lo[0] - 0.5), size[1], size[0], fill=False, edgecolor="white",
                               linestyle="--", linewidth=1.2, label="theoretical field"))
    (my, mx), (sy, sx) = result.mean, result.sigma
    for k in (1, 2):
        ax.add_patch(Ellipse((mx, my), 2 * k * sx, 2 * k * sy, fill=False, edgecolor="orange", linewidth=0.8))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    label = model_name or "model"
    share = "-" if result.share_95 is None else f"{result.share_95:.3f}"
    ax.set_title(f"effective receptive field of {label} {result.layer or 'output'} unit {result.unit}, input "
                 f"{'x'.join(map(str, result.input_shape))}\n{result.n_samples} {result.source} input(s); "
                 f"sigma {sy:.2f}x{sx:.2f} px; 95% of the mass in {share} of the theoretical field", fontsize=8)
    return fig


def erf_panel(maps: Mapping[str, np.ndarray] | Any, *, title: str | None = None) -> Any:
    """Several ERF maps side by side, each on its own ``viridis`` scale (``ax.images[0].get_array()`` is the map).

    ``maps`` is ``{name: (H, W) array}`` or a result with a ``maps`` attribute (the worked example
    :mod:`convlab.examples.erf`'s ``run()``).
    """
    maps = dict(getattr(maps, "maps", maps))
    if not maps:
        raise ValueError("erf_panel: no maps to draw")
    fig = new_figure(2.4 * len(maps) + 0.4, 2.9)
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for ax, (name, data) in zip(axes, maps.items(), strict=True):
        ax.imshow(np.asarray(data, dtype=np.float64), cmap=SEQUENTIAL, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    shape = "x".join(map(str, np.shape(next(iter(maps.values())))))
    fig.suptitle(title or f"effective receptive fields ({len(maps)} maps, {shape}; each on its own scale)",
                 fontsize=9)
    return fig


# --------------------------------------------------------------------------- training curves


def read_metrics(logdir_or_metrics: str | os.PathLike[str] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records of a run: ``metrics.jsonl`` in a folder, that file, or records already read.

    Each record is ``{"tag", "step", "epoch", "value", "wall_time"}``; files are read by
    :func:`convlab.train.board.read_metrics`.
    """
    from ..train.board import METRICS_FILE
    from ..train.board import read_metrics as read_logdir

    fn = "curves"
    if isinstance(logdir_or_metrics, (str, os.PathLike)):
        path = os.fspath(logdir_or_metrics)
        if os.path.basename(path) == METRICS_FILE and os.path.isfile(path):
            path = os.path.dirname(path) or "."
        return read_logdir(path)
    records = [dict(r) for r in logdir_or_metrics]
    for index, record in enumerate(records):
        if not {"tag", "step", "value"} <= set(record):
            raise ValueError(f"{fn}: record {index} lacks 'tag', 'step' or 'value': {record!r:.200}")
    return records


def curves(logdir_or_metrics: str | os.PathLike[str] | Iterable[Mapping[str, Any]], *,
           title: str | None = None) -> Any:
    """Training curves: one panel per tag family (``loss``, ``accuracy``, ``lr``...), a line per tag, against step.

    Tags are grouped by the part before ``/`` (``loss/train`` and ``loss/test`` share a panel); each
    line's data are the records' ``(step, value)`` in step order (``ax.lines[i].get_xydata()``).
    """
    records = read_metrics(logdir_or_metrics)
    if not records:
        raise ValueError("curves: the run has no records yet")
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        series.setdefault(str(r["tag"]), []).append((float(r["step"]), float(r["value"])))
    families: dict[str, list[str]] = {}
    for tag in series:
        families.setdefault(tag.split("/")[0], []).append(tag)
    fig = new_figure(4.0 * len(families) + 0.5, 3.4)
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    from matplotlib import colormaps

    palette = colormaps[SEQUENTIAL]
    for ax, (family, tags) in zip(axes, families.items(), strict=True):
        for index, tag in enumerate(tags):
            points = np.array(sorted(series[tag]))
            ax.plot(points[:, 0], points[:, 1], label=tag, color=palette(index / max(1, len(tags)) * 0.85),
                    marker="o" if len(points) < 30 else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(family, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    where = title or (os.fspath(logdir_or_metrics) if isinstance(logdir_or_metrics, (str, os.PathLike))
                      else "records")
    steps = max(int(r["step"]) for r in records)
    fig.suptitle(f"training curves of {where}: {len(series)} tags, {steps} steps", fontsize=9)
    return fig


# --------------------------------------------------------------------------- filter correlation


def correlation_matrix(model: Any, layer_a: str, layer_b: str, *, images: np.ndarray | None = None,
                       n_samples: int = 8, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """``|corr|`` between the responses of the filters of ``layer_a`` (rows) and ``layer_b`` (columns).

    Entry ``(i, j)`` is the absolute Pearson correlation, over the inputs and every spatial position,
    of output channel ``i`` of ``layer_a`` and output channel ``j`` of ``layer_b`` (both outputs must
    have the same spatial size, as for NiN's kxk conv followed by its 1x1 "cccp" layers). This follows
    Ioannou et al., "Deep Roots: Improving CNN Efficiency with Hierarchical Filter Groups" (CVPR 2017)
    and blog.yani.io/filter-group-tutorial (seed 001): the inter-layer correlation of the filters of a
    NiN trained with 1, 2, 4, 8, 16 filter groups is block-diagonal, since a grouped ``layer_b`` filter
    only sees its group's channels of ``layer_a``. Inputs: ``images`` ``(N, C, H, W)`` or ``n_samples``
    standard-normal inputs from ``rng``. A channel that is constant has correlation 0.
    """
    fn = "correlation"
    input_size = getattr(model, "input_size", None)
    if images is None:
        if input_size is None:
            raise ValueError(f"{fn}: the model has no `input_size`; pass `images`")
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        batch = generator.standard_normal((n_samples, *input_size))
    else:
        batch = np.asarray(images, dtype=np.float64)
        if batch.ndim == 3:
            batch = batch[None]
    a_maps, b_maps = [], []
    for x in batch:
        outputs = feature_map_arrays(model, x, [layer_a, layer_b])
        a_maps.append(outputs[layer_a])
        b_maps.append(outputs[layer_b])
    a, b = np.stack(a_maps), np.stack(b_maps)  # (N, C_a, h, w), (N, C_b, h, w)
    if a.ndim != 4 or b.ndim != 4 or a.shape[2:] != b.shape[2:]:
        raise ValueError(f"{fn}: the outputs of {layer_a!r} {a.shape[1:]} and {layer_b!r} {b.shape[1:]} must be "
                         f"feature maps of the same spatial size")
    # (C, N*h*w): one row per filter, its responses over every input and position
    ra = a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1).astype(np.float64)
    rb = b.transpose(1, 0, 2, 3).reshape(b.shape[1], -1).astype(np.float64)
    ra = ra - ra.mean(axis=1, keepdims=True)
    rb = rb - rb.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ra @ rb.T) / np.outer(na, nb)
    return np.abs(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0))


def correlation(model: Any, layer_a: str, layer_b: str, *, images: np.ndarray | None = None, n_samples: int = 8,
                rng: np.random.Generator | int | None = 0, model_name: str | None = None) -> Any:
    """:func:`correlation_matrix` as a heat map (``cividis``, 0 to 1): ``layer_a``'s filters down, ``layer_b``'s
    across."""
    r = correlation_matrix(model, layer_a, layer_b, images=images, n_samples=n_samples, rng=rng)
    fig = new_figure(6.0, 5.2)
    ax = fig.add_subplot()
    picture = ax.imshow(r, cmap=COUNTS, vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(picture, ax=ax, shrink=0.8, label="|correlation| of the responses")
    ax.set_xlabel(f"{layer_b} filter")
    ax.set_ylabel(f"{layer_a} filter")
    groups = getattr(layer_module(model, layer_b, "correlation"), "groups", 1)
    label = model_name or type(model).__name__
    source = "given images" if images is not None else f"{n_samples} random inputs"
    ax.set_title(f"filter correlation of {label}: {layer_a} ({r.shape[0]}) vs {layer_b} ({r.shape[1]}, groups "
                 f"{groups}), {source}", fontsize=8)
    return fig
