"""The convolution playground's computation: one configuration -> what the page draws, all from the engine.

:func:`compute` takes a checked :class:`~convlab.explorer.schemas.ConvRequest` and returns a JSON-ready
dict: the drawn input (its canvas of input, padding and inserted-zero cells, from the animation's scene,
:func:`convlab.viz.animation_scene`, which reads every window from :mod:`convlab.ops.explain`), one frame per
output element (the window's cells), the output computed by :mod:`convlab.functional`, the output size
formula with the numbers substituted (:mod:`convlab.shapes`' explained lengths), the equivalent
``convlab.functional`` and ``torch.nn.functional`` lines, and for a convolution the algorithm ``auto``
runs (:func:`convlab.ops.algorithms.plan`). :func:`explain` writes one output element out as its products
and sum (:mod:`convlab.ops.explain`). Nothing here imports FastAPI.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import functional as F
from ..ops.explain import explain_conv, explain_conv_transpose, explain_pool
from ..shapes import resolve_padding
from ..spec import ConvSpec, PoolSpec
from ..viz import animation_scene

#: Bounds of the playground (the page must stay readable); checked before anything is computed.
MAX_CHANNELS = 4
MAX_SIDE_2D = 32  # input height and width
MAX_LENGTH_1D = 64
MAX_KERNEL_2D = 9
MAX_KERNEL_1D = 16
MAX_FRAMES = 1024  # output elements (one frame each): every one is explained, about 1 ms each


class PlaygroundError(ValueError):
    """A refusal naming the request field (``field``) it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _array(field: str, value: Any, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise PlaygroundError(field, f"`{field}` must be a rectangular nested list of numbers (every row of "
                                     "the same length)") from None
    if a.ndim != ndim:
        raise PlaygroundError(field, f"`{field}` must have {ndim} dimensions, got {a.ndim} (shape {a.shape})")
    if not np.isfinite(a).all():
        raise PlaygroundError(field, f"`{field}` must hold finite numbers")
    return a


def _check_sizes(req: Any, x: np.ndarray, w: np.ndarray | None) -> None:
    nd = req.ndim
    side, kside = (MAX_SIDE_2D, MAX_KERNEL_2D) if nd == 2 else (MAX_LENGTH_1D, MAX_KERNEL_1D)
    if x.shape[0] > MAX_CHANNELS:
        raise PlaygroundError("input", f"`input` has {x.shape[0]} channels, more than the limit of {MAX_CHANNELS}")
    if any(s > side for s in x.shape[1:]) or any(s < 1 for s in x.shape[1:]):
        raise PlaygroundError("input", f"`input` of spatial size {x.shape[1:]} must be 1 to {side} per dimension "
                                       "(the limit keeps the page readable)")
    if w is not None:
        if any(s > MAX_CHANNELS for s in w.shape[:2]) or w.shape[0] < 1:
            raise PlaygroundError("weight", f"`weight` of shape {w.shape} has more than {MAX_CHANNELS} channels "
                                            "(the limit) or none")
        if any(k > kside or k < 1 for k in w.shape[2:]):
            raise PlaygroundError("weight", f"`weight` of kernel size {w.shape[2:]} must be 1 to {kside} per "
                                            "dimension")
    if req.kernel_size is not None:
        ks = req.kernel_size if isinstance(req.kernel_size, list) else [req.kernel_size]
        if any(k > kside for k in ks):
            raise PlaygroundError("kernel_size", f"`kernel_size` (={req.kernel_size}) must be at most {kside}")


def _padding(value: Any) -> Any:
    """The request's padding in the engine's forms: int, per-dim ints, (lo, hi) pairs or a string."""
    if isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def _arguments(req: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The arrays of a request, checked: input ``(C, *S)``, weight (torch's layout) and bias."""
    nd = req.ndim
    x = _array("input", req.input, nd + 1)
    w = None
    b = None
    if req.op in ("conv", "conv_transpose"):
        if req.weight is None:
            raise PlaygroundError("weight", f"`weight` is required for op {req.op!r}")
        w = _array("weight", req.weight, nd + 2)
        if req.bias is not None:
            b = _array("bias", req.bias, 1)
            channels = w.shape[0] if req.op == "conv" else w.shape[1] * req.groups
            if b.shape[0] != channels:
                raise PlaygroundError("bias", f"`bias` has {b.shape[0]} entries; the output has {channels} "
                                              "channels")
    else:
        if req.kernel_size is None:
            raise PlaygroundError("kernel_size", f"`kernel_size` is required for op {req.op!r}")
        for name in ("weight", "bias"):
            if getattr(req, name) is not None:
                raise PlaygroundError(name, f"`{name}` is not taken by pooling (op {req.op!r})")
    _check_sizes(req, x, w)
    return x, w, b


def _engine_field(message: str, default: str) -> str:
    """The request field an engine message names (its first backquoted name that is a field)."""
    import re

    fields = {"input", "weight", "bias", "stride", "padding", "dilation", "groups", "output_padding",
              "padding_mode", "kernel_size", "ceil_mode", "count_include_pad", "flip_kernel"}
    for name in re.findall(r"`(\w+)`", message):
        if name in fields:
            return name
    return default


def _scene(req: Any, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None):
    pool = {"max_pool": "max", "avg_pool": "avg"}.get(req.op)
    if req.op == "avg_pool" and req.dilation not in (1, [1], [1] * req.ndim):
        raise PlaygroundError("dilation", "`dilation` is not taken by average pooling (torch's avg_pool has none)")
    if req.op == "conv_transpose" and req.padding_mode != "zeros":
        raise PlaygroundError("padding_mode", f"`padding_mode` (={req.padding_mode!r}): the playground draws a "
                                              "transposed convolution with 'zeros' only (the explanation writes "
                                              "that mode out)")
    if req.op != "conv" and req.flip_kernel:
        raise PlaygroundError("flip_kernel", "`flip_kernel` applies to convolution only")
    if req.op != "conv_transpose" and req.output_padding not in (0, [0], [0] * req.ndim):
        raise PlaygroundError("output_padding", "`output_padding` applies to a transposed convolution only")
    stride = req.stride if req.stride is not None else (None if pool else 1)
    try:
        return animation_scene(x, w, b, kernel_size=req.kernel_size, stride=stride, padding=_padding(req.padding),
                               dilation=req.dilation, groups=req.groups, padding_mode=req.padding_mode,
                               flip_kernel=req.flip_kernel, transposed=req.op == "conv_transpose",
                               output_padding=req.output_padding, pool=pool, ceil_mode=req.ceil_mode,
                               count_include_pad=req.count_include_pad, labels="values", max_frames=MAX_FRAMES)
    except (ValueError, TypeError) as exc:
        text = str(exc).replace("animate: the animation would have", "the playground would draw")
        raise PlaygroundError(_engine_field(text, "input"), text) from None


def engine_output(req: Any, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """The output ``(C_out, *O)`` by :mod:`convlab.functional` (the engine), float64."""
    nd = req.ndim
    xb = x[None]
    padding = _padding(req.padding)
    if req.op == "conv":
        fn = F.conv1d if nd == 1 else F.conv2d
        y = fn(xb, w, b, req.stride or 1, padding, req.dilation, req.groups, padding_mode=req.padding_mode,
               flip_kernel=req.flip_kernel)
    elif req.op == "conv_transpose":
        fn = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
        y = fn(xb, w, b, req.stride or 1, padding, req.output_padding, req.groups, req.dilation)
    elif req.op == "max_pool":
        fn = F.max_pool1d if nd == 1 else F.max_pool2d
        y = fn(xb, req.kernel_size, req.stride, padding, req.dilation, req.ceil_mode)
    else:
        fn = F.avg_pool1d if nd == 1 else F.avg_pool2d
        y = fn(xb, req.kernel_size, req.stride, padding, req.ceil_mode, req.count_include_pad)
    return y[0]


def checked_output(req: Any, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """:func:`engine_output`, its refusals as :class:`PlaygroundError` naming the field."""
    try:
        return engine_output(req, x, w, b)
    except (ValueError, TypeError) as exc:
        raise PlaygroundError(_engine_field(str(exc), "input"), str(exc)) from None


def _values(a: np.ndarray) -> Any:
    return a.tolist()


def _tuple_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_tuple_text(e) for e in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def code_lines(req: Any, spec: Any, size: tuple[int, ...]) -> dict[str, str]:
    """The equivalent ``convlab.functional`` and ``torch.nn.functional`` calls (``x``: batched input).

    Forms torch's functional does not take (asymmetric pairs, 'same_tf', 'full', 'causal', a padding mode)
    become ``F.pad`` with the resolved ``(lo, hi)`` pairs (torch's order: last dimension first), then an
    unpadded call; a transposed convolution with asymmetric padding crops the unpadded result.
    """
    nd = req.ndim
    padding = _padding(req.padding)
    p = _tuple_text(padding) if not isinstance(padding, str) else repr(padding)
    s = _tuple_text(req.stride) if req.stride is not None else None
    d = _tuple_text(req.dilation)
    name = {"conv": f"conv{nd}d", "conv_transpose": f"conv_transpose{nd}d", "max_pool": f"max_pool{nd}d",
            "avg_pool": f"avg_pool{nd}d"}[req.op]
    bias = "b" if req.bias is not None else "None"
    if req.op == "conv":
        extra = f", padding_mode={req.padding_mode!r}" if req.padding_mode != "zeros" else ""
        extra += ", flip_kernel=True" if req.flip_kernel else ""
        ours = f"convlab.functional.{name}(x, w, {bias}, stride={s or 1}, padding={p}, dilation={d}, " \
               f"groups={req.groups}{extra})"
        pairs = tuple(tuple(int(v) for v in pair) for pair in resolve_padding(spec, size))
        weight = f"w.flip({tuple(range(2, 2 + nd))})" if req.flip_kernel else "w"
        torch_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
        plain = (isinstance(padding, str) and padding in ("valid", "same")) or (
            not isinstance(padding, str) and all(lo == hi for lo, hi in pairs))
        if req.padding_mode == "zeros" and plain:
            tp = repr(padding) if isinstance(padding, str) else _tuple_text(tuple(lo for lo, _ in pairs))
            theirs = f"torch.nn.functional.{name}(x, {weight}, {bias}, stride={s or 1}, padding={tp}, " \
                     f"dilation={d}, groups={req.groups})"
        elif req.padding_mode == "symmetric":
            theirs = "# torch has no 'symmetric' padding mode (mirror with the edge repeated)"
        else:
            flat = tuple(v for pair in reversed(pairs) for v in pair)
            theirs = (f"torch.nn.functional.{name}(torch.nn.functional.pad(x, {flat}, mode="
                      f"{torch_mode[req.padding_mode]!r}), {weight}, {bias}, stride={s or 1}, padding=0, "
                      f"dilation={d}, groups={req.groups})")
    elif req.op == "conv_transpose":
        op = _tuple_text(req.output_padding)
        ours = f"convlab.functional.{name}(x, w, {bias}, stride={s or 1}, padding={p}, output_padding={op}, " \
               f"groups={req.groups}, dilation={d})"
        pairs = spec.padding
        if all(lo == hi for lo, hi in pairs):
            tp = _tuple_text(tuple(int(lo) for lo, _ in pairs))
            top = _tuple_text(tuple(int(v) for v in spec.output_padding))
            theirs = f"torch.nn.functional.{name}(x, w, {bias}, stride={s or 1}, padding={tp}, " \
                     f"output_padding={top}, groups={req.groups}, dilation={d})"
        else:  # unpadded, then crop (lo, hi) per dimension: the padding of a transposed convolution removes
            top = _tuple_text(tuple(int(v) for v in spec.output_padding))
            crop = ", ".join(f"{int(lo)}:{-int(hi) if hi else ''}" for lo, hi in pairs)
            theirs = f"torch.nn.functional.{name}(x, w, {bias}, stride={s or 1}, padding=0, " \
                     f"output_padding={top}, groups={req.groups}, dilation={d})[..., {crop}]"
    elif req.op == "max_pool":
        args = f"x, {_tuple_text(req.kernel_size)}, stride={s}, padding={p}, dilation={d}, ceil_mode={req.ceil_mode}"
        ours = f"convlab.functional.{name}({args})"
        theirs = f"torch.nn.functional.{name}({args})"
    else:
        args = f"x, {_tuple_text(req.kernel_size)}, stride={s}, padding={p}, ceil_mode={req.ceil_mode}, " \
               f"count_include_pad={req.count_include_pad}"
        ours = f"convlab.functional.{name}({args})"
        theirs = f"torch.nn.functional.{name}({args})"
    return {"convlab": ours, "torch": theirs}


def _plan(req: Any, x: np.ndarray, w: np.ndarray | None) -> dict[str, Any] | None:
    """What ``algorithm='auto'`` runs for this convolution (the primitive call the forward makes), and why."""
    from ..ops.algorithms.plan import plan_call
    from ..ops.algorithms.trace import trace

    if req.op not in ("conv", "conv_transpose"):
        return None
    with trace() as events:
        engine_output(req, x, w, None)
    if not events:
        return None
    event = events[0]
    chosen = plan_call(event.call)
    return {"algorithm": event.algorithm, "reason": chosen.reason,
            "estimates": {k: float(v) for k, v in chosen.estimates.items()}, "refused": dict(chosen.refused)}


def compute(req: Any) -> dict[str, Any]:
    """Everything the playground shows for ``req`` (see the module docstring)."""
    x, w, b = _arguments(req)
    y = checked_output(req, x, w, b)  # the engine checks every rule (channels, groups, sizes) first
    scene = _scene(req, x, w, b)
    frames = []
    for i, e in enumerate(scene.explanations):
        window = scene.window(i)
        frames.append({"index": [int(v) for v in e.index[1:]],
                       "cells": {str(c): [[list(cell), role] for cell, role in cells] for c, cells in window.items()}})
    if req.op == "conv_transpose":
        spec = ConvSpec(w.shape[2:], req.stride or 1, _padding(req.padding), req.dilation, req.groups,
                        transposed=True, output_padding=req.output_padding, ndim=req.ndim)
    elif req.op == "conv":
        spec = ConvSpec(w.shape[2:], req.stride or 1, _padding(req.padding), req.dilation, req.groups,
                        req.padding_mode, ndim=req.ndim)
    else:
        spec = PoolSpec(req.kernel_size, req.stride, _padding(req.padding), req.dilation, ndim=req.ndim)
    per_channel = int(np.prod(y.shape[1:]))
    return {
        "op": scene.op,
        "name": scene.name,
        "title": scene.title,
        "input_size": list(scene.input_size),
        "output_size": list(scene.output_size),
        "in_channels": scene.in_channels,
        "out_channels": scene.out_channels,
        "canvas_shape": list(scene.canvas_shape),
        "origin": list(scene.origin),
        "kinds": scene.kinds.tolist(),
        "input_labels": [grid.tolist() for grid in scene.input_labels],
        "weight": None if w is None else _values(w),
        "output": _values(y),
        # the scene's labels of the explained outputs, per channel (the values are the engine's, above)
        "output_labels": [scene.output_labels[c * per_channel:(c + 1) * per_channel] for c in range(y.shape[0])],
        "frames": frames,
        "formula": list(scene.lines),
        "code": code_lines(req, spec, tuple(x.shape[1:])),
        "plan": _plan(req, x, w),
    }


def explain(req: Any) -> dict[str, Any]:
    """Output element ``req.position`` (``[channel, *index]``) as its products and sum (convlab.ops.explain)."""
    position = list(req.position)
    x, w, b = _arguments(req)
    nd = req.ndim
    if len(position) != nd + 1:
        raise PlaygroundError("position", f"`position` (={position}) must be [channel, {', '.join(['i'] * nd)}]")
    checked_output(req, x, w, b)
    xb = x[None]
    padding = _padding(req.padding)
    where = (0, *position)
    try:
        if req.op == "conv":
            e = explain_conv(xb, w, b, req.stride or 1, padding, req.dilation, req.groups, position=where,
                             padding_mode=req.padding_mode, flip_kernel=req.flip_kernel)
        elif req.op == "conv_transpose":
            e = explain_conv_transpose(xb, w, b, req.stride or 1, padding, req.output_padding, req.groups,
                                       req.dilation, position=where)
        else:
            e = explain_pool(xb, req.kernel_size, req.stride, padding, req.dilation, position=where,
                             mode=req.op.split("_")[0], ceil_mode=req.ceil_mode,
                             count_include_pad=req.count_include_pad, ndim=nd)
    except (ValueError, TypeError) as exc:
        raise PlaygroundError(_engine_field(str(exc), "position"), str(exc)) from None
    taps = [{"channel": t.channel, "kernel_index": list(t.kernel_index),
             "input_position": None if t.input_position is None else list(t.input_position),
             "is_padding": bool(t.is_padding), "value": float(t.value),
             "weight": None if t.weight is None else float(t.weight),
             "weight_index": None if t.weight_index is None else list(t.weight_index),
             "product": None if t.product is None else float(t.product)} for t in e.taps]
    text = str(dataclasses.replace(e, index=e.index[1:]))
    return {"op": e.op, "position": [int(v) for v in e.index[1:]], "taps": taps,
            "sum": float(e.total) if e.op in ("conv", "conv_transpose") else None,
            "bias": None if e.bias is None else float(e.bias), "divisor": e.divisor, "chosen": e.chosen,
            "result": float(e.result), "text": text}
