"""Checkpoints (convlab.train.checkpoint): bit-exact round trips, torch loading, atomic writes, every mismatch."""

from __future__ import annotations

import ast
import contextlib
import os
import pickle
import re
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors")

from convlab import models, nn, optim
from convlab.optim import lr_scheduler
from convlab.train import checkpoint as ck
from convlab.train.checkpoint import (
    OPTIMIZER_PREFIX,
    Checkpoint,
    generator_from_state,
    load_checkpoint,
    restore,
    save_checkpoint,
    state_differences,
)

# --------------------------------------------------------------------------- convlab.optim


def SGD(params):
    return optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)


def ADAM(params):
    return optim.Adam(params, lr=1e-2, betas=(0.9, 0.99), amsgrad=True)


def STEP_LR(optimizer):
    return lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)


# --------------------------------------------------------------------------- helpers


def _small_model(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(3, dtype=dtype), nn.ReLU(),
        nn.Flatten(), nn.Linear(3 * 6 * 6, 4, dtype=dtype, rng=rng),
    )


def _train(model, optimizer, scheduler, data_rng, steps):
    """``steps`` steps of a squared loss on batches drawn from ``data_rng`` (so the RNG state matters)."""
    model.train()
    for _ in range(steps):
        x = data_rng.standard_normal((5, 1, 6, 6))
        target = data_rng.standard_normal((5, 4))
        optimizer_zero(model)
        y = model(x)
        model.backward(2 * (y - target) / y.size)
        optimizer.step()
        scheduler.step()


def optimizer_zero(model):
    for p in model.parameters():
        p.grad = None


def _assert_same_state(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key]), key


def _assert_equal_nested(a, b, where="state"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for k in a:
            _assert_equal_nested(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_equal_nested(x, y, f"{where}.{i}")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("make_optimizer", [SGD, ADAM], ids=["sgd_momentum", "adam_amsgrad"])
def test_resuming_from_a_checkpoint_continues_bit_for_bit(tmp_path, make_optimizer):
    path = tmp_path / "run.safetensors"
    model = _small_model(0)
    optimizer = make_optimizer(model.parameters())
    scheduler = STEP_LR(optimizer)
    data_rng = np.random.default_rng(7)
    _train(model, optimizer, scheduler, data_rng, 3)
    save_checkpoint(path, model, optimizer=optimizer, scheduler=scheduler, epoch=1, step=3,
                    rng_state={"data": data_rng}, config={"lr": 0.1, "augment": ["crop", "flip"], "seed": 0})
    saved_optimizer = optimizer.state_dict()
    saved_scheduler = scheduler.state_dict()
    _train(model, optimizer, scheduler, data_rng, 4)  # the uninterrupted run

    checkpoint = load_checkpoint(path)
    assert (checkpoint.epoch, checkpoint.step) == (1, 3)
    assert checkpoint.config == {"lr": 0.1, "augment": ["crop", "flip"], "seed": 0}
    _assert_equal_nested(saved_optimizer, checkpoint.optimizer_state)  # arrays, floats, tuples (betas) exact
    _assert_equal_nested(saved_scheduler, checkpoint.scheduler_state)
    assert checkpoint.optimizer_class == type(optimizer).__name__
    assert any(key.startswith(OPTIMIZER_PREFIX + "state.") for key in checkpoint.metadata["optimizer"].split('"'))

    resumed = _small_model(1)  # other initial weights: everything must come from the file
    resumed_optimizer = make_optimizer(resumed.parameters())
    resumed_scheduler = STEP_LR(resumed_optimizer)
    resumed_rng = np.random.default_rng(999)
    restore(checkpoint, resumed, resumed_optimizer, resumed_scheduler, rng={"data": resumed_rng})
    _train(resumed, resumed_optimizer, resumed_scheduler, resumed_rng, 4)
    _assert_same_state(model.state_dict(), resumed.state_dict())
    _assert_equal_nested(optimizer.state_dict(), resumed_optimizer.state_dict())


def test_the_file_holds_the_state_dict_under_torch_keys_and_the_optimizer_under_its_prefix(tmp_path):
    from safetensors.numpy import load_file

    model = _small_model(0)
    optimizer = ADAM(model.parameters())
    _train(model, optimizer, STEP_LR(optimizer), np.random.default_rng(0), 2)
    path = save_checkpoint(tmp_path / "a.safetensors", model, optimizer=optimizer)
    tensors = load_file(path)
    model_keys = [k for k in tensors if not k.startswith("__")]
    assert sorted(model_keys) == sorted(model.state_dict())
    assert sorted(k for k in tensors if k.startswith(OPTIMIZER_PREFIX)) == sorted(
        f"{OPTIMIZER_PREFIX}state.{i}.{name}" for i in range(len(list(model.parameters())))
        for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
    assert tensors["1.num_batches_tracked"].dtype == np.int64 and int(tensors["1.num_batches_tracked"]) == 2
    assert list(load_checkpoint(path).model_state) == list(model.state_dict())  # torch's order, not the header's


def test_rng_state_restores_generators_and_makes_new_ones(tmp_path):
    generator = np.random.default_rng(5)
    generator.random(3)
    path = save_checkpoint(tmp_path / "r.safetensors", _small_model(0), rng_state=generator)
    expected = generator.random(4)
    checkpoint = load_checkpoint(path)
    assert checkpoint.rng_state["bit_generator"] == "PCG64"
    assert np.array_equal(generator_from_state(checkpoint.rng_state).random(4), expected)
    other = np.random.default_rng(0)
    restore(checkpoint, None, rng=other)
    assert np.array_equal(other.random(4), expected)
    with pytest.raises(ValueError, match="is not a Philox state"):
        restore(checkpoint, None, rng=np.random.Generator(np.random.Philox(0)))


def test_the_zoo_model_is_rebuilt_from_its_name_and_configuration(tmp_path):
    model = models.create("lenet", rng=3, dtype="float64")
    path = save_checkpoint(tmp_path / "l.safetensors", model, epoch=2, step=40, model_name="lenet",
                           model_config={"rng": 3, "dtype": np.float64})
    checkpoint = load_checkpoint(path, model)  # checks and loads nothing
    assert checkpoint.model_config == {"rng": 3, "dtype": np.dtype("float64")}
    rebuilt = checkpoint.build_model()
    _assert_same_state(model.state_dict(), rebuilt.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    assert np.array_equal(model.eval()(x), rebuilt.eval()(x))


# --------------------------------------------------------------------------- torch


@pytest.mark.parametrize("name", ["lenet", "resnet18_cifar"])
def test_the_weights_load_into_the_torch_mirror_unchanged(tmp_path, name):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from convlab.interop.torch import to_torch

    model = models.create(name, rng=0, dtype="float64")
    x = np.random.default_rng(1).standard_normal((3, *model.input_size))
    model.train()
    model(x)  # BatchNorm's running statistics and num_batches_tracked move away from their initial values
    model.eval()
    path = save_checkpoint(tmp_path / f"{name}.safetensors", model, optimizer=ADAM(model.parameters()))
    expected = model(x)

    mirror = to_torch(models.create(name, rng=1, dtype="float64")).eval()  # other weights
    state = load_checkpoint(path).model_state
    result = mirror.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        np.testing.assert_allclose(mirror(torch.from_numpy(x)).numpy(), expected, rtol=1e-12, atol=1e-12)

    # straight from the file with safetensors' torch API, the reserved keys filtered out
    again = to_torch(models.create(name, rng=2, dtype="float64")).eval()
    again.load_state_dict({k: v for k, v in load_file(path).items() if not k.startswith(ck.RESERVED_PREFIXES)})
    with torch.no_grad():
        np.testing.assert_allclose(again(torch.from_numpy(x)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_a_plain_safetensors_weights_file_from_torch_loads(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from convlab.interop.torch import to_torch

    source = models.create("lenet", rng=4)
    save_file({k: v.contiguous() for k, v in to_torch(source).state_dict().items()}, str(tmp_path / "w.safetensors"))
    checkpoint = load_checkpoint(tmp_path / "w.safetensors")
    assert checkpoint.format_version is None and checkpoint.optimizer_state is None
    target = models.create("lenet", rng=5)
    restore(checkpoint, target)
    _assert_same_state(source.state_dict(), target.state_dict())
    assert torch is not None


# --------------------------------------------------------------------------- atomic writes and overwriting


class _BrokenFile:
    """A file whose write stores half of its data, then fails like a full disk (or an interrupt)."""

    def __init__(self, f, error):
        self.f, self.error = f, error

    def write(self, data):
        self.f.write(bytes(data)[: len(data) // 2])
        raise self.error

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk_full", "ctrl_c"])
def test_a_crash_while_writing_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch, error):
    path = tmp_path / "run.safetensors"
    old = _small_model(0)
    save_checkpoint(path, old, epoch=1)
    before = path.read_bytes()
    real = ck.atomic_writer

    @contextlib.contextmanager
    def broken(*args, **kwargs):
        with real(*args, **kwargs) as f:
            yield _BrokenFile(f, error)

    monkeypatch.setattr(ck, "atomic_writer", broken)
    with pytest.raises(type(error)):
        save_checkpoint(path, _small_model(1), epoch=2, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.safetensors"]
    assert load_checkpoint(path).epoch == 1
    monkeypatch.undo()
    path.chmod(0o640)
    save_checkpoint(path, _small_model(1), epoch=2, overwrite=True)
    assert load_checkpoint(path).epoch == 2 and os.listdir(tmp_path) == ["run.safetensors"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the replaced file keeps its permissions


def test_an_existing_file_is_not_overwritten_without_overwrite(tmp_path):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"somebody's file")
    refusal = r"run\.safetensors' exists; pass overwrite=True \(convlab train --overwrite\)"
    with pytest.raises(ValueError, match=refusal):
        save_checkpoint(path, _small_model(0))
    assert path.read_bytes() == b"somebody's file" and os.listdir(tmp_path) == ["run.safetensors"]
    with pytest.raises(ValueError, match="is a folder; name a file"):
        save_checkpoint(tmp_path, _small_model(0))
    save_checkpoint(path, _small_model(0), overwrite=True, step=9)
    assert load_checkpoint(path).step == 9


def test_the_no_overwrite_rename_refuses_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    # Another process creates the file after the check and before the rename: it is kept, ours refused.
    path = tmp_path / "run.safetensors"
    real_check = ck.check_checkpoint_path

    def check_then_race(p, *, overwrite=False):
        out = real_check(p, overwrite=overwrite)
        path.write_bytes(b"the other writer's")
        return out

    monkeypatch.setattr(ck, "check_checkpoint_path", check_then_race)
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        save_checkpoint(path, _small_model(0))
    assert path.read_bytes() == b"the other writer's" and os.listdir(tmp_path) == ["run.safetensors"]


def test_a_missing_folder_is_created_and_an_impossible_one_is_named(tmp_path):
    path = save_checkpoint(tmp_path / "runs" / "a" / "c.safetensors", _small_model(0))
    assert load_checkpoint(path).step == 0
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cannot create the folder .*file/sub"):
        save_checkpoint(tmp_path / "file" / "sub" / "c.safetensors", _small_model(0))


# --------------------------------------------------------------------------- mismatches


def test_every_difference_is_listed_in_one_message(tmp_path):
    rng = np.random.default_rng(0)
    saved = nn.Sequential(nn.Conv2d(1, 3, 3, rng=rng), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 4, rng=rng),
                          nn.Linear(4, 2, rng=rng))
    path = save_checkpoint(tmp_path / "s.safetensors", saved)
    other = nn.Sequential(nn.Conv2d(1, 3, 3, rng=rng, dtype=np.float64), nn.BatchNorm2d(3),
                          nn.Flatten(), nn.Linear(12, 5, rng=rng), nn.Identity(), nn.Linear(5, 2, bias=False, rng=rng),
                          nn.Linear(2, 2, rng=rng))
    before = other.state_dict()
    expected = [
        r"3 missing key\(s\) \(in the model, not in the checkpoint\): \['5\.weight', '6\.weight', '6\.bias'\]",
        r"2 unexpected key\(s\) \(in the checkpoint, not in the model\): \['4\.weight', '4\.bias'\]",
        r"2 shape mismatch\(es\): '3\.weight' is \(4, 12\) in the checkpoint, \(5, 12\) in the model; "
        r"'3\.bias' is \(4,\) in the checkpoint, \(5,\) in the model",
        r"2 dtype mismatch\(es\): '0\.weight' is float32 in the checkpoint, float64 in the model; "
        r"'0\.bias' is float32 in the checkpoint, float64 in the model",
    ]
    for call in (lambda: load_checkpoint(path, other), lambda: restore(load_checkpoint(path), other)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "s.safetensors" in message and "Sequential" in message
        for pattern in expected:
            assert len(re.findall(pattern, message)) == 1, (pattern, message)
    _assert_same_state(before, other.state_dict())  # nothing was loaded
    assert state_differences(saved, load_checkpoint(path).model_state) == []


def test_a_checkpoint_of_another_model_is_refused_with_the_model_named(tmp_path):
    path = save_checkpoint(tmp_path / "resnet.safetensors", models.create("resnet18_cifar", rng=0),
                           model_name="resnet18_cifar")
    lenet = models.create("lenet", rng=0)
    with pytest.raises(ValueError) as info:
        restore(load_checkpoint(path), lenet)
    message = str(info.value)
    assert "resnet.safetensors' (saved from 'resnet18_cifar' (ResNet)) does not fit the model (LeNet)" in message
    assert "10 missing key(s)" in message and "'0.weight'" in message
    assert "unexpected key(s)" in message and "'layer4.1.bn2.num_batches_tracked'" in message


def test_an_optimizer_of_another_kind_or_shape_is_refused_before_anything_is_loaded(tmp_path):
    model = _small_model(0)
    optimizer = ADAM(model.parameters())
    _train(model, optimizer, STEP_LR(optimizer), np.random.default_rng(0), 1)
    path = save_checkpoint(tmp_path / "a.safetensors", model, optimizer=optimizer)
    fresh = _small_model(1)
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="the optimizer is SGD, the checkpoint's is Adam"):
        restore(load_checkpoint(path), fresh, SGD(fresh.parameters()))
    with pytest.raises(ValueError, match=r"parameter group 0 has 2 parameters in the optimizer, 6 in the checkpoint"):
        restore(load_checkpoint(path), fresh, ADAM(list(fresh.parameters())[:2]))
    scheduled = save_checkpoint(tmp_path / "s.safetensors", model, optimizer=optimizer, scheduler=STEP_LR(optimizer))
    other = ADAM(fresh.parameters())
    with pytest.raises(ValueError, match="the scheduler is CosineAnnealingLR, the checkpoint's is StepLR"):
        restore(load_checkpoint(scheduled), fresh, other, lr_scheduler.CosineAnnealingLR(other, T_max=5))
    with pytest.raises(ValueError, match="the checkpoint holds no scheduler state"):
        restore(load_checkpoint(path), fresh, ADAM(fresh.parameters()), STEP_LR(ADAM(fresh.parameters())))
    _assert_same_state(before, fresh.state_dict())


# --------------------------------------------------------------------------- not a checkpoint, bad values


def _pickle_that_writes(target: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (Path.write_text, (target, "executed"))

    return pickle.dumps(Payload())


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "pickle", "torch_zip", "huge_header"])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, kind):
    good = save_checkpoint(tmp_path / "good.safetensors", _small_model(0))
    data = Path(good).read_bytes()
    marker = tmp_path / "executed.txt"
    content = {
        "random": np.random.default_rng(0).bytes(4096),
        "truncated": data[: len(data) - 100],
        "empty": b"",
        "pickle": _pickle_that_writes(marker),
        "torch_zip": b"PK\x03\x04" + bytes(200),
        "huge_header": (2**40).to_bytes(8, "little") + b"{}",
    }[kind]
    path = tmp_path / f"{kind}.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"load_checkpoint: '.*{kind}\.safetensors' is not a safetensors checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()  # the pickle was never run


def test_missing_paths_folders_and_newer_versions_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"`path` \(='.*nothing\.safetensors'\) does not exist"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    with pytest.raises(ValueError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(TypeError, match=r"`path` must be a str or os\.PathLike, got int"):
        load_checkpoint(3)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2)}, str(tmp_path / "v9.safetensors"),
              metadata={"format": ck.FORMAT, "format_version": "9"})
    with pytest.raises(ValueError, match="has checkpoint format version 9; this convlab reads versions up to 1"):
        load_checkpoint(tmp_path / "v9.safetensors")
    save_file({"w": np.zeros(2)}, str(tmp_path / "bad.safetensors"),
              metadata={"format": ck.FORMAT, "format_version": "1", "config": "{not json"})
    with pytest.raises(ValueError, match="the metadata 'config' does not parse"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_values_a_checkpoint_cannot_hold_are_refused_by_place_before_writing(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(TypeError, match=r"config\.callbacks\.0 is a function .* \(nothing is pickled\)"):
        save_checkpoint(path, _small_model(0), config={"callbacks": [lambda: None]})
    with pytest.raises(TypeError, match=r"config\.weights is a NumPy array"):
        save_checkpoint(path, _small_model(0), config={"weights": np.zeros(3)})
    with pytest.raises(ValueError, match=r"`epoch` \(=-1\) must be >= 0"):
        save_checkpoint(path, _small_model(0), epoch=-1)
    with pytest.raises(TypeError, match=r"`step` must be an int, got 2\.0"):
        save_checkpoint(path, _small_model(0), step=2.0)
    with pytest.raises(TypeError, match="`overwrite` must be a bool"):
        save_checkpoint(path, _small_model(0), overwrite="yes")
    with nn.skeleton():
        weightless = _small_model(0)
    with pytest.raises(ValueError, match="built without weights"):
        save_checkpoint(path, weightless)
    assert os.listdir(tmp_path) == []


def test_values_come_back_with_their_types(tmp_path):
    config = {"betas": (0.9, 0.999), "nan": float("nan"), "big": 2**100, "tiny": 5e-324, "dtype": np.float32,
              "by_int": {3: "three", (1, 2): "pair"}, "tagged": {"__tuple__": 1}, "flag": np.bool_(True),
              "path": Path("runs/x"), "f32": np.float32(0.1)}
    path = save_checkpoint(tmp_path / "c.safetensors", _small_model(0), config=config)
    back = load_checkpoint(path).config
    assert back["betas"] == (0.9, 0.999) and type(back["betas"]) is tuple
    assert np.isnan(back["nan"]) and back["big"] == 2**100 and back["tiny"] == 5e-324
    assert back["dtype"] == np.dtype("float32")
    assert back["by_int"] == {3: "three", (1, 2): "pair"} and back["tagged"] == {"__tuple__": 1}
    assert back["flag"] is True and back["path"] == os.path.join("runs", "x")
    assert back["f32"] == float(np.float32(0.1))


def test_no_pickle_anywhere():
    source = Path(ck.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not imported & {"pickle", "cPickle", "dill", "joblib", "torch"}
    assert "allow_pickle" not in source and "torch.load" not in source


def test_checkpoint_is_a_frozen_record():
    c = Checkpoint(path="x", model_state={})
    with pytest.raises(AttributeError):
        c.epoch = 3  # type: ignore[misc]
