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
