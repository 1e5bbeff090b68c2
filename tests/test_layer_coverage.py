"""Every layer class of convlab.nn is known to the analysis and to both directions of the torch interop.

A class added to convlab.nn without an example here fails ``test_every_layer_class_has_an_example``;
with an example, the other tests say whether the analysis (no ``other`` node, no "walked as a
chain" note, shapes and parameter counts equal to the layer's own), ``to_torch`` and
``from_torch`` know it.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from convlab import nn
from convlab.analysis import analyze

RNG = np.random.default_rng(0)

# class name -> (a small instance, an input shape it takes)
EXAMPLES = {
    "Conv1d": (lambda: nn.Conv1d(2, 4, 3, rng=RNG), (1, 2, 9)),
    "Conv2d": (lambda: nn.Conv2d(2, 4, 3, padding=1, rng=RNG), (1, 2, 6, 6)),
    "Conv3d": (lambda: nn.Conv3d(2, 4, 3, rng=RNG), (1, 2, 5, 5, 5)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 4, 3, stride=2, rng=RNG), (1, 2, 5)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, rng=RNG), (1, 2, 4, 4)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 4, 2, stride=2, rng=RNG), (1, 2, 3, 3, 3)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), (1, 2, 8)),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (1, 2, 8, 8)),
    "MaxPool3d": (lambda: nn.MaxPool3d(2), (1, 2, 4, 4, 4)),
    "AvgPool1d": (lambda: nn.AvgPool1d(2), (1, 2, 8)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (1, 2, 8, 8)),
    "AvgPool3d": (lambda: nn.AvgPool3d(2), (1, 2, 4, 4, 4)),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), (1, 2, 7)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 7, 7)),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d(2), (1, 2, 5, 5, 5)),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(3), (1, 2, 7)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), (1, 2, 7, 7)),
    "AdaptiveMaxPool3d": (lambda: nn.AdaptiveMaxPool3d(2), (1, 2, 5, 5, 5)),
    "GlobalAvgPool": (lambda: nn.GlobalAvgPool(), (1, 2, 4, 4)),
    "GlobalMaxPool": (lambda: nn.GlobalMaxPool(), (1, 2, 4, 4)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(2), (2, 2, 5)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (1, 2, 4, 4)),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2), (1, 2, 3, 3, 3)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3), (1, 4, 3, 3)),
    "ReLU": (lambda: nn.ReLU(), (1, 2, 3, 3)),
    "ReLU6": (lambda: nn.ReLU6(), (1, 2, 3, 3)),
    "Sigmoid": (lambda: nn.Sigmoid(), (1, 2, 3, 3)),
    "Tanh": (lambda: nn.Tanh(), (1, 2, 3, 3)),
    "Hardswish": (lambda: nn.Hardswish(), (1, 2, 3, 3)),
    "Softmax": (lambda: nn.Softmax(dim=1), (2, 5)),
    "Linear": (lambda: nn.Linear(5, 3, rng=RNG), (2, 5)),
    "Dropout": (lambda: nn.Dropout(0.5), (2, 5)),
    "Flatten": (lambda: nn.Flatten(), (1, 2, 3, 3)),
    "Identity": (lambda: nn.Identity(), (1, 2, 3, 3)),
    "Upsample": (lambda: nn.Upsample(scale_factor=2), (1, 2, 3, 3)),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), (1, 4, 3, 3)),
    "ChannelSlice": (lambda: nn.ChannelSlice(1, 3), (1, 4, 3, 3)),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=RNG), nn.ReLU()), (1, 2, 4, 4)),
    "Residual": (lambda: nn.Residual(nn.Conv2d(2, 2, 3, padding=1, rng=RNG), None, nn.ReLU()), (1, 2, 4, 4)),
    "Concat": (lambda: nn.Concat(nn.Conv2d(2, 2, 1, rng=RNG), nn.Conv2d(2, 3, 1, rng=RNG)), (1, 2, 4, 4)),
}


def layer_classes() -> dict[str, type]:
    """Every Module subclass convlab.nn exports (the base class and the losses excluded).

    The losses (``convlab.nn.loss``) are modules but not layers: they take a target, end the graph
    and have no analysis node; tests/test_loss.py checks them against torch.
    """
    return {
        name: obj for name in nn.__all__
        if inspect.isclass(obj := getattr(nn, name)) and issubclass(obj, nn.Module) and obj is not nn.Module
        and obj.__module__ != "convlab.nn.loss"
    }


def test_every_layer_class_has_an_example():
    classes = layer_classes()
    missing = sorted(set(classes) - set(EXAMPLES))
    assert not missing, (
        f"convlab.nn exports {missing}, unknown to this test: add an example to EXAMPLES, then make the "
        "analysis (convlab.analysis.from_convlab) and convlab.interop.torch_convert know the class"
    )
    assert not sorted(set(EXAMPLES) - set(classes)), "EXAMPLES names classes convlab.nn no longer exports"
    for name, (make, _) in EXAMPLES.items():
        assert type(make()) is classes[name]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_analysis_knows_the_layer(name):
    make, shape = EXAMPLES[name]
    layer = make().eval()
    report = analyze(layer, shape)
    unknown = [(r.name, r.op) for r in report if r.kind == "other"]
    assert not unknown, f"the analysis does not know {name}: {unknown}"
    assert not any("walked as a chain" in note for note in report.notes), report.notes
    with nn.no_grad():
        assert report.output_shape == layer(np.zeros(shape, np.float32)).shape
    assert report.total_params == layer.num_parameters()
    assert report.total_buffers == sum(b.size for b in layer.buffers())
    assert report.warnings == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_torch_interop_knows_the_layer_both_ways(name):
    torch = pytest.importorskip("torch")
    from convlab.interop.torch import from_torch, to_torch

    make, shape = EXAMPLES[name]
    layer = make().eval()
    torch_layer = to_torch(layer)  # raises a TypeError naming the class when it has no rule
    back = from_torch(torch_layer)
    assert type(back) is type(layer), f"from_torch(to_torch({name})) gave a {type(back).__name__}"
    assert list(back.state_dict()) == list(layer.state_dict()) == list(torch_layer.state_dict())
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with nn.no_grad(), torch.no_grad():
        expected = layer(x)
        np.testing.assert_allclose(torch_layer(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(back.eval()(x), expected, rtol=1e-6, atol=1e-6)
