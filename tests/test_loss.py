"""Losses against torch: values and gradients of CrossEntropyLoss, NLLLoss and MSELoss, and the refusals.

The modules call the functions of ``convlab.functional`` (``convlab.ops.loss``); the
last tests check those directly: the targets' gradients, their refusals, softmax.

Every case is drawn from a seed: unbatched, batched and spatial inputs, class
weights, ignored targets (some batches entirely ignored), label smoothing,
class-index and probability targets, the three reductions, a random
``grad_output`` and both float dtypes. torch (autograd through
``torch.nn.functional``) is the oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab.functional as CF
from convlab import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}
REDUCTIONS = ("mean", "sum", "none")


def _shape(rng: np.random.Generator, classes: int) -> tuple[int, ...]:
    form = rng.integers(3)
    if form == 0:
        return (classes,)  # unbatched
    batch = int(rng.integers(1, 6))
    spatial = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(0, 3)))) if form == 2 else ()
    return (batch, classes, *spatial)


def _compare(ours_value, ours_grad, theirs_value, theirs_grad, dtype) -> None:
    assert ours_value.dtype == dtype and ours_grad.dtype == dtype
    assert ours_value.shape == tuple(theirs_value.shape)
    np.testing.assert_allclose(ours_value, theirs_value.detach().numpy(), equal_nan=True, **TOLERANCE[dtype])
    np.testing.assert_allclose(ours_grad, theirs_grad.numpy(), equal_nan=True, **TOLERANCE[dtype])


def _grad_output(rng, reduction, loss_shape, dtype):
    if reduction == "none":
        return rng.standard_normal(loss_shape).astype(dtype)
    return dtype(rng.standard_normal())


def _torch_backward(loss, grad_output):
    loss.backward(torch.as_tensor(np.asarray(grad_output)))


@pytest.mark.parametrize("seed", range(240))
def test_cross_entropy_equals_torch(seed):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if seed % 3 else np.float32
    classes = int(rng.integers(1, 6))
    shape = _shape(rng, classes)
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    reduction = REDUCTIONS[seed % 3]
    smoothing = float(rng.choice([0.0, 0.0, 0.1, 0.5, 1.0, rng.uniform()]))
    weight = rng.uniform(0.1, 2.0, classes) if rng.integers(2) else None
    class_dim = 0 if len(shape) == 1 else 1
    if seed % 4 == 3:  # class probabilities
        target = rng.dirichlet(np.ones(classes), size=np.prod(shape) // classes).astype(dtype)
        target = np.moveaxis(target.reshape(shape[:class_dim] + shape[class_dim + 1:] + (classes,)), -1, class_dim)
        ignore_index = -100
    else:
        target = rng.integers(0, classes, shape[:class_dim] + shape[class_dim + 1:])
        ignore_index = int(rng.choice([-100, 0, classes - 1, -1]))
        if rng.integers(4) == 0:
            target[...] = ignore_index  # every target ignored
        elif ignore_index == -1:
            target = np.where(rng.uniform(size=target.shape) < 0.3, -1, target)
    loss_fn = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction,
                                  label_smoothing=smoothing)
    value = loss_fn(logits, target)
    grad_output = _grad_output(rng, reduction, value.shape, dtype)
    grad = loss_fn.backward(grad_output)

    x = torch.tensor(logits, requires_grad=True)
    expected = F.cross_entropy(x, torch.from_numpy(target), reduction=reduction, ignore_index=ignore_index,
                               label_smoothing=smoothing,
                               weight=None if weight is None else torch.tensor(weight, dtype=x.dtype))
    _torch_backward(expected, grad_output)
    _compare(value, grad, expected, x.grad, dtype)


@pytest.mark.parametrize("seed", range(90))
def test_nll_equals_torch(seed):
    rng = np.random.default_rng(1000 + seed)
    dtype = np.float64 if seed % 3 else np.float32
    classes = int(rng.integers(1, 6))
    shape = _shape(rng, classes)
    inputs = rng.standard_normal(shape).astype(dtype)
    reduction = REDUCTIONS[seed % 3]
    weight = rng.uniform(0.1, 2.0, classes) if rng.integers(2) else None
    class_dim = 0 if len(shape) == 1 else 1
    target = rng.integers(0, classes, shape[:class_dim] + shape[class_dim + 1:])
    ignore_index = int(rng.choice([-100, 0]))
    loss_fn = nn.NLLLoss(weight=weight, ignore_index=ignore_index, reduction=reduction)
    value = loss_fn(inputs, target)
    grad_output = _grad_output(rng, reduction, value.shape, dtype)
    grad = loss_fn.backward(grad_output)

    x = torch.tensor(inputs, requires_grad=True)
    expected = F.nll_loss(x, torch.from_numpy(target), reduction=reduction, ignore_index=ignore_index,
                          weight=None if weight is None else torch.tensor(weight, dtype=x.dtype))
    _torch_backward(expected, grad_output)
    _compare(value, grad, expected, x.grad, dtype)


@pytest.mark.parametrize("seed", range(30))
def test_mse_equals_torch(seed):
    rng = np.random.default_rng(2000 + seed)
    dtype = np.float64 if seed % 3 else np.float32
    shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(0, 4))))
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    reduction = REDUCTIONS[seed % 3]
    loss_fn = nn.MSELoss(reduction=reduction)
    value = loss_fn(a, b)
    grad_output = _grad_output(rng, reduction, value.shape, dtype)
    grad = loss_fn.backward(grad_output)
    x = torch.tensor(a, requires_grad=True)
    expected = F.mse_loss(x, torch.from_numpy(b), reduction=reduction)
    _torch_backward(expected, grad_output)
    _compare(value, grad, expected, x.grad, dtype)


def test_known_values():
    # log(1 + 2 e^0 / e^2) for the first row, log(3) for the second, averaged
    loss_fn = nn.CrossEntropyLoss()
    value = loss_fn(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), np.array([0, 2]))
    assert value.shape == () and value == pytest.approx((np.log(1 + 2 * np.exp(-2.0)) + np.log(3.0)) / 2, rel=1e-15)
    # a weighted mean divides by the weights of the targets that count
    nll = nn.NLLLoss(weight=np.array([1.0, 3.0]), ignore_index=0)
    assert nll(np.array([[-1.0, -2.0], [-4.0, -8.0], [-0.5, -0.25]]), np.array([1, 0, 1])) == pytest.approx(
        (3 * 2.0 + 3 * 0.25) / 6)


def test_all_ignored_gives_nan_and_zero_gradient():
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    with np.errstate(all="raise"):  # no warnings leak out
        value = loss_fn(np.zeros((3, 4)), np.full(3, -100))
        grad = loss_fn.backward()
    assert np.isnan(value)
    assert np.array_equal(grad, np.zeros((3, 4)))


def test_nan_and_inf_logits_propagate():
    with np.errstate(all="raise"):  # no warnings leak out
        assert np.isnan(nn.CrossEntropyLoss()(np.array([[np.nan, 0.0]]), np.array([0])))
        assert np.isnan(nn.CrossEntropyLoss()(np.array([[np.inf, 0.0]]), np.array([0])))


def test_extremes_are_stable():
    logits = np.array([[1000.0, -1000.0, 0.0]])
    loss_fn = nn.CrossEntropyLoss()
    assert loss_fn(logits, np.array([0])) == 0.0
    assert loss_fn(logits, np.array([1])) == pytest.approx(2000.0)
    assert np.all(np.isfinite(loss_fn.backward()))


def test_backward_feeds_model_backward():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 3, rng=rng))
    loss_fn = nn.CrossEntropyLoss()
    logits = model(rng.standard_normal((5, 4)).astype(np.float32))
    loss_fn(logits, rng.integers(0, 3, 5))
    grad_input = model.backward(loss_fn.backward())
    assert grad_input.shape == (5, 4) and model[0].weight.grad.shape == (3, 4)


def test_backward_needs_a_forward():
    with pytest.raises(ValueError, match="no forward pass is cached"):
        nn.MSELoss().backward()
    loss_fn = nn.CrossEntropyLoss()
    with nn.no_grad():
        loss_fn(np.zeros((1, 2)), np.array([0]))
    with pytest.raises(ValueError, match="no forward pass is cached"):
        loss_fn.backward()


@pytest.mark.parametrize("make, message", [
    (lambda: nn.CrossEntropyLoss(reduction="avg"), r"`reduction` \(='avg'\)"),
    (lambda: nn.NLLLoss(reduction=None), r"`reduction` \(=None\)"),
    (lambda: nn.MSELoss(reduction="elementwise_mean"), r"`reduction` \(='elementwise_mean'\)"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), r"`label_smoothing` \(=1.5\)"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=-0.1), r"`label_smoothing` \(=-0.1\)"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=float("nan")), r"`label_smoothing` \(=nan\)"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=True), r"`label_smoothing` \(=True\)"),
    (lambda: nn.CrossEntropyLoss(ignore_index=1.5), r"`ignore_index` \(=1.5\)"),
    (lambda: nn.NLLLoss(weight=np.array([1.0, np.nan])), r"`weight` must be finite, got \[1.0, nan\]"),
    (lambda: nn.NLLLoss(weight=np.ones((2, 2))), r"`weight` must be a 1-d array.*shape \(2, 2\)"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("loss_fn, logits, target, message", [
    (nn.CrossEntropyLoss(), np.zeros((2, 3)), np.array([0, 3]), r"target value 3 at index \(1,\) is out of range "
                                                                 r"for 3 classes"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3)), np.array([-1, 0]), r"target value -1 at index \(0,\)"),
    (nn.NLLLoss(ignore_index=5), np.zeros((2, 3)), np.array([4, 5]), r"target value 4 .*ignore_index=5"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3)), np.array([0, 1, 2]), r"target's shape \(3,\) does not match "
                                                                    r"the input's shape \(2, 3\)"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3, 4)), np.zeros((2, 3), np.int64), r"shape \(2, 4\)"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3)), np.zeros((2, 4)), r"probabilities and must have the input's shape "
                                                               r"\(2, 3\), got \(2, 4\)"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3)), np.zeros(2), r"probabilities .* got \(2,\)"),
    (nn.CrossEntropyLoss(weight=np.ones(4)), np.zeros((2, 3)), np.array([0, 1]), r"`weight` has 4 entries but "
                                                                                r"the input has 3 classes"),
    (nn.CrossEntropyLoss(), np.zeros((2, 3), np.int64), np.array([0, 1]), r"floating-point dtype, got int64"),
    (nn.CrossEntropyLoss(), np.float64(1.0), np.array(0), r"0-d"),
    (nn.MSELoss(), np.zeros((2, 3)), np.zeros((3,)), r"target's shape \(3,\) must equal the input's shape \(2, 3\)"),
])
def test_bad_inputs(loss_fn, logits, target, message):
    with pytest.raises(ValueError, match=message):
        loss_fn(logits, target)


def test_bad_grad_output():
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"`grad_output` must be a scalar for reduction='mean', got shape \(2,\)"):
        loss_fn.backward(np.ones(2))
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    loss_fn(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"`grad_output` must have the loss's shape \(2,\)"):
        loss_fn.backward(np.ones(3))


def test_weight_is_a_buffer_like_torch():
    loss_fn = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0]))
    assert list(loss_fn.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(2)).state_dict())
    assert "weight=array(shape=(2,))" in repr(loss_fn)


# --------------------------------------------------------------------------- convlab.functional (convlab.ops.loss)


@pytest.mark.parametrize("seed", range(24))
def test_functional_target_gradients_equal_torch(seed):
    """Probability targets and MSE targets get torch's gradient too (LossGrads.target)."""
    rng = np.random.default_rng(3000 + seed)
    dtype = np.float64 if seed % 3 else np.float32
    reduction = REDUCTIONS[seed % 3]
    classes = int(rng.integers(1, 5))
    shape = _shape(rng, classes)
    logits = rng.standard_normal(shape).astype(dtype)
    if seed % 2:
        target = rng.uniform(size=shape).astype(dtype)
        settings = dict(reduction=reduction, label_smoothing=float(rng.choice([0.0, 0.25])),
                        weight=rng.uniform(0.1, 2.0, classes) if rng.integers(2) else None)
        ours_fn, ours_vjp, theirs_fn = CF.cross_entropy, CF.cross_entropy_vjp, F.cross_entropy
    else:
        target = rng.standard_normal(shape).astype(dtype)
        settings = dict(reduction=reduction)
        ours_fn, ours_vjp, theirs_fn = CF.mse_loss, CF.mse_loss_vjp, F.mse_loss
    value = ours_fn(logits, target, **settings)
    grad_output = _grad_output(rng, reduction, value.shape, dtype)
    grads = ours_vjp(grad_output, logits, target, **settings)

    x, t = torch.tensor(logits, requires_grad=True), torch.tensor(target, requires_grad=True)
    weight = settings.get("weight")
    torch_settings = {**settings, "weight": torch.tensor(weight, dtype=x.dtype)} if weight is not None else settings
    expected = theirs_fn(x, t, **torch_settings)
    _torch_backward(expected, grad_output)
    _compare(value, grads.input, expected, x.grad, dtype)
    np.testing.assert_allclose(grads.target, t.grad.numpy(), **TOLERANCE[dtype])


def test_functional_and_module_are_one_implementation():
    rng = np.random.default_rng(7)
    logits, target = rng.standard_normal((4, 3, 2)), rng.integers(0, 3, (4, 2))
    settings = dict(weight=np.array([1.0, 2.0, 0.5]), ignore_index=1, reduction="sum", label_smoothing=0.2)
    loss_fn = nn.CrossEntropyLoss(**settings)
    assert np.array_equal(loss_fn(logits, target), CF.cross_entropy(logits, target, **settings))
    grads = CF.cross_entropy_vjp(2.0, logits, target, **settings)
    assert np.array_equal(loss_fn.backward(2.0), grads.input) and grads.target is None
    assert np.array_equal(CF.nll_loss(logits, target, reduction="none"), nn.NLLLoss(reduction="none")(logits, target))


def test_mse_refuses_the_shapes_torch_broadcasts():
    """A documented difference: torch broadcasts a (2, 1) target against a (2,) input into a (2, 2) loss, warning."""
    with pytest.warns(UserWarning, match="different to the input size"):
        assert F.mse_loss(torch.zeros(2), torch.zeros(2, 1), reduction="none").shape == (2, 2)
    with pytest.raises(ValueError, match=r"mse_loss: the target's shape \(2, 1\) must equal the input's shape \(2,\) "
                                         r"\(torch broadcasts"):
        CF.mse_loss(np.zeros(2), np.zeros((2, 1)))


@pytest.mark.parametrize("call, error, message", [
    (lambda: CF.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"), ValueError,
     r"cross_entropy: `reduction` \(='avg'\)"),
    (lambda: CF.cross_entropy_vjp(1.0, np.zeros((2, 3)), np.array([0, 1]), label_smoothing=2), ValueError,
     r"cross_entropy_vjp: `label_smoothing` \(=2\)"),
    (lambda: CF.nll_loss(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(2)), ValueError,
     r"nll_loss: `weight` has 2 entries but the input has 3 classes"),
    (lambda: CF.nll_loss_vjp(np.ones(3), np.zeros((2, 3)), np.array([0, 1]), reduction="none"), ValueError,
     r"nll_loss_vjp: `grad_output` must have the loss's shape \(2,\)"),
    (lambda: CF.mse_loss_vjp(np.ones(2), np.zeros(2), np.zeros(2)), ValueError,
     r"mse_loss_vjp: `grad_output` must be a scalar for reduction='mean'"),
    (lambda: CF.log_softmax(np.zeros((2, 3)), 2), ValueError, r"log_softmax: `dim` \(=2\) is out of range"),
    (lambda: CF.softmax(np.zeros((2, 3)), 1.0), TypeError, r"softmax: `dim` must be an integer, got 1.0"),
    (lambda: CF.softmax_vjp(np.zeros(3), np.zeros((2, 3)), 1), ValueError,
     r"softmax_vjp: `grad_output` must have the input's shape \(2, 3\), got \(3,\)"),
    (lambda: CF.softmax(np.zeros(3, np.int64), 0), ValueError, r"softmax: the input must have a floating-point"),
])
def test_functional_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmaxes_equal_torch(dim):
    rng = np.random.default_rng(dim + 5)
    x = (rng.standard_normal((3, 4)) * 5).astype(np.float32)
    g = rng.standard_normal((3, 4)).astype(np.float32)
    for ours, ours_vjp, theirs in ((CF.softmax, CF.softmax_vjp, torch.softmax),
                                   (CF.log_softmax, CF.log_softmax_vjp, torch.log_softmax)):
        xt = torch.tensor(x, requires_grad=True)
        out = theirs(xt, dim)
        out.backward(torch.from_numpy(g))
        _compare(ours(x, dim), ours_vjp(g, x, dim), out, xt.grad, np.float32)
