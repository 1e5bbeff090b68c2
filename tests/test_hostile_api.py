"""Hostile arguments to the public API: flags are real booleans, analysis arguments are checked, totals are honest.

* Every boolean parameter of ``convlab.functional``, ``convlab.ops``, the
  ``convlab.nn`` layers (and their Module methods), the ``convlab.models``
  constructors and ``convlab.analysis`` is found by inspecting the signatures
  (a default that is a bool, or a ``bool`` annotation); each refuses ``'no'``,
  ``0``, ``1``, ``None`` (where None is not documented) and ``np.array([True])``
  with a TypeError naming the function, the parameter and the value, and accepts
  ``True``, ``False`` and ``np.bool_``. A new flag on a function listed in
  ``CALLS`` is covered without a change here; a new function with a flag fails
  ``test_every_flag_has_a_call`` until it gets an entry in ``CALLS``.
* ``analyze``/``summary``/``analyze_graph``/``zoo_skeleton`` check the model,
  the input shape, ``itemsize`` and ``batched``.
* A model's parameter total comes from the model, not from what a trace saw: a
  torch model that branches on its data keeps all its parameters, and the
  report warns about the modules the trace did not reach.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import convlab.functional as F
from convlab import analysis, models, nn, ops
from convlab.spec import ConvSpec, PoolSpec, as_bool

# --------------------------------------------------------------------------- the flags, found by inspection

# The public surfaces whose boolean parameters must be real bools. ``convlab.ops.algorithms`` is
# left out on purpose: its records' fields and the primitives' ``compiled=`` are the engine's own
# wiring (every user-facing path reaches them through the checked entry points above).
SURFACES = ("convlab.functional", "convlab.ops", "convlab.nn", "convlab.models", "convlab.analysis",
            "convlab.analysis.receptive", "convlab.spec", "convlab.interop.torch")

# Module methods every layer has (nn layers are Modules).
MODULE_METHODS = ("train", "zero_grad", "num_parameters", "load_state_dict")

# Left out, with the reason: the engine's own helpers that happen to be importable.
EXCLUDED = {
    "convlab.spec.padding_pairs": "a helper of the specs (its first argument is the caller's name); "
                                  "only the planner passes allow_crop",
}

# (callable's qualified name, parameter) pairs where None is a documented value.
NONE_ALLOWED = {
    ("convlab.analysis.analyze", "batched"),
    ("convlab.analysis.facts.analyze_graph", "batched"),
    ("convlab.interop.torch_analysis.analyze", "batched"),
}


def _is_flag(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    if param.name.startswith("_") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return False
    if isinstance(param.default, bool):
        return True
    hint = hints.get(param.name, param.annotation)
    if hint is bool:
        return True
    return bool(typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None))
                and bool in typing.get_args(hint))


def _hints(obj: Callable) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve: fall back to the default's type
        return {}


def _public_callables() -> dict[str, Callable]:
    found: dict[str, Callable] = {}
    for module_name in SURFACES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            qualname = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and qualname not in EXCLUDED:
                found.setdefault(qualname, obj)
    for name in MODULE_METHODS:
        method = getattr(nn.Module, name)
        found[f"convlab.nn.Module.{name}"] = method
    found["convlab.nn.Parameter.empty"] = nn.Parameter.empty
    return found


def boolean_parameters() -> list[tuple[str, str]]:
    """Every (callable, flag) of the public surfaces, by inspection."""
    pairs = []
    for qualname, obj in _public_callables().items():
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        hints = _hints(obj)
        for param in signature.parameters.values():
            if _is_flag(param, hints):
                pairs.append((qualname, param.name))
    return sorted(pairs)


# --------------------------------------------------------------------------- a valid call per callable

RNG = np.random.default_rng(0)
X1, X2, X3 = np.ones((1, 2, 6)), np.ones((1, 2, 6, 6)), np.ones((1, 2, 4, 4, 4))
W1, W2, W3 = np.ones((3, 2, 3)), np.ones((3, 2, 3, 3)), np.ones((3, 2, 2, 2, 2))


def _tiny_conv_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=RNG), nn.ReLU())


def _graph():
    return analysis.graph_from_module(_tiny_conv_model())


# qualified name -> a function taking the flag as keyword arguments and making a valid call
CALLS: dict[str, Callable[..., Any]] = {
    "convlab.ops.conv.conv": lambda **k: F.conv(X2, W2, **k),
    "convlab.functional.conv1d": lambda **k: F.conv1d(X1, W1, **k),
    "convlab.functional.conv2d": lambda **k: F.conv2d(X2, W2, **k),
    "convlab.functional.conv3d": lambda **k: F.conv3d(X3, W3, **k),
    "convlab.ops.conv.conv_vjp": lambda **k: F.conv_vjp(np.ones((1, 3, 4, 4)), X2, W2, **k),
    "convlab.ops.conv.conv_spec": lambda **k: ops.conv_spec(X2, W2, ConvSpec(3, ndim=2), **k),
    "convlab.ops.conv.conv_spec_vjp": lambda **k: ops.conv_spec_vjp(np.ones((1, 3, 4, 4)), X2, W2,
                                                                    ConvSpec(3, ndim=2), **k),
    "convlab.ops.algorithms.matrix.conv_matrix": lambda **k: F.conv_matrix(W2, (5, 5), **k),
    "convlab.ops.explain.explain_conv": lambda **k: F.explain_conv(X2, W2, position=(0, 0, 1, 1), **k),
    "convlab.ops.explain.explain_pool": lambda **k: F.explain_pool(X2, 2, position=(0, 0, 1, 1), **k),
    "convlab.ops.pool.window.max_pool": lambda **k: F.max_pool(X2, 2, ndim=2, **k),
    "convlab.functional.max_pool1d": lambda **k: F.max_pool1d(X1, 2, **k),
    "convlab.functional.max_pool2d": lambda **k: F.max_pool2d(X2, 2, **k),
    "convlab.functional.max_pool3d": lambda **k: F.max_pool3d(X3, 2, **k),
    "convlab.ops.pool.window.max_pool_vjp": lambda **k: F.max_pool_vjp(np.ones((1, 2, 3, 3)), X2, 2, ndim=2, **k),
    "convlab.ops.pool.window.max_pool_spec": lambda **k: ops.max_pool_spec(X2, PoolSpec(2, ndim=2), **k),
    "convlab.ops.pool.window.avg_pool": lambda **k: F.avg_pool(X2, 2, ndim=2, **k),
    "convlab.functional.avg_pool1d": lambda **k: F.avg_pool1d(X1, 2, **k),
    "convlab.functional.avg_pool2d": lambda **k: F.avg_pool2d(X2, 2, **k),
    "convlab.functional.avg_pool3d": lambda **k: F.avg_pool3d(X3, 2, **k),
    "convlab.ops.pool.window.avg_pool_vjp": lambda **k: F.avg_pool_vjp(np.ones((1, 2, 3, 3)), X2, 2, ndim=2, **k),
    "convlab.ops.pool.adaptive.adaptive_max_pool": lambda **k: F.adaptive_max_pool(X2, 2, ndim=2, **k),
    "convlab.functional.adaptive_max_pool1d": lambda **k: F.adaptive_max_pool1d(X1, 2, **k),
    "convlab.functional.adaptive_max_pool2d": lambda **k: F.adaptive_max_pool2d(X2, 2, **k),
    "convlab.functional.adaptive_max_pool3d": lambda **k: F.adaptive_max_pool3d(X3, 2, **k),
    "convlab.ops.pool.adaptive.adaptive_max_pool_vjp": lambda **k: F.adaptive_max_pool_vjp(
        np.ones((1, 2, 2, 2)), X2, 2, ndim=2, **k),
    "convlab.spec.ConvSpec": lambda **k: ConvSpec(3, ndim=2, **k),
    "convlab.spec.PoolSpec": lambda **k: PoolSpec(2, ndim=2, **k),
    # nn layers
    "convlab.nn.conv.Conv1d": lambda **k: nn.Conv1d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.conv.Conv2d": lambda **k: nn.Conv2d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.conv.Conv3d": lambda **k: nn.Conv3d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.conv.ConvTranspose1d": lambda **k: nn.ConvTranspose1d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.conv.ConvTranspose2d": lambda **k: nn.ConvTranspose2d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.conv.ConvTranspose3d": lambda **k: nn.ConvTranspose3d(2, 3, 3, rng=RNG, **k),
    "convlab.nn.linear.Linear": lambda **k: nn.Linear(4, 3, rng=RNG, **k),
    "convlab.nn.linear.Dropout": lambda **k: nn.Dropout(0.5, **k),
    "convlab.nn.activation.ReLU": lambda **k: nn.ReLU(**k),
    "convlab.nn.activation.ReLU6": lambda **k: nn.ReLU6(**k),
    "convlab.nn.activation.Hardswish": lambda **k: nn.Hardswish(**k),
    "convlab.nn.norm.BatchNorm1d": lambda **k: nn.BatchNorm1d(3, **k),
    "convlab.nn.norm.BatchNorm2d": lambda **k: nn.BatchNorm2d(3, **k),
    "convlab.nn.norm.BatchNorm3d": lambda **k: nn.BatchNorm3d(3, **k),
    "convlab.nn.pool.MaxPool1d": lambda **k: nn.MaxPool1d(2, **k),
    "convlab.nn.pool.MaxPool2d": lambda **k: nn.MaxPool2d(2, **k),
    "convlab.nn.pool.MaxPool3d": lambda **k: nn.MaxPool3d(2, **k),
    "convlab.nn.pool.AvgPool1d": lambda **k: nn.AvgPool1d(2, **k),
    "convlab.nn.pool.AvgPool2d": lambda **k: nn.AvgPool2d(2, **k),
    "convlab.nn.pool.AvgPool3d": lambda **k: nn.AvgPool3d(2, **k),
    "convlab.nn.pool.AdaptiveMaxPool1d": lambda **k: nn.AdaptiveMaxPool1d(2, **k),
    "convlab.nn.pool.AdaptiveMaxPool2d": lambda **k: nn.AdaptiveMaxPool2d(2, **k),
    "convlab.nn.pool.AdaptiveMaxPool3d": lambda **k: nn.AdaptiveMaxPool3d(2, **k),
    "convlab.nn.parameter.Parameter": lambda **k: nn.Parameter(np.zeros(2), **k),
    "convlab.nn.Parameter.empty": lambda **k: nn.Parameter.empty((2,), **k),
    "convlab.nn.parameter.skeleton": lambda **k: nn.skeleton(**k),
    "convlab.nn.Module.train": lambda **k: _tiny_conv_model().train(**k),
    "convlab.nn.Module.zero_grad": lambda **k: _tiny_conv_model().zero_grad(**k),
    "convlab.nn.Module.num_parameters": lambda **k: _tiny_conv_model().num_parameters(**k),
    "convlab.nn.Module.load_state_dict": lambda **k: (lambda m: m.load_state_dict(m.state_dict(), **k))(
        _tiny_conv_model()),
    # model constructors (inside skeleton(): shapes without memory)
    "convlab.models.vgg.VGG": lambda **k: _skeleton(lambda: models.VGG("A", (3, 32, 32), 10, avgpool_size=None,
                                                                        channel_divisor=16, hidden_features=8, **k)),
    "convlab.models.alexnet.AlexNet": lambda **k: _skeleton(lambda: models.AlexNet(hidden_features=8, **k)),
    "convlab.models.lenet.LeNet": lambda **k: _skeleton(lambda: models.LeNet(**k)),
    "convlab.nn.capture.capture_outputs": lambda **k: nn.capture_outputs(
        _tiny_conv_model(), np.zeros((1, 1, 8, 8), dtype=np.float32), ["0"], **k),
    "convlab.models.googlenet.GoogLeNet": lambda **k: _skeleton(lambda: models.GoogLeNet(num_classes=10, **k)),
    "convlab.models.googlenet.Inception": lambda **k: _skeleton(lambda: models.Inception(
        _layers(), 8, 2, 2, 2, 2, 2, 2, **k)),
    # analysis
    "convlab.analysis.analyze": lambda **k: analysis.analyze(_tiny_conv_model(), (1, 1, 8, 8), **k),
    "convlab.analysis.facts.analyze_graph": lambda **k: analysis.analyze_graph(_graph(), (1, 1, 8, 8), **k),
    "convlab.analysis.report.Report": lambda **k: analysis.Report([], [(1, 1, 8, 8)], **k),
    "convlab.analysis.receptive.upsample_field": lambda **k: _upsample_field(**k),
    "convlab.interop.torch_analysis.analyze": lambda **k: _torch_analyze(**k),
}


def _torch_analyze(**k):
    torch = pytest.importorskip("torch")
    from convlab.interop.torch import analyze

    return analyze(torch.nn.Conv2d(1, 2, 3), (1, 1, 8, 8), **k)


def _skeleton(build: Callable[[], Any]) -> Any:
    with nn.skeleton():
        return build()


def _layers():
    from convlab.models._common import Layers

    return Layers("Inception", rng=0)


def _upsample_field(**k):
    from fractions import Fraction

    from convlab.analysis.receptive import upsample_field

    return upsample_field(Fraction(1, 2), "bilinear", **k)


FLAGS = boolean_parameters()
BAD_VALUES = ["no", 0, 1, None, np.array([True])]


def _key(qualname: str, flag: str) -> tuple[str, str]:
    return qualname, flag


def test_the_enumeration_finds_the_known_flags():
    found = set(FLAGS)
    for pair in [("convlab.functional.conv2d", "flip_kernel"), ("convlab.nn.conv.Conv2d", "bias"),
                 ("convlab.models.vgg.VGG", "batch_norm"), ("convlab.analysis.analyze", "batched"),
                 ("convlab.ops.pool.window.max_pool", "return_indices"), ("convlab.nn.Module.train", "mode")]:
        assert pair in found, pair
    assert len(found) >= 60


def test_every_flag_has_a_call():
    missing = sorted({name for name, _ in FLAGS if name not in CALLS})
    assert not missing, f"add a valid call to CALLS for {missing}"


@pytest.mark.parametrize(("qualname", "flag"), FLAGS, ids=[f"{q.rsplit('.', 1)[-1]}-{f}" for q, f in FLAGS])
def test_flag_refuses_non_bools(qualname, flag):
    call = CALLS[qualname]
    bad_values = BAD_VALUES if (qualname, flag) not in NONE_ALLOWED else [v for v in BAD_VALUES if v is not None]
    for value in bad_values:
        with pytest.raises(TypeError, match=rf"`?{flag}`? must be a bool") as info:
            call(**{flag: value})
        message = str(info.value)
        assert repr(value) in message, message
    for value in (True, False, np.True_, np.False_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(**{flag: value})


def test_as_bool():
    assert as_bool("f", "x", True) is True
    assert as_bool("f", "x", np.False_) is False
    with pytest.raises(TypeError, match=r"^f: `x` must be a bool, got 'no' \(str\)"):
        as_bool("f", "x", "no")


def test_flip_kernel_no_is_refused_not_flipped():
    with pytest.raises(TypeError, match=r"conv2d: `flip_kernel` must be a bool, got 'no'"):
        F.conv2d(X2, W2, flip_kernel="no")


# --------------------------------------------------------------------------- the analysis' entry points

SHAPE = (1, 1, 8, 8)
FORMS = r"a sequence of positive ints such as \(1, 3, 224, 224\).*or a list of such shapes"


@pytest.mark.parametrize("entry", ["analyze", "summary", "analyze_graph"])
@pytest.mark.parametrize(("shape", "error", "match"), [
    ("1x28x28", TypeError, r"`input_shape` must be " + FORMS + r".*got '1x28x28' \(str\)"),
    (b"1x28", TypeError, r"`input_shape` must be " + FORMS),
    ((1, 1, 28.0, 28), TypeError, r"`input_shape\[2\]` must be a positive int, got 28.0 \(float\); "
                                  r"`input_shape` must be " + FORMS),
    ((1, True, 8, 8), TypeError, r"`input_shape\[1\]` must be a positive int, got True \(bool\)"),
    ((1, 1, 0, 8), ValueError, r"`input_shape\[2\]` \(=0\) must be >= 1"),
    ((1, 1, -3, 8), ValueError, r"`input_shape\[2\]` \(=-3\) must be >= 1"),
    ((), ValueError, r"`input_shape` is empty"),
    ([(1, 1, 8, 8), 3], TypeError, r"`input_shape` mixes sizes and shapes"),
    ([(1, 1, 8, 8.5)], TypeError, r"`input_shape\[0\]\[3\]` must be a positive int, got 8.5"),
    (8, TypeError, r"`input_shape` must be .*got 8 \(int\)"),
    (None, TypeError, r"`input_shape` must be .*got None \(NoneType\)"),
])
def test_analysis_refuses_bad_input_shapes(entry, shape, error, match):
    name = "analyze_graph" if entry == "analyze_graph" else "analyze"
    call = {
        "analyze": lambda: analysis.analyze(_tiny_conv_model(), shape),
        "summary": lambda: analysis.summary(_tiny_conv_model(), shape),
        "analyze_graph": lambda: analysis.analyze_graph(_graph(), shape),
    }[entry]
    with pytest.raises(error, match=rf"^{name}: " + match):
        call()


@pytest.mark.parametrize("itemsize", [-4, 0])
def test_itemsize_must_be_positive(itemsize):
    with pytest.raises(ValueError, match=rf"analyze: `itemsize` \(={itemsize}\) must be >= 1"):
        analysis.analyze(_tiny_conv_model(), SHAPE, itemsize=itemsize)
    with pytest.raises(ValueError, match=rf"analyze_graph: `itemsize` \(={itemsize}\) must be >= 1"):
        analysis.analyze_graph(_graph(), SHAPE, itemsize=itemsize)


@pytest.mark.parametrize("itemsize", [4.0, "4", True, None])
def test_itemsize_must_be_an_int(itemsize):
    with pytest.raises(TypeError, match=r"analyze: `itemsize` must be an integer, got " + re.escape(repr(itemsize))):
        analysis.analyze(_tiny_conv_model(), SHAPE, itemsize=itemsize)


def test_a_valid_itemsize_scales_the_memory():
    four = analysis.analyze(_tiny_conv_model(), SHAPE)
    eight = analysis.analyze(_tiny_conv_model(), SHAPE, itemsize=np.int64(8))
    assert eight.activation_bytes == 2 * four.activation_bytes > 0


@pytest.mark.parametrize("model", [None, object(), 3, np.ones(3), [nn.ReLU()]])
def test_analyze_refuses_what_is_not_a_model(model):
    with pytest.raises(TypeError, match=r"^analyze: `model` must be a convlab.nn.Module, a zoo model's name.*"
                                        r"a convlab.analysis.Graph, or a model a registered reader accepts"):
        analysis.analyze(model, SHAPE)
    with pytest.raises(TypeError, match=r"^analyze: `model` must be"):
        analysis.summary(model, SHAPE)


def test_analyze_graph_refuses_what_is_not_a_graph():
    with pytest.raises(TypeError, match=r"^analyze_graph: `graph` must be a convlab.analysis.Graph, got None"):
        analysis.analyze_graph(None, SHAPE)


def test_zoo_skeleton_checks_its_arguments():
    with pytest.raises(TypeError, match=r"^zoo_skeleton: `name` must be a zoo model's name \(a str"):
        analysis.zoo_skeleton(None, (1, 1, 28, 28))
    with pytest.raises(TypeError, match=r"^zoo_skeleton: `input_shape\[2\]` must be a positive int, got 28.0"):
        analysis.zoo_skeleton("lenet", (1, 1, 28.0, 28))
    with pytest.raises(TypeError, match=r"^zoo_skeleton: `input_shape` must be .*got '1x28x28' \(str\)"):
        analysis.zoo_skeleton("lenet", "1x28x28")
    with pytest.raises(ValueError, match=r"^zoo_skeleton: a zoo model \('lenet'\) takes one input shape"):
        analysis.zoo_skeleton("lenet", (28, 28))
    with pytest.raises(TypeError, match=r"^analyze: `input_shape\[2\]` must be a positive int, got 28.0"):
        analysis.analyze("lenet", (1, 1, 28.0, 28))
    assert analysis.zoo_skeleton("lenet", (1, 1, 28, 28)).num_parameters() > 0


def test_summary_checks_the_format_first():
    with pytest.raises(ValueError, match=r"^summary: `format` \(='yaml'\) must be one of"):
        analysis.summary(None, "junk", format="yaml")


def test_valid_calls_still_work():
    report = analysis.analyze(_tiny_conv_model(), [1, 1, 8, 8], batched=np.True_)
    assert report.output_shape == (1, 2, 6, 6) and report.batched is True
    assert analysis.analyze(_tiny_conv_model(), (1, 8, 8), batched=False).output_shape == (2, 6, 6)
    assert analysis.analyze(_tiny_conv_model(), (np.int64(1), 1, 8, 8)).output_shape == (1, 2, 6, 6)


# --------------------------------------------------------------------------- totals come from the model


def test_convlab_totals_are_the_models_own():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, rng=RNG), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3, rng=RNG))
    model[3].weight.requires_grad = False
    report = analysis.analyze(model, (1, 1, 9, 9))
    buffers = sum(b.size for b in model.buffers())
    assert report.total_params == model.num_parameters() == report.table_params
    assert report.trainable_params == model.num_parameters(trainable_only=True)
    assert report.total_buffers == buffers == report.table_buffers
    assert report.model_warnings == []


def test_a_report_warns_when_its_rows_hold_less_than_the_model():
    rows = list(analysis.analyze(_tiny_conv_model(), SHAPE))
    report = analysis.Report(rows, [SHAPE], model_counts=(100, 5, 7))
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == (105, 100, 5)
    assert report.total_buffers == 7 and report.table_params == 20
    assert any("rows hold 20 of the model's 105 parameters" in w for w in report.model_warnings)
    assert report.totals()["params"] == 105
    with pytest.raises(ValueError, match=r"^Report: `itemsize` \(=-4\) must be >= 1"):
        analysis.Report(rows, [SHAPE], itemsize=-4)


def _torch():
    return pytest.importorskip("torch")


def _branchy():
    torch = _torch()
    import convlab.interop  # noqa: F401  (registers the torch reader)

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(1, 4, 3)
            self.pos = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8))
            self.neg = torch.nn.Conv2d(4, 8, 5, padding=1)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x):
            x = self.stem(x)
            if x.sum() > 0:
                x = self.pos(x)
            else:
                x = self.neg(x)
            return self.head(x.mean((2, 3)))

    return Branchy()


@pytest.mark.parametrize(("sign", "missed", "taken"), [
    (1.0, ["neg (Conv2d, 808)"], "pos.0"),
    (-1.0, ["pos.0 (Conv2d, 296)", "pos.1 (BatchNorm2d, 33)"], "neg"),
])
def test_a_torch_model_that_branches_on_its_data_keeps_all_its_parameters(sign, missed, taken):
    torch = _torch()
    model = _branchy()
    with torch.no_grad():  # the recording runs on zeros: the stem's bias decides the branch
        model.stem.bias.fill_(sign)
    report = analysis.analyze(model, (1, 1, 12, 12))
    assert report.total_params == sum(p.numel() for p in model.parameters()) == 1187
    assert report.total_buffers == sum(b.numel() for b in model.buffers()) == 17
    assert report.trainable_params == 1187
    assert report.table_params < report.total_params  # the rows cover the branch the trace took
    assert any(row.name == taken for row in report)
    reached = [w for w in report.model_warnings if "did not reach" in w]
    assert len(reached) == 1, report.model_warnings
    for name in missed:
        assert name in reached[0], reached[0]
    assert taken.split(".")[0] not in reached[0].split(":", 1)[1]
    assert "stem" not in reached[0] and "head" not in reached[0]
    assert any("rows hold" in w for w in report.model_warnings)
    text = str(report)
    assert "did not reach" in text and missed[0] in text
    assert report.to_dict()["totals"]["params"] == 1187


def test_a_fully_traced_torch_model_has_no_coverage_warning():
    torch = _torch()
    import convlab.interop  # noqa: F401

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
    report = analysis.analyze(model, SHAPE)
    assert report.total_params == report.table_params == sum(p.numel() for p in model.parameters())
    assert report.model_warnings == []


def test_the_torch_reader_checks_its_arguments():
    _torch()
    from convlab.interop.torch import analyze as torch_analyze

    model = _branchy()
    with pytest.raises(TypeError, match=r"^analyze: `input_shape` must be .*got '1x12x12' \(str\)"):
        analysis.analyze(model, "1x12x12")
    with pytest.raises(ValueError, match=r"^analyze: `itemsize` \(=-4\) must be >= 1"):
        torch_analyze(model, (1, 1, 12, 12), itemsize=-4)
    with pytest.raises(TypeError, match=r"^analyze: `batched` must be a bool, got 'no'"):
        torch_analyze(model, (1, 1, 12, 12), batched="no")
    with pytest.raises(TypeError, match=r"^analyze: `module` must be a torch.nn.Module, got None"):
        torch_analyze(None, (1, 1, 12, 12))
    from convlab.interop.torch import graph_from_torch

    with pytest.raises(TypeError, match=r"^graph_from_torch: `input_shape\[2\]` must be a positive int, got 8.0"):
        graph_from_torch(model, (1, 1, 8.0, 8))
