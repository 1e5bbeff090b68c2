"""convlab.viz.animate and `convlab animate`: the frames read back from the files, cell by cell.

Each decoded frame is checked against the engine's description of that output
(convlab.ops.explain) and against the window written out independently here
(p*s + k*d for convolution and pooling, q + p_lo - k*d for the transposed
convolution); the output size against torch.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageSequence  # noqa: E402

from convlab.cli import main  # noqa: E402
from convlab.ops.explain import explain_conv, explain_conv_transpose, explain_pool  # noqa: E402
from convlab.viz import animate, conv_arithmetic  # noqa: E402
from convlab.viz._anim_draw import COLOURS  # noqa: E402

torch = pytest.importorskip("torch")
F = torch.nn.functional


def read_gif(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def pixel(frame: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in frame[y, x])


def centre(box):
    x0, y0, x1, y1 = box
    return (x0 + x1) // 2, (y0 + y1) // 2


def ring(box):
    return box[0] + 2, box[1] + 2


def as_pairs(padding, nd):
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


# --------------------------------------------------------------------------- the random configurations


def random_config(rng: random.Random) -> dict:
    nd = rng.choice((1, 2))
    op = rng.choice(("conv", "conv", "transposed", "max", "avg"))
    k = tuple(rng.randint(1, 3) for _ in range(nd))
    s = tuple(rng.randint(1, 3) for _ in range(nd))
    d = tuple(rng.randint(1, 2) for _ in range(nd)) if op != "avg" else (1,) * nd
    if op in ("max", "avg"):
        padding = tuple(rng.randint(0, kk // 2) for kk in k)
        size = tuple(rng.randint(d_ * (kk - 1) + 1, 6) for kk, d_ in zip(k, d, strict=True))
        return dict(nd=nd, op=op, size=size, kernel=k, stride=s, dilation=d, padding=padding, groups=1,
                    c_in=rng.randint(1, 2), c_out=None, output_padding=(0,) * nd)
    groups = rng.choice((1, 1, 2))
    c_in, c_out = groups * rng.randint(1, 2), groups * rng.randint(1, 2)
    if op == "transposed":
        # The first window starts in the padding: p <= d*(k-1).
        padding = tuple(rng.randint(0, d_ * (kk - 1)) for kk, d_ in zip(k, d, strict=True))
        output_padding = tuple(rng.randint(0, max(ss, dd) - 1) for ss, dd in zip(s, d, strict=True))
        size = tuple(rng.randint(1, 4) for _ in range(nd))
        spec_ok = all((i - 1) * ss - 2 * p + dd * (kk - 1) + op_ + 1 >= 1
                      for i, ss, p, dd, kk, op_ in zip(size, s, padding, d, k, output_padding, strict=True))
        if not spec_ok:
            padding = (0,) * nd
        return dict(nd=nd, op=op, size=size, kernel=k, stride=s, dilation=d, padding=padding, groups=groups,
                    c_in=c_in, c_out=c_out, output_padding=output_padding)
    padding = tuple((rng.randint(0, 2), rng.randint(0, 2)) for _ in range(nd))
    size = tuple(max(rng.randint(1, 6), dd * (kk - 1) + 1 - lo - hi)
                 for kk, dd, (lo, hi) in zip(k, d, padding, strict=True))
    return dict(nd=nd, op=op, size=size, kernel=k, stride=s, dilation=d, padding=padding, groups=groups,
                c_in=c_in, c_out=c_out, output_padding=(0,) * nd)


def run_config(cfg: dict, labels: str = "none", **extra):
    common = dict(input_size=cfg["size"], kernel_size=cfg["kernel"], stride=cfg["stride"], dilation=cfg["dilation"],
                  labels=labels)
    if cfg["op"] in ("max", "avg"):
        return animate(**common, padding=cfg["padding"], pool=cfg["op"], in_channels=cfg["c_in"], **extra)
    return animate(**common, padding=cfg["padding"], groups=cfg["groups"], in_channels=cfg["c_in"],
                   out_channels=cfg["c_out"], transposed=cfg["op"] == "transposed",
                   output_padding=cfg["output_padding"], **extra)


def torch_output_shape(cfg: dict) -> tuple[int, ...]:
    nd, x = cfg["nd"], torch.zeros((1, cfg["c_in"], *cfg["size"]))
    if cfg["op"] in ("max", "avg"):
        pool = getattr(F, f"{cfg['op']}_pool{nd}d")
        kwargs = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"])
        if cfg["op"] == "max":
            kwargs["dilation"] = cfg["dilation"]
        return tuple(pool(x, **kwargs).shape[1:])
    g = cfg["groups"]
    if cfg["op"] == "transposed":
        w = torch.zeros((cfg["c_in"], cfg["c_out"] // g, *cfg["kernel"]))
        y = getattr(F, f"conv_transpose{nd}d")(x, w, None, cfg["stride"], cfg["padding"], cfg["output_padding"], g,
                                                cfg["dilation"])
        return tuple(y.shape[1:])
    pairs = as_pairs(cfg["padding"], nd)
    torch_pad = [v for lo_hi in reversed(pairs) for v in lo_hi]  # F.pad: last dimension first
    w = torch.zeros((cfg["c_out"], cfg["c_in"] // g, *cfg["kernel"]))
    y = getattr(F, f"conv{nd}d")(F.pad(x, torch_pad), w, None, cfg["stride"], 0, cfg["dilation"], g)
    return tuple(y.shape[1:])


def expected_window(cfg: dict, out_index: tuple[int, ...]) -> set[tuple[int, ...]]:
    """The window of one output in tap coordinates, written out here (not by the engine)."""
    k, s, d = cfg["kernel"], cfg["stride"], cfg["dilation"]
    offsets = itertools.product(*(range(kk) for kk in k))
    if cfg["op"] == "transposed":
        lows = [lo for lo, _ in as_pairs(cfg["padding"], cfg["nd"])]
        return {tuple(q + lo - ki * dd for q, lo, ki, dd in zip(out_index, lows, kk, d, strict=True)) for kk in offsets}
    return {tuple(p * ss + ki * dd for p, ss, ki, dd in zip(out_index, s, kk, d, strict=True)) for kk in offsets}


def engine_window(cfg: dict, anim, frame: int):
    """(channel, tap position) of every window position the engine's explain lists for this frame's output."""
    c, *p = np.unravel_index(frame, (anim.scene.out_channels, *anim.output_size))
    position = (0, int(c), *map(int, p))
    x = np.zeros((1, cfg["c_in"], *cfg["size"]))
    if cfg["op"] in ("max", "avg"):
        e = explain_pool(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], position=position,
                         mode=cfg["op"])
    elif cfg["op"] == "transposed":
        w = np.zeros((cfg["c_in"], cfg["c_out"] // cfg["groups"], *cfg["kernel"]))
        e = explain_conv_transpose(x, w, None, cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"],
                                   cfg["dilation"], position=position)
    else:
        w = np.zeros((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"]))
        e = explain_conv(x, w, None, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], position=position)
    return e, [(t.channel, t.padded_position) for t in itertools.chain(e.taps, e.skipped)]


def expected_kind(cfg: dict, q: tuple[int, ...]) -> str:
    """The colour name of an input-canvas cell at tap coordinate q, from the definitions."""
    kinds = []
    for d_, qi in enumerate(q):
        n = cfg["size"][d_]
        if cfg["op"] == "transposed":
            s = cfg["stride"][d_]
            inside = 0 <= qi <= (n - 1) * s
            kinds.append("input" if inside and qi % s == 0 else ("zero" if inside else "padding"))
        else:
            lo, hi = as_pairs(cfg["padding"], cfg["nd"])[d_]
            kinds.append("input" if lo <= qi < lo + n else ("padding" if 0 <= qi < n + lo + hi else "outside"))
    for kind in ("outside", "padding", "zero"):
        if kind in kinds:
            return kind
    return "input"


@pytest.mark.parametrize("seed", range(14))
def test_random_configurations_frame_by_frame(seed, tmp_path):
    rng = random.Random(seed)
    cfg = random_config(rng)
    path = tmp_path / "a.gif"
    anim = run_config(cfg, output=path)
    frames = read_gif(path)
    out_shape = torch_output_shape(cfg)
    assert (anim.scene.out_channels, *anim.output_size) == out_shape
    assert len(frames) == len(anim) == int(np.prod(out_shape))  # one frame per output element
    nd = cfg["nd"]
    # The drawn input: the padded input (convolution, pooling), or the zero-inserted input and the padding the
    # transposed convolution's windows reach (stride-1 view: O + d*(k-1) cells, starting at p_lo - d*(k-1)).
    if cfg["op"] == "transposed":
        lows = [lo for lo, _ in as_pairs(cfg["padding"], nd)]
        assert anim.origin == tuple(lo - dd * (kk - 1)
                                    for lo, dd, kk in zip(lows, cfg["dilation"], cfg["kernel"], strict=True))
        assert anim.canvas_shape == tuple(o + dd * (kk - 1) for o, dd, kk in
                                          zip(anim.output_size, cfg["dilation"], cfg["kernel"], strict=True))
    elif cfg["op"] == "conv":
        assert anim.origin == (0,) * nd
        pairs = as_pairs(cfg["padding"], nd)
        assert anim.canvas_shape == tuple(n + lo + hi for n, (lo, hi) in zip(cfg["size"], pairs, strict=True))
    channels_in = cfg["c_in"]
    cells = list(itertools.product(*(range(n) for n in anim.canvas_shape)))
    out_cells = list(np.ndindex(*out_shape))
    for f, frame in enumerate(frames):
        c_out, *p = out_cells[f]
        _e, window = engine_window(cfg, anim, f)
        # The engine's window is the window of the definition, in every input channel of the output's group.
        assert {q for _, q in window} == expected_window(cfg, tuple(p))
        if cfg["op"] in ("max", "avg"):
            group_channels = {c_out}
        else:
            per_group = channels_in // cfg["groups"]
            group_channels = set(range((c_out * cfg["groups"] // out_shape[0]) * per_group,
                                       (c_out * cfg["groups"] // out_shape[0] + 1) * per_group))
        assert {c for c, _ in window} == group_channels
        for c in range(channels_in):
            highlighted = {anim.scene.canvas(q) for ch, q in window if ch == c}
            gaps = set()
            if highlighted:
                lo = [min(h[i] for h in highlighted) for i in range(nd)]
                hi = [max(h[i] for h in highlighted) for i in range(nd)]
                gaps = set(itertools.product(*(range(a, b + 1) for a, b in zip(lo, hi, strict=True)))) - highlighted
            for cell in cells:
                box = anim.cell_box("input", c, cell)
                q = tuple(ci + o for ci, o in zip(cell, anim.origin, strict=True))
                kind = expected_kind(cfg, q)
                want = "footprint" if cell in highlighted else ("gap" if cell in gaps else kind)
                assert pixel(frame, *centre(box)) == COLOURS[want], (f, c, cell, want)
                assert pixel(frame, *ring(box)) == COLOURS[kind], (f, c, cell, kind)
        for k, out_cell in enumerate(out_cells):
            box = anim.cell_box("output", out_cell[0], out_cell[1:])
            want = "current" if k == f else ("done" if k < f else "output")
            assert pixel(frame, *centre(box)) == COLOURS[want], (f, out_cell, want)


def test_frames_in_memory_equal_the_gif_and_random_access(tmp_path):
    anim = animate(input_size=(4, 5), kernel_size=(2, 3), stride=(1, 2), padding=((1, 0), (0, 1)), labels="indices",
                   output=tmp_path / "a.gif")
    frames = anim.frames
    assert all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in frames)
    decoded = read_gif(tmp_path / "a.gif")
    assert len(decoded) == len(frames)
    for a, b in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(anim[3], frames[3])
    np.testing.assert_array_equal(anim[-1], frames[-1])
    with pytest.raises(IndexError, match="frame 99 does not exist"):
        anim[99]


def test_distinct_colours():
    names = ["input", "padding", "zero", "footprint", "gap", "chosen", "done", "current", "output"]
    assert len({COLOURS[n] for n in names}) == len(names)


def inner_probe(anim, box):
    inset = max(4, anim.layout.cell // 5)
    return box[0] + inset + 1, box[1] + inset + 1


def test_values_max_pool_marks_the_engines_maximum_and_writes_the_sum(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(-9, 10, size=(1, 5, 5)).astype(float)
    anim = animate(x, pool="max", kernel_size=3, stride=2, padding=1, output=tmp_path / "m.gif")
    frames = read_gif(tmp_path / "m.gif")
    assert len(frames) == 9
    for f, frame in enumerate(frames):
        e = explain_pool(x[None], 3, 2, 1, position=(0, 0, *np.unravel_index(f, (3, 3))), mode="max")
        for i, tap in enumerate(e.taps):
            box = anim.cell_box("input", 0, tap.padded_position)
            want = "chosen" if i == e.chosen else "footprint"
            assert pixel(frame, *inner_probe(anim, box)) == COLOURS[want]
        for tap in e.skipped:  # the padding in the window: drawn as window on padding, never chosen
            box = anim.cell_box("input", 0, tap.padded_position)
            assert pixel(frame, *inner_probe(anim, box)) == COLOURS["footprint"]
            assert pixel(frame, *ring(box)) == COLOURS["padding"]
        text = anim.scene.equation(f)
        assert text.endswith(f"= {int(e.result)}") and "max(" in text


def test_values_conv_writes_the_engines_products_and_padding_values():
    x = np.arange(9).reshape(1, 3, 3)
    w = np.array([[[[0, 1], [2, 3]]]])
    anim = animate(x, w)
    assert len(anim) == 4
    assert anim.scene.equation(3).splitlines()[-1].strip() == "= 43"  # D2L figure 5.1: 4*0 + 5*1 + 7*2 + 8*3
    assert anim.scene.output_labels == ["19", "25", "37", "43"]
    # Reflect padding: the padded cells show the values they take (ops.padding's map).
    anim = animate(np.array([[1, 2, 3, 4]]), np.array([[[1]]]), padding=2, padding_mode="reflect")
    assert anim.scene.input_labels[0].tolist() == ["3", "2", "1", "2", "3", "4", "3", "2"]
    assert anim.scene.kinds.tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
    anim = animate(np.array([[1, 2, 3, 4]]), np.array([[[1]]]), padding=2)
    assert anim.scene.input_labels[0].tolist() == ["", "", "1", "2", "3", "4", "", ""]


def test_caption_has_the_formula_with_numbers():
    anim = animate(input_size=(5, 5), kernel_size=3, stride=2, padding=1)
    assert "  H_out = floor((5 + 1 + 1 - (3-1) - 1) / 2) + 1 = 3" in anim.caption
    anim = animate(input_size=(7,), kernel_size=3, padding="same_tf", stride=2)
    assert any(line.startswith("  p_lo(L)") for line in anim.caption)


def test_svg_and_html_hold_one_frame_per_output(tmp_path):
    anim = animate(input_size=(3, 3), kernel_size=2, stride=1, padding=1, transposed=True,
                   output=tmp_path / "a.svg")
    root = ET.parse(tmp_path / "a.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    groups = root.findall(f"{ns}g")
    frames = [g for g in groups if g.get("class") == "frame"]
    assert len(frames) == len(anim) == int(np.prod(anim.output_size)) == 2 * 2  # (3-1)*1 - 1 - 1 + (2-1) + 1
    for i, g in enumerate(frames):
        (timeline,) = g.findall(f"{ns}animate")
        assert timeline.get("attributeName") == "visibility" and timeline.get("calcMode") == "discrete"
        times = [float(t) for t in timeline.get("keyTimes").split(";")]
        assert times[1] == pytest.approx(i / len(frames))
    # Each frame group draws its own output element in vermillion, where the raster frames draw it.
    colour = "#{:02x}{:02x}{:02x}".format(*COLOURS["current"])
    for i, g in enumerate(frames):
        (rect,) = [r for r in g.findall(f"{ns}rect") if r.get("fill") == colour]
        c, *p = np.unravel_index(i, (1, *anim.output_size))
        x0, y0, _, _ = anim.cell_box("output", int(c), tuple(map(int, p)))
        assert (int(rect.get("x")), int(rect.get("y"))) == (x0, y0)
    html_path = tmp_path / "a.html"
    anim.save(html_path)
    html = html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "src=" not in html and "href=" not in html
    svg = html[html.index("<svg"): html.index("</svg>") + 6]
    assert len([g for g in ET.fromstring(svg).findall(f"{ns}g") if g.get("class") == "frame"]) == len(anim)


# --------------------------------------------------------------------------- conv_arithmetic

# Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (figures 2.1-2.7, 4.1-4.7, 5.1) and the
# animations of vdumoulin/conv_arithmetic: input and output sizes.
PUBLISHED = {
    "no_padding_no_strides": (4, 2), "arbitrary_padding_no_strides": (5, 6), "same_padding_no_strides": (5, 5),
    "full_padding_no_strides": (5, 7), "no_padding_strides": (5, 2), "padding_strides": (5, 3),
    "padding_strides_odd": (6, 3),
    "no_padding_no_strides_transposed": (2, 4), "arbitrary_padding_no_strides_transposed": (6, 5),
    "same_padding_no_strides_transposed": (5, 5), "full_padding_no_strides_transposed": (7, 5),
    "no_padding_strides_transposed": (2, 5), "padding_strides_transposed": (3, 5),
    "padding_strides_odd_transposed": (3, 6), "dilation": (7, 3),
}


def test_conv_arithmetic_sizes_and_the_corrected_odd_transposed_padding():
    configs = conv_arithmetic()
    assert set(configs) == set(PUBLISHED) and len(configs) == 15
    for name, config in configs.items():
        anim = animate(**config, labels="none")
        assert (anim.input_size, anim.output_size) == ((PUBLISHED[name][0],) * 2, (PUBLISHED[name][1],) * 2), name
    odd = animate(**configs["padding_strides_odd_transposed"], labels="none")
    assert configs["padding_strides_odd_transposed"]["output_padding"] == (1, 1)
    # conv_arithmetic issue 11: one row/column of padding at the top/left, two at the bottom/right.
    assert odd.scene.padding_drawn == ((1, 2), (1, 2))
    assert any("issue 11" in line for line in odd.caption)


def test_preset_command_writes_fifteen_files(tmp_path, capsys):
    assert main(["animate", "--preset", "conv_arithmetic", "-o", str(tmp_path), "--format", "svg"]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(f"{name}.svg" for name in PUBLISHED)
    assert "padding_strides_odd_transposed: 3x3 -> 6x6" in capsys.readouterr().out


# --------------------------------------------------------------------------- limits and refusals


def test_limits_refuse_before_allocating():
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"1000000 input cells, more than the limit of 4096"):
            animate(input_size=(1000, 1000), kernel_size=3)
        with pytest.raises(ValueError, match=r"1000000 frames, more than the limit of 4096"):
            animate(input_size=(1, 1), kernel_size=1, out_channels=10**6)
        with pytest.raises(ValueError, match=r"more than the limit of"):
            animate(input_size=(1000,), kernel_size=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    with pytest.raises(ValueError, match=r"5000 frames, more than the limit of 4096"):
        animate(input_size=(50,), kernel_size=1, out_channels=100)


def test_api_refusals(tmp_path):
    with pytest.raises(ValueError, match=r"input.*input_size"):
        animate(kernel_size=3)
    with pytest.raises(ValueError, match="`pool`"):
        animate(input_size=(4, 4), kernel_size=2, pool="min")
    with pytest.raises(ValueError, match="larger than the padded input"):
        animate(input_size=(3, 3), kernel_size=5)
    with pytest.raises(ValueError, match=r"must end in \.gif, \.svg, \.html"):
        animate(input_size=(3, 3), kernel_size=2, output=tmp_path / "a.png")
    target = tmp_path / "a.gif"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="exists"):
        animate(input_size=(3, 3), kernel_size=2, output=target)
    assert target.read_bytes() == b"keep"
    animate(input_size=(3, 3), kernel_size=2, output=target, overwrite=True)
    assert len(read_gif(target)) == 4


def run_cli(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_numbers_and_default_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(["animate", "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3"], capsys)
    assert status == 0, err
    path = out.strip()
    assert os.path.dirname(path) == "" and path.endswith(".gif") and "conv2d" in path
    assert len(read_gif(tmp_path / path)) == 4
    status, out, err = run_cli(["animate", "--input-size", "6", "--kernel-size", "2", "--pool", "avg",
                                "-o", "p.gif"], capsys)
    assert status == 0, err
    assert len(read_gif(tmp_path / "p.gif")) == 3  # stride defaults to the window, as in torch


@pytest.mark.parametrize("argv, message", [
    (["--input-size", "5x5", "--kernel-size", "3", "-o", "/nonexistent-folder/a.gif"], "does not exist"),
    (["--input-size", "5x5", "--kernel-size", "3", "-o", "a.png"], "must end in .gif"),
    (["--input-size", "300x300", "--kernel-size", "3"], "limit of"),
    (["--input-size", "5x5", "--kernel-size", "3", "--in-channels", "1", "--out-channels", "5000"],
     "limit of 4096"),
    (["--input-size", "5x5", "--kernel-size", "3", "--stride", "0"], "stride"),
    (["--input-size", "5xa", "--kernel-size", "3"], "--input-size"),
    (["-i", "1 2 3", "--kernel-size", "3"], "--kernel"),
])
def test_cli_refusals_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _out, err = run_cli(["animate", *argv], capsys)
    assert status == 2
    assert err.startswith("convlab animate: error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_existing_file_needs_overwrite(tmp_path, capsys):
    target = tmp_path / "a.gif"
    target.write_bytes(b"keep")
    status, _, err = run_cli(["animate", "--input-size", "4", "--kernel-size", "2", "-o", str(target)], capsys)
    assert status == 2 and "exists" in err and "--overwrite" in err and target.read_bytes() == b"keep"
    status, out, _ = run_cli(["animate", "--input-size", "4", "--kernel-size", "2", "-o", str(target),
                              "--overwrite"], capsys)
    assert status == 0 and out.strip() == str(target)
    assert len(read_gif(target)) == 3


@pytest.mark.skipif(os.name != "posix" or (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="needs a folder the user cannot write")
def test_cli_unwritable_folder(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        status, _, err = run_cli(["animate", "--input-size", "4", "--kernel-size", "2",
                                  "-o", str(folder / "a.gif")], capsys)
    finally:
        folder.chmod(0o700)
    assert status == 2 and "not writable" in err and err.count("\n") == 1


def test_importing_viz_loads_neither_pillow_nor_matplotlib():
    code = ("import sys, convlab.viz, convlab.cli; convlab.cli.build_parser(); "
            "print(any(m.split('.')[0] in ('PIL', 'matplotlib') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_animation_scene_is_what_animate_draws_and_channels_are_checked():
    from convlab.viz import animation_scene

    x = np.arange(16.0).reshape(1, 4, 4)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    scene = animation_scene(x, w, stride=2, padding=1)
    assert scene.output_labels == animate(x, w, stride=2, padding=1).scene.output_labels
    e = explain_conv(x[None], w, None, 2, 1, position=(0, 0, 1, 1))
    assert scene.explanations[4].result == e.result and scene.window(4)[0] == [
        (tap.padded_position, "tap") for tap in e.taps]
    # channels that disagree with the weight and groups: a ValueError naming groups (was a ZeroDivisionError)
    for x_, w_, groups, transposed in [(np.ones((2, 4, 4)), np.ones((1, 1, 3, 3)), 2, False),
                                       (np.ones((2, 4, 4)), np.ones((1, 1, 3, 3)), 1, False),
                                       (np.ones((3, 4, 4)), np.ones((2, 1, 3, 3)), 1, True),
                                       (np.ones((1, 4, 4)), np.ones((2, 1, 3, 3)), 2, True)]:
        with pytest.raises(ValueError, match=r"`groups` \(=\d\) must divide the (output|input) channels"):
            animation_scene(x_, w_, groups=groups, transposed=transposed)
        with pytest.raises(ValueError, match="`groups`"):
            animate(x_, w_, groups=groups, transposed=transposed)
