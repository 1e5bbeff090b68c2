"""The training benchmark (`convlab bench --suite train`): same steps on both engines, its JSON (no timing asserts)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convlab.bench import training  # noqa: E402


def test_the_numpy_engine_uses_convlabs_loss_and_optimizer():
    """One implementation: the benchmark's NumPy steps are NumpyEngine's (convlab.nn.CrossEntropyLoss, optim.SGD)."""
    from convlab import nn, optim

    case = training.make_case("lenet", batch=2)
    assert type(case.numpy_engine.loss_fn) is nn.CrossEntropyLoss
    assert type(case.numpy_engine.optimizer) is optim.SGD
    assert type(case.torch_engine.optimizer) is torch.optim.SGD


@pytest.mark.parametrize(("name", "dtype", "tolerance"), [("lenet", "float32", 1e-5), ("lenet", "float64", 1e-10),
                                                         ("resnet18_cifar", "float64", 1e-10)])
def test_both_engines_take_the_same_step(name, dtype, tolerance):
    """Same weights and batch: same loss, and the same weights after one SGD step.

    (ResNet in float64: with a batch of 2, BatchNorm's bias gradients are sums that cancel to
    a small fraction of their terms, so float32 rounding shows as percent-level differences.)
    """
    batch = 8 if name == "lenet" else 2
    case = training.make_case(name, batch=batch, lr=0.1, dtype=dtype)
    first = case.model.state_dict()
    loss_ours, loss_torch = case.convlab_step(), case.torch_step()
    assert loss_ours == pytest.approx(loss_torch, rel=tolerance)
    assert training.max_weight_difference(case) < tolerance
    moved = max(float(np.abs(v - case.model.state_dict()[k]).max()) for k, v in first.items()
                if v.dtype.kind == "f")
    assert moved > 1e-4  # the step changed the weights (and both engines changed them alike)
    # a second step from the updated weights still agrees
    assert case.convlab_step() == pytest.approx(case.torch_step(), rel=10 * tolerance)


def test_first_layer_skips_the_data_gradient():
    case = training.make_case("lenet", batch=2)
    assert case.model[0].needs_input_grad is False
    logits = case.model(np.zeros((2, 1, 28, 28), np.float32))
    assert case.model.backward(np.ones_like(logits)) is None  # no gradient of the data
    assert case.model[0].weight.grad is not None


def test_release_drops_the_cached_activations():
    case = training.make_case("lenet", batch=2)
    case.convlab_step()
    assert any(m._caches for m in case.model.modules())
    case.release()
    assert not any(m._caches for m in case.model.modules())


def test_suite_train_reports_three_columns_with_ratios(tmp_path, capfd):
    """``convlab bench --suite train`` on a tiny configuration: its JSON and its table (no timing asserted)."""
    import json
    import math

    from convlab.bench.cli import main

    path = tmp_path / "train.json"
    assert main(["--suite", "train", "--models", "lenet", "--batch", "4", "--repeat", "2", "--plain",
                 "--json", str(path)]) == 0
    out = capfd.readouterr().out
    report = json.loads(path.read_text())
    assert report["suite"] == "train" and report["machine"]["cpu"] in out
    assert report["versions"]["torch"] == torch.__version__ and "openblas_core" in report["kernels"]
    assert report["load_average"]["before"] is None or len(report["load_average"]["before"]) == 3
    (entry,) = report["models"]
    assert (entry["model"], entry["batch"], entry["steps"]) == ("lenet", 4, 2)
    for column in training.COLUMNS:
        figures = entry[column]
        assert figures["steps"] == 2
        for key in ("examples_per_second", "examples_per_cpu_second", "ms"):
            assert math.isfinite(figures[key]) and figures[key] > 0, (column, key, figures[key])
        assert figures["examples_per_second"] == pytest.approx(4 / (figures["ms"] / 1e3))
        assert figures["peak_memory_mib"] is None or figures["peak_memory_mib"] >= 0
    rate = {column: entry[column]["examples_per_second"] for column in training.COLUMNS}
    ratios = entry["ratios"]
    assert ratios["numpy_torch_1"] == pytest.approx(rate["numpy"] / rate["torch_1"])
    assert ratios["torch_2_torch_1"] == pytest.approx(rate["torch_2"] / rate["torch_1"])
    assert entry["targets"]["met"] == (ratios["numpy_torch_1"] >= 0.8)
    if ratios["memory_numpy_torch_1"] is not None:
        assert ratios["memory_numpy_torch_1"] == pytest.approx(
            entry["numpy"]["peak_memory_mib"] / entry["torch_1"]["peak_memory_mib"])
        assert entry["targets"]["memory_met"] == (ratios["memory_numpy_torch_1"] <= 2.0)
    assert entry["torch_2"]["processes"] == 2
    # the same-step check: both engines and the two DDP ranks started from the same weights on the same batch
    assert entry["loss"]["convlab"] == pytest.approx(entry["loss"]["torch"], rel=1e-5)
    assert entry["torch_2"]["loss"] == pytest.approx(entry["loss"]["torch"], rel=1e-5)
    assert entry["max_weight_difference"] < 1e-5
    row = next(line for line in out.splitlines() if line.startswith("| lenet "))
    assert training._rate(rate['torch_2']) in row and f"{ratios['numpy_torch_1']:.2f}" in row


@pytest.mark.parametrize(("argv", "expected"), [
    (["--models", "nosuchnet"], "nosuchnet"),
    (["--steps", "0"], "--steps (=0)"),
    (["--threads", "0"], "--threads (=0)"),
    (["--batch", "1"], "--batch (=1)"),
])
def test_training_main_refuses_bad_options(argv, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        training.main(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--layers", "resnet18.conv1"], "--layers (='resnet18.conv1')"),
    (["--analysis"], "--analysis"),
    (["--blas-core", "Haswell"], "--blas-core (='Haswell')"),
    (["--repeat", "0"], "--repeat (=0)"),
    (["--models", "nosuchnet"], "nosuchnet"),
])
def test_bench_suite_train_refuses_options_that_do_not_apply(argv, expected, capsys):
    from convlab.bench.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--suite", "train", *argv])
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err


# --------------------------------------------------------------------------- the fast paths the benchmark drove


def _with_specials(x):
    flat = x.reshape(-1)
    flat[::7] = np.nan
    flat[1::11] = np.inf
    flat[2::13] = -np.inf
    return x


@pytest.mark.parametrize(("shape", "kernel"), [((3, 4, 28, 28), 2), ((2, 3, 29, 27), 2), ((2, 3, 9, 10), 3),
                                               ((2, 3, 12), 4), ((2, 2, 4, 6, 8), 2), ((2, 3, 7, 7), (3, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_average_pooling_equals_torch_bit_for_bit(shape, kernel, dtype):
    """Stride = kernel, no padding: the taps summed in torch's order; NaN and inf where torch puts them."""
    from convlab.ops.pool.window import avg_pool, avg_pool_vjp

    rng = np.random.default_rng(1)
    nd = len(shape) - 2
    kernel = (kernel,) * nd if isinstance(kernel, int) else kernel
    x = _with_specials(rng.standard_normal(shape).astype(dtype))
    with np.errstate(invalid="ignore"):  # inf + -inf in a window: NaN, as torch
        y = avg_pool(x, kernel)
    tx = torch.from_numpy(x).requires_grad_()
    ty = getattr(torch.nn.functional, f"avg_pool{nd}d")(tx, kernel)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    g = _with_specials(rng.standard_normal(y.shape).astype(dtype))
    ty.backward(torch.from_numpy(g))
    gx = avg_pool_vjp(g, x, kernel)
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_array_equal(gx, tx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_equals_torch_with_nan_and_inf(dtype):
    from convlab.nn import Sigmoid

    rng = np.random.default_rng(2)
    x = _with_specials((rng.standard_normal((4, 5, 6)) * 30).astype(dtype))
    layer = Sigmoid()
    y = layer(x)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.sigmoid(tx)  # NaN/inf in the gradient: IEEE warnings, as the products intend
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=4 * np.finfo(dtype).eps, atol=0)
    g = _with_specials(rng.standard_normal(y.shape).astype(dtype))
    ty.backward(torch.from_numpy(g))
    with np.errstate(invalid="ignore"):
        grad = layer.backward(g)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=16 * np.finfo(dtype).eps, atol=1e-300)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_equals_torch_in_float64(affine, training):
    from convlab.nn import BatchNorm2d

    rng = np.random.default_rng(3)
    layer = BatchNorm2d(5, affine=affine).to(np.float64)
    reference = torch.nn.BatchNorm2d(5, affine=affine).double()
    if affine:
        weight, bias = rng.standard_normal(5), rng.standard_normal(5)
        layer.weight.data[...] = weight
        layer.bias.data[...] = bias
        reference.weight.data = torch.from_numpy(weight)
        reference.bias.data = torch.from_numpy(bias)
    layer.train(training)
    reference.train(training)
    # a transposed view, as the convolutions return
    x = np.ascontiguousarray(rng.standard_normal((4, 6, 7, 5)) * 3 + 1).transpose(0, 3, 1, 2)
    y = layer(x)
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    ty = reference(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if affine:
        np.testing.assert_allclose(layer.weight.grad, reference.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(layer.bias.grad, reference.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.running_var, reference.running_var.numpy(), rtol=1e-12)
    # NaN in one channel stays in that channel, as in torch
    x2 = np.array(x)
    x2[0, 2, 0, 0] = np.nan
    y2 = layer(x2)
    expected = reference(torch.from_numpy(np.ascontiguousarray(x2))).detach().numpy()
    np.testing.assert_array_equal(np.isnan(y2), np.isnan(expected))
