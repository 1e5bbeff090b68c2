"""TensorBoard logging (convlab.train.board): what tensorboard's EventAccumulator and metrics.jsonl read back."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from convlab import models, nn
from convlab.train import board as board_module
from convlab.train.board import (
    Board,
    capture_outputs,
    check_logdir,
    image_grid,
    kernel_tiles,
    read_metrics,
    to_uint8,
)

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
PIL_Image = pytest.importorskip("PIL.Image")


def _events(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "histograms": 0,
                                                               "tensors": 0, "compressedHistograms": 0})
    accumulator.Reload()
    return accumulator


def _png(event):
    image = PIL_Image.open(io.BytesIO(event.encoded_image_string))
    return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- scalars and metrics.jsonl


def test_scalars_per_step_and_per_epoch_read_back_from_events_and_metrics(tmp_path):
    with Board(tmp_path) as board:
        for step in range(3):
            board.scalars(step, {"loss/train": 1.0 / (step + 1), "accuracy/train": 0.1 * step}, epoch=0)
            board.lr(step, [0.1 * 0.5**step, 0.01])
        board.scalars(2, {"loss/test": 0.75, "accuracy/test": 0.625}, epoch=0)
        board.epoch_scalars(0, {"loss/train": 0.6, "accuracy/test": 0.625}, step=2)
        board.scalars(3, **{"loss/train": np.float32(0.25)})
    events = _events(tmp_path)
    assert set(events.Tags()["scalars"]) == {"loss/train", "accuracy/train", "lr", "lr/group1", "loss/test",
                                             "accuracy/test", "epoch/loss/train", "epoch/accuracy/test"}
    loss = events.Scalars("loss/train")
    assert [e.step for e in loss] == [0, 1, 2, 3]
    assert [e.value for e in loss] == [np.float32(v) for v in (1.0, 0.5, 1 / 3, 0.25)]
    assert [(e.step, e.value) for e in events.Scalars("lr")] == [(s, np.float32(0.1 * 0.5**s)) for s in range(3)]
    assert [e.value for e in events.Scalars("lr/group1")] == [np.float32(0.01)] * 3
    assert [(e.step, e.value) for e in events.Scalars("epoch/loss/train")] == [(0, np.float32(0.6))]

    records = read_metrics(tmp_path)
    assert [r["tag"] for r in records[:4]] == ["loss/train", "accuracy/train", "lr", "lr/group1"]
    first = records[0]
    assert first == {"tag": "loss/train", "step": 0, "epoch": 0, "value": 1.0, "wall_time": first["wall_time"]}
    assert first["wall_time"] == pytest.approx(loss[0].wall_time, abs=1e-6)  # the same instant in both files
    assert [r["value"] for r in read_metrics(tmp_path, "loss/train")] == [1.0, 0.5, 1 / 3, 0.25]  # float64 exact
    assert read_metrics(tmp_path, "lr")[1]["epoch"] is None
    assert read_metrics(tmp_path, "epoch/loss/train") == [
        {"tag": "epoch/loss/train", "step": 2, "epoch": 0, "value": 0.6,
         "wall_time": read_metrics(tmp_path, "epoch/loss/train")[0]["wall_time"]}]


def test_metrics_are_on_disk_after_each_write(tmp_path):
    board = Board(tmp_path)
    board.scalars(7, {"loss/train": 2.5})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()  # before close() or flush()
    assert [json.loads(line)["value"] for line in lines] == [2.5]
    board.close()
    board.close()  # a second close is a no-op
    with pytest.raises(ValueError, match="is closed"):
        board.scalars(8, {"loss/train": 1.0})


def test_a_nan_loss_is_logged_as_nan(tmp_path):
    with Board(tmp_path) as board:
        board.scalars(0, {"loss/train": float("nan")})
    assert np.isnan(read_metrics(tmp_path)[0]["value"])
    assert np.isnan(_events(tmp_path).Scalars("loss/train")[0].value)


def test_read_metrics_skips_a_cut_last_line_and_names_a_bad_one(tmp_path):
    with Board(tmp_path) as board:
        board.scalars(0, {"loss/train": 1.0})
        board.scalars(1, {"loss/train": 0.5})
    path = tmp_path / "metrics.jsonl"
    good = path.read_text()
    path.write_text(good + '{"tag": "loss/train", "st')  # a run killed while writing
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1]
    path.write_text(good.replace('"step": 1', '"step": 1,,', 1))
    with pytest.raises(ValueError, match=r"metrics\.jsonl' line 2 is not a metrics record"):
        read_metrics(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        read_metrics(tmp_path / "elsewhere")


def test_resuming_with_purge_step_drops_the_later_records(tmp_path):
    # both boards open within the same second: tensorboardX alone would give them one event file name
    with Board(tmp_path) as board:
        for step in range(6):
            board.scalars(step, {"loss/train": float(step)})
    with Board(tmp_path, purge_step=3) as board:
        for step in range(3, 5):
            board.scalars(step, {"loss/train": 10.0 + step})
    assert [(r["step"], r["value"]) for r in read_metrics(tmp_path)] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0)]
    assert [(e.step, e.value) for e in _events(tmp_path).Scalars("loss/train")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0)]


def test_bad_scalars_are_named(tmp_path):
    with Board(tmp_path) as board:
        with pytest.raises(ValueError, match=r"`step` \(=-1\) must be >= 0"):
            board.scalars(-1, {"loss/train": 1.0})
        with pytest.raises(TypeError, match=r"the value of 'loss/train' must be a real number, got 'low'"):
            board.scalars(0, {"loss/train": "low"})
        with pytest.raises(ValueError, match="a tag must be a non-empty str, got ''"):
            board.scalars(0, {"": 1.0})
        with pytest.raises(TypeError, match=r"`step` must be an int, got 1\.5"):
            board.scalars(1.5, {"loss/train": 1.0})
    assert read_metrics(tmp_path) == []


# --------------------------------------------------------------------------- the logdir


def test_the_logdir_is_created_and_refused_when_it_cannot_be_written(tmp_path, monkeypatch):
    assert check_logdir(tmp_path / "runs" / "one") == str(tmp_path / "runs" / "one")
    assert (tmp_path / "runs" / "one").is_dir() and os.listdir(tmp_path / "runs" / "one") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"`logdir` \(='.*file'\) is a file, not a folder"):
        Board(tmp_path / "file")
    with pytest.raises(ValueError, match=r"`logdir` \(='.*file/sub'\) cannot be created"):
        Board(tmp_path / "file" / "sub")
    with pytest.raises(ValueError, match=r"`logdir` \(=''\) must name a folder"):
        check_logdir("")

    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(ValueError, match=r"`logdir` \(='.*locked'\) is not writable \(Permission denied\)"):
        Board(tmp_path / "locked")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_logdir_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match=r"`logdir` \(='.*ro'\) is not writable"):
            Board(folder)
    finally:
        folder.chmod(0o700)


# --------------------------------------------------------------------------- image_grid


def test_image_grid_places_tiles_like_torchvision_make_grid():
    batch = np.arange(3 * 1 * 2 * 3, dtype=np.float32).reshape(3, 1, 2, 3)
    grid = image_grid(batch, nrow=2, padding=1, pad_value=-1)
    # 2 columns, ceil(3/2) = 2 rows: height 2 * (2 + 1) + 1 = 7, width 2 * (3 + 1) + 1 = 9, grey -> 3 channels
    assert grid.shape == (3, 7, 9) and grid.dtype == np.float32
    assert np.array_equal(grid[0], grid[1]) and np.array_equal(grid[0], grid[2])
    expected = np.full((7, 9), -1, dtype=np.float32)
    expected[1:3, 1:4] = batch[0, 0]
    expected[1:3, 5:8] = batch[1, 0]
    expected[4:6, 1:4] = batch[2, 0]
    expected[4:6, 5:8] = -1  # the empty last cell keeps pad_value
    assert np.array_equal(grid[0], expected)


def test_image_grid_normalizes_by_batch_each_image_or_a_range():
    batch = np.stack([np.full((3, 1, 1), 2.0), np.full((3, 1, 1), 6.0), np.array([[[0.0]], [[4.0]], [[8.0]]])])
    whole = image_grid(batch, nrow=3, padding=0, normalize=True)
    assert np.allclose(whole[:, 0, :], [[0.25, 0.75, 0.0], [0.25, 0.75, 0.5], [0.25, 0.75, 1.0]])
    each = image_grid(batch, nrow=3, padding=0, normalize=True, scale_each=True)
    assert np.allclose(each[:, 0, :], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 1.0]])  # constants -> 0
    ranged = image_grid(batch, nrow=3, padding=0, normalize=True, value_range=(2.0, 6.0))
    assert np.allclose(ranged[:, 0, :], [[0.0, 1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 1.0, 1.0]])  # clipped first
    assert np.array_equal(batch[2, :, 0, 0], [0.0, 4.0, 8.0])  # the input is not modified


def test_image_grid_of_one_image_has_no_padding_and_bad_arguments_are_named():
    single = np.random.default_rng(0).random((3, 4, 5))
    assert np.array_equal(image_grid(single, padding=3), single)
    with pytest.raises(ValueError, match=r"`nrow` \(=0\) must be >= 1"):
        image_grid(single, nrow=0)
    with pytest.raises(ValueError, match=r"`batch` must be \(B, C, H, W\), \(C, H, W\) or \(H, W\), got shape"):
        image_grid(np.zeros((1, 1, 1, 2, 2)))
    with pytest.raises(ValueError, match="finite low < high"):
        image_grid(single, normalize=True, value_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="more than the memory budget"):
        image_grid(np.zeros((2, 3, 2, 2)), padding=10**6)


def test_to_uint8_rounds_like_torchvision_save_image():
    image = np.array([[[0.0, 0.001, 0.998, 1.0, -3.0, 7.0, np.nan]]])
    assert to_uint8(image)[0, :, 0].tolist() == [0, 0, 254, 255, 0, 255, 0]


# --------------------------------------------------------------------------- images in the events


def test_an_input_batch_is_written_as_the_grid_png(tmp_path):
    batch = np.random.default_rng(0).random((5, 3, 6, 7)).astype(np.float32)
    with Board(tmp_path) as board:
        written = board.images(4, batch, nrow=3)
        board.images(5, (batch * 255).astype(np.uint8)[:, :1], tag="grey", normalize=False)
    (event,) = _events(tmp_path).Images("inputs")
    expected = to_uint8(image_grid(batch, nrow=3, normalize=True))
    assert event.step == 4 and (event.height, event.width) == (2 * 8 + 2, 3 * 9 + 2) == expected.shape[:2]
    assert np.array_equal(_png(event), expected) and np.array_equal(written, expected)
    (grey,) = _events(tmp_path).Images("grey")
    pixels = _png(grey)
    assert np.array_equal(pixels[2:8, 2:9, 0], (batch * 255).astype(np.uint8)[0, 0])  # uint8 values kept
    with Board(tmp_path) as board, pytest.raises(ValueError, match=r"C 1 or 3, got shape \(2, 4, 3, 3\)"):
        board.images(0, np.zeros((2, 4, 3, 3)))


def _tiny_cnn(rng, in_channels=3):
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.5, rng=rng), nn.Flatten(), nn.Linear(4 * 5 * 5, 2, rng=rng))


def test_feature_maps_show_each_channel_of_the_layer_outputs(tmp_path):
    rng = np.random.default_rng(0)
    model = _tiny_cnn(rng)
    model[1].eval()  # a module left in its own mode keeps it
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    with Board(tmp_path) as board:
        board.feature_maps(9, model, x, ["0", "2"])
    assert model.training and model[0].training and not model[1].training
    assert all("forward" not in m.__dict__ for m in model.modules())
    with nn.no_grad():
        model.eval()
        conv = model[0](x)
        relu = model[2](model[1](conv))
        model.train()
        model[1].eval()
    events = _events(tmp_path)
    assert sorted(events.Tags()["images"]) == ["features/0/0", "features/0/1", "features/2/0", "features/2/1"]
    for tag, maps in (("features/0/1", conv[1]), ("features/2/0", relu[0])):
        (event,) = events.Images(tag)
        assert event.step == 9 and (event.height, event.width) == (2 * 6 + 1, 2 * 6 + 1)
        pixels = _png(event)[:, :, 0]
        for c in range(4):  # each channel its own tile, scaled to its own range
            y, xx = divmod(c, 2)
            tile = pixels[1 + 6 * y:6 + 6 * y, 1 + 6 * xx:6 + 6 * xx]
            channel = maps[c].astype(np.float64)
            span = max(channel.max() - channel.min(), 1e-5)
            assert np.array_equal(tile, np.clip((channel - channel.min()) / span * 255 + 0.5, 0, 255)
                                  .astype(np.uint8)), (tag, c)


def test_capture_outputs_reaches_inside_any_model():
    model = models.create("resnet18_cifar", rng=0, dtype="float64").eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32))
    outputs = capture_outputs(model, x, ["layer1.0.conv1", "layer2"])
    with nn.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        first = model.layer1[0].conv1(stem)
    assert np.array_equal(outputs["layer1.0.conv1"], first)
    assert outputs["layer2"].shape == (1, 128, 16, 16)
    with pytest.raises(ValueError, match="has no child 'nope'"):
        capture_outputs(model, x, ["layer1.nope"])
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_the_first_layer_kernels_are_colour_patches_for_rgb_inputs(tmp_path):
    rng = np.random.default_rng(3)
    model = _tiny_cnn(rng)
    with Board(tmp_path) as board:
        board.kernels(2, model)
    (event,) = _events(tmp_path).Images("kernels/0")
    pixels = _png(event)
    zoom = 32 // 3  # 3x3 kernels enlarged 10x
    assert (event.height, event.width) == (2 * (3 * zoom + 1) + 1, 2 * (3 * zoom + 1) + 1)
    weight = model[0].weight.data.astype(np.float64)
    for k in range(4):
        w = weight[k]
        normalised = (w - w.min()) / (w.max() - w.min())  # each kernel to its own range
        expected = np.clip(normalised * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        expected = np.repeat(np.repeat(expected, zoom, axis=0), zoom, axis=1)
        y, x = divmod(k, 2)
        top, left = 1 + y * (3 * zoom + 1), 1 + x * (3 * zoom + 1)
        assert np.array_equal(pixels[top:top + 3 * zoom, left:left + 3 * zoom], expected), k


def test_kernels_of_other_input_counts_are_grey_tiles_one_row_per_output_channel(tmp_path):
    model = _tiny_cnn(np.random.default_rng(4), in_channels=2)
    tiles, nrow, scale_each = kernel_tiles(model[0].weight.data)
    assert tiles.shape == (8, 1, 30, 30) and nrow == 2 and not scale_each
    with Board(tmp_path) as board:
        board.kernels(0, model, layer="0")
        with pytest.raises(ValueError, match=r"'5' \(Linear\) has no 2-d convolution weight"):
            board.kernels(0, model, layer="5")
        with pytest.raises(ValueError, match="has no Conv2d layer"):
            board.kernels(0, nn.Sequential(nn.Linear(2, 2)))
    (event,) = _events(tmp_path).Images("kernels/0")
    assert (event.height, event.width) == (4 * 31 + 1, 2 * 31 + 1)
    pixels = _png(event)[:, :, 0]
    weight = model[0].weight.data.astype(np.float64)
    low, high = weight.min(), weight.max()  # one range for the layer
    expected = np.clip((weight[1, 0] - low) / (high - low) * 255 + 0.5, 0, 255).astype(np.uint8)  # row 1, col 0
    assert np.array_equal(pixels[32:62:10, 1:31:10], expected)


def test_feature_maps_of_a_non_spatial_layer_are_refused(tmp_path):
    model = _tiny_cnn(np.random.default_rng(0))
    with Board(tmp_path) as board, pytest.raises(ValueError, match=r"the output of '5' has shape \(1, 2\), not a "
                                                                   r"feature map"):
        board.feature_maps(0, model, np.zeros((1, 3, 5, 5), np.float32), ["5"])


# --------------------------------------------------------------------------- histograms and configuration


def test_histograms_of_weights_and_gradients(tmp_path):
    rng = np.random.default_rng(5)
    model = _tiny_cnn(rng)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    y = model(x)
    model.backward(np.ones_like(y))
    model[5].bias.grad = None  # no gradient: no gradient histogram
    model[5].weight.data[0, :3] = np.nan  # non-finite entries are left out
    with Board(tmp_path) as board:
        board.histograms(6, model)
    events = _events(tmp_path)
    names = [name for name, _ in model.named_parameters()]
    assert set(events.Tags()["histograms"]) == {f"weights/{n}" for n in names} | {
        f"gradients/{n}" for n in names if n != "5.bias"}
    for name, param in model.named_parameters():
        (event,) = events.Histograms(f"weights/{name}")
        values = param.data.astype(np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        h = event.histogram_value
        assert event.step == 6 and h.num == values.size == sum(h.bucket)
        assert (h.min, h.max) == (values.min(), values.max())
        assert h.sum == pytest.approx(values.sum(), rel=1e-9, abs=1e-12)
    (grad,) = events.Histograms("gradients/0.weight")
    assert grad.histogram_value.num == model[0].weight.size


def test_the_configuration_is_text_and_hparams(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    config = {"model": "lenet", "lr": 0.1, "epochs": 10, "augment": ["crop", "flip"], "optimizer": {"momentum": 0.9},
              "logdir": tmp_path}
    with Board(tmp_path) as board:
        board.config(config)
        board.scalars(0, {"accuracy/test": 0.5})
    events = _events(tmp_path)
    (text,) = events.Tensors("config/text_summary")
    shown = text.tensor_proto.string_val[0].decode()
    assert shown.startswith("```json\n") and json.loads(shown[len("```json\n"):-len("\n```")]) == {
        **config, "logdir": str(tmp_path)}
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.1 and start.hparams["model"].string_value == "lenet"
    assert start.hparams["optimizer.momentum"].number_value == 0.9
    assert start.hparams["augment"].string_value == '["crop", "flip"]'
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["accuracy/test", "loss/test"]
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")


def test_the_module_imports_tensorboardx_lazily():
    source = open(board_module.__file__, encoding="utf-8").read()
    head = source.split("def ", 1)[0]
    assert "import tensorboardX" not in head and "from tensorboardX" not in head
