"""Drawing a :class:`~convlab.viz._anim_scene.Scene`: the layout, the colours, and two painters.

One set of drawing functions (:func:`draw_base`, :func:`draw_done`,
:func:`draw_frame`) paints rectangles and text through a painter: the raster
painter draws palette-indexed images with Pillow (``P`` mode, binary text, so
every colour is exact in a GIF), the SVG painter writes elements. Pillow is
imported on first use (the ``viz`` extra).

Colours (Okabe & Ito's colour-blind-safe set, with Paul Tol's pale grey; see
:data:`COLOURS`): input sky blue, padding pale grey, inserted zeros yellow, the
kernel's footprint orange (a ring of the cell's own colour stays visible
around it), dilation gaps light orange, the maximum of a max pooling blue,
output elements white until computed, bluish green once computed, the current
one vermillion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from ._anim_scene import INPUT, OUTSIDE, PADDING, ZERO, Scene

# name -> RGB; the palette's order is the index of each colour in the raster frames.
COLOURS = {
    "background": (255, 255, 255),
    "text": (0, 0, 0),
    "border": (80, 80, 80),
    "input": (86, 180, 233),  # Okabe-Ito sky blue #56B4E9
    "padding": (221, 221, 221),  # Paul Tol pale grey #DDDDDD
    "zero": (240, 228, 66),  # Okabe-Ito yellow #F0E442: zeros inserted by a transposed convolution
    "outside": (255, 255, 255),  # beyond the padded input (a ceil-mode pooling window)
    "footprint": (230, 159, 0),  # Okabe-Ito orange #E69F00: the kernel's (window's) footprint
    "gap": (247, 217, 153),  # orange at 40% on white: a dilation gap inside the footprint
    "chosen": (0, 114, 178),  # Okabe-Ito blue #0072B2: the maximum of a max pooling
    "output": (255, 255, 255),  # an output element not computed yet
    "done": (0, 158, 115),  # Okabe-Ito bluish green #009E73: computed
    "current": (213, 94, 0),  # Okabe-Ito vermillion #D55E00: the element of this frame
    "white_text": (255, 255, 254),  # text on dark cells (distinct index from the background)
}
INDEX = {name: i for i, name in enumerate(COLOURS)}
PALETTE = np.array(list(COLOURS.values()), dtype=np.uint8)  # (n_colours, 3)
KIND_COLOUR = {INPUT: "input", PADDING: "padding", ZERO: "zero", OUTSIDE: "outside"}

MARGIN = 12
GUTTER = 28
MAX_PIXELS = 1 << 13  # width or height of a frame
MAX_FRAME_PIXELS = 1 << 28  # all frames together (a GIF holds them all while it is written)


@dataclass
class Layout:
    """Where everything is, in pixels."""

    cell: int  # cell side
    width: int
    height: int
    input_origin: list[tuple[int, int]]  # (x, y) of each input channel's canvas
    output_origin: list[tuple[int, int]]
    label_size: int
    caption_size: int
    title_y: int
    panel_labels: list[tuple[int, int, str]]
    legend_y: int
    lines_y: int
    frame_y: int
    frame_lines: int
    wrap: int  # caption width in pixels


def _grid2(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) of a canvas: a 1-D canvas is one row."""
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def _block(count: int, rows: int, cols: int, cell: int, label_h: int, label_w: int) -> tuple[int, int, int, int]:
    """Panels of ``count`` channels in a grid: (panels per row, column pitch, width, height)."""
    per_row = max(1, int(np.ceil(np.sqrt(count))))
    n_rows = -(-count // per_row)
    pitch = max(cols * cell, label_w) + cell // 2 + 6
    width = per_row * pitch - (cell // 2 + 6)
    height = n_rows * (rows * cell + label_h + 6)
    return per_row, pitch, width, height


def plan_layout(scene: Scene, frame_lines: int) -> Layout:
    """Choose the cell size and place the panels and the caption; refuses frames too large to draw."""
    in_rows, in_cols = _grid2(scene.canvas_shape)
    out_rows, out_cols = _grid2(scene.output_size)
    longest = max(in_rows, in_cols, out_rows, out_cols)
    cell = int(np.clip(480 // max(longest, 1), 12, 40))
    label_size = 12
    label_h = label_size + 6
    in_label = f"input channel {scene.in_channels - 1}" if scene.in_channels > 1 else "input"
    out_label = f"output channel {scene.out_channels - 1}" if scene.out_channels > 1 else "output"
    in_per_row, in_pitch, in_w, in_h = _block(scene.in_channels, in_rows, in_cols, cell, label_h,
                                              int(text_width(in_label, label_size) * 1.1) + 4)
    out_per_row, out_pitch, out_w, out_h = _block(scene.out_channels, out_rows, out_cols, cell, label_h,
                                                  int(text_width(out_label, label_size) * 1.1) + 4)
    caption_size = 13
    line_h = caption_size + 4
    width = max(MARGIN * 2 + in_w + GUTTER + out_w, 560)
    title_y = MARGIN
    top = title_y + line_h * 2 + 4  # the title may take two lines
    input_origin, output_origin, panel_labels = [], [], []
    for c in range(scene.in_channels):
        r, k = divmod(c, in_per_row)
        x = MARGIN + k * in_pitch
        y = top + r * (in_rows * cell + label_h + 6)
        panel_labels.append((x, y, f"input channel {c}" if scene.in_channels > 1 else "input"))
        input_origin.append((x, y + label_h))
    out_x0 = MARGIN + in_w + GUTTER
    for c in range(scene.out_channels):
        r, k = divmod(c, out_per_row)
        x = out_x0 + k * out_pitch
        y = top + r * (out_rows * cell + label_h + 6)
        panel_labels.append((x, y, f"output channel {c}" if scene.out_channels > 1 else "output"))
        output_origin.append((x, y + label_h))
    legend_y = top + max(in_h, out_h) + 8
    lines_y = legend_y + line_h + 8
    wrap = int((width - 2 * MARGIN) * 0.92)  # the rendered (hinted, binary) text runs a little wider than measured
    n_static = sum(len(wrap_text(line, wrap, caption_size)) for line in scene.lines)
    frame_y = lines_y + n_static * line_h + 6
    height = frame_y + (frame_lines + 1) * line_h + MARGIN
    for what, value in (("width", width), ("height", height)):
        if value > MAX_PIXELS:
            raise ValueError(f"animate: a frame would be {value} pixels in {what}, more than the limit of "
                             f"{MAX_PIXELS} (cells of {cell} pixels; fewer channels or a smaller input fit)")
    total = len(scene.explanations) * width * height
    if total > MAX_FRAME_PIXELS:
        raise ValueError(f"animate: the frames would hold {total} pixels together ({len(scene.explanations)} frames "
                         f"of {width}x{height}), more than the limit of {MAX_FRAME_PIXELS}")
    return Layout(cell, width, height, input_origin, output_origin, label_size, caption_size, title_y,
                  panel_labels, legend_y, lines_y, frame_y, frame_lines, wrap)


# --------------------------------------------------------------------------- text


@functools.lru_cache(maxsize=32)
def font(size: int):
    """Pillow's bundled font (FreeType build) at ``size`` pixels, else its bitmap font; no system font needed."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or without FreeType
        return ImageFont.load_default()


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: int) -> float:
    return float(font(size).getlength(text))


def wrap_text(text: str, width: int, size: int) -> list[str]:
    """Greedy wrap at spaces to ``width`` pixels (a word longer than the width stands alone); keeps line breaks."""
    out = []
    for paragraph in text.splitlines() or [""]:
        indent = paragraph[: len(paragraph) - len(paragraph.lstrip(" "))]
        line = ""
        for word in paragraph.split(" "):
            if not word:
                continue
            candidate = f"{line} {word}" if line else indent + word
            if line and text_width(candidate, size) > width:
                out.append(line)
                line = indent + "  " + word
            else:
                line = candidate
        out.append(line)
    return out


# --------------------------------------------------------------------------- painters


class RasterPainter:
    """Draws palette-indexed frames with Pillow (``P`` mode, no anti-aliasing: colours stay exact)."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("P", (width, height), INDEX["background"])
        self.image.putpalette(PALETTE.reshape(-1).tolist())
        self._draw_class = ImageDraw
        self.draw = ImageDraw.Draw(self.image)
        self.draw.fontmode = "1"

    def copy(self) -> RasterPainter:
        other = RasterPainter.__new__(RasterPainter)
        other.image = self.image.copy()
        other._draw_class = self._draw_class
        other.draw = self._draw_class.Draw(other.image)
        other.draw.fontmode = "1"
        return other

    def rect(self, x0: int, y0: int, x1: int, y1: int, fill: str, outline: str | None = None) -> None:
        self.draw.rectangle((x0, y0, x1, y1), fill=INDEX[fill],
                            outline=None if outline is None else INDEX[outline])

    def text(self, x: float, y: float, text: str, size: int, colour: str = "text", centre: bool = False) -> None:
        mask, left, top = _text_mask(text, size, centre)
        if mask is not None:
            self.image.paste(INDEX[colour], (round(x) + left, round(y) + top), mask)

    def indices(self) -> np.ndarray:
        return np.asarray(self.image)

    def rgb(self) -> np.ndarray:
        return np.asarray(self.image.convert("RGB"))


@functools.lru_cache(maxsize=8192)
def _text_mask(text: str, size: int, centre: bool):
    """``text`` rendered once as a binary mask (no anti-aliasing) and its offset from the anchor point."""
    from PIL import Image, ImageDraw

    f = font(size)
    anchor = "mm" if centre else "la"
    left, top, right, bottom = (int(v) for v in f.getbbox(text, anchor=anchor))
    if right <= left or bottom <= top:
        return None, 0, 0
    # Room for glyphs that reach past the box the font reports: binary (hinted) rendering runs a few percent
    # wider than the anti-aliased layout getbbox measures.
    extra = 1 + size // 2
    left, top = left - extra, top - extra
    mask = Image.new("1", (right - left + extra + (right - left) // 10 + size, bottom - top + extra), 0)
    draw = ImageDraw.Draw(mask)
    draw.fontmode = "1"
    draw.text((-left, -top), text, fill=1, font=f, anchor=anchor)
    return mask, left, top


class SvgPainter:
    """Collects SVG elements."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def rect(self, x0: int, y0: int, x1: int, y1: int, fill: str, outline: str | None = None) -> None:
        stroke = "" if outline is None else f' stroke="{_hex(outline)}" stroke-width="1"'
        self.parts.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="{_hex(fill)}"{stroke}/>')

    def text(self, x: float, y: float, text: str, size: int, colour: str = "text", centre: bool = False) -> None:
        anchor = ' text-anchor="middle" dominant-baseline="central"' if centre else ' dominant-baseline="hanging"'
        self.parts.append(f'<text x="{x:g}" y="{y:g}" font-size="{size}" fill="{_hex(colour)}"{anchor}>'
                          f"{escape(text)}</text>")


def _hex(name: str) -> str:
    r, g, b = COLOURS[name]
    return f"#{r:02x}{g:02x}{b:02x}"


# --------------------------------------------------------------------------- what is drawn


def cell_box(layout: Layout, origin: tuple[int, int], cell: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a canvas cell; neighbours share their border line."""
    row, col = (0, cell[0]) if len(cell) == 1 else (cell[0], cell[1])
    x0 = origin[0] + col * layout.cell
    y0 = origin[1] + row * layout.cell
    return x0, y0, x0 + layout.cell, y0 + layout.cell


def _inset(layout: Layout) -> int:
    return max(4, layout.cell // 5)


def _cell(p, layout: Layout, box, fill: str, inner: str | None = None, label: str = "",
          label_colour: str = "text") -> None:
    x0, y0, x1, y1 = box
    p.rect(x0, y0, x1, y1, fill, "border")
    if inner is not None:
        i = _inset(layout)
        p.rect(x0 + i, y0 + i, x1 - i, y1 - i, inner)
    if label:
        size = _label_size(label, layout.cell - 4)
        if size:
            p.text((x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2, label, size, label_colour, centre=True)


@functools.lru_cache(maxsize=4096)
def _label_size(label: str, room: int) -> int:
    """The largest font size (from 14 down to 8) at which ``label`` fits ``room`` pixels; 0 if none."""
    for size in (14, 12, 10, 8):
        if size <= room and text_width(label, size) <= room:
            return size
    return 0


def legend_entries(scene: Scene) -> list[tuple[str, str]]:
    kinds = set(np.unique(scene.kinds).tolist())
    entries = [("input", "input")]
    if PADDING in kinds:
        entries.append(("padding", "padding"))
    if ZERO in kinds:
        entries.append(("zero", "inserted zero"))
    if OUTSIDE in kinds:
        entries.append(("outside", "past the padding"))
    entries.append(("footprint", "pooling window" if scene.op.endswith("pool") else "kernel footprint"))
    if any(scene.gaps([c for c, _ in cells]) for cells in scene.window(0).values()):
        entries.append(("gap", "dilation gap"))
    if scene.op == "max_pool" and scene.labels == "values":
        entries.append(("chosen", "maximum"))
    entries += [("done", "computed"), ("current", "current output")]
    return entries


def draw_base(p, scene: Scene, layout: Layout) -> None:
    """Everything that is the same in every frame (output elements not yet computed)."""
    for line_no, line in enumerate(wrap_text(scene.title, layout.wrap, layout.caption_size)[:2]):
        p.text(MARGIN, layout.title_y + line_no * (layout.caption_size + 4), line, layout.caption_size)
    for x, y, text in layout.panel_labels:
        p.text(x, y, text, layout.label_size)
    cells = [tuple(c) for c in np.ndindex(*scene.canvas_shape)]
    for c, origin in enumerate(layout.input_origin):
        labels = scene.input_labels[c]
        for cell in cells:
            _cell(p, layout, cell_box(layout, origin, cell), KIND_COLOUR[int(scene.kinds[cell])], None, labels[cell])
    out_cells = [tuple(c) for c in np.ndindex(*scene.output_size)]
    for origin in layout.output_origin:
        for cell in out_cells:
            _cell(p, layout, cell_box(layout, origin, cell), "output")
    x = MARGIN
    swatch = layout.caption_size
    for colour, text in legend_entries(scene):
        p.rect(x, layout.legend_y, x + swatch, layout.legend_y + swatch, colour, "border")
        p.text(x + swatch + 4, layout.legend_y, text, layout.label_size)
        x += swatch + 12 + int(text_width(text, layout.label_size))
    y = layout.lines_y
    for line in scene.lines:
        for part in wrap_text(line, layout.wrap, layout.caption_size):
            p.text(MARGIN, y, part, layout.caption_size)
            y += layout.caption_size + 4


def draw_done(p, scene: Scene, layout: Layout, frame: int) -> None:
    """Output element ``frame`` as computed."""
    channel, position = scene.output_position(frame)
    _cell(p, layout, cell_box(layout, layout.output_origin[channel], position), "done", None,
          scene.output_labels[frame])


def frame_text(scene: Scene, layout: Layout, frame: int, limit: bool = True) -> list[str]:
    """The frame's own lines: which output, and its products and sum (at most ``layout.frame_lines`` more)."""
    head = f"output {frame + 1} of {len(scene.explanations)}:"
    lines = [head] + wrap_text(scene.equation(frame), layout.wrap, layout.caption_size)
    if limit and len(lines) > layout.frame_lines + 1:
        lines = lines[: layout.frame_lines] + ["  ... (the rest: convlab.ops.explain)"]
    return lines


def draw_frame(p, scene: Scene, layout: Layout, frame: int) -> None:
    """What frame ``frame`` adds: the window on the input, its dilation gaps, the current output, the sum."""
    for channel, cells in scene.window(frame).items():
        origin = layout.input_origin[channel]
        labels = scene.input_labels[channel]
        for cell, role in cells:
            inner = "chosen" if role == "chosen" else "footprint"
            _cell(p, layout, cell_box(layout, origin, cell), KIND_COLOUR[int(scene.kinds[cell])], inner,
                  labels[cell], "white_text" if role == "chosen" else "text")
        for cell in scene.gaps([c for c, _ in cells]):
            _cell(p, layout, cell_box(layout, origin, cell), KIND_COLOUR[int(scene.kinds[cell])], "gap",
                  labels[cell])
    channel, position = scene.output_position(frame)
    _cell(p, layout, cell_box(layout, layout.output_origin[channel], position), "current", None,
          scene.output_labels[frame], "white_text")
    y = layout.frame_y
    for line in frame_text(scene, layout, frame):
        p.text(MARGIN, y, line, layout.caption_size)
        y += layout.caption_size + 4
