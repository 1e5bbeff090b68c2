"""PyTorch interop: conversion to and from ``convlab.nn``, and the analysis of any ``torch.nn.Module``.

This module is the public face; the work is done in one module per job:

=====================================  ==================================================================
:mod:`convlab.interop.torch_convert`   :func:`to_torch`, :func:`from_torch`: models, weights, buffers
                                       and modes, both ways (and the torch classes for convlab's
                                       containers, ``TorchResidual`` ..., reachable here by name)
:mod:`convlab.interop.torch_analysis`  :func:`analyze`, :func:`graph_from_torch`: a torch model -> a graph
                                       of layer facts -> a report (``method='auto'|'fx'|'dynamic'``);
                                       registers the analysis' reader for torch modules
:mod:`convlab.interop.torch_fx`        the fx tracer (``torch.fx`` symbolic tracing, no forward pass)
:mod:`convlab.interop.torch_record`    the recording tracer (one forward pass on fake tensors)
:mod:`convlab.interop.torch_mapper`    torch calls -> graph nodes, shared by the two tracers
=====================================  ==================================================================

torch is imported inside the functions, so importing this module costs nothing
without torch. Importing it (or anything in :mod:`convlab.interop`) lets
:func:`convlab.analysis.analyze` accept a ``torch.nn.Module``.
"""

from __future__ import annotations

from typing import Any

from .torch_analysis import analyze, graph_from_torch
from .torch_convert import MIRROR_CLASSES, NamedConcat, NamedResidual, from_torch, to_torch

__all__ = ["NamedConcat", "NamedResidual", "analyze", "from_torch", "graph_from_torch", "to_torch"]


def __getattr__(name: str) -> Any:
    """The torch classes for convlab's containers (``TorchResidual`` ...), created on first access."""
    if name in MIRROR_CLASSES:
        from . import torch_convert

        return getattr(torch_convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
