"""What convolution and transposed convolution share: argument checks, preparation, the raw relations.

The derivations of the relations are in :mod:`convlab.ops.conv`'s docstring.
Every name here is internal to :mod:`convlab.ops.conv` and
:mod:`convlab.ops.conv_transpose`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..shapes import (
    conv_output_shape,
    conv_transpose_output_shape,
    output_padding_for_size,
    resolve_padding,
    transpose_padding,
)
from ..spec import ConvSpec
from ._checks import as_array, check_budget, check_same_dtype, compute_dtype, result_dtype, split_batch
from .algorithms import Call, Primitive, depthwise, fft, gemm, im2col, winograd
from .padding import check_pad_limits

Pairs = tuple[tuple[int, int], ...]


class ConvGrads(NamedTuple):
    """Gradients of a (transposed) convolution.

    ``bias`` is None when there is no bias; any field is None when ``wrt`` did not ask for it.
    """

    input: np.ndarray | None
    weight: np.ndarray | None
    bias: np.ndarray | None


# --------------------------------------------------------------------------- checks


class Prepared(NamedTuple):
    x: np.ndarray  # batched (N, C, *S), original dtype
    w: np.ndarray
    b: np.ndarray | None
    unbatched: bool
    dtype: np.dtype
    spec: ConvSpec
    pads: Pairs
    out_size: tuple[int, ...]


def ndim_from_weight(fn: str, w: np.ndarray, ndim: int | None) -> int:
    if ndim is None:
        if w.ndim < 3:
            raise ValueError(
                f"{fn}: `weight` must have at least 3 dimensions (C_out, C_in/groups, *kernel), got shape {w.shape}"
            )
        return w.ndim - 2
    if w.ndim != ndim + 2:
        layout = "C_in, C_out/groups" if "transpose" in fn else "C_out, C_in/groups"
        raise ValueError(
            f"{fn}: `weight` must have {ndim + 2} dimensions ({layout}, *kernel), "
            f"got shape {w.shape}"
        )
    return ndim


def check_kernel(fn: str, w: np.ndarray) -> None:
    if any(k == 0 for k in w.shape[2:]):
        raise ValueError(f"{fn}: `weight` has an empty kernel: shape {w.shape} (every kernel size must be >= 1)")


def check_bias(fn: str, b: np.ndarray | None, c_out: int) -> None:
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{fn}: `bias` must have shape ({c_out},), one value per output channel, got {b.shape}")


def check_im2col(fn: str, spec: ConvSpec, c_in: int, positions: int, itemsize: int) -> None:
    # im2col works on blocks of samples and groups; one group of one sample must fit:
    # (positions, C_in/groups * prod(kernel)).
    check_budget(fn, "im2col buffer of one sample and group",
                 (positions, c_in // spec.groups * math.prod(spec.kernel_size)), itemsize)


def check_channels(fn: str, x: np.ndarray, xb: np.ndarray, unbatched: bool, w: np.ndarray, expected: int,
                    what: str) -> None:
    c_in = xb.shape[1]
    if c_in == expected:
        return
    read = f" (input shape {x.shape}, read as unbatched (C, *spatial))" if unbatched else ""
    raise ValueError(
        f"{fn}: the input has {c_in} channel{'s' if c_in != 1 else ''}{read}, but `weight` of shape {w.shape} "
        f"expects {what} = {expected}"
    )


def split_input(fn: str, x: np.ndarray, w: np.ndarray, nd: int, ndim: int | None) -> tuple[np.ndarray, bool]:
    if ndim is None and x.ndim not in (nd + 1, nd + 2):
        # The generic N-d op takes the number of spatial dims from the weight: say so.
        raise ValueError(
            f"{fn}: `input` of shape {x.shape} has {x.ndim} dimensions, but `weight` of shape {w.shape} means "
            f"{nd} spatial dimension{'s' if nd != 1 else ''}, so the input must have {nd + 2} (N, C, *spatial) "
            f"or {nd + 1} (C, *spatial)"
        )
    return split_batch(fn, "input", x, nd)


def arrays(fn: str, input, weight, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = as_array(fn, "input", input)
    w = as_array(fn, "weight", weight)
    b = None if bias is None else as_array(fn, "bias", bias)
    return x, w, b


def spec_of(fn: str, ndim: int | None, x: np.ndarray, weight: np.ndarray, **hyper) -> ConvSpec:
    """The call's spec, built once from the loose arguments (the kernel is the weight's).

    The ranks of the input and the weight are checked first: a wrong rank explains a wrong
    number of stride entries better than the stride's own message would.
    """
    nd = ndim_from_weight(fn, weight, ndim)
    split_input(fn, x, weight, nd, ndim)
    check_kernel(fn, weight)
    return ConvSpec(weight.shape[2:], ndim=nd, name=fn, **hyper)


def check_spec(fn: str, spec: object, w: np.ndarray, transposed: bool) -> ConvSpec:
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"{fn}: `spec` must be a convlab.spec.ConvSpec, got {type(spec).__name__}")
    if spec.transposed != transposed:
        kind = "a transposed" if spec.transposed else "a (non-transposed)"
        raise ValueError(f"{fn}: `spec` describes {kind} convolution ({spec!r})")
    ndim_from_weight(fn, w, spec.ndim)
    check_kernel(fn, w)
    if w.shape[2:] != spec.kernel_size:
        raise ValueError(f"{fn}: `weight` of shape {w.shape} has kernel {w.shape[2:]}, but the spec says "
                         f"kernel_size={spec.kernel_size}")
    return spec


def prepare_conv(fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec) -> Prepared:
    nd = spec.ndim
    xb, unbatched = split_input(fn, x, w, nd, nd)
    dtype = check_same_dtype(fn, input=x, weight=w, bias=b)
    c_in, c_out = xb.shape[1], w.shape[0]
    if c_in % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the input channels (={c_in})")
    if c_out % spec.groups:
        raise ValueError(
            f"{fn}: `groups` (={spec.groups}) must divide the output channels (weight.shape[0]={c_out})"
        )
    check_channels(fn, x, xb, unbatched, w, w.shape[1] * spec.groups,
                    f"weight.shape[1] * groups (={spec.groups})")
    check_bias(fn, b, c_out)
    spatial = xb.shape[2:]
    pads = resolve_padding(spec, spatial)
    out_size = conv_output_shape(spec, spatial)
    if spec.padding_mode != "zeros":
        for i, (size, (lo, hi)) in enumerate(zip(spatial, pads, strict=True)):
            check_pad_limits(fn, spec.padding_mode, size, lo, hi, i)
    itemsize = compute_dtype(dtype).itemsize
    check_budget(fn, "output", (xb.shape[0], c_out) + tuple(out_size), itemsize)
    check_budget(fn, "padded input", (xb.shape[0], c_in) + tuple(s + lo + hi for s, (lo, hi) in
                                                                 zip(spatial, pads, strict=True)), itemsize)
    check_im2col(fn, spec, c_in, math.prod(out_size), itemsize)
    return Prepared(xb, w, b, unbatched, dtype, spec, pads, tuple(int(o) for o in out_size))


def prepare_transpose(fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec,
                       output_size) -> Prepared:
    nd = spec.ndim
    xb, unbatched = split_input(fn, x, w, nd, nd)
    dtype = check_same_dtype(fn, input=x, weight=w, bias=b)
    c_in = xb.shape[1]
    if c_in % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the input channels (={c_in})")
    check_channels(fn, x, xb, unbatched, w, w.shape[0],
                    "weight.shape[0] (transposed weights are (C_in, C_out/groups, *kernel))")
    c_out = w.shape[1] * spec.groups
    check_bias(fn, b, c_out)
    spatial = xb.shape[2:]
    if output_size is not None and spec.same_output:
        # padding='same' has one output size, I*s; output_size may only restate it.
        wanted = tuple(output_size)[-nd:] if len(tuple(output_size)) in (nd, nd + 2) else tuple(output_size)
        same = tuple(n * s for n, s in zip(spatial, spec.stride, strict=True))
        if tuple(int(v) for v in wanted) != same:
            raise ValueError(f"{fn}: `output_size` (={tuple(output_size)}) must be input size * stride (={same}) "
                             "with padding='same'")
    elif output_size is not None:
        if any(spec.output_padding):
            raise ValueError(f"{fn}: give either `output_size` or `output_padding` (={spec.output_padding}), not both")
        sizes = output_size  # output_padding_for_size checks its types and range
        spec = spec.with_output_padding(output_padding_for_size(spec, spatial, sizes))
    out_size = conv_transpose_output_shape(spec, spatial)
    if spec.padding_mode != "zeros":
        # The output is the unpadded input of the convolution this is the adjoint of: the mode must be able
        # to pad it by (lo, hi).
        for i, (size, (lo, hi)) in enumerate(zip(out_size, spec.padding, strict=True)):
            check_pad_limits(fn, spec.padding_mode, int(size), lo, hi, i)
    itemsize = compute_dtype(dtype).itemsize
    check_budget(fn, "output", (xb.shape[0], c_out) + tuple(out_size), itemsize)
    if spec.padding_mode != "zeros":
        check_budget(fn, "padded output", (xb.shape[0], c_out) + tuple(
            o + lo + hi for o, (lo, hi) in zip(out_size, spec.padding, strict=True)), itemsize)
    # The primitive sees the input dilated by the stride and padded by about d*(k-1) per side.
    dilated = tuple((s - 1) * st + 1 + 2 * d * (k - 1)
                    for s, st, d, k in zip(spatial, spec.stride, spec.dilation, spec.kernel_size, strict=True))
    check_budget(fn, "dilated input", (xb.shape[0], c_in) + dilated, itemsize)
    check_budget(fn, "im2col buffer of one sample",
                 (math.prod(out_size), c_in // spec.groups * math.prod(spec.kernel_size)), itemsize)
    return Prepared(xb, w, b, unbatched, dtype, spec, spec.padding, tuple(int(o) for o in out_size))


def finish(y: np.ndarray, p: Prepared) -> np.ndarray:
    if p.b is not None:
        y += p.b.astype(y.dtype).reshape((1, -1) + (1,) * p.spec.ndim)
    y = y.astype(result_dtype(p.dtype), copy=False)
    return y[0] if p.unbatched else y


def mode_fold(padding_mode: str, pads: Pairs) -> int:
    """At most how many padded positions fold onto one element under a padding mode's adjoint (1 for zeros).

    Reflect, replicate, circular and symmetric padding copy input elements; their adjoint
    adds the copies back, at most ``1 + lo + hi`` per dimension.
    """
    if padding_mode == "zeros":
        return 1
    return math.prod(1 + lo + hi for lo, hi in pads)


def flip(w: np.ndarray) -> np.ndarray:
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def check_grad_output(fn: str, g: np.ndarray, p: Prepared, c_out: int) -> np.ndarray:
    expected = (p.x.shape[0], c_out) + p.out_size
    gb = g[None] if p.unbatched and g.ndim == len(expected) - 1 else g
    if gb.shape != expected:
        shown = expected[1:] if p.unbatched else expected
        raise ValueError(f"{fn}: `grad_output` must have the output's shape {shown}, got {g.shape}")
    if g.dtype != p.dtype:
        raise TypeError(f"{fn}: `grad_output` has dtype {g.dtype}, but the input has {p.dtype}")
    return gb


WRT = ("input", "weight", "bias")


def check_wrt(fn: str, wrt) -> frozenset[str]:
    """The gradients asked for: a name or a sequence of names among 'input', 'weight', 'bias'."""
    names = (wrt,) if isinstance(wrt, str) else wrt
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"{fn}: `wrt` must be one of {WRT} or a sequence of them, got {wrt!r}") from None
    bad = [n for n in names if n not in WRT]
    if bad or not names:
        raise ValueError(f"{fn}: `wrt` (={wrt!r}) must name one or more of {WRT}")
    return frozenset(names)


# --------------------------------------------------------------------------- raw relations


def transpose_raw(x, w, stride, pads: Pairs, dilation, groups, output_padding, algorithm: Primitive,
                   role: str) -> np.ndarray:
    """Transposed convolution of batched ``x`` (N, C_in, *I) with ``w`` (C_in, C_out/g, *K).

    The adjoint of the convolution (see the module docstring): dilate by the
    stride, pad ``d*(k-1) - lo`` and ``d*(k-1) - hi + output_padding`` (negative
    amounts crop), flip the kernel, swap its channel axes per group, correlate
    at stride 1.
    """
    nd = len(stride)
    c_in, og = w.shape[:2]
    kernel = w.shape[2:]
    cg = c_in // groups
    # (C_in, C_out/g, *K) -> (g, C_in/g, C_out/g, *K) -> (g, C_out/g, C_in/g, *K) -> (C_out, C_in/g, *K)
    wt = w.reshape((groups, cg, og) + kernel).swapaxes(1, 2).reshape((groups * og, cg) + kernel)
    wt = flip(wt)  # (C_out, C_in/g, *K), flipped
    pairs = transpose_padding(kernel, dilation, pads, output_padding)
    return algorithm(x, wt, (1,) * nd, pairs, dilation, stride, groups, role=role)


#: Input channels per group from which the weight gradient is computed by im2col + GEMM directly. RGB
#: stems included: measured 1.45-1.55x faster than the correlation (ResNet-18 7x7/2, VGG 3x3 and AlexNet
#: 11x11/4 first layers at 224, batch 8, one thread, Intel Xeon); one or two channels keep the correlation.
DIRECT_WEIGHT_GRAD_CHANNELS = 3


def weight_grad_raw(xp, gy, stride, dilation, groups, kernel, algorithm: Primitive) -> np.ndarray:
    """``gw[o, c, *k] = sum_{n, p} gy[n, o, *p] * xp[n, g*Cg + c, *(p*stride + k*dilation)]``.

    A correlation of the padded input with the output gradient as the kernel:
    stride and dilation swap roles, and the batch axis becomes the channel axis.
    With ``auto`` or ``gemm`` and at least :data:`DIRECT_WEIGHT_GRAD_CHANNELS`
    input channels per group, the gradient is computed directly as im2col + GEMM
    instead (:func:`convlab.ops.algorithms.gemm.weight_grad`: no transposed copies
    of the input and the output gradient, a 1x1 kernel as one batched product on
    the NCHW arrays; measured 1.2-5x faster on ResNet and VGG layers). Depthwise
    and few-channel calls keep the correlation, where FFT and depthwise apply.
    """
    n, c_in = xp.shape[:2]
    c_out = gy.shape[1]
    nd = len(kernel)
    cg, og = c_in // groups, c_out // groups
    sp, out = xp.shape[2:], gy.shape[2:]
    # The correlation this computes, as the trace describes it: input (C_in/g, g*N, *S), kernel
    # (g*C_out/g, N, *O), stride and dilation swapped.
    call = Call((cg, groups * n) + sp, (c_out, n) + out, tuple(dilation), ((0, 0),) * nd, tuple(stride),
                (1,) * nd, groups, np.result_type(xp, gy))
    # Winograd (stride-1 3x3, compiled) where named, or where auto estimates it faster than the direct GEMM
    tile = winograd.weight_grad_tile(call, algorithm.name, xp, gy, direct=cg >= DIRECT_WEIGHT_GRAD_CHANNELS)
    if tile is not None:
        return algorithm.run_named(f"winograd_f{tile}", call, "weight_grad",
                                   lambda: winograd.weight_grad(xp, gy, groups, tile))
    if cg >= DIRECT_WEIGHT_GRAD_CHANNELS and algorithm.name in ("auto", "tune", "gemm"):
        if algorithm.direct_weight_grad(call):  # unless tuning measured another algorithm faster on it
            return algorithm.run_named("gemm", call, "weight_grad",
                                       lambda: gemm.weight_grad(xp, gy, kernel, stride, dilation, groups))
    sp_axes = tuple(range(3, 3 + nd))
    # The sum over the batch is split into blocks so the window matrix (prod(K) x block*prod(O) per
    # channel) stays small; each block's contribution is itself such a correlation.
    block = max(1, im2col.CHUNK_BYTES // max(math.prod(kernel) * math.prod(out) * xp.dtype.itemsize, 1))
    total = None
    for start in range(0, max(n, 1), block):
        xs, gs = xp[start:start + block], gy[start:start + block]
        m = xs.shape[0]
        # (m, C_in, *S) -> (m, g, C_in/g, *S) -> (C_in/g, g, m, *S) -> (C_in/g, g*m, *S): batch as channels
        xt = xs.reshape((m, groups, cg) + sp).transpose((2, 1, 0) + sp_axes).reshape((cg, groups * m) + sp)
        # (m, C_out, *O) -> (m, g, C_out/g, *O) -> (g, C_out/g, m, *O) -> (C_out, m, *O): the kernel
        wt = gs.reshape((m, groups, og) + out).transpose((1, 2, 0) + sp_axes).reshape((groups * og, m) + out)
        r = algorithm(xt, wt, tuple(dilation), ((0, 0),) * nd, tuple(stride), (1,) * nd, groups,
                      role="weight_grad")  # (C_in/g, C_out, *K')
        r = r[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)]
        total = r if total is None else total + r
    return np.ascontiguousarray(total.swapaxes(0, 1))  # (C_out, Cg, *K)


#: The algorithm names under which a depthwise layer's weight gradient may be read from the input and the output
#: gradient where they are (:func:`depthwise_weight_grad`).
DEPTHWISE_WEIGHT_GRAD = ("depthwise", "depthwise_numpy")


def _in_place_wins(call: Call, chosen: str, x, gy) -> bool:
    """Whether depthwise, read in place, beats ``chosen`` once ``chosen`` pays the copies of its route.

    The planner prices the correlation ``call`` alone, but any algorithm other than depthwise gets it
    through :func:`weight_grad_raw`: the zero-padded input, then transposed copies of it and of the
    output gradient (samples as channels), each read and written once; depthwise reads the arrays where
    they are. Times are the measured ones where tuning timed both, else the estimates.
    """
    from .algorithms._costs import stream
    from .algorithms.plan import plan_call
    from .algorithms.tune import lookup

    padded = call.batch * call.c_in * math.prod(call.size) * x.dtype.itemsize  # the padded input: (1, G*N, *S_padded)
    moved = (x.nbytes + padded) + 2 * padded + 2 * gy.nbytes  # pad (read x, write), transpose both (read, write)
    tuned = lookup(call, "weight_grad")
    seconds = tuned.seconds if tuned is not None else plan_call(call, role="weight_grad").estimates
    if "depthwise" not in seconds or chosen not in seconds:
        return False
    return seconds["depthwise"] <= seconds[chosen] + stream(moved)


def depthwise_weight_grad(x, gy, pads: Pairs, stride, dilation, groups, kernel, algorithm: Primitive):
    """The weight gradient of a depthwise layer (``groups == C_in``, zero padding) without padded or transposed
    copies (:func:`convlab.ops.algorithms.depthwise.weight_grad`), or None where another algorithm computes it.

    It runs where the algorithm is ``depthwise`` or ``depthwise_numpy``, or where the planner picks
    ``depthwise`` for the correlation :func:`weight_grad_raw` would compute (the call traced: the same
    sum, read in place), or picks another algorithm that is no faster once the copies of that route
    are counted (:func:`_in_place_wins`). Where the algorithm is ``fft``, or the planner picks it for finite
    data, :func:`convlab.ops.algorithms.fft.depthwise_weight_grad` computes it a block of channels at a time.
    """
    n, c_in = x.shape[:2]
    if groups != c_in or c_in == 0 or n == 0:
        return None
    nd = len(kernel)
    c_out, out = gy.shape[1], gy.shape[2:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads, strict=True))
    call = Call((1, groups * n) + padded, (c_out, n) + tuple(out), tuple(dilation), ((0, 0),) * nd, tuple(stride),
                (1,) * nd, groups, np.result_type(x, gy))
    if algorithm.name in DEPTHWISE_WEIGHT_GRAD or (algorithm.name == "fft" and fft.unsupported(call) is None):
        name = algorithm.name
    elif algorithm.name in ("auto", "tune"):
        name = algorithm.select(call, role="weight_grad")[0]
        if name == "fft" and not (_finite_sum(x) and _finite_sum(gy)):
            name = "depthwise"  # the FFT would spread a NaN or an inf over whole planes; depthwise is exact
        elif name not in ("depthwise", "fft") and not _in_place_wins(call, name, x, gy):
            return None
        elif name != "fft":
            name = "depthwise"
    else:
        return None
    if name == "fft":
        return algorithm.run_named(name, call, "weight_grad", lambda: fft.depthwise_weight_grad(
            x, gy, pads, stride, dilation, kernel))
    return algorithm.run_named(name, call, "weight_grad", lambda: depthwise.weight_grad(
        x, gy, pads, stride, dilation, kernel, compiled=name == "depthwise"))


def _finite_sum(a: np.ndarray) -> bool:
    """False where ``a`` holds NaN or inf (also where its sum overflows: then only a slower exact path runs);
    no temporary array."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(a, dtype=np.float64)))

