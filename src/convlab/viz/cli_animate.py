"""``convlab animate``: its own options; the options it shares with ``convlab conv`` are added by ``convlab.cli``.

Only the standard library is imported here (the command line builds every
parser on each call); the animation is imported when the command runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

__all__ = ["add_parser", "run"]

EPILOG = """\
Give the numbers (-i/-k, the syntax of `convlab conv`; each frame then writes
its products and sum) or only sizes (--input-size, --kernel-size; cells show
their indices, or nothing with --labels none). The format follows the
extension of -o: .gif, .svg (animated, self-contained) or .html (a page with
that SVG). Without -o the file gets a descriptive name in the current folder;
the path is printed. All channels are drawn; each frame highlights the input
channels its output reads (its group). With --pool the stride defaults to the
window, as in torch.

colours (Okabe-Ito, colour-blind safe): input sky blue, padding pale grey,
inserted zeros yellow, kernel footprint orange (the cell's own colour stays as
a ring), dilation gaps light orange, max-pool maximum blue, computed outputs
bluish green, the current output vermillion.

examples:
  convlab animate --input-size 5x5 --kernel-size 3 --stride 2 --padding 1 -o strided.gif
  convlab animate -i "0 1 2; 3 4 5; 6 7 8" -k "0 1; 2 3" -o d2l.svg
  convlab animate --input-size 3x3 --kernel-size 3 --stride 2 --padding 1 --transposed --output-padding 1
  convlab animate --input-size 7x7 --kernel-size 3 --dilation 2 -o dilated.html
  convlab animate -i "1 2 3 4 5 6" -k "1 1 1" --padding causal --dilation 2     # 1-D
  convlab animate -i "1 2 3; 4 5 6; 7 8 9" -k "1 0; 0 1" --padding 1 --padding-mode reflect
  convlab animate --input-size 6x6 --kernel-size 2 --pool max
  convlab animate --input-size 4x4 --kernel-size 3 --in-channels 4 --out-channels 2 --groups 2
  convlab animate --preset conv_arithmetic -o gifs/       # the 15 animations of vdumoulin/conv_arithmetic
"""

SIZE_FORMS = "positive integers separated by 'x': 5x5 (2-D) or 7 (1-D)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Create the ``animate`` subcommand with its own options and return it (``convlab.cli`` adds the shared ones)."""
    p = subparsers.add_parser(
        "animate", help="animate a (transposed) convolution or pooling: GIF, SVG or HTML, one frame per output",
        description="Draw one frame per output element of a convolution, transposed convolution or pooling: the "
                    "input with its padding (and inserted zeros), the kernel's footprint with its dilation gaps, the "
                    "output with the current element, the output size formula with the numbers substituted and, "
                    "with numbers given, the products and sum. Frames come from the engine's convlab.ops.explain.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="file to write: .gif, .svg or .html (default: a descriptive name in the current folder; "
                        "with --preset: a folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--input-size", metavar="SIZE", help="sizes only: the input's spatial size, e.g. 5x5 (1-D: 7)")
    p.add_argument("--kernel-size", metavar="SIZE", help="sizes only (and pooling): the kernel's size, e.g. 3 or 3x2")
    p.add_argument("--in-channels", metavar="C", help="sizes only: input channels (default: --groups)")
    p.add_argument("--out-channels", metavar="C", help="sizes only: output channels (default: the input's)")
    p.add_argument("--pool", choices=("max", "avg"), help="pooling instead of convolution (window: --kernel-size)")
    p.add_argument("--ceil-mode", action="store_true", help="pooling: ceil instead of floor in the output size")
    p.add_argument("--labels", choices=("values", "indices", "none"),
                   help="what cells show (default: values with -i/-k, indices with sizes only)")
    p.add_argument("--duration", default="600", metavar="MS", help="time per frame in milliseconds (default 600)")
    p.add_argument("--preset", choices=("conv_arithmetic",),
                   help="write a set of animations: conv_arithmetic's 15 (into the folder -o, default '.')")
    p.add_argument("--format", choices=("gif", "svg", "html"), default="gif",
                   help="with --preset: the format of its files (default gif)")
    return p


def _size(option: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [t.strip() for t in text.strip().lower().split("x")]
    if not all(re.fullmatch(r"[0-9]{1,9}", t, re.ASCII) and int(t) > 0 for t in parts):
        raise ValueError(f"`{option}` (={text!r}) must be {SIZE_FORMS}")
    return tuple(int(t) for t in parts)


def _count(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text.strip(), re.ASCII) or int(text) < 1:
        raise ValueError(f"`{option}` (={text!r}) must be a positive integer")
    return int(text)


def _one_line(exc: BaseException) -> str:
    """The message on one line, naming the command's options rather than the function's parameters."""
    text = re.sub(r"\s*\n\s*", " ", str(exc)).removeprefix("animate: ")
    return text.replace("`output`", "`--output`").replace("overwrite=True (--overwrite)", "--overwrite")


def run(args: argparse.Namespace, parse_conv_options, conv_arrays) -> int:
    """Run ``convlab animate``; ``parse_conv_options``/``conv_arrays`` are ``convlab.cli``'s (the shared options)."""
    try:
        return _run(args, parse_conv_options, conv_arrays)
    except ImportError as exc:
        print(f"convlab animate: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        print(f"convlab animate: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _run(args, parse_conv_options, conv_arrays) -> int:
    stride_given = args.stride is not None
    if not stride_given:
        args.stride = "1"
    input, kernel, bias, settings = parse_conv_options(args)
    duration = _count("--duration", args.duration)
    if args.preset is not None:
        if input is not None or kernel is not None or args.input_size or args.kernel_size or args.pool:
            raise ValueError("`--preset` draws its own configurations: give no input, kernel or --pool with it")
        return _run_preset(args, duration)
    input_size = _size("--input-size", args.input_size)
    kernel_size = _size("--kernel-size", args.kernel_size)
    in_channels = _count("--in-channels", args.in_channels)
    out_channels = _count("--out-channels", args.out_channels)
    if input is not None and input_size is not None:
        raise ValueError("give `--input` (numbers) or `--input-size` (sizes only), not both")
    if input is None and input_size is None:
        raise ValueError("give `--input`/`--kernel` (numbers) or `--input-size`/`--kernel-size` (sizes only)")
    if args.pool is not None:
        if kernel is not None:
            raise ValueError("`--pool` takes its window from `--kernel-size`, not `--kernel`")
        if kernel_size is None:
            raise ValueError("`--pool` needs `--kernel-size` (the window), e.g. --kernel-size 2")
        if settings["transposed"]:
            raise ValueError("`--pool` and `--transposed` exclude each other")
    elif input is not None and kernel is None:
        raise ValueError("`--input` gives numbers: give the kernel's numbers with `--kernel` too")
    elif input_size is not None and kernel is not None:
        raise ValueError("`--kernel` gives numbers: give the input's with `--input` too (or use `--kernel-size`)")
    elif input_size is not None and kernel_size is None:
        raise ValueError("`--input-size` needs `--kernel-size`, e.g. --kernel-size 3")
    elif input is not None and kernel_size is not None:
        raise ValueError("`--kernel` gives the kernel: `--kernel-size` goes with `--input-size`")

    from .animate import animate, check_output_path, default_filename

    x = w = b = None
    if input is not None:
        if args.pool is not None:
            nd = len(_nested_shape(input)) - 1
            x, _, _ = conv_arrays(args, input, _unit_kernel(nd), None)
        else:
            x, w, b = conv_arrays(args, input, kernel, bias)
    if kernel_size is not None and len(kernel_size) == 1:
        kernel_size = kernel_size[0]
    options = dict(settings)
    if args.pool is not None:
        options = {k: v for k, v in options.items() if k in ("stride", "padding", "dilation")}
        if not stride_given:
            options["stride"] = None
        if settings["padding_mode"] != "zeros" or settings["groups"] != 1 or settings["flip_kernel"]:
            raise ValueError("`--pool` takes --stride, --padding and --dilation (not --padding-mode, --groups, "
                             "--flip-kernel)")
    output = args.output
    if output is not None:
        check_output_path(output, args.overwrite)  # before drawing
    anim = animate(x, w, b, input_size=input_size, kernel_size=kernel_size, in_channels=in_channels,
                   out_channels=out_channels, pool=args.pool, ceil_mode=args.ceil_mode, labels=args.labels,
                   duration=duration, **options)
    if output is None:
        output = default_filename(anim, ".gif")
    path = anim.save(output, overwrite=args.overwrite)
    print(path)
    return 0


def _run_preset(args, duration: int) -> int:
    from .animate import animate, check_output_path, conv_arithmetic

    folder = args.output or "."
    if not os.path.isdir(folder):
        raise ValueError(f"`--output` (={folder!r}): with --preset, -o names an existing folder")
    configs = conv_arithmetic()
    paths = [os.path.join(folder, f"{name}.{args.format}") for name in configs]
    for path in paths:  # every refusal before the first file is written
        check_output_path(path, args.overwrite)
    for (name, config), path in zip(configs.items(), paths, strict=True):
        anim = animate(**config, labels=args.labels or "none", duration=duration)
        anim.save(path, overwrite=args.overwrite)
        print(f"{path}  ({name}: {'x'.join(map(str, anim.input_size))} -> {'x'.join(map(str, anim.output_size))})")
    return 0


def _nested_shape(nested: list) -> tuple[int, ...]:
    return (len(nested),) + (_nested_shape(nested[0]) if nested and isinstance(nested[0], list) else ())


def _unit_kernel(nd: int) -> list:
    """A (1, 1, 1, ...) kernel as nested lists: only its number of dimensions matters (pooling has no weight)."""
    kernel: object = 1
    for _ in range(nd + 2):
        kernel = [kernel]
    return kernel  # type: ignore[return-value]
