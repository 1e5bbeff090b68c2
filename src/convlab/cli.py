"""The ``convlab`` command: ``convlab conv``, ``convlab demo``, ``convlab models``, ``convlab summary`` and
``convlab bench``.

Only the standard library and :mod:`convlab.spec` (which imports nothing else) are
imported here; each subcommand imports what it needs when it runs. The
hyperparameter rules are the spec's: the CLI parses text into values, the spec
(through the engine) validates them, and its ValueError is printed as the
command's one-line error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from .spec import PADDING_MODES, PADDING_STRINGS

__all__ = ["main", "parse_array", "parse_ints", "parse_padding"]


class UsageError(ValueError):
    """A command-line value that cannot be parsed; printed as one line, exit status 2."""


# --------------------------------------------------------------------------- parsing


def _number(option: str, token: str) -> int | float:
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        raise UsageError(f"`{option}`: {token!r} is not a number") from None


def _matrix(option: str, text: str, where: str) -> list:
    """One channel: rows separated by ';', values by spaces or commas.

    Without ';' it is 1-D; a trailing ';' ends the last row, so ``"1 -1;"`` is a 2-D array of one row.
    """
    text = text.strip()
    two_d = ";" in text
    if text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise UsageError(f"`{option}`: {where} is empty")
    if not two_d:
        return [_number(option, t) for t in re.split(r"[\s,]+", text) if t]
    rows = []
    for i, row_text in enumerate(text.split(";")):
        row = [_number(option, t) for t in re.split(r"[\s,]+", row_text.strip()) if t]
        if not row:
            raise UsageError(f"`{option}`: row {i} of {where} is empty")
        if rows and len(row) != len(rows[0]):
            raise UsageError(
                f"`{option}`: row {i} of {where} has {len(row)} value{'s' * (len(row) != 1)}, "
                f"but row 0 has {len(rows[0])}"
            )
        rows.append(row)
    return rows


def _shape(nested: list) -> tuple[int, ...]:
    return (len(nested),) + (_shape(nested[0]) if nested and isinstance(nested[0], list) else ())


def parse_array(option: str, text: str, *, filters: bool) -> list:
    """Parse the text syntax into nested lists.

    ``'|'`` separates channels; with ``filters`` (the kernel) ``'||'`` separates
    filters as well, giving ``(filters, channels, *k)``; otherwise ``(channels, *spatial)``.

    >>> parse_array("--input", "0 1; 2 3 | 4 5; 6 7", filters=False)
    [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    >>> parse_array("--kernel", "1 -1", filters=True)
    [[[1, -1]]]
    >>> parse_array("--kernel", "1 -1;", filters=True)
    [[[[1, -1]]]]
    """
    if not filters and "||" in text:
        raise UsageError(f"`{option}`: '||' separates kernel filters; the input takes channels separated by '|'")
    groups = text.split("||") if filters else [text]
    out = []
    for f, group in enumerate(groups):
        channels = []
        for c, channel_text in enumerate(group.split("|")):
            where = (f"filter {f}, channel {c}" if filters else f"channel {c}")
            channel = _matrix(option, channel_text, where)
            if channels and _shape(channel) != _shape(channels[0]):
                raise UsageError(
                    f"`{option}`: {where} has shape {_shape(channel)}, but channel 0 has {_shape(channels[0])}"
                )
            channels.append(channel)
        if out and _shape(channels) != _shape(out[0]):
            raise UsageError(f"`{option}`: filter {f} has shape {_shape(channels)}, but filter 0 has {_shape(out[0])}")
        out.append(channels)
    return out if filters else out[0]


def parse_ints(option: str, text: str) -> int | tuple[int, ...]:
    """``'2'`` -> 2, ``'2,1'`` -> (2, 1).

    >>> parse_ints("--stride", "2,1")
    (2, 1)
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"`{option}` (={text!r}) must be an integer or a comma list of integers") from None
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> int | str | tuple:
    """``'1'``, ``'1,2'``, ``'same_tf'`` or ``lo:hi`` pairs like ``'1:0,0:1'``.

    A word is passed on as the padding string (lower case) for the spec to
    accept or refuse; numbers are parsed here.

    >>> parse_padding("1:0,0:1")
    ((1, 0), (0, 1))
    >>> parse_padding("SAME")
    'same'
    """
    text = text.strip()
    if re.fullmatch(r"[A-Za-z_]+", text):
        return text.lower()
    if "," not in text and ":" not in text:
        return parse_ints("--padding", text)
    entries: list[int | tuple[int, int]] = []
    for part in text.split(","):
        if part.count(":") > 1:
            raise UsageError(f"`--padding` (={text!r}): each pair must be lo:hi")
        if ":" in part:
            lo, _, hi = part.partition(":")
            pair = parse_ints("--padding", f"{lo},{hi}")
            entries.append(pair)  # type: ignore[arg-type]
        else:
            entries.append(parse_ints("--padding", part))  # type: ignore[arg-type]
    if any(isinstance(e, tuple) and len(e) != 2 for e in entries):
        raise UsageError(f"`--padding` (={text!r}): each pair must be lo:hi")
    return tuple(entries)


# --------------------------------------------------------------------------- subcommands

CONV_EPILOG = """\
text syntax for --input, --kernel and --bias:
  Values are separated by spaces or commas, rows by ';' and channels by '|'.
  Without ';' an array is 1-D; a trailing ';' makes one row 2-D ("1 -1;").
  In the kernel, '|' separates the input channels of one filter and '||'
  separates filters (output channels): the PyTorch layout
  (C_out, C_in/groups, kh, kw). With --transposed the kernel has the
  transposed layout (C_in, C_out/groups, kh, kw): '||' separates input
  channels and '|' the output channels of a group. Integers in give integers
  out (computed exactly in int64); any decimal point makes everything float64.
  Quote the values. A value that starts with '-' and has no space must be
  attached with '=': --kernel=-1,1 (or use spaces: -k "-1 1").

worked example (Dive into Deep Learning, figure 5.1):
  $ convlab conv -i "0 1 2; 3 4 5; 6 7 8" -k "0 1; 2 3"
  ...
  output (1 channel, 2x2, int64):
    19  25
    37  43
  output size: O = floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1
    H_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2
    W_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2

more examples:
  convlab conv -i "0 1 2 3; 2 1 3 2; 0 1 3 0; 0 4 1 2" -k "2 1 0; 2 1 0; 1 0 2" --stride 2
  convlab conv -i "1 2 3 4 5" -k "1 1 1" --padding causal             # 1-D
  convlab conv -i "1 2 3 4" -k "1" --padding 2 --padding-mode symmetric
  convlab conv -i "1 2; 3 4 | 5 6; 7 8" -k "1 0; 0 1 || 0 1; 1 0" --groups 2
  convlab conv -i "1 2; 3 4" -k "1 1 1; 1 1 1; 1 1 1" --transposed --stride 2 --padding 1 --output-padding 1
  convlab conv -i "1 2 3; 4 5 6" -k "1 -1;" --padding 0:1,1:0 --bias 0.5   # 1x2 kernel
  convlab conv -i "0 1 2; 3 4 5; 6 7 8" -k "0 1; 2 3" --explain 1,1       # 4*0 + 5*1 + 7*2 + 8*3 = 43
"""


def _conv_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "conv",
        help="compute one small convolution given on the command line and explain its output size",
        description="Compute one small (transposed) convolution with the engine and print the input,\n"
                    "kernel, settings, output and the output-size formula with the numbers substituted.",
        epilog=CONV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", required=True, metavar="TEXT",
                   help="input (C_in, *spatial), e.g. \"0 1 2; 3 4 5; 6 7 8\"; channels separated by '|'")
    p.add_argument("-k", "--kernel", required=True, metavar="TEXT",
                   help="kernel, e.g. \"0 1; 2 3\"; '|' separates channels, '||' filters")
    p.add_argument("--bias", metavar="TEXT", help="one value per output channel, e.g. \"0.5, -1\"")
    p.add_argument("-s", "--stride", default="1", metavar="S", help="int or comma list per dimension (default 1)")
    p.add_argument("-p", "--padding", default="0", metavar="P",
                   help="int, comma list, lo:hi pairs (\"1:0,0:1\") or one of "
                        f"{', '.join(PADDING_STRINGS)} (default 0)")
    p.add_argument("-d", "--dilation", default="1", metavar="D", help="int or comma list (default 1)")
    p.add_argument("-g", "--groups", default="1", metavar="G", help="number of channel groups (default 1)")
    p.add_argument("--padding-mode", default="zeros", metavar="MODE",
                   help=f"one of {', '.join(PADDING_MODES)} (default zeros)")
    p.add_argument("--flip-kernel", action="store_true",
                   help="true convolution: flip the kernel in every spatial dimension")
    p.add_argument("--transposed", action="store_true",
                   help="transposed convolution (deconvolution), with the transposed kernel layout")
    p.add_argument("--output-padding", default="0", metavar="OP",
                   help="with --transposed: extra size on the high side, int or comma list (default 0)")
    p.add_argument("--explain", metavar="POS",
                   help="write one output element out as products and a sum: its spatial index, e.g. \"0,1\" "
                        "(or \"channel,i,j\")")
    p.set_defaults(run=_run_conv)


def _run_conv(args: argparse.Namespace) -> int:
    import numpy as np

    from .demo import worked_example

    input = parse_array("--input", args.input, filters=False)
    kernel = parse_array("--kernel", args.kernel, filters=True)
    bias = None
    if args.bias is not None:
        bias = [_number("--bias", t) for t in re.split(r"[\s,]+", args.bias.strip()) if t]
    stride = parse_ints("--stride", args.stride)
    dilation = parse_ints("--dilation", args.dilation)
    output_padding = parse_ints("--output-padding", args.output_padding)
    groups = parse_ints("--groups", args.groups)
    padding = parse_padding(args.padding)  # the spec checks the values and the combinations (worked_example)
    input_dims, kernel_dims = len(_shape(input)) - 1, len(_shape(kernel)) - 2
    if input_dims != kernel_dims:
        raise UsageError(
            f"`--kernel` has {kernel_dims} spatial dimension{'s' * (kernel_dims != 1)} but `--input` has {input_dims}; "
            "end a one-row 2-D array with ';' (\"1 -1;\") to make it 2-D"
        )
    values = list(_flatten([input, kernel] + ([bias] if bias is not None else [])))
    floating = any(isinstance(v, float) for v in values)
    dtype = np.float64 if floating else np.int64
    if not floating and any(not -(2**63) <= v < 2**63 for v in values):
        raise UsageError("`--input`/`--kernel`/`--bias`: integers must fit in int64 "
                         "(write them with a decimal point for float64)")
    example = worked_example(
        np.array(input, dtype=dtype), np.array(kernel, dtype=dtype),
        None if bias is None else np.array(bias, dtype=dtype),
        stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=args.padding_mode,
        flip_kernel=args.flip_kernel, transposed=args.transposed, output_padding=output_padding,
        explain=None if args.explain is None else _position(args.explain),
    )
    print(example.text())
    return 0


def _as_tuple(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value,)


def _position(text: str) -> tuple[int, ...]:
    return _as_tuple(parse_ints("--explain", text))


def _flatten(nested):
    for item in nested:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _demo_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="walk through the tutorials' worked examples, computed by the engine",
        description="Walk through the worked examples of the tutorials (seeds): each is computed by the engine "
                    "and printed with its input, kernel, settings, output and output-size formula. "
                    "Without NAME all of them run, numbered, in order.",
        epilog="examples:\n  convlab demo --list\n  convlab demo edge_detection\n"
               "  python -m convlab.examples.edge_detection    # the same, without the command",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="NAME", help="run only this example (convlab demo --list names them)")
    p.add_argument("--list", action="store_true", help="list the examples: name and title")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from . import demo

    if args.list:
        if args.name is not None:
            print("convlab demo: error: give NAME or --list, not both", file=sys.stderr)
            return 2
        print("\n".join(demo.catalog()))
        return 0
    if args.name is None:
        demo.run()
        return 0
    try:
        demo.run_one(args.name)
    except ValueError as exc:  # an unknown name: the message lists the names
        print(f"convlab demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _models_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list the model zoo: name, parameters, default input, classes and description",
        description="List the models of convlab.models: each name with its parameter count (counted from the "
                    "layer definitions, no weights are built), default input size (channels x height x width), "
                    "number of classes and a one-line description.",
        epilog="then:\n  convlab summary resnet18_cifar          # per-layer shapes, MACs, memory\n"
               "  python -c 'import convlab.models as m; m.create(\"resnet18_cifar\", rng=0)'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from .models import catalog

    entries = catalog()
    rows = [("name", "parameters", "input", "classes", "description")]
    rows += [(e.name, f"{e.parameters:,}", "x".join(map(str, e.input_size)), str(e.num_classes), e.description)
             for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3])]
        print("  ".join(cells + [row[4]]))
    print(f"\n{len(entries)} models. convlab.models.create(NAME, input_size=..., num_classes=...) builds one; "
          "convlab summary NAME analyses it.")
    return 0


SUMMARY_FORMATS = {"table": "text", "json": "json", "csv": "csv", "markdown": "markdown"}  # CLI name -> summary()'s

SUMMARY_EPILOG = """\
MODEL is either
  a zoo name (convlab.models.list()), built with create(name, input_size=..., num_classes=...):
    convlab summary resnet50 --input 3x224x224
    convlab summary lenet --input 1x28x28 --format markdown
    convlab summary mobilenet_v2 --input 3x160x160 --num-classes 10 --batch 8 --format json
  or a PyTorch model, path/to/file.py:factory -- the file is imported from its path and
  factory() (factory(num_classes=K) with --num-classes) must return a torch.nn.Module:
    convlab summary my_nets.py:build --input 3x32x32 --format csv
No forward pass is run and no weights are read: shapes, parameters, MACs/FLOPs,
activation memory and receptive fields come from the layer hyperparameters (a zoo
model is built without weights, inside convlab.nn.skeleton()). On a terminal, with
Rich installed (the `cli` extra), the table fits the terminal's width.
"""


def _summary_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "summary", help="per-layer shapes, parameters, MACs/FLOPs, memory and receptive fields of a network",
        description="Analyse a network symbolically (convlab.analysis) for one input size and print the "
                    "per-layer report and totals.",
        epilog=SUMMARY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a zoo name, or path/to/file.py:factory for a PyTorch model")
    p.add_argument("--input", metavar="CxHxW",
                   help="one sample's size, channels first, e.g. 3x224x224 (1-d: 2x100; 3-d: 1x16x64x64); "
                        "default for a zoo model: its preset's input size")
    p.add_argument("--format", choices=tuple(SUMMARY_FORMATS), default="table", help="output format (default table)")
    p.add_argument("--batch", default="1", metavar="N", help="batch size the counts are for (default 1)")
    p.add_argument("--num-classes", metavar="K", help="number of classes (zoo: create(num_classes=K))")
    p.set_defaults(run=_run_summary)


def _positive_int(option: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"`{option}` (={text!r}) must be a positive integer") from None
    if value < 1:
        raise UsageError(f"`{option}` (={text!r}) must be a positive integer")
    return value


def parse_size(text: str) -> tuple[int, ...]:
    """``'3x224x224'`` -> ``(3, 224, 224)`` (``x`` or ``,`` between positive integers).

    >>> parse_size("3x224x224"), parse_size("2, 100")
    ((3, 224, 224), (2, 100))
    """
    parts = [p.strip() for p in re.split(r"[x,]", text.strip().lower())]
    if not all(p.isdigit() for p in parts) or any(int(p) < 1 for p in parts):
        raise UsageError(f"`--input` (={text!r}) must be positive integers separated by 'x', e.g. 3x224x224")
    return tuple(int(p) for p in parts)


def _torch_model(reference: str, num_classes: int | None):
    """Import ``path/to/file.py`` from its path and call its ``factory`` (reference ``path.py:factory``)."""
    import importlib.util
    import pathlib

    path_text, _, factory_name = reference.rpartition(":")
    path = pathlib.Path(path_text)
    if not path.is_file():
        raise UsageError(f"`MODEL` (={reference!r}): no file {path_text!r}")
    if not factory_name.isidentifier():
        raise UsageError(f"`MODEL` (={reference!r}): {factory_name!r} is not a function name (path/to/file.py:factory)")
    module_name = f"_convlab_summary_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UsageError(f"`MODEL`: importing {path_text!r} raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise UsageError(f"`MODEL`: {path_text!r} has no function {factory_name!r}")
    try:
        model = factory() if num_classes is None else factory(num_classes=num_classes)
    except Exception as exc:
        call = f"{factory_name}()" if num_classes is None else f"{factory_name}(num_classes={num_classes})"
        raise UsageError(f"`MODEL`: {call} from {path_text!r} raised {type(exc).__name__}: {exc}") from None
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, torch.nn.Module):
        raise UsageError(f"`MODEL`: {factory_name}() from {path_text!r} returned a {type(model).__name__}, "
                         f"not a torch.nn.Module")
    return model


def _run_summary(args: argparse.Namespace) -> int:
    try:
        batch = _positive_int("--batch", args.batch)
        num_classes = None if args.num_classes is None else _positive_int("--num-classes", args.num_classes)
        size = None if args.input is None else parse_size(args.input)
        path_text, colon, _ = args.model.rpartition(":")
        if (colon and path_text.endswith(".py")) or args.model.endswith(".py"):
            if not colon:
                raise UsageError(f"`MODEL` (={args.model!r}): name the factory function, path/to/file.py:factory")
            if size is None:
                raise UsageError("`--input` is required for a PyTorch model, e.g. --input 3x224x224")
            model = _torch_model(args.model, num_classes)
            from . import interop  # noqa: F401  (registers the analysis' reader for torch models)

            zoo = False
        else:
            from . import models

            config = {} if num_classes is None else {"num_classes": num_classes}
            if size is None:
                size = tuple(models.defaults(args.model)["input_size"])
            elif len(size) != 3:
                raise UsageError(f"`--input` (={args.input!r}): a zoo model takes channels x height x width, "
                                 f"e.g. 3x224x224")
            from .nn import skeleton

            with skeleton():  # every layer and shape, no weights: no memory, no random draw
                model = models.create(args.model, input_size=size, **config)
            zoo = True
        from .analysis import analyze, render

        report = analyze(model, (batch, *size))
        if zoo:
            _suggest_small_input_variant(report, args.model, size)
    except (ValueError, TypeError) as exc:  # UsageError, the zoo's and the analysis' messages name the value
        print(f"convlab summary: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.format == "table" and sys.stdout.isatty():
        try:
            from rich.console import Console  # the `cli` extra: a table that fits the terminal
        except ImportError:
            pass
        else:
            report.print(Console())
            return 0
    print(render(report, SUMMARY_FORMATS[args.format]).rstrip("\n"))
    return 0


def _suggest_small_input_variant(report, name: str, size: tuple[int, ...]) -> None:
    """Name the zoo's small-input variant (``resnet18`` -> ``resnet18_cifar``) in the stem warning, if there is one."""
    from . import models
    from .analysis.facts import SMALL_INPUT_WARNING

    variant = f"{name.lower()}_cifar"
    if variant not in models.list():
        return
    hint = (f"; the zoo has {variant} ({models.describe(variant)}): "
            f"convlab summary {variant} --input {'x'.join(map(str, size))}")
    report.model_warnings = [w + hint if w.startswith(SMALL_INPUT_WARNING) else w for w in report.model_warnings]


def _bench_parser(subparsers) -> None:
    from .bench import add_arguments  # standard library only at import time

    p = subparsers.add_parser(
        "bench", help="benchmark the engine against torch and SciPy on layers of real networks "
                      "(--analysis: the analysis of the zoo)",
        description="Time convlab (algorithm='auto') against torch (NCHW and channels-last) and, for single-channel "
                    "images, SciPy, interleaved in one run: forward, backward, input gradient and weight gradient "
                    "of real layers (ResNet, VGG, MobileNetV2, ConvNeXt, RepLKNet, 1-D, 3-D, transposed, dilated, "
                    "single-channel 1024x1024). Reports medians, GFLOP/s, ratios convlab/torch, extra peak memory, "
                    "geometric means per layer class and the performance targets (met / not met). --analysis "
                    "times `convlab summary`'s analysis of every zoo model instead (seconds and peak "
                    "memory against 0.5 s and 100 MB). A measurement, not a test.")
    add_arguments(p)
    p.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args.argv_for_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlab",
        description="convlab: every convolution used in deep learning, computable, explainable, measurable "
                    "and trainable, in Python.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _conv_parser(subparsers)
    _demo_parser(subparsers)
    _models_parser(subparsers)
    _summary_parser(subparsers)
    _bench_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``convlab`` command; returns the exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        # The benchmark may re-run itself in a fresh interpreter; hand it the raw arguments.
        args.argv_for_bench = argv[argv.index("bench") + 1:]
    try:
        if args.command != "conv":
            return args.run(args)
        try:
            return args.run(args)
        except (ValueError, TypeError) as exc:  # the engine's and the parser's messages name the parameter
            message = " ".join(str(exc).split())
            print(f"convlab conv: error: {message}", file=sys.stderr)
            return 2
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly (Python docs, "Note on SIGPIPE")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
