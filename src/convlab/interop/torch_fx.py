"""The fx tracer: a ``torch.nn.Module`` -> a graph of layer facts by ``torch.fx`` symbolic tracing.

The tracer keeps the ``torch.nn`` layers the mapper knows as leaves and traces into
everything else, so a functional ``F.conv2d(x, self.weight)`` in a custom
``forward`` is found and counted with the weight's shape (read from the
``get_attr`` node). No forward pass is run, except that an operation with no
convlab rule (kind ``other``) gets its output shape from
``torch.fx.passes.shape_prop.ShapeProp`` on fake tensors (no real compute).
Raises when tracing fails; :func:`convlab.interop.torch_analysis.graph_from_torch`
then falls back to the recording tracer (:mod:`.torch_record`).
"""

from __future__ import annotations

from typing import Any

from ..analysis.graph import Graph
from .torch_mapper import (
    _T,
    _Const,
    _eval,
    _flat,
    _key,
    _leaf_classes,
    _Mapper,
    _other,
    _Pieces,
    _Shape,
    _Size,
    _Untraceable,
)

__all__ = ["graph_fx"]


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



def graph_fx(module: Any, shapes: list[tuple[int, ...]]) -> Graph:
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
