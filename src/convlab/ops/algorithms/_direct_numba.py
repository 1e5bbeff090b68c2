"""Compiled (Numba) loops of the ``direct`` algorithm; imported lazily by :mod:`.direct`, never eagerly.

Every kernel reads an input that :mod:`.direct` has already dilated and
zero-padded (one NumPy copy, :func:`~._layout.padded_channels_first`), so the
loops hold no padding tests and every tap the reference sums is summed here
too, zeros included (``inf * 0`` is NaN here as there). Arrays are 5-d,
``(N, C, D, H, W)``: a 1-d call has ``D = H = 1``, a 2-d one ``D = 1``. Each
``(sample, output channel)`` pair is one task of a ``prange`` (Numba's thread
pool). Indices are unsigned (``_index``) in the hot loops: a signed index gets
a wraparound test that keeps LLVM from vectorising (see :mod:`._depthwise_numba`).

:func:`flat` (stride 1 in the two inner dimensions: forwards and input gradients)
    The outputs of one depth slice are computed on the padded grid: output
    ``(r, q)`` lives at ``r*W_p + q`` of an accumulator of ``(OH - 1)*W_p + OW``
    elements, and tap ``(i, j)`` is one contiguous loop
    ``acc[t] += w[i, j] * x_plane[i*dh*W_p + j*dw + t]`` over all of them (the
    ``W_p - OW`` columns between rows are computed and dropped). The input is
    laid channels first, ``(C_in, N, D_p, H_p, W_p)``, so the planes of a block
    of samples follow each other and one loop runs over the whole block (the
    rows between planes dropped too): LeNet's 10x10 outputs give loops of
    thousands of elements instead of ten loops of 10. Two taps of a kernel row
    share one pass over the accumulator.

:func:`rows` (any stride)
    One accumulator row of ``OW`` outputs per output row; each tap one loop
    ``acc[q] += w * x_row[q*sw + j*dw]``.

:func:`weight_grad` (the weight gradient's correlation: a tiny output under a large kernel)
    The primitive call of a weight gradient has the output gradient as its
    kernel (``10x10`` for LeNet's second layer, ``28x28`` for the first) and
    the kernel size as its output (``5x5``). Looping over taps would run
    thousands of loops of five columns; here the roles turn around: the
    kernel is laid on the input's row pitch (``k_grid``, zero beyond its ``KW``
    columns), and for each output position ``(a, b)`` one contiguous loop over
    the whole kernel plane ``acc[a, b, t] += k_grid[t] * x_plane[a*sh*W_p +
    b*sw + t]`` keeps one partial sum per kernel element; the partial sums are
    added at the end. The zero columns of ``k_grid`` multiply input elements
    the reference never reads, so :mod:`.direct` calls this kernel only on a
    finite input (``0 * inf`` would be NaN).

Sums run in the input's dtype (float32 stays float32, as the reference's BLAS
products do), one multiply then one add (no ``fastmath``); the order differs
from the reference's, so results agree to float tolerance, not bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _index

from ._depthwise_numba import THREADING_LAYER, _jit, exclusive, launch

__all__ = ["THREADING_LAYER", "exclusive", "flat", "launch", "rows", "weight_grad"]


@_jit
def flat(xt, w, y, sd, dd, dh, dw, groups, block):  # pragma: no cover - compiled
    # xt (C_in, N, D_p, H_p, W_p): the padded input, channels first, so that the planes of one channel
    # for consecutive samples are consecutive and one loop runs over a block of samples at once.
    n_samples = xt.shape[1]
    pitch = xt.shape[4]
    plane = xt.shape[3] * pitch
    volume = xt.shape[2] * plane
    c_out, cg, kd_size, kh_size, kw_size = w.shape
    out_d, out_h, out_w = y.shape[2], y.shape[3], y.shape[4]
    og = c_out // groups
    blocks = (n_samples + block - 1) // block
    xf = xt.reshape((xt.shape[0], n_samples * volume))  # (C_in, N*D_p*H_p*W_p)
    for task in prange(c_out * blocks):
        o = task // blocks
        n0 = (task - o * blocks) * block
        nb = min(block, n_samples - n0)
        g = o // og
        # output (n, oh, ow) of depth od at acc[(n - n0)*volume + oh*pitch + ow]; the last tap's run
        # ends on the last element of the block's last plane
        length = (nb - 1) * volume + (out_h - 1) * pitch + out_w
        acc = np.empty(length, dtype=y.dtype)
        for od in range(out_d):
            acc[:] = 0
            for c in range(cg):
                ci = g * cg + c
                for kd in range(kd_size):
                    base = n0 * volume + (od * sd + kd * dd) * plane
                    for kh in range(kh_size):
                        kw = 0
                        while kw < kw_size:
                            s0 = base + kh * dh * pitch + kw * dw
                            w0 = w[o, c, kd, kh, kw]
                            if kw + 1 < kw_size:
                                w1 = w[o, c, kd, kh, kw + 1]
                                for t in range(length):
                                    i = s0 + t
                                    acc[_index(t)] = (acc[_index(t)] + w0 * xf[ci, _index(i)]) \
                                        + w1 * xf[ci, _index(i + dw)]
                                kw += 2
                            else:
                                for t in range(length):
                                    acc[_index(t)] += w0 * xf[ci, _index(s0 + t)]
                                kw += 1
            for n in range(nb):
                for oh in range(out_h):
                    for ow in range(out_w):
                        y[n0 + n, o, od, oh, ow] = acc[n * volume + oh * pitch + ow]


@_jit
def rows(x, w, y, sd, sh, sw, dd, dh, dw, groups):  # pragma: no cover - compiled
    n_samples = x.shape[0]
    c_out, cg, kd_size, kh_size, kw_size = w.shape
    out_d, out_h, out_w = y.shape[2], y.shape[3], y.shape[4]
    og = c_out // groups
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        acc = np.empty(out_w, dtype=y.dtype)
        for od in range(out_d):
            for oh in range(out_h):
                acc[:] = 0
                for c in range(cg):
                    ci = g * cg + c
                    for kd in range(kd_size):
                        z = od * sd + kd * dd
                        for kh in range(kh_size):
                            r = oh * sh + kh * dh
                            for kw in range(kw_size):
                                wv = w[o, c, kd, kh, kw]
                                off = kw * dw
                                for t in range(out_w):
                                    acc[_index(t)] += wv * x[n, ci, z, r, _index(off + t * sw)]
                for ow in range(out_w):
                    y[n, o, od, oh, ow] = acc[ow]


@_jit
def weight_grad(x, k_grid, y, sh, sw, kw_size, groups):  # pragma: no cover - compiled
    # x (N, C_in, H_p, W_p); k_grid (C_out, C_in/groups, KH*W_p): the kernel on the input's pitch;
    # y (N, C_out, OH, OW); the kernel is kw_size wide; dilation 1 (the kernel's rows are W_p apart on the input).
    n_samples = x.shape[0]
    pitch = x.shape[3]
    plane = x.shape[2] * pitch
    c_out, cg = k_grid.shape[0], k_grid.shape[1]
    out_h, out_w = y.shape[2], y.shape[3]
    kh_size = k_grid.shape[2] // pitch
    length = (kh_size - 1) * pitch + kw_size
    og = c_out // groups
    xf = x.reshape((x.shape[0], x.shape[1], plane))  # (N, C_in, H_p*W_p)
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        acc = np.zeros((out_h * out_w, length), dtype=k_grid.dtype)  # one partial sum per kernel element
        for c in range(cg):
            ci = g * cg + c
            for a in range(out_h):
                for b in range(out_w):
                    s0 = a * sh * pitch + b * sw
                    p = a * out_w + b
                    for t in range(length):
                        acc[p, _index(t)] += k_grid[o, c, _index(t)] * xf[n, ci, _index(s0 + t)]
        for a in range(out_h):
            for b in range(out_w):
                p = a * out_w + b
                total = acc[p, 0]
                for t in range(1, length):
                    total += acc[p, t]
                y[n, o, a, b] = total
