"""The analysis of any ``torch.nn.Module``: a graph of layer facts -> a report, and its reader registration.

Two ways to see a model's data flow (``method=``):

``"fx"``
    ``torch.fx`` symbolic tracing (:mod:`convlab.interop.torch_fx`) with a tracer that keeps the
    ``torch.nn`` layers it knows as leaves (Conv*, ConvTranspose*, pools, BatchNorm*, activations,
    Linear, Dropout, Flatten, Upsample, ChannelShuffle, LocalResponseNorm, pads, norms) and traces
    into everything else, so a functional ``F.conv2d(x, self.weight)`` in a custom ``forward`` is
    found and counted with the weight's shape (read from the ``get_attr`` node). Module calls are
    mapped by class, functions by target (``F.conv*``, ``F.conv_transpose*``, ``F.linear``, pools,
    adaptive pools, activations, ``operator.add``/``torch.add``, ``torch.cat``, ``torch.flatten``,
    ``view``/``reshape`` with symbolic sizes, ``chunk``/``split`` + ``getitem``, slicing,
    ``channel_shuffle``, ``interpolate``, ``pad``, ``mean`` over the spatial dims,
    ``transpose``/``permute``; :mod:`convlab.interop.torch_mapper`). No forward pass is run, except
    that when an operation has no convlab rule (kind ``other``) its output shape is taken from
    ``torch.fx.passes.shape_prop.ShapeProp`` on fake tensors (no real compute).
``"dynamic"``
    The fallback for models that cannot be traced symbolically (data-dependent control flow,
    ``for`` loops over sizes ...): one recorded forward pass (:mod:`convlab.interop.torch_record`)
    under a ``TorchFunctionMode`` that records every torch function called on a tensor derived from
    the input, with the module stack for names. It runs on fake tensors (``FakeTensorMode``: shapes
    only, no compute) and, if the model needs real values (``if x.sum() > 0``), on zeros with
    ``torch.no_grad()`` in eval mode (BatchNorm statistics are not touched). Limits: it sees only
    the path taken for that input; ops on constants are folded away; the model runs in eval mode
    for the recording.
``"auto"`` (default)
    ``"fx"``, falling back to ``"dynamic"`` when tracing raises.

Either way, shapes, costs and receptive fields come from the same analysis as for
``convlab.nn`` models (:func:`convlab.analysis.analyze_graph`). The parameter and buffer
totals are counted from the module itself (``parameters()``, ``buffers()``), not from what
the trace reached: when the rows hold less (one branch of a data-dependent ``forward``
recorded), the report warns and names the modules holding parameters or buffers that no
row comes from.

Importing this module registers :func:`analyze` as the analysis' reader for torch modules
(:func:`convlab.analysis.register_reader`), so :func:`convlab.analysis.analyze` accepts a
``torch.nn.Module``: the analysis sits below the interop layer and never imports it.
torch is imported inside the functions, so importing this module costs nothing without torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..analysis._checks import check_batched, check_input_shape, check_itemsize
from ..analysis.facts import analyze_graph
from ..analysis.graph import Graph
from ..analysis.readers import register_reader
from ..analysis.report import Report
from .torch_fx import graph_fx
from .torch_mapper import _input_shapes
from .torch_record import graph_recorded

__all__ = ["analyze", "graph_from_torch", "is_torch_module"]


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
        return graph_recorded(module, shapes)
    try:
        return graph_fx(module, shapes)
    except Exception as error:
        if method == "fx":
            raise
        graph = graph_recorded(module, shapes)
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
    import torch

    fn = "analyze"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{fn}: `module` must be a torch.nn.Module, got {module!r:.200} ({type(module).__name__})")
    input_shape = check_input_shape(fn, input_shape)
    itemsize = check_itemsize(fn, itemsize)
    batched = check_batched(fn, batched)
    graph = graph_from_torch(module, input_shape, method=method)
    counts = module_counts(module)
    unreached = _unreached(module, graph)
    warnings = []
    if unreached and _graph_counts(graph) != counts:
        shown = ", ".join(f"{name} ({kind}, {size:,})" for name, kind, size in unreached[:20])
        more = f" and {len(unreached) - 20} more" if len(unreached) > 20 else ""
        warnings.append(
            f"the trace did not reach {len(unreached)} module(s) holding parameters or buffers: {shown}{more} "
            "(elements in parentheses); they are in the totals but in no row"
        )
    return analyze_graph(graph, input_shape, itemsize=itemsize, batched=batched, model_name=type(module).__name__,
                         model_counts=counts, model_warnings=warnings, _fn=fn)


def module_counts(module: Any) -> tuple[int, int, int]:
    """(trainable, non-trainable, buffer) elements of a torch module, each shared tensor once (as torch lists them)."""
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen, sum(b.numel() for b in module.buffers())


def _graph_counts(graph: Graph) -> tuple[int, int, int]:
    trainable = sum(n.params or 0 for n in graph.nodes)
    frozen = sum(n.frozen_params for n in graph.nodes)
    return trainable, frozen, sum(n.buffers or 0 for n in graph.nodes)


def _unreached(module: Any, graph: Graph) -> list[tuple[str, str, int]]:
    """(qualified name, class, elements) of the submodules holding tensors that no node of ``graph`` comes from.

    A node comes from a module when its name is the module's qualified name or inside it
    (``block.conv2d`` inside ``block``; ``#2`` marks a second call); both tracers name nodes so.
    """
    names = [n.name.split("#", 1)[0] for n in graph.nodes if n.kind != "input"]
    out = []
    for qualname, sub in module.named_modules():
        if not qualname:
            continue
        size = sum(t.numel() for t in [*sub.parameters(recurse=False), *sub.buffers(recurse=False)])
        if size == 0:
            continue
        inside = qualname + "."
        if not any(n == qualname or n.startswith(inside) for n in names):
            out.append((qualname, type(sub).__name__, size))
    return out


def is_torch_module(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` (without importing torch: no torch, no torch model)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


register_reader(is_torch_module, analyze, name="torch")
