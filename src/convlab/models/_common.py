"""Building blocks shared by the zoo: the base class and its argument checks, a size tracker, conv-BN-activation.

:class:`ZooModel` is the base of every architecture: :meth:`ZooModel.arguments`
checks what they all take (``input_size``, ``num_classes``, ``dtype``, ``rng``)
and returns them with a :class:`Layers` (the parametric constructors with the
dtype and generator bound); ``ZooModel.__init__`` records ``input_size`` and
``num_classes`` on the built model. Inside :func:`convlab.nn.skeleton` the same
constructors build every layer without weights, so ``convlab.models.count_parameters``
reads a 138M-parameter VGG-16 off its definition in milliseconds.

The size tracker only follows the height and width
along a builder's main path so that (1) a too-small ``input_size`` fails at
construction with the shape rule's arithmetic, and (2) a ``Flatten -> Linear``
head gets its ``in_features`` from the input size (LeNet, the Dive into Deep
Learning AlexNet/VGG). It calls the one shape rule in :mod:`convlab.shapes`;
the full per-layer shape inference of a built model is :mod:`convlab.analysis`'s job.
"""

from __future__ import annotations

import functools
import numbers
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import nn
from ..nn.parameter import OverBudgetError, in_skeleton
from ..shapes import conv_output_length, pool_output_length

__all__ = [
    "Layers",
    "SpatialSize",
    "ZooArguments",
    "ZooModel",
    "check_choice",
    "check_dtype",
    "check_input_size",
    "check_positive_int",
    "conv_bn_act",
    "named",
]


def check_positive_int(model: str, name: str, value: object) -> int:
    """``value`` as an int >= 1, or a TypeError/ValueError naming the model and the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{model}: `{name}` must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{model}: `{name}` (={value}) must be >= 1")
    return int(value)


def check_choice(model: str, name: str, value: object, choices: Sequence[object]) -> None:
    """Raise a ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{model}: `{name}` (={value!r}) must be one of {tuple(choices)}")


def check_input_size(model: str, input_size: object) -> tuple[int, int, int]:
    """``input_size`` as ``(channels, height, width)`` of positive ints.

    >>> check_input_size("lenet", (1, 28, 28))
    (1, 28, 28)
    """
    if not isinstance(input_size, Sequence) or isinstance(input_size, str) or len(input_size) != 3:
        raise ValueError(
            f"{model}: `input_size` must be (channels, height, width) with 3 entries, got {input_size!r}"
        )
    return tuple(check_positive_int(model, f"input_size[{i}]", v) for i, v in enumerate(input_size))  # type: ignore[return-value]


def check_dtype(model: str, dtype: object) -> np.dtype:
    """``dtype`` as a NumPy dtype, float32 or float64 (what the zoo's layers hold).

    >>> check_dtype("lenet", "float64")
    dtype('float64')
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{model}: `dtype` (={dtype!r}) is not a NumPy dtype") from None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{model}: `dtype` (={resolved}) must be float32 or float64")
    return resolved


def _check_rng(model: str, rng: object) -> np.random.Generator:
    if isinstance(rng, bool) or not (rng is None or isinstance(rng, (np.random.Generator, numbers.Integral))):
        raise TypeError(f"{model}: `rng` must be a numpy.random.Generator, an int seed or None, got {rng!r}")
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class SpatialSize:
    """Height and width of the feature map while a builder stacks layers.

    Each step applies :func:`convlab.shapes.conv_output_length` or
    :func:`convlab.shapes.pool_output_length` to both dimensions and raises a
    ValueError, with the formula and the numbers, if the map would become empty.

    >>> size = SpatialSize("lenet", (1, 28, 28))
    >>> size.conv("conv1", 5, padding=2).pool("pool1", 2, 2).conv("conv2", 5).pool("pool2", 2, 2).hw
    (5, 5)
    """

    def __init__(self, model: str, input_size: tuple[int, int, int]) -> None:
        self.model = model
        self.input_size = tuple(input_size)
        self.hw: tuple[int, int] = (int(input_size[1]), int(input_size[2]))

    def _apply(self, where: str, lengths: Sequence) -> SpatialSize:
        for dim, length in enumerate(lengths):
            if length < 1:
                raise ValueError(
                    f"{self.model}: `input_size` {self.input_size} is too small: at {where} the feature map "
                    f"would be empty in spatial dimension {dim} ({length.explanation}); use a larger input"
                )
        self.hw = (int(lengths[0]), int(lengths[1]))
        return self

    def conv(self, where: str, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> SpatialSize:
        """A convolution with a square kernel and symmetric padding."""
        return self._apply(where, [conv_output_length(n, kernel_size, stride, padding, dilation) for n in self.hw])

    def pool(
        self, where: str, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False
    ) -> SpatialSize:
        """A max or average pooling with a square window (``stride=None`` means ``kernel_size``, as in torch)."""
        step = kernel_size if stride is None else stride
        return self._apply(
            where, [pool_output_length(n, kernel_size, step, padding, 1, ceil_mode) for n in self.hw]
        )

    def set(self, hw: tuple[int, int]) -> SpatialSize:
        """An adaptive pooling: the output size is given."""
        self.hw = (int(hw[0]), int(hw[1]))
        return self

    @property
    def area(self) -> int:
        return self.hw[0] * self.hw[1]


class Layers:
    """The parametric ``convlab.nn`` constructors with one model's ``dtype`` and random generator bound.

    Builders write ``L.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)`` as in
    torch; every layer draws its initial weights (and Dropout its masks) from the
    same generator, so a model built with ``rng=0`` is reproducible.
    """

    def __init__(self, model: str, dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        generator = _check_rng(model, rng)
        self.dtype = dtype
        self.rng = generator
        self.Dropout = functools.partial(nn.Dropout, rng=generator)  # the dropout masks come from it too
        self.Conv2d = functools.partial(nn.Conv2d, dtype=dtype, rng=generator)
        self.Linear = functools.partial(nn.Linear, dtype=dtype, rng=generator)
        self.BatchNorm2d = functools.partial(nn.BatchNorm2d, dtype=dtype)


class ZooArguments(NamedTuple):
    """The arguments every zoo architecture takes, checked, and the layer constructors built from them."""

    model: str  # the architecture's class name, for messages
    input_size: tuple[int, int, int]
    num_classes: int
    layers: Layers

    def spatial(self) -> SpatialSize:
        """A :class:`SpatialSize` that starts at ``input_size``."""
        return SpatialSize(self.model, self.input_size)


class ZooModel(nn.Sequential):
    """Base of the zoo's architectures: one place for the arguments they all take.

    A constructor starts with ``args = self.arguments(input_size, num_classes, dtype, rng)``,
    builds its layers with ``args.layers`` and ends with
    ``super().__init__(children, arguments=args)``, which records
    ``model.input_size`` and ``model.num_classes``.
    """

    input_size: tuple[int, int, int]
    num_classes: int

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Every architecture's constructor first builds a dry run of itself, so nothing large is allocated
        before a refusal.

        Outside :func:`convlab.nn.skeleton` the model is first built inside
        ``nn.skeleton(check_budget=True)`` (milliseconds, no memory, no random draw),
        where every parameter and buffer is checked against the memory budget by the
        one allocator of :mod:`convlab.nn.parameter`; a model with a parameter over
        the budget (``resnet18`` with ``num_classes=10**9``) is refused before its first
        layer takes memory, with the layer, the shape and the bytes named.
        """
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        build = cls.__init__

        @functools.wraps(build)
        def __init__(self, *args: object, **config: object) -> None:
            if type(self) is cls and not in_skeleton():
                try:
                    with nn.skeleton(check_budget=True):
                        cls(*args, **config)  # any other error is the real build's too, with the same message
                except OverBudgetError as exc:
                    raise OverBudgetError(f"{cls.__name__}: {exc}") from None
            build(self, *args, **config)

        cls.__init__ = __init__

    @classmethod
    def arguments(cls, input_size: object, num_classes: object, dtype: object, rng: object) -> ZooArguments:
        """Check ``input_size`` (C, H, W), ``num_classes`` (>= 1), ``dtype`` (float32/64) and ``rng``."""
        model = cls.__name__
        size = check_input_size(model, input_size)
        classes = check_positive_int(model, "num_classes", num_classes)
        check_dtype(model, dtype)
        return ZooArguments(model, size, classes, Layers(model, dtype, rng))  # type: ignore[arg-type]

    def __init__(self, *children: nn.Module | OrderedDict, arguments: ZooArguments) -> None:
        super().__init__(*children)
        self.input_size = arguments.input_size
        self.num_classes = arguments.num_classes


def conv_bn_act(
    L: Layers,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
    eps: float = 1e-5,
) -> nn.Sequential:
    """``Sequential(Conv2d(bias=False), BatchNorm2d, activation)``, children named "0", "1", "2".

    torchvision's ``Conv2dNormActivation``: padding defaults to ``(k - 1) // 2``
    ("same" for odd kernels at stride 1), and the state_dict keys are ``0.weight``,
    ``1.weight``, ``1.bias``, ``1.running_mean`` ...
    """
    if padding is None:
        padding = (kernel_size - 1) // 2
    layers: list[nn.Module] = [
        L.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=False),
        L.BatchNorm2d(out_channels, eps=eps),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


def named(*pairs: tuple[str, nn.Module | None]) -> OrderedDict:
    """An OrderedDict of ``(name, module)`` pairs, skipping ``None`` modules (optional layers)."""
    return OrderedDict((name, module) for name, module in pairs if module is not None)
