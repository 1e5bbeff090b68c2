"""Sizes too large for the machine are refused before anything is allocated: layers, the zoo and conv_matrix.

Every refusal is a ValueError naming the layer (or function), the shape and the
bytes, raised while the traced memory (tracemalloc, which sees NumPy's buffers)
is still a few MB; inside ``nn.skeleton()`` nothing is allocated, so nothing is
refused there.
"""

from __future__ import annotations

import contextlib
import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlab.models as models
from convlab import nn
from convlab.ops import memory_budget
from convlab.ops.algorithms.matrix import conv_matrix

FEW_MB = 4 * 2**20

LAYERS = {
    "Conv2d(10**5, 10**5, 10)": (lambda: nn.Conv2d(10**5, 10**5, 10), r"Conv2d: the parameter `weight` of shape "
                                 r"\(100000, 100000, 10, 10\) and dtype float32 would need 4,000,000,000,000 bytes"),
    "Linear(10**6, 10**6)": (lambda: nn.Linear(10**6, 10**6), r"Linear: the parameter `weight` of shape "
                             r"\(1000000, 1000000\) and dtype float32 would need 4,000,000,000,000 bytes"),
    "resnet18, 10**9 classes": (lambda: models.create("resnet18", num_classes=10**9),
                                r"ResNet: Linear: the parameter `weight` of shape \(1000000000, 512\) .* "
                                r"2,048,000,000,000 bytes"),
    "vgg16, 10**8 classes": (lambda: models.create("vgg16", num_classes=10**8),
                             r"VGG: Linear: the parameter `weight` of shape \(100000000, 4096\) .* bytes"),
    "ConvTranspose3d(10**4, 10**4, 9)": (lambda: nn.ConvTranspose3d(10**4, 10**4, 9),
                                         r"ConvTranspose3d: the parameter `weight` of shape \(10000, 10000, 9, 9, 9\)"),
    "Conv1d(1, 3 * 10**9, 1)": (lambda: nn.Conv1d(1, 3 * 10**9, 1),
                                   r"Conv1d: the parameter `weight` of shape \(3000000000, 1, 1\) .* bytes"),
    "BatchNorm2d(10**10)": (lambda: nn.BatchNorm2d(10**10), r"BatchNorm2d: the parameter `weight` of shape "
                            r"\(10000000000,\) and dtype float32 would need 40,000,000,000 bytes"),
    "BatchNorm1d(10**10, affine=False)": (lambda: nn.BatchNorm1d(10**10, affine=False),
                                          r"BatchNorm1d: the buffer `running_mean` of shape \(10000000000,\) .* "
                                          r"40,000,000,000 bytes"),
}


def _refused_with_small_peak(build, match: str) -> int:
    """Run ``build`` under tracemalloc; it must raise the ValueError ``match``; return the traced peak."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as info:
            build()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "memory budget" in str(info.value) and "set_memory_budget" in str(info.value)
    return peak


@pytest.mark.parametrize("case", list(LAYERS))
def test_a_layer_too_large_is_refused_before_anything_is_allocated(case):
    build, match = LAYERS[case]
    assert _refused_with_small_peak(build, match) < FEW_MB


@pytest.mark.parametrize("case", list(LAYERS))
def test_inside_a_skeleton_nothing_is_allocated_so_nothing_is_refused(case):
    build, _ = LAYERS[case]
    tracemalloc.start()
    try:
        with nn.skeleton():
            module = build()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < FEW_MB
    held = [*module.parameters(), *(b for _, b in module.named_buffers())]
    assert held and all(nn.is_weightless(array) for array in held)
    assert max(np.prod(array.shape) for array in held) > 10**8


def test_a_dry_run_skeleton_refuses_what_the_real_build_would():
    with pytest.raises(ValueError, match=r"Linear: the parameter `weight` of shape \(1000000, 1000000\)"):
        with nn.skeleton(check_budget=True):
            nn.Linear(10**6, 10**6)
    with nn.skeleton(check_budget=True):
        fc = nn.Linear(25088, 4096)  # under the budget: built, without memory
    assert nn.is_weightless(fc.weight) and fc.weight.data.strides == (0, 0)
    with nn.skeleton(check_budget=True), nn.skeleton():  # the innermost decides
        nn.Linear(10**6, 10**6)
    with pytest.raises(TypeError, match=r"skeleton: `check_budget` must be a bool, got 'yes'"):
        nn.skeleton(check_budget="yes")


def test_the_zoo_counts_and_summarises_a_model_too_large_to_build():
    assert models.count_parameters("resnet18", num_classes=10**9) == 513_011_176_512
    with nn.skeleton():
        model = models.create("resnet18", num_classes=10**9)
    assert model.fc.weight.shape == (10**9, 512)

    from convlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["summary", "resnet18", "--num-classes", "1000000000", "--format", "json"])
    assert status == 0, err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert "1000000000" in out.getvalue() and "513011176512" in out.getvalue().replace(",", "")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models"]) == 0
    assert "resnet18" in out.getvalue()


def test_the_budget_is_the_ops_budget_and_the_limit_is_inclusive():
    with memory_budget(2**20):
        fc = nn.Linear(256, 1024, bias=False)  # exactly 1 MiB of float32
        assert fc.weight.shape == (1024, 256)
        with pytest.raises(ValueError, match=r"Linear: the parameter `weight` of shape \(1024, 257\) and dtype "
                                             r"float32 would need 1,052,672 bytes .* budget of 1,048,576 bytes"):
            nn.Linear(257, 1024)
        with pytest.raises(ValueError, match=r"Linear: the parameter `weight` of shape \(1024, 256\) and dtype "
                                             r"float64 would need 2,097,152 bytes"):
            nn.Linear(256, 1024, dtype=np.float64)
        with pytest.raises(ValueError, match=r"LeNet: Conv2d: the parameter"):
            with memory_budget(100):
                models.create("lenet", rng=0)


@settings(max_examples=40, deadline=None)
@given(in_features=st.integers(1, 64), out_features=st.integers(1, 64), budget=st.integers(4, 64 * 64 * 4))
def test_a_layer_is_refused_exactly_when_a_parameter_exceeds_the_budget(in_features, out_features, budget):
    with memory_budget(budget):
        fits = 4 * in_features * out_features <= budget  # the weight is the larger parameter
        if fits:
            fc = nn.Linear(in_features, out_features, rng=np.random.default_rng(0))
            assert fc.weight.shape == (out_features, in_features)
        else:
            with pytest.raises(ValueError, match=r"Linear: the parameter `weight`"):
                nn.Linear(in_features, out_features)


def test_layers_hold_the_same_values_as_before():
    bn = nn.BatchNorm2d(3)
    np.testing.assert_array_equal(bn.weight.data, np.ones(3, np.float32))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(3, np.float32))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3, np.float32))
    np.testing.assert_array_equal(bn.running_var, np.ones(3, np.float32))
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    assert int(bn.num_batches_tracked) == 0
    # an initialiser draws in blocks, with the same numbers as one draw of the whole shape
    fc = nn.Linear(1100, 1000, rng=np.random.default_rng(0))  # 1.1M weights: more than one block
    generator = np.random.default_rng(0)
    bound = 1 / np.sqrt(1100)
    expected_weight = generator.uniform(-bound, bound, size=(1000, 1100)).astype(np.float32)
    expected_bias = generator.uniform(-bound, bound, size=1000).astype(np.float32)
    np.testing.assert_array_equal(fc.weight.data, expected_weight)
    np.testing.assert_array_equal(fc.bias.data, expected_bias)
    # the zoo's dry run draws nothing: the first layer gets the generator's first numbers
    lenet = models.create("lenet", rng=np.random.default_rng(0))
    first = nn.Conv2d(1, 6, 5, padding=2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(lenet.state_dict()["0.weight"], first.weight.data)


CONV_MATRIX = {
    "dense 2000x2000": (lambda: conv_matrix(np.ones((1, 1, 3, 3)), (2000, 2000)),
                        r"conv_matrix: the dense matrix of shape \(3992004, 4000000\) would need "
                        r"127,744,128,000,000 bytes"),
    "dense 10**6 x 10**6": (lambda: conv_matrix(np.ones((1, 1, 3, 3)), (10**6, 10**6)),
                            r"conv_matrix: the dense matrix of shape .* bytes"),
    "sparse 10**6 x 10**6": (lambda: conv_matrix(np.ones((1, 1, 3, 3)), (10**6, 10**6), sparse=True),
                             r"conv_matrix: the convolution matrix entries of shape \(1, 1, 999996000004, 9\) "
                             r"would need 215,999,136,000,864 bytes"),
    "transposed dense 2000x2000": (lambda: conv_matrix(np.ones((1, 1, 3, 3)), (2000, 2000), transposed=True),
                                   r"conv_matrix: the dense matrix of shape \(4008004, 4000000\) .* bytes"),
    "index map of a long 1-D input": (lambda: conv_matrix(np.ones((1, 1, 1)), (10**10,), stride=10**10, sparse=True),
                                      r"conv_matrix: the index map of spatial dimension 0 of shape "
                                      r"\(10000000000,\) would need 80,000,000,000 bytes"),
}


@pytest.mark.parametrize("case", list(CONV_MATRIX))
def test_conv_matrix_checks_every_size_before_building_anything(case):
    build, match = CONV_MATRIX[case]
    assert _refused_with_small_peak(build, match) < FEW_MB


def test_conv_matrix_still_builds_what_fits():
    C = conv_matrix(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), (4, 4))
    assert C.shape == (4, 16)
    sparse = conv_matrix(np.ones((1, 1, 3, 3)), (300, 300), sparse=True)  # its dense form: 5.8 GiB
    assert sparse.shape == (298 * 298, 300 * 300) and sparse.nnz == 298 * 298 * 9
