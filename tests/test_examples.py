"""The seeds' worked examples (convlab.examples, each runnable as python -m convlab.examples.NAME): their
numbers, and the modules run on their own.

Expected numbers are literals: the seeds' printed results where they print
any, otherwise PyTorch's (for the same calls) or the book's. Receptive fields
are checked twice: by the rule (convlab.shapes.receptive_field) and by the
engine's gradients (convlab.examples.fields), and the helper that measures them
is itself checked against the rule's start positions on stacks with strides.
"""

from __future__ import annotations

import io
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from convlab.examples import (
    ORDER,
    by_hand,
    channels,
    conv_matrix,
    convolution_family,
    correlation_vs_convolution,
    cross_correlation,
    dilation,
    edge_detection,
    erf,
    fields,
    learn_kernel,
    load,
    padding,
    pooling,
    stride_padding,
    transposed,
)
from convlab.examples.fields import Layer

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "convlab" / "examples"
HELPERS = {"__init__", "worked", "fields"}  # the modules that are not examples


def quiet(module, **kwargs):
    """Run an example into a buffer; return (result, printed text)."""
    buffer = io.StringIO()
    result = module.run(buffer, **kwargs)
    return result, buffer.getvalue()


def test_stride_and_padding_seed000():
    result, text = quiet(stride_padding)
    assert result.stride_1.tolist() == [[12, 10], [8, 18]]
    assert result.stride_2.tolist() == [[12]]
    assert result.padding_1.tolist() == [[2, 9, 9, 10], [4, 12, 10, 18], [10, 8, 18, 15], [0, 5, 14, 10]]
    assert result.output_sizes == (2, 1, 4)
    assert "H_out = floor((4 + 0 + 0 - (3-1) - 1) / 2) + 1 = 1" in text
    assert "W_out = floor((4 + 1 + 1 - (3-1) - 1) / 1) + 1 = 4" in text
    assert "= 0*2 + 1*1 + 2*0 + 2*2 + 1*1 + 3*0 + 0*1 + 1*0 + 3*2\n" in text  # the first element, 12


def test_cross_correlation_figure_5_1():
    result, text = quiet(cross_correlation)
    assert result.output.tolist() == [[19, 25], [37, 43]]
    assert result.agrees_with_seed
    # The seed's four sums, in its order.
    for products, total in [("0*0 + 1*1 + 3*2 + 4*3", 19), ("1*0 + 2*1 + 4*2 + 5*3", 25),
                            ("3*0 + 4*1 + 6*2 + 7*3", 37), ("4*0 + 5*1 + 7*2 + 8*3", 43)]:
        assert f"= {products}\n" in text and f"= {total}" in text
    assert len(result.sums) == 4


def test_correlation_vs_convolution_and_the_field_of_z():
    result, text = quiet(correlation_vs_convolution)
    assert result.correlation.tolist() == [[19, 25], [37, 43]]
    assert result.convolution.tolist() == [[5, 11], [23, 29]]
    assert result.flipped_kernel.tolist() == [[3, 2], [1, 0]]
    assert result.learned_flipped.tolist() == [[19, 25], [37, 43]]
    assert (result.field_on_y, result.field_on_input, result.input_field_elements) == (4, 9, 9)
    assert "It reaches 9 input elements: as the rule says." in text


def test_by_hand_seed002():
    result, text = quiet(by_hand)
    assert result.output.tolist() == [[2, 0], [3, 2]]
    assert result.agrees_with_seed
    assert result.first_element == result.first_element_flipped == 2 != by_hand.SEED_HAND_FIRST
    assert "= 1*1 + 0*0 + 2*0 + 1*1\n" in text


def test_channels_and_the_1x1_convolution():
    result, _ = quiet(channels)
    assert result.multi_input.tolist() == [[56, 72], [104, 120]]  # the book's corr2d_multi_in
    assert result.per_channel.tolist() == [[[19, 25], [37, 43]], [[37, 47], [67, 77]]]
    assert result.multi_output.tolist() == [[[56, 72], [104, 120]], [[76, 100], [148, 172]],
                                            [[96, 128], [192, 224]]]
    assert result.pointwise_equal
    np.testing.assert_array_equal(result.pointwise, result.pointwise_by_matmul)


def test_edge_detection():
    result, text = quiet(edge_detection)
    assert result.image.shape == (6, 8) and result.image[:, 2:6].sum() == 0 and result.image.sum() == 24
    assert result.output.tolist() == [[0, 1, 0, 0, 0, -1, 0]] * 6
    assert result.agrees_with_seed
    assert not result.on_transposed_image.any()
    found = result.transposed_kernel_on_transposed_image
    assert found[1].tolist() == [1] * 6 and found[5].tolist() == [-1] * 6 and np.abs(found).sum() == 12
    assert "W_out = floor((8 + 0 + 0 - (2-1) - 1) / 1) + 1 = 7" in text


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 42, 2024])
def test_learning_the_kernel_recovers_1_minus_1(seed):
    result, text = quiet(learn_kernel, seed=seed)
    assert np.abs(result.initial - [1, -1]).max() > 0.1  # the start is not already the answer
    assert len(result.losses) == learn_kernel.STEPS + 1
    assert np.all(np.diff(result.losses) < 0)  # the loss falls at every step
    assert result.losses[-1] < 1e-2 * result.losses[0]
    np.testing.assert_allclose(result.kernel, [1, -1], atol=0.1)
    printed = re.findall(r"^step +(\d+), loss ([\d.]+)$", text, flags=re.MULTILINE)
    assert [int(step) for step, _ in printed] == list(range(2, learn_kernel.STEPS + 1, 2))
    for step, loss in printed:
        assert float(loss) == pytest.approx(result.losses[int(step) - 1], abs=5e-4)


def test_learning_uses_the_engines_gradient():
    """The first step moves the kernel by -lr times the analytic gradient of the squared error."""
    result = learn_kernel.run(io.StringIO(), seed=3, steps=1)
    x = edge_detection.edge_image()  # (6, 8)
    w = result.initial
    error = w[0] * x[:, :-1] + w[1] * x[:, 1:] - (x[:, :-1] - x[:, 1:])  # (6, 7): y_hat - y
    gradient = np.array([np.sum(2 * error * x[:, :-1]), np.sum(2 * error * x[:, 1:])])
    np.testing.assert_allclose(result.kernel, w - learn_kernel.LEARNING_RATE * gradient, rtol=1e-12)


def test_padding_same_same_tf_and_modes():
    result, text = quiet(padding)
    assert result.same.tolist() == [[4, 7, 10, 5], [4, 8, 8, 2], [5, 9, 6, 2], [4, 5, 3, 2]]  # torch's
    assert result.same_padding == ((0, 1), (0, 1))
    assert result.same_tf.tolist() == [[12, 18], [5, 10]]
    assert result.same_tf_padding == ((0, 1), (0, 1))
    assert {mode: out.tolist() for mode, out in result.modes.items()} == {
        "zeros": [0, 0, 1, 2, 3, 4, 0, 0],
        "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
        "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
        "circular": [3, 4, 1, 2, 3, 4, 1, 2],  # = torch's nn.Conv1d(1, 1, 1, padding=2, padding_mode='circular')
        "symmetric": [2, 1, 1, 2, 3, 4, 4, 3],
    }
    assert "p_lo(H) = floor(max((ceil(4/2) - 1)*2 + (3-1) + 1 - 4, 0) / 2) = 0" in text


def test_dilation_and_stacked_receptive_fields():
    result, text = quiet(dilation)
    assert result.dilated.tolist() == result.inserted.tolist() == [[5, 7], [8, 14]]
    assert result.single_spans == (3, 5, 9)  # a 3x3 kernel at dilation 2 covers 5x5 (seed 000)
    assert result.single_reached == (3, 3, 3)  # ... but reads only 3 of each row
    assert result.parameters == (9, 9, 9)
    assert result.stacked_sizes == result.measured_stacked_sizes == (3, 7, 15)  # seed 001
    assert result.neighbours == {1: (7, 8, 6), 2: (13, 14, 0)}  # seed 000: 8x8 and 14x14 together
    assert "H_out = floor((4 + 0 + 0 - 2*(2-1) - 1) / 1) + 1 = 2" in text


def test_pooling_and_its_receptive_field():
    result, text = quiet(pooling)
    assert result.max.tolist() == [[4, 5], [7, 8]]  # the book's pool2d(X, (2, 2))
    assert result.avg.tolist() == [[2, 3], [5, 6]]  # pool2d(X, (2, 2), 'avg')
    assert {call: out.tolist() for call, out in result.variants.items()} == {  # = torch's
        "F.max_pool2d(input, 3)": [[10]],
        "F.max_pool2d(input, 3, stride=2, padding=1)": [[5, 7], [13, 15]],
        "F.max_pool2d(input, (2, 3), stride=(2, 3), padding=(0, 1))": [[5, 7], [13, 15]],
        "F.avg_pool2d(input, 2)": [[2.5, 4.5], [10.5, 12.5]],
    }
    assert result.fields == {"conv3-conv3": (5, 5), "conv3-pool2-conv3": (8, 8), "VGG-16": (212, 212)}
    assert "= max(0, 1, 3, 4)" in text and "= (0 + 1 + 3 + 4) / 4" in text


def test_transposed_3x3_to_5x5_and_the_recipe():
    result, text = quiet(transposed)
    expected = [[1, 4, 2, 6, 3], [4, 14, 5, 19, 6], [4, 10, 5, 12, 6], [7, 29, 8, 34, 9], [7, 16, 8, 18, 9]]
    assert result.output.tolist() == expected  # = torch's conv_transpose2d
    assert result.recipe.tolist() == expected and result.recipe_equal
    picture = np.zeros((7, 7), dtype=int)
    picture[1:6:2, 1:6:2] = np.arange(1, 10).reshape(3, 3)
    assert result.padded.tolist() == picture.tolist()
    assert result.seed001_sizes == (4, 5)
    assert "H_out = (3 - 1)*2 - 1 - 1 + (3-1) + 0 + 1 = 5" in text
    assert "H_out = (2 - 1)*1 - 0 - 0 + (3-1) + 0 + 1 = 4" in text


def test_zero_insertion_picture_for_other_settings():
    x = np.arange(1, 7).reshape(1, 2, 3)
    picture = transposed.zero_insertion(x, kernel_size=4, stride=3, padding=1)  # 2 zeros between, 2 around
    assert picture.shape == (1, 2 + 2 + 4, 3 + 2 * 2 + 4)
    assert picture[0, 2:8:3, 2:11:3].tolist() == x[0].tolist() and picture.sum() == x.sum()


def test_convolution_matrix_and_its_transpose():
    result, text = quiet(conv_matrix)
    assert result.matrix.shape == (4, 16) and "C (4x16):" in text
    assert result.matrix[0].tolist() == [2, 1, 0, 0, 2, 1, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0]
    assert result.matrix[3].tolist() == [0, 0, 0, 0, 0, 2, 1, 0, 0, 2, 1, 0, 0, 1, 0, 2]
    assert result.small.tolist() == [[12, 10], [8, 18]] and result.conv_equal
    assert result.back.tolist() == [[24, 32, 10, 0], [40, 76, 28, 0], [28, 54, 42, 20], [8, 18, 16, 36]]  # torch's
    assert result.transpose_equal
    assert not result.recovers_input and not result.gram_is_identity and result.rank == 4


def test_convolution_family_costs_seed001():
    result, text = quiet(convolution_family)
    assert result.separable_costs == (86400, 10275)
    assert result.separable_parts == (675, 9600)
    assert round(result.separable_ratio, 2) == 0.12
    assert result.separable_output_shape == (128, 5, 5) and result.separable_equals_standard
    column, row = result.sobel_factors
    assert column.tolist() == [1, 2, 1] and row.tolist() == [-1, 0, 1] and result.sobel_equal
    assert result.spatial_costs == (81, 72) and result.spatial_passes == (45, 27)
    assert result.grouped.tolist() == [[[4, 6], [10, 12]], [[3, 2], [1, 3]]]
    assert result.group_param_ratio == 0.5 and result.grouped_equals_split
    assert re.search(r"standard 3x3, 3 -> 128 +128x3x3x3 +128x5x5 +3456 +86400", text)


@pytest.mark.parametrize("stack", [
    [Layer("conv", 3)],
    [Layer("conv", 3, stride=2), Layer("conv", 3)],
    [Layer("conv", 5, dilation=2), Layer("pool", 2, 2), Layer("conv", 3, stride=2)],
    [Layer("pool", 3, 2), Layer("conv", 2, dilation=3)],
])
def test_measured_fields_start_where_the_rule_says(stack):
    rule = fields.predicted(stack)
    measured = fields.measure(stack, 40)
    row, column = measured.output_position
    assert measured.extent == (rule.size, rule.size)
    assert measured.start == (rule.start + row * rule.jump, rule.start + column * rule.jump)
    right = fields.measure(stack, 40, (1,))
    assert right.start[1] == measured.start[1] + rule.jump  # the next unit's field is one jump further


# --------------------------------------------------------------------------- the scripts

KEY_OUTPUT = {
    "erf": ["depth  field  ERF sigma", "   16     33", "subsampling and dilation enlarge the ERF"],
    "stride_padding": ["12  10", "H_out = floor((4 + 0 + 0 - (3-1) - 1) / 2) + 1 = 1", " 0   5  14  10"],
    "cross_correlation": ["19  25", "37  43", "= 4*0 + 5*1 + 7*2 + 8*3"],
    "correlation_vs_convolution": ["23  29", "It reaches 9 input elements"],
    "by_hand": ["prints [[2, 0], [3, 2]]; the engine gives [[2, 0], [3, 2]] (the same)"],
    "channels": ["104  120", "192  224", "equals the output: True"],
    "edge_detection": ["0   1   0   0   0  -1   0", "W_out = floor((8 + 0 + 0 - (2-1) - 1) / 1) + 1 = 7"],
    "learn_kernel": ["step  2, loss", "step 12, loss", "learned kernel:"],
    "padding": ["reflect    3 2 1 2 3 4 3 2", "circular   3 4 1 2 3 4 1 2", "H: (0, 1), W: (0, 1)"],
    "dilation": ["rule 15x15; engine: the gradient of one output reaches 15x15", "   8  14"],
    "pooling": ["= max(0, 1, 3, 4)", "engine: 8x8 inputs reached", "engine: 212x212 inputs reached"],
    "transposed": ["H_out = (3 - 1)*2 - 1 - 1 + (3-1) + 0 + 1 = 5", "   7  29   8  34   9"],
    "conv_matrix": ["C (4x16):", "equal to F.conv_transpose2d(Small, kernel): True"],
    "convolution_family": ["86400", "10275", "81 for the full kernel, 72 separated"],
    "tensorboard_conv": ["step 0: input (64, 3, 28, 28) -> output (64, 6, 26, 26)", "output/channel_5"],
    "lenet_d2l": ["xavier_uniform_ weights; SGD lr 0.9, batch 256", "epoch  1: loss", "test acc 0.779"],
    "augmentation": ["test images        plain  augmented", "darkened 0.4", "mean over the four changed test sets"],
}


def test_every_example_module_is_listed_and_has_key_output():
    assert sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in HELPERS) == sorted(ORDER) == sorted(KEY_OUTPUT)


def test_the_top_level_examples_folder_is_gone():
    """One home for the examples: the package (the repository's examples/ shims were removed)."""
    assert not (ROOT / "examples").exists()


@pytest.mark.parametrize("name", ORDER)
def test_example_runs_as_a_module_and_prints_its_numbers(name):
    done = subprocess.run([sys.executable, "-m", f"convlab.examples.{name}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr  # e.g. runpy's "found in sys.modules" RuntimeWarning
    assert done.stdout.startswith(load(name).TITLE + "\n")
    for needle in KEY_OUTPUT[name]:
        assert needle in done.stdout
    buffer = io.StringIO()
    load(name).run(buffer)
    assert done.stdout == buffer.getvalue()  # exactly what run() prints


def test_load_refuses_an_unknown_name():
    with pytest.raises(ValueError, match=r"convlab.examples.load: `name` \(='nope'\) must be one of stride_padding"):
        load("nope")


def test_erf_reproduces_luo_et_al_and_agrees_with_the_analysis():
    from convlab.analysis import effective_receptive_field

    result, text = quiet(erf, samples=2)
    assert result.fields == (5, 9, 17, 33)  # 2n + 1
    assert all(a < b for a, b in zip(result.spreads, result.spreads[1:], strict=False))
    assert all(a > b for a, b in zip(result.shares, result.shares[1:], strict=False))
    slope = np.polyfit(np.log(result.depths), np.log(result.spreads), 1)[0]
    assert 0.35 < slope < 0.8  # about sqrt(depth), far from the field's depth^1
    v = result.variants
    assert v["strided"] > v["plain"] and v["dilated"] > v["plain"] and v["residual"] < v["plain"]
    assert result.trained is None and "pass trained=" in text
    # the example's map is the analysis' effective receptive field of the same network and inputs
    net = erf.relu_stack(3, np.random.default_rng(5))
    ours = erf.erf_map(net, (1, 20, 20), 3, np.random.default_rng(6))
    theirs = effective_receptive_field(net, (1, 20, 20), n_samples=3, rng=np.random.default_rng(6))
    np.testing.assert_allclose(ours, theirs.map, rtol=1e-12)
    assert erf.spread(ours) == pytest.approx(theirs.sigma[0], rel=1e-12)


def test_erf_with_a_trained_model():
    rng = np.random.default_rng(0)
    model = erf.relu_stack(3, rng)
    model.input_size = (1, 16, 16)
    result, text = quiet(erf, samples=1, trained=model)
    assert result.trained is not None and result.maps["trained"].shape == (16, 16)
    assert "the trained model: ERF sigma" in text
