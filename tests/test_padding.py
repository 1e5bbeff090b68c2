"""`pad` in every mode against torch.nn.functional.pad and np.pad, forward and backward."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlab.functional import pad
from convlab.ops import pad_vjp
from tests.helpers import assert_close, check_against_torch, numerical_vjp

torch = pytest.importorskip("torch")


@st.composite
def pad_cases(draw):
    nd = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    shape = tuple(draw(st.lists(st.integers(2, 5), min_size=nd, max_size=nd)))
    amounts = []
    for size in reversed(shape):  # torch order: last dimension first
        top = size - 1 if mode == "reflect" else size
        low = -1 if mode == "constant" else 0  # negative amounts crop (torch allows it for constant)
        amounts += [draw(st.integers(low, top)), draw(st.integers(low, top))]
    batch = draw(st.integers(1, 2))
    return (batch, 2, *shape), tuple(amounts), mode


@given(pad_cases(), st.sampled_from([np.float64, np.float32]))
def test_pad_matches_torch(case, dtype):
    shape, amounts, mode = case
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    value = 0.5 if mode == "constant" else 0.0
    kwargs = {"value": value} if mode == "constant" else {}
    check_against_torch(
        forward=lambda input: pad(input, amounts, mode, value),
        vjp=lambda grad_output, input: {"input": pad_vjp(grad_output, input, amounts, mode)},
        torch_forward=lambda input: torch.nn.functional.pad(input, amounts, mode=mode, **kwargs),
        inputs={"input": x},
    )


@pytest.mark.parametrize("amounts", [(3, 3), (0, 4), (4, 0), (1, 2, 3, 0)])
def test_symmetric_matches_numpy(amounts):
    x = np.arange(20.0).reshape(4, 5)
    pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2)][::-1]
    pairs = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    assert_close(pad(x, amounts, "symmetric"), np.pad(x, pairs, mode="symmetric"))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular", "symmetric"])
def test_pad_vjp_finite_differences(mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    amounts = (2, 3, 1, 2)
    g = rng.standard_normal(pad(x, amounts, mode).shape)
    expected = numerical_vjp(lambda v: pad(v, amounts, mode), x, g)
    np.testing.assert_allclose(pad_vjp(g, x, amounts, mode), expected, rtol=1e-8, atol=1e-8)


def test_seed_pattern_each_mode():
    x = np.array([1, 2, 3, 4])
    assert pad(x, (3, 3)).tolist() == [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]
    assert pad(x, (3, 3), "reflect").tolist() == [4, 3, 2, 1, 2, 3, 4, 3, 2, 1]
    assert pad(x, (3, 3), "replicate").tolist() == [1, 1, 1, 1, 2, 3, 4, 4, 4, 4]
    assert pad(x, (3, 3), "circular").tolist() == [2, 3, 4, 1, 2, 3, 4, 1, 2, 3]
    assert pad(x, (3, 3), "symmetric").tolist() == [3, 2, 1, 1, 2, 3, 4, 4, 3, 2]


def test_pad_does_not_modify_input_and_returns_new_array():
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    y = pad(x, (1, 1), "reflect")
    y[...] = -1
    np.testing.assert_array_equal(x, before)
