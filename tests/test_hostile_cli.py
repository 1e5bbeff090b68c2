"""Hostile command lines: every refusal is one line (exit 2, no traceback) that echoes the value as given and
lists the accepted forms; large outputs are summarised as NumPy prints them (``--full``: everything); inf/nan
are values, not RuntimeWarnings on the terminal.

Each call runs ``convlab.cli.main`` in process under a 10 s alarm (a hang guard, not a timing claim).
"""

from __future__ import annotations

import contextlib
import io
import signal
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlab.cli import build_parser, main

HANG_GUARD_S = 10
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Hang(Exception):
    pass


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_GUARD_S):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(*argv: str) -> tuple[int, str, str, list]:
    """(exit status, stdout, stderr, warnings) of one in-process call; SystemExit (argparse) gives its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), hang_guard(), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = main(list(argv))
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue(), caught


def refusal(*argv: str) -> str:
    """The one-line error of a refused command line."""
    status, out, err, _ = run_cli(*argv)
    assert status == 2, (status, out[:500], err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert ": error: " in err and "Traceback" not in err
    return err


CONV = ("conv", "-i", "1 2 3 4", "-k", "1 1")


# --------------------------------------------------------------------------- the cases found by the probe


def test_padding_with_three_parts_echoes_it_and_lists_the_forms():
    err = refusal(*CONV, "--padding", "1:2:3")
    assert "`--padding` (='1:2:3'): each pair must be lo:hi" in err
    assert "lo:hi pairs (1:0,0:1)" in err and "same_tf" in err and "causal" in err


def test_bias_blames_the_whole_value_and_says_it_is_one_dimensional():
    err = refusal(*CONV, "--bias", "1; 2 3")
    assert "`--bias` (='1; 2 3')" in err and "no ';' or '|'" in err and "one number per output channel" in err


@pytest.mark.parametrize("argv", [("--input=-1x3x3",), ("--input", "-1x3x3")])
def test_an_input_size_starting_with_a_minus_reaches_the_size_check(argv):
    err = refusal("summary", "resnet18", *argv)
    assert "`--input` (='-1x3x3')" in err and "-1 is not a size" in err and "3x224x224" in err


def test_conv_values_starting_with_a_minus_attach_to_their_option():
    status, out, _, _ = run_cli("conv", "-i", "-1,2", "-k", "-1")
    assert status == 0 and "output (1 channel, 2, int64):\n   1  -2" in out
    assert "`--stride` (='-1,x')" in refusal(*CONV, "--stride", "-1,x")


def test_a_path_that_is_not_a_python_file_is_not_an_unknown_zoo_model(tmp_path):
    text = tmp_path / "nets.txt"
    text.write_text("def build(): pass\n")
    assert "no file 'nope.txt'" in refusal("summary", "nope.txt:build", "--input", "3x8x8")
    assert f"{str(text)!r} is not a .py file" in refusal("summary", f"{text}:build", "--input", "3x8x8")
    assert "is a directory, not a .py file" in refusal("summary", str(tmp_path), "--input", "3x8x8")
    err = refusal("summary", "resnet1", "--input", "3x8x8")
    assert "`MODEL` (='resnet1')" in err and "the zoo's names: alexnet, alexnet_d2l" in err
    assert "path/to/file.py:factory" in err


def test_a_missing_factory_lists_what_the_file_defines(tmp_path):
    nets = tmp_path / "nets.py"
    nets.write_text("def build():\n    pass\n\ndef other():\n    pass\n")
    err = refusal("summary", f"{nets}:nope", "--input", "3x8x8")
    assert "has no function 'nope'; it defines build, other" in err


@pytest.mark.parametrize("body, said", [
    ("import sys\nsys.exit(3)\n", "importing"),
    ("import sys\ndef build():\n    sys.exit(3)\n", "build() from"),
])
def test_sys_exit_in_a_factory_file_is_an_error_of_that_file(tmp_path, body, said):
    exits = tmp_path / "exits.py"
    exits.write_text(body)
    err = refusal("summary", f"{exits}:build", "--input", "3x8x8")
    assert said in err and "called sys.exit(3)" in err


@pytest.mark.parametrize("values, expected", [
    (("-i", "inf 1 2", "-k", "1 1"), "inf    3"),
    (("-i", "inf -inf 2", "-k", "1 1"), "nan  -inf"),
    (("-i", "inf 1 2", "-k", "0 1", "--transposed"), "nan  inf    1    2"),
    (("-i", "1e308 1e308", "-k", "10 10"), "inf"),
])
def test_non_finite_values_are_printed_as_values_without_warnings(values, expected):
    status, out, err, caught = run_cli("conv", *values)
    assert status == 0 and err == ""
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert expected in out and "note: non-finite values (inf, nan) were met" in out


def test_integers_that_could_wrap_around_int64_are_refused():
    err = refusal("conv", "-i", "9223372036854775807 1", "-k", "2")
    assert "could overflow int64" in err and "decimal point" in err
    status, out, _, _ = run_cli("conv", "-i", "9223372036854775807.0 1", "-k", "2")
    assert status == 0 and "1.84467e+19" in out


@pytest.mark.parametrize("argv, shown", [
    ((*CONV, "--stride", "00"), "(given: --stride '00')"),  # the spec shows the parsed 0
    ((*CONV, "--groups", "1,1"), "(given: --groups '1,1')"),
    (("conv", "-i", "1 2", "-k", "1", "--padding", "99999999999999999999"), "99999999999999999999"),
    (("conv", "-i", "5", "-k", "1 1"), "--input '5'"),
    (("summary", "lenet", "--input", "1x5x5"), "(given: --input '1x5x5')"),
])
def test_a_value_the_engine_shows_parsed_is_echoed_as_given(argv, shown):
    assert shown in refusal(*argv)


@pytest.mark.parametrize("value", ["٣", "１", "1_0", "0x10", " ", ""])
def test_numbers_are_ascii_digits_only(value):
    assert f"(={value!r})" in refusal(*CONV, "--stride", value)
    if value.strip():
        assert f"(={f'1 {value} 2'!r}): {value!r} is not a number" in refusal("conv", "-i", f"1 {value} 2", "-k", "1")


def test_argparse_refusals_are_one_line_too():
    assert "invalid choice: 'xml'" in refusal("summary", "lenet", "--format", "xml")
    assert "expected one argument" in refusal(*CONV, "--padding-mode")
    assert "unrecognized arguments: --nope" in refusal(*CONV, "--nope")
    assert "invalid choice: 'convolve'" in refusal("convolve")


# --------------------------------------------------------------------------- output a person can read


def test_a_huge_legal_output_is_summarised_and_full_prints_it_all():
    argv = ("conv", "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "1;", "--padding", "300")
    status, out, _, _ = run_cli(*argv)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) < 40  # 603 rows summarised to 3 + '...' + 3
    assert "output (1 channel, 603x603, int64):" in out
    assert "  H_out = floor((3 + 300 + 300 - (1-1) - 1) / 1) + 1 = 603" in out  # formulas in full
    assert "  0  0  0  ...  0  0  0" in out and "summarised with '...'" in out
    status, full, _, _ = run_cli(*argv, "--full")
    assert status == 0 and len(full.splitlines()) > 603 and "..." not in full.split("output (")[1]


def test_the_probes_padding_3000_answers():
    status, out, _, _ = run_cli("conv", "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "1;", "--padding", "3000")
    assert status == 0 and len(out.splitlines()) < 40 and "6003x6003" in out


def test_many_channels_are_summarised_too():
    channels = " | ".join(str(i) for i in range(1200))
    status, out, _, _ = run_cli("conv", "-i", channels, "-k", " | ".join(["1"] * 1200))
    assert status == 0
    assert "channel 0:" in out and "channel 1199:" in out and "channel 600:" not in out
    assert len(out.splitlines()) < 60


def test_small_output_is_unchanged():
    status, out, _, _ = run_cli("conv", "-i", "0 1 2; 3 4 5; 6 7 8", "-k", "0 1; 2 3")
    assert status == 0 and "  19  25\n  37  43\n" in out and "..." not in out and "note:" not in out


# --------------------------------------------------------------------------- fuzzing every option's parser

PIECES = st.one_of(
    st.integers(-40, 40).map(str),
    st.sampled_from(["", " ", "inf", "-inf", "nan", "1e999", "1.5", ".5", "1e", "-", "+", "1_0", "٣", "１",
                     "0x10", "∞", "\u00a0", "\t", "\n", "é", "🙂", "same", "SAME", "valid", "causal", "full",
                     "same_tf", "mirror", "reflect", "9" * 25, "9" * 5000, "ab"]),
    st.sampled_from(list(",;:|x ")),
    st.text(alphabet="0123456789+-,;:|x .abé", max_size=6),
)
VALUES = st.lists(PIECES, max_size=6).map("".join)


def _is_an_option(subcommand: str, value: str) -> bool:
    """A value argparse rightly reads as an option of the subcommand (or its abbreviation, or '--')."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[subcommand]
    options = sub._option_string_actions
    return value in options or value == "--" or (
        value.startswith("--") and any(o.startswith(value.split("=", 1)[0]) for o in options))


def assert_answers_cleanly(subcommand: str, value: str, *argv: str) -> None:
    status, out, err, caught = run_cli(*argv)
    assert status in (0, 2), (argv, status, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    if status == 0:
        assert err == "", err
        return
    assert out == "" and err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(("convlab: error: ", f"convlab {subcommand}: error: ")), err
    if not _is_an_option(subcommand, value):
        assert repr(value) in err or f"={value})" in err, (value, err)


CONV_OPTIONS = [  # (option, the other arguments): values kept to outputs of a few thousand elements at most
    ("-i", ("-k", "1 1")),
    ("-k", ("-i", "1 2 3 4; 5 6 7 8")),
    ("--bias", ("-i", "1 2 3 4", "-k", "1 1")),
    ("--stride", ("-i", "1 2 3 4", "-k", "1 1")),
    ("--padding", ("-i", "1 2 3 4", "-k", "1 1")),
    ("--dilation", ("-i", "1 2 3 4", "-k", "1 1")),
    ("--groups", ("-i", "1 2 | 3 4", "-k", "1 | 1 || 1 | 1")),
    ("--padding-mode", ("-i", "1 2 3 4", "-k", "1 1", "--padding", "1")),
    ("--output-padding", ("-i", "1 2 3 4", "-k", "1 1", "--transposed", "--stride", "2")),
    ("--explain", ("-i", "1 2 3 4", "-k", "1 1")),
]


@pytest.mark.parametrize("option, others", CONV_OPTIONS, ids=[o for o, _ in CONV_OPTIONS])
@FUZZ
@given(value=VALUES)
def test_fuzz_conv_options(option, others, value):
    assert_answers_cleanly("conv", value, "conv", *others, option, value)


@FUZZ
@given(value=st.one_of(VALUES, st.lists(st.sampled_from(["1", "3", "28", "32", "x", ",", "0", "-1", " "]),
                                          max_size=7).map("".join)))
def test_fuzz_summary_input(value):
    assert_answers_cleanly("summary", value, "summary", "lenet", "--input", value)


@pytest.mark.parametrize("option", ["--batch", "--num-classes", "--format"])
@FUZZ
@given(value=VALUES)
def test_fuzz_summary_options(option, value):
    assert_answers_cleanly("summary", value, "summary", "lenet", option, value)


@FUZZ
@given(value=VALUES)
def test_fuzz_summary_model(value):
    if value.startswith("-"):
        value = "./" + value  # a MODEL starting with '-' is an option to argparse
    assert_answers_cleanly("summary", value, "summary", value, "--input", "1x28x28")


@FUZZ
@given(value=VALUES)
def test_fuzz_demo_name(value):
    if value.startswith("-"):
        value = "x" + value
    status, out, err, _ = run_cli("demo", value)
    if status != 0:
        assert status == 2 and out == "" and err.count("\n") == 1 and repr(value) in err


@pytest.mark.parametrize("option", ["--repeat", "--batch", "--threads", "--suite"])
@FUZZ
@given(value=VALUES)
def test_fuzz_bench_options_parse(option, value):
    """The bench's options as `convlab` parses them (with --list, nothing is measured)."""
    assert_answers_cleanly("bench", value, "bench", "--list", option, value)


def test_fuzz_models_takes_no_arguments():
    assert "unrecognized arguments: extra" in refusal("models", "extra")
