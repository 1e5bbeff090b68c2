"""Convert models between ``convlab.nn`` and ``torch.nn``, weights, buffers and modes included.

:func:`to_torch` builds the ``torch.nn.Module`` that computes the same function
as a ``convlab.nn`` model; :func:`from_torch` goes the other way. Both keep the
module tree, so the ``state_dict`` keys are identical on both sides
(``layer1.0.conv1.weight``, ``bn1.running_mean``, ``stage2.0.branch2.3.weight``):
weights saved by one load into the other by name.

Leaf layers map one to one (Conv/ConvTranspose 1-3d, max/average/adaptive
pools, BatchNorm 1-3d, LocalResponseNorm, ReLU, ReLU6, Sigmoid, Tanh,
Hardswish, Softmax, Linear, Dropout, Flatten, Identity, Upsample 'nearest',
ChannelShuffle, Sequential). convlab's containers whose semantics torch does not
have as a module get small torch classes of their own, which :func:`from_torch`
turns back into the convlab containers:

=================================  ==========================================
convlab.nn                         torch (this module)
=================================  ==========================================
Residual (and subclasses)          :class:`TorchResidual` -- ``post(body(x) + shortcut(x))``
Concat (and subclasses)            :class:`TorchConcat` -- ``torch.cat(branches, dim=1)``
ChannelSlice                       :class:`TorchChannelSlice` -- ``x[:, start:stop]``
GlobalAvgPool / GlobalMaxPool      :class:`TorchGlobalAvgPool` / :class:`TorchGlobalMaxPool`
=================================  ==========================================

A Residual or Concat subclass of the zoo (``BasicBlock`` with ``body_names``,
``Inception`` with ``branch_names``) keeps its children's names, so the keys stay
torchvision's. Converted back, such a block is a :class:`NamedResidual` /
:class:`NamedConcat` (the same children, order and names; the zoo class itself
is not rebuilt, since its constructor arguments are not recorded).

torch is imported inside the functions; the torch classes above are created on
first access (module ``__getattr__``), so importing this module never imports
torch. They are still importable by name, so ``torch.save`` of a whole converted
model pickles.

Notes
-----
* The torch modules compute out of place (``inplace=False``), as convlab does:
  an in-place ReLU at the start of a residual body would overwrite the shortcut's input.
* Padding torch cannot express (asymmetric ``(lo, hi)`` pairs, ``'causal'``,
  ``'same_tf'``, ``padding_mode='symmetric'``, a transposed convolution with any mode
  but zeros) raises a ValueError naming the layer.
* Dropout masks come from different generators on the two sides, so only
  eval mode (or ``p = 0``) gives identical outputs through a Dropout.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .. import nn

__all__ = [
    "MIRROR_CLASSES",
    "NamedConcat",
    "NamedResidual",
    "from_torch",
    "to_torch",
]

#: The torch classes made here for convlab containers (created lazily; see the module docstring).
MIRROR_CLASSES = ("TorchResidual", "TorchConcat", "TorchChannelSlice", "TorchGlobalAvgPool", "TorchGlobalMaxPool")

_mirrors: dict[str, type] = {}


# ----------------------------------------------------------------------------- convlab-side generic containers


class NamedResidual(nn.Residual):
    """A :class:`~convlab.nn.Residual` with given children and ``body_names``/``shortcut_name``/``post_name``.

    What :func:`from_torch` builds for a :class:`TorchResidual` whose names are not the plain
    ``body``/``shortcut``/``post`` (e.g. a converted ResNet ``BasicBlock``).

    Examples
    --------
    >>> import numpy as np
    >>> from collections import OrderedDict
    >>> from convlab import nn
    >>> block = NamedResidual(OrderedDict(conv=nn.Conv2d(2, 2, 3, padding=1, rng=np.random.default_rng(0)),
    ...                                   relu=nn.ReLU()), body_names=("conv", "relu"), post_name="relu")
    >>> block(np.ones((1, 2, 4, 4), np.float32)).shape
    (1, 2, 4, 4)
    """

    def __init__(self, children: OrderedDict[str, nn.Module], body_names: tuple[str, ...],
                 shortcut_name: str | None = None, post_name: str | None = None) -> None:
        super().__init__()
        for name, module in children.items():
            self.add_module(name, module)
        self.body_names = tuple(body_names)
        self.shortcut_name = shortcut_name
        self.post_name = post_name
        self.body_modules()  # every name must be a child: fail here, not in the first forward
        self.post_module()

    def extra_repr(self) -> str:
        return f"body_names={self.body_names}, shortcut_name={self.shortcut_name!r}, post_name={self.post_name!r}"


class NamedConcat(nn.Concat):
    """A :class:`~convlab.nn.Concat` with given children and ``branch_names`` (entries may be chains of names).

    What :func:`from_torch` builds for a :class:`TorchConcat` whose branches are not simply its
    children in order (e.g. ShuffleNet v2's ``("branch1", ("split", "branch2"))``).
    """

    def __init__(self, children: OrderedDict[str, nn.Module], branch_names: tuple[str | tuple[str, ...], ...]) -> None:
        super().__init__()
        for name, module in children.items():
            self.add_module(name, module)
        self.branch_names = tuple(branch_names)
        self.branch_modules()  # every name must be a child

    def extra_repr(self) -> str:
        return f"branch_names={self.branch_names}"


# ----------------------------------------------------------------------------- torch-side mirror classes


def _chain(entry: str | tuple[str, ...]) -> tuple[str, ...]:
    return (entry,) if isinstance(entry, str) else tuple(entry)


def _build_mirrors() -> dict[str, type]:
    """Define the torch classes (needs torch); called once, on first use."""
    if _mirrors:
        return _mirrors
    import torch
    import torch.nn.functional as F

    class TorchResidual(torch.nn.Module):
        """``post(body(x) + shortcut(x))`` over named children (convlab.nn.Residual in torch).

        ``body_names`` is the chain of children forming the body, ``shortcut_name`` a
        child (None, or a name with no child, means the identity), ``post_name`` the
        child applied to the sum (None: nothing). A child may appear in the body and as
        ``post`` (one stateless ReLU, as torchvision's blocks).
        """

        def __init__(self, children: OrderedDict[str, torch.nn.Module], body_names: tuple[str, ...],
                     shortcut_name: str | None = None, post_name: str | None = None) -> None:
            super().__init__()
            for name, module in children.items():
                self.add_module(name, module)
            self.body_names = tuple(body_names)
            self.shortcut_name = shortcut_name
            self.post_name = post_name

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = x
            for name in self.body_names:
                out = self._modules[name](out)
            shortcut = self._modules.get(self.shortcut_name) if self.shortcut_name is not None else None
            out = out + (x if shortcut is None else shortcut(x))
            return out if self.post_name is None else self._modules[self.post_name](out)

        def extra_repr(self) -> str:
            return f"body_names={self.body_names}, shortcut_name={self.shortcut_name!r}, post_name={self.post_name!r}"

    class TorchConcat(torch.nn.Module):
        """Every branch gets the input; outputs concatenated on dim 1 (convlab.nn.Concat in torch).

        ``branch_names`` entries are child names or tuples of names (a chain forming one branch).
        """

        def __init__(self, children: OrderedDict[str, torch.nn.Module],
                     branch_names: tuple[str | tuple[str, ...], ...]) -> None:
            super().__init__()
            for name, module in children.items():
                self.add_module(name, module)
            self.branch_names = tuple(e if isinstance(e, str) else tuple(e) for e in branch_names)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outputs = []
            for entry in self.branch_names:
                out = x
                for name in _chain(entry):
                    out = self._modules[name](out)
                outputs.append(out)
            return torch.cat(outputs, dim=1)

        def extra_repr(self) -> str:
            return f"branch_names={self.branch_names}"

    class TorchChannelSlice(torch.nn.Module):
        """Channels ``[start, stop)`` of ``(N, C, *S)``: ``x[:, start:stop]`` (convlab.nn.ChannelSlice in torch)."""

        def __init__(self, start: int, stop: int) -> None:
            super().__init__()
            self.start, self.stop = int(start), int(stop)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, self.start:self.stop]

        def extra_repr(self) -> str:
            return f"start={self.start}, stop={self.stop}"

    class TorchGlobalAvgPool(torch.nn.Module):
        """``(N, C, *S) -> (N, C, 1, ..., 1)``, the mean over every spatial position (convlab.nn.GlobalAvgPool)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)

    class TorchGlobalMaxPool(torch.nn.Module):
        """``(N, C, *S) -> (N, C, 1, ..., 1)``, the maximum over every spatial position (convlab.nn.GlobalMaxPool)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nd = x.dim() - 2
            return getattr(F, f"adaptive_max_pool{nd}d")(x, 1)  # the gradient goes to the argmax, as convlab's

    for cls in (TorchResidual, TorchConcat, TorchChannelSlice, TorchGlobalAvgPool, TorchGlobalMaxPool):
        cls.__module__ = __name__  # importable by name (module __getattr__), so pickling a whole model works
        cls.__qualname__ = cls.__name__
        _mirrors[cls.__name__] = cls
    return _mirrors


def __getattr__(name: str) -> Any:
    if name in MIRROR_CLASSES:
        return _build_mirrors()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- shared helpers


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _where(path: str) -> str:
    return repr(path) if path else "the model itself"


def _check_forward(fn: str, path: str, module: Any, base: type) -> None:
    """A subclass with its own forward computes something the converter does not know about."""
    for method in ("forward", "backward"):
        if hasattr(base, method) and getattr(type(module), method) is not getattr(base, method):
            raise TypeError(
                f"{fn}: {_where(path)} is a {type(module).__module__}.{type(module).__qualname__}, a subclass of "
                f"{base.__name__} with its own {method}(), which cannot be converted layer by layer"
            )


def _pairs_to_ints(padding: tuple) -> tuple[int, ...] | None:
    """Symmetric ``(lo, hi)`` pairs as ints per dimension, or None when asymmetric."""
    if all(lo == hi for lo, hi in padding):
        return tuple(int(lo) for lo, _ in padding)
    return None


# ----------------------------------------------------------------------------- convlab -> torch


def _torch_dtype(array: np.ndarray) -> Any:
    import torch

    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[array.dtype]


_SAME_NAME_IN_TORCH = {
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "LocalResponseNorm", "ReLU", "ReLU6", "Hardswish", "Sigmoid", "Tanh", "Softmax", "Linear", "Dropout", "Flatten",
    "Identity", "Upsample", "ChannelShuffle",
}


def _known_bases() -> tuple[type, ...]:
    """The convlab classes the converter reproduces (a subclass that overrides forward is refused)."""
    return (nn.Sequential, nn.Residual, nn.Concat, nn.ChannelSlice, nn.GlobalAvgPool, nn.GlobalMaxPool,
            *(getattr(nn, name) for name in sorted(_SAME_NAME_IN_TORCH)))


def _leaf_to_torch(m: nn.Module, path: str, base: type) -> Any:
    """The torch layer for the convlab layer ``m`` whose class is (or derives from) ``base``."""
    import torch.nn as tnn

    fn = "to_torch"
    kind = base.__name__
    torch_class = getattr(tnn, kind, None)
    if kind.startswith("Conv"):
        transposed = kind.startswith("ConvTranspose")
        spec = m.spec
        if spec.padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{fn}: {_where(path)} ({kind}) has padding_mode={spec.padding_mode!r}, which torch "
                             f"does not have (torch: 'zeros', 'reflect', 'replicate', 'circular')")
        if transposed and spec.padding_mode != "zeros":
            # convlab's transposed convolution with a mode is the adjoint of the convolution with that mode;
            # torch.nn.ConvTranspose refuses every mode but 'zeros', so no torch layer computes it.
            raise ValueError(f"{fn}: {_where(path)} ({kind}) has padding_mode={spec.padding_mode!r}, which "
                             f"torch.nn.{kind} refuses (only 'zeros'): convlab's transposed convolution with a "
                             f"padding mode is its own extension")
        if isinstance(m.padding, str) and m.padding in ("same", "valid") and not transposed:
            padding: Any = m.padding  # torch's own strings, with the same (PyTorch) semantics
        else:
            padding = None if isinstance(spec.padding, str) else _pairs_to_ints(spec.padding)
            if padding is None:
                raise ValueError(
                    f"{fn}: {_where(path)} ({kind}) has padding={m.padding!r} (resolved {spec.padding!r}), which "
                    f"torch.nn.{kind} cannot express: torch pads both ends of a dimension equally"
                )
        common = dict(stride=spec.stride, padding=padding, dilation=spec.dilation, groups=spec.groups,
                      bias=m.bias is not None, dtype=_torch_dtype(m.weight.data))
        if transposed:
            return torch_class(m.in_channels, m.out_channels, spec.kernel_size, output_padding=spec.output_padding,
                               **common)
        return torch_class(m.in_channels, m.out_channels, spec.kernel_size, padding_mode=spec.padding_mode, **common)
    if kind.startswith(("MaxPool", "AvgPool")):
        spec = m.spec
        padding = _pairs_to_ints(spec.padding)
        if padding is None:
            raise ValueError(f"{fn}: {_where(path)} ({kind}) has asymmetric padding {spec.padding}, which torch's "
                             f"pooling cannot express")
        if kind.startswith("Max"):
            return torch_class(spec.kernel_size, spec.stride, padding, spec.dilation,
                               return_indices=m.return_indices, ceil_mode=spec.ceil_mode)
        if kind == "AvgPool1d":
            if spec.divisor_override is not None:
                raise ValueError(f"{fn}: {_where(path)} (AvgPool1d) has divisor_override={spec.divisor_override}, "
                                 f"which torch.nn.AvgPool1d does not have")
            return torch_class(spec.kernel_size, spec.stride, padding, spec.ceil_mode, spec.count_include_pad)
        return torch_class(spec.kernel_size, spec.stride, padding, spec.ceil_mode, spec.count_include_pad,
                           spec.divisor_override)
    if kind.startswith("AdaptiveAvgPool"):
        return torch_class(m.output_size)
    if kind.startswith("AdaptiveMaxPool"):
        return torch_class(m.output_size, m.return_indices)
    if kind.startswith("BatchNorm"):
        reference = m.weight.data if m.affine else m.running_mean
        dtype = None if reference is None else _torch_dtype(reference)
        return torch_class(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dtype)
    if kind == "Linear":
        return torch_class(m.in_features, m.out_features, m.bias is not None, dtype=_torch_dtype(m.weight.data))
    if kind == "LocalResponseNorm":
        return torch_class(m.size, m.alpha, m.beta, m.k)
    if kind in ("ReLU", "ReLU6", "Hardswish", "Sigmoid", "Tanh", "Identity"):
        return torch_class()  # out of place, as convlab computes
    if kind == "Softmax":
        return torch_class(m.dim)
    if kind == "Dropout":
        return torch_class(m.p)
    if kind == "Flatten":
        return torch_class(m.start_dim, m.end_dim)
    if kind == "Upsample":
        return torch_class(size=m.size, scale_factor=m.scale_factor, mode=m.mode)
    if kind == "ChannelShuffle":
        return torch_class(m.groups)
    mirrors = _build_mirrors()
    if kind == "ChannelSlice":
        return mirrors["TorchChannelSlice"](m.start, m.stop)
    if kind == "GlobalAvgPool":
        return mirrors["TorchGlobalAvgPool"]()
    if kind == "GlobalMaxPool":
        return mirrors["TorchGlobalMaxPool"]()
    raise TypeError(f"to_torch: no rule for {kind}")  # unreachable: _known_bases lists the rules above


def _structure_to_torch(m: nn.Module, path: str, memo: dict[int, Any]) -> Any:
    """The torch module for ``m`` (weights not yet copied); a module reached twice maps to one torch module."""
    if id(m) in memo:
        return memo[id(m)]
    known = _known_bases()
    base = next((c for c in type(m).__mro__ if c in known), None)
    if base is None:
        raise TypeError(
            f"to_torch: {_where(path)} is a {type(m).__module__}.{type(m).__qualname__}, which has no torch "
            f"counterpart (supported: the convlab.nn layers and containers)"
        )
    _check_forward("to_torch", path, m, base)
    children = OrderedDict(
        (name, _structure_to_torch(child, _path(path, name), memo))
        for name, child in m._modules.items() if child is not None
    )
    if base is nn.Sequential:
        import torch.nn as tnn

        out = tnn.Sequential(children)
    elif base is nn.Residual:
        m.body_modules()  # the names must resolve (raises a TypeError naming the block otherwise)
        out = _build_mirrors()["TorchResidual"](children, m.body_names, m.shortcut_name, m.post_name)
    elif base is nn.Concat:
        m.branch_modules()
        out = _build_mirrors()["TorchConcat"](children, m.branch_names)
    else:
        if children:
            raise TypeError(f"to_torch: {_where(path)} ({type(m).__name__}) is a {base.__name__} with child "
                            f"modules {list(children)}, which torch.nn.{base.__name__} would not run")
        out = _leaf_to_torch(m, path, base)
    memo[id(m)] = out
    return out


def to_torch(model: nn.Module) -> Any:
    """The ``torch.nn.Module`` that computes what the ``convlab.nn`` model computes, with its weights.

    Parameters, buffers (BatchNorm's running statistics and ``num_batches_tracked``),
    each parameter's ``requires_grad`` and each module's training mode are copied;
    the torch model has the same module tree, so ``state_dict()`` has the same keys
    in the same order. float32 layers give float32 torch layers, float64 float64.

    Raises
    ------
    TypeError
        A module with no torch counterpart (a custom convlab Module, or a subclass of a
        convlab layer with its own ``forward``), named by its path in the model.
    ValueError
        A setting torch cannot express (asymmetric padding, ``padding_mode='symmetric'``).

    Examples
    --------
    (They need torch, so the core's doctest run skips them; tests/test_interop_torch.py runs them.)

    >>> import numpy as np
    >>> import torch  # doctest: +SKIP
    >>> from convlab import models
    >>> model = models.create("resnet18", input_size=(3, 32, 32), num_classes=10, rng=0).eval()
    >>> torch_model = to_torch(model)  # doctest: +SKIP
    >>> list(torch_model.state_dict())[:3]  # doctest: +SKIP
    ['conv1.weight', 'bn1.weight', 'bn1.bias']
    >>> x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    >>> y = torch_model(torch.from_numpy(x)).detach().numpy()  # doctest: +SKIP
    >>> bool(np.allclose(y, model(x), atol=1e-4))  # doctest: +SKIP
    True
    """
    import torch

    if not isinstance(model, nn.Module):
        raise TypeError(f"to_torch: `model` must be a convlab.nn.Module, got {type(model).__name__}")
    memo: dict[int, Any] = {}
    out = _structure_to_torch(model, "", memo)
    state = model.state_dict()
    with torch.no_grad():
        missing, unexpected = out.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    if missing or unexpected:  # the trees are built to match; anything else is a converter bug
        raise RuntimeError(f"to_torch: internal error, state_dict keys differ: missing {missing}, "
                           f"unexpected {unexpected}")
    torch_modules = dict(out.named_modules())
    for name, module in model.named_modules():
        torch_modules[name].training = module.training  # each module's own flag (train() would recurse)
    torch_params = dict(out.named_parameters())
    for name, param in model.named_parameters():
        torch_params[name].requires_grad_(param.requires_grad)
    return out


# ----------------------------------------------------------------------------- torch -> convlab


def _attribute(value: Any) -> Any:
    """torch attributes (ints, tuples, lists) as plain Python values."""
    if isinstance(value, list):
        return tuple(value)
    return value


def _leaf_from_torch(t: Any, path: str, dtype: np.dtype) -> nn.Module:
    import torch.nn as tnn

    fn = "from_torch"
    cls = type(t)
    name = cls.__name__

    def refuse(setting: str) -> ValueError:
        return ValueError(f"{fn}: {_where(path)} ({name}) has {setting}, which convlab.nn.{name} does not support")

    if cls in (tnn.Conv1d, tnn.Conv2d, tnn.Conv3d):
        return getattr(nn, name)(t.in_channels, t.out_channels, t.kernel_size, t.stride, _attribute(t.padding),
                                 t.dilation, t.groups, t.bias is not None, t.padding_mode, dtype=dtype)
    if cls in (tnn.ConvTranspose1d, tnn.ConvTranspose2d, tnn.ConvTranspose3d):
        if t.padding_mode != "zeros":
            raise refuse(f"padding_mode={t.padding_mode!r}")
        return getattr(nn, name)(t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding,
                                 t.output_padding, t.groups, t.bias is not None, t.dilation, dtype=dtype)
    if cls in (tnn.MaxPool1d, tnn.MaxPool2d, tnn.MaxPool3d):
        return getattr(nn, name)(t.kernel_size, t.stride, t.padding, t.dilation, t.return_indices, t.ceil_mode)
    if cls in (tnn.AvgPool1d, tnn.AvgPool2d, tnn.AvgPool3d):
        return getattr(nn, name)(t.kernel_size, t.stride, t.padding, t.ceil_mode, t.count_include_pad,
                                 getattr(t, "divisor_override", None))
    if cls in (tnn.AdaptiveAvgPool1d, tnn.AdaptiveAvgPool2d, tnn.AdaptiveAvgPool3d):
        return getattr(nn, name)(_attribute(t.output_size))
    if cls in (tnn.AdaptiveMaxPool1d, tnn.AdaptiveMaxPool2d, tnn.AdaptiveMaxPool3d):
        return getattr(nn, name)(_attribute(t.output_size), t.return_indices)
    if cls in (tnn.BatchNorm1d, tnn.BatchNorm2d, tnn.BatchNorm3d):
        return getattr(nn, name)(t.num_features, t.eps, t.momentum, t.affine, t.track_running_stats, dtype=dtype)
    if cls is tnn.LocalResponseNorm:
        return nn.LocalResponseNorm(t.size, t.alpha, t.beta, t.k)
    if cls in (tnn.ReLU, tnn.ReLU6, tnn.Hardswish):
        return getattr(nn, name)(inplace=t.inplace)
    if cls in (tnn.Sigmoid, tnn.Tanh, tnn.Identity):
        return getattr(nn, name)()
    if cls is tnn.Softmax:
        return nn.Softmax(t.dim)
    if cls is tnn.Linear:
        return nn.Linear(t.in_features, t.out_features, t.bias is not None, dtype=dtype)
    if cls is tnn.Dropout:
        return nn.Dropout(t.p, t.inplace)
    if cls is tnn.Flatten:
        return nn.Flatten(t.start_dim, t.end_dim)
    if cls is tnn.Upsample:
        if t.mode != "nearest":
            raise refuse(f"mode={t.mode!r} (only 'nearest' is supported)")
        if t.recompute_scale_factor:
            raise refuse("recompute_scale_factor=True")
        if t.size is not None:
            return nn.Upsample(size=_attribute(t.size))
        return nn.Upsample(_attribute(t.scale_factor))
    if cls is tnn.ChannelShuffle:
        return nn.ChannelShuffle(t.groups)
    mirrors = _build_mirrors()
    if cls is mirrors["TorchChannelSlice"]:
        return nn.ChannelSlice(t.start, t.stop)
    if cls is mirrors["TorchGlobalAvgPool"]:
        return nn.GlobalAvgPool()
    if cls is mirrors["TorchGlobalMaxPool"]:
        return nn.GlobalMaxPool()
    raise TypeError(
        f"{fn}: {_where(path)} is a {cls.__module__}.{cls.__qualname__}, which has no convlab.nn counterpart "
        f"(supported: {', '.join(_SUPPORTED_TORCH)}; a module with its own forward() cannot be converted "
        f"layer by layer)"
    )


_SUPPORTED_TORCH = (
    "Conv1d-3d", "ConvTranspose1d-3d", "MaxPool1d-3d", "AvgPool1d-3d", "AdaptiveAvgPool1d-3d",
    "AdaptiveMaxPool1d-3d", "BatchNorm1d-3d", "LocalResponseNorm", "ReLU", "ReLU6", "Sigmoid", "Tanh", "Hardswish",
    "Softmax", "Linear", "Dropout", "Flatten", "Identity", "Upsample (nearest)", "ChannelShuffle", "Sequential",
    "and the classes to_torch makes: " + ", ".join(MIRROR_CLASSES),
)


def _structure_from_torch(t: Any, path: str, dtype: np.dtype, memo: dict[int, nn.Module]) -> nn.Module:
    import torch.nn as tnn

    if id(t) in memo:
        return memo[id(t)]
    mirrors = _build_mirrors()
    cls = type(t)
    container = cls in (tnn.Sequential, mirrors["TorchResidual"], mirrors["TorchConcat"])
    children = OrderedDict(
        (name, _structure_from_torch(child, _path(path, name), dtype, memo))
        for name, child in t._modules.items() if child is not None
    ) if container else None
    if cls is tnn.Sequential:
        out: nn.Module = nn.Sequential(children)
    elif cls is mirrors["TorchResidual"]:
        names = (t.body_names, t.shortcut_name, t.post_name)
        plain = names[0] == ("body",) and names[1] in (None, "shortcut") and names[2] in (None, "post") \
            and list(children) == [n for n in ("body", names[1], names[2]) if n is not None]
        if plain:
            out = nn.Residual(children["body"], children.get("shortcut"), children.get("post"))
        else:
            out = NamedResidual(children, *names)
    elif cls is mirrors["TorchConcat"]:
        if list(t.branch_names) == list(children):
            out = nn.Concat(children)
        else:
            out = NamedConcat(children, t.branch_names)
    else:
        out = _leaf_from_torch(t, path, dtype)
    memo[id(t)] = out
    return out


def _float_dtype(module: Any, dtype: Any) -> np.dtype:
    import torch

    if dtype is not None:
        resolved = np.dtype(dtype)
        if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"from_torch: dtype (={resolved}) must be float32 or float64")
        return resolved
    kinds = {t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()}
    if not kinds:
        return np.dtype(np.float32)
    if kinds == {torch.float64}:
        return np.dtype(np.float64)
    if kinds == {torch.float32}:
        return np.dtype(np.float32)
    raise TypeError(f"from_torch: the module's tensors have dtypes {sorted(str(k) for k in kinds)}; convlab.nn "
                    f"layers are float32 or float64: pass dtype=np.float32 or np.float64 to convert them")


def from_torch(module: Any, *, dtype: Any = None) -> nn.Module:
    """The ``convlab.nn`` model that computes what the ``torch.nn.Module`` computes, with its weights.

    ``module`` must be built from the supported layers (Conv/ConvTranspose 1-3d, max,
    average and adaptive pools, BatchNorm 1-3d, LocalResponseNorm, ReLU, ReLU6,
    Sigmoid, Tanh, Hardswish, Softmax, Linear, Dropout, Flatten, Identity, Upsample
    'nearest', ChannelShuffle), ``torch.nn.Sequential``, and the classes
    :func:`to_torch` makes for convlab's containers. A module with its own
    ``forward`` (a torchvision ``BasicBlock``, say) is code, not a layer table, and
    raises a TypeError naming its path and class.

    Parameters, buffers, ``requires_grad`` and training modes are copied; the
    state_dict keys are the torch model's. ``dtype`` (float32 or float64) defaults
    to the module's own floating-point dtype.

    Examples
    --------
    (They need torch, so the core's doctest run skips them; tests/test_interop_torch.py runs them.)

    >>> import numpy as np
    >>> import torch  # doctest: +SKIP
    >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                                   torch.nn.Linear(4 * 6 * 6, 2))  # doctest: +SKIP
    >>> model = from_torch(torch_model)  # doctest: +SKIP
    >>> model  # doctest: +SKIP
    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3))
      (1): ReLU()
      (2): Flatten()
      (3): Linear(in_features=144, out_features=2)
    )
    >>> x = np.ones((1, 1, 8, 8), np.float32)
    >>> y = torch_model(torch.from_numpy(x)).detach().numpy()  # doctest: +SKIP
    >>> bool(np.allclose(model(x), y, atol=1e-5))  # doctest: +SKIP
    True
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: `module` must be a torch.nn.Module, got {type(module).__name__}")
    target = _float_dtype(module, dtype)
    memo: dict[int, nn.Module] = {}
    out = _structure_from_torch(module, "", target, memo)
    state = OrderedDict()
    for key, value in module.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(torch.float64)  # numpy has no bfloat16; load_state_dict casts to the layer's dtype
        state[key] = value.numpy()
    out.load_state_dict(state, strict=True)
    torch_modules = dict(module.named_modules())
    for name, converted in out.named_modules():
        object.__setattr__(converted, "training", bool(torch_modules[name].training))
    torch_params = dict(module.named_parameters())
    for name, param in out.named_parameters():
        param.requires_grad = bool(torch_params[name].requires_grad)
    return out
