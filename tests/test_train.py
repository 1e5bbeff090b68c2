"""convlab.train.fit and evaluate: what a user sees (the printed accuracy, the confusion matrix), modes, resuming
bit for bit (after an epoch, mid-epoch, after Ctrl-C), the NaN stop that keeps the last good checkpoint.

Tiny runs: 96 bundled training images in batches of 32 (3 steps an epoch) and 64 test images.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

pytest.importorskip("safetensors")

from convlab import models, nn
from convlab.data import open_dataset
from convlab.train import Evaluation, evaluate, fit, recipes
from convlab.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def data():
    train = open_dataset("fashion-mnist-mini", split="train")
    test = open_dataset("fashion-mnist-mini", split="test")
    return train.subset(np.arange(96)), test.subset(np.arange(64))


class ModeSpy(nn.Identity):
    """Records ``self.training`` at every forward (Identity: no parameters, reusable)."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, input):
        self.modes.append(self.training)
        return super().forward(input)


def small_model(seed: int = 0) -> nn.Module:
    """Conv, BatchNorm, ReLU, max pool, Dropout, Linear: every kind of state a resume must carry."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4), ModeSpy(),
        nn.Flatten(), nn.Dropout(0.3, rng=rng), nn.Linear(4 * 7 * 7, 10, rng=rng))


RECIPE = dict(epochs=2, batch_size=32, optimizer="adam", lr=3e-3, schedule="cosine", warmup=1, augment="flip",
              seed=3, progress=False)


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_bit_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(data):
    model = small_model()
    history = fit(model, *data, **RECIPE)
    assert history.stopped == "completed" and history.step == 6
    return weights(model), history


# --------------------------------------------------------------------------- resuming


@pytest.mark.parametrize("stop_at", [3, 4], ids=["after-epoch-1", "mid-epoch-2"])
def test_resume_ends_with_the_uninterrupted_weights(data, uninterrupted, tmp_path, stop_at):
    path = tmp_path / "run.safetensors"
    first = small_model()
    history = fit(first, *data, **RECIPE, checkpoint=path, steps=stop_at)
    assert history.stopped == "steps" and history.step == stop_at
    assert f"--resume {path}" in history.message
    assert load_checkpoint(path).step == stop_at
    second = small_model(seed=99)  # other initial weights: everything must come from the checkpoint
    resumed = fit(second, *data, **RECIPE, checkpoint=path, resume=path)
    assert resumed.stopped == "completed" and resumed.step == 6
    assert_bit_equal(weights(second), uninterrupted[0])
    # the test accuracy of the resumed run's last epoch is the uninterrupted run's
    assert resumed.epochs[-1].test_accuracy == uninterrupted[1].epochs[-1].test_accuracy


def test_keyboard_interrupt_writes_a_checkpoint_that_resumes_exactly(data, uninterrupted, tmp_path):
    class CtrlC:
        def on_batch_end(self, run, result):
            if run.step == 2:
                raise KeyboardInterrupt

    path = tmp_path / "ctrl-c.safetensors"
    out = io.StringIO()
    history = fit(small_model(), *data, **{**RECIPE, "progress": True}, checkpoint=path, callbacks=[CtrlC()],
                  file=out)
    assert history.stopped == "interrupted" and history.step == 2
    assert load_checkpoint(path).step == 2
    assert f"resume with --resume {path}" in out.getvalue()
    model = small_model(seed=5)
    fit(model, *data, **RECIPE, resume=path)
    assert_bit_equal(weights(model), uninterrupted[0])


def test_interrupt_without_checkpoint_writes_one_in_the_logdir(data, tmp_path):
    class CtrlC:
        def on_batch_end(self, run, result):
            raise KeyboardInterrupt

    history = fit(small_model(), *data, **RECIPE, logdir=tmp_path / "logs", callbacks=[CtrlC()])
    assert history.checkpoint == str(tmp_path / "logs" / "interrupted.safetensors")
    assert load_checkpoint(history.checkpoint).step == 1


def test_resume_of_another_run_is_refused(data, tmp_path):
    path = tmp_path / "run.safetensors"
    fit(small_model(), *data, **RECIPE, checkpoint=path, steps=1)
    with pytest.raises(ValueError, match=r"`resume` .* is another run: seed 3 in the checkpoint, 4 now"):
        fit(small_model(), *data, **{**RECIPE, "seed": 4}, resume=path)


def test_an_existing_checkpoint_is_not_overwritten(data, tmp_path):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        fit(small_model(), *data, **RECIPE, checkpoint=path)
    assert path.read_bytes() == b"precious"
    fit(small_model(), *data, **RECIPE, checkpoint=path, steps=1, overwrite=True)
    assert load_checkpoint(path).step == 1


# --------------------------------------------------------------------------- NaN


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    class Poison:
        def on_batch_end(self, run, result):
            if run.step == 4:  # inside epoch 2, after the epoch-1 checkpoint
                run.model[7].weight.data[...] = np.nan  # the logits become NaN

    path = tmp_path / "run.safetensors"
    model = small_model()
    history = fit(model, *data, **RECIPE, checkpoint=path, callbacks=[Poison()])
    assert history.stopped == "nan" and history.step == 4
    assert re.search(r"the loss became nan at step 5 \(epoch 2, batch 1\).*Lower the learning rate \(--lr, now "
                     r"0.003\); the last good checkpoint stays at", history.message)
    saved = load_checkpoint(path)
    assert saved.step == 3 and all(np.isfinite(v).all() for v in saved.model_state.values())


def test_a_nan_gradient_with_a_finite_loss_also_stops(data):
    class Poison:
        def on_batch_end(self, run, result):
            run.model[0].weight.data[...] = np.nan  # ReLU turns NaN into 0: the loss stays finite

    history = fit(small_model(), *data, **RECIPE, callbacks=[Poison()])
    assert history.stopped == "nan" and history.step == 1
    assert re.search(r"a gradient became NaN or infinite \(the loss was [0-9.]+\) at step 2", history.message)


def test_a_huge_learning_rate_stops_with_the_step_and_a_suggestion(data):
    history = fit(small_model(), *data, epochs=3, batch_size=32, optimizer="sgd", lr=1e6, seed=0, progress=False)
    assert history.stopped == "nan"
    assert re.search(r"the loss became (nan|inf) at step \d+ .*Lower the learning rate \(--lr, now 1e\+06\)",
                     history.message)
    assert history.step < 9


# --------------------------------------------------------------------------- evaluation and what is printed


def test_evaluate_confusion_matrix_and_per_class(data):
    model = small_model()
    model.train()
    result = evaluate(model, data[1], batch_size=20)
    assert isinstance(result, Evaluation)
    assert model.training  # the mode is restored
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == len(data[1]) == result.count
    assert result.confusion.sum(axis=1).tolist() == np.bincount(data[1].labels, minlength=10).tolist()
    model.eval()
    with nn.no_grad():
        predicted = model(data[1].images.astype(np.float32) / 255).argmax(axis=1)
    assert result.correct == int(np.sum(predicted == data[1].labels))
    assert result.accuracy == result.correct / len(data[1])
    expected = np.bincount(data[1].labels[predicted == data[1].labels], minlength=10) / np.bincount(
        data[1].labels, minlength=10)
    np.testing.assert_array_equal(result.per_class, expected)


def test_training_and_evaluation_modes(data):
    model = small_model()
    fit(model, *data, **{**RECIPE, "epochs": 1})
    spy = model[4]
    # 3 training batches (train mode), then the test set in one batch of 256 (eval mode)
    assert spy.modes == [True, True, True, False]


def test_the_printed_accuracy_is_evaluates(data):
    out = io.StringIO()
    model = small_model()
    history = fit(model, *data, **{**RECIPE, "progress": True}, file=out)
    direct = evaluate(model, data[1])
    text = out.getvalue()
    assert f"test accuracy {direct.accuracy:.4f} ({direct.correct}/{direct.count})" in text
    assert history.evaluation.accuracy == direct.accuracy
    np.testing.assert_array_equal(history.evaluation.confusion, direct.confusion)
    assert "confusion matrix" in text and "Ankle boot" in text
    assert "epoch 2/2: train loss" in text


def test_d2l_recipe_initialises_with_xavier():
    model = models.create("lenet", rng=0)
    recipes.initialize(model, "xavier", np.random.default_rng(0))
    weight = model[0].weight.data  # (6, 1, 5, 5): fan_in 25, fan_out 150
    bound = np.sqrt(6 / (25 + 150))
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound
    assert recipes.get("d2l").lr == 0.9 and recipes.get("d2l").batch_size == 256


@pytest.mark.parametrize(("name", "value", "message"), [
    ("batch_size", 0, r"`batch_size` \(=0\) must be an int >= 1"),
    ("lr", float("nan"), r"`lr` \(=nan\) must be a finite number > 0"),
    ("optimizer", "rmsprop", r"`optimizer` \(='rmsprop'\) must be one of sgd, adam, adamw"),
    ("epochs", 0, r"`epochs` \(=0\) must be an int >= 1"),
])
def test_fit_refuses_bad_values(data, name, value, message):
    with pytest.raises(ValueError, match=message):
        fit(small_model(), *data, **{**RECIPE, name: value})


def test_tensorboard_tags_read_back(data, tmp_path):
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    model = small_model()
    history = fit(model, *data, **RECIPE, logdir=tmp_path)
    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0,
                                                                            "histograms": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("loss/train", "accuracy/train", "lr", "loss/test", "accuracy/test", "epoch/accuracy/test"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3, 4, 5, 6]
    test_accuracy = events.Scalars("accuracy/test")
    assert [e.step for e in test_accuracy] == [3, 6]
    assert [round(e.value, 6) for e in test_accuracy] == [round(r.test_accuracy, 6) for r in history.epochs]
    assert "inputs" in tags["images"] and "kernels/0" in tags["images"]
    assert any(t.startswith("features/0/") for t in tags["images"])
    assert "weights/0.weight" in tags["histograms"] and "gradients/7.weight" in tags["histograms"]
    # metrics.jsonl holds the same per-step losses, without TensorBoard
    from convlab.train.board import read_metrics

    losses = [r["value"] for r in read_metrics(tmp_path, "loss/train")]
    assert np.allclose(losses, [e.value for e in events.Scalars("loss/train")], rtol=1e-6)


# --------------------------------------------------------------------------- the worked examples


def test_tensorboard_example_logs_each_channel_as_its_own_image(tmp_path):
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from convlab.examples import tensorboard_conv

    result = tensorboard_conv.run(io.StringIO(), logdir=str(tmp_path), batches=1)
    assert result.input_shape == (64, 3, 28, 28) and result.output_shape == (64, 6, 26, 26)
    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["input"] + [f"output/channel_{c}" for c in range(6)]
    image = events.Images("output/channel_3")[0]
    assert image.step == 0 and image.width > 26 and image.height > 26  # a grid of the 64 maps of channel 3
    # the six channels are six different images (the seed's reshape would have mixed them)
    assert len({events.Images(f"output/channel_{c}")[0].encoded_image_string for c in range(6)}) == 6


def test_channel_images_scale_each_channel_alone():
    from convlab.examples.tensorboard_conv import channel_images

    maps = np.stack([np.full((2, 3, 3), 10.0), np.arange(18.0).reshape(2, 3, 3)], axis=1)  # (2, 2, 3, 3)
    first, second = channel_images(maps)
    assert first.shape == (2, 1, 3, 3) and np.all(first == 0)  # a constant channel stays black
    assert second.min() == 0 and second.max() == 1 and np.allclose(second.reshape(-1), np.arange(18) / 17)


def test_lenet_d2l_example_runs_the_books_recipe():
    from convlab.examples import lenet_d2l

    out = io.StringIO()
    result = lenet_d2l.run(out, limit=512, epochs=1)
    assert len(result.train_loss) == 1 and 0 <= result.test_accuracy[0] <= 1
    assert "SGD lr 0.9, batch 256" in out.getvalue()
    first = result.model[0].weight.data  # Xavier-uniform from the start, then 2 steps of SGD: within the bound
    assert np.abs(first).max() < 1.05 * np.sqrt(6 / (25 + 150))


def test_plain_text_tables_without_rich(data, monkeypatch):
    from convlab.train import progress

    monkeypatch.setattr(progress, "_rich_console", lambda file: None)
    out = io.StringIO()
    model = small_model()
    fit(model, *data, **{**RECIPE, "epochs": 1, "progress": True}, file=out)
    text = out.getvalue()
    direct = evaluate(model, data[1])
    rows = text.split("confusion matrix (rows: true class, columns: predicted)\n")[1].splitlines()[1:]
    counts = np.array([[int(v) for v in row.split()[-10:]] for row in rows])
    np.testing.assert_array_equal(counts, direct.confusion)
    assert f"test accuracy {direct.accuracy:.4f} ({direct.correct}/64)" in text
    assert "epoch 1/1: train loss" in text and "ex/s" in text


def test_a_training_step_skips_the_data_gradient_and_leaves_the_model_as_it_was():
    from convlab.ops.algorithms import trace
    from convlab.train.engine import NumpyEngine, data_layer

    model = models.create("lenet", rng=0)
    first = data_layer(model)
    assert first is model.get_submodule("0") and first.needs_input_grad
    engine = NumpyEngine(model, optimizer="sgd", lr=0.1)
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    y = np.arange(4)
    with trace() as events:
        engine.train_step(x, y)
    grads = [e for e in events if e.op == "Conv2d.backward"]
    assert [e.role for e in grads].count("input_grad") == 1  # the second conv's, not the first's
    assert first.needs_input_grad  # restored: the caller's model still gives input gradients
    out = model(x)
    assert model.backward(np.ones_like(out)).shape == x.shape


def test_fit_and_evaluate_give_a_float64_model_float64_batches():
    data = open_dataset("fashion-mnist-mini").subset(np.arange(64))
    model = models.create("lenet", rng=0, dtype=np.float64)
    history = fit(model, data, data, epochs=1, batch_size=32, optimizer="sgd", lr=0.01, progress=False)
    assert history is not None
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    assert evaluate(model, data, batch_size=32).count == 64
