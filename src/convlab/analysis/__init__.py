"""Symbolic network analysis: shapes, parameters, MACs/FLOPs, memory and receptive fields.

No forward pass and no weights: a model is turned into a :class:`Graph` of layer
facts (kernel, stride, padding, dilation, groups, channels, parameters), and
:func:`analyze_graph` derives everything from the facts with the one shape rule
(:mod:`convlab.shapes`), the one cost rule (:mod:`convlab.costs`) and the one
receptive-field rule (Araujo et al., Distill 2019; :mod:`convlab.analysis.receptive`).

Front-ends: ``convlab.nn`` models (:func:`graph_from_module`), a zoo model by name
(built inside :func:`convlab.nn.skeleton`: every layer and shape, no weights), a graph
written by hand, and models of other frameworks through a registered reader
(:func:`register_reader`): importing :mod:`convlab.interop` registers the one for torch
modules (:func:`convlab.interop.torch.analyze`), so :func:`analyze` takes a
``torch.nn.Module`` without this layer importing the one above it.

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

from ._checks import check_batched, check_input_shape, check_itemsize
from .erf import EffectiveReceptiveField, effective_receptive_field, register_erf_backend, unregister_erf_backend
from .facts import analyze_graph
from .from_convlab import graph_from_module
from .graph import KINDS, Graph, Node
from .readers import find_reader, readers, register_reader, unregister_reader
from .report import CONVENTIONS, LayerFacts, Report

__all__ = [
    "CONVENTIONS",
    "FORMATS",
    "KINDS",
    "EffectiveReceptiveField",
    "Graph",
    "LayerFacts",
    "Node",
    "Report",
    "analyze",
    "analyze_graph",
    "effective_receptive_field",
    "find_reader",
    "graph_from_module",
    "register_erf_backend",
    "register_reader",
    "render",
    "summary",
    "unregister_erf_backend",
    "unregister_reader",
    "zoo_skeleton",
]


def _looks_like_torch(model: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch model cannot exist unless torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


def zoo_skeleton(name: str, input_shape: Sequence[int], **config: Any) -> Any:
    """The zoo model ``name`` for ``input_shape``'s ``(C, H, W)``, built without weights (no memory, no draw).

    ``convlab.models.create(name, input_size=(C, H, W), **config)`` inside
    :func:`convlab.nn.skeleton`: the layers, their hyperparameters and their parameter
    shapes are all there, the values are not (calling the model raises a ValueError).

    >>> model = zoo_skeleton("vgg16", (1, 3, 224, 224))
    >>> model.num_parameters()
    138357544
    """
    return _zoo_skeleton("zoo_skeleton", name, input_shape, config)


def _zoo_skeleton(_fn: str, name: object, input_shape: object, config: dict[str, Any]) -> Any:
    from .. import models, nn

    if not isinstance(name, str):
        raise TypeError(f"{_fn}: `name` must be a zoo model's name (a str; convlab.models.list() names them), "
                        f"got {name!r} ({type(name).__name__})")
    shape = check_input_shape(_fn, input_shape)
    if isinstance(shape, list) or len(shape) not in (3, 4):
        raise ValueError(f"{_fn}: a zoo model ({name!r}) takes one input shape (N, C, H, W) or (C, H, W), "
                         f"got {input_shape!r}")
    with nn.skeleton():
        return models.create(name, input_size=shape[-3:], **config)


def analyze(
    model: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    itemsize: int = 4,
    batched: bool | None = None,
    namespace: Any = None,
    **options: Any,
) -> Report:
    """Analyse a ``convlab.nn`` model, a zoo model's name, a ``torch.nn.Module`` or a :class:`Graph`.

    ``input_shape`` is ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; counts are
    for that whole input. A zoo name is built by :func:`zoo_skeleton` (``options`` go to
    ``convlab.models.create``, e.g. ``num_classes=10``). Any other model goes to the reader
    registered for it (:func:`register_reader`; ``options`` go there): a torch module to
    :func:`convlab.interop.torch.analyze` (e.g. ``method="fx"``), registered when
    :mod:`convlab.interop` is imported. ``namespace`` replaces ``convlab.nn`` as the place
    the layer classes are looked up.
    """
    from .. import nn

    fn = "analyze"
    input_shape = check_input_shape(fn, input_shape)
    itemsize = check_itemsize(fn, itemsize)
    batched = check_batched(fn, batched)
    if isinstance(model, Graph):
        return analyze_graph(model, input_shape, itemsize=itemsize, batched=batched, _fn=fn)
    if isinstance(model, str):
        model, options = _zoo_skeleton(fn, model, input_shape, options), {}
    reader = find_reader(model)
    if reader is not None:
        return reader(model, input_shape, itemsize=itemsize, batched=batched, **options)
    if _looks_like_torch(model):
        raise TypeError(
            f"analyze: got a torch.nn.Module ({type(model).__name__}) but no reader for torch models is "
            "registered: `import convlab.interop` (or convlab.interop.torch) registers it"
        )
    if namespace is None and not isinstance(model, nn.Module):
        names = ", ".join(r.name for r in readers()) or "none registered"
        raise TypeError(
            f"analyze: `model` must be a convlab.nn.Module, a zoo model's name (a str: convlab.models.list()), "
            f"a convlab.analysis.Graph, or a model a registered reader accepts (readers: {names}), "
            f"got {model!r:.200} ({type(model).__name__})"
        )
    if options:
        raise TypeError(f"analyze: unexpected options {sorted(options)} for a convlab model")
    graph = graph_from_module(model, namespace=namespace)
    counts = _module_counts(model) if isinstance(model, nn.Module) else None
    return analyze_graph(graph, input_shape, itemsize=itemsize, batched=batched, model_name=type(model).__name__,
                         model_counts=counts, _fn=fn)


def _module_counts(model: Any) -> tuple[int, int, int]:
    """(trainable, non-trainable, buffer) elements of a convlab model, each shared array once."""
    total = model.num_parameters()
    trainable = model.num_parameters(trainable_only=True)
    seen: set[int] = set()
    buffers = 0
    for buffer in model.buffers():
        if id(buffer) not in seen:
            seen.add(id(buffer))
            buffers += int(buffer.size)
    return trainable, total - trainable, buffers


def summary(
    model: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    format: str = "text",
    **options: Any,
) -> str:
    """The analysis as text: ``format`` is ``'text'`` (aligned table), ``'json'``, ``'csv'`` or ``'markdown'``.

    This is what ``convlab summary`` prints (on a terminal, with Rich: :meth:`Report.print`).
    """
    if not isinstance(format, str) or format not in FORMATS:
        raise ValueError(f"summary: `format` (={format!r}) must be one of {sorted(FORMATS)}")
    report = analyze(model, input_shape, **options)
    return render(report, format)


#: The text views of a report, by name.
FORMATS = ("text", "json", "csv", "markdown")


def render(report: Report, format: str = "text") -> str:
    """``report`` as ``'text'`` (``str(report)``), ``'json'``, ``'csv'`` or ``'markdown'``."""
    views = {"text": report.__str__, "json": report.to_json, "csv": report.to_csv, "markdown": report.to_markdown}
    if format not in views:
        raise ValueError(f"render: `format` (={format!r}) must be one of {sorted(views)}")
    return views[format]()
