"""`convlab summary`: a zoo model or a PyTorch file:factory, analysed and printed as table, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest

from convlab import models
from convlab.analysis import analyze
from convlab.cli import main, parse_size

SIZE = (3, 64, 64)


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["summary", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def resnet18_report():
    return analyze(models.create("resnet18", input_size=SIZE), (1, *SIZE))


def test_json_totals_equal_the_analysis(capsys, resnet18_report):
    status, out, err = run(capsys, "resnet18", "--input", "3x64x64", "--format", "json")
    assert status == 0 and err == ""
    data = json.loads(out)
    assert data["totals"] == json.loads(resnet18_report.to_json())["totals"]
    assert data["totals"]["params"] == 11_689_512  # torchvision's ResNet-18
    assert data["model"] == "ResNet" and data["input_shapes"] == [[1, 3, 64, 64]]


def test_table_is_the_reports_text(capsys, resnet18_report):
    status, out, _ = run(capsys, "resnet18", "--input", "3x64x64")  # table is the default format
    assert status == 0
    assert out == str(resnet18_report).rstrip("\n") + "\n"
    assert f"Params: {resnet18_report.total_params:,} " in out
    assert f"MACs: {resnet18_report.total_macs:,} " in out


def test_csv_rows_add_up_to_the_totals(capsys, resnet18_report):
    status, out, _ = run(capsys, "resnet18", "--input", "3x64x64", "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(resnet18_report)
    assert sum(int(r["params"]) for r in rows) == resnet18_report.total_params
    assert sum(int(r["macs"]) for r in rows) == resnet18_report.total_macs
    assert rows[-1]["name"] == "fc" and rows[-1]["output_shape"] == "1x1000"


def test_markdown_is_the_reports_markdown(capsys, resnet18_report):
    status, out, _ = run(capsys, "resnet18", "--input", "3x64x64", "--format", "markdown")
    assert status == 0
    assert out == resnet18_report.to_markdown().rstrip("\n") + "\n"
    assert out.startswith("| # | Name |")


def test_batch_and_num_classes(capsys):
    status, out, _ = run(capsys, "lenet", "--input", "1x28x28", "--batch", "4", "--num-classes", "7",
                         "--format", "json")
    assert status == 0
    totals = json.loads(out)["totals"]
    expected = analyze(models.create("lenet", input_size=(1, 28, 28), num_classes=7), (4, 1, 28, 28)).totals()
    assert totals["output_shape"] == [4, 7] and totals["batch_size"] == 4
    assert totals["macs"] == expected["macs"] and totals["params"] == expected["params"]


def test_zoo_model_defaults_to_its_preset_input(capsys):
    status, out, _ = run(capsys, "lenet", "--format", "json")
    assert status == 0
    assert json.loads(out)["input_shapes"] == [[1, 1, 28, 28]]


TORCH_FILE = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 16 * 16, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def build(num_classes=10):
    return Net(num_classes)


def not_a_model():
    return 42


def broken():
    raise RuntimeError("no weights here")
"""


@pytest.fixture
def torch_file(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "my_nets.py"
    path.write_text(TORCH_FILE)
    return path


def test_torch_file_factory(capsys, torch_file):
    from convlab.interop.torch import analyze as analyze_torch

    status, out, err = run(capsys, f"{torch_file}:build", "--input", "3x32x32", "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    namespace: dict = {}
    exec(compile(TORCH_FILE, str(torch_file), "exec"), namespace)
    expected = analyze_torch(namespace["build"](), (1, 3, 32, 32)).totals()
    assert data["model"] == "Net"
    assert data["totals"]["params"] == expected["params"] == 8 * 3 * 9 + 8 + 16 + 8 * 16 * 16 * 10 + 10
    assert data["totals"] == json.loads(json.dumps(expected))
    status, out, _ = run(capsys, f"{torch_file}:build", "--input", "3x32x32", "--num-classes", "3")
    assert status == 0 and "Output shape: (1, 3)" in out


def one_line_error(capsys, *args: str) -> str:
    status, out, err = run(capsys, *args)
    assert status == 2
    assert out == ""
    assert err.startswith("convlab summary: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("args", "message"), [
    (("resnet19", "--input", "3x64x64"), r"unknown model 'resnet19'; did you mean 'resnet18'"),
    (("resnet18", "--input", "3x64"), r"`--input` \(='3x64'\): a zoo model takes channels x height x width"),
    (("resnet18", "--input", "3xaxb"), r"`--input` \(='3xaxb'\) must be positive integers separated by 'x'"),
    (("resnet18", "--input", "0x64x64"), r"`--input` \(='0x64x64'\) must be positive integers"),
    (("alexnet", "--input", "3x8x8"), r"`input_size` \(3, 8, 8\) is too small"),
    (("lenet", "--batch", "0"), r"`--batch` \(='0'\) must be a positive integer"),
    (("lenet", "--num-classes", "ten"), r"`--num-classes` \(='ten'\) must be a positive integer"),
    (("missing.py:build", "--input", "3x8x8"), r"`MODEL` \(='missing.py:build'\): no file 'missing.py'"),
    (("nets.py", "--input", "3x8x8"), r"name the factory function, path/to/file.py:factory"),
])
def test_bad_input_is_one_line_and_status_2(capsys, args, message):
    assert re.search(message, one_line_error(capsys, *args))


def test_bad_torch_files_are_one_line_and_status_2(capsys, torch_file, tmp_path):
    assert "has no function 'nope'" in one_line_error(capsys, f"{torch_file}:nope", "--input", "3x32x32")
    err = one_line_error(capsys, f"{torch_file}:not_a_model", "--input", "3x32x32")
    assert "not_a_model() from" in err and "returned a int, not a torch.nn.Module" in err
    err = one_line_error(capsys, f"{torch_file}:broken", "--input", "3x32x32")
    assert "broken() from" in err and "raised RuntimeError: no weights here" in err
    assert "`--input` is required for a PyTorch model" in one_line_error(capsys, f"{torch_file}:build")
    bad = tmp_path / "bad.py"
    bad.write_text("def build(:\n")
    assert "importing" in one_line_error(capsys, f"{bad}:build", "--input", "3x8x8")


def test_parse_size():
    assert parse_size("3x224x224") == (3, 224, 224)
    assert parse_size(" 1X16x64x64 ") == (1, 16, 64, 64)
    assert parse_size("2,100") == (2, 100)


def test_the_installed_command_runs():
    result = subprocess.run([sys.executable, "-m", "convlab.cli", "summary", "lenet", "--format", "csv"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[0].startswith("id,name,kind,op,")
    assert "summary" in subprocess.run([sys.executable, "-m", "convlab.cli", "--help"], capture_output=True,
                                       text=True, check=True).stdout


def test_help_shows_the_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "convlab summary resnet50 --input 3x224x224" in out and "path/to/file.py:factory" in out


# --------------------------------------------------------------------------- small inputs and the terminal table


def test_a_stem_that_shrinks_a_small_input_is_warned_about(capsys):
    status, out, _ = run(capsys, "resnet18", "--input", "3x32x32")
    assert status == 0
    warning = next(line for line in out.splitlines() if line.startswith("! small input for this stem"))
    assert "(conv1 .. maxpool) shrinks the 32x32 input to 8x8" in warning
    assert "resnet18_cifar" in warning and "convlab summary resnet18_cifar --input 3x32x32" in warning
    status, out, _ = run(capsys, "resnet18", "--input", "3x32x32", "--format", "json")
    data = json.loads(out)
    assert len(data["warnings"]) == 1 and data["warnings"][0] == warning[2:]
    assert all(layer["warnings"] == [] for layer in data["layers"])  # about the model, not a layer
    for args in (("resnet18_cifar", "--input", "3x32x32"), ("resnet18", "--input", "3x64x64"),
                 ("vgg11", "--input", "3x32x32")):  # a stem that keeps the size, a larger input, no stem
        status, out, _ = run(capsys, *args, "--format", "json")
        assert status == 0 and json.loads(out)["warnings"] == [], args
    status, out, _ = run(capsys, "googlenet", "--input", "3x32x32", "--format", "json")
    assert "shrinks the 32x32 input to 4x4" in json.loads(out)["warnings"][0]


def test_the_analysis_reports_the_stem_warning_without_the_zoo_hint():
    report = analyze(models.create("resnet18", input_size=(3, 32, 32)), (1, 3, 32, 32))
    assert report.warnings == [] and len(report.model_warnings) == 1
    assert "shrinks the 32x32 input to 8x8" in report.model_warnings[0] and "_cifar" not in report.model_warnings[0]
    assert f"! {report.model_warnings[0]}" in str(report).splitlines()


@pytest.mark.parametrize("width", [60, 100, 140])
def test_the_rich_table_fits_the_width_and_has_the_numbers(resnet18_report, width):
    console_module = pytest.importorskip("rich.console")
    console = console_module.Console(width=width, record=True, file=io.StringIO())
    resnet18_report.print(console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    assert f"Params: {resnet18_report.total_params:,} " in text and f"{resnet18_report.total_macs:,}" in text
    fc = resnet18_report["fc"]
    assert any("fc" in line and f"{fc.params:,}" in line and f"{fc.macs:,}" in line for line in lines)
    words = {word for line in lines for word in line.split()}
    assert all(row.name in words for row in resnet18_report)  # every layer has its row


def test_on_a_terminal_the_table_is_rich_and_fits(capsys, monkeypatch, resnet18_report):
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "90")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    status, out, _ = run(capsys, "resnet18", "--input", "3x64x64")
    assert status == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()  # without the terminal's styles
    assert max(len(line) for line in lines) <= 90
    assert f"Params: {resnet18_report.total_params:,} " in out and "─" in out
    monkeypatch.setitem(sys.modules, "rich.console", None)  # Rich missing: the plain text, as before
    status, out, _ = run(capsys, "resnet18", "--input", "3x64x64")
    assert out == str(resnet18_report).rstrip("\n") + "\n"
