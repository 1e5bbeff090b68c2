"""From layer facts to numbers: shapes, parameters, MACs/FLOPs, memory and receptive fields.

:func:`analyze_graph` walks a :class:`~convlab.analysis.graph.Graph` once, in
topological order, in pure Python (no forward pass, no weights, no NumPy per node).

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
from fractions import Fraction

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
from .graph import Graph, Node
from .receptive import (
    IDENTITY,
    adaptive_field,
    compose,
    layer_field,
    merge_fields,
    transposed_field,
    upsample_field,
)
from .report import LayerFacts, Report

__all__ = ["analyze_graph"]

_SPATIAL_KINDS = ("conv", "conv_transpose", "pool_max", "pool_avg", "adaptive_pool", "upsample")


class _Tensor:
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


def _globalize(t: _Tensor, extent: Sequence[int]) -> tuple[ReceptiveField, ...] | None:
    """Fields of a unit that sees every position of a map whose per-dim fields are ``t.fields``."""
    if t.fields is None:
        return None
    if t.scope == "global":
        return t.fields
    return tuple(compose(f, layer_field(n, n, 0)) for f, n in zip(t.fields, extent))


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
        return tuple(int(s) for s in size), tuple(Fraction(int(o), i) for o, i in zip(size, spatial))
    if factor is None:
        raise ValueError(f"{_where(node)}: upsampling needs `size` or `scale_factor`")
    factor = tuple(factor) if isinstance(factor, (tuple, list)) else (factor,) * nd
    if len(factor) != nd:
        raise ValueError(f"{_where(node)}: `scale_factor` {factor} has {len(factor)} entries for {nd} spatial dims")
    out = tuple(math.floor(float(i) * float(f)) for i, f in zip(spatial, factor))
    return out, tuple(Fraction(f).limit_denominator(1 << 20) for f in factor)


def _node_facts(node: Node, ins: list[_Tensor], names: list[str], batched: bool) -> tuple:
    """(output tensor, macs, flops, bias_adds, derived params, derived buffers, warnings, notes)."""
    kind = node.kind
    attrs = node.attrs
    warnings: list[str] = []
    notes: list[str] = []
    macs = flops = bias_adds = 0
    params = buffers = None
    x = ins[0] if ins else None

    if kind in ("conv", "conv_transpose"):
        spec = attrs["spec"]
        n, c, spatial = _split(node, x.shape, spec.ndim)
        _check_channels(node, attrs["in_channels"], c, x.shape)
        c_out = attrs["out_channels"]
        bias = bool(attrs.get("bias", False))
        if kind == "conv":
            out_sp = tuple(conv_output_shape(spec, spatial))
            pads = resolve_padding(spec, spatial)
            cost = conv_cost(c, c_out, spec.kernel_size, out_sp, spec.groups, bias)
            make = layer_field
        else:
            out_sp = tuple(conv_transpose_output_shape(spec, spatial))
            pads = spec.padding
            cost = conv_transpose_cost(c, c_out, spec.kernel_size, spatial, out_sp, spec.groups, bias)
            make = transposed_field
        macs, bias_adds, params = cost.macs * n, cost.bias_adds * n, cost.params
        flops = 2 * macs + bias_adds
        shape = (*x.shape[: len(x.shape) - spec.ndim - 1], c_out, *out_sp)
        fields = _compose_all(x, spec.ndim, node, notes, [
            make(k, s, p[0], d) for k, s, p, d in zip(spec.kernel_size, spec.stride, pads, spec.dilation)
        ])
        if spec.padding_mode not in ("zeros",) and x.scope == "spatial":
            notes.append(f"padding_mode={spec.padding_mode!r}: the field's padded part reads mirrored/wrapped pixels")
        return _Tensor(shape, fields, x.scope), macs, flops, bias_adds, params, buffers, warnings, notes

    if kind in ("pool_max", "pool_avg"):
        spec = attrs["spec"]
        n, c, spatial = _split(node, x.shape, spec.ndim)
        out_sp = tuple(pool_output_shape(spec, spatial))
        window = _prod(spec.kernel_size)
        outputs = n * c * _prod(out_sp)
        flops = outputs * (window - 1 if kind == "pool_max" else window)
        shape = (*x.shape[: len(x.shape) - spec.ndim - 1], c, *out_sp)
        fields = _compose_all(x, spec.ndim, node, notes, [
            layer_field(k, s, p[0], d) for k, s, p, d in zip(spec.kernel_size, spec.stride, spec.padding, spec.dilation)
        ])
        return _Tensor(shape, fields, x.scope), 0, flops, 0, 0, 0, warnings, notes

    if kind == "adaptive_pool":
        target = tuple(attrs["output_size"])
        nd = len(target)
        n, c, spatial = _split(node, x.shape, nd)
        out_sp = tuple(i if o is None else int(o) for o, i in zip(target, spatial))
        window_sum = 1
        own = []
        for i, o in zip(spatial, out_sp):
            if o < 1:
                raise ValueError(f"{_where(node)}: adaptive pooling output size must be >= 1, got {out_sp}")
            window_sum *= sum(e - s for s, e in (adaptive_pool_window(i, o, j) for j in range(o)))
            field, uniform = adaptive_field(i, o)
            if not uniform:
                notes.append(f"adaptive windows {i} -> {o} are not uniform: the field is their affine hull, "
                             f"jump {i}/{o}")
            own.append(field)
        outputs = n * c * _prod(out_sp)
        flops = n * c * window_sum - (outputs if attrs.get("mode", "avg") == "max" else 0)
        shape = (*x.shape[: len(x.shape) - nd - 1], c, *out_sp)
        fields = _compose_all(x, nd, node, notes, own)
        return _Tensor(shape, fields, x.scope), 0, flops, 0, 0, 0, warnings, notes

    if kind == "global_pool":
        nd = attrs.get("ndim")
        if attrs.get("dims") is not None:  # torch.mean(x, dims): a global pooling when dims are the trailing ones
            rank = len(x.shape)
            dims = sorted({_dim(node, v, rank, batched) for v in attrs["dims"]})
            if dims != list(range(rank - len(dims), rank)):
                keep = attrs.get("keepdim", False)
                shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape) if keep or i not in dims)
                notes.append(f"mean over dims {tuple(dims)}: receptive field not tracked")
                return _Tensor(shape, None, "flat"), 0, _prod(x.shape), 0, 0, 0, warnings, notes
            nd = len(dims)
        nd = len(x.shape) - (2 if batched else 1) if nd is None else int(nd)  # None: every dim after C
        if nd < 1 or len(x.shape) < nd + 1:
            raise ValueError(f"{_where(node)}: global pooling over {nd} dims needs rank >= {nd + 1}, got {x.shape}")
        spatial = x.shape[len(x.shape) - nd:]
        lead = x.shape[: len(x.shape) - nd]
        keepdim = attrs.get("keepdim", True)
        shape = (*lead, *((1,) * nd)) if keepdim else lead
        per = _prod(spatial)
        flops = _prod(lead) * (per - 1 if attrs.get("mode", "avg") == "max" else per)
        fields = _globalize(x, spatial) if x.fields is not None and len(x.fields) == nd else None
        return _Tensor(shape, fields, "global"), 0, flops, 0, 0, 0, warnings, notes

    if kind == "linear":
        f_in, f_out = attrs["in_features"], attrs["out_features"]
        if not x.shape or x.shape[-1] != f_in:
            raise ValueError(f"{_where(node)}: expects {f_in} input features in the last dim, got shape {x.shape}")
        rows = _prod(x.shape[:-1])
        # A linear layer is a 1x1 convolution over its rows: the one cost rule.
        cost = conv_cost(f_in, f_out, (1,), (rows,), 1, bool(attrs.get("bias", False)))
        macs, bias_adds, params = cost.macs, cost.bias_adds, cost.params
        flops = 2 * macs + bias_adds
        fields = None
        if x.scope == "global":
            fields = x.fields
        elif x.fields is not None and _extent(x) is not None:
            fields = _globalize(x, _extent(x))
        return _Tensor((*x.shape[:-1], f_out), fields, "global"), macs, flops, bias_adds, params, 0, warnings, notes

    if kind in ("bn", "norm", "activation", "identity", "dropout", "lrn", "softmax", "shuffle"):
        elements = _prod(x.shape)
        if kind == "bn":
            nd = attrs.get("ndim")
            axis = 1 if (nd == 1 or (nd is None and batched) or (nd and len(x.shape) == nd + 2)) else 0
            if len(x.shape) <= axis:
                raise ValueError(f"{_where(node)}: batch norm needs a channel dim, got shape {x.shape}")
            c = x.shape[axis]
            if attrs.get("num_features") is not None:
                _check_channels(node, attrs["num_features"], c, x.shape)
            params = 2 * c if attrs.get("affine", True) else 0
            buffers = 2 * c + 1 if attrs.get("track_running_stats", True) else 0
            flops = 2 * elements
        elif kind == "norm":
            flops = 8 * elements
        elif kind == "activation":
            flops = elements
        elif kind == "lrn":
            flops = (int(attrs.get("size", 5)) + 5) * elements
        elif kind == "softmax":
            flops = 3 * elements
            rank = len(x.shape)
            d = _dim(node, attrs.get("dim", -1), rank, batched)
            nd = len(x.fields) if x.fields is not None and x.scope == "spatial" else 0
            if nd and d >= rank - nd:
                notes.append("softmax over a spatial dim: every output sees the whole map")
                fields = _globalize(x, x.shape[rank - nd:])
                return _Tensor(x.shape, fields, "global"), 0, flops, 0, 0, 0, warnings, notes
        elif kind == "shuffle":
            axis = _dim(node, "channel", len(x.shape), batched)
            groups = int(attrs["groups"])
            if x.shape[axis] % groups:
                raise ValueError(f"{_where(node)}: `groups` (={groups}) must divide the channels (={x.shape[axis]})")
        derived_params = 0 if kind != "bn" else params
        return _Tensor(x.shape, x.fields, x.scope), 0, flops, 0, derived_params, buffers, warnings, notes

    if kind in ("add", "mul"):
        shapes = [t.shape for t in ins]
        shape = _broadcast(node, shapes)
        operands = int(attrs.get("operands", len(ins)))
        flops = max(operands - 1, 1) * _prod(shape)
        fields, scope = _merge(node, ins, names, shape, warnings)
        return _Tensor(shape, fields, scope), 0, flops, 0, 0, 0, warnings, notes

    if kind == "concat":
        rank = len(x.shape)
        d = _dim(node, attrs.get("dim", "channel"), rank, batched)
        for t in ins:
            if len(t.shape) != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape)) if i != d):
                raise ValueError(
                    f"{_where(node)}: inputs must match in every dim but {d}, got {tuple(t.shape for t in ins)}"
                )
        shape = (*x.shape[:d], sum(t.shape[d] for t in ins), *x.shape[d + 1:])
        nd = len(x.fields) if x.fields is not None and x.scope == "spatial" else 0
        if nd and d >= rank - nd:
            notes.append("concatenation along a spatial dim: receptive field not tracked")
            return _Tensor(shape, None, "flat"), 0, 0, 0, 0, 0, warnings, notes
        fields, scope = _merge(node, ins, names, shape, warnings)
        return _Tensor(shape, fields, scope), 0, 0, 0, 0, 0, warnings, notes

    if kind == "slice":
        rank = len(x.shape)
        shape = list(x.shape)
        fields = list(x.fields) if x.fields is not None else None
        nd = len(x.fields) if x.fields is not None and x.scope == "spatial" else 0
        for item in attrs.get("slices") or ((attrs.get("dim", "channel"), attrs.get("start"), attrs.get("stop"),
                                             attrs.get("step")),):
            d = _dim(node, item[0], rank, batched)
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
        fields = tuple(fields) if fields is not None else None
        return _Tensor(tuple(shape), fields, x.scope), 0, 0, 0, 0, 0, warnings, notes

    if kind == "flatten":
        rank = len(x.shape)
        start = _dim(node, attrs.get("start_dim", 1), rank, batched) if rank else 0
        end = _dim(node, attrs.get("end_dim", -1), rank, batched) if rank else 0
        shape = (*x.shape[:start], _prod(x.shape[start:end + 1]), *x.shape[end + 1:]) if rank else (1,)
        return _Tensor(shape, x.fields, _reshaped_scope(x, shape)), 0, 0, 0, 0, 0, warnings, notes

    if kind == "reshape":
        perm = attrs.get("perm")
        rank = len(x.shape)
        if attrs.get("swap") is not None:  # transpose(a, b)
            a, b = (_dim(node, v, rank, batched) for v in attrs["swap"])
            order = list(range(rank))
            order[a], order[b] = order[b], order[a]
            perm = tuple(order)
        if perm is not None:  # transpose / permute: a reshape that reorders dims
            perm = tuple(_dim(node, p, rank, batched) for p in perm)
            if sorted(perm) != list(range(rank)):
                raise ValueError(f"{_where(node)}: {attrs['perm']} is not a permutation of the {rank} dims")
            shape = tuple(x.shape[p] for p in perm)
        else:
            shape = _reshape(node, x.shape, attrs["shape"])
        return _Tensor(shape, x.fields, _reshaped_scope(x, shape, perm)), 0, 0, 0, 0, 0, warnings, notes

    if kind == "pad":
        pairs = [tuple(p) for p in attrs["pads"]]
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
        nd = len(x.fields) if x.fields is not None and x.scope == "spatial" else 0
        if nd:
            new = list(fields)
            for i, (lo, _) in enumerate(pairs):
                j = first + i - (rank - nd)
                if j >= 0:
                    new[j] = compose(new[j], layer_field(1, 1, lo, 1))
            fields = tuple(new)
        return _Tensor(tuple(shape), fields, x.scope), 0, 0, 0, 0, 0, warnings, notes

    if kind == "upsample":
        given = attrs.get("size") or attrs.get("scale_factor")
        # torch's interpolate (and convlab.nn.Upsample) take (N, C, *spatial) only: a 3-d input is 1-d
        nd = len(given) if isinstance(given, (tuple, list)) else len(x.shape) - 2
        n, c, spatial = _split(node, x.shape, nd)
        out_sp, scales = _upsample_size(node, spatial)
        mode = attrs.get("mode", "nearest")
        align = bool(attrs.get("align_corners") or False)
        taps = 1 if mode.startswith("nearest") else (4 if mode == "bicubic" else 2) ** nd
        shape = (*x.shape[: len(x.shape) - nd - 1], c, *out_sp)
        if taps > 1:
            flops = (2 * taps - 1) * _prod(shape)
        own = [
            upsample_field(Fraction(i - 1, o - 1) if align and o > 1 else 1 / s, mode, align)
            for s, i, o in zip(scales, spatial, out_sp)
        ]
        fields = _compose_all(x, nd, node, notes, own)
        return _Tensor(shape, fields, x.scope), 0, flops, 0, 0, 0, warnings, notes

    # other: no convlab rule; use what a run of the real model saw, if anything.
    if node.observed_output_shape is not None:
        shape = tuple(node.observed_output_shape)
    else:
        shape = x.shape
        warnings.append(f"unknown operation {node.op!r}: output shape assumed equal to its input's")
    notes.append(f"{node.op}: not counted (0 MACs, 0 FLOPs); receptive field not tracked")
    return _Tensor(shape, None, "flat"), 0, 0, 0, 0, 0, warnings, notes


def _compose_all(
    x: _Tensor, ndim: int, node: Node, notes: list[str], own: list[ReceptiveField]
) -> tuple[ReceptiveField, ...] | None:
    if x.fields is None:
        return None
    if x.scope != "spatial":
        return x.fields  # every unit already sees the whole map (global) or positions are lost (flat)
    if len(x.fields) != ndim:
        notes.append(f"input has {len(x.fields)} tracked spatial dims, the layer {ndim}: receptive field dropped")
        return None
    return tuple(compose(f, g) for f, g in zip(x.fields, own))


def _extent(x: _Tensor) -> tuple[int, ...] | None:
    """Spatial sizes the fields of ``x`` refer to (for a spatial tensor: its trailing dims)."""
    if x.scope == "spatial" and x.fields is not None:
        return x.shape[len(x.shape) - len(x.fields):]
    return x.extent


def _reshaped_scope(x: _Tensor, shape: tuple[int, ...], perm: Sequence[int] | None = None) -> str:
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


def _reshape(node: Node, shape: tuple[int, ...], target: Sequence) -> tuple[int, ...]:
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
    node: Node, ins: list[_Tensor], names: list[str], shape: tuple[int, ...], warnings: list[str]
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
    for t, name in zip(ins, names):
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


def analyze_graph(
    graph: Graph,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
    itemsize: int = 4,
    batched: bool | None = None,
    model_name: str = "",
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
    input_ids = graph.input_ids
    if not input_ids:
        raise ValueError("analyze: the graph has no input node")
    shapes = _input_shapes(input_shape, len(input_ids))
    if batched is None:
        batched = _guess_batched(graph, len(shapes[0]))
    tensors: list[_Tensor | None] = [None] * len(graph.nodes)
    rows: list[LayerFacts] = []
    seen_inputs = 0
    for node in graph.nodes:
        if node.kind == "input":
            shape = shapes[seen_inputs]
            seen_inputs += 1
            nd = len(shape) - (2 if batched else 1)
            fields = (IDENTITY,) * nd if nd > 0 else None
            out = _Tensor(shape, fields, "spatial" if nd > 0 else "flat")
            tensors[node.id] = out
            rows.append(_row(node, graph, [], out, 0, 0, 0, 0, 0, 0, [], [], itemsize))
            continue
        ins = [tensors[i] for i in node.inputs]
        if node.observed_input_shapes is not None:  # the dynamic fallback saw the real inputs
            ins = [
                _Tensor(tuple(s), t.fields if tuple(s) == t.shape else None, t.scope if tuple(s) == t.shape else "flat")
                for s, t in zip(node.observed_input_shapes, ins)
            ]
        if node.kind == "reshape" and node.attrs.get("shape") is not None:
            node = _resolve_reshape(node, tensors)
        names = [graph.nodes[i].name for i in node.inputs]
        out, macs, flops, bias_adds, derived, buffers, warnings, notes = _node_facts(node, ins, names, batched)
        if out.scope == "flat" and out.extent is None and out.fields is not None:
            out.extent = _extent(ins[0])
        if node.observed_output_shape is not None and node.kind != "other":
            if tuple(node.observed_output_shape) != out.shape:
                warnings.append(
                    f"the convlab shape rule gives {out.shape}, the model's run gave "
                    f"{tuple(node.observed_output_shape)}"
                )
        tensors[node.id] = out
        params = derived if node.params is None else node.params
        if node.params is not None and derived and derived != node.params + node.frozen_params:
            warnings.append(
                f"the layer holds {node.params + node.frozen_params} parameters, its facts imply {derived}"
            )
        buffers = buffers if node.buffers is None else node.buffers
        rows.append(
            _row(node, graph, ins, out, params or 0, node.frozen_params, buffers or 0, macs, flops, bias_adds,
                 warnings, notes, itemsize)
        )
    return Report(
        rows, [tuple(s) for s in shapes], itemsize=itemsize, batched=batched,
        outputs=graph.output_ids(), notes=list(graph.notes), model_name=model_name,
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
    elements = _prod(out.shape)
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
