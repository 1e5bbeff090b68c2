"""Compiled (Numba) transforms of the 2-D Winograd path; imported lazily by :mod:`.winograd`, never eagerly.

The NumPy path of :mod:`.winograd` spends most of its time outside the
products: a gathered copy of every tile, two Kronecker-product GEMMs with an
inner dimension of ``alpha^2`` (36 for F(4x4, 3x3), mostly multiplications by
zero) over arrays many times the cache, and a scatter of the output tiles.
These kernels do each transform in one pass, tile by tile, with the channels
as the contiguous inner loop (vectorised by LLVM):

:func:`input_transform`
    ``V[e, t, c] = (B^T d_t B)[e]`` for a block of tiles ``t`` read straight
    from the padded channels-last input (no gathered copy): first
    ``B^T d`` (``alpha x alpha`` rows of ``C`` values, in a scratch buffer
    that stays in L1/L2), then ``(B^T d) B`` into ``V``; zero coefficients of
    ``B^T`` are skipped, so each output element costs only the non-zero terms.
:func:`output_transform`
    ``Y = A^T M_t A`` for the block, written straight into the channels-last
    output (tiles that overhang the output are cropped as they are written).
:func:`weight_transform`
    ``U = G g G^T`` per filter in float64, rounded once to the output dtype,
    written into the ``(alpha^2, G, C_in/g, C_out/g)`` layout of the products.

Each transform applies the 1-D transform along one axis then the other
(``alpha`` terms per sum, twice), a different order of the same sums as the
Kronecker product of the NumPy path; the error bound of :mod:`.winograd`
covers both (it counts ``alpha^d >= 2 alpha`` terms per transform).

The ``prange`` loops run on the threading layer :mod:`._depthwise_numba`
selects (the fork-safe one), and launches take its lock where that layer is
not thread safe (:func:`._depthwise_numba.exclusive`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba import uint64 as _index

from ._depthwise_numba import THREADING_LAYER, _jit, exclusive

__all__ = ["THREADING_LAYER", "exclusive", "input_transform", "output_transform", "weight_transform"]


# Indices of the hot loops are unsigned (see _depthwise_numba: a signed index gets a wraparound
# test that stops LLVM from vectorising the loop); the arrays are passed flat (1-D, contiguous).


@njit(inline="always", nogil=True)
def _combine(out, dst, src, start, step, coefs, n):  # pragma: no cover - compiled
    """``out[dst + c] = sum_i coefs[i] * src[start + i*step + c]`` for ``c < n``; zero coefficients are skipped.

    The one step of every transform: a row of ``B^T`` or ``A^T`` (mostly zeros and ones) combining
    ``n``-long channel runs; the channel loops are contiguous, so LLVM vectorises them.
    """
    first = True
    for i in range(coefs.shape[0]):
        f = coefs[i]
        if f == 0:
            continue
        base = start + i * step
        if first:
            for c in range(n):
                out[_index(dst + c)] = f * src[_index(base + c)]
            first = False
        else:
            for c in range(n):
                out[_index(dst + c)] += f * src[_index(base + c)]
    if first:
        for c in range(n):
            out[_index(dst + c)] = 0


@_jit
def input_transform(x, bt, v, n0, nb, r0, nr, tw, m, ph, pw, hv, wv):  # pragma: no cover - compiled
    """``v[e, t, c] = (B^T d_t B)[e]`` for the tiles of samples ``n0..n0+nb``, tile rows ``r0..r0+nr``.

    ``x`` is the NCHW input ``(N, C, H, W)`` (C-contiguous), ``bt`` the ``(alpha, alpha)`` matrix
    ``B^T``, ``v`` the ``(alpha^2, T, C)`` output flattened, ``T = nb*nr*tw`` tiles numbered row by
    row. The input is padded by ``ph`` rows and ``pw`` columns in front (negative: cropped) and is
    ``hv x wv`` once padded; tile ``(r, col)`` reads padded rows ``r*m..r*m+alpha-1`` and columns
    ``col*m..col*m+alpha-1``, zeros outside. No padded copy of the whole input is made: each
    task (a sample's tile row) first moves its band of ``alpha`` padded rows to channels-last
    ``(alpha, W', C)`` in a scratch buffer (L2-sized), 16 channels at a time, then transforms
    the band's tiles from there.
    """
    c_in, height, width = x.shape[1], x.shape[2], x.shape[3]
    alpha = bt.shape[0]
    tiles = nb * nr * tw
    wp = (tw - 1) * m + alpha  # the band's width
    lo, hi = max(0, pw), min(wp, wv, width + pw)  # band columns j that read x[..., j - pw]
    for row in prange(nb * nr):
        n = n0 + row // nr
        r = r0 + row % nr
        band = np.empty(alpha * wp * c_in, dtype=v.dtype)  # (alpha, wp, C)
        for i in range(alpha):
            src = r * m + i - ph
            base = i * wp * c_in
            if src < 0 or src >= height or r * m + i >= hv or lo >= hi:
                for k in range(wp * c_in):
                    band[_index(base + k)] = 0
                continue
            for k in range(lo * c_in):
                band[_index(base + k)] = 0
            for k in range(hi * c_in, wp * c_in):
                band[_index(base + k)] = 0
            for c0 in range(0, c_in, 16):
                c1 = min(c_in, c0 + 16)
                for j in range(lo, hi):
                    for c in range(c0, c1):
                        band[_index(base + j * c_in + c)] = x[n, _index(c), src, _index(j - pw)]
        tmp = np.empty(alpha * alpha * c_in, dtype=v.dtype)  # (B^T d)[a, j, c]
        for col in range(tw):
            t = row * tw + col
            corner = col * m * c_in  # the tile's first element in the band
            for a in range(alpha):
                for j in range(alpha):
                    _combine(tmp, (a * alpha + j) * c_in, band, corner + j * c_in, wp * c_in, bt[a], c_in)
            for a in range(alpha):
                for k in range(alpha):
                    _combine(v, ((a * alpha + k) * tiles + t) * c_in, tmp, a * alpha * c_in, c_in, bt[k], c_in)


@_jit
def output_transform(mm, at, y, shape, n0, nb, r0, nr, tw, m, groups, kb, og, k0):  # pragma: no cover - compiled
    """``y[n, r*m + p, col*m + q, o] = (A^T M_t A)[p, q, o]`` for the block's tiles, cropped to ``y``.

    ``mm`` is ``(alpha^2, T, G, kb)`` flattened: output channels ``grp*og + k0 .. + kb`` of each
    group ``grp`` (a block of ``kb`` of the ``og`` channels per group); ``at`` the ``(m, alpha)``
    matrix ``A^T``; ``y`` the channels-last output ``(N, OH, OW, C_out)`` flattened (``shape`` its shape).
    """
    oh, ow, c_out = shape[1], shape[2], shape[3]
    alpha = at.shape[1]
    tiles = nb * nr * tw
    width = groups * kb  # one tile element's row of mm
    for row in prange(nb * nr):
        n = n0 + row // nr
        r = r0 + row % nr
        tmp = np.empty(m * alpha * width, dtype=y.dtype)  # (A^T M)[p, b, (grp, k)]
        for col in range(tw):
            t = row * tw + col
            for p in range(m):
                if r * m + p >= oh:
                    continue
                for b in range(alpha):
                    _combine(tmp, (p * alpha + b) * width, mm, (b * tiles + t) * width, alpha * tiles * width,
                             at[p], width)
            for p in range(m):
                if r * m + p >= oh:
                    continue
                for q in range(m):
                    if col * m + q >= ow:
                        continue
                    pixel = ((n * oh + r * m + p) * ow + col * m + q) * c_out + k0
                    for grp in range(groups):
                        _combine(y, pixel + grp * og, tmp, p * alpha * width + grp * kb, width, at[q], kb)


@_jit
def weight_transform(w, g, u, og, k0):  # pragma: no cover - compiled
    """``u[a*alpha + b, grp, c, k] = (G w[grp*og + k0 + k, c] G^T)[a, b]`` in float64, rounded once into ``u``.

    ``w`` is the weight ``(C_out, C_in/g, 3, 3)`` as given (C-contiguous), ``g`` the ``(alpha, 3)``
    float64 matrix ``G``, ``u`` ``(alpha^2, G, C_in/g, kb)``: output channels ``k0 .. k0+kb`` of each
    group (``og`` per group), all of them when ``k0 = 0`` and ``kb = og``. Each task (a group's input
    channel) gathers its ``kb`` filters' 9 taps into ``(9, kb)`` float64 rows, then every sum is a
    loop over ``kb`` contiguous filters (vectorised).
    """
    cg, kb = u.shape[2], u.shape[3]
    groups = u.shape[1]
    alpha = g.shape[0]
    for task in prange(groups * cg):
        grp = task // cg
        c = task - grp * cg
        taps = np.empty((9, kb), dtype=np.float64)
        for k in range(kb):
            o = grp * og + k0 + k
            for i in range(9):
                taps[i, k] = np.float64(w[o, c, i // 3, i % 3])
        tmp = np.empty((alpha, 3, kb), dtype=np.float64)  # (G w)[a, j, k]
        for a in range(alpha):
            for j in range(3):
                for k in range(kb):
                    tmp[a, j, _index(k)] = (g[a, 0] * taps[j, _index(k)] + g[a, 1] * taps[3 + j, _index(k)]
                                            + g[a, 2] * taps[6 + j, _index(k)])
        for a in range(alpha):
            for b in range(alpha):
                for k in range(kb):
                    u[a * alpha + b, grp, c, _index(k)] = (tmp[a, 0, _index(k)] * g[b, 0]
                                                           + tmp[a, 1, _index(k)] * g[b, 1]
                                                           + tmp[a, 2, _index(k)] * g[b, 2])
