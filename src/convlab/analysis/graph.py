"""The graph of layer facts that every front-end builds and the analysis reads.

A :class:`Graph` is a list of :class:`Node` in topological order (a node's
inputs are earlier nodes). A node says *what* a layer is -- its kind, its
hyperparameters (a :class:`~convlab.spec.ConvSpec` or
:class:`~convlab.spec.PoolSpec` for convolutions and poolings, plain values for
the rest) and how many parameters and buffers it holds -- never how big its
output is: shapes, costs and receptive fields are derived from the facts by
:func:`convlab.analysis.analyze_graph`, with the rules of :mod:`convlab.shapes`
and :mod:`convlab.costs`.

Front-ends: :func:`convlab.analysis.graph_from_module` (a ``convlab.nn`` model)
and :func:`convlab.interop.torch.graph_from_torch` (a ``torch.nn.Module``). A
graph can also be written by hand:

>>> from convlab.spec import ConvSpec, PoolSpec
>>> g = Graph()
>>> x = g.input()
>>> c = g.add("conv", "conv1", x, spec=ConvSpec(3, padding=1, ndim=2), in_channels=3, out_channels=8, bias=True)
>>> p = g.add("pool_max", "pool1", c, spec=PoolSpec(2, ndim=2))
>>> [n.kind for n in g]
['input', 'conv', 'pool_max']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTIVATION_CLASSES", "KINDS", "Graph", "Node"]

# What each kind needs in ``Node.attrs`` (all optional unless marked *):
#
# input           --
# conv            spec* (ConvSpec), in_channels*, out_channels*, bias (bool)
# conv_transpose  spec* (ConvSpec, transposed=True), in_channels*, out_channels*, bias
# pool_max        spec* (PoolSpec)
# pool_avg        spec* (PoolSpec)
# adaptive_pool   output_size* (tuple, None keeps that size), mode ('avg' | 'max')
# global_pool     ndim* (spatial dims reduced: the last ndim), mode, keepdim (default True)
# linear          in_features*, out_features*, bias
# bn              num_features, affine, ndim (1, 2 or 3: BatchNorm1d/2d/3d)
# norm            (group/layer/instance norm; FLOPs per element documented in facts)
# activation      function (name, e.g. 'relu')
# add             operands (number of summands, tensors and scalars; default: the inputs)
# mul             operands (likewise, for products and quotients)
# concat          dim ('channel' or an int)
# shuffle         groups*
# slice           dim ('channel' or an int), start, stop, step; or slices* ((dim, start, stop, step), ...);
#                 or dim + chunks + index (torch.chunk) or dim + sizes + index (torch.split)
# flatten         start_dim (default 1), end_dim (default -1)
# reshape         shape* (entries: int, -1, ('dim', node_id, axis) = that node's output size along axis,
#                 ('shape', node_id) = all its sizes, ('expr', 'mul'|'add'|'sub'|'floordiv'|'neg', a, b)
#                 over entries); or perm* (transpose / permute)
# pad             pads* (one (lo, hi) pair per padded trailing dim, first pair = first padded dim)
# upsample        scale_factor or size (one per spatial dim), mode, align_corners
# identity, dropout --
# lrn             size
# softmax         dim
# other           -- (output shape from ``Node.observed_output_shape``, else unchanged, with a warning)
KINDS = frozenset({
    "input", "conv", "conv_transpose", "pool_max", "pool_avg", "adaptive_pool", "global_pool", "linear",
    "bn", "norm", "activation", "add", "mul", "concat", "shuffle", "slice", "flatten", "reshape", "pad",
    "upsample", "identity", "dropout", "lrn", "softmax", "other",
})

#: Element-wise activation layers, by class name (torch's names; convlab.nn has a subset), -> the
#: ``function`` of their ``activation`` node. The one table both front-ends read (convlab.nn models in
#: :mod:`convlab.analysis.from_convlab`, torch models in :mod:`convlab.interop.torch_mapper`).
ACTIVATION_CLASSES = {
    "ReLU": "relu", "ReLU6": "relu6", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu", "SELU": "selu",
    "CELU": "celu", "GELU": "gelu", "SiLU": "silu", "Mish": "mish", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Hardtanh": "hardtanh", "Softplus": "softplus",
    "Softsign": "softsign", "LogSigmoid": "logsigmoid", "Tanhshrink": "tanhshrink", "Threshold": "threshold",
    "RReLU": "rrelu",
}


@dataclass(eq=False)
class Node:
    """One layer (or one functional operation) of a network, as facts.

    ``params`` and ``frozen_params`` count parameter elements that do and do
    not require a gradient; ``buffers`` counts buffer elements (BatchNorm's
    running statistics), which are not parameters. ``None`` means "derive from
    the kind" (a hand-written graph); front-ends fill in what the model holds.
    ``observed_output_shape`` / ``observed_input_shapes`` come from a run of the
    real model and are used only where no convlab shape rule applies (kind
    ``other``) or where the front-end could not see the data flow (the torch
    dynamic fallback).
    """

    id: int
    kind: str
    name: str
    inputs: tuple[int, ...]
    op: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    frozen_params: int = 0
    buffers: int | None = None
    observed_output_shape: tuple[int, ...] | None = None
    observed_input_shapes: tuple[tuple[int, ...], ...] | None = None
    notes: list[str] = field(default_factory=list)


class Graph:
    """Nodes in topological order; ``outputs`` are the ids the network returns (default: the last node)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.outputs: list[int] = []
        self.notes: list[str] = []

    def input(self, name: str = "input") -> int:
        """Add an input placeholder; shapes are given to the analysis, in the order inputs were added."""
        return self.add("input", name, ())

    def add(
        self,
        kind: str,
        name: str,
        inputs: int | Sequence[int],
        *,
        op: str = "",
        params: int | None = None,
        frozen_params: int = 0,
        buffers: int | None = None,
        notes: Sequence[str] = (),
        **attrs: Any,
    ) -> int:
        """Append a node and return its id."""
        if kind not in KINDS:
            raise ValueError(f"Graph.add: `kind` (={kind!r}) must be one of {sorted(KINDS)}")
        ids = (inputs,) if isinstance(inputs, int) else tuple(inputs)
        for i in ids:
            if not 0 <= i < len(self.nodes):
                raise ValueError(
                    f"Graph.add: node {name!r} has input id {i}, but only nodes 0..{len(self.nodes) - 1} exist "
                    "(inputs must be added first)"
                )
        if kind != "input" and not ids:
            raise ValueError(f"Graph.add: node {name!r} (kind {kind!r}) needs at least one input")
        node = Node(
            len(self.nodes), kind, name, ids, op=op or kind, attrs=attrs, params=params,
            frozen_params=frozen_params, buffers=buffers, notes=list(notes),
        )
        self.nodes.append(node)
        return node.id

    @property
    def input_ids(self) -> list[int]:
        return [n.id for n in self.nodes if n.kind == "input"]

    def output_ids(self) -> list[int]:
        return list(self.outputs) if self.outputs else ([len(self.nodes) - 1] if self.nodes else [])

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, inputs={self.input_ids}, outputs={self.output_ids()})"
