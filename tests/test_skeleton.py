"""convlab.nn.skeleton(): models with every layer and parameter shape but no weights (no memory, no draw)."""

from __future__ import annotations

import copy
import pickle
import tracemalloc

import numpy as np
import pytest

from convlab import models, nn
from convlab.analysis import analyze

MiB = 1 << 20


def weightless_everywhere(model: nn.Module) -> bool:
    arrays = [p.data for p in model.parameters()] + list(model.buffers())
    return bool(arrays) and all(
        nn.is_weightless(a) and not a.flags.writeable and all(s == 0 for s in a.strides) for a in arrays
    )


def test_vgg16_analysis_allocates_under_100_mb_and_gives_the_same_numbers():
    tracemalloc.start()
    try:
        report = analyze("vgg16", (1, 3, 224, 224))  # a zoo name is built inside nn.skeleton()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * MiB, f"analysing vgg16 allocated {peak / MiB:.0f} MiB"
    # the numbers of the analysis of the model built with its 138 million weights (as before nn.skeleton)
    assert report.total_params == 138_357_544
    assert report.total_macs == 15_470_264_320 and report.total_flops == 30_972_257_256
    assert report.output_shape == (1, 1000) and report["features.30"].output_shape == (1, 512, 7, 7)
    assert report.activation_bytes == 114_804_640


@pytest.mark.parametrize("name, size", [("resnet18", (3, 64, 64)), ("googlenet", (3, 96, 96)),
                                        ("shufflenet_v2_x1_0", (3, 64, 64)), ("mobilenet_v2", (3, 64, 64)),
                                        ("lenet", (1, 28, 28))])
def test_the_skeleton_report_is_the_real_models(name, size):
    real = analyze(models.create(name, input_size=size, rng=0), (2, *size))
    with nn.skeleton():
        model = models.create(name, input_size=size, rng=0)
    assert weightless_everywhere(model)
    assert model.num_parameters() == real.total_params
    assert analyze(model, (2, *size)).to_json() == real.to_json()
    assert analyze(name, (2, *size)).to_json() == real.to_json()


def test_parameters_have_their_shape_and_dtype_but_no_memory():
    with nn.skeleton():
        conv = nn.Conv2d(512, 512, 3, dtype=np.float64)
        fc = nn.Linear(25088, 4096)
        bn = nn.BatchNorm2d(64)
    assert conv.weight.shape == (512, 512, 3, 3) and conv.weight.dtype == np.float64
    assert fc.weight.shape == (4096, 25088) and fc.bias.shape == (4096,) and fc.weight.dtype == np.float32
    assert bn.running_mean.shape == (64,) and bn.num_batches_tracked.shape == ()
    for layer in (conv, fc, bn):
        assert weightless_everywhere(layer)
    assert repr(fc.weight) == "Parameter(shape=(4096, 25088), dtype=float32)"
    state = fc.state_dict()
    assert list(state) == ["weight", "bias"] and all(nn.is_weightless(v) for v in state.values())
    outside = nn.Linear(3, 2)  # the mode ends with the block
    assert not nn.is_weightless(outside.weight) and outside.weight.data.flags.writeable


def test_building_draws_nothing():
    rng = np.random.default_rng(0)
    state = copy.deepcopy(rng.bit_generator.state)
    with nn.skeleton():
        models.create("resnet18", input_size=(3, 32, 32), rng=rng)
        nn.init.kaiming_normal_(nn.Parameter.empty((4, 3, 3, 3)), rng=rng)  # a skeleton's parameter: skipped
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(3, 4, 3), (1, 3, 8, 8)),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(5, 2)), (1, 5)),
    (lambda: nn.BatchNorm2d(3).eval(), (1, 3, 4, 4)),
])
def test_calling_a_skeleton_raises_a_clear_error(make, shape):
    with nn.skeleton():
        model = make()
    with pytest.raises(ValueError, match=r"built without weights \(inside convlab\.nn\.skeleton\(\)\): its "
                                         r"(parameter|buffer) '\w+' has the shape .* but no values"):
        model(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"\.backward: this layer was built without weights"):
        model.backward(np.zeros((1, 2), np.float32))


def test_load_state_dict_gives_a_skeleton_its_weights():
    real = models.create("lenet", rng=0).eval()
    with nn.skeleton():
        model = models.create("lenet", rng=1)
    model.load_state_dict(real.state_dict())
    assert not any(nn.is_weightless(p) for p in model.parameters())
    assert all(p.data.flags.writeable for p in model.parameters())
    x = np.random.default_rng(2).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(model.eval()(x), real(x))
    with pytest.raises(ValueError, match="has shape"):  # shapes are checked as for any model
        with nn.skeleton():
            nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 4)), "bias": np.zeros(2)})


def test_a_skeleton_stays_weightless_when_cast_copied_or_pickled():
    with nn.skeleton():
        model = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.Linear(1000, 1000))
    model.to(np.float64)
    assert weightless_everywhere(model) and model[0].weight.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64
    clone = copy.deepcopy(model)
    assert weightless_everywhere(clone)
    data = pickle.dumps(model)
    assert len(data) < 20_000  # shapes and dtypes, not 1,037,000 zeros
    assert weightless_everywhere(pickle.loads(data))
    model[1].reset_parameters()  # nothing to reset, and no error
    nn.init.constant_(model[0].weight, 1.0)
    assert weightless_everywhere(model)


def test_every_zoo_model_is_analysed_at_its_default_input_in_under_100_mb():
    for name in models.list():
        size = tuple(models.defaults(name)["input_size"])
        tracemalloc.start()
        try:
            analyze(name, (1, *size))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 100 * MiB, f"analysing {name} at {size} allocated {peak / MiB:.0f} MiB"
