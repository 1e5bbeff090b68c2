"""`convlab demo` runs the worked examples of convlab.examples in order, numbered, with their numbers."""

from __future__ import annotations

import io
import re

import pytest

from convlab import demo
from convlab.examples import ORDER, load


@pytest.fixture(scope="module")
def walk() -> tuple[str, dict[str, object]]:
    buffer = io.StringIO()
    results = demo.run(buffer)
    return buffer.getvalue(), results


def sections(text: str) -> dict[str, str]:
    """The demo's text split at its numbered titles (a line "N. title" followed by a line of "=")."""
    parts = re.split(r"^(\d+)\. .*\n=+$", text, flags=re.MULTILINE)
    return {number: body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_example_is_a_numbered_step_in_order(walk):
    text, results = walk
    assert list(sections(text)) == [str(i) for i in range(1, len(ORDER) + 1)]
    titles = re.findall(r"^\d+\. (.*)\n=+$", text, flags=re.MULTILINE)
    assert titles == [load(name).TITLE for name in ORDER]
    assert list(results) == list(ORDER)


def test_each_step_is_the_example_itself(walk):
    """The demo prints exactly what each example prints when run on its own (with its number)."""
    text, _ = walk
    for number, name in enumerate(ORDER, start=1):
        buffer = io.StringIO()
        load(name).run(buffer, number=number)
        assert buffer.getvalue() in text


def test_the_walk_shows_the_seeds_numbers(walk):
    text, results = walk
    steps = sections(text)
    assert results["stride_padding"].stride_1.tolist() == [[12, 10], [8, 18]]
    assert "H_out = floor((4 + 0 + 0 - (3-1) - 1) / 2) + 1 = 1" in steps["1"]
    assert "19  25" in steps["2"] and "37  43" in steps["2"]
    assert results["edge_detection"].output.tolist() == [[0, 1, 0, 0, 0, -1, 0]] * 6
    assert results["dilation"].stacked_sizes == (3, 7, 15)
    assert results["pooling"].max.tolist() == [[4, 5], [7, 8]]
    assert results["transposed"].output.shape == (5, 5)
    assert "86400" in steps[str(ORDER.index("convolution_family") + 1)]


def test_main_prints_to_stdout(capsys):
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("convlab demo:") and "19  25" in out


def test_helpers_that_convlab_conv_uses_are_still_here():
    from convlab.examples import worked

    assert demo.worked_example is worked.worked_example and demo.format_matrix is worked.format_matrix


def test_the_walk_says_how_to_run_one_example(walk):
    text, _ = walk
    assert "convlab demo NAME" in text and "python -m convlab.examples.NAME" in text
    assert "examples/NAME.py" not in text  # the repository's shims are gone


def test_run_one_prints_that_example_alone():
    buffer = io.StringIO()
    result = demo.run_one("cross_correlation", buffer)
    assert result.output.tolist() == [[19, 25], [37, 43]]
    reference = io.StringIO()
    load("cross_correlation").run(reference)
    assert buffer.getvalue() == reference.getvalue()  # unnumbered, as python -m convlab.examples.NAME prints it
    with pytest.raises(ValueError, match=r"`name` \(='cross'\) must be one of stride_padding"):
        demo.run_one("cross")


def test_catalog_names_every_example_with_its_title():
    lines = demo.catalog()
    assert [line.split()[0] for line in lines] == list(ORDER)
    column = len(lines[0]) - len(load(ORDER[0]).TITLE)
    for line, name in zip(lines, ORDER, strict=True):
        assert line[column:] == load(name).TITLE and line[:column].strip() == name
