"""From layer facts to numbers: shapes, parameters, MACs/FLOPs, memory and receptive fields.

:func:`analyze_graph` walks a :class:`~convlab.analysis.graph.Graph` once, in
topological order, in pure Python (no forward pass, no weights, no NumPy per node),
and applies to each node the rule of its kind (:data:`convlab.analysis.rules.RULES`).

Conventions
-----------
* **Shapes** come from :mod:`convlab.shapes` only (convolution, transposed
  convolution, pooling, adaptive windows; padding uses the same length rule with a
  kernel of 1). Unbatched inputs ``(C, *spatial)`` are accepted wherever PyTorch
  accepts them; whether the graph's input is batched is decided by the first layer
  with spatial dimensions (``C, L`` for a 1-d layer is unbatched), or by ``batched=``.
* **Counts are for the whole input shape you give** (the batch included); analyse
  with batch 1 (or an unbatched shape) for per-sample numbers. Parameters are not
  multiplied by anything.
* **MACs** count the multiply-accumulates of weighted sums with learned weights:
  convolutions and transposed convolutions (:func:`convlab.costs.conv_cost` and
  :func:`convlab.costs.conv_transpose_cost`, so grouped, depthwise and dilated
  convolutions are exact and a transposed convolution costs
  ``N * C_in * prod(I) * (C_out/groups) * prod(k)``), and linear layers (a linear
  layer is a 1x1 convolution over its rows, counted by the same ``conv_cost``).
  Every other layer has 0 MACs.
* **FLOPs** = ``2 * MACs + bias additions`` for those layers (the ``convlab.costs``
  rule); for the others, element operations (one add, multiply, compare, divide,
  exp or max each), per output element unless said otherwise:

  ================  ===========================================================
  kind              FLOPs
  ================  ===========================================================
  bn                2 (inference: folded to ``x * scale + shift``)
  norm              8 (group/layer/instance norm: mean 1, variance 3, normalize 2, affine 2)
  activation        1 (any function: ReLU, sigmoid, GELU ... each one op)
  pool_max          ``prod(k) - 1`` comparisons
  pool_avg          ``prod(k)`` (``prod(k) - 1`` adds and 1 divide)
  adaptive_pool     the actual windows: avg = sum of window sizes, max = that minus 1 per output
  global_pool       avg: ``prod(spatial)`` per output; max: ``prod(spatial) - 1``
  add, mul          ``operands - 1`` (a residual ``x + y``: 1)
  softmax           3 (exp, add to the sum, divide)
  lrn               ``size + 5`` (square, window sum, mean, alpha, k, pow, divide)
  upsample          nearest 0; linear modes ``2 * taps - 1`` (taps = 2 per dim, 4 bicubic)
  others            0 (concat, shuffle, slice, flatten, reshape, pad, identity, dropout)
  ================  ===========================================================

* **Memory**: activation memory of a node = output elements x ``itemsize`` bytes
  (float32: 4). The total sums the outputs of all nodes but the input (views such
  as flatten included, so it is an upper bound of what a forward keeps alive).
* **Receptive fields**: see :mod:`convlab.analysis.receptive`. Each tensor has a
  field per spatial dim and a *scope*: ``spatial`` (the usual field of one unit,
  with a jump), ``flat`` (after flatten or reshape: each element still sees the
  field of its position, but positions are no longer a grid), ``global`` (after a
  linear layer, a global pooling or a spatial softmax: each unit sees every
  position, the field is the reach of the whole map).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._checks import check_batched, check_input_shape, check_itemsize
from .graph import Graph, Node
from .receptive import IDENTITY
from .report import LayerFacts, Report
from .rules import RULES, Context, TensorFacts, extent

__all__ = ["analyze_graph"]


def _spatial_ndim(node: Node) -> int | None:
    """Number of spatial dims a layer works on, if its facts say so."""
    attrs = node.attrs
    if node.kind in ("conv", "conv_transpose", "pool_max", "pool_avg"):
        return attrs["spec"].ndim
    if node.kind == "adaptive_pool":
        return len(attrs["output_size"])
    if node.kind == "upsample":
        given = attrs.get("scale_factor") or attrs.get("size")
        return len(given) if isinstance(given, (tuple, list)) else None
    if node.kind in ("global_pool", "bn") and attrs.get("ndim") in (2, 3):
        return attrs["ndim"]
    return None


def _guess_batched(graph: Graph, input_rank: int) -> bool:
    for node in graph:
        nd = _spatial_ndim(node)
        if nd is not None:
            return input_rank != nd + 1
    return input_rank >= 2  # no spatial layer: (N, features) is batched, (features,) is not


def analyze_graph(
    graph: Graph,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    itemsize: int = 4,
    batched: bool | None = None,
    model_name: str = "",
    model_counts: tuple[int, int, int] | None = None,
    model_warnings: Sequence[str] = (),
    _fn: str = "analyze_graph",
) -> Report:
    """Shapes, parameters, MACs/FLOPs, memory and receptive fields of every node of ``graph``.

    Parameters
    ----------
    graph : Graph
        Layer facts in topological order (from a front-end or written by hand).
    input_shape : tuple of int, or a list of them (one per input node)
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
    itemsize : int
        Bytes per element for the memory columns (float32: 4).
    batched : bool, optional
        Whether the input has a batch dim; by default the first spatial layer decides.
    model_name : str
        The name the report gives the model.
    model_counts : (trainable, non-trainable, buffers), optional
        The model's own counts (from its parameters and buffers): the report's totals, and a
        warning when the nodes hold less (see :class:`~convlab.analysis.report.Report`).
    model_warnings : sequence of str
        Warnings about the model as a whole, from the front-end (e.g. modules a trace did not reach).

    Returns
    -------
    Report

    Examples
    --------
    >>> from convlab.spec import ConvSpec
    >>> g = Graph()
    >>> x = g.input()
    >>> for i, d in enumerate((1, 2, 4)):
    ...     x = g.add("conv", f"conv{i}", x, spec=ConvSpec(3, dilation=d, ndim=2), in_channels=1, out_channels=1)
    >>> report = analyze_graph(g, (1, 1, 32, 32))
    >>> report.receptive_field[0].size, report.total_macs   # 9 x (30*30 + 26*26 + 18*18)
    (15, 17100)
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"{_fn}: `graph` must be a convlab.analysis.Graph, got {graph!r} ({type(graph).__name__})")
    input_shape = check_input_shape(_fn, input_shape)
    itemsize = check_itemsize(_fn, itemsize)
    batched = check_batched(_fn, batched)
    input_ids = graph.input_ids
    if not input_ids:
        raise ValueError(f"{_fn}: the graph has no input node")
    shapes = _input_shapes(input_shape, len(input_ids))
    if batched is None:
        batched = _guess_batched(graph, len(shapes[0]))
    tensors: list[TensorFacts | None] = [None] * len(graph.nodes)
    rows: list[LayerFacts] = []
    seen_inputs = 0
    for node in graph.nodes:
        if node.kind == "input":
            shape = shapes[seen_inputs]
            seen_inputs += 1
            nd = len(shape) - (2 if batched else 1)
            fields = (IDENTITY,) * nd if nd > 0 else None
            out = TensorFacts(shape, fields, "spatial" if nd > 0 else "flat")
            tensors[node.id] = out
            rows.append(_row(node, graph, [], out, 0, 0, 0, 0, 0, 0, [], [], itemsize))
            continue
        ins = [tensors[i] for i in node.inputs]
        if node.observed_input_shapes is not None:  # the dynamic fallback saw the real inputs
            ins = [
                TensorFacts(tuple(s), t.fields, t.scope) if tuple(s) == t.shape else TensorFacts(tuple(s), None, "flat")
                for s, t in zip(node.observed_input_shapes, ins, strict=True)
            ]
        if node.kind == "reshape" and node.attrs.get("shape") is not None:
            node = _resolve_reshape(node, tensors)
        facts = RULES[node.kind](node, ins, Context([graph.nodes[i].name for i in node.inputs], batched))
        out, warnings = facts.output, list(facts.warnings)
        if out.scope == "flat" and out.extent is None and out.fields is not None:
            out.extent = extent(ins[0])
        if node.observed_output_shape is not None and node.kind != "other":
            if tuple(node.observed_output_shape) != out.shape:
                warnings.append(
                    f"the convlab shape rule gives {out.shape}, the model's run gave "
                    f"{tuple(node.observed_output_shape)}"
                )
        tensors[node.id] = out
        params = facts.params if node.params is None else node.params
        if node.params is not None and facts.params and facts.params != node.params + node.frozen_params:
            warnings.append(
                f"the layer holds {node.params + node.frozen_params} parameters, its facts imply {facts.params}"
            )
        buffers = facts.buffers if node.buffers is None else node.buffers
        rows.append(
            _row(node, graph, ins, out, params or 0, node.frozen_params, buffers or 0, facts.macs, facts.flops,
                 facts.bias_adds, warnings, list(facts.notes), itemsize)
        )
    stem = _stem_warning(graph, tensors)
    return Report(
        rows, [tuple(s) for s in shapes], itemsize=itemsize, batched=batched,
        outputs=graph.output_ids(), notes=list(graph.notes), model_name=model_name,
        model_warnings=list(model_warnings) + ([] if stem is None else [stem]), model_counts=model_counts,
    )


#: The stem warning starts with this (``convlab summary`` adds the zoo's small-input variant to it).
SMALL_INPUT_WARNING = "small input for this stem"
#: A stem that leaves a map of at most this many pixels a side from a larger input is warned about.
SMALL_MAP = 8


def _stem_warning(graph: Graph, tensors: list) -> str | None:
    """A warning when the stem downsamples the input to ``SMALL_MAP`` pixels a side or fewer.

    The stem is the chain of single-input layers from the (only) input up to the first
    node whose output feeds two or more nodes (the first residual block, inception module
    or split); a network that is one chain (VGG, AlexNet) has no stem to speak of. E.g. the
    ImageNet ResNet stem (7x7 stride-2 conv, 3x3 stride-2 max pool) leaves 8x8 of 32x32.
    """
    if len(graph.input_ids) != 1:
        return None
    consumers: dict[int, list[int]] = {}
    for node in graph.nodes:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node.id)
    current = graph.input_ids[0]
    chain: list[int] = []
    while len(consumers.get(current, ())) == 1:
        nxt = consumers[current][0]
        if len(graph.nodes[nxt].inputs) != 1:
            break
        chain.append(nxt)
        current = nxt
    if not chain or len(consumers.get(current, ())) < 2:
        return None  # no branch after the first layers: no stem
    first, last = tensors[graph.input_ids[0]], tensors[current]
    if first.scope != "spatial" or last.scope != "spatial" or not first.fields or last.fields is None \
            or len(last.fields) != len(first.fields):
        return None
    nd = len(first.fields)
    size_in, size_out = first.shape[-nd:], last.shape[-nd:]
    if min(size_out) > SMALL_MAP or all(o >= i for o, i in zip(size_out, size_in, strict=True)):
        return None
    shrink = "x".join(str(v) for v in size_in), "x".join(str(v) for v in size_out)
    names = graph.nodes[chain[0]].name, graph.nodes[current].name
    return (
        f"{SMALL_INPUT_WARNING}: the stem ({names[0]} .. {names[1]}) shrinks the {shrink[0]} input to "
        f"{shrink[1]} before the first block, which leaves the rest of the network few pixels to work on; "
        f"small images want a stem that keeps their size (e.g. a 3x3 stride-1 convolution, no max pooling)"
    )


def _resolve_reshape(node: Node, tensors: list) -> Node:
    target = node.attrs["shape"]
    if not any(isinstance(e, tuple) for e in target):
        return node
    resolved = []
    for entry in target:
        if isinstance(entry, tuple) and entry[0] == "shape":  # ('shape', node_id): all of that node's sizes
            resolved.extend(tensors[entry[1]].shape)
        else:
            resolved.append(_size_value(entry, tensors))
    return Node(node.id, node.kind, node.name, node.inputs, node.op, {**node.attrs, "shape": tuple(resolved)},
                node.params, node.frozen_params, node.buffers, node.observed_output_shape,
                node.observed_input_shapes, node.notes)


_ARITHMETIC = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b, "truediv": lambda a, b: a // b, "neg": lambda a, b: -a,
}


def _size_value(entry, tensors: list) -> int:
    """A reshape entry: an int, ``('dim', node_id, axis)`` or ``('expr', op, a, b)`` over such entries."""
    if not isinstance(entry, tuple):
        return int(entry)
    if entry[0] == "dim":
        return tensors[entry[1]].shape[entry[2]]
    if entry[0] == "expr" and entry[1] in _ARITHMETIC:
        b = _size_value(entry[3], tensors) if entry[3] is not None else 0
        return int(_ARITHMETIC[entry[1]](_size_value(entry[2], tensors), b))
    raise ValueError(f"analyze: cannot resolve the reshape size {entry!r}")


def _input_shapes(input_shape, count: int) -> list[tuple[int, ...]]:
    if input_shape and all(isinstance(v, int) for v in input_shape):
        shapes = [tuple(int(v) for v in input_shape)]
    else:
        shapes = [tuple(int(v) for v in s) for s in input_shape]
    if len(shapes) != count:
        raise ValueError(f"analyze: the graph has {count} input(s), got {len(shapes)} input shape(s)")
    for s in shapes:
        if not s or any(v < 1 for v in s):
            raise ValueError(f"analyze: input shape {s} must be non-empty with sizes >= 1")
    return shapes


def _row(node, graph, ins, out, params, frozen, buffers, macs, flops, bias_adds, warnings, notes, itemsize):
    elements = math.prod(out.shape)
    return LayerFacts(
        id=node.id,
        name=node.name,
        kind=node.kind,
        op=node.op,
        inputs=tuple(graph.nodes[i].name for i in node.inputs),
        input_shapes=tuple(t.shape for t in ins),
        output_shape=out.shape,
        params=params + frozen,
        trainable_params=params,
        buffers=buffers,
        macs=macs,
        flops=flops,
        bias_adds=bias_adds,
        memory=elements * itemsize,
        receptive_field=out.fields,
        scope=out.scope,
        warnings=tuple(warnings),
        notes=tuple(node.notes) + tuple(notes),
    )
