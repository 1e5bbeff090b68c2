"""``convlab train``: the refusals (one line, the option and the value, before any data is read), a tiny run
end to end, Ctrl-C (SIGINT) on a real subprocess and the exact resume from its checkpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("safetensors")

from convlab.cli import main
from convlab.train.checkpoint import load_checkpoint

TINY = ["--limit", "64", "--batch-size", "32", "--epochs", "2", "--seed", "1"]


def refused(capsys, argv) -> str:
    status = main(["train", *argv])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("convlab train: error: ")
    return err


@pytest.fixture
def no_data(monkeypatch):
    """Fail if a refusal reads the data: every check comes before."""
    import convlab.data

    def boom(*args, **kwargs):
        raise AssertionError("open_dataset was called before the refusal")

    monkeypatch.setattr(convlab.data, "open_dataset", boom)


@pytest.mark.parametrize(("argv", "message"), [
    (["lenet", "--batch-size", "0"], r"`--batch-size` \(='0'\): must be an integer >= 1"),
    (["lenet", "--lr", "nan"], r"`--lr` \(='nan'\): must be a finite number"),
    (["lenet", "--lr", "-1"], r"`--lr` \(='-1'\): must be > 0"),
    (["lenet", "--epochs", "two"], r"`--epochs` \(='two'\): must be an integer >= 1"),
    (["lenett"], r"`MODEL` \(='lenett'\): unknown model; did you mean 'lenet'"),
    (["lenet", "--data", "/nonexistent/folder"], r"`--data` \(='/nonexistent/folder'\): no such file or folder"),
    (["lenet", "--logdir", "/etc/hostname/runs"], r"`--logdir` \(='/etc/hostname/runs'\): '/etc/hostname' is not "
                                                  r"a folder"),
    (["lenet", "--recipe", "fast"], r"`--recipe` \(='fast'\): unknown recipe; the recipes: d2l, default"),
    (["lenet", "--schedule", "onecycle", "--warmup", "5"], r"`--warmup` \(=5\): does not combine with --schedule "
                                                           r"onecycle"),
])
def test_refusals_before_reading_data(capsys, no_data, argv, message):
    assert re.search(message, refused(capsys, argv))


def test_empty_data_folder_is_refused(capsys, no_data, tmp_path):
    err = refused(capsys, ["lenet", "--data", str(tmp_path)])
    assert f"`--data` (={str(tmp_path)!r}): the folder is empty" in err


def test_labels_outside_num_classes(capsys):
    err = refused(capsys, ["lenet", "--num-classes", "5", *TINY])
    assert "`--num-classes` (=5): the training labels of 'fashion-mnist-mini' go up to 9" in err


def test_unknown_augmentation_names_the_option(capsys):
    err = refused(capsys, ["lenet", "--augment", "crop,bogus", *TINY])
    assert "`--augment` (='crop,bogus'): " in err and "bogus" in err


def test_existing_checkpoint_needs_overwrite(capsys, no_data, tmp_path):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"keep me")
    err = refused(capsys, ["lenet", "--checkpoint", str(path)])
    assert f"`--checkpoint` (={str(path)!r}): exists; pass --overwrite to replace it" in err
    assert path.read_bytes() == b"keep me"


def test_a_checkpoint_of_another_model_is_refused(capsys, tmp_path):
    path = tmp_path / "lenet.safetensors"
    assert main(["train", "lenet", *TINY, "--steps", "1", "--checkpoint", str(path), "--quiet"]) == 0
    capsys.readouterr()
    err = refused(capsys, ["lenet_bn", "--resume", str(path)])
    assert f"`--resume` (={str(path)!r}): is a checkpoint of 'lenet', not of 'lenet_bn'" in err


def test_a_tiny_run_prints_the_accuracy_of_its_checkpoint(capsys, tmp_path):
    path = tmp_path / "run.safetensors"
    assert main(["train", "lenet_bn", *TINY, "--checkpoint", str(path)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"test accuracy (0\.\d{4}) \((\d+)/2000\)", out)
    assert match, out
    # rebuild the model from the checkpoint and evaluate it: the same figure
    from convlab.data import open_dataset
    from convlab.train import evaluate

    saved = load_checkpoint(path)
    model = saved.build_model()
    result = evaluate(model, open_dataset("fashion-mnist-mini", split="test"))
    assert result.correct == int(match.group(2)) and f"{result.accuracy:.4f}" == match.group(1)
    assert result.confusion.sum() == 2000
    assert saved.step == 4 and saved.config["recipe"] == "default"


def test_sigint_stops_after_the_batch_writes_a_checkpoint_and_resumes_exactly(tmp_path):
    interrupted = tmp_path / "interrupted.safetensors"
    argv = ["lenet_bn", "--limit", "256", "--batch-size", "32", "--epochs", "50", "--seed", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "convlab.train", *argv, "--checkpoint", str(interrupted)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = child.stdout.readline()  # "training lenet_bn on 256 examples ...": the loop has started
        assert first.startswith("training lenet_bn"), first + child.stderr.read()
        time.sleep(1.5)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert f"resume with --resume {interrupted}" in out
    step = load_checkpoint(interrupted).step
    assert 0 < step < 50 * 8
    # resume to step + 3 and compare with a run that was never interrupted
    target = str(step + 3)
    straight = tmp_path / "straight.safetensors"
    assert main(["train", *argv, "--steps", target, "--checkpoint", str(straight), "--quiet"]) == 0
    assert main(["train", "lenet_bn", "--resume", str(interrupted), "--steps", target, "--checkpoint",
                 str(interrupted), "--quiet"]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(interrupted)
    assert a.step == b.step == step + 3
    for key in a.model_state:
        assert np.array_equal(a.model_state[key], b.model_state[key]), key
