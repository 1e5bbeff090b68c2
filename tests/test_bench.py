"""`convlab bench`: the suite, the targets and the report's structure (no timing is asserted: it is a measurement)."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import pytest

from convlab import bench
from convlab.bench import measure, runner, suites
from convlab.costs import conv_cost, conv_transpose_cost

FULL_SHAPES = {
    # name: (class, C_in, C_out, kernel, spatial size, stride, padding, dilation, groups, transposed)
    "resnet18.conv1": ("stem/strided", 3, 64, 7, (224, 224), 2, 3, 1, 1, False),
    "resnet18.layer1.0.conv1": ("3x3", 64, 64, 3, (56, 56), 1, 1, 1, 1, False),
    "resnet18.layer2.1.conv1": ("3x3", 128, 128, 3, (28, 28), 1, 1, 1, 1, False),
    "resnet18.layer3.1.conv1": ("3x3", 256, 256, 3, (14, 14), 1, 1, 1, 1, False),
    "resnet18.layer4.1.conv1": ("3x3", 512, 512, 3, (7, 7), 1, 1, 1, 1, False),
    "resnet18.layer2.0.conv1": ("stem/strided", 64, 128, 3, (56, 56), 2, 1, 1, 1, False),
    "resnet50.layer1.0.conv3": ("1x1", 64, 256, 1, (56, 56), 1, 0, 1, 1, False),
    "resnet50.layer1.1.conv1": ("1x1", 256, 64, 1, (56, 56), 1, 0, 1, 1, False),
    "resnet50.layer3.1.conv1": ("1x1", 1024, 256, 1, (14, 14), 1, 0, 1, 1, False),
    "resnet50.layer3.0.conv3": ("1x1", 256, 1024, 1, (14, 14), 1, 0, 1, 1, False),
    "resnet50.layer2.0.downsample.0": ("stem/strided", 256, 512, 1, (56, 56), 2, 0, 1, 1, False),
    "vgg16.conv3_1": ("3x3", 128, 256, 3, (56, 56), 1, 1, 1, 1, False),
    "vgg16.conv3_2": ("3x3", 256, 256, 3, (56, 56), 1, 1, 1, 1, False),
    "mobilenetv2.features.2.conv.1.0": ("depthwise small", 96, 96, 3, (112, 112), 2, 1, 1, 96, False),
    "mobilenetv2.features.3.conv.1.0": ("depthwise small", 144, 144, 3, (56, 56), 1, 1, 1, 144, False),
    "mobilenetv2.features.8.conv.1.0": ("depthwise small", 384, 384, 3, (14, 14), 1, 1, 1, 384, False),
    "mobilenetv2.features.15.conv.1.0": ("depthwise small", 960, 960, 3, (7, 7), 1, 1, 1, 960, False),
    "convnext_tiny.features.1.0.block.0": ("depthwise small", 96, 96, 7, (56, 56), 1, 3, 1, 96, False),
    "convnext_tiny.features.5.0.block.0": ("depthwise small", 384, 384, 7, (14, 14), 1, 3, 1, 384, False),
    "replknet31b.stage1.large_kernel": ("depthwise large", 128, 128, 31, (56, 56), 1, 15, 1, 128, False),
    "replknet31b.stage2.large_kernel": ("depthwise large", 256, 256, 31, (28, 28), 1, 15, 1, 256, False),
    "wav2vec2.feature_extractor.conv_layers.0": ("1-D", 1, 512, 10, (16000,), 5, 0, 1, 1, False),
    "conv1d.k9.c128": ("1-D", 128, 128, 9, (16384,), 1, 4, 1, 1, False),
    "conv3d.k3.c64": ("3-D", 64, 64, 3, (8, 56, 56), 1, 1, 1, 1, False),
    "dcgan.up4x4s2.c128": ("transposed", 128, 64, 4, (28, 28), 2, 1, 1, 1, True),
    "unet.up2x2s2.c256": ("transposed", 256, 128, 2, (28, 28), 2, 0, 1, 1, True),
    "deeplab.3x3d2.c256": ("dilated", 256, 256, 3, (28, 28), 1, 2, 2, 1, False),
    "image1024.k3": ("single-channel", 1, 1, 3, (1024, 1024), 1, 1, 1, 1, False),
    "image1024.k11": ("single-channel", 1, 1, 11, (1024, 1024), 1, 5, 1, 1, False),
    "image1024.k31": ("single-channel", 1, 1, 31, (1024, 1024), 1, 15, 1, 1, False),
}


def test_the_default_suite_is_the_full_list():
    layers = {name: suites.BY_NAME[name] for name in bench.SUITES["full"]}
    assert {name: (la.layer_class, la.in_channels, la.out_channels, la.kernel_size, la.size, la.stride, la.padding,
                   la.dilation, la.groups, la.transposed) for name, la in layers.items()} == FULL_SHAPES
    assert suites.BY_NAME["conv3d.k3.c64"].batch == 2  # batch 2, depth 8
    assert all(la.batch is None for name, la in layers.items() if name != "conv3d.k3.c64")
    assert {la.layer_class for la in layers.values()} == set(bench.CLASSES)
    for suite, names in bench.SUITES.items():
        assert names and set(names) <= set(bench.SUITES["full"]), suite


def test_every_layer_has_a_time_target_and_the_limits_are_as_specified():
    by_name = {t.name: t for t in bench.TARGETS}
    for layer in bench.LAYERS:
        assert any(t.applies(layer) and t.versus == "torch" for t in bench.TARGETS), layer.name
    big = by_name["3x3 s1, >= 128 ch, >= 56x56"]
    assert [la.name for la in bench.LAYERS if big.applies(la)] == ["vgg16.conv3_1", "vgg16.conv3_2"]
    assert runner.pass_limit(big, "forward") == (0.55, False)
    assert runner.pass_limit(big, "input_grad") == pytest.approx((0.66, False))
    assert runner.pass_limit(big, "backward") is None
    large = by_name["depthwise >= 13x13"]
    assert runner.pass_limit(large, "weight_grad") == (0.1, False)
    assert runner.pass_limit(large, "input_grad") == pytest.approx((0.12, False))
    assert runner.pass_limit(by_name["3-D"], "forward") == (1.5, False)
    scipy_target = by_name["single channel vs fastest SciPy"]
    assert runner.pass_limit(scipy_target, "forward") == (1.0, True)  # faster than: strictly below 1
    assert runner.pass_limit(scipy_target, "weight_grad") is None
    assert not runner.meets(1.0, 1.0, strict=True) and runner.meets(1.0, 1.0, strict=False)


def test_flops_come_from_the_cost_rule():
    layer = suites.BY_NAME["dcgan.up4x4s2.c128"]
    assert bench.conv_flops(layer, 8, (56, 56)) == 8 * conv_transpose_cost(128, 64, (4, 4), (28, 28), (56, 56)).flops
    layer = suites.BY_NAME["mobilenetv2.features.3.conv.1.0"]
    assert bench.conv_flops(layer, 2, (56, 56)) == 2 * conv_cost(144, 144, (3, 3), (56, 56), groups=144).flops
    assert measure.pass_flops(10, "backward") == 20 and measure.pass_flops(10, "weight_grad") == 10


def _entry(name: str, layer_class: str, ratios: dict[str, float]) -> dict:
    passes = {pass_: {"ratio": ratios.get(pass_), "ratio_channels_last": None, "memory_ratio": None}
              for pass_ in bench.PASSES}
    return {"name": name, "class": layer_class, "passes": passes,
            "targets": runner.layer_targets(suites.BY_NAME[name], passes)}


def test_summaries_take_geometric_means_and_the_worst_layer_per_target():
    entries = [
        _entry("resnet18.layer1.0.conv1", "3x3", {"forward": 0.5, "input_grad": 1.0}),
        _entry("resnet18.layer2.1.conv1", "3x3", {"forward": 2.0, "input_grad": 1.3}),
        _entry("vgg16.conv3_1", "3x3", {"forward": 0.5}),
    ]
    classes, targets = runner.summaries(entries)
    assert list(classes) == ["3x3"]
    assert classes["3x3"]["geomean_ratio"]["forward"] == pytest.approx((0.5 * 2.0 * 0.5) ** (1 / 3))
    assert classes["3x3"]["geomean_ratio"]["backward"] is None
    rows = {(t["target"], t["pass"]): t for t in targets}
    other = rows[("3x3 s1, other", "forward")]
    assert (other["figure"], other["worst_layer"], other["met"]) == (2.0, "resnet18.layer2.1.conv1", False)
    assert other["not_met"] == ["resnet18.layer2.1.conv1"]
    assert rows[("3x3 s1, other", "input_grad")]["not_met"] == ["resnet18.layer2.1.conv1"]  # 1.3 > 1.2
    assert rows[("3x3 s1, >= 128 ch, >= 56x56", "forward")]["met"] is True
    assert ("3x3 s1, other", "weight_grad") not in rows  # no figure, no check


def test_list_shows_the_suites_and_layers(capsys):
    assert bench.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "full (30 layers)" in out and "issue" not in out
    assert "replknet31b.stage1.large_kernel" in out and "31x31 128->128 at 56x56" in out


def test_a_bad_blas_core_is_rejected():
    proc = subprocess.run([sys.executable, "-m", "convlab.bench", "--quick", "--blas-core", "x;rm"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--blas-core (='x;rm') must be an OpenBLAS core name" in proc.stderr


def test_an_unknown_layer_is_rejected():
    proc = subprocess.run([sys.executable, "-m", "convlab.bench", "--quick", "--layers", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown layer" in proc.stderr


def _table(lines: list[str], first_header_cell: str, after: int = 0) -> list[list[str]]:
    """The rows (cells) of the first Markdown table whose header starts with ``first_header_cell``."""
    start = next(i for i, line in enumerate(lines) if i >= after and line.startswith(f"| {first_header_cell} "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return [rows[0]] + rows[2:]  # without the rule


def test_quick_run_prints_the_tables_and_writes_the_json(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    path = tmp_path / "bench.json"
    layers = "resnet50.layer3.1.conv1,image1024.k3"
    env = {key: value for key, value in os.environ.items() if key not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run([sys.executable, "-m", "convlab.cli", "bench", "--quick", "--layers", layers,
                           "--json", str(path), "--blas-core", "Haswell"], capture_output=True, text=True, timeout=300,
                          env=env)  # output to a pipe: Markdown tables, with or without Rich
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # --blas-core sets OPENBLAS_CORETYPE for the run; the header says which kernels each library ran
    assert any(line.startswith("kernels: NumPy's OpenBLAS Haswell (set by OPENBLAS_CORETYPE=Haswell); torch ")
               for line in lines), proc.stdout[:2000]

    main_table = _table(lines, "layer")
    assert main_table[0] == ["layer", "pass", "convlab algorithm", "convlab ms", "torch ms", "torch CL ms",
                             "convlab/torch", "convlab/torch CL", "convlab GFLOP/s", "torch GFLOP/s", "convlab MiB",
                             "torch MiB", "memory ratio", "target", "auto/fastest", "auto/fastest measured rates"]
    # auto's time over the fastest algorithm's on the same primitive calls: at least 1 by definition, with the
    # rates in use and with the rates measured here
    assert all(float(row[14].split()[0]) >= 1.0 and float(row[15].split()[0]) >= 1.0 for row in main_table[1:])
    assert [row[:2] for row in main_table[1:]] == [
        [name, label] for name in layers.split(",") for label in ("forward", "backward", "input grad", "weight grad")]
    scipy_table = _table(lines, "layer", after=lines.index(next(x for x in lines if "against SciPy" in x)))
    assert scipy_table[0][3:6] == ["signal.correlate", "signal.fftconvolve", "ndimage.correlate"]
    assert [row[0] for row in scipy_table[1:]] == ["image1024.k3"]
    assert [row[0] for row in _table(lines, "class")[1:]] == ["1x1", "single-channel"]
    targets_table = _table(lines, "target")
    assert targets_table[0] == ["target", "layers", "forward", "backward", "input grad", "weight grad"]
    assert [row[0] for row in targets_table[1:]] == [
        "1x1", "single channel vs torch", "single channel vs fastest SciPy", "peak memory vs torch"]
    assert all(cell == "-" or cell.endswith(("met", "NOT MET")) for row in targets_table[1:] for cell in row[2:])

    report = json.loads(path.read_text())
    assert report["kernels"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert report["kernels"]["openblas_core"] == "Haswell" and report["kernels"]["openblas_core_avx512"] is False
    assert {"date", "machine", "load_average", "threads", "batch", "repeat", "dtype", "versions", "memory_method",
            "suite", "layers", "classes", "targets", "other_processes_cpu_share", "auto_fastest",
            "cost_model"} <= set(report)
    # the rates in use (the constants by default) and the rates measured on this machine, both printed
    assert report["cost_model"]["source"] == "constants"
    assert set(report["cost_model"]["measured"]) >= {"gemm_flops", "stream_bytes", "call_seconds", "rejected"}
    assert any(line.startswith("Cost model rates (in use: constants") for line in lines)
    assert set(report["auto_fastest"]) == {"in use", "measured"}
    assert _table(lines, "rates")[0] == ["rates", "worst", "worst at", "geomean", "within 1.1", "within 1.3"]
    assert (report["batch"], report["repeat"], report["threads"], report["suite"]) == (1, 1, 2, "custom")
    one_by_one, image = report["layers"]
    assert (one_by_one["name"], one_by_one["class"], one_by_one["output_shape"]) == (
        "resnet50.layer3.1.conv1", "1x1", [1, 256, 14, 14])
    assert one_by_one["flops"] == 2 * 1024 * 256 * 14 * 14
    for entry, impls in ((one_by_one, {"convlab", "torch", "torch_channels_last"}),
                         (image, {"convlab", "torch", "torch_channels_last"})):
        assert set(entry["passes"]) == set(bench.PASSES)
        assert entry["other_processes_cpu_share"] is None or 0 <= entry["other_processes_cpu_share"] <= 1
        for pass_, r in entry["passes"].items():
            expected = impls | (set(suites.SCIPY) if entry is image and pass_ == "forward" else set())
            assert set(r["ms"]) == set(r["min_ms"]) == set(r["gflops"]) == set(r["peak_memory_mib"]) == expected
            assert all(n == 1 for n in r["timed_calls"].values())  # --quick: one timed call each
            assert r["flops"] == (2 if pass_ == "backward" else 1) * entry["flops"]
            assert r["ratio"] == pytest.approx(r["ms"]["convlab"] / r["ms"]["torch"])
            assert set(r["ratios_auto_fastest"]) == {"in use", "measured"}
            assert r["ratios_auto_fastest"]["in use"] == r["ratio_auto_fastest"] >= 1.0
            assert all(set(c["auto_with"]) == {"measured"} for c in r["auto_fastest_calls"])
            assert all(v is None or v >= 0 for v in r["peak_memory_mib"].values())
            # every implementation computed the same numbers as torch NCHW
            assert max(entry["max_relative_error"][pass_].values()) < 1e-3, (entry["name"], pass_)
    assert image["passes"]["forward"]["fastest_scipy"] in suites.SCIPY
    assert set(report["classes"]) == {"1x1", "single-channel"}
    assert set(report["classes"]["1x1"]["geomean_ratio"]) == set(bench.PASSES)
    forward_ratio = one_by_one["passes"]["forward"]["ratio"]
    assert report["classes"]["1x1"]["geomean_ratio"]["forward"] == pytest.approx(forward_ratio)
    checks = {(t["target"], t["pass"]) for t in report["targets"]}
    assert {("1x1", "forward"), ("1x1", "input_grad"), ("1x1", "weight_grad"),
            ("single channel vs fastest SciPy", "forward"), ("peak memory vs torch", "backward")} <= checks
    for t in report["targets"]:
        assert {"target", "pass", "limit", "strict", "figure", "worst_layer", "layers", "not_met", "met"} <= set(t)
        assert t["met"] == (not t["not_met"]) and math.isfinite(t["figure"])


def test_a_failing_implementation_is_reported_and_the_rest_measured(monkeypatch):
    pytest.importorskip("torch")
    import convlab.functional as F

    def broken(*args, **kwargs):
        raise ValueError("conv2d: broken on purpose")

    monkeypatch.setattr(F, "conv2d", broken)
    report = bench.run([suites.BY_NAME["resnet50.layer3.1.conv1"]], batch=1, repeat=1, threads=1)
    (entry,) = report["layers"]
    assert entry["failures"] == {"forward": {"convlab": "ValueError: conv2d: broken on purpose"}}
    forward = entry["passes"]["forward"]
    assert set(forward["ms"]) == {"torch", "torch_channels_last"} and forward["ratio"] is None
    assert entry["passes"]["backward"]["ratio"] is not None
    assert ("1x1", "forward") not in {(t["target"], t["pass"]) for t in report["targets"]}


# --------------------------------------------------------------------------- the algorithms that ran (trace hook)


@pytest.fixture(scope="module")
def small_report():
    """A real run of two cheap layers (a 1x1 convolution and a transposed one), batch 1, one round."""
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    layers = [suites.BY_NAME["resnet50.layer3.1.conv1"], suites.BY_NAME["unet.up2x2s2.c256"]]
    return bench.run(layers, batch=1, repeat=1, threads=1)


def test_algorithms_ran_names_what_the_trace_recorded():
    np = pytest.importorskip("numpy")
    import convlab.functional as F
    from convlab.ops.algorithms import trace

    x, w = np.ones((1, 2, 9, 9), np.float32), np.ones((3, 2, 3, 3), np.float32)
    for algorithm in ("gemm", "fft", "reference"):
        with trace() as events:
            F.conv2d(x, w, algorithm=algorithm)
        assert measure.algorithms_ran(events) == algorithm
    with trace() as events:
        pass
    assert measure.algorithms_ran(events) is None


def test_the_run_names_the_algorithms_that_ran(small_report):
    import numpy as np

    import convlab.functional as F
    from convlab.ops.algorithms import ALGORITHMS, trace

    one_by_one, transposed = small_report["layers"]
    for entry in (one_by_one, transposed):
        assert set(entry["algorithms"]) == set(bench.PASSES)
        for pass_, names in entry["algorithms"].items():
            assert names and set(names.split("+")) <= set(ALGORITHMS), (entry["name"], pass_, names)
    # the same calls traced here name the same algorithms (the planner's choice depends on the shapes only)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1024, 14, 14), dtype=np.float32)
    w = rng.standard_normal((256, 1024, 1, 1), dtype=np.float32)
    gy = rng.standard_normal((1, 256, 14, 14), dtype=np.float32)
    calls = {"forward": lambda: F.conv2d(x, w), "backward": lambda: F.conv_vjp(gy, x, w),
             "input_grad": lambda: F.conv_input_grad(x.shape, w, gy),
             "weight_grad": lambda: F.conv_weight_grad(x, w.shape, gy)}
    for pass_, call in calls.items():
        with trace() as events:
            call()
        assert one_by_one["algorithms"][pass_] == measure.algorithms_ran(events), pass_
        if pass_ == "backward":  # both gradients: an input-gradient and a weight-gradient primitive call
            assert {event.role for event in events} == {"input_grad", "weight_grad"}


# --------------------------------------------------------------------------- Rich output


def _rich_lines(tables, width: int) -> list[str]:
    from rich.console import Console

    from convlab.bench.report import print_rich

    console = Console(width=width, record=True, file=io.StringIO())
    print_rich(console, tables)
    return console.export_text().splitlines()


def test_rich_tables_fit_the_width_and_keep_every_name_and_number(small_report):
    pytest.importorskip("rich")
    from convlab.bench.report import report_tables

    tables = report_tables(small_report)
    for width in (100, 140):
        lines = _rich_lines(tables, width)
        assert lines and max(map(len, lines)) <= width, width
        text = "\n".join(lines)
        for entry in small_report["layers"]:
            assert entry["name"] in text
            for pass_ in bench.PASSES:
                ms = entry["passes"][pass_]["ms"]
                for value in (ms["convlab"], ms["torch"]):
                    figure = f"{value:.3f}" if value < 0.01 else f"{value:.2f}"
                    assert figure in text, (entry["name"], pass_, figure)
        assert "target" in text and ("met" in text or "NOT MET" in text)
    # a narrow terminal gets the main table's columns in several tables, each repeating the layer and pass
    narrow, wide = _rich_lines(tables[:1], 100), _rich_lines(tables[:1], 400)
    name = small_report["layers"][0]["name"]
    assert sum(line.startswith(name) for line in narrow) > sum(line.startswith(name) for line in wide) == 4


def test_the_report_is_plain_markdown_without_rich(monkeypatch, capsys):
    from convlab.bench import cli

    monkeypatch.setitem(sys.modules, "rich.console", None)  # as if the extra 'cli' were not installed
    assert cli._rich_console(plain=False) is None
    with cli._progress(["a", "b"], plain=False) as progress:
        progress("a (1 s)")
    assert capsys.readouterr().err == "convlab bench: done a (1 s)\n"


def test_the_progress_bar_follows_the_layers(monkeypatch, capsys):
    pytest.importorskip("rich")
    from convlab.bench import cli

    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")  # Rich takes stderr for a terminal
    monkeypatch.setenv("COLUMNS", "100")
    assert cli._rich_console(plain=True) is None
    with cli._progress(["first.layer", "second.layer"], plain=False) as progress:
        progress("first.layer (0 s)")
        progress("second.layer (1 s)")
    err = capsys.readouterr().err
    assert "first.layer" in err and "1/2" in err and "second.layer" in err


def test_help_and_listing_speak_of_the_suite_not_of_an_issue():
    from convlab import cli as command

    parser = command.build_parser()
    bench_parser = parser._subparsers._group_actions[0].choices["bench"]
    for text in (parser.format_help(), bench_parser.format_help()):
        assert "issue" not in text.lower()
    assert "full" in bench_parser.format_help()
    assert bench_parser.parse_args(["--suite", "issue4"]).suite == "full"  # the former name still works


# --------------------------------------------------------------------------- the analysis section


def test_the_analysis_section_reports_time_and_memory_per_model_against_the_targets():
    section = bench.run_analysis(["lenet", "nin_d2l"], repeat=2)
    assert section["targets"] == {"seconds": 0.5, "peak_memory_bytes": 100_000_000}
    assert [entry["model"] for entry in section["models"]] == ["lenet", "nin_d2l"]
    lenet, nin = section["models"]
    assert lenet["input_shape"] == [1, 1, 28, 28] and nin["input_shape"] == [1, 1, 224, 224]
    for entry in section["models"]:
        assert entry["timed_calls"] == 2
        assert 0 < entry["min_seconds"] <= entry["seconds"]
        assert entry["build_seconds"] > 0 and entry["analyze_seconds"] > 0
        assert entry["peak_memory_bytes"] >= entry["build_peak_memory_bytes"] > 0
        assert entry["analyze_extra_memory_bytes"] >= 0
        assert entry["met"] == {"seconds": entry["seconds"] <= 0.5,
                                "peak_memory": entry["peak_memory_bytes"] <= 100_000_000}
    assert section["met"]["of"] == 2
    assert section["met"]["seconds"] == sum(entry["met"]["seconds"] for entry in section["models"])
    # as convlab summary, the model is built without weights: nin_d2l's 2 million parameters take no memory
    assert nin["build_peak_memory_bytes"] < 4 * 1_900_000 // 10

    table = _table(bench.format_analysis(section).splitlines(), "model")
    assert table[0] == ["model", "input", "seconds", "build s", "analyze s", "peak MB", "analyze extra MB",
                        "time target", "memory target"]
    assert [row[:2] for row in table[1:]] == [["lenet", "1x1x28x28"], ["nin_d2l", "1x1x224x224"]]
    for row, entry in zip(table[1:], section["models"], strict=True):
        assert row[2] == f"{entry['seconds']:.3f}" and row[5] == f"{entry['peak_memory_bytes'] / 1e6:.1f}"
        assert row[7] == f"<= 0.5 s {'met' if entry['met']['seconds'] else 'NOT MET'}"
        assert row[8] == f"<= 100 MB {'met' if entry['met']['peak_memory'] else 'NOT MET'}"


def test_a_failing_analysis_is_reported_and_the_rest_measured(monkeypatch):
    import convlab.analysis

    real = convlab.analysis.analyze

    def analyze(model, input_shape, **options):
        if type(model).__name__ == "NiN":
            raise ValueError("analyze: broken on purpose")
        return real(model, input_shape, **options)

    monkeypatch.setattr(convlab.analysis, "analyze", analyze)
    section = bench.run_analysis(["nin_d2l", "lenet"], repeat=1)
    broken, lenet = section["models"]
    assert broken == {"model": "nin_d2l", "input_shape": [1, 1, 224, 224],
                      "failure": "ValueError: analyze: broken on purpose"}
    assert "seconds" in lenet and section["met"]["of"] == 1


def test_analysis_from_the_command_line(tmp_path):
    path = tmp_path / "analysis.json"
    proc = subprocess.run([sys.executable, "-m", "convlab.bench", "--analysis", "--models", "lenet", "--repeat", "1",
                           "--json", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [row[0] for row in _table(proc.stdout.splitlines(), "model")[1:]] == ["lenet"]
    assert "analysis: " in proc.stdout and " of 1 models within 0.5 s" in proc.stdout
    report = json.loads(path.read_text())
    assert set(report) == {"date", "machine", "load_average", "analysis"}
    assert [entry["model"] for entry in report["analysis"]["models"]] == ["lenet"]
    proc = subprocess.run([sys.executable, "-m", "convlab.bench", "--analysis", "--models", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--models (='nope'): unknown model(s) ['nope']" in proc.stderr


def test_the_analysis_table_fits_the_width():
    pytest.importorskip("rich")
    from convlab.bench.report import analysis_table

    section = bench.run_analysis(["lenet"], repeat=1)
    lines = _rich_lines([analysis_table(section)], 100)
    assert max(map(len, lines)) <= 100
    (entry,) = section["models"]
    row = next(line for line in lines if line.startswith("lenet "))
    assert f"{entry['seconds']:.3f}" in row and f"{entry['peak_memory_bytes'] / 1e6:.1f}" in row


# --------------------------------------------------------------------------- checks before the work starts


@pytest.fixture
def no_work(monkeypatch):
    """main() with every kind of work replaced by a recorder: the runner, the re-run in a child, the analysis."""
    import convlab.bench.analysis
    import convlab.bench.cli

    calls: list[str] = []
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append("run"))
    monkeypatch.setattr(convlab.bench.cli.subprocess, "call", lambda *a, **k: calls.append(("child", k["env"])) or 0)
    monkeypatch.setattr(convlab.bench.analysis, "run_analysis", lambda *a, **k: calls.append("analysis"))
    return calls


@pytest.mark.parametrize(("argv", "message"), [
    (["--layers", ""], r"--layers \(=''\) names no layer: .*convlab bench --list shows them"),
    (["--layers", ",,"], r"--layers \(=',,'\) names no layer: .*convlab bench --list shows them"),
    (["--layers", "nope"], r"--layers: unknown layer\(s\) \['nope'\] \(convlab bench --list shows them\)"),
    (["--blas-core", "bogus"], r"--blas-core \(='bogus'\) must be an OpenBLAS core name .*Haswell, .*SkylakeX"),
    (["--batch", str(10**12)], r"--batch \(=1000000000000\): layer .* more than the memory budget of "
                               r"8,589,934,592 bytes .*; use --batch \d+ or less"),
    (["--json", "{tmp}"], r"--json \(='{tmp}'\) is a directory; name a file"),
    (["--json", "{tmp}/missing/out.json"], r"--json \(='{tmp}/missing/out.json'\): the folder '{tmp}/missing' "
                                           r"does not exist"),
    (["--json", "{tmp}/missing/"], r"--json \(='{tmp}/missing/'\) ends with a path separator"),
])
def test_bad_options_fail_before_any_layer_runs(argv, message, no_work, tmp_path, capsys):
    import re

    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", *argv])
    assert exit_info.value.code == 2
    assert re.search(message.replace("{tmp}", re.escape(str(tmp_path))), capsys.readouterr().err)
    assert no_work == []


def test_a_batch_beyond_the_available_memory_is_refused_with_the_numbers(no_work, monkeypatch, capsys):
    monkeypatch.setattr(measure, "available_memory", lambda: 10**9)
    with pytest.raises(SystemExit):
        bench.main(["--layers", "resnet18.conv1", "--batch", "100"])
    err = capsys.readouterr().err
    # input 100x3x224x224, output 100x64x112x112, weight 64x3x7x7, float32, times 4, against 1 GB
    need = 4 * 4 * (100 * 3 * 224 * 224 + 100 * 64 * 112 * 112 + 64 * 3 * 7 * 7)
    assert f"about {need:,} bytes" in err and "1,000,000,000 bytes of memory available" in err
    fits = (10**9 // 4 - 4 * 64 * 3 * 7 * 7) // (4 * (3 * 224 * 224 + 64 * 112 * 112))
    assert f"use --batch {fits} or less" in err
    assert no_work == []
    bench.main(["--layers", "resnet18.conv1", "--batch", str(fits)])  # fits: the run starts (in a child here)
    assert [call[0] for call in no_work] == ["child"]


def test_the_blas_core_is_case_insensitive_and_spelled_as_openblas_does(no_work):
    assert bench.main(["--quick", "--blas-core", "skylakex"]) == 0
    ((kind, env),) = no_work
    assert kind == "child" and env["OPENBLAS_CORETYPE"] == "SkylakeX"


def test_the_json_is_written_atomically_and_replaces_the_named_file(monkeypatch, tmp_path, capsys):
    import convlab.bench.cli as cli

    path = tmp_path / "bench.json"
    path.write_text("the previous results\n")
    argv = ["--analysis", "--models", "lenet", "--repeat", "1", "--plain", "--json", str(path)]

    def broken_dump(report, f, **kwargs):
        f.write('{"half": ')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.json, "dump", broken_dump)
    assert bench.main(argv) == 1
    assert "could not write --json" in capsys.readouterr().err
    assert path.read_text() == "the previous results\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]  # no temporary file left
    monkeypatch.undo()
    path.chmod(0o640)
    assert bench.main(argv) == 0
    report = json.loads(path.read_text())
    assert [entry["model"] for entry in report["analysis"]["models"]] == ["lenet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]
    assert path.stat().st_mode & 0o777 == 0o640  # the replaced file keeps its permissions


def _verdict_report(whole, per_layer, load=(0.0, 0.0, 0.0), cores=2):
    return {"other_processes_cpu_share": whole, "load_average": {"before": list(load)},
            "machine": {"cores": cores},
            "layers": [{"name": f"layer{i}", "other_processes_cpu_share": share} for i, share in enumerate(per_layer)]}


def test_one_verdict_on_the_machine_s_load():
    from convlab.bench.cli import machine_verdict

    # a high load average before the run (this command's own start counts in it) does not contradict 0%
    busy, line = machine_verdict(_verdict_report(0.0, [0.0, 0.02], load=(3.5, 2.0, 1.0)))
    assert not busy and line == ("other processes used 0% of the machine's CPU time during the run (at most 2% "
                                 "during one layer): the machine was quiet (at most 10%)")
    busy, line = machine_verdict(_verdict_report(0.05, [0.01, 0.3]))
    assert busy and "during layer1 (30%)" in line and line.endswith("rerun on an idle machine")
    busy, line = machine_verdict(_verdict_report(0.4, [0.05]))
    assert busy and line.startswith("other processes used 40% ")
    # without /proc/stat the load average decides
    assert machine_verdict(_verdict_report(None, [None], load=(3.5, 2.0, 1.0)))[0]
    assert not machine_verdict(_verdict_report(None, [None], load=(0.5, 0.2, 0.1)))[0]


def test_a_busy_machine_is_one_warning_and_a_quiet_one_no_warning(capsys):
    from convlab.bench.cli import _warn_layers

    quiet = _verdict_report(0.0, [0.0], load=(3.5, 2.0, 1.0))
    for report in (quiet,):
        for entry in report["layers"]:
            entry.update(failures={}, max_relative_error={})
    _warn_layers(quiet)
    assert capsys.readouterr().err == ""
    busy = _verdict_report(0.5, [0.5])
    busy["layers"][0].update(failures={}, max_relative_error={})
    _warn_layers(busy)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("convlab bench: warning: other processes used 50% ")


# --------------------------------------------------------------------------- auto against the fastest, per set of rates


def test_auto_against_fastest_reports_the_rates_in_use_and_other_rates_from_the_same_timings(monkeypatch):
    np = pytest.importorskip("numpy")
    import convlab.functional as F
    from convlab.ops.algorithms import calibrate, trace
    from convlab.ops.algorithms.plan import estimate_call

    x = np.ones((1, 4, 16, 16), np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    with trace() as events:
        F.conv2d(x, w, padding=1)
    (event,) = events
    # rates under which GEMMs are very slow: auto would run something else there
    slow_gemm = calibrate.CONSTANTS._replace(fft_flops=1e15, gemm_flops=1e6, call_seconds=1e-9)
    with calibrate.using(slow_gemm):
        other = estimate_call(event.call).algorithm
    assert other != event.algorithm
    fake = {event.algorithm: 0.004, other: 0.002, "reference": 0.003}
    import importlib

    tune_module = importlib.import_module("convlab.ops.algorithms.tune")
    monkeypatch.setattr(tune_module, "measure_call", lambda call, role, **kw: (dict(fake), {}))
    found = runner._auto_against_fastest({"forward": [event]}, repeat=1, machines={"other": slow_gemm})
    r = found["forward"]
    assert r["ratio"] == r["ratios"]["in use"] == pytest.approx(fake[event.algorithm] / 0.002)
    assert r["ratios"]["other"] == pytest.approx(1.0)
    (call,) = r["calls"]
    assert call["auto"] == event.algorithm and call["auto_with"] == {"other": other} and call["fastest"] == other
    assert calibrate.source() == "constants"  # the other rates were used inside a block only


def test_the_auto_summary_names_the_worst_pass_per_set_of_rates():
    layers = [{"name": "a", "passes": {"forward": {"ratios_auto_fastest": {"in use": 1.0, "measured": 1.2}},
                                       "backward": {"ratios_auto_fastest": {"in use": 1.5, "measured": None}}}},
              {"name": "b", "passes": {"forward": {"ratios_auto_fastest": {"in use": 1.05, "measured": 1.4}}}}]
    summary = runner.auto_summary(layers)
    assert summary["in use"] == {"worst": 1.5, "worst_at": "a backward", "passes": 3, "within_1_1": 2,
                                 "within_1_3": 2, "geomean": pytest.approx((1.0 * 1.5 * 1.05) ** (1 / 3))}
    assert summary["measured"]["worst_at"] == "b forward" and summary["measured"]["passes"] == 2
    assert summary["measured"]["within_1_3"] == 1
    from convlab.bench.report import _auto_table

    table = _auto_table({"auto_fastest": summary})
    assert [row[:3] for row in table.rows] == [("in use", "1.50", "a backward"), ("measured", "1.40", "b forward")]


def test_after_tuning_the_first_measurement_chooses_and_a_second_one_judges(monkeypatch):
    np = pytest.importorskip("numpy")
    import importlib

    import convlab.functional as F
    from convlab.ops.algorithms import trace

    with trace() as events:
        F.conv2d(np.ones((1, 4, 16, 16), np.float32), np.ones((4, 4, 3, 3), np.float32), padding=1)
    (event,) = events
    other = next(name for name in ("gemm", "direct", "fft") if name != event.algorithm)
    # the first measurement has `other` fastest (a load burst hit auto's choice), the second has it 1.5x slower
    answers = iter([{event.algorithm: 0.004, other: 0.003}, {event.algorithm: 0.002, other: 0.003}])
    monkeypatch.setattr(importlib.import_module("convlab.ops.algorithms.tune"), "measure_call",
                        lambda call, role, **kw: (next(answers), {}))
    found = runner._auto_against_fastest({"forward": [event]}, repeat=1, tuned=True)["forward"]
    assert found["ratios"]["tuned"] == pytest.approx(1.5)
    assert found["ratios"]["in use"] == pytest.approx(0.004 / 0.003)
    assert found["calls"][0]["auto_with"] == {"tuned": other}
