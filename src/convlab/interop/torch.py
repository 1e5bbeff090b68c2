"""PyTorch interop: analysis of any ``torch.nn.Module``, and conversion to and from ``convlab.nn``.

Conversion (:func:`to_torch`, :func:`from_torch`) lives in
:mod:`convlab.interop.torch_convert` and is re-exported here. The rest of this
module is the PyTorch front-end of the analysis: any ``torch.nn.Module`` -> a
graph of layer facts -> a report.

torch is imported inside the functions, so importing this module costs nothing
without torch.

Two ways to see a model's data flow (``method=``):

``"fx"``
    ``torch.fx`` symbolic tracing with a tracer that keeps the ``torch.nn`` layers
    it knows as leaves (Conv*, ConvTranspose*, pools, BatchNorm*, activations,
    Linear, Dropout, Flatten, Upsample, ChannelShuffle, LocalResponseNorm, pads,
    norms) and traces into everything else, so a functional ``F.conv2d(x, self.weight)``
    in a custom ``forward`` is found and counted with the weight's shape (read from
    the ``get_attr`` node). Module calls are mapped by class, functions by target
    (``F.conv*``, ``F.conv_transpose*``, ``F.linear``, pools, adaptive pools,
    activations, ``operator.add``/``torch.add``, ``torch.cat``, ``torch.flatten``,
    ``view``/``reshape`` with symbolic sizes, ``chunk``/``split`` + ``getitem``,
    slicing, ``channel_shuffle``, ``interpolate``, ``pad``, ``mean`` over the spatial
    dims, ``transpose``/``permute``). No forward pass is run, except that when an
    operation has no convlab rule (kind ``other``) its output shape is taken from
    ``torch.fx.passes.shape_prop.ShapeProp`` on fake tensors (no real compute).
``"dynamic"``
    The fallback for models that cannot be traced symbolically (data-dependent
    control flow, ``for`` loops over sizes ...): one forward pass under a
    ``TorchFunctionMode`` that records every torch function called on a tensor
    derived from the input, with the module stack for names. It runs on fake tensors
    (``FakeTensorMode``: shapes only, no compute) and, if the model needs real values
    (``if x.sum() > 0``), on zeros with ``torch.no_grad()`` in eval mode (BatchNorm
    statistics are not touched). Limits: it sees only the path taken for that input;
    ops on constants are folded away; the model runs in eval mode for the recording.
``"auto"`` (default)
    ``"fx"``, falling back to ``"dynamic"`` when tracing raises.

Either way, shapes, costs and receptive fields come from the same analysis as for
``convlab.nn`` models (:func:`convlab.analysis.analyze_graph`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ..analysis.facts import analyze_graph
from ..analysis.graph import Graph
from ..analysis.report import Report
from ..spec import ConvSpec, PoolSpec
from .torch_convert import MIRROR_CLASSES, NamedConcat, NamedResidual, from_torch, to_torch

__all__ = ["NamedConcat", "NamedResidual", "analyze", "from_torch", "graph_from_torch", "to_torch"]


def __getattr__(name: str) -> Any:
    """The torch classes for convlab's containers (``TorchResidual`` ...), created on first access."""
    if name in MIRROR_CLASSES:
        from . import torch_convert

        return getattr(torch_convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- values seen by the mapper


class _T:
    """A tensor produced by the graph (node id)."""

    __slots__ = ("id",)

    def __init__(self, node_id: int) -> None:
        self.id = node_id


class _Const:
    """A tensor that does not depend on the input (parameter, buffer, or a function of them)."""

    __slots__ = ("shape", "sources")

    def __init__(self, shape: tuple[int, ...] | None, sources: Sequence[Any]) -> None:
        self.shape = shape
        self.sources = list(sources)  # the parameters/buffers it is made of (counted once, where used)


class _Size:
    """A symbolic size: ``('dim', node, axis)`` / ``('expr', ...)`` entries understood by the analysis."""

    __slots__ = ("entry",)

    def __init__(self, entry: tuple) -> None:
        self.entry = entry


class _Shape:
    """``x.shape`` / ``x.size()`` of a graph tensor."""

    __slots__ = ("id",)

    def __init__(self, node_id: int) -> None:
        self.id = node_id


class _Pieces:
    """The tuple returned by ``chunk`` / ``split`` of a graph tensor; ``getitem`` makes a slice node."""

    __slots__ = ("attrs", "id", "name")

    def __init__(self, node_id: int, attrs: dict, name: str) -> None:
        self.id, self.attrs, self.name = node_id, attrs, name


_ACTIVATION_CLASSES = {
    "ReLU": "relu", "ReLU6": "relu6", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu", "SELU": "selu",
    "CELU": "celu", "GELU": "gelu", "SiLU": "silu", "Mish": "mish", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Hardtanh": "hardtanh", "Softplus": "softplus",
    "Softsign": "softsign", "LogSigmoid": "logsigmoid", "Tanhshrink": "tanhshrink", "Threshold": "threshold",
    "RReLU": "rrelu", "GLU": None,
}
_ACTIVATION_FUNCTIONS = {
    "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
    "hardswish", "hardsigmoid", "hardtanh", "softplus", "softsign", "logsigmoid", "tanhshrink", "threshold",
    "rrelu", "exp", "abs", "sqrt", "rsqrt", "clamp", "clip", "square", "neg",
}
_IDENTITY_FUNCTIONS = {"contiguous", "clone", "detach", "to", "float", "double", "half", "type_as", "requires_grad_"}
_ADD = {"add", "sub", "iadd", "isub", "radd", "rsub"}
_MUL = {"mul", "truediv", "div", "imul", "itruediv", "rmul", "rtruediv"}
_NORM_CLASSES = {"GroupNorm", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm"}
_PAD_CLASSES = ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")


def _leaf_classes() -> dict[type, str]:
    """torch.nn classes the tracer keeps as leaves, by class -> class name."""
    import torch.nn as nn

    names = [
        *(f"Conv{n}d" for n in (1, 2, 3)), *(f"ConvTranspose{n}d" for n in (1, 2, 3)),
        *(f"{p}Pool{n}d" for p in ("Max", "Avg", "AdaptiveAvg", "AdaptiveMax") for n in (1, 2, 3)),
        *(f"BatchNorm{n}d" for n in (1, 2, 3)), "SyncBatchNorm", *_NORM_CLASSES, "LocalResponseNorm",
        *(k for k in _ACTIVATION_CLASSES if _ACTIVATION_CLASSES[k]), "Softmax", "LogSoftmax", "Softmax2d",
        "Linear", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
        "Flatten", "Identity", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "ChannelShuffle",
        *(f"{p}{n}d" for p in _PAD_CLASSES for n in (1, 2, 3)),
    ]
    return {getattr(nn, n): n for n in names if hasattr(nn, n)}


def _function_keys() -> dict[Any, str]:
    """Function objects -> the mapper's key (the torch name without the namespace)."""
    import torch
    import torch.nn.functional as F

    keys: dict[Any, str] = {}
    for module in (F, torch, torch.Tensor):
        for name in (
            "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear",
            "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
            "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
            "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
            "adaptive_max_pool3d", "batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm",
            "local_response_norm", "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d", "dropout3d",
            "alpha_dropout", "feature_alpha_dropout", "cat", "concat", "concatenate", "flatten", "reshape",
            "channel_shuffle", "native_channel_shuffle", "interpolate", "upsample", "pad", "mean", "chunk",
            "split", "add", "sub", "mul", "div", "true_divide", "transpose", "permute", "squeeze", "unsqueeze",
            *_ACTIVATION_FUNCTIONS,
        ):
            obj = getattr(module, name, None)
            if obj is not None:
                try:
                    keys.setdefault(obj, name)
                except TypeError:  # unhashable
                    pass
    for name in ("add", "sub", "mul", "truediv", "floordiv", "iadd", "isub", "imul", "itruediv", "getitem", "neg"):
        keys[getattr(operator, name)] = name
    keys[getattr] = "getattr"
    return keys


def _key(target: Any, keys: dict[Any, str]) -> str:
    try:
        key = keys.get(target)
    except TypeError:
        key = None
    if key is None:
        key = getattr(target, "__name__", str(target))
    key = key.strip("_")
    if key.endswith("_") and key[:-1] in _ACTIVATION_FUNCTIONS | _ADD | _MUL:
        key = key[:-1]  # in-place variants: relu_, add_
    if key.startswith("i") and key[1:] in ("add", "sub", "mul", "truediv"):
        key = key[1:]
    if key.startswith("r") and key[1:] in ("add", "sub", "mul", "truediv"):
        key = key[1:]
    if key == "true_divide":
        key = "div"
    return key


def _bind(fn: str, args: Sequence[Any], kwargs: dict, names: Sequence[str], defaults: dict) -> dict:
    bound = dict(defaults)
    if len(args) > len(names):
        raise ValueError(f"analyze: {fn} got {len(args)} positional arguments, expected at most {len(names)}")
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_MAX_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_INTERPOLATE = ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")


# ----------------------------------------------------------------------------- the mapper


class _Mapper:
    """Turns calls (module calls and functions, with _T/_Const/_Size values) into graph nodes."""

    def __init__(self, buffer_ids: set[int]) -> None:
        self.graph = Graph()
        self.keys = _function_keys()
        self.counted: set[int] = set()
        self.buffer_ids = buffer_ids
        self.names: dict[str, int] = {}

    # -- names and counts
    def unique(self, name: str) -> str:
        count = self.names.get(name, 0) + 1
        self.names[name] = count
        return name if count == 1 else f"{name}#{count}"

    def count(self, tensors: Sequence[Any]) -> tuple[int, int, int]:
        """(trainable, frozen, buffer) elements of tensors not counted before."""
        trainable = frozen = buffers = 0
        for t in tensors:
            if t is None or id(t) in self.counted:
                continue
            self.counted.add(id(t))
            n = t.numel()
            if id(t) in self.buffer_ids:
                buffers += n
            elif getattr(t, "requires_grad", False) or _is_parameter(t):
                if t.requires_grad:
                    trainable += n
                else:
                    frozen += n
        return trainable, frozen, buffers

    def consts_of(self, values: Sequence[Any]) -> list[Any]:
        out = []
        for v in values:
            if isinstance(v, _Const):
                out.extend(v.sources)
            elif isinstance(v, (list, tuple)):
                out.extend(self.consts_of(v))
        return out

    # -- module calls (fx call_module; known torch.nn leaves)
    def module(self, m: Any, class_name: str, name: str, x: _T) -> _T | None:
        """A node for a known torch.nn leaf ``m`` applied to ``x``; None when the class is not known."""
        trainable, frozen, buffers = self.count([*m.parameters(), *m.buffers()])
        common = {"op": type(m).__name__, "params": trainable, "frozen_params": frozen, "buffers": buffers}
        add = self.graph.add
        c = class_name
        nd = int(c[-2]) if c[-2:-1].isdigit() and c.endswith("d") else None
        if c.startswith("Conv") and nd:
            transposed = c.startswith("ConvTranspose")
            spec = ConvSpec(
                m.kernel_size, m.stride, m.padding, m.dilation, m.groups, m.padding_mode, transposed,
                m.output_padding if transposed else 0, ndim=nd, name=name,
            )
            return _T(add("conv_transpose" if transposed else "conv", name, x.id, spec=spec,
                          in_channels=m.in_channels, out_channels=m.out_channels, bias=m.bias is not None, **common))
        if c.startswith(("MaxPool", "AvgPool")) and nd:
            spec = PoolSpec(
                m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1), m.ceil_mode,
                getattr(m, "count_include_pad", True), getattr(m, "divisor_override", None), ndim=nd, name=name,
            )
            return _T(add("pool_max" if c.startswith("Max") else "pool_avg", name, x.id, spec=spec, **common))
        if c.startswith("Adaptive") and nd:
            size = m.output_size
            size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
            return _T(add("adaptive_pool", name, x.id, output_size=size, mode="max" if "Max" in c else "avg",
                          **common))
        if c.startswith("BatchNorm") or c == "SyncBatchNorm":
            return _T(add("bn", name, x.id, num_features=m.num_features, affine=m.affine,
                          track_running_stats=m.track_running_stats, ndim=nd, **common))
        if c in _NORM_CLASSES:
            return _T(add("norm", name, x.id, **common))
        if c == "LocalResponseNorm":
            return _T(add("lrn", name, x.id, size=m.size, **common))
        if _ACTIVATION_CLASSES.get(c):
            return _T(add("activation", name, x.id, function=_ACTIVATION_CLASSES[c], **common))
        if c in ("Softmax", "LogSoftmax"):
            return _T(add("softmax", name, x.id, dim=-1 if m.dim is None else m.dim, **common))
        if c == "Softmax2d":
            return _T(add("softmax", name, x.id, dim=-3, **common))
        if c == "Linear":
            return _T(add("linear", name, x.id, in_features=m.in_features, out_features=m.out_features,
                          bias=m.bias is not None, **common))
        if "Dropout" in c:
            return _T(add("dropout", name, x.id, **common))
        if c == "Flatten":
            return _T(add("flatten", name, x.id, start_dim=m.start_dim, end_dim=m.end_dim, **common))
        if c == "Identity":
            return _T(add("identity", name, x.id, **common))
        if c.startswith("Upsampl"):
            align = True if c == "UpsamplingBilinear2d" else m.align_corners
            return _T(add("upsample", name, x.id, size=_tuple_or_none(m.size), scale_factor=_tuple_or_none(
                m.scale_factor), mode=m.mode, align_corners=align, **common))
        if c == "ChannelShuffle":
            return _T(add("shuffle", name, x.id, groups=m.groups, **common))
        if c.startswith(_PAD_CLASSES) and nd:
            return _T(add("pad", name, x.id, pads=_pad_pairs(tuple(m.padding)), **common))
        return None

    # -- functions (fx call_function / call_method, and the dynamic recorder)
    def function(self, key: str, base: str, args: Sequence[Any], kwargs: dict, count_consts: bool = True) -> Any:
        """A node (or a symbolic value) for the function ``key``; None when it has no mapping.

        ``base`` is the node's name before de-duplication (taken only when a node is made).
        """
        tensors = [a for a in _flat(args) + _flat(list(kwargs.values())) if isinstance(a, _T)]
        if key in ("floordiv", "mul", "add", "sub", "truediv", "neg") and any(isinstance(a, _Size) for a in args):
            return _Size(("expr", key, _entry(args[0]), _entry(args[1]) if len(args) > 1 else None))
        if key == "size" and tensors:
            b = _bind(key, args, kwargs, ("input", "dim"), {"dim": None})
            return _Shape(tensors[0].id) if b["dim"] is None else _Size(("dim", tensors[0].id, b["dim"]))
        if key == "getattr" and tensors and args[1] == "shape":
            return _Shape(tensors[0].id)
        if key == "getitem" and isinstance(args[0], _Shape) and isinstance(args[1], int):
            return _Size(("dim", args[0].id, args[1]))
        common: dict[str, Any] = {"op": key}
        if count_consts:
            trainable, frozen, buffers = self.count(self.consts_of(list(args) + list(kwargs.values())))
            common.update(params=trainable, frozen_params=frozen, buffers=buffers)
        names: list[str] = []

        def add(kind: str, node_name: Any, inputs: Any, **attrs: Any) -> int:
            return self.graph.add(kind, str(node_name), inputs, **attrs)

        class _Name:
            """The de-duplicated name, taken on first use."""

            def __str__(inner) -> str:
                if not names:
                    names.append(self.unique(base))
                return names[0]

        name = _Name()

        def first() -> int:
            return tensors[0].id

        if key in ("conv1d", "conv2d", "conv3d"):
            b = _bind(key, args, kwargs, _CONV, {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
            w = _shape_of(b["weight"])
            if w is None or not isinstance(b["input"], _T):
                return None
            nd = int(key[-2])
            spec = ConvSpec(tuple(w[2:]), b["stride"], b["padding"], b["dilation"], b["groups"],
                            ndim=nd, name=str(name))
            return _T(add("conv", name, b["input"].id, spec=spec, in_channels=w[1] * b["groups"], out_channels=w[0],
                          bias=b["bias"] is not None, **common))
        if key.startswith("conv_transpose"):
            b = _bind(key, args, kwargs, _CONV_T,
                      {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1})
            w = _shape_of(b["weight"])
            if w is None or not isinstance(b["input"], _T):
                return None
            nd = int(key[-2])
            spec = ConvSpec(tuple(w[2:]), b["stride"], b["padding"], b["dilation"], b["groups"], "zeros", True,
                            b["output_padding"], ndim=nd, name=str(name))
            return _T(add("conv_transpose", name, b["input"].id, spec=spec, in_channels=w[0],
                          out_channels=w[1] * b["groups"], bias=b["bias"] is not None, **common))
        if key == "linear":
            b = _bind(key, args, kwargs, ("input", "weight", "bias"), {"bias": None})
            w = _shape_of(b["weight"])
            if w is None or len(w) != 2 or not isinstance(b["input"], _T):
                return None
            return _T(add("linear", name, b["input"].id, in_features=w[1], out_features=w[0],
                          bias=b["bias"] is not None, **common))
        if key.startswith(("max_pool", "avg_pool")):
            nd = int(key[len("max_pool")])
            if key.startswith("max"):
                b = _bind(key, args, kwargs, _MAX_POOL, {"stride": None, "padding": 0, "dilation": 1,
                                                          "ceil_mode": False, "return_indices": False})
                spec = PoolSpec(b["kernel_size"], b["stride"], b["padding"], b["dilation"], b["ceil_mode"],
                                ndim=nd, name=str(name))
            else:
                b = _bind(key, args, kwargs, _AVG_POOL, {"stride": None, "padding": 0, "ceil_mode": False,
                                                          "count_include_pad": True, "divisor_override": None})
                spec = PoolSpec(b["kernel_size"], b["stride"], b["padding"], 1, b["ceil_mode"],
                                b["count_include_pad"], b["divisor_override"], ndim=nd, name=str(name))
            kind = "pool_max" if key.startswith("max") else "pool_avg"
            return _T(add(kind, name, first(), spec=spec, **common))
        if key.startswith("adaptive_"):
            nd = int(key[-2])
            b = _bind(key, args, kwargs, ("input", "output_size", "return_indices"), {})
            size = b["output_size"]
            size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
            return _T(add("adaptive_pool", name, first(), output_size=size, mode="max" if "max" in key else "avg",
                          **common))
        if key == "batch_norm":
            return _T(add("bn", name, first(), num_features=None, **common))
        if key in ("layer_norm", "group_norm", "instance_norm", "rms_norm"):
            return _T(add("norm", name, first(), **common))
        if key == "local_response_norm":
            b = _bind(key, args, kwargs, ("input", "size"), {})
            return _T(add("lrn", name, first(), size=b["size"], **common))
        if key in _ACTIVATION_FUNCTIONS and len(tensors) == 1:
            return _T(add("activation", name, first(), function=key, **common))
        if key in ("softmax", "log_softmax"):
            b = _bind(key, args, kwargs, ("input", "dim", "_stacklevel", "dtype"), {"dim": None})
            return _T(add("softmax", name, first(), dim=-1 if b["dim"] is None else b["dim"], **common))
        if key.startswith(("dropout", "alpha_dropout", "feature_alpha_dropout")):
            return _T(add("dropout", name, first(), **common))
        if key in _IDENTITY_FUNCTIONS:
            return _T(add("identity", name, first(), **common)) if tensors else None
        if key in _ADD or key in _MUL:
            operands = [a for a in args[:2] if isinstance(a, (_T, _Const, int, float))]
            if not tensors:
                return None
            kind = "add" if key in _ADD else "mul"
            return _T(add(kind, name, [t.id for t in tensors], operands=max(len(operands), 2), **common))
        if key in ("cat", "concat", "concatenate"):
            b = _bind(key, args, kwargs, ("tensors", "dim"), {"dim": 0})
            parts = list(b["tensors"])
            if not all(isinstance(p, _T) for p in parts):
                return None
            return _T(add("concat", name, [p.id for p in parts], dim=b["dim"], **common))
        if key == "flatten":
            b = _bind(key, args, kwargs, ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return _T(add("flatten", name, first(), start_dim=b["start_dim"], end_dim=b["end_dim"], **common))
        if key in ("view", "reshape"):
            target = list(args[1:]) if len(args) > 1 else list(kwargs.get("shape", kwargs.get("size", ())))
            if len(target) == 1 and isinstance(target[0], (list, tuple, _Shape)):
                target = [target[0]] if isinstance(target[0], _Shape) else list(target[0])
            entries = [_entry(v) for v in target]
            if any(e is None for e in entries) or not tensors:
                return None
            return _T(add("reshape", name, first(), shape=tuple(entries), **common))
        if key in ("transpose", "permute") and tensors:
            if key == "transpose":
                b = _bind(key, args, kwargs, ("input", "dim0", "dim1"), {})
                return _T(add("reshape", name, first(), perm=None, swap=(b["dim0"], b["dim1"]), **common))
            dims = list(args[1:]) if len(args) > 1 else list(kwargs.get("dims", ()))
            if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
                dims = list(dims[0])
            return _T(add("reshape", name, first(), perm=tuple(dims), **common))
        if key in ("channel_shuffle", "native_channel_shuffle"):
            b = _bind(key, args, kwargs, ("input", "groups"), {})
            return _T(add("shuffle", name, first(), groups=b["groups"], **common))
        if key in ("interpolate", "upsample"):
            b = _bind(key, args, kwargs, _INTERPOLATE, {"size": None, "scale_factor": None, "mode": "nearest",
                                                         "align_corners": None})
            return _T(add("upsample", name, first(), size=_tuple_or_none(b["size"]),
                          scale_factor=_tuple_or_none(b["scale_factor"]), mode=b["mode"],
                          align_corners=b["align_corners"], **common))
        if key == "pad":
            b = _bind(key, args, kwargs, ("input", "pad", "mode", "value"), {})
            return _T(add("pad", name, first(), pads=_pad_pairs(tuple(b["pad"])), **common))
        if key == "mean" and tensors:
            b = _bind(key, args, kwargs, ("input", "dim", "keepdim", "dtype"), {"dim": None, "keepdim": False})
            dims = b["dim"]
            if dims is None:
                return None
            dims = (dims,) if isinstance(dims, int) else tuple(dims)
            return _T(add("global_pool", name, first(), ndim=None, dims=dims, mode="avg", keepdim=b["keepdim"],
                          **common))
        if key in ("chunk", "split") and tensors:
            if key == "chunk":
                b = _bind(key, args, kwargs, ("input", "chunks", "dim"), {"dim": 0})
                attrs = {"chunks": b["chunks"], "dim": b["dim"]}
            else:
                b = _bind(key, args, kwargs, ("input", "split_size_or_sections", "dim"), {"dim": 0})
                attrs = {"sizes": b["split_size_or_sections"], "dim": b["dim"]}
            return _Pieces(first(), attrs, base)
        if key == "getitem":
            source, index = args[0], args[1]
            if isinstance(source, _Pieces) and isinstance(index, int):
                return _T(add("slice", self.unique(f"{source.name}[{index}]"), source.id, op="getitem",
                              index=index, **source.attrs))
            if isinstance(source, _T):
                spec = _slice_spec(index)
                if spec is not None:
                    return _T(add("slice", name, source.id, op="getitem", **spec))
            return None
        return None


def _is_parameter(t: Any) -> bool:
    import torch

    return isinstance(t, torch.nn.Parameter)


def _flat(values: Sequence[Any]) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def _shape_of(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, _Const):
        return value.shape
    return None


def _tuple_or_none(value: Any) -> Any:
    if value is None or isinstance(value, (int, float)):
        return value
    return tuple(value)


def _pad_pairs(pad: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """torch's pad tuple (last dim first: left, right, top, bottom, ...) -> (lo, hi) pairs, first dim first."""
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    return tuple(reversed(pairs))


def _entry(value: Any) -> Any:
    if isinstance(value, _Size):
        return value.entry
    if isinstance(value, _Shape):
        return ("shape", value.id)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if hasattr(value, "__index__"):
        return int(value)
    return None


def _slice_spec(index: Any) -> dict | None:
    """``x[:, a:b, ::2]`` -> {'slices': ((1, a, b, None), (2, None, None, 2))}; plain slices only."""
    index = index if isinstance(index, tuple) else (index,)
    found = []
    for dim, item in enumerate(index):
        if not isinstance(item, slice):
            return None  # integers, Ellipsis, None, tensors: left to ShapeProp (kind 'other')
        if item == slice(None):
            continue
        if not all(v is None or isinstance(v, int) for v in (item.start, item.stop, item.step)):
            return None
        found.append((dim, item.start, item.stop, item.step))
    return {"slices": tuple(found)} if found else None


# ----------------------------------------------------------------------------- fx front-end


def _tracer_class():
    import torch.fx as fx

    leaves = _leaf_classes()

    class LeafTracer(fx.Tracer):
        """Keeps the torch.nn layers convlab knows as leaves; traces into the rest (custom forwards)."""

        def is_leaf_module(self, m, qualname):
            cls = type(m)
            for base in cls.__mro__:
                if base in leaves:
                    # a subclass with its own forward is traced into (its functional ops are mapped)
                    return cls.forward is base.forward
            return super().is_leaf_module(m, qualname)

    return LeafTracer, leaves


def _leaf_name(m: Any, leaves: dict[type, str]) -> str | None:
    for base in type(m).__mro__:
        if base in leaves:
            return leaves[base]
    return None


def _fetch(root: Any, target: str) -> Any:
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _input_shapes(input_shape: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    if input_shape and all(isinstance(v, int) for v in input_shape):
        return [tuple(int(v) for v in input_shape)]
    return [tuple(int(v) for v in s) for s in input_shape]


def _graph_fx(module: Any, shapes: list[tuple[int, ...]]) -> Graph:
    import torch
    import torch.fx as fx

    tracer_class, leaves = _tracer_class()
    tracer = tracer_class()
    fx_graph = tracer.trace(module)
    buffer_ids = {id(b) for b in module.buffers()}
    mapper = _Mapper(buffer_ids)
    env: dict[Any, Any] = {}
    pending_other: list[tuple[Any, int]] = []
    placeholders = 0
    meta: dict[Any, tuple[int, ...]] | None = None

    def observed() -> dict[Any, tuple[int, ...]]:
        nonlocal meta
        if meta is None:
            meta = _shape_prop(fx.GraphModule(tracer.root, fx_graph), shapes)
        return meta

    def value(a: Any) -> Any:
        if isinstance(a, fx.Node):
            return env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(value(v) for v in a)
        if isinstance(a, dict):
            return {k: value(v) for k, v in a.items()}
        return a

    for node in fx_graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack.values()))[0] if stack else ""
        if node.op == "placeholder":
            if placeholders >= len(shapes):
                # extra arguments with defaults (e.g. forward(x, mask=None)) stay constants
                env[node] = node.args[0] if node.args else None
                continue
            env[node] = _T(mapper.graph.input("input" if len(shapes) == 1 else node.name))
            placeholders += 1
        elif node.op == "get_attr":
            obj = _fetch(tracer.root, node.target)
            env[node] = _Const(tuple(obj.shape), [obj]) if isinstance(obj, torch.Tensor) else obj
        elif node.op == "call_module":
            m = tracer.root.get_submodule(node.target)
            args = value(node.args)
            x = args[0] if args else None
            name = mapper.unique(node.target)
            out = None
            class_name = _leaf_name(m, leaves)
            if class_name is not None and isinstance(x, _T):
                out = mapper.module(m, class_name, name, x)
            if out is None:
                out = _other(mapper, name, type(m).__name__, args, [*m.parameters(), *m.buffers()])
                pending_other.append((node, out.id))
            env[node] = out
        elif node.op in ("call_function", "call_method"):
            args = value(node.args)
            kwargs = value(node.kwargs)
            key = node.target if node.op == "call_method" else _key(node.target, mapper.keys)
            key = _key(key, {}) if node.op == "call_method" else key
            base = key if not scope else f"{scope}.{key}"
            has_tensor = any(isinstance(a, (_T, _Shape, _Pieces, _Size)) for a in _flat(list(args)) + _flat(
                list(kwargs.values())))
            if not has_tensor:
                env[node] = _const_result(node, args, kwargs, observed)
                continue
            out = mapper.function(key, base, args, kwargs)
            if out is None:
                if not any(isinstance(a, _T) for a in _flat(list(args)) + _flat(list(kwargs.values()))):
                    raise _Untraceable(f"cannot follow {key} on symbolic sizes or pieces")
                consts = mapper.consts_of(list(args) + list(kwargs.values()))
                out = _other(mapper, mapper.unique(base), key, args, consts)
                pending_other.append((node, out.id))
            env[node] = out
        elif node.op == "output":
            outs = [v for v in _flat([value(node.args[0])]) if isinstance(v, _T)]
            mapper.graph.outputs = [v.id for v in outs]
    if placeholders < len(shapes):
        raise ValueError(f"analyze: the model takes {placeholders} tensor input(s), got {len(shapes)} input shapes")
    if pending_other:
        shapes_seen = observed()
        for fx_node, node_id in pending_other:
            shape = shapes_seen.get(fx_node)
            if shape is not None:
                mapper.graph.nodes[node_id].observed_output_shape = shape
    return mapper.graph


class _Untraceable(Exception):
    """Raised when the fx graph uses sizes in a way the mapper cannot follow (the dynamic method can)."""


def _other(mapper: _Mapper, name: str, op: str, args: Any, consts: Sequence[Any]) -> _T:
    inputs = [a.id for a in _flat(list(args)) if isinstance(a, _T)]
    if not inputs:
        raise _Untraceable(f"{op}: no tensor input the analysis can follow")
    trainable, frozen, buffers = mapper.count(list(consts))
    return _T(mapper.graph.add("other", name, inputs, op=op, params=trainable, frozen_params=frozen,
                               buffers=buffers))


def _const_result(node: Any, args: Any, kwargs: Any, observed) -> Any:
    """A function of constants only (e.g. a weight transformed in forward): keep its sources and shape."""
    sources = []
    for a in _flat(list(args)) + _flat(list(kwargs.values())):
        if isinstance(a, _Const):
            sources.extend(a.sources)
    if not sources:
        return None
    return _Const(observed().get(node), sources)


def _shape_prop(gm: Any, shapes: list[tuple[int, ...]]) -> dict[Any, tuple[int, ...]]:
    """Output shapes of every fx node from ShapeProp on fake tensors (no compute); zeros as a fallback."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        from torch._subclasses.fake_tensor import FakeTensorMode

        mode = FakeTensorMode(allow_non_fake_inputs=True)
        with _eval(gm):
            ShapeProp(gm, fake_mode=mode).propagate(*(torch.empty(s) for s in shapes))
    except Exception:
        with _eval(gm), torch.no_grad():
            ShapeProp(gm).propagate(*(torch.zeros(s) for s in shapes))
    out = {}
    for node in gm.graph.nodes:
        tm = node.meta.get("tensor_meta")
        if tm is not None and hasattr(tm, "shape"):
            out[node] = tuple(tm.shape)
    return out


class _eval:
    """Eval mode for the duration (BatchNorm statistics untouched), then the original modes back."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()

    def __exit__(self, *exc: Any) -> None:
        for m, mode in self.modes:
            m.training = mode


# ----------------------------------------------------------------------------- dynamic front-end


def _graph_dynamic(module: Any, shapes: list[tuple[int, ...]]) -> Graph:
    import torch
    from torch.overrides import TorchFunctionMode

    buffer_ids = {id(b) for b in module.buffers()}
    mapper = _Mapper(buffer_ids)
    produced: dict[int, int] = {}
    pending: dict[int, tuple[_Pieces, int]] = {}
    alive: list[Any] = []
    stack: list[list[Any]] = []  # [qualified name, module, nodes made inside this call]
    names = {id(m): n for n, m in module.named_modules()}
    leaves = _leaf_classes()

    def wrap(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            if id(v) in produced:
                return _T(produced[id(v)])
            if id(v) in pending:
                pieces, index = pending.pop(id(v))
                out = mapper.function("getitem", pieces.name, (pieces, index), {})
                produced[id(v)] = out.id
                return out
            return _Const(tuple(v.shape), [v])
        if isinstance(v, (list, tuple)):
            return type(v)(wrap(x) for x in v)
        if isinstance(v, torch.Size):
            return tuple(v)
        return v

    def graph_tensor(v: Any) -> bool:
        if isinstance(v, torch.Tensor):
            return id(v) in produced or id(v) in pending
        if isinstance(v, (list, tuple)):
            return any(graph_tensor(x) for x in v)
        return False

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if graph_tensor(list(args)) or graph_tensor(list(kwargs.values())):
                record(func, args, kwargs, out)
            return out

    def record(func: Any, args: Any, kwargs: dict, out: Any) -> None:
        key = _key(func, mapper.keys)
        if key in ("size", "dim", "numel", "bool", "len", "getattr", "item", "ne", "eq", "gt", "lt", "ge", "le",
                   "any", "all", "sum") and not isinstance(out, torch.Tensor):
            return
        frame = stack[-1] if stack else ["", None, 0]
        scope, owner = frame[0], frame[1]
        is_leaf = owner is not None and not any(True for _ in owner.children())
        name = scope if (is_leaf and frame[2] == 0) else (f"{scope}.{key}" if scope else key)
        frame[2] += 1
        w_args, w_kwargs = wrap(list(args)), {k: wrap(v) for k, v in kwargs.items()}
        count_consts = True
        params = frozen = buffers = 0
        if is_leaf and id(owner) not in counted_modules:
            counted_modules.add(id(owner))
            params, frozen, buffers = mapper.count([*owner.parameters(), *owner.buffers()])
        if key in ("chunk", "split", "unbind") and isinstance(out, (tuple, list)):
            pieces = mapper.function(key, name, w_args, w_kwargs, count_consts)
            if isinstance(pieces, _Pieces):
                for i, piece in enumerate(out):
                    pending[id(piece)] = (pieces, i)
                    alive.append(piece)
            return
        tensor_out = out[0] if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor) else out
        if not isinstance(tensor_out, torch.Tensor):
            return
        if key == "batch_norm" and is_leaf and type(owner) in leaves:
            result = mapper.module(owner, leaves[type(owner)], mapper.unique(name), w_args[0])
        else:
            result = mapper.function(key, name, w_args, w_kwargs, count_consts)
        if not isinstance(result, _T):
            consts = mapper.consts_of(list(w_args) + list(w_kwargs.values()))
            result = _other(mapper, mapper.unique(name), key, w_args + list(w_kwargs.values()), consts)
        node = mapper.graph.nodes[result.id]
        node.params = (node.params or 0) + params
        node.frozen_params += frozen
        node.buffers = (node.buffers or 0) + buffers
        node.observed_output_shape = tuple(tensor_out.shape)
        produced[id(tensor_out)] = result.id
        alive.append(tensor_out)

    counted_modules: set[int] = set()

    def pre_hook(m: Any, inputs: Any) -> None:
        stack.append([names.get(id(m), type(m).__name__), m, 0])

    def post_hook(m: Any, inputs: Any, output: Any) -> None:
        stack.pop()

    handles = []
    for m in module.modules():
        if m is not module:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))

    def run(make_input) -> None:
        inputs = [make_input(s) for s in shapes]
        for x in inputs:
            produced[id(x)] = mapper.graph.input()
            alive.append(x)
        with Recorder():
            result = module(*inputs)
        outs = [v for v in _flat([result]) if isinstance(v, torch.Tensor) and id(v) in produced]
        mapper.graph.outputs = [produced[id(v)] for v in outs]

    try:
        with _eval(module):
            try:
                from torch._subclasses.fake_tensor import FakeTensorMode

                fake = FakeTensorMode(allow_non_fake_inputs=True)
                with fake:
                    run(lambda s: fake.from_tensor(torch.empty(s)))
            except Exception:
                mapper.__init__(buffer_ids)  # type: ignore[misc]
                produced.clear()
                pending.clear()
                stack.clear()
                counted_modules.clear()
                with torch.no_grad():
                    run(torch.zeros)
    finally:
        for h in handles:
            h.remove()
    _prune(mapper.graph)
    mapper.graph.notes.append(
        "built by the dynamic method: one forward pass recorded (fake tensors, or zeros in eval mode); only the "
        "path taken for this input is seen"
    )
    return mapper.graph


def _prune(graph: Graph) -> None:
    """Drop nodes that do not lead to an output (e.g. ``x.sum() > 0`` computed only for an ``if``)."""
    keep = set(graph.output_ids()) | set(graph.input_ids)
    for node in reversed(graph.nodes):
        if node.id in keep:
            keep.update(node.inputs)
    if len(keep) == len(graph.nodes):
        return
    new_id = {}
    nodes = []
    for node in graph.nodes:
        if node.id in keep:
            new_id[node.id] = len(nodes)
            node.id = len(nodes)
            node.inputs = tuple(new_id[i] for i in node.inputs)
            nodes.append(node)
    for node in nodes:  # symbolic sizes refer to node ids too
        if node.attrs.get("shape") is not None:
            node.attrs["shape"] = tuple(_renumber(e, new_id) for e in node.attrs["shape"])
    graph.nodes = nodes
    graph.outputs = [new_id[i] for i in graph.outputs]


def _renumber(entry: Any, new_id: dict[int, int]) -> Any:
    if not isinstance(entry, tuple):
        return entry
    if entry[0] in ("dim", "shape"):
        return (entry[0], new_id[entry[1]], *entry[2:])
    return ("expr", entry[1], _renumber(entry[2], new_id), _renumber(entry[3], new_id))


# ----------------------------------------------------------------------------- public API


def graph_from_torch(
    module: Any, input_shape: Sequence[int] | Sequence[Sequence[int]], *, method: str = "auto"
) -> Graph:
    """The graph of layer facts of a ``torch.nn.Module`` (see the module docstring for ``method``)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"graph_from_torch: `module` must be a torch.nn.Module, got {type(module).__name__}")
    if method not in ("auto", "fx", "dynamic"):
        raise ValueError(f"graph_from_torch: `method` (={method!r}) must be 'auto', 'fx' or 'dynamic'")
    shapes = _input_shapes(input_shape)
    if method == "dynamic":
        return _graph_dynamic(module, shapes)
    try:
        return _graph_fx(module, shapes)
    except Exception as error:
        if method == "fx":
            raise
        graph = _graph_dynamic(module, shapes)
        graph.notes.append(f"symbolic tracing failed ({type(error).__name__}: {str(error)[:200]})")
        return graph


def analyze(
    module: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    itemsize: int = 4,
    batched: bool | None = None,
    method: str = "auto",
) -> Report:
    """Analyse a ``torch.nn.Module`` for ``input_shape`` (no weights read, no compute for traceable models).

    Same report as :func:`convlab.analysis.analyze`; ``method`` is ``'auto'``, ``'fx'`` or ``'dynamic'``.
    """
    graph = graph_from_torch(module, input_shape, method=method)
    return analyze_graph(graph, input_shape, itemsize=itemsize, batched=batched, model_name=type(module).__name__)
