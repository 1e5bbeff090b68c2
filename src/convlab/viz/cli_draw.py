"""``convlab draw``: the static figures of :mod:`convlab.viz.figures` written as PNG or SVG files.

``convlab draw coverage|checkerboard|matrix|features|kernels|field|erf|curves|correlation ...``
writes one file per call (``-o/--output PATH``, the format from its extension, .png or .svg;
without it a descriptive name in the current folder) and prints its path. An existing file
is kept unless ``--overwrite``; the file is written atomically (``convlab._files``). Every
refusal is one line (exit status 2): a unit or cell that does not exist, a layer name that is
not in the model (with the close names), a kernel larger than the padded input, a path that
cannot be written.

MODEL is a zoo name (``convlab models``) built with random weights from ``--seed``, or
``--checkpoint PATH`` (a checkpoint written by ``convlab train``: the model it names, with its
weights). Only the standard library is imported until a subcommand runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

__all__ = ["add_parser", "run"]

FORMATS = (".png", ".svg")


class DrawError(ValueError):
    """A refusal printed as one line."""


def _sizes(option: str, text: str, count: int | None = None) -> tuple[int, ...]:
    """``'5x5'``, ``'5'`` or ``'3x224x224'`` -> ints (positive)."""
    parts = re.split(r"[x,]", text.strip().lower())
    if not all(re.fullmatch(r"[0-9]{1,9}", p) for p in parts) or (count is not None and len(parts) not in (1, count)):
        forms = "an integer (5) or HxW (5x5)" if count == 2 else "sizes separated by 'x' (3x224x224)"
        raise DrawError(f"`{option}` (={text!r}): expected {forms}")
    values = tuple(int(p) for p in parts)
    if count == 2 and len(values) == 1:
        values = values * 2
    return values


def _nonnegative(option: str, text: str) -> tuple[int, int]:
    return _sizes(option, text, 2)  # type: ignore[return-value]


def _positive(option: str, text: str) -> tuple[int, int]:
    values = _sizes(option, text, 2)
    if min(values) < 1:
        raise DrawError(f"`{option}` (={text!r}): must be >= 1")
    return values  # type: ignore[return-value]


def _unit(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*(,\s*[0-9]{1,9}\s*){1,2}", text):
        raise DrawError(f"`--unit` (={text!r}): expected i,j (row, column) or c,i,j")
    return tuple(int(v) for v in text.split(","))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="the file to write: .png or .svg (default: a descriptive name here)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")


def _model_options(p: argparse.ArgumentParser, input_default: str | None = None) -> None:
    p.add_argument("model", nargs="?", metavar="MODEL", help="a zoo name (convlab models)")
    p.add_argument("--checkpoint", metavar="PATH", help="a checkpoint written by convlab train, instead of MODEL")
    p.add_argument("--input", metavar="CxHxW", default=input_default,
                   help="input size (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs (default 0)")


def add_parser(subparsers: Any) -> None:
    """Register ``convlab draw`` and its subcommands."""
    p = subparsers.add_parser(
        "draw", help="draw a figure: coverage, checkerboard, conv matrix, feature maps, kernels, receptive or "
                     "effective receptive field, training curves, filter correlation",
        description="Write a figure (PNG or SVG by the extension of -o; default: a descriptive name in the current "
                    "folder) and print its path. Numbers come from the engine and the analysis.")
    kinds = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    s = kinds.add_parser("coverage", help="how many kernel windows cover each input pixel")
    s.add_argument("--input-size", default="5x5")
    s.add_argument("--kernel-size", default="3")
    s.add_argument("--stride", default="1")
    s.add_argument("--padding", default="0")
    s.add_argument("--dilation", default="1")
    _common(s)

    s = kinds.add_parser("checkerboard", help="overlap map of a transposed convolution (Odena et al. 2016)")
    s.add_argument("--input-size", default="5x5")
    s.add_argument("--kernel-size", default="3")
    s.add_argument("--stride", default="2")
    s.add_argument("--padding", default="0")
    _common(s)

    s = kinds.add_parser("matrix", help="the convolution matrix C beside its input and output grids")
    s.add_argument("--input-size", default="4x4")
    s.add_argument("--kernel-size", default="3")
    s.add_argument("--stride", default="1")
    s.add_argument("--padding", default="0")
    s.add_argument("--dilation", default="1")
    _common(s)

    s = kinds.add_parser("features", help="feature maps of layers of a model for an image")
    _model_options(s)
    s.add_argument("--layers", required=True, help="layer names, comma separated (as in named_modules())")
    s.add_argument("--image", metavar="PATH", help="an image file (default: a random image from --seed)")
    s.add_argument("--channels", type=int, default=16, help="channels shown per layer (default 16)")
    _common(s)

    s = kinds.add_parser("kernels", help="the kernels of a layer (RGB patches for a first layer)")
    _model_options(s)
    s.add_argument("--layer", required=True)
    _common(s)

    s = kinds.add_parser("field", help="the theoretical receptive field of a unit, per layer, on the input")
    _model_options(s)
    s.add_argument("--layer", required=True)
    s.add_argument("--unit", default=None, help="i,j in the layer's output (default: its centre)")
    s.add_argument("--image", metavar="PATH")
    _common(s)

    s = kinds.add_parser("erf", help="the effective receptive field (Luo et al. 2016) as a heat map")
    _model_options(s)
    s.add_argument("--unit", default=None, help="i,j or c,i,j in the last spatial layer (default: its centre)")
    s.add_argument("--samples", type=int, default=4, help="random inputs averaged (default 4)")
    _common(s)

    s = kinds.add_parser("curves", help="training curves from a run's metrics.jsonl")
    s.add_argument("logdir", metavar="LOGDIR", help="a run's log folder (or its metrics.jsonl)")
    _common(s)

    s = kinds.add_parser("correlation", help="correlation of the filters of two adjacent layers (their responses)")
    _model_options(s)
    s.add_argument("--layers", required=True, help="LAYER_A,LAYER_B")
    s.add_argument("--samples", type=int, default=8, help="random inputs (default 8)")
    _common(s)

    p.set_defaults(run=run)


# --------------------------------------------------------------------------- running


def _output_path(args: argparse.Namespace, default_name: str) -> tuple[str, str]:
    """The path to write and its format; refuses a bad extension, an existing file, an unwritable folder."""
    path = args.output or os.path.join(os.getcwd(), default_name)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise DrawError(f"`--output` (={path!r}): the extension must be one of {', '.join(FORMATS)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DrawError(f"`--output` (={path!r}): the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DrawError(f"`--output` (={path!r}): the folder {folder!r} is not writable")
    if os.path.isdir(path):
        raise DrawError(f"`--output` (={path!r}) is a folder")
    if os.path.exists(path) and not args.overwrite:
        raise DrawError(f"`--output` (={path!r}) exists; pass --overwrite to replace it")
    return path, ext[1:]


def _load_model(args: argparse.Namespace) -> tuple[Any, str, tuple[int, int, int]]:
    from .. import models

    if args.checkpoint:
        if args.model:
            raise DrawError("give MODEL or --checkpoint, not both")
        from ..train.checkpoint import load_checkpoint

        model = load_checkpoint(args.checkpoint).build_model()
        name = os.path.splitext(os.path.basename(args.checkpoint))[0]
    else:
        if not args.model:
            raise DrawError("MODEL (a zoo name: convlab models) or --checkpoint PATH is required")
        if args.model not in models.list():
            import difflib

            close = difflib.get_close_matches(args.model, models.list(), n=4, cutoff=0.5)
            raise DrawError(f"MODEL (={args.model!r}) is not in the zoo"
                            + (f"; close names: {', '.join(close)}" if close else "; convlab models lists them"))
        config = {"rng": args.seed}
        if args.input:
            size = _sizes("--input", args.input)
            if len(size) != 3:
                raise DrawError(f"`--input` (={args.input!r}): expected CxHxW, e.g. 3x224x224")
            config["input_size"] = size
        model = models.create(args.model, **config)
        name = args.model
    size = tuple(getattr(model, "input_size", ()) or ())
    if args.input and args.checkpoint:
        size = _sizes("--input", args.input)
    if len(size) != 3:
        raise DrawError("`--input` CxHxW is needed for this model")
    return model, name, size  # type: ignore[return-value]


def _read_image(path: str, size: tuple[int, int, int]) -> Any:
    import numpy as np

    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError('reading an image needs Pillow: pip install "convlab[viz]"') from exc
    c, h, w = size
    try:
        with Image.open(path) as picture:
            picture = picture.convert("RGB" if c == 3 else "L").resize((w, h))
            array = np.asarray(picture, dtype=np.float64) / 255.0
    except OSError as exc:
        raise DrawError(f"`--image` (={path!r}): cannot read it as an image ({exc})") from None
    array = array.transpose(2, 0, 1) if array.ndim == 3 else array[None]
    if array.shape[0] != c:
        array = np.repeat(array.mean(axis=0, keepdims=True), c, axis=0)
    return array


def _image(args: argparse.Namespace, size: tuple[int, int, int]) -> Any:
    import numpy as np

    if getattr(args, "image", None):
        return _read_image(args.image, size)
    return np.random.default_rng(args.seed).random(size)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _figure(args: argparse.Namespace) -> tuple[Any, str]:
    from . import figures

    kind = args.figure
    if kind == "coverage":
        size, k = _positive("--input-size", args.input_size), _positive("--kernel-size", args.kernel_size)
        s, p = _positive("--stride", args.stride), _nonnegative("--padding", args.padding)
        d = _positive("--dilation", args.dilation)
        fig = figures.coverage(size, k, s, p, d)
        return fig, f"coverage_{_x(size)}_k{_x(k)}_s{_x(s)}_p{_x(p)}_d{_x(d)}"
    if kind == "checkerboard":
        size, k = _positive("--input-size", args.input_size), _positive("--kernel-size", args.kernel_size)
        s, p = _positive("--stride", args.stride), _nonnegative("--padding", args.padding)
        return figures.checkerboard(size, k, s, p), f"checkerboard_{_x(size)}_k{_x(k)}_s{_x(s)}_p{_x(p)}"
    if kind == "matrix":
        size, k = _positive("--input-size", args.input_size), _positive("--kernel-size", args.kernel_size)
        s, p = _positive("--stride", args.stride), _nonnegative("--padding", args.padding)
        d = _positive("--dilation", args.dilation)
        fig = figures.conv_matrix(size, k, stride=s, padding=p, dilation=d)
        return fig, f"conv_matrix_{_x(size)}_k{_x(k)}_s{_x(s)}_p{_x(p)}_d{_x(d)}"
    if kind == "curves":
        fig = figures.curves(args.logdir)
        base = os.path.basename(os.path.normpath(args.logdir)).removesuffix(".jsonl") or "run"
        return fig, f"curves_{base}"
    model, name, size = _load_model(args)
    if kind == "features":
        layers = _names(args.layers)
        fig = figures.feature_maps(model, _image(args, size), layers, max_channels=args.channels, model_name=name)
        return fig, f"features_{name}_{'_'.join(layers)}"
    if kind == "kernels":
        return figures.kernels(model, args.layer, model_name=name), f"kernels_{name}_{args.layer}"
    if kind == "field":
        unit = _unit(args.unit) if args.unit else None
        if unit is None:
            from ..analysis import analyze

            report = analyze(model, (1, *size))
            if args.layer in [r.name for r in report]:
                shape = report[args.layer].output_shape
                unit = (shape[-2] // 2, shape[-1] // 2) if len(shape) == 4 else (0, 0)
            else:
                unit = (0, 0)  # the layer check below names the close layers
        image = _read_image(args.image, size) if args.image else None
        fig = figures.receptive_field(model, size, args.layer, unit, image, model_name=name)
        return fig, f"field_{name}_{args.layer}_{'_'.join(map(str, unit))}"
    if kind == "erf":
        from ..analysis import effective_receptive_field

        if args.samples < 1:
            raise DrawError(f"`--samples` (={args.samples}) must be >= 1")
        unit = _unit(args.unit) if args.unit else None
        result = effective_receptive_field(model, size, unit=unit, n_samples=args.samples, rng=args.seed)
        print(result.summary())
        return figures.erf(result, model_name=name), f"erf_{name}_{_x(size)}"
    if kind == "correlation":
        layers = _names(args.layers)
        if len(layers) != 2:
            raise DrawError(f"`--layers` (={args.layers!r}): expected two names, LAYER_A,LAYER_B")
        fig = figures.correlation(model, layers[0], layers[1], n_samples=args.samples, rng=args.seed,
                                  model_name=name)
        return fig, f"correlation_{name}_{layers[0]}_{layers[1]}"
    raise DrawError(f"unknown figure {kind!r}")  # argparse has refused it already


def _x(values: tuple[int, ...]) -> str:
    return "x".join(map(str, values)) if len(set(values)) > 1 else str(values[0])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def run(args: argparse.Namespace) -> int:
    """Draw, write, print the path; one-line refusals (exit status 2)."""
    from .._files import atomic_writer

    try:
        if args.output:
            _output_path(args, "unused.png")  # refuse a bad path before any work
        fig, default = _figure(args)
        path, fmt = _output_path(args, _safe(default) + ".png")
        with atomic_writer(path, overwrite=args.overwrite) as f:
            fig.savefig(f, format=fmt)
    except (ValueError, TypeError, KeyError, FileExistsError, PermissionError) as exc:
        message = re.sub(r"\s*\n\s*", " ", str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
        print(f"convlab draw {args.figure}: error: {message}", file=sys.stderr)
        return 2
    print(path)
    return 0
