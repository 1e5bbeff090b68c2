"""Explain one output element: which inputs it reads, which weights they meet, the products and the sum.

The result is a data structure (:class:`OutputExplanation`, a list of
:class:`Tap`) that pictures and the explorer draw; ``str()`` of it is the
arithmetic written out::

    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> print(explain_conv(x, w, position=(0, 0)))
    y[0, 0, 0, 0] = x[0,0,0]*w[0,0,0,0] + x[0,0,1]*w[0,0,0,1] + x[0,1,0]*w[0,0,1,0] + x[0,1,1]*w[0,0,1,1]
                  = 0*0 + 1*1 + 3*2 + 4*3
                  = 19

Padding is shown as what it is: a tap that falls in the padding reads the
constant (zeros mode) or the input element the padding mode copies (reflect,
replicate, circular, symmetric), and is marked ``is_padding``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..shapes import conv_output_shape, conv_transpose_output_shape, pool_output_shape, resolve_padding
from ..spec import ConvSpec, PoolSpec, as_bool
from ._checks import as_array, split_batch
from .padding import source_index

__all__ = ["OutputExplanation", "Tap", "explain_conv", "explain_conv_transpose", "explain_pool"]


@dataclass(frozen=True)
class Tap:
    """One input element read by the output element being explained."""

    channel: int  # input channel
    kernel_index: tuple[int, ...]  # position inside the kernel or pooling window
    padded_position: tuple[int, ...]  # position in the padded (or dilated) input
    input_position: tuple[int, ...] | None  # the input element read; None for a padding constant
    is_padding: bool
    value: object  # the value read
    weight: object = None  # the weight it meets (None for pooling)
    weight_index: tuple[int, ...] | None = None  # its index in the weight array

    @property
    def product(self) -> object:
        return None if self.weight is None else self.value * self.weight


@dataclass(frozen=True)
class OutputExplanation:
    """How one output element is computed."""

    op: str  # 'conv', 'conv_transpose', 'max_pool' or 'avg_pool'
    index: tuple[int, ...]  # (n, c, *position) in the output
    taps: list[Tap]
    result: object  # the output value
    bias: object = None
    divisor: int | None = None  # avg_pool
    chosen: int | None = None  # max_pool: index into taps of the maximum
    notes: list[str] = field(default_factory=list)
    # Window positions that read nothing (pictures draw the whole window): max pooling's padding (-inf), a
    # transposed convolution's inserted zeros and padding; padded_position in the taps' coordinates.
    skipped: list[Tap] = field(default_factory=list)

    @property
    def total(self) -> object:
        """The sum of the products (conv) before the bias."""
        return sum((t.product for t in self.taps), start=0)

    def __str__(self) -> str:
        head = f"y[{', '.join(map(str, self.index))}] = "
        pad = " " * (len(head) - 2) + "= "

        def name(t: Tap) -> str:
            where = t.input_position if t.input_position is not None else t.padded_position
            label = "x" if t.input_position is not None else "pad"
            return f"{label}[{t.channel},{','.join(map(str, where))}]"

        def num(v: object) -> str:
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                return str(int(v))
            return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)

        if self.op in ("conv", "conv_transpose"):
            terms = [f"{name(t)}*w[{','.join(map(str, t.weight_index))}]" for t in self.taps]
            nums = [f"{num(t.value)}*{num(t.weight)}" for t in self.taps]
            if self.bias is not None:
                terms.append("b")
                nums.append(num(self.bias))
            lines = [head + (" + ".join(terms) or "0"), pad + (" + ".join(nums) or "0"), pad + num(self.result)]
        elif self.op == "max_pool":
            lines = [head + "max(" + ", ".join(name(t) for t in self.taps) + ")",
                     pad + "max(" + ", ".join(num(t.value) for t in self.taps) + ")",
                     pad + num(self.result)]
        else:
            lines = [head + "(" + " + ".join(name(t) for t in self.taps) + f") / {self.divisor}",
                     pad + "(" + " + ".join(num(t.value) for t in self.taps) + f") / {self.divisor}",
                     pad + num(self.result)]
        return "\n".join(lines + self.notes)


def _output_index(fn: str, position: Sequence[int], out_shape: tuple[int, ...], unbatched: bool) -> tuple[int, ...]:
    pos = tuple(int(p) for p in position)
    nd = len(out_shape) - 2
    if len(pos) == nd:
        pos = (0, 0) + pos
    elif unbatched and len(pos) == nd + 1:
        pos = (0,) + pos
    if len(pos) != nd + 2:
        raise ValueError(f"{fn}: `position` (={tuple(position)}) must have {nd} spatial entries, or include "
                         f"the channel (and batch) index")
    for axis, (p, size) in enumerate(zip(pos, out_shape, strict=True)):
        if not 0 <= p < size:
            raise ValueError(f"{fn}: `position` (={tuple(position)}) is outside the output of shape "
                             f"{out_shape[1:] if unbatched else out_shape} (axis {axis} has size {size})")
    return pos


def explain_conv(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                 dilation=1, groups: int = 1, *, position: Sequence[int], padding_mode: str = "zeros",
                 flip_kernel: bool = False) -> OutputExplanation:
    """Explain output ``position`` of :func:`convlab.ops.conv` (spatial index, or ``(n, c, *spatial)``)."""
    fn = "explain_conv"
    flip_kernel = as_bool(fn, "flip_kernel", flip_kernel)
    x, unbatched = split_batch(fn, "input", as_array(fn, "input", input), np.ndim(weight) - 2)
    w = as_array(fn, "weight", weight)
    nd = w.ndim - 2
    spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, ndim=nd, name=fn)
    pads = resolve_padding(spec, x.shape[2:])
    out_size = tuple(int(o) for o in conv_output_shape(spec, x.shape[2:]))
    n, c_out, *p = _output_index(fn, position, (x.shape[0], w.shape[0]) + out_size, unbatched)
    kernel = spec.kernel_size
    if flip_kernel:
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
    maps = [source_index(fn, mode, s, lo, hi, i) for i, (s, (lo, hi)) in enumerate(zip(x.shape[2:], pads, strict=True))]
    cg, og = w.shape[1], w.shape[0] // spec.groups
    group = c_out // og
    taps = []
    for c in range(cg):
        for k in itertools.product(*(range(kk) for kk in spec.kernel_size)):
            q = tuple(pi * s + ki * d for pi, s, ki, d in zip(p, spec.stride, k, spec.dilation, strict=True))
            src = tuple(int(m[qi]) for m, qi in zip(maps, q, strict=True))
            inside = all(si >= 0 for si in src)
            at_edge = any(qi < lo or qi >= lo + s for qi, (lo, _), s in zip(q, pads, x.shape[2:], strict=True))
            value = x[(n, group * cg + c) + src] if inside else x.dtype.type(0)
            # With flip_kernel the tap meets the user's weight at the mirrored index.
            k_user = tuple(kk - 1 - ki for kk, ki in zip(kernel, k, strict=True)) if flip_kernel else k
            taps.append(Tap(group * cg + c, k, q, src if inside else None, at_edge, value, w[(c_out, c) + k],
                            (c_out, c) + k_user))
    total = sum((t.product for t in taps), start=x.dtype.type(0))
    b = None if bias is None else np.asarray(bias)[c_out]
    result = total + b if b is not None else total
    return OutputExplanation("conv", (n, c_out, *p), taps, result, b)


def explain_conv_transpose(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
                           padding=0, output_padding=0, groups: int = 1, dilation=1, *,
                           position: Sequence[int]) -> OutputExplanation:
    """Explain output ``position`` of :func:`convlab.ops.conv_transpose`.

    Output ``q`` receives ``x[i] * w[k]`` for every input ``i`` and tap ``k``
    with ``i*stride + k*dilation - pad_lo == q`` (the scatter view of the
    transposed convolution).
    """
    fn = "explain_conv_transpose"
    x, unbatched = split_batch(fn, "input", as_array(fn, "input", input), np.ndim(weight) - 2)
    w = as_array(fn, "weight", weight)
    nd = w.ndim - 2
    spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, transposed=True, output_padding=output_padding,
                    ndim=nd, name=fn)
    out_size = tuple(int(o) for o in conv_transpose_output_shape(spec, x.shape[2:]))
    og = w.shape[1]
    n, c_out, *q = _output_index(fn, position, (x.shape[0], og * spec.groups) + out_size, unbatched)
    group, o = divmod(c_out, og)
    cg = w.shape[0] // spec.groups
    taps, skipped = [], []
    for c in range(group * cg, (group + 1) * cg):
        for k in itertools.product(*(range(kk) for kk in spec.kernel_size)):
            num = [qi + lo - ki * d for qi, (lo, _), ki, d in zip(q, spec.padding, k, spec.dilation, strict=True)]
            i = tuple(v // s for v, s in zip(num, spec.stride, strict=True))
            if not any(v % s for v, s in zip(num, spec.stride, strict=True)) and all(
                    0 <= ii < size for ii, size in zip(i, x.shape[2:], strict=True)):
                taps.append(Tap(c, k, tuple(num), i, False, x[(n, c) + i], w[(c, o) + k], (c, o) + k))
            else:  # an inserted zero (num not a multiple of the stride) or outside the input
                skipped.append(Tap(c, k, tuple(num), None, True, x.dtype.type(0), w[(c, o) + k], (c, o) + k))
    total = sum((t.product for t in taps), start=x.dtype.type(0))
    b = None if bias is None else np.asarray(bias)[c_out]
    return OutputExplanation("conv_transpose", (n, c_out, *q), taps, total + b if b is not None else total, b,
                             skipped=skipped)


def explain_pool(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, *, position: Sequence[int],
                 mode: str = "max", ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None, ndim: int | None = None) -> OutputExplanation:
    """Explain output ``position`` of max or average pooling (``mode='max'`` or ``'avg'``).

    Max pooling never picks the padding (it is -inf); average pooling divides
    by the window's size within the padded input (``count_include_pad``), by
    the number of real input elements, or by ``divisor_override``. The number
    of spatial dimensions is ``len(kernel_size)``, or ``ndim``, or else the
    input is taken as batched.
    """
    fn = "explain_pool"
    if mode not in ("max", "avg"):
        raise ValueError(f"{fn}: `mode` (={mode!r}) must be 'max' or 'avg'")
    x = as_array(fn, "input", input)
    if isinstance(kernel_size, (tuple, list)):
        nd = len(kernel_size)
    else:
        nd = ndim if ndim is not None else x.ndim - 2
    x, unbatched = split_batch(fn, "input", x, nd)
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
                    ndim=nd, name=fn)
    out_size = tuple(int(o) for o in pool_output_shape(spec, x.shape[2:]))
    n, c, *p = _output_index(fn, position, x.shape[:2] + out_size, unbatched)
    taps, skipped = [], []
    for k in itertools.product(*(range(kk) for kk in spec.kernel_size)):
        q = tuple(pi * s + ki * d for pi, s, ki, d in zip(p, spec.stride, k, spec.dilation, strict=True))
        src = tuple(qi - lo for qi, (lo, _) in zip(q, spec.padding, strict=True))
        inside = all(0 <= si < size for si, size in zip(src, x.shape[2:], strict=True))
        in_padded = all(0 <= qi < size + lo + hi for qi, size, (lo, hi) in zip(q, x.shape[2:], spec.padding,
                                                                               strict=True))
        if mode == "max":
            if inside:
                taps.append(Tap(c, k, q, src, False, x[(n, c) + src]))
            else:  # the padding is -inf for max pooling
                skipped.append(Tap(c, k, q, None, True, -np.inf))
        elif inside or in_padded:
            taps.append(Tap(c, k, q, src if inside else None, not inside, x[(n, c) + src] if inside else 0))
        else:  # ceil_mode: the window reaches past the padded input
            skipped.append(Tap(c, k, q, None, True, 0))
    if mode == "max":
        # PyTorch's rule: a later element wins if it is larger or NaN (so the first of equal maxima).
        chosen, best = 0, None
        for i, t in enumerate(taps):
            if best is None or t.value > best or np.isnan(t.value):
                chosen, best = i, t.value
        return OutputExplanation("max_pool", (n, c, *p), taps, best, chosen=chosen, skipped=skipped)
    if spec.divisor_override is not None:
        divisor = spec.divisor_override
    elif spec.count_include_pad:
        divisor = len(taps)
    else:
        divisor = sum(1 for t in taps if not t.is_padding)
    total = sum((t.value for t in taps), start=0)
    return OutputExplanation("avg_pool", (n, c, *p), taps, total / divisor, divisor=divisor, skipped=skipped)
