"""Readers: how :func:`convlab.analysis.analyze` reads a model of another framework.

The analysis knows two kinds of model by itself: a :class:`~convlab.analysis.graph.Graph`
and a ``convlab.nn`` model (:func:`~convlab.analysis.graph_from_module`). Any other
kind is read by a *reader* that a higher layer registers: ``predicate(model)``
says whether the reader takes the model, and
``reader(model, input_shape, *, itemsize, batched, **options)`` returns the
:class:`~convlab.analysis.report.Report`. The torch reader is registered by
:mod:`convlab.interop` when it is imported, so the analysis never imports the
layer above it.

>>> from convlab.analysis import Graph, analyze, analyze_graph
>>> class Toy:
...     pass
>>> def read_toy(model, input_shape, *, itemsize=4, batched=None):
...     g = Graph()
...     g.add("identity", "toy", g.input())
...     return analyze_graph(g, input_shape, itemsize=itemsize, batched=batched, model_name="Toy")
>>> register_reader(lambda model: isinstance(model, Toy), read_toy, name="toy")
>>> find_reader(Toy()) is read_toy
True
>>> analyze(Toy(), (1, 3, 8, 8)).output_shape
(1, 3, 8, 8)
>>> unregister_reader("toy")
>>> find_reader(Toy()) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Reader", "find_reader", "readers", "register_reader", "unregister_reader"]


class Reader(NamedTuple):
    """A registered reader: its name, the predicate choosing the models it reads, and the function."""

    name: str
    predicate: Callable[[Any], bool]
    read: Callable[..., Any]


_READERS: list[Reader] = []


def register_reader(predicate: Callable[[Any], bool], reader: Callable[..., Any], *, name: str | None = None) -> None:
    """Register ``reader`` for the models where ``predicate(model)`` is true.

    ``reader(model, input_shape, *, itemsize, batched, **options)`` returns a Report; the
    options of :func:`convlab.analysis.analyze` that it does not know go to it (e.g. the torch
    reader's ``method=``). A reader registered under a ``name`` already used replaces that one
    (importing a module twice registers once); the most recent registration is asked first.
    """
    if not callable(predicate) or not callable(reader):
        raise TypeError(
            f"register_reader: `predicate` and `reader` must be callable, got {type(predicate).__name__} and "
            f"{type(reader).__name__}"
        )
    name = name or getattr(reader, "__qualname__", repr(reader))
    unregister_reader(name)
    _READERS.insert(0, Reader(name, predicate, reader))


def unregister_reader(name: str) -> None:
    """Remove the reader registered as ``name`` (nothing when there is none)."""
    _READERS[:] = [r for r in _READERS if r.name != name]


def find_reader(model: Any) -> Callable[..., Any] | None:
    """The reader registered for ``model``, or None."""
    for entry in _READERS:
        if entry.predicate(model):
            return entry.read
    return None


def readers() -> list[Reader]:
    """The registered readers, the first asked first."""
    return list(_READERS)

