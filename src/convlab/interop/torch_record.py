"""The recording tracer: a ``torch.nn.Module`` -> a graph of layer facts from one recorded forward pass.

The fallback for models that cannot be traced symbolically (data-dependent
control flow, ``for`` loops over sizes ...): one forward pass under a
``TorchFunctionMode`` that records every torch function called on a tensor
derived from the input, with the module stack for names. It runs on fake tensors
(``FakeTensorMode``: shapes only, no compute) and, if the model needs real values
(``if x.sum() > 0``), on zeros with ``torch.no_grad()`` in eval mode (BatchNorm
statistics are not touched). Limits: it sees only the path taken for that input;
ops on constants are folded away; the model runs in eval mode for the recording.
"""

from __future__ import annotations

from typing import Any

from ..analysis.graph import Graph
from .torch_mapper import _T, _Const, _eval, _flat, _key, _leaf_classes, _Mapper, _other, _Pieces

__all__ = ["graph_recorded"]


def graph_recorded(module: Any, shapes: list[tuple[int, ...]]) -> Graph:
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

