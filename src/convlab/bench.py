"""``convlab bench``: the default path against PyTorch on a few ResNet-18 layers.

A measurement, not a test. For each layer it times, interleaved in one run so
that drifts in the machine's speed hit both sides alike:

* forward: ``convlab.functional.conv2d`` vs ``torch.nn.functional.conv2d`` (no grad);
* backward: ``convlab.functional.conv_vjp`` (input and weight gradients) vs
  ``torch.autograd.grad`` of the same convolution (input and weight gradients,
  the forward graph built once outside the timing).

It reports the median of the repeats, the ratio convlab/torch and GFLOP/s.

Fairness: OpenBLAS worker threads busy-wait after each NumPy BLAS call and slow
the next torch call three- to four-fold. So the run sets
``OPENBLAS_THREAD_TIMEOUT=1`` and the same thread count for both libraries
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
OpenBLAS reads these when NumPy is loaded, and importing :mod:`convlab` loads
NumPy, so when they are not already set :func:`main` re-runs the benchmark in a
fresh interpreter (``python -m convlab.bench ...``) with them set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["LAYERS", "Layer", "add_arguments", "conv_flops", "main"]

_CHILD_MARK = "CONVLAB_BENCH_CHILD"


class Layer(NamedTuple):
    """One 2-D convolution of ResNet-18 (no bias, as in the model), square input and kernel."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    padding: int
    size: int  # input height = width


LAYERS: tuple[Layer, ...] = (
    Layer("conv1", 3, 64, 7, 2, 3, 224),  # the stem, 7x7/2
    Layer("layer1.0.conv1", 64, 64, 3, 1, 1, 56),
    Layer("layer2.1.conv1", 128, 128, 3, 1, 1, 28),
    Layer("layer2.0.conv1", 64, 128, 3, 2, 1, 56),  # 3x3/2
    Layer("layer2.0.downsample.0", 64, 128, 1, 2, 0, 56),  # 1x1/2
    Layer("layer4.1.conv1", 512, 512, 3, 1, 1, 7),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``convlab bench`` and ``python -m convlab.bench``)."""
    parser.add_argument("--quick", action="store_true",
                        help="batch 1 and fewer repeats (a smoke run for CI; the numbers mean little)")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="timed repeats per measurement, reported as the median (default 5, or 2 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--threads", type=int, default=2, metavar="T",
                        help="threads for both OpenBLAS and torch (default 2)")
    parser.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--layers", default=None, help=argparse.SUPPRESS)  # comma list of layer names


def conv_flops(layer: Layer, batch: int, out_size: Sequence[int]) -> int:
    """FLOPs of the forward convolution of a batch (``2 * MACs``, from :func:`convlab.costs.conv_cost`).

    The backward pass (input gradient plus weight gradient) costs twice this.
    """
    from .costs import conv_cost

    kernel = (layer.kernel_size, layer.kernel_size)
    return batch * conv_cost(layer.in_channels, layer.out_channels, kernel, tuple(out_size)).flops


def _median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _environment_ready(threads: int) -> bool:
    return (os.environ.get("OPENBLAS_THREAD_TIMEOUT") == "1"
            and os.environ.get("OPENBLAS_NUM_THREADS") == str(threads)
            and os.environ.get("OMP_NUM_THREADS") == str(threads))


def _machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()}


def run(layers: Sequence[Layer], batch: int, repeat: int, threads: int) -> dict[str, object]:
    """Time every layer, interleaving convlab and torch; return the results as a dict."""
    import numpy as np
    import torch
    import torch.nn.functional as tF

    from . import functional as F
    from .shapes import conv_output_shape
    from .spec import ConvSpec

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    cases = []
    for layer in layers:
        x = rng.standard_normal((batch, layer.in_channels, layer.size, layer.size)).astype(np.float32)
        w = (rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel_size, layer.kernel_size))
             / np.sqrt(layer.in_channels * layer.kernel_size ** 2)).astype(np.float32)
        spec = ConvSpec(layer.kernel_size, layer.stride, layer.padding, ndim=2, name=layer.name)
        out_size = conv_output_shape(spec, (layer.size, layer.size))
        gy = rng.standard_normal((batch, layer.out_channels, *out_size)).astype(np.float32)
        tx = torch.from_numpy(x).requires_grad_(True)
        tw = torch.from_numpy(w).requires_grad_(True)
        ty = tF.conv2d(tx, tw, stride=layer.stride, padding=layer.padding)  # graph for the backward timing
        tgy = torch.from_numpy(gy)
        s, p = layer.stride, layer.padding

        def ours_forward(x=x, w=w, s=s, p=p):
            return F.conv2d(x, w, stride=s, padding=p)

        def ours_backward(gy=gy, x=x, w=w, s=s, p=p):
            return F.conv_vjp(gy, x, w, stride=s, padding=p)

        def torch_forward(tx=tx, tw=tw, s=s, p=p):
            with torch.no_grad():
                return tF.conv2d(tx, tw, stride=s, padding=p)

        def torch_backward(ty=ty, tx=tx, tw=tw, tgy=tgy):
            return torch.autograd.grad(ty, (tx, tw), tgy, retain_graph=True)

        # Warm-up, and a check that both sides compute the same thing.
        y_ours, y_torch = ours_forward(), torch_forward().numpy()
        g_ours, g_torch = ours_backward(), torch_backward()
        scale = max(float(np.abs(y_torch).max()), 1e-30)
        errors = {
            "output": float(np.abs(y_ours - y_torch).max()) / scale,
            "grad_input": float(np.abs(g_ours.input - g_torch[0].numpy()).max())
            / max(float(np.abs(g_torch[0].numpy()).max()), 1e-30),
            "grad_weight": float(np.abs(g_ours.weight - g_torch[1].numpy()).max())
            / max(float(np.abs(g_torch[1].numpy()).max()), 1e-30),
        }
        del y_ours, y_torch, g_ours, g_torch
        cases.append((layer, out_size, ours_forward, torch_forward, ours_backward, torch_backward, errors))

    samples = {layer.name: {k: [] for k in ("fwd_ours", "fwd_torch", "bwd_ours", "bwd_torch")} for layer, *_ in cases}
    for _ in range(repeat):
        for layer, _out, ours_f, torch_f, ours_b, torch_b, _err in cases:
            times = samples[layer.name]
            times["fwd_ours"].append(_timed(ours_f))
            times["fwd_torch"].append(_timed(torch_f))
            times["bwd_ours"].append(_timed(ours_b))
            times["bwd_torch"].append(_timed(torch_b))

    results = []
    for layer, out_size, *_fns, errors in cases:
        times = samples[layer.name]
        forward_flops = conv_flops(layer, batch, out_size)
        entry: dict[str, object] = {
            "name": layer.name,
            "input_shape": [batch, layer.in_channels, layer.size, layer.size],
            "weight_shape": [layer.out_channels, layer.in_channels, layer.kernel_size, layer.kernel_size],
            "stride": layer.stride,
            "padding": layer.padding,
            "output_shape": [batch, layer.out_channels, *map(int, out_size)],
            "max_relative_error": errors,
        }
        for key, flops in (("forward", forward_flops), ("backward", 2 * forward_flops)):
            prefix = {"forward": "fwd", "backward": "bwd"}[key]
            ours_ms, torch_ms = _median_ms(times[f"{prefix}_ours"]), _median_ms(times[f"{prefix}_torch"])
            entry[key] = {
                "convlab_ms": ours_ms,
                "torch_ms": torch_ms,
                "ratio": ours_ms / torch_ms,
                "flops": flops,
                "convlab_gflops": flops / ours_ms / 1e6,
                "torch_gflops": flops / torch_ms / 1e6,
            }
        results.append(entry)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "threads": threads,
        "batch": batch,
        "repeat": repeat,
        "dtype": "float32",
        "numpy": np.__version__,
        "torch": torch.__version__,
        "layers": results,
    }


def format_table(report: dict[str, object]) -> str:
    """The results as an aligned Markdown table (one row per layer and pass)."""
    header = ("layer", "pass", "convlab ms", "torch ms", "convlab/torch", "convlab GFLOP/s", "torch GFLOP/s")
    rows = [header]
    for entry in report["layers"]:  # type: ignore[union-attr]
        for key in ("forward", "backward"):
            r = entry[key]
            rows.append((entry["name"], key, f"{r['convlab_ms']:.2f}", f"{r['torch_ms']:.2f}", f"{r['ratio']:.2f}",
                         f"{r['convlab_gflops']:.1f}", f"{r['torch_gflops']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row):
        cells = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= 2 else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), rule] + [line(r) for r in rows[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convlab bench`` and ``python -m convlab.bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="convlab bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads (={args.threads}) must be >= 1")
    layers = LAYERS
    if args.layers:
        wanted = [n.strip() for n in args.layers.split(",") if n.strip()]
        known = {layer.name: layer for layer in LAYERS}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            parser.error(f"--layers: unknown layer(s) {unknown}; known: {list(known)}")
        layers = tuple(known[n] for n in wanted)
    batch = args.batch if args.batch is not None else (1 if args.quick else 8)
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 5)
    if repeat < 1 or batch < 1:
        parser.error("--repeat and --batch must be >= 1")
    if not _environment_ready(args.threads):
        if os.environ.get(_CHILD_MARK):
            print("convlab bench: warning: could not set the OpenBLAS environment; torch timings may be unfair",
                  file=sys.stderr)
        else:
            env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="1", OPENBLAS_NUM_THREADS=str(args.threads),
                       OMP_NUM_THREADS=str(args.threads), **{_CHILD_MARK: "1"})
            return subprocess.call([sys.executable, "-m", "convlab.bench", *argv], env=env)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("convlab bench: error: needs torch (pip install -e '.[torch]' -c constraints.txt)", file=sys.stderr)
        return 2
    report = run(layers, batch, repeat, args.threads)
    machine = report["machine"]
    print(f"convlab bench: ResNet-18 layers, batch {batch}, float32, median of {repeat}, "
          f"{args.threads} threads for both; {report['date']}, {machine['cpu']} ({machine['cores']} cores)")
    print("forward: conv2d; backward: input + weight gradients (conv_vjp vs torch autograd); "
          "ratio > 1 means convlab is slower")
    print(format_table(report))
    worst = max(max(entry["max_relative_error"].values()) for entry in report["layers"])  # type: ignore[union-attr]
    if worst > 1e-3:
        print(f"convlab bench: warning: convlab and torch differ by up to {worst:.2e} (relative)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
