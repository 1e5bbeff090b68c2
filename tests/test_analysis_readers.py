"""How convlab.analysis.analyze dispatches: graphs, convlab.nn models, zoo names and registered readers.

The analysis sits below convlab.interop and never imports it; the torch reader is
registered by convlab.interop when that is imported.
"""

from __future__ import annotations

import ast
import itertools
import pathlib

import numpy as np
import pytest

import convlab.analysis
from convlab import models, nn
from convlab.analysis import Graph, analyze, analyze_graph, find_reader, register_reader, unregister_reader
from convlab.analysis.readers import readers


class Toy:
    """A model of some other framework: two conv layers described by a list."""

    def __init__(self, channels: list[int]) -> None:
        self.channels = channels


def read_toy(model, input_shape, *, itemsize=4, batched=None, stride=1):
    from convlab.spec import ConvSpec

    g = Graph()
    x = g.input()
    for i, (c_in, c_out) in enumerate(itertools.pairwise(model.channels)):
        x = g.add("conv", f"conv{i}", x, spec=ConvSpec(3, stride=stride, padding=1, ndim=2), in_channels=c_in,
                  out_channels=c_out)
    return analyze_graph(g, input_shape, itemsize=itemsize, batched=batched, model_name="Toy")


@pytest.fixture
def toy_reader():
    register_reader(lambda model: isinstance(model, Toy), read_toy, name="toy")
    yield
    unregister_reader("toy")


def test_a_registered_reader_reads_its_models(toy_reader):
    report = analyze(Toy([3, 8, 4]), (1, 3, 16, 16))
    assert report.model_name == "Toy" and report.output_shape == (1, 4, 16, 16)
    assert report.total_params == 3 * 8 * 9 + 8 * 4 * 9
    # options analyze() does not know go to the reader; itemsize and batched too
    strided = analyze(Toy([3, 8]), (3, 16, 16), stride=2, itemsize=2)
    assert strided.output_shape == (8, 8, 8) and not strided.batched and strided.itemsize == 2
    assert find_reader(Toy([1])) is read_toy and find_reader(nn.ReLU()) is None


def test_registering_a_name_again_replaces_it_and_unregistering_removes_it(toy_reader):
    def other(model, input_shape, **options):
        raise AssertionError("not this one")

    register_reader(lambda model: isinstance(model, Toy), other, name="toy")
    assert [r.name for r in readers()].count("toy") == 1 and find_reader(Toy([1])) is other
    register_reader(lambda model: isinstance(model, Toy), read_toy, name="toy")
    assert find_reader(Toy([1])) is read_toy
    unregister_reader("toy")
    assert find_reader(Toy([1])) is None
    with pytest.raises(TypeError, match="`predicate` and `reader` must be callable"):
        register_reader(Toy, "read_toy")


def test_a_zoo_name_is_analysed_without_weights():
    real = analyze(models.create("lenet", num_classes=7, rng=0), (1, 1, 28, 28))
    assert analyze("lenet", (1, 1, 28, 28), num_classes=7).to_json() == real.to_json()
    with pytest.raises(ValueError, match=r"unknown model 'lenett'"):
        analyze("lenett", (1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"a zoo model \('lenet'\) takes one input shape"):
        analyze("lenet", [(1, 1, 28, 28), (1, 1, 28, 28)])


def test_convlab_models_refuse_reader_options():
    with pytest.raises(TypeError, match=r"analyze: unexpected options \['method'\] for a convlab model"):
        analyze(nn.Sequential(nn.ReLU()), (1, 2, 3, 3), method="fx")


def test_the_analysis_does_not_import_the_layers_above_it():
    """No module of convlab.analysis imports convlab.interop (nor reaches it by import_module)."""
    package = pathlib.Path(convlab.analysis.__file__).parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "import_module", "__import__"):
                names = [ast.unparse(node)]
            else:
                continue
            for name in names:
                assert "interop" not in name and "cli" not in name.split("."), f"{path.name} imports {name}"
                assert "import_module" not in name and "__import__" not in name, f"{path.name}: {name}"


# --------------------------------------------------------------------------- the torch reader


def test_convlab_interop_registers_the_torch_reader():
    torch = pytest.importorskip("torch")
    import convlab.interop  # noqa: F401
    from convlab.interop import torch_analysis
    from convlab.interop.torch import analyze as analyze_torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
    assert find_reader(model) is torch_analysis.analyze is analyze_torch
    assert analyze(model, (1, 3, 16, 16), method="fx").to_json() == analyze_torch(model, (1, 3, 16, 16)).to_json()
    assert find_reader(np.zeros(3)) is None  # the torch predicate takes torch modules only


def test_without_the_torch_reader_the_error_says_what_to_import():
    torch = pytest.importorskip("torch")
    from convlab.interop import torch_analysis

    model = torch.nn.Sequential(torch.nn.ReLU())
    unregister_reader("torch")
    try:
        with pytest.raises(TypeError, match=r"got a torch\.nn\.Module \(Sequential\) but no reader for torch "
                                            r"models is registered: `import convlab\.interop`"):
            analyze(model, (1, 2, 3, 3))
    finally:
        register_reader(torch_analysis.is_torch_module, torch_analysis.analyze, name="torch")
    assert analyze(model, (1, 2, 3, 3)).output_shape == (1, 2, 3, 3)
