"""Depthwise convolution by direct tap accumulation over shifted views (``groups == C_in``).

In a depthwise convolution every output channel reads one input channel, so
there is no channel sum to hand to a GEMM: im2col would copy ``prod(K)`` times
the input to then do a matrix-*vector* product per channel. Here each kernel
tap is instead one multiply-add of a shifted (strided) view of the padded input
into an accumulator (Chollet, "Xception", arXiv:1610.02357, for the layer;
the loop is the tutorials' ``corr2d`` turned inside out, one tap at a time)::

    acc  = x_pad[..., k0*d : k0*d + (O-1)*s + 1 : s] * w[:, k0]
    acc += x_pad[..., k*d  : k*d  + (O-1)*s + 1 : s] * w[:, k]     for every other tap k

``np.multiply(view, w_k, out=tmp); acc += tmp`` does each tap in two passes
with no temporaries, and the work is split into blocks of samples and channels
whose accumulator fits in the L2 cache (:data:`BLOCK_BYTES`), so all the taps
of a block run on cached data. A channel multiplier ``m`` (``C_out = m*C_in``)
broadcasts the shifted view over the ``m`` filters of its channel.

Layout: NCHW, the input's own. Measured on a 2-core Zen 5 (batch 8, float32)
against a channels-last variant of the same loop: NCHW was 1.3-2x faster for
56x56 and 112x112 images and equal for 14x14 ones, and needs no transposes.
At stride 1 the planes are flattened and the outputs computed on the padded
grid (a few columns too many, cropped at the end): each tap is then one
contiguous run per plane instead of one per output row, which halved the time
of a 3x3 depthwise layer (NumPy's per-row loop overhead dominated rows of 56).

The same loops serve the two gradients of a depthwise layer, which are calls
of the primitive of the same kind: the input gradient is ``groups == C_in``
again (with input dilation after a stride, and ``C_in/groups = m`` channels
summed per output when the layer had a channel multiplier ``m``), and the
weight gradient is a single-"sample" correlation whose kernel is the output
gradient and whose output is the kernel size, summing over the batch as over
input channels. With ``C_in/groups = cg`` input channels per group the tap loop
runs over the ``cg * prod(K)`` pairs (channel, tap). When that is more than
the number of output positions (the weight gradient: 3136 taps, 9 outputs) the
loop turns around: one product-sum of the window with the whole kernel per
output position (``np.einsum``).

A compiled kernel (Numba, the optional ``fast`` extra; see
:mod:`._depthwise_numba`) runs the same loops without NumPy's per-call and
per-pass costs: one pass over each output row per tap in registers and L1
instead of two passes per tap over an L2 block, which is what separates the
NumPy loop from PyTorch's depthwise kernels. It is used for float32/float64
calls with one or two spatial dimensions when numba imports (imported on the
first such call, not with convlab); everything else, and every call when numba
is absent, takes the NumPy loops. Two records name the choice: ``depthwise``
(the compiled kernel where it applies, the one ``auto`` considers) and
``depthwise_numpy`` (always the NumPy loops, e.g. to compare the two).
Loading the kernels selects Numba's fork-safe threading layer (``workqueue``
where TBB is not installed, instead of GNU OpenMP, which hangs a process
forked after a parallel call) unless the user chose one, and kernel launches
hold a lock on that layer, which is not thread safe (see
:mod:`._depthwise_numba`): convlab may be used before and after ``fork()``
and from several threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import load_kernels
from ._costs import MACHINE, fmt, kernel_speed, stream
from ._layout import Call, block_bytes, check_applies, empty_result, padded_channels_first
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM", "ALGORITHM_NUMPY", "BLOCK_BYTES", "FLAT_STACK", "NUMBA_MACS", "NUMBA_SMALL_PADDED_MACS",
           "WEIGHT_GRAD_MACS", "compiled_kernel", "conv_general", "conv_general_numpy", "estimate", "flat_stack",
           "numba_available", "unsupported", "uses_numba", "weight_grad"]

#: Accumulator size of one block of (samples, channels): about half the L2 cache.
BLOCK_BYTES = 512 * 2**10

_kernels = None  # the module ._depthwise_numba once imported; False when numba does not import
_NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def unsupported(call: Call) -> str | None:
    """Depthwise needs one input channel per group, ``groups == C_in``, or a depthwise layer's gradient.

    Accepted: ``groups == C_in`` (any channel multiplier); the input gradient
    of a layer with a channel multiplier (``groups > 1`` and one output channel
    per group); the weight gradient of a depthwise layer (one "sample",
    ``groups > 1``, no more output positions than kernel taps).
    """
    if call.cg == 1 and call.groups == call.c_in:
        return None
    if call.groups > 1 and call.og == 1:
        return None
    if call.groups > 1 and call.batch == 1 and call.positions <= call.taps:
        return None
    return (f"it needs groups == C_in (one input channel per group, a depthwise convolution), "
            f"got groups={call.groups} with C_in={call.c_in}")


# --------------------------------------------------------------------------- the compiled kernels


def _load_kernels():
    """The compiled kernels' module, imported on first use (numba takes about half a second); None without numba."""
    global _kernels
    _kernels = load_kernels(_kernels, "_depthwise_numba")
    return _kernels or None


def numba_available() -> bool:
    """Whether numba imports (tries it once, then remembers)."""
    return _load_kernels() is not None


def _numba_handles(call: Call) -> bool:
    return call.dtype in _NUMBA_DTYPES and call.nd in (1, 2)


def uses_numba(call: Call) -> bool:
    """Whether :func:`conv_general` would run ``call`` with the compiled kernel (imports numba to know)."""
    return _numba_handles(call) and numba_available()


# --------------------------------------------------------------------------- the primitive


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
    *,
    compiled: bool = True,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, on the calls :func:`unsupported` accepts.

    The compiled kernel where :func:`uses_numba` says so (unless ``compiled`` is False), else the NumPy loop
    over taps or over output positions.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("depthwise" if compiled else "depthwise_numpy", unsupported(call))
    if call.is_empty:
        return empty_result(call)
    if compiled and uses_numba(call):
        return _compiled(call, x, weight)
    if call.positions < call.cg * call.taps:
        return _per_position(call, x, weight)
    return _per_tap(call, x, weight)


def conv_general_numpy(x, weight, stride, padding, dilation, input_dilation, groups):
    """:func:`conv_general` on the NumPy loops only (the record ``depthwise_numpy``)."""
    return conv_general(x, weight, stride, padding, dilation, input_dilation, groups, compiled=False)


def compiled_kernel(call: Call) -> str:
    """Which compiled kernel runs ``call``: ``'flat'``, ``'weight_grad'``, ``'small_output'``, ``'phases'`` or
    ``'direct'``.

    Output rows at least as long as the kernel's at stride 1 go to ``flat``; rows shorter than the
    kernel's to ``weight_grad`` for one sample (the correlation of a depthwise weight gradient, its
    "kernel" the output gradient: :func:`_correlation_as_weight_grad`) and to ``small_output`` for
    several (a large kernel over a small map); input dilation at stride 1 (the input gradient of a
    strided layer, a transposed layer) to ``phases``; the rest (strides) to ``direct``
    (:mod:`._depthwise_numba`).
    """
    plain = all(ld == 1 for ld in call.input_dilation)
    if not plain and all(s == 1 for s in call.stride):
        return "phases"
    if plain and all(s == 1 for s in call.stride) and call.out_size[-1] >= call.kernel[-1]:
        return "flat"
    if plain and call.out_size[-1] < call.kernel[-1]:
        return "weight_grad" if call.batch == 1 else "small_output"
    return "strided" if plain else "direct"


def _compiled(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The call on the compiled kernels (2-d planes; a 1-d call is one of height 1)."""
    kernels = _load_kernels()

    dtype = call.dtype
    xc = np.ascontiguousarray(x, dtype=dtype)
    wc = np.ascontiguousarray(weight, dtype=dtype)
    stride, dilation, input_dilation, padding = call.stride, call.dilation, call.input_dilation, call.padding
    out = call.out_size
    if call.nd == 1:  # (N, C, W) -> (N, C, 1, W): a row of height 1
        xc, wc = xc[:, :, None], wc[:, :, None]
        stride, dilation, input_dilation, padding = ((1,) + stride, (1,) + dilation, (1,) + input_dilation,
                                                     ((0, 0),) + padding)
        out = (1,) + out
    kernel = compiled_kernel(call)
    if kernel == "weight_grad":
        return _correlation_as_weight_grad(call, x, weight)
    y = np.empty((call.batch, call.c_out) + out, dtype=dtype)  # (N, C_out, OH, OW)
    # One launch at a time where the threading layer is not thread safe (workqueue, the fork-safe
    # layer chosen by _depthwise_numba); the thread count is per calling thread in Numba.
    with kernels.launch():
        if kernel == "flat":
            # Stride 1: long contiguous runs over the padded plane, several taps per pass.
            kernels.flat(xc, wc, y, padding[0][0], padding[1][0], dilation[0], dilation[1], call.groups,
                         flat_stack(call.batch, out, call.kernel if call.nd > 1 else (1,) + call.kernel, dilation))
        elif kernel == "phases":
            # Input dilation at stride 1: each output phase a stride-1 loop over the input, no inserted zeros.
            kernels.phases(xc, wc, y, padding[0][0], padding[1][0], dilation[0], dilation[1], input_dilation[0],
                           input_dilation[1], call.groups)
        elif kernel == "strided":
            # A stride without input dilation: the input's polyphase components, each tap one contiguous loop.
            kernels.strided(xc, wc, y, stride[0], stride[1], padding[0][0], padding[1][0], dilation[0], dilation[1],
                            call.groups)
        elif kernel == "small_output":
            # A tiny output under a large kernel (the weight gradient): vectors along the kernel's rows.
            kernels.small_output(xc, wc, y, stride[0], stride[1], padding[0][0], padding[1][0], dilation[0],
                                 dilation[1], call.groups)
        else:
            kernels.direct(xc, wc, y, stride[0], stride[1], padding[0][0], padding[1][0], dilation[0],
                           dilation[1], input_dilation[0], input_dilation[1], call.groups)
    return y.reshape(call.out_shape)  # (N, C_out, *O): a 1-d call drops its height-1 row


#: Elements of one stack of the compiled ``flat`` kernel: the padded planes of several samples of a channel
#: are stacked until each tap's loop runs over about this many outputs (L1-sized buffers, long vector loops).
FLAT_STACK = 2048


def flat_stack(batch: int, out: Sequence[int], kernel: Sequence[int], dilation: Sequence[int]) -> int:
    """Samples per task of the ``flat`` kernel: planes of 2-d sizes ``out`` (plus the kernel's extent) stacked
    to about :data:`FLAT_STACK` elements, from the call's shape only."""
    rows = out[0] + (kernel[0] - 1) * dilation[0]
    pitch = out[1] + (kernel[1] - 1) * dilation[1]
    return max(1, min(batch, FLAT_STACK // max(rows * pitch, 1)))


def _correlation_as_weight_grad(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A one-sample call with few outputs, computed as the depthwise weight gradient it is (the same sum).

    ``y[0, g*og + j, k] = sum_c sum_p w[g*og + j, c, p] x[0, g*Cg + c, k*s + p*d]`` is the weight gradient
    of a depthwise layer whose samples are the ``Cg`` channels of a group, whose channels are the groups,
    whose output gradient is ``w`` and whose stride and dilation are this call's dilation and stride
    (the ops' correlation, :func:`convlab.ops._conv_common.weight_grad_raw`): :func:`weight_grad` on views.
    """
    g, cg, og, nd = call.groups, call.cg, call.og, call.nd
    xv = x[0].reshape((g, cg) + call.size).swapaxes(0, 1)  # (Cg, G, *S): a view, the samples first
    gv = weight.swapaxes(0, 1)  # (Cg, G*og, *P): the "output gradient", a view
    y = _weight_grad_compiled(xv.astype(call.dtype, copy=False), gv.astype(call.dtype, copy=False), call.padding,
                              call.stride, call.dilation, og, call.out_size)  # (G*og, 1, *K)
    return y.reshape((1, g * og) + call.out_size[:nd])  # (1, C_out, *K)


def weight_grad(x: np.ndarray, grad_output: np.ndarray, padding: Sequence[tuple[int, int]], stride: Sequence[int],
                dilation: Sequence[int], kernel: Sequence[int], *, compiled: bool = True) -> np.ndarray:
    """The weight gradient of a depthwise layer (``groups == C_in``, ``C_out = m C_in``), read where the data is.

    ``gw[o, 0, *k] = sum_{n, p} grad_output[n, o, *p] * x_pad[n, o // m, *(p*stride + k*dilation)]``
    with ``x_pad`` the input zero-padded by ``padding`` (pairs; negative amounts crop), the usual
    correlation of the input with the output gradient (see :mod:`convlab.ops.conv`). Neither the
    padded input nor transposed copies are made: the compiled kernel (numba, float32/float64, 1-d and
    2-d) copies one small plane at a time into a per-thread buffer and keeps partial sums of the
    ``C_out * prod(K)`` weights only; the NumPy loop pads a block of samples at a time
    (:data:`BLOCK_BYTES`) and takes one product-sum per tap over views. Shape ``(C_out, 1, *K)``.
    """
    x = np.asarray(x)
    grad_output = np.asarray(grad_output)
    nd = x.ndim - 2
    dtype = np.result_type(x, grad_output)
    kernel = tuple(kernel)
    if grad_output.shape[1] % max(x.shape[1], 1):
        raise ValueError(f"depthwise.weight_grad: the output channels ({grad_output.shape[1]}) must be a multiple "
                         f"of the input channels ({x.shape[1]})")
    multiplier = grad_output.shape[1] // max(x.shape[1], 1)
    if x.shape[0] == 0 or x.shape[1] == 0 or 0 in grad_output.shape[2:]:
        return np.zeros((grad_output.shape[1], 1) + kernel, dtype=dtype)
    if compiled and dtype in _NUMBA_DTYPES and nd in (1, 2) and numba_available():
        return _weight_grad_compiled(x.astype(dtype, copy=False), grad_output.astype(dtype, copy=False),
                                     tuple(padding), tuple(dilation), tuple(stride), multiplier, kernel)
    return _weight_grad_numpy(x, grad_output, tuple(padding), tuple(stride), tuple(dilation), multiplier, kernel,
                              dtype)


#: Elements of one stack of the compiled weight gradient's planes: small planes are stacked (several
#: samples one after the other) so that each tap's dot product runs over at least this many elements.
WEIGHT_GRAD_STACK = 1024


def _weight_grad_chunks(samples: int, channels: int) -> int:
    """Chunks of samples with their own partial sums: at least 16 tasks where the channels are fewer.

    From the call's shape only (not the thread count), so the summation order, hence the rounding,
    is the same on every machine.
    """
    return max(1, min(samples, -(-16 // max(channels, 1))))


def _weight_grad_compiled(x, g, padding, dilation, stride, multiplier, kernel) -> np.ndarray:
    """:func:`weight_grad` on the compiled kernel (``_depthwise_numba.weight_grad``); 1-d as 2-d of height 1.

    ``stride`` and ``dilation`` are the layer's (the correlation of :func:`_correlation_as_weight_grad` swaps them).
    """
    kernels = _load_kernels()

    nd = x.ndim - 2
    if nd == 1:  # (N, C, W) -> (N, C, 1, W)
        x, g = x[:, :, None], g[:, :, None]
        padding, dilation, stride, kernel = ((0, 0),) + padding, (1,) + dilation, (1,) + stride, (1,) + kernel
    n, c_out = x.shape[0], g.shape[1]
    rows = (g.shape[2] - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    cols = (g.shape[3] - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
    chunks = _weight_grad_chunks(n, c_out)
    stack = max(1, min(-(-n // chunks), WEIGHT_GRAD_STACK // ((rows + 1) * cols)))
    partial = np.empty((chunks, c_out) + tuple(kernel), dtype=g.dtype)  # (chunks, C_out, KH, KW): tiny
    with kernels.launch():
        kernels.weight_grad(x, g, partial, stride[0], stride[1], padding[0][0], padding[1][0], dilation[0],
                            dilation[1], multiplier, chunks, stack)
    total = partial[0] if chunks == 1 else partial.sum(axis=0)  # (C_out, KH, KW)
    return total.reshape((c_out, 1) + tuple(kernel[len(kernel) - nd:]))  # (C_out, 1, *K)


def _weight_grad_numpy(x, g, padding, stride, dilation, multiplier, kernel, dtype) -> np.ndarray:
    """The NumPy loop of :func:`weight_grad`: a block of padded samples, one ``einsum`` per tap over views."""
    n, c_in = x.shape[:2]
    c_out, out = g.shape[1], g.shape[2:]
    nd = len(kernel)
    total = np.zeros((c_in, multiplier) + kernel, dtype=dtype)  # (C_in, m, *K): channel o = c*m + j
    per_sample = c_in * math.prod(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], padding, strict=True))
    block = max(1, block_bytes(BLOCK_BYTES) // max(per_sample * np.dtype(dtype).itemsize, 1))
    spatial = "hwd"[:nd]
    subscripts = f"ncm{spatial},ncm{spatial}->cm"
    for n0 in range(0, n, block):
        xp = padded_channels_first(x[n0:n0 + block], padding, (1,) * nd, dtype=dtype)  # (b, C_in, *S_padded)
        gb = g[n0:n0 + block].astype(dtype, copy=False)
        gb = gb.reshape((gb.shape[0], c_in, multiplier) + out)  # (b, C_in, m, *O)
        xb = xp[:, :, None]  # (b, C_in, 1, *S_padded)
        for tap in np.ndindex(*kernel):
            window = xb[(Ellipsis,) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                                            for k, d, o, s in zip(tap, dilation, out, stride, strict=True))]
            window = np.broadcast_to(window, gb.shape)  # (b, C_in, m, *O), a view
            total[(slice(None), slice(None)) + tap] += np.einsum(subscripts, gb, window)
    return total.reshape((c_out, 1) + kernel)


def _per_position(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Few outputs, many taps (the weight gradient): per output position, one product-sum over (channel, taps)."""
    dtype = call.dtype
    g, cg, og = call.groups, call.cg, call.og
    xp = padded_channels_first(x, call.padding, call.input_dilation, dtype=dtype)  # (N, C_in, *S_padded)
    xg = xp.reshape((call.batch, g, cg) + xp.shape[2:])  # (N, G, Cg, *S_padded)
    w = weight.astype(dtype, copy=False).reshape((g, og, cg) + call.kernel)  # (G, og, Cg, *K)
    y = np.empty((call.batch, g, og) + call.out_size, dtype=dtype)  # (N, G, og, *O)
    taps = "uvw"[:call.nd]
    subscripts = f"ngc{taps},goc{taps}->ngo"
    for position in np.ndindex(*call.out_size):
        window = xg[(Ellipsis,) + tuple(slice(p * s, p * s + (k - 1) * d + 1, d) for p, s, k, d in
                                        zip(position, call.stride, call.kernel, call.dilation, strict=True))]
        y[(Ellipsis,) + position] = np.einsum(subscripts, window, w)  # (N, G, og)
    return y.reshape(call.out_shape)  # (N, G*og, *O) = (N, C_out, *O)


def _per_tap(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The NumPy tap loop: one multiply-add of a shifted view per (input channel of the group, tap)."""
    dtype = call.dtype
    n, g, cg, m = call.batch, call.groups, call.cg, call.og
    out, kernel, nd = call.out_size, call.kernel, call.nd
    w = weight.astype(dtype, copy=False).reshape((g, m, cg, call.taps))  # (G, m, Cg, taps)
    flat = all(s == 1 for s in call.stride)
    if flat:
        # Stride 1: each tap is one contiguous run of the flattened padded plane. The outputs are
        # computed on the padded grid (rows of S_padded[-1] instead of O[-1]: a few wasted columns,
        # cropped at the end), so every multiply-add runs over long contiguous rows instead of
        # rows of O[-1] elements. One extra padded row keeps the last taps' runs inside the buffer.
        extra = (1,) + (0,) * (nd - 1) if nd > 1 else (0,)
        xp = padded_channels_first(x, call.padding, call.input_dilation, extra=extra, dtype=dtype)
        grid = xp.shape[3:]  # padded sizes of the inner dimensions
        row = math.prod(grid)
        length = out[0] * row if nd > 1 else out[0]
        source_all = xp.reshape(n, g, cg, 1, -1)  # (N, G, Cg, 1, plane)
        offsets = [sum(k * d * math.prod(xp.shape[3 + i:]) for i, (k, d) in enumerate(zip(tap, call.dilation,
                                                                                          strict=True)))
                   for tap in np.ndindex(*kernel)]
        windows = [(Ellipsis, slice(o, o + length)) for o in offsets]
        acc_shape = (length,)
        weight_tail = (1,)
    else:
        xp = padded_channels_first(x, call.padding, call.input_dilation, dtype=dtype)  # (N, C_in, *S_padded)
        source_all = xp.reshape((n, g, cg, 1) + xp.shape[2:])  # (N, G, Cg, 1, *S_padded): broadcast over m
        windows = [(Ellipsis,) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s) for k, d, o, s in
                                       zip(tap, call.dilation, out, call.stride, strict=True))
                   for tap in np.ndindex(*kernel)]
        acc_shape = out
        weight_tail = (1,) * nd
    y = np.empty((n, g, m) + acc_shape, dtype=dtype)  # output channel g*m + j lives at [:, g, j]
    plane = m * math.prod(acc_shape) * dtype.itemsize
    block = block_bytes(BLOCK_BYTES)
    if g * plane <= block:
        samples, channels = max(1, block // max(g * plane, 1)), g
    else:
        samples, channels = 1, max(1, block // max(plane, 1))
    tmp = np.empty((min(n, samples), min(g, channels), m) + acc_shape, dtype=dtype)
    for n0 in range(0, n, samples):
        n1 = min(n, n0 + samples)
        for g0 in range(0, g, channels):
            g1 = min(g, g0 + channels)
            acc = y[n0:n1, g0:g1]  # (b, gb, m, *acc_shape)
            t = tmp[:n1 - n0, :g1 - g0]
            w_block = w[g0:g1].reshape((g1 - g0, m, cg, call.taps) + weight_tail)  # (gb, m, Cg, taps, 1, ...)
            first = True
            for c in range(cg):
                source = source_all[n0:n1, g0:g1, c]  # (b, gb, 1, ...)
                for i, window in enumerate(windows):
                    view = source[window]  # (b, gb, 1, *acc_shape), a view, no copy
                    w_tap = w_block[:, :, c, i]  # (gb, m, 1, ...)
                    if first:
                        np.multiply(view, w_tap, out=acc)
                        first = False
                    else:
                        np.multiply(view, w_tap, out=t)
                        acc += t
    if flat and nd > 1:
        # (N, G, m, O[0], *S_padded[1:]), cropped to (N, G, m, *O)
        y = y.reshape((n, g, m, out[0]) + grid)[(Ellipsis,) + tuple(slice(0, o) for o in out[1:])]
    return y.reshape((n, g * m) + out)  # (N, G*m, *O) = (N, C_out, *O)


# --------------------------------------------------------------------------- cost


#: Multiply-adds per second of the compiled (Numba) depthwise kernels, float32, 2 threads, measured on the
#: MobileNetV2, ConvNeXt and RepLKNet layers of the benchmark: stride 1 (flat planes), strided (row by row),
#: the weight-gradient shape (a small output per plane, one partial sum per kernel column), and input-dilated
#: (``phases``: counted over the taps that meet input values; MobileNetV2's 96-channel 3x3/2 input gradient at
#: 112x112, batch 8, whose time is mostly the strided stores of the output); ``strided`` (the polyphase forward)
#: measured 2-7x faster than ``direct``'s row loop on MobileNetV2's and EfficientNet's strided layers at 56x56
#: and below, the same at 112x112 (loaded Xeon, one thread).
NUMBA_MACS = {"flat": 25e9, "direct": 8e9, "small_output": 5e9, "phases": 5e9, "strided": 12e9}
#: ``small_output`` on a padded plane (a 31x31 kernel over a 28x28 map, RepLKNet stage 2): 13 GMAC/s measured.
NUMBA_SMALL_PADDED_MACS = 13e9


#: The compiled weight-gradient kernel (``_depthwise_numba.weight_grad``), float32, 2 threads (like
#: :data:`NUMBA_MACS`): multiply-adds per second of its dot products, seconds per element copied into its plane
#: buffers, and per plane. From one-thread CPU times on the Xeon of the benchmark (batch 8; halved for two
#: threads), after the finite test left the copy loop: 3x3 at 56x56 (144 channels) 3.0 ms, 7x7 at 56x56 (96)
#: 7.3 ms, 3x3 at 14x14 (384) 0.61 ms, 3x3 at 7x7 (960) 0.72 ms, 31x31 at 28x28 (256) 115 ms; the model gives
#: 3.7, 6.9, 0.82, 0.82 and 131 ms for one thread (7x7 at 14x14, 384 channels, is 1.7x underestimated: 4.1 ms
#: measured, short dot products).
WEIGHT_GRAD_MACS = 50e9
WEIGHT_GRAD_COPY_SECONDS = 0.15e-9
WEIGHT_GRAD_PLANE_SECONDS = 20e-9


def _weight_grad_estimate(call: Call, itemsize: int) -> Estimate:
    """The weight-gradient kernel on a one-sample correlation (:func:`_correlation_as_weight_grad`).

    In the layer's terms: ``Cg`` samples, ``C_out`` channels, output gradient ``P = call.kernel``, the
    weight ``K = call.out_size``. Per plane, the padded input (``rows * cols``) and, at stride 1, the
    output gradient on that pitch are copied; each weight is a dot product over ``P[0] * cols`` elements
    (stride 1: the padded grid) or ``prod(P)`` (strided rows).
    """
    planes = call.cg * call.c_out
    kernel, out = call.kernel, call.out_size  # the output gradient's size, the weight's size
    layer_stride, layer_dilation = call.dilation, call.stride
    rows = (kernel[0] - 1) * layer_stride[0] + (out[0] - 1) * layer_dilation[0] + 1 if call.nd > 1 else 1
    cols = (kernel[-1] - 1) * layer_stride[-1] + (out[-1] - 1) * layer_dilation[-1] + 1
    flat = all(s == 1 for s in layer_stride)
    grid = (kernel[0] if call.nd > 1 else 1) * cols if flat else math.prod(kernel)
    macs = planes * math.prod(out) * grid
    rate = WEIGHT_GRAD_MACS / (2 if itemsize == 8 else 1)
    copied = planes * (rows * cols + (grid if flat else 0))
    compute = macs / rate / kernel_speed()  # the rates describe two threads: at the kernels' threads now
    copies = (copied * WEIGHT_GRAD_COPY_SECONDS + planes * WEIGHT_GRAD_PLANE_SECONDS) / kernel_speed()
    return Estimate(compute + copies, f"compiled kernel (weight_grad): {macs:,} multiply-adds {fmt(compute)} + "
                                      f"{copied:,} elements copied {fmt(copies)}")


def estimate(call: Call, compiled: bool = True) -> Estimate:
    """The compiled kernel's multiply-adds, or the NumPy loop's passes, plus the padded copy.

    With the compiled kernels (:func:`uses_numba`): the multiply-adds (at stride 1
    over the padded grid) at the rates of :data:`NUMBA_MACS`, plus an overhead
    per short row when strided, plus reading the input and writing the output
    once each (the kernels pad plane by plane in their own buffers).
    With NumPy: ``2 K C_in/g`` passes over the output (multiply, add) at cache
    bandwidth, plus an overhead per contiguous run (stride 1 runs over whole
    padded planes; a strided view has runs of one output row), and ``2 K C_in/g``
    NumPy calls per block.
    """
    b = call.dtype.itemsize
    flat = all(s == 1 for s in call.stride) and all(ld == 1 for ld in call.input_dilation)
    if flat and call.nd > 1:
        # stride 1: the passes run over the padded grid, in long contiguous runs
        positions = call.out_size[0] * math.prod(call.padded_size[1:])
        run = positions
    else:
        positions = call.positions
        run = call.out_size[-1]
    out_elements = call.batch * call.c_out * positions
    padded = stream(2 * call.batch * call.c_in * math.prod(call.padded_size) * b)
    if compiled and uses_numba(call):
        kind = compiled_kernel(call)
        if kind == "weight_grad":
            return _weight_grad_estimate(call, b)
        rate = NUMBA_MACS[kind] / (2 if b == 8 else 1)
        if kind == "small_output":
            out_elements = call.batch * call.c_out * call.positions
            if all(p == (0, 0) for p in call.padding):
                # a weight gradient: measured 4.5-6 GMAC/s for 7x7 outputs, 35 for 31x31 ones over 28x28
                # planes, 14 over 56x56 planes (the plane no longer stays in the cache)
                rate *= max(1.0, min(8.0, call.positions / 49) * min(1.0, 1024 / call.taps))
            else:
                rate = NUMBA_SMALL_PADDED_MACS / (2 if b == 8 else 1)
        macs = out_elements * call.cg * call.taps
        if kind == "phases":  # only the taps that meet input values run (1 / prod(input_dilation) of them)
            macs = macs // math.prod(call.input_dilation)
        short_rows = 0.0
        if kind == "direct" and run < 32:
            short_rows = 15e-9 * call.batch * call.c_out * (positions // max(run, 1)) * call.taps * call.cg
        compute = (macs / rate + short_rows) / kernel_speed()  # the rates describe two threads: at the kernels' now
        # The kernels pad each plane into a cache-sized buffer of their own: the input is read once and the
        # output written once, with no padded copy of the whole input (the NumPy loop's).
        seconds = compute + stream(call.batch * call.c_in * math.prod(call.size) * b) + stream(
            call.batch * call.c_out * call.positions * b)
        return Estimate(seconds, f"compiled kernel ({kind}): {macs:,} multiply-adds {fmt(compute)}")
    passes = 2 * call.taps * call.cg
    rate = MACHINE.cache_bytes if call.dtype.kind in "fc" else MACHINE.cache_bytes / 2
    streamed = passes * 2.5 * out_elements * b / rate
    rows = passes * out_elements / max(run, 1) * MACHINE.row_seconds  # one inner loop per run
    blocks = max(1, out_elements * b // BLOCK_BYTES)
    calls = blocks * passes * MACHINE.call_seconds
    seconds = streamed + rows + padded + calls
    return Estimate(seconds, f"{call.taps * call.cg} taps x 2 passes {fmt(streamed + rows)} + {blocks * passes} "
                             f"NumPy calls {fmt(calls)}")


ALGORITHM = Algorithm(
    name="depthwise",
    summary="tap accumulation over shifted views, compiled (numba) where it imports: groups == C_in",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=25e-6,
)
#: The NumPy loops alone (never chosen by ``auto``, which considers ``depthwise``): to compare or to avoid numba.
ALGORITHM_NUMPY = Algorithm(
    name="depthwise_numpy",
    summary="the depthwise tap loops on NumPy only, without the compiled kernels",
    primitive=conv_general_numpy,
    unsupported=unsupported,
    fixed_seconds=25e-6,
)
