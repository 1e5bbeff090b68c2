"""Symbolic network analysis: shapes, parameters, MACs/FLOPs, memory and receptive fields.

No forward pass and no weights: a model is turned into a :class:`Graph` of layer
facts (kernel, stride, padding, dilation, groups, channels, parameters), and
:func:`analyze_graph` derives everything from the facts with the one shape rule
(:mod:`convlab.shapes`), the one cost rule (:mod:`convlab.costs`) and the one
receptive-field rule (Araujo et al., Distill 2019; :mod:`convlab.analysis.receptive`).

Front-ends: ``convlab.nn`` models (:func:`graph_from_module`), torch modules
(:func:`convlab.interop.torch.graph_from_torch`, reached from :func:`analyze`
when it is given a ``torch.nn.Module``), or a graph written by hand.

>>> from convlab.spec import ConvSpec, PoolSpec
>>> g = Graph()
>>> x = g.input()
>>> x = g.add("conv", "conv1", x, spec=ConvSpec(3, padding=1, ndim=2), in_channels=3, out_channels=16, bias=True)
>>> x = g.add("pool_max", "pool1", x, spec=PoolSpec(2, ndim=2))
>>> x = g.add("conv", "conv2", x, spec=ConvSpec(3, padding=1, ndim=2), in_channels=16, out_channels=16)
>>> report = analyze(g, (1, 3, 32, 32))
>>> report["conv2"].output_shape, report["conv2"].receptive_field[0]
((1, 16, 16, 16), ReceptiveField(size=8, jump=2, start=-3))
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .facts import analyze_graph
from .from_convlab import graph_from_module
from .graph import KINDS, Graph, Node
from .report import CONVENTIONS, LayerFacts, Report

__all__ = [
    "CONVENTIONS",
    "KINDS",
    "Graph",
    "LayerFacts",
    "Node",
    "Report",
    "analyze",
    "analyze_graph",
    "graph_from_module",
    "summary",
]


def _is_torch_module(model: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch model cannot exist unless torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


def analyze(
    model: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    itemsize: int = 4,
    batched: bool | None = None,
    namespace: Any = None,
    **torch_options: Any,
) -> Report:
    """Analyse a ``convlab.nn`` model, a ``torch.nn.Module`` or a :class:`Graph` for ``input_shape``.

    ``input_shape`` is ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; counts are
    for that whole input. A torch module is handed to
    :func:`convlab.interop.torch.analyze` (``torch_options`` go there, e.g. ``method="fx"``).
    ``namespace`` replaces ``convlab.nn`` as the place the layer classes are looked up.
    """
    if isinstance(model, Graph):
        return analyze_graph(model, input_shape, itemsize=itemsize, batched=batched)
    if _is_torch_module(model):
        # The torch front-end lives above this layer; it is looked up only when a torch model is given.
        from importlib import import_module

        front_end = import_module("convlab.interop.torch")
        return front_end.analyze(model, input_shape, itemsize=itemsize, batched=batched, **torch_options)
    if torch_options:
        raise TypeError(f"analyze: unexpected options {sorted(torch_options)} for a convlab model")
    graph = graph_from_module(model, namespace=namespace)
    return analyze_graph(graph, input_shape, itemsize=itemsize, batched=batched, model_name=type(model).__name__)


def summary(
    model: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    format: str = "text",
    **options: Any,
) -> str:
    """The analysis as text: ``format`` is ``'text'`` (aligned table), ``'json'``, ``'csv'`` or ``'markdown'``.

    This is what ``convlab summary`` prints.
    """
    report = analyze(model, input_shape, **options)
    views = {"text": report.__str__, "json": report.to_json, "csv": report.to_csv, "markdown": report.to_markdown}
    if format not in views:
        raise ValueError(f"summary: `format` (={format!r}) must be one of {sorted(views)}")
    return views[format]()
