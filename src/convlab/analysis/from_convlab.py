"""Front-end: a ``convlab.nn`` model -> a :class:`~convlab.analysis.graph.Graph` of layer facts.

Walks the container tree exactly as ``docs/nn-contract.md`` composes it:

* ``Sequential`` -- its children in order;
* ``Residual`` -- ``post(body(x) + shortcut(x))``: the body path (the children named by
  ``body_names``, a class or instance attribute, else the child ``body``), the shortcut
  path (``shortcut_name``; None, or a child that is None, = identity), an ``add`` node,
  then ``post`` (``post_name``; None = nothing);
* ``Concat`` -- every branch (``branch_names``, each a child's name or a tuple of names
  forming a chain; else the children in order) from the same input, then a ``concat``
  node on the channel axis;
* ``ChannelShuffle(groups)``, ``ChannelSlice(start, stop)``;
* leaf layers, identified by class (``isinstance`` against the classes of ``convlab.nn``,
  through the class's MRO, so zoo subclasses are recognised) and read through their
  torch-named attributes.

Any other module with children is walked as a chain of its children in registration
order (a note says so); a leaf of an unknown class becomes an ``other`` node.
A module used twice is listed twice, the second time as ``name#2`` with 0 parameters
(parameters are counted once).
"""

from __future__ import annotations

import re
from typing import Any

from ..spec import ConvSpec, PoolSpec
from .graph import ACTIVATION_CLASSES, Graph

__all__ = ["graph_from_module"]


def _ndim_of(class_name: str) -> int | None:
    match = re.search(r"([123])d$", class_name)
    return int(match.group(1)) if match else None


def _size(array: Any) -> int:
    """Elements of a Parameter or an ndarray (both have an int ``size``)."""
    size = getattr(array, "size", None)
    return int(size) if isinstance(size, int) else int(getattr(getattr(array, "data", None), "size", 0))


class _Builder:
    def __init__(self, namespace: Any) -> None:
        self.ns = namespace
        self.graph = Graph()
        self.seen_params: set[int] = set()
        self.uses: dict[int, int] = {}

    # -------------------------------------------------------------- identification
    def role(self, module: Any) -> str | None:
        """The contract class name this module is an instance of (most derived first)."""
        for cls in type(module).__mro__:
            if getattr(self.ns, cls.__name__, None) is cls:
                return cls.__name__
        return None

    @staticmethod
    def children(module: Any) -> list[tuple[str, Any]]:
        named = getattr(module, "named_children", None)
        return list(named()) if named is not None else []

    def name(self, module: Any, qualname: str) -> tuple[str, bool]:
        count = self.uses.get(id(module), 0) + 1
        self.uses[id(module)] = count
        return (qualname if count == 1 else f"{qualname}#{count}"), count == 1

    def counts(self, module: Any, first: bool) -> tuple[int, int, int]:
        """(trainable, frozen, buffer) elements a leaf holds, each parameter counted once."""
        trainable = frozen = buffers = 0
        if not first:
            return 0, 0, 0
        params = getattr(module, "named_parameters", None)
        for _, p in params() if params is not None else []:
            if id(p) in self.seen_params:
                continue
            self.seen_params.add(id(p))
            if getattr(p, "requires_grad", True):
                trainable += _size(p)
            else:
                frozen += _size(p)
        named_buffers = getattr(module, "named_buffers", None)
        for _, b in named_buffers() if named_buffers is not None else []:
            buffers += _size(b)
        return trainable, frozen, buffers

    # -------------------------------------------------------------- walking
    def walk(self, module: Any, qualname: str, x: int) -> int:
        role = self.role(module)
        prefix = f"{qualname}." if qualname else ""
        if role == "Sequential":
            for child_name, child in self.children(module):
                x = self.walk(child, prefix + child_name, x)
            return x
        if role == "Residual":
            return self.residual(module, qualname, prefix, x)
        if role == "Concat":
            names = getattr(module, "branch_names", None) or [n for n, _ in self.children(module)]
            outs = []
            for entry in names:  # an entry is a child's name or a tuple of names (a chain)
                y = x
                for n in (entry,) if isinstance(entry, str) else entry:
                    y = self.walk(getattr(module, n), prefix + n, y)
                outs.append(y)
            return self.graph.add("concat", prefix + "concat", outs, op="Concat", dim="channel")
        children = self.children(module)
        if children:
            note = (
                f"{qualname or type(module).__name__} ({type(module).__name__}) is not a Sequential, Residual or "
                "Concat: walked as a chain of its children in registration order"
            )
            if note not in self.graph.notes:
                self.graph.notes.append(note)
            for child_name, child in children:
                x = self.walk(child, prefix + child_name, x)
            return x
        return self.leaf(module, role, qualname or type(module).__name__, x)

    def residual(self, module: Any, qualname: str, prefix: str, x: int) -> int:
        # The names are class or instance attributes; None means identity (shortcut) or nothing (post).
        body = x
        for n in getattr(module, "body_names", None) or ("body",):
            body = self.walk(getattr(module, n), prefix + n, body)
        shortcut_name = getattr(module, "shortcut_name", "shortcut")
        shortcut = getattr(module, shortcut_name, None) if shortcut_name else None
        short = self.walk(shortcut, prefix + shortcut_name, x) if shortcut is not None else x
        y = self.graph.add("add", prefix + "add", (body, short), op="Residual add")
        post_name = getattr(module, "post_name", "post")
        post = getattr(module, post_name, None) if post_name else None
        return self.walk(post, prefix + post_name, y) if post is not None else y

    def leaf(self, m: Any, role: str | None, qualname: str, x: int) -> int:
        name, first = self.name(m, qualname)
        trainable, frozen, buffers = self.counts(m, first)
        if not hasattr(m, "named_parameters"):  # no parameter registry: derive the counts from the facts
            trainable = buffers = None
        common = {"op": type(m).__name__, "params": trainable, "frozen_params": frozen, "buffers": buffers}
        add = self.graph.add
        role = role or ""
        nd = _ndim_of(role)
        if role.startswith("ConvTranspose") or (role.startswith("Conv") and nd):
            transposed = role.startswith("ConvTranspose")
            spec = getattr(m, "spec", None)
            if not isinstance(spec, ConvSpec):
                spec = ConvSpec(
                    m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                    getattr(m, "padding_mode", "zeros"), transposed, getattr(m, "output_padding", 0),
                    ndim=nd, name=name,
                )
            return add(
                "conv_transpose" if transposed else "conv", name, x, spec=spec, in_channels=m.in_channels,
                out_channels=m.out_channels, bias=getattr(m, "bias", None) is not None, **common,
            )
        if role.startswith(("MaxPool", "AvgPool")) and nd:
            spec = PoolSpec(
                m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1), getattr(m, "ceil_mode", False),
                getattr(m, "count_include_pad", True), getattr(m, "divisor_override", None), ndim=nd, name=name,
            )
            return add("pool_max" if role.startswith("Max") else "pool_avg", name, x, spec=spec, **common)
        if role.startswith(("AdaptiveAvgPool", "AdaptiveMaxPool")) and nd:
            size = m.output_size
            size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
            mode = "max" if "Max" in role else "avg"
            return add("adaptive_pool", name, x, output_size=size, mode=mode, **common)
        if role in ("GlobalAvgPool", "GlobalMaxPool"):
            mode = "max" if "Max" in role else "avg"
            return add("global_pool", name, x, ndim=None, mode=mode, keepdim=True, **common)
        if role.startswith("BatchNorm"):
            return add(
                "bn", name, x, num_features=m.num_features, affine=getattr(m, "affine", True),
                track_running_stats=getattr(m, "track_running_stats", True), ndim=nd, **common,
            )
        if role == "LocalResponseNorm":
            return add("lrn", name, x, size=m.size, **common)
        if role in ACTIVATION_CLASSES:
            return add("activation", name, x, function=ACTIVATION_CLASSES[role], **common)
        if role in ("Softmax", "LogSoftmax"):
            return add("softmax", name, x, dim=getattr(m, "dim", -1), **common)
        if role == "Linear":
            return add(
                "linear", name, x, in_features=m.in_features, out_features=m.out_features,
                bias=getattr(m, "bias", None) is not None, **common,
            )
        if role.startswith("Dropout"):
            return add("dropout", name, x, **common)
        if role == "Flatten":
            return add("flatten", name, x, start_dim=getattr(m, "start_dim", 1), end_dim=getattr(m, "end_dim", -1),
                       **common)
        if role == "Identity":
            return add("identity", name, x, **common)
        if role == "Upsample":
            return add(
                "upsample", name, x, scale_factor=getattr(m, "scale_factor", None), size=getattr(m, "size", None),
                mode=getattr(m, "mode", "nearest"), align_corners=getattr(m, "align_corners", None), **common,
            )
        if role == "ChannelShuffle":
            return add("shuffle", name, x, groups=m.groups, **common)
        if role == "ChannelSlice":
            return add("slice", name, x, dim="channel", start=m.start, stop=m.stop, **common)
        return add("other", name, x, notes=[f"unknown layer class {type(m).__name__}"], **common)


def graph_from_module(model: Any, *, namespace: Any = None) -> Graph:
    """The graph of layer facts of a ``convlab.nn`` model (no forward pass).

    ``namespace`` is where the contract's classes are looked up (default:
    ``convlab.nn``); any object with attributes named like the contract's classes
    works, e.g. a module of stand-ins in a test.
    """
    if namespace is None:
        from .. import nn as namespace  # type: ignore[no-redef]
    builder = _Builder(namespace)
    x = builder.graph.input()
    out = builder.walk(model, "", x)
    builder.graph.outputs = [out]
    return builder.graph
