"""Animations of any convolution, transposed convolution or pooling, one frame per output element.

Every frame is drawn from the engine's own description of that output
(:mod:`convlab.ops.explain`): the window's cells are its taps, so a picture
and the arithmetic cannot disagree. A frame shows the input with its padding
(and, for a transposed convolution, the zeros inserted between its elements),
the kernel's footprint with its dilation gaps, the output with the current
element, the output size formula with the numbers substituted (from
:mod:`convlab.shapes`) and, with numbers shown, that element's products and sum.

Formats, by the file's extension: ``.gif`` (Pillow), ``.svg`` (self-contained,
animated with SMIL ``<animate>``) and ``.html`` (a page holding that SVG).
Colours: see :mod:`convlab.viz._anim_draw` (Okabe & Ito's colour-blind-safe set).

>>> from convlab.viz import animate
>>> anim = animate(input_size=(5, 5), kernel_size=3, stride=2, padding=1)  # doctest: +SKIP
>>> len(anim), anim.output_size, anim[0].shape  # doctest: +SKIP
(9, (3, 3), (282, 560, 3))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..shapes import conv_output_shape, conv_transpose_output_shape, output_padding_for_size
from ..spec import ConvSpec, as_bool, as_int, as_shape
from . import _anim_draw as draw
from ._anim_scene import MAX_CELLS, MAX_FRAMES, MAX_TAPS, Scene, build_scene, check_limit

__all__ = ["CONV_ARITHMETIC", "MAX_CELLS", "MAX_FRAMES", "Animation", "Scene", "animate", "animation_scene",
           "conv_arithmetic", "default_filename"]

FORMATS = (".gif", ".svg", ".html")
LABELS = ("values", "indices", "none")
MAX_FRAME_LINES = 8  # lines of a frame's products and sum before '...'


def _require_pillow() -> None:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ImportError('convlab.viz.animate needs Pillow: pip install "convlab[viz]"') from None


class Animation:
    """The frames of one animation: a sequence of RGB ``uint8`` arrays ``(height, width, 3)``, one per output element.

    Frames are drawn when asked for (iterating draws each once, incrementally);
    :meth:`save` writes a GIF, SVG or HTML file. ``explanations`` are the
    engine's descriptions of the outputs, in frame order ((channel, *index)
    row-major); :meth:`cell_box` says where a cell is drawn.
    """

    def __init__(self, scene: Scene, duration: int = 600, loop: int = 0) -> None:
        self.scene = scene
        self.duration = duration
        self.loop = loop
        layout = draw.plan_layout(scene, 0)
        lines = max((len(draw.frame_text(scene, layout, i, limit=False)) - 1 for i in range(len(scene.explanations))),
                    default=1)
        self.layout = draw.plan_layout(scene, min(lines, MAX_FRAME_LINES))
        self.path: Path | None = None

    # ---- facts
    @property
    def op(self) -> str:
        return self.scene.op

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.scene.input_size

    @property
    def output_size(self) -> tuple[int, ...]:
        return self.scene.output_size

    @property
    def explanations(self):
        return self.scene.explanations

    @property
    def canvas_shape(self) -> tuple[int, ...]:
        """Cells of the drawn input per dimension (padding and inserted zeros included)."""
        return self.scene.canvas_shape

    @property
    def origin(self) -> tuple[int, ...]:
        """The tap coordinate (``Tap.padded_position``) of the drawn input's first cell."""
        return self.scene.origin

    @property
    def title(self) -> str:
        return self.scene.title

    @property
    def caption(self) -> list[str]:
        return list(self.scene.lines)

    def cell_box(self, side: str, channel: int, cell: Sequence[int]) -> tuple[int, int, int, int]:
        """Pixel box ``(x0, y0, x1, y1)`` (borders included) of a cell of the drawn ``'input'`` or ``'output'``."""
        origins = {"input": self.layout.input_origin, "output": self.layout.output_origin}[side]
        return draw.cell_box(self.layout, origins[channel], tuple(int(c) for c in cell))

    # ---- frames
    def __len__(self) -> int:
        return len(self.scene.explanations)

    def _indexed(self) -> Iterator[np.ndarray]:
        """Palette indices ``(height, width)`` of each frame (:data:`convlab.viz._anim_draw.PALETTE`)."""
        progress = draw.RasterPainter(self.layout.width, self.layout.height)
        draw.draw_base(progress, self.scene, self.layout)
        for i in range(len(self)):
            frame = progress.copy()
            draw.draw_frame(frame, self.scene, self.layout, i)
            yield frame
            draw.draw_done(progress, self.scene, self.layout, i)

    def __iter__(self) -> Iterator[np.ndarray]:
        for painter in self._indexed():
            yield painter.rgb()

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        i = as_int("Animation", "index", i)
        if not -n <= i < n:
            raise IndexError(f"Animation: frame {i} does not exist (the animation has {n} frames)")
        i %= n
        painter = draw.RasterPainter(self.layout.width, self.layout.height)
        draw.draw_base(painter, self.scene, self.layout)
        for k in range(i):
            draw.draw_done(painter, self.scene, self.layout, k)
        draw.draw_frame(painter, self.scene, self.layout, i)
        return painter.rgb()

    @property
    def frames(self) -> list[np.ndarray]:
        """All frames as RGB arrays."""
        return list(self)

    # ---- files
    def gif_bytes(self) -> bytes:
        import io

        images = [painter.image for painter in self._indexed()]
        buffer = io.BytesIO()
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=self.duration,
                       loop=self.loop, optimize=False, disposal=1)
        return buffer.getvalue()

    def to_svg(self) -> str:
        """A self-contained animated SVG (SMIL): a group per frame, shown in turn; computed outputs stay."""
        layout, scene = self.layout, self.scene
        n = len(self)
        total = n * self.duration / 1000
        base = draw.SvgPainter()
        draw.draw_base(base, scene, layout)
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width}" height="{layout.height}" '
                 f'viewBox="0 0 {layout.width} {layout.height}" font-family="DejaVu Sans, Verdana, sans-serif">',
                 f"<title>{draw.escape(scene.title)}</title>",
                 f'<rect width="{layout.width}" height="{layout.height}" fill="#ffffff"/>',
                 '<g class="base">', *base.parts, "</g>"]

        def visibility(start: int, stop: int | None) -> str:
            # Discrete SMIL timeline over the whole loop: hidden, visible from frame `start` (to `stop`).
            values, times = ["hidden", "visible"], [0.0, start / n]
            if stop is not None and stop < n:
                values.append("hidden")
                times.append(stop / n)
            return (f'<animate attributeName="visibility" values="{";".join(values)}" '
                    f'keyTimes="{";".join(f"{t:.6f}" for t in times)}" calcMode="discrete" dur="{total:g}s" '
                    f'repeatCount="{"indefinite" if self.loop == 0 else self.loop}"/>')

        for i in range(n):
            done = draw.SvgPainter()
            draw.draw_done(done, scene, layout, i)
            parts += ['<g class="done" visibility="hidden">', visibility(i + 1, None), *done.parts, "</g>"]
        for i in range(n):
            frame = draw.SvgPainter()
            draw.draw_frame(frame, scene, layout, i)
            parts += [f'<g class="frame" id="frame-{i}" visibility="hidden">', visibility(i, i + 1), *frame.parts,
                      "</g>"]
        parts.append("</svg>")
        return "\n".join(parts)

    def to_html(self) -> str:
        """A self-contained page: the animated SVG inline, the title and the caption; no external assets."""
        caption = "\n".join(f"<li>{draw.escape(line.strip())}</li>" for line in self.scene.lines)
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{draw.escape(self.scene.title)}</title>\n"
                "<style>body{font-family:sans-serif;margin:1em}svg{max-width:100%;height:auto}</style>\n"
                "</head>\n<body>\n"
                f"<h1>{draw.escape(self.scene.title)}</h1>\n{self.to_svg()}\n<ul>\n{caption}\n</ul>\n"
                "<p>Drawn by convlab from convlab.ops.explain: one frame per output element.</p>\n</body>\n</html>\n")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the animation to ``path`` (.gif, .svg or .html), atomically; refuses an existing file
        unless ``overwrite``."""
        target = check_output_path(path, overwrite)
        suffix = target.suffix.lower()
        if suffix == ".gif":
            data = self.gif_bytes()
        elif suffix == ".svg":
            data = self.to_svg().encode()
        else:
            data = self.to_html().encode()
        write_atomic(target, data, overwrite)
        self.path = target
        return target


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an unknown extension, an existing file (without ``overwrite``) or a folder that cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"animate: `output` must be a path (str or os.PathLike), got {type(path).__name__}")
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(f"animate: `output` (={str(path)!r}) must end in {', '.join(FORMATS)} (the format is chosen "
                         "by the extension)")
    overwrite = as_bool("animate", "overwrite", overwrite)
    if target.is_dir():
        raise ValueError(f"animate: `output` (={str(path)!r}) is a folder; name a file in it")
    if target.exists() and not overwrite:
        raise FileExistsError(f"animate: {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"animate: cannot write {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"animate: cannot write {str(path)!r}: the folder {str(folder)!r} is not writable")
    return target


def write_atomic(target: Path, data: bytes, overwrite: bool) -> None:
    """Temporary file in the same folder, flush, fsync, then os.replace (or os.link without overwrite)."""
    folder = target.parent if str(target.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(temp, target)
        else:
            os.link(temp, target)  # fails if the file appeared meanwhile: never replaces one
            os.unlink(temp)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _as_array(name: str, value) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"animate: `{name}` must be an array of numbers, got dtype {a.dtype}")
    return a


def animate(input=None, weight=None, bias=None, *, input_size=None, kernel_size=None, in_channels: int | None = None,
            out_channels: int | None = None, stride=None, padding=0, dilation=1, groups: int = 1,
            padding_mode: str = "zeros", flip_kernel: bool = False, transposed: bool = False, output_padding=0,
            pool: str | None = None, ceil_mode: bool = False, count_include_pad: bool = True,
            labels: str | None = None, output: str | os.PathLike | None = None, overwrite: bool = False,
            duration: int = 600, loop: int = 0, max_cells: int = MAX_CELLS, max_frames: int = MAX_FRAMES,
            notes: Sequence[str] = ()) -> Animation:
    """Animate one convolution, transposed convolution (``transposed=True``) or pooling (``pool='max'|'avg'``).

    Give the numbers (``input`` ``(C_in, *spatial)`` and ``weight`` in torch's layout: ``(C_out, C_in/groups, *k)``,
    transposed ``(C_in, C_out/groups, *k)``), or only sizes (``input_size`` spatial, ``kernel_size``; channels
    ``in_channels``/``out_channels``, by default ``groups``). 1-D and 2-D. The settings are torch's
    (``stride``, every ``padding`` form and ``padding_mode``, ``dilation``, ``groups``, ``output_padding``;
    pooling: ``ceil_mode``, ``count_include_pad``; ``stride`` defaults to 1, or to the window for pooling).
    ``labels``: 'values' (the default with numbers: each frame writes its products and sum), 'indices'
    (the default with sizes only) or 'none' (blank cells).

    All input and output channels are drawn; a frame highlights the input channels its output reads (its
    group). Sizes are bounded before anything is explained or drawn: ``max_cells`` cells of the drawn input
    (all channels, padding and inserted zeros included; 4096, a 64x64 input) and ``max_frames`` frames
    (4096), besides a frame's pixel size; more is refused with a ValueError naming the limit and the request.

    With ``output`` the animation is written there (.gif, .svg or .html by the extension; an existing file
    only with ``overwrite=True``) and ``Animation.path`` is set. ``duration`` is each frame's time in ms.

    Returns an :class:`Animation`: a sequence of RGB uint8 frames ``(height, width, 3)``, one per output element.
    """
    fn = "animate"
    if pool is not None and pool not in ("max", "avg"):
        raise ValueError(f"{fn}: `pool` (={pool!r}) must be 'max', 'avg' or None")
    if labels is not None and labels not in LABELS:
        raise ValueError(f"{fn}: `labels` (={labels!r}) must be one of {', '.join(LABELS)}")
    transposed = as_bool(fn, "transposed", transposed)
    flip_kernel = as_bool(fn, "flip_kernel", flip_kernel)
    duration = as_int(fn, "duration", duration)
    if not 1 <= duration <= 60_000:
        raise ValueError(f"{fn}: `duration` (={duration}) must be 1 to 60000 ms per frame")
    loop = as_int(fn, "loop", loop)
    if loop < 0:
        raise ValueError(f"{fn}: `loop` (={loop}) must be 0 (forever) or a positive count")
    max_cells = as_int(fn, "max_cells", max_cells)
    max_frames = as_int(fn, "max_frames", max_frames)
    if pool is not None and transposed:
        raise ValueError(f"{fn}: `pool` and `transposed` exclude each other")
    if output is not None:
        check_output_path(output, overwrite)  # before any work
    _require_pillow()
    with_numbers = input is not None
    if (input is None) == (input_size is None):
        raise ValueError(f"{fn}: give either `input` (the numbers) or `input_size` (sizes only), not "
                         f"{'both' if input is not None else 'neither'}")
    if pool is not None:
        if weight is not None:
            raise ValueError(f"{fn}: pooling has no weight; give `kernel_size` (the window)")
        if kernel_size is None:
            raise ValueError(f"{fn}: pooling needs `kernel_size` (the window)")
    elif (weight is None) == (kernel_size is None):
        raise ValueError(f"{fn}: give either `weight` or `kernel_size`, not "
                         f"{'both' if weight is not None else 'neither'}")
    if (weight is not None) != with_numbers and pool is None:
        raise ValueError(f"{fn}: give the numbers of both `input` and `weight`, or the sizes of both "
                         "(`input_size`, `kernel_size`)")
    if with_numbers:
        x = _as_array("input", input)
        nd = (x.ndim - 1) if weight is None else np.ndim(weight) - 2
        if x.ndim != nd + 1 or nd not in (1, 2):
            raise ValueError(f"{fn}: `input` of shape {x.shape} must be (C_in, length) or (C_in, height, width)"
                             + ("" if weight is None else f" to match the weight of shape {np.shape(weight)}"))
        w = None if weight is None else _as_array("weight", weight)
        b = None if bias is None else _as_array("bias", bias)
        if in_channels is not None or out_channels is not None:
            raise ValueError(f"{fn}: `in_channels`/`out_channels` go with sizes only; the arrays give the channels")
        arrays = [a for a in (x, w, b) if a is not None]
        dtype = np.float64 if any(a.dtype.kind == "f" for a in arrays) else np.int64
        x, w, b = (None if a is None else a.astype(dtype) for a in (x, w, b))
        labels = labels or "values"
    else:
        size = as_shape(fn, "input_size", input_size)
        nd = len(size)
        if nd not in (1, 2):
            raise ValueError(f"{fn}: `input_size` (={tuple(size)}) must be 1-D (length) or 2-D (height, width)")
        groups_n = as_int(fn, "groups", groups)
        c_in = as_int(fn, "in_channels", in_channels) if in_channels is not None else max(groups_n, 1)
        c_out = as_int(fn, "out_channels", out_channels) if out_channels is not None else c_in
        for name, v in (("in_channels", c_in), ("out_channels", c_out)):
            if v < 1:
                raise ValueError(f"{fn}: `{name}` (={v}) must be a positive integer")
        if c_in * int(np.prod(size)) > max_cells:  # refuse before allocating the placeholder input
            raise ValueError(f"animate: the animation would have {c_in * int(np.prod(size))} input cells, more "
                             f"than the limit of {max_cells} ({c_in} channel{'s' * (c_in != 1)} of "
                             f"{'x'.join(map(str, size))})")
        w = b = None
        if pool is None:
            # The output size (convlab.shapes) bounds the frames before the placeholder weight is allocated.
            name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
            spec = ConvSpec(kernel_size, 1 if stride is None else stride, padding, dilation, groups,
                            transposed=transposed, output_padding=output_padding, ndim=nd, name=name)
            out = (conv_transpose_output_shape if transposed else conv_output_shape)(spec, size)
            frames = c_out * int(np.prod([int(o) for o in out]))
            check_limit("frames", frames, max_frames, f"one per output element: {c_out} channel"
                        f"{'s' * (c_out != 1)} of {'x'.join(str(int(o)) for o in out)}")
            if c_in % spec.groups or c_out % spec.groups:
                raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide in_channels (={c_in}) and "
                                 f"out_channels (={c_out})")
            k = spec.kernel_size
            check_limit("kernel positions written out", frames * (c_in // spec.groups) * int(np.prod(k)), MAX_TAPS,
                        f"{frames} frames of {c_in // spec.groups} channel(s) x {'x'.join(map(str, k))}")
            shape = (c_in, c_out // spec.groups, *k) if transposed else (c_out, c_in // spec.groups, *k)
            w = np.zeros(shape, dtype=np.int64)
        x = np.zeros((c_in, *size), dtype=np.int64)
        labels = labels or "indices"
    if pool is None:
        stride = 1 if stride is None else stride
    scene = build_scene(x, w, b, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, padding_mode=padding_mode, flip_kernel=flip_kernel, transposed=transposed,
                        output_padding=output_padding, pool=pool, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad, labels=labels, max_cells=max_cells,
                        max_frames=max_frames)
    scene.lines.extend(notes)
    animation = Animation(scene, duration=duration, loop=loop)
    if output is not None:
        animation.save(output, overwrite=overwrite)
    return animation


def animation_scene(input, weight=None, bias=None, *, kernel_size=None, stride=None, padding=0, dilation=1,
                    groups: int = 1, padding_mode: str = "zeros", flip_kernel: bool = False, transposed: bool = False,
                    output_padding=0, pool: str | None = None, ceil_mode: bool = False, count_include_pad: bool = True,
                    labels: str = "values", max_cells: int = MAX_CELLS, max_frames: int = MAX_FRAMES) -> Scene:
    """What :func:`animate` draws, without drawing it: the :class:`~convlab.viz._anim_scene.Scene` of the numbers.

    The same arguments as :func:`animate` with numbers (``input`` ``(C_in, *spatial)``, ``weight`` in torch's
    layout, none for pooling), the same checks and limits. The scene holds the drawn input (padding and
    inserted zeros, ``kinds``, ``input_labels``), one :class:`~convlab.ops.explain.OutputExplanation` per
    output element (``explanations``; ``window(frame)`` its cells), the output's labels and the size formula
    (``lines``): what a page can draw by itself (``convlab serve``'s playground does).

    >>> scene = animation_scene(np.arange(4.0).reshape(1, 4), np.array([[[1.0, -1.0]]]))
    >>> scene.output_size, scene.output_labels
    ((3,), ['-1', '-1', '-1'])
    >>> scene.window(0)
    {0: [((0,), 'tap'), ((1,), 'tap')]}
    """
    if pool is not None and pool not in ("max", "avg"):
        raise ValueError(f"animation_scene: `pool` (={pool!r}) must be 'max', 'avg' or None")
    if labels not in LABELS:
        raise ValueError(f"animation_scene: `labels` (={labels!r}) must be one of {', '.join(LABELS)}")
    x = _as_array("input", input)
    w = None if weight is None else _as_array("weight", weight)
    b = None if bias is None else _as_array("bias", bias)
    if pool is None and w is None:
        raise ValueError("animation_scene: a convolution needs `weight` (pooling: pool='max' or 'avg')")
    if x.ndim not in (2, 3) or (w is not None and w.ndim != x.ndim + 1):
        raise ValueError(f"animation_scene: `input` of shape {x.shape} must be (C_in, length) or (C_in, height, width)"
                         + ("" if w is None else f" to match the weight of shape {w.shape}"))
    dtype = np.float64 if any(a.dtype.kind == "f" for a in (x, w, b) if a is not None) else np.int64
    x, w, b = (None if a is None else a.astype(dtype) for a in (x, w, b))  # one dtype, as animate makes it
    if pool is None and stride is None:
        stride = 1
    return build_scene(x, w, b, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, padding_mode=padding_mode, flip_kernel=as_bool("animation_scene", "flip_kernel",
                                                                                     flip_kernel),
                       transposed=as_bool("animation_scene", "transposed", transposed), output_padding=output_padding,
                       pool=pool, ceil_mode=ceil_mode, count_include_pad=count_include_pad, labels=labels,
                       max_cells=as_int("animation_scene", "max_cells", max_cells),
                       max_frames=as_int("animation_scene", "max_frames", max_frames))


def default_filename(animation: Animation, extension: str = ".gif") -> str:
    """A descriptive name: ``conv2d_5x5_k3x3_s2_p1.gif``."""
    s = animation.scene
    parts = [s.name, "x".join(map(str, s.input_size))]
    title = s.title
    for key, tag in (("kernel ", "k"), ("stride ", "s"), ("padding ", "p"), ("dilation ", "d"), ("groups ", "g"),
                     ("output_padding ", "op")):
        at = title.find(key)
        if at >= 0:
            value = title[at + len(key):].split(",")[0].split(" ")[0].strip("'")
            parts.append(tag + value.replace(":", "-").replace(",", "_"))
    if "reflect" in title or "replicate" in title or "circular" in title or "symmetric" in title:
        parts.append(next(m for m in ("reflect", "replicate", "circular", "symmetric") if m in title))
    return "_".join(parts) + extension


# --------------------------------------------------------------------------- conv_arithmetic

# vdumoulin/conv_arithmetic's animations (Dumoulin & Visin, arXiv:1603.07285): name -> (input, kernel, stride,
# padding, dilation) of the convolution; each transposed counterpart maps the convolution's output size back
# to its input size with the same kernel, stride and padding.
CONV_ARITHMETIC = {
    "no_padding_no_strides": (4, 3, 1, 0, 1),
    "arbitrary_padding_no_strides": (5, 4, 1, 2, 1),
    "same_padding_no_strides": (5, 3, 1, 1, 1),
    "full_padding_no_strides": (5, 3, 1, 2, 1),
    "no_padding_strides": (5, 3, 2, 0, 1),
    "padding_strides": (5, 3, 2, 1, 1),
    "padding_strides_odd": (6, 3, 2, 1, 1),
}


def conv_arithmetic() -> dict[str, dict]:
    """The 15 configurations of conv_arithmetic as :func:`animate` keywords (sizes only), by file name.

    The transposed counterparts take the convolution's output size as their input and the
    ``output_padding`` that gives back the convolution's input size (convlab.shapes.output_padding_for_size):
    for ``padding_strides_odd_transposed`` that is 1, which the engine places on the high side (bottom/right):
    1 row/column of padding at the top/left and 2 at the bottom/right (conv_arithmetic issue 11: the
    published GIF had them the other way round).
    """
    configs: dict[str, dict] = {}
    for name, (size, k, s, p, d) in CONV_ARITHMETIC.items():
        configs[name] = {"input_size": (size, size), "kernel_size": k, "stride": s, "padding": p, "dilation": d}
    for name, (size, k, s, p, d) in CONV_ARITHMETIC.items():
        spec = ConvSpec(k, s, p, d, ndim=2, name=name)
        out = tuple(int(o) for o in conv_output_shape(spec, (size, size)))
        tspec = ConvSpec(k, s, p, d, transposed=True, ndim=2, name=name)
        op = output_padding_for_size(tspec, out, (size, size))
        config = {"input_size": out, "kernel_size": k, "stride": s, "padding": p, "dilation": d,
                  "transposed": True}
        if any(op):
            config["output_padding"] = op
            config["notes"] = [f"output_padding {op[0]} (to give back the {size}x{size} input) adds its row and "
                               "column on the high side (bottom/right), as the drawn padding shows; "
                               "conv_arithmetic's published GIF drew them at the top/left (its issue 11)"]
        configs[f"{name}_transposed"] = config
    configs["dilation"] = {"input_size": (7, 7), "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 2}
    return configs
