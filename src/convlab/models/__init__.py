"""The zoo: classic CNNs from LeNet to ShuffleNet, each architecture defined once with a configuration.

``list()`` names the models; ``create(name, **config)`` builds one;
``count_parameters(name, **config)`` counts its parameters without building
any weight; ``catalog()`` lists every name with its description, parameter
count and default input (what ``convlab models`` prints). A name is
an architecture class plus a default configuration (a preset): ``vgg16`` and
``vgg16_bn`` are both :class:`VGG`, ``alexnet`` and ``alexnet_d2l`` both
:class:`AlexNet`. Any keyword overrides the preset, e.g.
``create("resnet18", input_size=(3, 32, 32), num_classes=10, rng=0)``.

Every model takes ``input_size=(channels, height, width)`` (the channels set
the first convolution; a too-small size fails with the shape rule's arithmetic),
``num_classes``, ``dtype`` (float32 default) and ``rng`` (a
``numpy.random.Generator`` or an int seed for the initial weights; layers use
PyTorch's default initialization, not the reference implementations' custom schemes).
A built model records ``model.input_size`` and ``model.num_classes``.

Every model is a tree of ``convlab.nn`` containers (``Sequential``, ``Residual``
subclasses with ``body_names``/``shortcut_name``/``post_name``, ``Concat``
subclasses with ``branch_names``, ``ChannelSlice``, ``ChannelShuffle``) and
leaf layers, with no custom ``forward``: what the analysis walks is what runs.
Where torchvision flattens inside ``forward`` the model has a ``flatten`` child
(no parameters, so the state_dict keys are unchanged).

The ImageNet models reproduce torchvision's layer hyperparameters and
state_dict key names, so torchvision weight files load with
``model.load_state_dict``; their parameter counts equal torchvision's. The
``*_d2l`` presets (and ``lenet``) are the versions printed in *Dive into
Deep Learning* (Zhang, Lipton, Li & Smola), chapters 7-8, with the book's input
sizes and 10 classes; the ``*_cifar`` ResNets are the usual CIFAR-10 variants
(3x3 stride-1 stem, no max pool, 3x32x32, 10 classes).

Every architecture derives from :class:`ZooModel`, which checks the arguments
they all take in one place.

Examples
--------
>>> import convlab.models as models
>>> "resnet50" in models.list()
True
>>> model = models.create("lenet", rng=0)
>>> model.num_parameters()
61706
>>> count_parameters("vgg16")  # no weight is allocated
138357544
"""

from __future__ import annotations

import builtins
import difflib
import inspect
from typing import Any, NamedTuple

from .. import nn
from . import alexnet as _alexnet
from . import googlenet as _googlenet
from . import lenet as _lenet
from . import mobilenet as _mobilenet
from . import nin as _nin
from . import resnet as _resnet
from . import shufflenet as _shufflenet
from . import vgg as _vgg
from ._common import ZooModel
from .alexnet import AlexNet
from .googlenet import GoogLeNet, Inception
from .lenet import LENET5_C3_TABLE, LeNet
from .mobilenet import MobileNetV1, MobileNetV2
from .nin import NiN
from .resnet import BasicBlock, Bottleneck, ResNet
from .shufflenet import ShuffleNetV1, ShuffleNetV2
from .vgg import VGG, VGG_LAYERS

__all__ = [
    "LENET5_C3_TABLE",
    "VGG",
    "VGG_LAYERS",
    "AlexNet",
    "BasicBlock",
    "Bottleneck",
    "GoogLeNet",
    "Inception",
    "LeNet",
    "MobileNetV1",
    "MobileNetV2",
    "NiN",
    "Preset",
    "ResNet",
    "ShuffleNetV1",
    "ShuffleNetV2",
    "ZooEntry",
    "ZooModel",
    "catalog",
    "count_parameters",
    "create",
    "defaults",
    "describe",
    "list",
]


class Preset(NamedTuple):
    """A registered model name: the architecture class, its default configuration and a one-line description."""

    architecture: type
    config: dict[str, Any]
    description: str


_PRESETS: dict[str, Preset] = {}
for _module in (_lenet, _alexnet, _vgg, _nin, _googlenet, _resnet, _mobilenet, _shufflenet):
    for _name, (_cls, _config, _text) in _module.PRESETS.items():
        _PRESETS[_name] = Preset(_cls, dict(_config), _text)


def list() -> builtins.list[str]:  # the zoo's public name (shadows the builtin inside this module only)
    """The names ``create`` accepts, sorted.

    >>> [name for name in list() if name.startswith("vgg16")]
    ['vgg16', 'vgg16_bn']
    """
    return sorted(_PRESETS)


def _preset(fn: str, name: object) -> Preset:
    if not isinstance(name, str):
        raise TypeError(f"convlab.models.{fn}: `name` must be a str, got {name!r}")
    key = name.lower()
    if key not in _PRESETS:
        close = difflib.get_close_matches(key, _PRESETS, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"convlab.models.{fn}: unknown model {name!r}{hint} (convlab.models.list() names all {len(_PRESETS)})"
        )
    return _PRESETS[key]


def _options(cls: type) -> builtins.list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _configured(fn: str, name: str, config: dict[str, Any]) -> Preset:
    """The preset of ``name``, or a TypeError listing the accepted options when ``config`` has another key."""
    preset = _preset(fn, name)
    options = _options(preset.architecture)
    unknown = [key for key in config if key not in options]
    if unknown:
        raise TypeError(
            f"convlab.models.{fn}({name!r}): unknown configuration {', '.join(map(repr, unknown))} for "
            f"{preset.architecture.__name__}; accepted: {', '.join(options)}"
        )
    return preset


def defaults(name: str) -> dict[str, Any]:
    """The configuration ``create(name)`` uses: the preset's values and the architecture's other defaults.

    >>> defaults("vgg11_bn")["batch_norm"]
    True
    """
    preset = _preset("defaults", name)
    signature = inspect.signature(preset.architecture.__init__)
    config = {
        p.name: p.default for p in signature.parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
    }
    config.update(preset.config)
    return config


def describe(name: str) -> str:
    """One line: the model's description and its architecture class.

    >>> describe("resnet18_d2l")
    "ResNet-18 on Dive into Deep Learning's input (1x96x96, 10 classes) [ResNet]"
    """
    preset = _preset("describe", name)
    return f"{preset.description} [{preset.architecture.__name__}]"


def create(name: str, **config: Any) -> nn.Module:
    """Build the model ``name`` (see :func:`list`), with ``config`` overriding its preset.

    Parameters
    ----------
    name : str
        A name from :func:`list` (case-insensitive).
    **config
        Any argument of the architecture class, e.g. ``input_size``, ``num_classes``,
        ``rng``, ``dtype``, ``batch_norm`` (VGG), ``groups`` (ResNet/ShuffleNet v1).

    Raises
    ------
    ValueError
        Unknown name (with close matches), invalid values, or an input too small for the network.
    TypeError
        A configuration argument the architecture does not have (the accepted ones are listed).

    Examples
    --------
    >>> model = create("resnet18", input_size=(3, 32, 32), num_classes=10, rng=0)
    >>> model.fc
    Linear(in_features=512, out_features=10)
    """
    preset = _configured("create", name, config)
    return preset.architecture(**{**preset.config, **config})


def count_parameters(name: str, **config: Any) -> int:
    """The number of parameters of ``create(name, **config)``, counted without allocating a single weight.

    The model is built inside :func:`convlab.nn.skeleton` (every layer and parameter
    shape, no values), so the count follows the one definition and checks the same
    arguments; it equals ``create(name, **config).num_parameters()``.

    Examples
    --------
    >>> count_parameters("resnet18"), count_parameters("resnet18", num_classes=10)
    (11689512, 11181642)
    """
    preset = _configured("count_parameters", name, config)
    with nn.skeleton():
        return preset.architecture(**{**preset.config, **config}).num_parameters()


class ZooEntry(NamedTuple):
    """One line of :func:`catalog`."""

    name: str
    description: str
    architecture: str  # the class name
    parameters: int
    input_size: tuple[int, ...]  # the default (channels, height, width)
    num_classes: int


def catalog() -> builtins.list[ZooEntry]:
    """Every model of :func:`list` with its description, parameter count and default input (no weights built).

    >>> entry = catalog()[0]
    >>> entry.name, entry.parameters, entry.input_size
    ('alexnet', 61100840, (3, 224, 224))
    """
    entries = []
    for name in list():
        preset = _PRESETS[name]
        config = defaults(name)
        entries.append(ZooEntry(name, preset.description, preset.architecture.__name__, count_parameters(name),
                                tuple(config["input_size"]), config["num_classes"]))
    return entries
