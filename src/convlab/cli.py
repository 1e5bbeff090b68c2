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

# The forms each option accepts, named in every message that refuses a value.
NUMBER_FORMS = "integers (3, -2), decimals (0.5, 1e-3), inf or nan"
ARRAY_FORMS = (f"{NUMBER_FORMS}; values separated by spaces or commas, rows by ';', channels by '|' "
               "(and filters by '||' in the kernel), e.g. \"0 1; 2 3\"")
BIAS_FORMS = f"one number per output channel, separated by spaces or commas, e.g. \"0.5, -1\"; {NUMBER_FORMS}"
INTS_FORMS = "an integer (2) or a comma list of integers, one per spatial dimension (2,1)"
PADDING_FORMS = (f"an integer (1), a comma list (1,2), lo:hi pairs (1:0,0:1) or one of {', '.join(PADDING_STRINGS)}")
EXPLAIN_FORMS = "a spatial index of the output (1,1), or channel,index (0,1,1)"
SIZE_FORMS = "positive integers separated by 'x', e.g. 3x224x224 (1-d: 2x100; 3-d: 1x16x64x64)"

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
                    re.ASCII | re.IGNORECASE)
_MAX_DIGITS = 1000  # far beyond int64 and any size; int() itself refuses more than 4300 digits


def _one_line(exc: BaseException) -> str:
    """A message on one line: its line breaks become spaces; a value it shows (as repr) keeps every space."""
    return re.sub(r"\s*\n\s*", " ", str(exc))


def _refuse(option: str, text: str, problem: str, forms: str) -> UsageError:
    """`` `--option` (='text as given'): what is wrong; accepted: the forms``."""
    return UsageError(f"`{option}` (={text!r}): {problem}; accepted: {forms}")


def _number(option: str, token: str, text: str, forms: str = ARRAY_FORMS) -> int | float:
    """One value (ASCII digits only: no '1_000', no other scripts' digits); ``text`` is the option's whole value."""
    if _INT.fullmatch(token):
        if len(token) > _MAX_DIGITS:
            raise _refuse(option, text, f"an integer of {len(token.lstrip('+-'))} digits is too large", forms)
        return int(token)
    if _FLOAT.fullmatch(token):
        return float(token)
    raise _refuse(option, text, f"{token!r} is not a number", forms)


def _matrix(option: str, text: str, where: str, whole: str) -> list:
    """One channel: rows separated by ';', values by spaces or commas.

    Without ';' it is 1-D; a trailing ';' ends the last row, so ``"1 -1;"`` is a 2-D array of one row.
    """
    text = text.strip()
    two_d = ";" in text
    if text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise _refuse(option, whole, f"{where} is empty", ARRAY_FORMS)
    if not two_d:
        return [_number(option, t, whole) for t in re.split(r"[\s,]+", text) if t]
    rows = []
    for i, row_text in enumerate(text.split(";")):
        row = [_number(option, t, whole) for t in re.split(r"[\s,]+", row_text.strip()) if t]
        if not row:
            raise _refuse(option, whole, f"row {i} of {where} is empty", ARRAY_FORMS)
        if rows and len(row) != len(rows[0]):
            raise _refuse(option, whole, f"row {i} of {where} has {len(row)} value{'s' * (len(row) != 1)}, "
                                         f"but row 0 has {len(rows[0])}", ARRAY_FORMS)
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
        raise _refuse(option, text, "'||' separates kernel filters; the input takes channels separated by '|'",
                      ARRAY_FORMS)
    groups = text.split("||") if filters else [text]
    out = []
    for f, group in enumerate(groups):
        channels = []
        for c, channel_text in enumerate(group.split("|")):
            where = (f"filter {f}, channel {c}" if filters else f"channel {c}")
            channel = _matrix(option, channel_text, where, text)
            if channels and _shape(channel) != _shape(channels[0]):
                raise _refuse(option, text, f"{where} has shape {_shape(channel)}, but channel 0 has "
                                            f"{_shape(channels[0])}", ARRAY_FORMS)
            channels.append(channel)
        if out and _shape(channels) != _shape(out[0]):
            raise _refuse(option, text, f"filter {f} has shape {_shape(channels)}, but filter 0 has "
                                        f"{_shape(out[0])}", ARRAY_FORMS)
        out.append(channels)
    return out if filters else out[0]


def parse_bias(text: str) -> list:
    """``'0.5, -1'`` -> ``[0.5, -1]``: one value per output channel (1-D: no ';' or '|').

    >>> parse_bias("0.5, -1")
    [0.5, -1]
    """
    option = "--bias"
    if any(separator in text for separator in ";|"):
        raise _refuse(option, text, "the bias is one value per output channel: no ';' or '|'", BIAS_FORMS)
    values = [_number(option, t, text, BIAS_FORMS) for t in re.split(r"[\s,]+", text.strip()) if t]
    if not values:
        raise _refuse(option, text, "no value", BIAS_FORMS)
    return values


def _integers(option: str, text: str, parts: list[str], forms: str) -> tuple[int, ...]:
    values = []
    for part in parts:
        token = part.strip()
        if not _INT.fullmatch(token):
            problem = "is empty" if not text.strip() else (
                "has an empty entry" if not token else f"{token!r} is not an integer")
            raise _refuse(option, text, problem, forms)
        if len(token) > _MAX_DIGITS:
            raise _refuse(option, text, f"an integer of {len(token.lstrip('+-'))} digits is too large", forms)
        values.append(int(token))
    return tuple(values)


def parse_ints(option: str, text: str, forms: str = INTS_FORMS) -> int | tuple[int, ...]:
    """``'2'`` -> 2, ``'2,1'`` -> (2, 1).

    >>> parse_ints("--stride", "2,1")
    (2, 1)
    """
    values = _integers(option, text, text.split(","), forms)
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
    option = "--padding"
    word = text.strip()
    if re.fullmatch(r"[A-Za-z_]+", word, re.ASCII):
        return word.lower()
    entries: list[int | tuple[int, int]] = []
    for part in text.split(","):
        if part.count(":") > 1:
            raise _refuse(option, text, "each pair must be lo:hi", PADDING_FORMS)
        if ":" in part:
            entries.append(_integers(option, text, part.split(":"), PADDING_FORMS))  # type: ignore[arg-type]
        else:
            entries.append(_integers(option, text, [part], PADDING_FORMS)[0])
    return entries[0] if len(entries) == 1 and isinstance(entries[0], int) else tuple(entries)


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
  Quote the values. A value may start with '-': --kernel -1,1 or --kernel=-1,1.
  Numbers are ASCII: 3, -2, 0.5, 1e-3, inf, nan (inf and nan follow IEEE
  arithmetic). Arrays of more than 1000 values print summarised with '...',
  as NumPy prints them; --full prints every value.

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
    add_conv_options(p)
    p.add_argument("--explain", metavar="POS",
                   help="write one output element out as products and a sum: its spatial index, e.g. \"0,1\" "
                        "(or \"channel,i,j\")")
    p.add_argument("--full", action="store_true",
                   help="print every value of large arrays (by default arrays of more than 1000 values are "
                        "summarised with '...', as NumPy prints them; sizes and formulas are always in full)")
    p.set_defaults(run=_run_conv)


def add_conv_options(p: argparse.ArgumentParser, *, arrays_required: bool = True) -> None:
    """The options ``convlab conv`` and ``convlab animate`` share: the arrays and the hyperparameters."""
    p.add_argument("-i", "--input", required=arrays_required, metavar="TEXT",
                   help="input (C_in, *spatial), e.g. \"0 1 2; 3 4 5; 6 7 8\"; channels separated by '|'")
    p.add_argument("-k", "--kernel", required=arrays_required, metavar="TEXT",
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


# The spec's and the engine's parameter names -> the options they come from (to echo a value as given).
_OPTION_OF = {"stride": "--stride", "padding": "--padding", "dilation": "--dilation", "groups": "--groups",
              "output_padding": "--output-padding", "padding_mode": "--padding-mode", "position": "--explain",
              "explain": "--explain", "bias": "--bias", "input": "--input", "kernel": "--kernel",
              "weight": "--kernel"}
_DEFAULTS = {"--stride": "1", "--padding": "0", "--dilation": "1", "--groups": "1", "--output-padding": "0",
             "--padding-mode": "zeros"}


def _run_conv(args: argparse.Namespace) -> int:
    from .demo import worked_example

    input, kernel, bias, settings = parse_conv_options(args)
    explain = None if args.explain is None else _as_tuple(parse_ints("--explain", args.explain, EXPLAIN_FORMS))
    x, w, b = conv_arrays(args, input, kernel, bias)
    try:
        example = worked_example(x, w, b, **settings, explain=explain)
    except (ValueError, TypeError) as exc:
        raise type(exc)(_as_given(_one_line(exc), args)) from None
    print(example.text(full=args.full))
    return 0


def parse_conv_options(args: argparse.Namespace) -> tuple[list | None, list | None, list | None, dict]:
    """The text of :func:`add_conv_options`' options -> (input, kernel, bias as nested lists or None, settings).

    ``settings`` holds worked_example's keywords (stride, padding, dilation, groups, padding_mode,
    flip_kernel, transposed, output_padding); the spec checks the values and their combinations.
    """
    input = None if args.input is None else parse_array("--input", args.input, filters=False)
    kernel = None if args.kernel is None else parse_array("--kernel", args.kernel, filters=True)
    bias = None if args.bias is None else parse_bias(args.bias)
    stride = parse_ints("--stride", args.stride)
    dilation = parse_ints("--dilation", args.dilation)
    output_padding = parse_ints("--output-padding", args.output_padding)
    groups = parse_ints("--groups", args.groups, "a positive integer that divides the channels (2)")
    padding = parse_padding(args.padding)
    settings = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                "padding_mode": args.padding_mode, "flip_kernel": args.flip_kernel, "transposed": args.transposed,
                "output_padding": output_padding}
    return input, kernel, bias, settings


def conv_arrays(args: argparse.Namespace, input: list, kernel: list, bias: list | None):
    """Parsed ``--input``/``--kernel``/``--bias`` -> NumPy arrays (int64, or float64 if any value is a decimal).

    Refuses a kernel whose number of dimensions differs from the input's, and integers that could overflow.
    """
    import numpy as np

    input_dims, kernel_dims = len(_shape(input)) - 1, len(_shape(kernel)) - 2
    if input_dims != kernel_dims:
        raise UsageError(
            f"`--kernel` (={args.kernel!r}) has {kernel_dims} spatial dimension{'s' * (kernel_dims != 1)} but "
            f"`--input` (={args.input!r}) has {input_dims}; end a one-row 2-D array with ';' (\"1 -1;\") to make "
            "it 2-D"
        )
    values = list(_flatten([input, kernel] + ([bias] if bias is not None else [])))
    floating = any(isinstance(v, float) for v in values)
    dtype = np.float64 if floating else np.int64
    if not floating:
        for option, text, nested in (("--input", args.input, input), ("--kernel", args.kernel, kernel),
                                     ("--bias", args.bias, bias or [])):
            outside = next((v for v in _flatten(nested) if not -(2**63) <= v < 2**63), None)
            if outside is not None:
                raise _refuse(option, text, f"{outside} does not fit in int64 (integers in give integers out); "
                                            "write a value with a decimal point to compute in float64", ARRAY_FORMS)
        # Each output is a sum of products of input and kernel values, plus the bias: bound it so int64
        # cannot wrap around silently (NumPy's integer arithmetic does not warn).
        largest = max((abs(v) for v in _flatten(input)), default=0) * sum(abs(v) for v in _flatten(kernel))
        largest += max((abs(v) for v in bias), default=0) if bias is not None else 0
        if largest >= 2**63:
            raise UsageError(f"`--input`/`--kernel`/`--bias`: integers this large could overflow int64 in the sums "
                             f"(largest |input| times the sum of |kernel| is {largest:.3g}, over 2**63); write a value "
                             f"with a decimal point to compute in float64 (given: --input {args.input!r}, "
                             f"--kernel {args.kernel!r}" + ("" if args.bias is None else f", --bias {args.bias!r}")
                             + ")")
    return (np.array(input, dtype=dtype), np.array(kernel, dtype=dtype),
            None if bias is None else np.array(bias, dtype=dtype))


def _as_given(message: str, args: argparse.Namespace) -> str:
    """The engine's message, plus the option's text as the user gave it where the message shows it otherwise.

    The spec echoes the parsed value (``(=0)`` for ``--stride 00``, ``(=(1, 1))`` for ``--groups 1,1``);
    the option and its text are added unless the message already shows the text as given or it is the
    default. A message that names a parameter in words ("check the sizes, padding, stride and dilation")
    gets the options the user set as well.
    """
    given = []
    for name in dict.fromkeys(re.findall(r"\b(" + "|".join(_OPTION_OF) + r")\b", message)):
        option = _OPTION_OF[name]
        text = getattr(args, option.lstrip("-").replace("-", "_"))
        if text is None or text == _DEFAULTS.get(option) or f"(={text})" in message or f"(={text!r})" in message:
            continue
        given.append(f"{option} {text!r}")
    return message + (f" (given: {', '.join(given)})" if given else "")


def _as_tuple(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value,)


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
    head = f"`--input` (={text!r}) must be {SIZE_FORMS}"
    parts = [p.strip() for p in re.split(r"[x,]", text.strip().lower())]
    for part in parts:
        if not re.fullmatch(r"[0-9]+", part, re.ASCII):
            if re.fullmatch(r"-[0-9]+", part, re.ASCII):
                raise UsageError(f"{head}; {part} is not a size (sizes are counts, 1 or more)")
            if re.fullmatch(r"\+[0-9]+", part, re.ASCII):
                raise UsageError(f"{head}; write sizes as plain digits ({part[1:]}, not {part})")
            raise UsageError(f"{head}; {part!r} is not a positive integer" if part else f"{head}; an entry is empty")
        if len(part) > _MAX_DIGITS:
            raise UsageError(f"{head}; a size of {len(part)} digits is too large")
        if int(part) < 1:
            raise UsageError(f"{head}; {part} is not a size (sizes are counts, 1 or more)")
    return tuple(int(p) for p in parts)


MODEL_FORMS = "a zoo name (`convlab models` lists them) or path/to/file.py:factory for a PyTorch model"


def _is_file_reference(reference: str) -> bool:
    """A MODEL that names a file (``nets.py:build``, ``dir/nets``, ``nets.txt``): zoo names have no ':', '/', '.'."""
    if any(c in reference for c in ":/.\\"):
        return True
    try:
        return os.path.exists(reference)  # a directory or file named like a zoo model
    except (OSError, ValueError):
        return False


def _check_file_reference(reference: str) -> tuple[str, str]:
    """``path/to/file.py:factory`` -> (path text, factory name), refusing what cannot be one, before importing."""
    import pathlib

    path_text, colon, factory_name = reference.rpartition(":")
    if not colon:
        path_text, factory_name = reference, ""
    path = pathlib.Path(path_text)
    head = f"`MODEL` (={reference!r})"
    if path.suffix == ".py" and not colon:
        raise UsageError(f"{head}: name the factory function, path/to/file.py:factory")
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError):  # a name the system cannot look up (too long, a NUL byte)
        exists = is_dir = False
    if not exists:
        raise UsageError(f"{head}: no file {path_text!r}; MODEL is {MODEL_FORMS}")
    if is_dir:
        raise UsageError(f"{head}: {path_text!r} is a directory, not a .py file; MODEL is {MODEL_FORMS}")
    if path.suffix != ".py":
        raise UsageError(f"{head}: {path_text!r} is not a .py file; MODEL is {MODEL_FORMS}")
    if not colon:
        raise UsageError(f"{head}: name the factory function, path/to/file.py:factory")
    if not factory_name.isidentifier():
        raise UsageError(f"{head}: {factory_name!r} is not a function name (path/to/file.py:factory)")
    return path_text, factory_name


def _check_zoo_name(name: str) -> None:
    """Refuse a name the zoo does not have with the zoo's message (and its guess), then all the names."""
    from . import models

    try:
        models.defaults(name)
    except ValueError as exc:
        raise UsageError(f"`MODEL` (={name!r}): {exc}; the zoo's names: {', '.join(models.list())}; "
                         "or give path/to/file.py:factory for a PyTorch model") from None


def _torch_model(reference: str, num_classes: int | None):
    """Import ``path/to/file.py`` from its path and call its ``factory`` (reference ``path.py:factory``).

    What the file does wrong, on import or in the factory, is an error of that file: an exception, or
    ``sys.exit()`` (which would otherwise end the command silently with the file's status).
    """
    import importlib.util
    import pathlib

    path_text, factory_name = _check_file_reference(reference)
    path = pathlib.Path(path_text)
    module_name = f"_convlab_summary_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise UsageError(f"`MODEL`: importing {path_text!r} {_raised(exc)}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        defined = sorted(name for name, value in vars(module).items()
                         if callable(value) and getattr(value, "__module__", None) == module_name
                         and not name.startswith("_"))
        raise UsageError(f"`MODEL`: {path_text!r} has no function {factory_name!r}; "
                         + (f"it defines {', '.join(defined)}" if defined else "it defines no function"))
    call = f"{factory_name}()" if num_classes is None else f"{factory_name}(num_classes={num_classes})"
    try:
        model = factory() if num_classes is None else factory(num_classes=num_classes)
    except (Exception, SystemExit) as exc:
        raise UsageError(f"`MODEL`: {call} from {path_text!r} {_raised(exc)}") from None
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, torch.nn.Module):
        raise UsageError(f"`MODEL`: {factory_name}() from {path_text!r} returned a {type(model).__name__}, "
                         f"not a torch.nn.Module")
    return model


def _raised(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"raised {type(exc).__name__}: {exc}"


def _run_summary(args: argparse.Namespace) -> int:
    try:
        batch = _positive_int("--batch", args.batch)
        num_classes = None if args.num_classes is None else _positive_int("--num-classes", args.num_classes)
        size = None if args.input is None else parse_size(args.input)
        if _is_file_reference(args.model):
            _check_file_reference(args.model)
            if size is None:
                raise UsageError("`--input` is required for a PyTorch model, e.g. --input 3x224x224")
            model = _torch_model(args.model, num_classes)
            from . import interop  # noqa: F401  (registers the analysis' reader for torch models)

            zoo = False
        else:
            from . import models

            _check_zoo_name(args.model)
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
        message = _one_line(exc)
        if args.input is not None and "input" in message and repr(args.input) not in message:
            message += f" (given: --input {args.input!r})"  # the zoo and the analysis echo the parsed size
        print(f"convlab summary: error: {message}", file=sys.stderr)
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


def _animate_parser(subparsers) -> None:
    from .viz.cli_animate import add_parser  # standard library only at import time

    p = add_parser(subparsers)
    add_conv_options(p, arrays_required=False)
    p.set_defaults(run=_run_animate, stride=None)  # pooling's stride defaults to its window


def _run_animate(args: argparse.Namespace) -> int:
    from .viz.cli_animate import run

    return run(args, parse_conv_options, conv_arrays)


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args.argv_for_bench)


class _Parser(argparse.ArgumentParser):
    """argparse, with its refusals as one line (``convlab conv: error: ...``), exit status 2.

    argparse prints the usage block first; the command's own errors are one line, so its are too, ending with
    where the accepted forms are listed. Subparsers are of this class as well (argparse makes them so).
    """

    def error(self, message: str):
        message = message.replace("\r", "\\r").replace("\n", "\\n")  # a value's line breaks stay on the line
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options and their forms)\n")


def _attach_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--input -1x3x3`` -> ``--input=-1x3x3``: a value that starts with '-' is the option's value.

    argparse takes ``-1x3x3`` (or ``-1,1``) for an unknown option and reports that ``--input`` expected one
    argument; after an option that takes a value, a token that is none of the subcommand's options is its value.
    """
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    out: list[str] = []
    sub = None
    i = 0
    while i < len(argv):
        token = argv[i]
        out.append(token)
        i += 1
        if sub is None:
            sub = subcommands.get(token)
            continue
        action = sub._option_string_actions.get(token)
        if action is None or action.nargs is not None or i >= len(argv):
            continue
        value = argv[i]
        known = value in sub._option_string_actions or value == "--" or (
            value.startswith("--") and any(o.startswith(value.split("=", 1)[0]) for o in sub._option_string_actions))
        if value.startswith("-") and not known:
            out[-1] = f"{token}={value}"
            i += 1
    return out


def _draw_parser(subparsers) -> None:
    from .viz.cli_draw import add_parser  # standard library only at import time

    add_parser(subparsers)


def _train_parser(subparsers) -> None:
    from .train.cli import add_parser  # standard library only at import time

    add_parser(subparsers)


def _serve_parser(subparsers) -> None:
    from .explorer.cli import add_parser  # standard library only at import time

    add_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _animate_parser(subparsers)
    _draw_parser(subparsers)
    _train_parser(subparsers)
    _serve_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``convlab`` command; returns the exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = _attach_dash_values(parser, argv)
    args = parser.parse_args(argv)
    if args.command == "bench":
        # The benchmark may re-run itself in a fresh interpreter; hand it the arguments (values attached).
        args.argv_for_bench = argv[argv.index("bench") + 1:]
    try:
        if args.command != "conv":
            return args.run(args)
        try:
            return args.run(args)
        except (ValueError, TypeError) as exc:  # the engine's and the parser's messages name the parameter
            print(f"convlab conv: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly (Python docs, "Note on SIGPIPE")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
