"""The torch -> graph mapper shared by the two tracers (:mod:`.torch_fx` and :mod:`.torch_record`).

A traced or recorded call -- a ``torch.nn`` leaf module applied to a tensor, or a
function (``F.conv2d``, ``operator.add``, ``x.view`` ...) -- becomes one node of
a :class:`~convlab.analysis.graph.Graph` of layer facts. The values the tracers
hand over stand for graph tensors (:class:`_T`), constants (parameters, buffers
and functions of them, :class:`_Const`), symbolic sizes (:class:`_Size`,
:class:`_Shape`) and the pieces of a ``chunk``/``split`` (:class:`_Pieces`).

torch is imported inside the functions, so importing this module never imports torch.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ..analysis._checks import check_input_shape
from ..analysis.graph import ACTIVATION_CLASSES, Graph
from ..spec import ConvSpec, PoolSpec

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
        *ACTIVATION_CLASSES, "Softmax", "LogSoftmax", "Softmax2d",
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
    bound.update(zip(names, args, strict=False))  # the trailing parameters may be left at their defaults
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
        if c in ACTIVATION_CLASSES:
            return _T(add("activation", name, x.id, function=ACTIVATION_CLASSES[c], **common))
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


class _Untraceable(Exception):
    """Raised when the fx graph uses sizes in a way the mapper cannot follow (the dynamic method can)."""


def _other(mapper: _Mapper, name: str, op: str, args: Any, consts: Sequence[Any]) -> _T:
    inputs = [a.id for a in _flat(list(args)) if isinstance(a, _T)]
    if not inputs:
        raise _Untraceable(f"{op}: no tensor input the analysis can follow")
    trainable, frozen, buffers = mapper.count(list(consts))
    return _T(mapper.graph.add("other", name, inputs, op=op, params=trainable, frozen_params=frozen,
                               buffers=buffers))


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


def _input_shapes(input_shape: Sequence[int] | Sequence[Sequence[int]],
                  fn: str = "graph_from_torch") -> list[tuple[int, ...]]:
    """One shape or a list of them, checked (positive ints), as a list of tuples."""
    shape = check_input_shape(fn, input_shape)
    return shape if isinstance(shape, list) else [shape]
