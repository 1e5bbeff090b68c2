"""The `convlab` command: `conv` computes and explains, errors are one clean line (`bench`: test_bench.py)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from convlab.cli import main


def output_matrix(text: str) -> list:
    """The numbers printed under ``output (...)``: a list of rows per channel."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output ("))
    channels: list[list[list[float]]] = []
    for line in lines[start + 1:]:
        if line.startswith("output size"):
            break
        if line.strip().startswith("channel"):
            channels.append([])
            continue
        if not channels:
            channels.append([])
        channels[-1].append([float(v) if "." in v or "e" in v else int(v) for v in line.split()])
    return channels


def run_conv(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["conv", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


SEED000_INPUT = "0 1 2 3; 2 1 3 2; 0 1 3 0; 0 4 1 2"
SEED000_KERNEL = "2 1 0; 2 1 0; 1 0 2"


def test_seed_example_gives_the_tutorials_numbers(capsys):
    status, out, _ = run_conv(capsys, "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3")
    assert status == 0
    assert output_matrix(out) == [[[19, 25], [37, 43]]]
    assert "int64" in out
    # the shape explanation comes with the numbers substituted, one line per spatial dimension
    assert "H_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2" in out
    assert "W_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--stride", "2"], [[[12]]]),
        (["--padding", "1"], [[[2, 9, 9, 10], [4, 12, 10, 18], [10, 8, 18, 15], [0, 5, 14, 10]]]),
        (["-s", "2,1", "-p", "0,1"], [[[4, 12, 10, 18]]]),  # = torch's
    ],
)
def test_stride_and_padding(capsys, args, expected):
    status, out, _ = run_conv(capsys, "-i", SEED000_INPUT, "-k", SEED000_KERNEL, *args)
    assert status == 0
    assert output_matrix(out) == expected


def test_dilation_equals_kernel_with_holes(capsys):
    _, dilated, _ = run_conv(capsys, "-i", SEED000_INPUT, "-k", "2 1; 2 1", "--dilation", "2")
    _, holes, _ = run_conv(capsys, "-i", SEED000_INPUT, "-k", "2 0 1; 0 0 0; 2 0 1")
    assert output_matrix(dilated) == output_matrix(holes) == [[[5, 7], [8, 14]]]
    assert "H_out = floor((4 + 0 + 0 - 2*(2-1) - 1) / 1) + 1 = 2" in dilated


def test_groups_and_bias(capsys):
    status, out, _ = run_conv(capsys, "-i", "1 2; 3 4 | 5 6; 7 8", "-k", "1 0; 0 1 || 0 1; 1 0",
                              "--groups", "2", "--bias", "1, -1")
    assert status == 0
    assert output_matrix(out) == [[[6]], [[12]]]


def test_transposed(capsys):
    status, out, _ = run_conv(capsys, "-i", "1 2; 3 4", "-k", "1 1 1; 1 1 1; 1 1 1", "--transposed",
                              "--stride", "2", "--padding", "1", "--output-padding", "1")
    assert status == 0
    assert output_matrix(out) == [[[1, 3, 2, 2], [4, 10, 6, 6], [3, 7, 4, 4], [3, 7, 4, 4]]]  # = torch's
    assert "H_out = (2 - 1)*2 - 1 - 1 + (3-1) + 1 + 1 = 4" in out


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("zeros", [0, 0, 1, 2, 3, 4, 0, 0]),
        ("reflect", [3, 2, 1, 2, 3, 4, 3, 2]),
        ("replicate", [1, 1, 1, 2, 3, 4, 4, 4]),
        ("circular", [3, 4, 1, 2, 3, 4, 1, 2]),
        ("symmetric", [2, 1, 1, 2, 3, 4, 4, 3]),
    ],
)
def test_padding_modes(capsys, mode, expected):
    status, out, _ = run_conv(capsys, "-i", "1 2 3 4", "-k", "1", "--padding", "2", "--padding-mode", mode)
    assert status == 0
    assert output_matrix(out) == [[expected]]


def test_padding_strings_pairs_and_floats(capsys):
    _, causal, _ = run_conv(capsys, "-i", "1 2 3 4 5", "-k", "1 1 1", "--padding", "causal")
    assert output_matrix(causal) == [[[1, 3, 6, 9, 12]]]
    _, same_tf, _ = run_conv(capsys, "-i", SEED000_INPUT, "-k", SEED000_KERNEL, "-s", "2", "-p", "same_tf")
    assert output_matrix(same_tf) == [[[12, 18], [5, 10]]]
    assert "p_hi(H) = max((ceil(4/2) - 1)*2 + (3-1) + 1 - 4, 0) - 0 = 1" in same_tf
    _, pairs, _ = run_conv(capsys, "-i", "1 2 3; 4 5 6", "-k", "1 -1;", "--padding", "0:1,1:0", "--bias", "0.5")
    assert output_matrix(pairs) == [[[-0.5, -0.5, -0.5], [-3.5, -0.5, -0.5], [0.5, 0.5, 0.5]]]
    assert "float64" in pairs


def test_explain_writes_one_element_out(capsys):
    status, out, _ = run_conv(capsys, "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3", "--explain", "1,1")
    assert status == 0
    assert "= 4*0 + 5*1 + 7*2 + 8*3\n" in out and out.rstrip().endswith("= 43")
    status, _, err = run_conv(capsys, "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3", "--explain", "5,5")
    assert status == 2 and "`position`" in err


def test_flip_kernel_is_true_convolution(capsys):
    _, out, _ = run_conv(capsys, "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3", "--flip-kernel")
    assert output_matrix(out) == [[[5, 11], [23, 29]]]


@pytest.mark.parametrize(
    "args, named",
    [
        (["-i", "1 2 3 4", "-k", "1 1", "--stride", "0"], "`stride`"),
        (["-i", "1 2 3 | 4 5 6", "-k", "1 1 | 1 1", "--groups", "3"], "`groups`"),
        (["-i", "1 2; 3", "-k", "1"], "`--input`"),
        (["-i", "1 2 x", "-k", "1"], "`--input`"),
        (["-i", "1 2; 3 4", "-k", "1 1"], "`--kernel`"),
        (["-i", "1 2 3", "-k", "1 1 1 1 1"], "kernel"),
        (["-i", "1 2 3", "-k", "1", "--padding-mode", "mirror"], "`padding_mode`"),
        (["-i", "1 2 3", "-k", "1", "--padding", "1:2:3"], "`--padding`"),
        (["-i", "1 2", "-k", "1 1", "--transposed", "--output-padding", "3"], "`output_padding`"),
        (["-i", "1 2", "-k", "1 1", "--bias", "1, 2"], "`bias`"),
    ],
)
def test_bad_input_is_one_line_naming_the_parameter(capsys, args, named):
    status, out, err = run_conv(capsys, *args)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("convlab conv: error: ")
    assert named in lines[0]


def test_bad_input_has_no_traceback_from_the_command():
    proc = subprocess.run([sys.executable, "-m", "convlab.cli", "conv", "-i", "1 2 3", "-k", "1 1", "--stride", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "convlab conv: error: conv1d: `stride` (=0) must be >= 1"


def test_help_is_enough_to_use_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["conv", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for needle in ("--input", "--kernel", "--padding", "same_tf", "--groups", "--transposed", "--flip-kernel",
                   "worked example", "19  25", "37  43"):
        assert needle in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "conv" in capsys.readouterr().out


def test_demo_subcommand(capsys):
    assert main(["demo"]) == 0
    assert "19  25" in capsys.readouterr().out


def test_explain_echoes_the_index_as_given(capsys):
    """`--explain 0,0,0` (channel, i, j) names the element y[0, 0, 0]; `--explain 1,1` names it y[1, 1]."""
    _, out, _ = run_conv(capsys, "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3", "--explain", "0,0,0")
    assert "  y[0, 0, 0] = x[0,0,0]*w[0,0,0,0] + " in out and "y[0, 0, 0, 0]" not in out
    assert "\n             = 0*0 + 1*1 + 3*2 + 4*3\n" in out  # the continuation lines stay aligned under '='
    _, out, _ = run_conv(capsys, "-i", "1 2; 3 4 | 5 6; 7 8", "-k", "1 0; 0 1 || 0 1; 1 0", "--groups", "2",
                         "--explain", "1,0,0")
    assert "  y[1, 0, 0] = x[1,0,0]*w[1,0,0,0] + " in out and out.rstrip().endswith("= 13")  # 6*1 + 7*1
    _, out, _ = run_conv(capsys, "-i", "1 2; 3 4", "-k", "1 1 1; 1 1 1; 1 1 1", "--transposed", "--explain", "1,1")
    assert "  y[1, 1] = " in out


@pytest.mark.parametrize(
    "args, message",
    [  # what the spec refuses, in the spec's words (the CLI does not restate the rules)
        (["--padding", "mirror"], "conv1d: `padding` (='mirror') must be an int, a tuple, (lo, hi) pairs or one of "
                                  "('valid', 'same', 'same_tf', 'full', 'causal')"),
        (["--padding", "same", "--stride", "2"], "conv1d: padding='same' (PyTorch semantics) requires stride 1"),
        (["--output-padding", "1"], "conv1d: `output_padding` (=(1,)) is only meaningful for a transposed "
                                    "convolution"),
        (["--transposed", "--padding-mode", "mirror"], "conv_transpose1d: `padding_mode` (='mirror') must be one of"),
        (["--transposed", "--padding", "causal"], "conv_transpose1d: `padding` (='causal') is not supported for a "
                                                  "transposed convolution"),
        (["--transposed", "--padding-mode", "reflect", "--padding", "1", "--explain", "0"],
         "conv_transpose1d: `explain` writes out padding_mode='zeros' only, got 'reflect'"),
        (["--transposed", "--flip-kernel"], "conv_transpose1d: `flip_kernel` applies to convolution only"),
        (["--groups", "1,1"], "conv1d: `groups` must be an integer, got (1, 1) (tuple)"),
        (["--padding", "1:2:3"], "`--padding` (='1:2:3'): each pair must be lo:hi"),
    ],
)
def test_the_spec_validates_and_its_error_is_the_usage_error(capsys, args, message):
    status, out, err = run_conv(capsys, "-i", "1 2 3 4", "-k", "1 1", *args)
    assert (status, out) == (2, "")
    assert err == f"convlab conv: error: {err.split('error: ', 1)[1]}" and err.count("\n") == 1
    assert message in err


def test_padding_words_are_case_insensitive_and_help_lists_the_specs_forms(capsys):
    from convlab.spec import PADDING_MODES, PADDING_STRINGS

    _, upper, _ = run_conv(capsys, "-i", "1 2 3 4 5", "-k", "1 1 1", "--padding", "CAUSAL")
    assert output_matrix(upper) == [[[1, 3, 6, 9, 12]]]
    with pytest.raises(SystemExit):
        main(["conv", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(PADDING_STRINGS) in help_text and ", ".join(PADDING_MODES) in help_text


def test_cli_imports_only_the_standard_library_and_the_spec():
    """At module level the CLI imports the standard library and convlab.spec (standard library only)."""
    import ast

    import convlab.cli
    import convlab.spec

    def top_level_imports(module) -> set[str]:
        tree = ast.parse(pathlib.Path(module.__file__).read_text())
        names = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
        return names

    assert {n for n in top_level_imports(convlab.cli) if n.split(".")[0] not in sys.stdlib_module_names} == {".spec"}
    assert all(n.split(".")[0] in sys.stdlib_module_names for n in top_level_imports(convlab.spec))


def test_demo_runs_one_example_or_lists_them(capsys):
    from convlab.examples import ORDER, load

    assert main(["demo", "edge_detection"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(load("edge_detection").TITLE + "\n") and "-1   0" in out
    assert "19  25" not in out  # only that example
    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(ORDER)
    assert all(line.endswith(load(name).TITLE) for line, name in zip(lines, ORDER, strict=True))


def test_demo_refuses_an_unknown_name_in_one_line(capsys):
    assert main(["demo", "edge"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("convlab demo: error: ") and "edge_detection" in captured.err
    assert main(["demo", "edge_detection", "--list"]) == 2


def test_models_lists_the_zoo_with_counts_and_inputs(capsys):
    import convlab.models as models

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "parameters", "input", "classes", "description"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(tuple("0123456789"))}
    assert sorted(rows) == models.list()
    assert rows["vgg16"].split()[1:4] == ["138,357,544", "3x224x224", "1000"]
    assert rows["resnet18_cifar"].split()[1:4] == ["11,173,962", "3x32x32", "10"]
    assert rows["lenet"].split()[1:4] == ["61,706", "1x28x28", "10"]
    for name, row in rows.items():
        assert row.endswith(models._PRESETS[name].description)
    assert lines[-1].startswith(f"{len(rows)} models.")


def test_help_and_output_name_no_issue_numbers(capsys):
    for args in (["--help"], ["conv", "--help"], ["demo", "--help"], ["models", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        assert "issue" not in capsys.readouterr().out.lower()
    main(["models"])
    main(["demo", "--list"])
    assert "issue" not in capsys.readouterr().out.lower()


def test_transposed_with_a_padding_mode_is_the_adjoint_of_that_convolution(capsys):
    """What the spec allows, the CLI computes: <conv_reflect(x), y> == <x, conv_transpose_reflect(y)>."""
    import numpy as np

    import convlab.functional as F

    status, out, _ = run_conv(capsys, "-i", "1 2 3", "-k", "1 2 3", "--transposed", "--padding", "1",
                              "--padding-mode", "reflect")
    assert status == 0
    assert "call: F.conv_transpose(input, weight, padding=1, padding_mode='reflect')" in out
    y = np.array(output_matrix(out)[0][0], dtype=float)  # conv_transpose_reflect([1, 2, 3]), length 3
    w = np.array([[[1.0, 2.0, 3.0]]])
    x = np.random.default_rng(0).standard_normal((1, 3))
    forward = F.conv1d(x, w, padding=1, padding_mode="reflect")  # (1, 3)
    assert np.isclose(np.sum(forward * [1, 2, 3]), np.sum(x * y))
