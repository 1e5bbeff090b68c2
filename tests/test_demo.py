"""`convlab demo` prints the seeds' worked examples with the numbers the tutorials (and PyTorch) give."""

from __future__ import annotations

import re

import pytest

from convlab import demo
from convlab import functional as F


@pytest.fixture(scope="module")
def sections() -> dict[str, str]:
    """The demo's printed text, split into its numbered steps ("1" ... "14")."""
    import io

    buffer = io.StringIO()
    demo.run(buffer)
    text = buffer.getvalue()
    parts = re.split(r"^(\d+)\. ", text, flags=re.MULTILINE)
    return {number: body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def output_of(section: str) -> list:
    """The numbers printed under ``output (...)``, one list of rows per channel."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output ("))
    channels: list[list[list[int]]] = []
    for line in lines[start + 1:]:
        if line.startswith("output size"):
            break
        if line.strip().startswith("channel"):
            channels.append([])
            continue
        if not channels:
            channels.append([])
        channels[-1].append([int(v) for v in line.split()])
    return channels


def test_all_steps_are_printed(sections):
    steps = 15 if hasattr(F, "max_pool2d") else 14  # the pooling step needs the pooling functions
    assert list(sections) == [str(i) for i in range(1, steps + 1)]


def test_seed000_stride_and_padding(sections):
    assert output_of(sections["1"]) == [[[12, 10], [8, 18]]]
    assert output_of(sections["2"]) == [[[12]]]
    assert output_of(sections["3"]) == [[[2, 9, 9, 10], [4, 12, 10, 18], [10, 8, 18, 15], [0, 5, 14, 10]]]
    assert "H_out = floor((4 + 0 + 0 - (3-1) - 1) / 2) + 1 = 1" in sections["2"]
    assert "W_out = floor((4 + 1 + 1 - (3-1) - 1) / 1) + 1 = 4" in sections["3"]


def test_seed003_cross_correlation_and_true_convolution(sections):
    assert output_of(sections["4"]) == [[[19, 25], [37, 43]]]
    assert "The engine agrees with the tutorial: True." in sections["4"]
    assert "= 4*0 + 5*1 + 7*2 + 8*3\n" in sections["4"]  # the last element, 43, written out
    assert output_of(sections["5"]) == [[[5, 11], [23, 29]]]


def test_seed002_result_and_the_note_about_its_hand_computation(sections):
    assert output_of(sections["6"]) == [[[2, 0], [3, 2]]]
    assert "prints [[2, 0], [3, 2]]; the engine gives [[2, 0], [3, 2]] (the same)" in sections["6"]
    assert "= 1*1 + 0*0 + 2*0 + 1*1\n" in sections["6"]  # the window [[1, 0], [2, 1]] times the kernel


def test_edge_detection(sections):
    assert output_of(sections["7"]) == [[[0, 1, 0, 0, 0, -1, 0]] * 6]
    assert "W_out = floor((8 + 0 + 0 - (2-1) - 1) / 1) + 1 = 7" in sections["7"]


def test_dilation_equals_inserted_zeros(sections):
    assert output_of(sections["8"]) == output_of(sections["9"]) == [[[5, 7], [8, 14]]]
    assert "Equal to step 8: True." in sections["9"]
    assert "2*(2-1)" in sections["8"]


def test_same_and_same_tf(sections):
    assert output_of(sections["10"]) == [[[4, 7, 10, 5], [4, 8, 8, 2], [5, 9, 6, 2], [4, 5, 3, 2]]]  # = torch's
    assert "H: (0, 1), W: (0, 1)" in sections["10"]
    assert output_of(sections["11"]) == [[[12, 18], [5, 10]]]
    assert "p_lo(H) = floor(max((ceil(4/2) - 1)*2 + (3-1) + 1 - 4, 0) / 2) = 0" in sections["11"]


def test_transposed_3x3_to_5x5(sections):
    assert output_of(sections["12"]) == [[
        [1, 3, 2, 5, 3], [5, 12, 7, 16, 9], [4, 9, 5, 11, 6], [11, 24, 13, 28, 15], [7, 15, 8, 17, 9]]]  # = torch's
    assert "H_out = (3 - 1)*2 - 1 - 1 + (3-1) + 0 + 1 = 5" in sections["12"]
    assert "The recipe gives the same 5x5 output: True." in sections["12"]


def test_grouped_and_depthwise_counts(sections):
    section = sections["13"]
    assert output_of(section) == [[[4, 6], [10, 12]], [[3, 2], [1, 3]]]
    assert "standard:  3456 params, 86400 multiplications" in section
    assert "separable: 411 params, 10275 multiplications (12%" in section


def test_padding_modes(sections):
    section = sections["14"]
    assert re.search(r"reflect\s+3 2 1 2 3 4 3 2", section)
    assert re.search(r"symmetric\s+2 1 1 2 3 4 4 3", section)
    assert re.search(r"circular\s+3 4 1 2 3 4 1 2", section)


def test_pooling(sections):
    if not hasattr(F, "max_pool2d"):
        pytest.skip("no pooling functions yet")
    section = sections["15"]
    numbers = [line.split() for line in section.splitlines() if re.fullmatch(r"\s+[\d\s.]+", line)]
    assert numbers[:7] == [
        ["0", "1", "2"], ["3", "4", "5"], ["6", "7", "8"],  # the input
        ["4", "5"], ["7", "8"],  # max: d2l's pool2d(X, (2, 2)) gives [[4, 5], [7, 8]]
        ["2", "3"], ["5", "6"],  # avg: [[2, 3], [5, 6]]
    ]
    assert "= max(0, 1, 3, 4)" in section and "= (0 + 1 + 3 + 4) / 4" in section
    assert numbers[-2:] == [["2", "3"], ["4", "3"]]  # 2x2 blocks of the 4x4 input, stride = kernel size


def test_main_prints_to_stdout(capsys):
    assert demo.main() == 0
    assert "19  25" in capsys.readouterr().out
