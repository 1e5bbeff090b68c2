"""One rule per node kind: a node's facts and its inputs -> its output, costs and receptive field.

:data:`RULES` maps every kind of :data:`~convlab.analysis.graph.KINDS` but ``input``
to a small function ``rule(node, inputs, context) -> NodeFacts``;
:func:`convlab.analysis.analyze_graph` calls it for each node in topological order.
The conventions (what a MAC and a FLOP are, per kind) are stated in
:mod:`convlab.analysis.facts`. Shapes come from :mod:`convlab.shapes`, the costs of
convolutions and linear layers from :mod:`convlab.costs`, receptive fields from
:mod:`convlab.analysis.receptive`: this module only applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import NamedTuple

from ..costs import conv_cost, conv_transpose_cost
from ..shapes import (
    ReceptiveField,
    adaptive_pool_window,
    conv_output_length,
    conv_output_shape,
    conv_transpose_output_shape,
    pool_output_shape,
    resolve_padding,
)
from .graph import Node
from .receptive import adaptive_field, compose, layer_field, merge_fields, transposed_field, upsample_field

__all__ = ["RULES", "Context", "NodeFacts", "TensorFacts"]


class TensorFacts:
    """Shape and receptive field of one node's output, as the walk sees it."""

    __slots__ = ("extent", "fields", "scope", "shape")

    def __init__(
        self,
        shape: tuple[int, ...],
        fields: tuple[ReceptiveField, ...] | None,
        scope: str,
        extent: tuple[int, ...] | None = None,
    ) -> None:
        self.shape = shape
        self.fields = fields
        self.scope = scope
        self.extent = extent  # spatial sizes the fields refer to, once the grid is gone (scope 'flat')


class NodeFacts(NamedTuple):
    """What a rule derives for one node (counts for the whole input, batch included)."""

    output: TensorFacts
    macs: int = 0
    flops: int = 0
    bias_adds: int = 0
    params: int = 0  # parameters the facts imply (weights of conv/linear, BatchNorm's affine pair)
    buffers: int = 0  # buffers the facts imply (BatchNorm's running statistics)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Context(NamedTuple):
    """What a rule needs besides the node and its inputs."""

    input_names: list[str]  # the names of the node's inputs (for the alignment warnings of a merge)
    batched: bool  # whether the graph's input has a batch dim


Rule = Callable[[Node, list[TensorFacts], Context], NodeFacts]


# ----------------------------------------------------------------------------- helpers


def _prod(values: Sequence[int]) -> int:
    return math.prod(values)


def _where(node: Node) -> str:
    return f"analyze: node {node.name!r} ({node.op})"


def _split(node: Node, shape: tuple[int, ...], ndim: int) -> tuple[int, int, tuple[int, ...]]:
    """(batch count, channels, spatial) of an input to an ``ndim``-d layer; (C, *S) is unbatched."""
    if len(shape) == ndim + 2:
        return shape[0], shape[1], shape[2:]
    if len(shape) == ndim + 1:
        return 1, shape[0], shape[1:]
    raise ValueError(
        f"{_where(node)}: a {ndim}-d layer needs an input of rank {ndim + 2} (N, C, *spatial) or {ndim + 1} "
        f"(C, *spatial), got shape {shape}"
    )


def _check_channels(node: Node, expected: int, got: int, shape: tuple[int, ...]) -> None:
    if expected != got:
        raise ValueError(f"{_where(node)}: expects {expected} input channels, got {got} (input shape {shape})")


def _dim(node: Node, dim: object, rank: int, batched: bool) -> int:
    if dim == "channel":
        return 1 if batched and rank >= 2 else 0
    d = int(dim)  # type: ignore[call-overload]
    if not -rank <= d < rank:
        raise ValueError(f"{_where(node)}: `dim` (={d}) is out of range for a tensor of rank {rank}")
    return d % rank


def _broadcast(node: Node, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        sizes = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(
                f"{_where(node)}: input shapes {tuple(shapes)} do not broadcast (dim {i}: {sorted(sizes)})"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _spatial_count(x: TensorFacts) -> int:
    """Number of trailing spatial dims whose fields are tracked on a grid (0 when none)."""
    return len(x.fields) if x.fields is not None and x.scope == "spatial" else 0


def _globalize(t: TensorFacts, extent: Sequence[int]) -> tuple[ReceptiveField, ...] | None:
    """Fields of a unit that sees every position of a map whose per-dim fields are ``t.fields``."""
    if t.fields is None:
        return None
    if t.scope == "global":
        return t.fields
    return tuple(compose(f, layer_field(n, n, 0)) for f, n in zip(t.fields, extent, strict=True))


def _compose_all(
    x: TensorFacts, ndim: int, notes: list[str], own: list[ReceptiveField]
) -> tuple[ReceptiveField, ...] | None:
    if x.fields is None:
        return None
    if x.scope != "spatial":
        return x.fields  # every unit already sees the whole map (global) or positions are lost (flat)
    if len(x.fields) != ndim:
        notes.append(f"input has {len(x.fields)} tracked spatial dims, the layer {ndim}: receptive field dropped")
        return None
    return tuple(compose(f, g) for f, g in zip(x.fields, own, strict=True))


def extent(x: TensorFacts) -> tuple[int, ...] | None:
    """Spatial sizes the fields of ``x`` refer to (for a spatial tensor: its trailing dims)."""
    if x.scope == "spatial" and x.fields is not None:
        return x.shape[len(x.shape) - len(x.fields):]
    return x.extent


def _reshaped_scope(x: TensorFacts, shape: tuple[int, ...], perm: Sequence[int] | None = None) -> str:
    """A reshape or permutation keeps the grid when it leaves the trailing spatial dims alone.

    (Channel shuffle written as view -> transpose -> view only regroups channels.)
    """
    if x.scope != "spatial" or x.fields is None:
        return x.scope
    nd = len(x.fields)
    rank = len(x.shape)
    if perm is not None:
        kept = tuple(perm[len(perm) - nd:]) == tuple(range(rank - nd, rank))
    else:
        kept = len(shape) > nd and tuple(shape[len(shape) - nd:]) == tuple(x.shape[rank - nd:])
    return "spatial" if kept else "flat"


def _reshaped(node: Node, shape: tuple[int, ...], target: Sequence) -> tuple[int, ...]:
    total = _prod(shape)
    resolved = []
    for entry in target:
        if isinstance(entry, tuple):  # ('dim', node_id, axis): resolved by the walk, see analyze_graph
            raise ValueError(f"{_where(node)}: unresolved reshape entry {entry!r}")
        resolved.append(int(entry))
    if resolved.count(-1) > 1:
        raise ValueError(f"{_where(node)}: only one -1 is allowed in the reshape target {tuple(target)}")
    known = _prod([v for v in resolved if v != -1])
    if -1 in resolved:
        if known == 0 or total % known:
            raise ValueError(f"{_where(node)}: cannot reshape {shape} ({total} elements) to {tuple(resolved)}")
        resolved[resolved.index(-1)] = total // known
    elif known != total:
        raise ValueError(f"{_where(node)}: cannot reshape {shape} ({total} elements) to {tuple(resolved)}")
    return tuple(resolved)


def _merge(
    ins: list[TensorFacts], names: list[str], shape: tuple[int, ...], warnings: list[str]
) -> tuple[tuple[ReceptiveField, ...] | None, str]:
    """Union of the inputs' fields with the alignment check; broadcast and global inputs skip the check."""
    spatial = [t for t in ins if t.scope == "spatial" and t.fields is not None]
    if not spatial:
        tracked = [t for t in ins if t.fields is not None]
        if not tracked:
            return None, ins[0].scope
        return tracked[0].fields, "global" if any(t.scope == "global" for t in ins) else tracked[0].scope
    nd = len(spatial[0].fields)
    if any(len(t.fields) != nd for t in spatial):
        warnings.append("inputs track different numbers of spatial dims: receptive field dropped")
        return None, "flat"
    rank = len(shape)
    merged = []
    candidates = []
    labels = []
    for t, name in zip(ins, names, strict=True):
        if t.fields is None or len(t.fields) != nd:
            continue
        candidates.append(t)
        labels.append(name)
    for d in range(nd):
        out_size = shape[rank - nd + d]
        fields = [t.fields[d] for t in candidates]
        skip = [
            t.scope != "spatial" or (t.shape[len(t.shape) - nd + d] == 1 and out_size > 1) for t in candidates
        ]
        field, warn = merge_fields(fields, labels, d, skip)
        merged.append(field)
        warnings.extend(warn)
    return tuple(merged), "spatial"


def _upsample_size(node: Node, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[Fraction, ...]]:
    """Output size and per-dim scale (output/input as used for coordinates) of an upsampling.

    PyTorch ``interpolate``: ``O = floor(I * scale_factor)`` when a factor is given,
    and the coordinate map then uses that factor; with ``size`` it uses ``I / O``.
    (No rule in convlab.shapes covers resampling; this is the only copy.)
    """
    nd = len(spatial)
    size = node.attrs.get("size")
    factor = node.attrs.get("scale_factor")
    if size is not None:
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        return tuple(int(s) for s in size), tuple(Fraction(int(o), i) for o, i in zip(size, spatial, strict=True))
    if factor is None:
        raise ValueError(f"{_where(node)}: upsampling needs `size` or `scale_factor`")
    factor = tuple(factor) if isinstance(factor, (tuple, list)) else (factor,) * nd
    if len(factor) != nd:
        raise ValueError(f"{_where(node)}: `scale_factor` {factor} has {len(factor)} entries for {nd} spatial dims")
    out = tuple(math.floor(float(i) * float(f)) for i, f in zip(spatial, factor, strict=True))
    return out, tuple(Fraction(f).limit_denominator(1 << 20) for f in factor)


# ----------------------------------------------------------------------------- weighted layers (MACs)


def _conv(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """conv, conv_transpose: the shape rule of convlab.shapes, the cost rule of convlab.costs."""
    x, attrs, notes = ins[0], node.attrs, []
    spec = attrs["spec"]
    n, c, spatial = _split(node, x.shape, spec.ndim)
    _check_channels(node, attrs["in_channels"], c, x.shape)
    c_out = attrs["out_channels"]
    bias = bool(attrs.get("bias", False))
    if node.kind == "conv":
        out_sp = tuple(conv_output_shape(spec, spatial))
        pads = resolve_padding(spec, spatial)
        cost = conv_cost(c, c_out, spec.kernel_size, out_sp, spec.groups, bias)
        make = layer_field
    else:
        out_sp = tuple(conv_transpose_output_shape(spec, spatial))
        pads = spec.padding
        cost = conv_transpose_cost(c, c_out, spec.kernel_size, spatial, out_sp, spec.groups, bias)
        make = transposed_field
    shape = (*x.shape[: len(x.shape) - spec.ndim - 1], c_out, *out_sp)
    fields = _compose_all(x, spec.ndim, notes, [
        make(k, s, p[0], d) for k, s, p, d in zip(spec.kernel_size, spec.stride, pads, spec.dilation, strict=True)
    ])
    if spec.padding_mode not in ("zeros",) and x.scope == "spatial":
        notes.append(f"padding_mode={spec.padding_mode!r}: the field's padded part reads mirrored/wrapped pixels")
    # convlab.costs counts one sample: n samples cost n times as much
    return NodeFacts(TensorFacts(shape, fields, x.scope), macs=cost.macs * n, flops=cost.flops * n,
                     bias_adds=cost.bias_adds * n, params=cost.params, notes=tuple(notes))


def _linear(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """linear: a 1x1 convolution over its rows, counted by the same convlab.costs rule."""
    x, attrs = ins[0], node.attrs
    f_in, f_out = attrs["in_features"], attrs["out_features"]
    if not x.shape or x.shape[-1] != f_in:
        raise ValueError(f"{_where(node)}: expects {f_in} input features in the last dim, got shape {x.shape}")
    rows = _prod(x.shape[:-1])
    cost = conv_cost(f_in, f_out, (1,), (rows,), 1, bool(attrs.get("bias", False)))
    fields = None
    if x.scope == "global":
        fields = x.fields
    elif x.fields is not None and extent(x) is not None:
        fields = _globalize(x, extent(x))
    return NodeFacts(TensorFacts((*x.shape[:-1], f_out), fields, "global"), macs=cost.macs, flops=cost.flops,
                     bias_adds=cost.bias_adds, params=cost.params)


# ----------------------------------------------------------------------------- pooling


def _pool(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """pool_max: ``prod(k) - 1`` comparisons per output; pool_avg: ``prod(k)`` (adds and one divide)."""
    x, notes = ins[0], []
    spec = node.attrs["spec"]
    n, c, spatial = _split(node, x.shape, spec.ndim)
    out_sp = tuple(pool_output_shape(spec, spatial))
    window = _prod(spec.kernel_size)
    outputs = n * c * _prod(out_sp)
    flops = outputs * (window - 1 if node.kind == "pool_max" else window)
    shape = (*x.shape[: len(x.shape) - spec.ndim - 1], c, *out_sp)
    fields = _compose_all(x, spec.ndim, notes, [
        layer_field(k, s, p[0], d) for k, s, p, d in zip(spec.kernel_size, spec.stride, spec.padding, spec.dilation,
                                                         strict=True)
    ])
    return NodeFacts(TensorFacts(shape, fields, x.scope), flops=flops, notes=tuple(notes))


def _adaptive_pool(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """adaptive_pool: the actual windows (avg: the sum of their sizes; max: that minus 1 per output)."""
    x, attrs, notes = ins[0], node.attrs, []
    target = tuple(attrs["output_size"])
    nd = len(target)
    n, c, spatial = _split(node, x.shape, nd)
    out_sp = tuple(i if o is None else int(o) for o, i in zip(target, spatial, strict=True))
    window_sum = 1
    own = []
    for i, o in zip(spatial, out_sp, strict=True):
        if o < 1:
            raise ValueError(f"{_where(node)}: adaptive pooling output size must be >= 1, got {out_sp}")
        window_sum *= sum(e - s for s, e in (adaptive_pool_window(i, o, j) for j in range(o)))
        field, uniform = adaptive_field(i, o)
        if not uniform:
            notes.append(f"adaptive windows {i} -> {o} are not uniform: the field is their affine hull, jump {i}/{o}")
        own.append(field)
    outputs = n * c * _prod(out_sp)
    flops = n * c * window_sum - (outputs if attrs.get("mode", "avg") == "max" else 0)
    shape = (*x.shape[: len(x.shape) - nd - 1], c, *out_sp)
    fields = _compose_all(x, nd, notes, own)
    return NodeFacts(TensorFacts(shape, fields, x.scope), flops=flops, notes=tuple(notes))


def _global_pool(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """global_pool (and ``mean`` over dims): avg ``prod(spatial)`` per output, max ``prod(spatial) - 1``."""
    x, attrs = ins[0], node.attrs
    nd = attrs.get("ndim")
    if attrs.get("dims") is not None:  # torch.mean(x, dims): a global pooling when dims are the trailing ones
        rank = len(x.shape)
        dims = sorted({_dim(node, v, rank, context.batched) for v in attrs["dims"]})
        if dims != list(range(rank - len(dims), rank)):
            keep = attrs.get("keepdim", False)
            shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape) if keep or i not in dims)
            return NodeFacts(TensorFacts(shape, None, "flat"), flops=_prod(x.shape),
                             notes=(f"mean over dims {tuple(dims)}: receptive field not tracked",))
        nd = len(dims)
    nd = len(x.shape) - (2 if context.batched else 1) if nd is None else int(nd)  # None: every dim after C
    if nd < 1 or len(x.shape) < nd + 1:
        raise ValueError(f"{_where(node)}: global pooling over {nd} dims needs rank >= {nd + 1}, got {x.shape}")
    spatial = x.shape[len(x.shape) - nd:]
    lead = x.shape[: len(x.shape) - nd]
    shape = (*lead, *((1,) * nd)) if attrs.get("keepdim", True) else lead
    per = _prod(spatial)
    flops = _prod(lead) * (per - 1 if attrs.get("mode", "avg") == "max" else per)
    fields = _globalize(x, spatial) if x.fields is not None and len(x.fields) == nd else None
    return NodeFacts(TensorFacts(shape, fields, "global"), flops=flops)


# ----------------------------------------------------------------------------- element-wise layers


def _per_element(flops_per_element: int) -> Rule:
    """A layer that keeps its input's shape and field, with a fixed count of operations per element."""

    def rule(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
        x = ins[0]
        return NodeFacts(TensorFacts(x.shape, x.fields, x.scope), flops=flops_per_element * _prod(x.shape))

    return rule


def _batch_norm(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """bn: 2 FLOPs per element (inference: folded to ``x * scale + shift``); 2C parameters, 2C + 1 buffers."""
    x, attrs = ins[0], node.attrs
    nd = attrs.get("ndim")
    axis = 1 if (nd == 1 or (nd is None and context.batched) or (nd and len(x.shape) == nd + 2)) else 0
    if len(x.shape) <= axis:
        raise ValueError(f"{_where(node)}: batch norm needs a channel dim, got shape {x.shape}")
    c = x.shape[axis]
    if attrs.get("num_features") is not None:
        _check_channels(node, attrs["num_features"], c, x.shape)
    params = 2 * c if attrs.get("affine", True) else 0
    buffers = 2 * c + 1 if attrs.get("track_running_stats", True) else 0
    return NodeFacts(TensorFacts(x.shape, x.fields, x.scope), flops=2 * _prod(x.shape), params=params,
                     buffers=buffers)


def _local_response_norm(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """lrn: ``size + 5`` per element (square, window sum, mean, alpha, k, pow, divide)."""
    x = ins[0]
    flops = (int(node.attrs.get("size", 5)) + 5) * _prod(x.shape)
    return NodeFacts(TensorFacts(x.shape, x.fields, x.scope), flops=flops)


def _softmax(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """softmax: 3 per element (exp, add to the sum, divide); over a spatial dim every output sees the map."""
    x = ins[0]
    flops = 3 * _prod(x.shape)
    rank = len(x.shape)
    d = _dim(node, node.attrs.get("dim", -1), rank, context.batched)
    nd = _spatial_count(x)
    if nd and d >= rank - nd:
        fields = _globalize(x, x.shape[rank - nd:])
        return NodeFacts(TensorFacts(x.shape, fields, "global"), flops=flops,
                         notes=("softmax over a spatial dim: every output sees the whole map",))
    return NodeFacts(TensorFacts(x.shape, x.fields, x.scope), flops=flops)


def _shuffle(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """shuffle: channels regrouped, nothing computed."""
    x = ins[0]
    axis = _dim(node, "channel", len(x.shape), context.batched)
    groups = int(node.attrs["groups"])
    if x.shape[axis] % groups:
        raise ValueError(f"{_where(node)}: `groups` (={groups}) must divide the channels (={x.shape[axis]})")
    return NodeFacts(TensorFacts(x.shape, x.fields, x.scope))


def _arithmetic(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """add, mul: ``operands - 1`` per output element (a residual ``x + y``: 1); broadcasting shapes."""
    shape = _broadcast(node, [t.shape for t in ins])
    operands = int(node.attrs.get("operands", len(ins)))
    warnings: list[str] = []
    fields, scope = _merge(ins, context.input_names, shape, warnings)
    return NodeFacts(TensorFacts(shape, fields, scope), flops=max(operands - 1, 1) * _prod(shape),
                     warnings=tuple(warnings))


# ----------------------------------------------------------------------------- data movement (0 FLOPs)


def _concat(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    x = ins[0]
    rank = len(x.shape)
    d = _dim(node, node.attrs.get("dim", "channel"), rank, context.batched)
    for t in ins:
        if len(t.shape) != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape, strict=True)) if i != d):
            raise ValueError(
                f"{_where(node)}: inputs must match in every dim but {d}, got {tuple(t.shape for t in ins)}"
            )
    shape = (*x.shape[:d], sum(t.shape[d] for t in ins), *x.shape[d + 1:])
    nd = _spatial_count(x)
    if nd and d >= rank - nd:
        return NodeFacts(TensorFacts(shape, None, "flat"),
                         notes=("concatenation along a spatial dim: receptive field not tracked",))
    warnings: list[str] = []
    fields, scope = _merge(ins, context.input_names, shape, warnings)
    return NodeFacts(TensorFacts(shape, fields, scope), warnings=tuple(warnings))


def _slice(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    x, attrs = ins[0], node.attrs
    rank = len(x.shape)
    shape = list(x.shape)
    fields = list(x.fields) if x.fields is not None else None
    nd = _spatial_count(x)
    items = attrs.get("slices") or ((attrs.get("dim", "channel"), attrs.get("start"), attrs.get("stop"),
                                     attrs.get("step")),)
    for item in items:
        d = _dim(node, item[0], rank, context.batched)
        size = shape[d]
        if "chunks" in attrs:  # torch.chunk: ceil-sized pieces
            piece = -(-size // int(attrs["chunks"]))
            start = piece * int(attrs["index"])
            stop, step = min(start + piece, size), 1
        elif "sizes" in attrs:  # torch.split with a size or a list of sizes
            sizes = attrs["sizes"]
            sizes = [sizes] * (-(-size // sizes)) if isinstance(sizes, int) else list(sizes)
            start = sum(sizes[: int(attrs["index"])])
            stop, step = min(start + sizes[int(attrs["index"])], size), 1
        else:
            start, stop, step = slice(*item[1:]).indices(size)
        length = len(range(start, stop, step))
        if length < 1:
            raise ValueError(f"{_where(node)}: the slice [{start}:{stop}:{step}] of dim {d} (size {size}) is empty")
        shape[d] = length
        if nd and d >= rank - nd:  # a crop: start moves by start*jump, jump by step
            i = d - (rank - nd)
            fields[i] = compose(fields[i], layer_field(1, step, -start, 1))
    return NodeFacts(TensorFacts(tuple(shape), tuple(fields) if fields is not None else None, x.scope))


def _flatten(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    x = ins[0]
    rank = len(x.shape)
    start = _dim(node, node.attrs.get("start_dim", 1), rank, context.batched) if rank else 0
    end = _dim(node, node.attrs.get("end_dim", -1), rank, context.batched) if rank else 0
    shape = (*x.shape[:start], _prod(x.shape[start:end + 1]), *x.shape[end + 1:]) if rank else (1,)
    return NodeFacts(TensorFacts(shape, x.fields, _reshaped_scope(x, shape)))


def _reshape(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """reshape (view/reshape with the sizes resolved by the walk), transpose, permute."""
    x, attrs = ins[0], node.attrs
    perm = attrs.get("perm")
    rank = len(x.shape)
    if attrs.get("swap") is not None:  # transpose(a, b)
        a, b = (_dim(node, v, rank, context.batched) for v in attrs["swap"])
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
        perm = tuple(order)
    if perm is not None:  # transpose / permute: a reshape that reorders dims
        perm = tuple(_dim(node, p, rank, context.batched) for p in perm)
        if sorted(perm) != list(range(rank)):
            raise ValueError(f"{_where(node)}: {attrs['perm']} is not a permutation of the {rank} dims")
        shape = tuple(x.shape[p] for p in perm)
    else:
        shape = _reshaped(node, x.shape, attrs["shape"])
    return NodeFacts(TensorFacts(shape, x.fields, _reshaped_scope(x, shape, perm)))


def _pad(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    x = ins[0]
    pairs = [tuple(p) for p in node.attrs["pads"]]
    rank = len(x.shape)
    if len(pairs) > rank:
        raise ValueError(f"{_where(node)}: {len(pairs)} padded dims for a tensor of rank {rank}")
    first = rank - len(pairs)
    shape = list(x.shape)
    for i, (lo, hi) in enumerate(pairs):
        # The padded length is the convolution length rule with a kernel of 1: I + lo + hi.
        shape[first + i] = int(conv_output_length(x.shape[first + i], 1, 1, (lo, hi), 1))
        if shape[first + i] < 1:
            raise ValueError(f"{_where(node)}: padding {(lo, hi)} leaves dim {first + i} empty")
    fields = x.fields
    nd = _spatial_count(x)
    if nd:
        new = list(fields)
        for i, (lo, _) in enumerate(pairs):
            j = first + i - (rank - nd)
            if j >= 0:
                new[j] = compose(new[j], layer_field(1, 1, lo, 1))
        fields = tuple(new)
    return NodeFacts(TensorFacts(tuple(shape), fields, x.scope))


def _upsample(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """upsample: nearest 0 FLOPs; linear modes ``2 * taps - 1`` per output (taps = 2 per dim, 4 bicubic)."""
    x, attrs, notes = ins[0], node.attrs, []
    given = attrs.get("size") or attrs.get("scale_factor")
    # torch's interpolate (and convlab.nn.Upsample) take (N, C, *spatial) only: a 3-d input is 1-d
    nd = len(given) if isinstance(given, (tuple, list)) else len(x.shape) - 2
    _, c, spatial = _split(node, x.shape, nd)
    out_sp, scales = _upsample_size(node, spatial)
    mode = attrs.get("mode", "nearest")
    align = bool(attrs.get("align_corners") or False)
    taps = 1 if mode.startswith("nearest") else (4 if mode == "bicubic" else 2) ** nd
    shape = (*x.shape[: len(x.shape) - nd - 1], c, *out_sp)
    flops = (2 * taps - 1) * _prod(shape) if taps > 1 else 0
    own = [
        upsample_field(Fraction(i - 1, o - 1) if align and o > 1 else 1 / s, mode, align)
        for s, i, o in zip(scales, spatial, out_sp, strict=True)
    ]
    fields = _compose_all(x, nd, notes, own)
    return NodeFacts(TensorFacts(shape, fields, x.scope), flops=flops, notes=tuple(notes))


def _other(node: Node, ins: list[TensorFacts], context: Context) -> NodeFacts:
    """other: no convlab rule; the shape a run of the real model saw, if any (else the input's, with a warning)."""
    x = ins[0]
    warnings = ()
    if node.observed_output_shape is not None:
        shape = tuple(node.observed_output_shape)
    else:
        shape = x.shape
        warnings = (f"unknown operation {node.op!r}: output shape assumed equal to its input's",)
    return NodeFacts(TensorFacts(shape, None, "flat"), warnings=warnings,
                     notes=(f"{node.op}: not counted (0 MACs, 0 FLOPs); receptive field not tracked",))


#: The rule of every node kind but ``input`` (which the walk handles: it has no inputs).
RULES: dict[str, Rule] = {
    "conv": _conv,
    "conv_transpose": _conv,
    "linear": _linear,
    "pool_max": _pool,
    "pool_avg": _pool,
    "adaptive_pool": _adaptive_pool,
    "global_pool": _global_pool,
    "bn": _batch_norm,
    "norm": _per_element(8),  # group/layer/instance norm: mean 1, variance 3, normalize 2, affine 2
    "activation": _per_element(1),  # any function: ReLU, sigmoid, GELU ... each one op
    "identity": _per_element(0),
    "dropout": _per_element(0),
    "lrn": _local_response_norm,
    "softmax": _softmax,
    "shuffle": _shuffle,
    "add": _arithmetic,
    "mul": _arithmetic,
    "concat": _concat,
    "slice": _slice,
    "flatten": _flatten,
    "reshape": _reshape,
    "pad": _pad,
    "upsample": _upsample,
    "other": _other,
}
