"""The torch engine (convlab.train.torch_engine): the same steps as the NumPy engine, checkpoints across engines.

Both engines get the same initial weights (the torch engine trains the to_torch mirror of the same convlab
model), the same batches (convlab.data.DataLoader: seeded order, augmentation) and the same optimizer and
schedule (engine.build_optimizer/build_scheduler with convlab.optim or torch.optim); after a few steps the
weights agree to float64 1e-10 / float32 1e-4. Tiny runs: LeNet on 28x28 and the smallest ResNet the zoo's
class builds (one BasicBlock per stage, CIFAR stem) on 12x12 images.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convlab import models
from convlab.data import DataLoader, Dataset, open_dataset
from convlab.models.resnet import ResNet
from convlab.train import NumpyEngine, evaluate, fit
from convlab.train.checkpoint import load_checkpoint
from convlab.train.cli import main as train_main
from convlab.train.torch_engine import TorchEngine

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")



@pytest.fixture(scope="module")
def mini():
    train = open_dataset("fashion-mnist-mini", split="train").subset(np.arange(64))
    test = open_dataset("fashion-mnist-mini", split="test").subset(np.arange(32))
    return train, test


@pytest.fixture(scope="module")
def small_images(mini):
    """12x12 images (every second pixel of the middle 24x24), for the ResNet."""
    train = mini[0]
    return Dataset(np.ascontiguousarray(train.images[:, :, 2:26:2, 2:26:2]), train.labels, train.classes)


def lenet(dtype):
    return models.create("lenet", rng=0, dtype=dtype)


def small_resnet(dtype):
    return ResNet(block="basic", layers=(1, 1, 1, 1), stem="cifar", input_size=(1, 12, 12), num_classes=10,
                  rng=0, dtype=dtype)


def train_steps(engine, data, dtype, steps, batch_size, seed=1):
    """What fit does per step: the loader's seeded batches of epoch 0, seed_step, train_step."""
    loader = DataLoader(data, batch_size, shuffle=True, seed=seed, dtype=dtype)
    results = []
    for index, (x, y) in enumerate(loader.batches(0)):
        if index == steps:
            break
        engine.seed_step(seed, 0, index)
        results.append(engine.train_step(x, y))
    return results


def assert_close_states(a, b, tol):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_allclose(sb[key], sa[key], rtol=tol, atol=tol, err_msg=key)


CASES = [
    pytest.param("lenet", "sgd", np.float64, 1e-10, id="lenet-sgd-float64"),
    pytest.param("lenet", "adam", np.float64, 1e-10, id="lenet-adam-float64"),
    pytest.param("lenet", "sgd", np.float32, 1e-4, id="lenet-sgd-float32"),
    pytest.param("lenet", "adam", np.float32, 1e-4, id="lenet-adam-float32"),
    pytest.param("resnet", "sgd", np.float64, 1e-10, id="resnet-sgd-float64"),
    pytest.param("resnet", "adam", np.float64, 1e-10, id="resnet-adam-float64"),
    # float32 ResNet: one step. At the second step's forward a ReLU input sits at 1.9e-7 of its layer's largest
    # value (seeds 1-4 of the loader all give 2-3e-7), inside float32 rounding, so which side of zero it lands on
    # depends on the summation order: a change of GEMM blocking flips its mask, the step's weight gradient moves
    # by whole units' contributions and the third loss by 1e-4 (float64 engines, 3 steps, agree to 1e-10)
    pytest.param("resnet", "sgd", np.float32, 1e-4, id="resnet-sgd-float32"),
    # (no float32 Adam on the ResNet: torch float32 itself differs from torch float64 by 3e-2 there after 3 steps,
    # Adam's m / sqrt(v) turns rounding in near-zero gradients into whole steps)
]


@pytest.mark.parametrize("arch, optimizer, dtype, tol", CASES)
def test_both_engines_take_the_same_steps(mini, small_images, arch, optimizer, dtype, tol):
    data, make, batch = (mini[0], lenet, 16) if arch == "lenet" else (small_images, small_resnet, 8)
    options = dict(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 2e-3, momentum=0.9,
                   weight_decay=1e-4, schedule="cosine", warmup=1, total_steps=4)
    ours, theirs = make(dtype), make(dtype)
    numpy_engine, torch_engine = NumpyEngine(ours, **options), TorchEngine(theirs, **options)
    steps = 1 if (arch, dtype) == ("resnet", np.float32) else 3
    expected = train_steps(numpy_engine, data, dtype, steps, batch)
    got = train_steps(torch_engine, data, dtype, steps, batch)
    for e, g in zip(expected, got, strict=True):
        assert g.finite and g.count == e.count and g.correct == e.correct
        assert g.loss == pytest.approx(e.loss, rel=tol, abs=tol)
    assert torch_engine.lr == pytest.approx(numpy_engine.lr, rel=1e-12)
    assert_close_states(ours, theirs, tol)  # the convlab model the torch engine trained (shared arrays)
    mirror = {k: v.detach().numpy() for k, v in torch_engine.module.state_dict().items()}
    for key, value in theirs.state_dict().items():  # and the torch mirror holds exactly those numbers
        assert np.array_equal(mirror[key], value), key


def test_fit_with_the_torch_engine_matches_the_numpy_engine(mini):
    """Through fit (float32 LeNet, augmentation, schedule with warm-up): same history, weights, evaluation."""
    recipe = dict(epochs=2, batch_size=16, optimizer="adam", lr=2e-3, schedule="cosine", warmup=1,
                  augment="flip", seed=4, progress=False, steps=6)
    ours, theirs = lenet(np.float32), lenet(np.float32)
    expected = fit(ours, mini[0], mini[1], **recipe)
    got = fit(theirs, mini[0], mini[1], engine=TorchEngine, **recipe)
    assert got.step == expected.step == 6
    assert_close_states(ours, theirs, 1e-4)
    a, b = evaluate(ours, mini[1]), evaluate(theirs, mini[1])
    assert np.array_equal(a.confusion, b.confusion)
    assert b.loss == pytest.approx(a.loss, rel=1e-4)


@pytest.mark.parametrize("first, second", [(NumpyEngine, TorchEngine), (TorchEngine, NumpyEngine)],
                         ids=["numpy-then-torch", "torch-then-numpy"])
def test_a_checkpoint_resumes_in_the_other_engine(mini, tmp_path, first, second):
    recipe = dict(epochs=2, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine",
                  warmup=1, seed=2, progress=False)
    path = tmp_path / "run.safetensors"
    reference = lenet(np.float32)
    fit(reference, mini[0], engine=first, **recipe)  # 8 steps, uninterrupted
    stopped = lenet(np.float32)
    history = fit(stopped, mini[0], engine=first, checkpoint=path, steps=5, **recipe)
    assert history.stopped == "steps" and history.step == 5
    saved = load_checkpoint(path)
    assert saved.optimizer_class == "SGD" and saved.scheduler_class == "SequentialLR"
    assert set(saved.optimizer_state["state"]) == set(range(10))  # a momentum buffer per parameter

    resumed = lenet(np.float32)
    engine = second(resumed, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine", warmup=1, total_steps=8)
    engine.restore(saved)  # weights equal after load, exactly
    for key, value in saved.model_state.items():
        assert np.array_equal(resumed.state_dict()[key], value), key
    assert engine.lr == pytest.approx(saved.optimizer_state["param_groups"][0]["lr"], rel=0, abs=0)
    history = fit(resumed, mini[0], engine=engine, resume=path, **recipe)
    assert history.step == 8 and history.stopped == "completed"
    assert_close_states(reference, resumed, 1e-4)  # continuing gives the uninterrupted run's weights


def test_torch_checkpoint_holds_the_numpy_engines_keys(mini, tmp_path):
    """Same tensor names, dtypes, shapes and metadata fields from both engines (a float32 LeNet, Adam)."""
    paths = {}
    for engine in (NumpyEngine, TorchEngine):
        paths[engine] = tmp_path / f"{engine.__name__}.safetensors"
        fit(lenet(np.float32), mini[0], engine=engine, checkpoint=paths[engine], steps=2, epochs=1,
            batch_size=32, optimizer="adam", lr=1e-3, progress=False)
    from safetensors import safe_open

    headers = []
    for path in paths.values():
        with safe_open(str(path), framework="np") as f:
            headers.append({k: (f.get_tensor(k).dtype, f.get_tensor(k).shape) for k in f.keys()})
    assert headers[0] == headers[1]
    assert any(k.startswith("__optimizer__.state.0.exp_avg") for k in headers[1])
    a, b = load_checkpoint(paths[NumpyEngine]), load_checkpoint(paths[TorchEngine])
    assert a.optimizer_state["param_groups"] == b.optimizer_state["param_groups"]
    assert [sorted(s) for s in a.optimizer_state["state"].values()] == \
        [sorted(s) for s in b.optimizer_state["state"].values()]
    assert all(s["step"] == 2.0 and isinstance(s["step"], float) for s in b.optimizer_state["state"].values())


def test_convlab_train_engine_torch_then_numpy(tmp_path, capsys):
    """The command: --engine torch writes TensorBoard scalars and a checkpoint that --engine numpy resumes."""
    path, logdir = tmp_path / "run.safetensors", tmp_path / "logs"
    common = ["lenet", "--limit", "64", "--batch-size", "32", "--epochs", "2", "--quiet", "--seed", "1"]
    assert train_main([*common, "--engine", "torch", "--steps", "2", "--checkpoint", str(path),
                       "--logdir", str(logdir)]) == 0
    assert load_checkpoint(path).step == 2
    lines = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/train", "accuracy/train", "lr"} <= {line["tag"] for line in lines}
    assert train_main([*common, "--engine", "numpy", "--resume", str(path), "--checkpoint", str(path)]) == 0
    assert load_checkpoint(path).step == 4
    out = capsys.readouterr().out
    assert "accuracy" in out.lower()


@pytest.mark.parametrize("argv, message", [
    (["--nproc", "0"], r"`--nproc` \(='0'\): must be an integer >= 1"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], r"`--device`"),
    (["--engine", "numpy", "--device", "cuda"], r"`--device` \(='cuda'\): needs --engine torch"),
    (["--engine", "numpy", "--nproc", "2"], r"`--engine` \(='numpy'\): --nproc 2 runs"),
])
def test_refusals(argv, message, capsys):
    code = train_main(["lenet", "--limit", "8", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_unknown_engine_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        train_main(["lenet", "--engine", "jax"])
    assert info.value.code == 2
    assert "--engine: invalid choice: 'jax'" in capsys.readouterr().err


def test_device_check_names_the_value():
    with pytest.raises(ValueError, match=r"`device` \(='tpu'\) must be one of cpu, cuda"):
        TorchEngine(lenet(np.float32), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"`device` \(='cuda'\): torch finds no CUDA device"):
            TorchEngine(lenet(np.float32), device="cuda")


def test_import_convlab_train_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, convlab.train, convlab.train.torch_engine, convlab.train.distributed; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr

