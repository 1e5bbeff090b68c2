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

__all__ = ["THREADING_LAYER", "exclusive", "input_transform", "output_transform", "pad_channels_last",
           "weight_transform"]


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
def pad_channels_last(x, xp, ph, pw):  # pragma: no cover - compiled
    """``xp[n, i, j, c] = x[n, c, i - ph, j - pw]`` where that is inside ``x``, else 0 (negative pads crop).

    ``x`` is ``(N, C, H, W)``, ``xp`` ``(N, Hp, Wp, C)``: the NCHW -> padded NHWC copy of
    :func:`._layout.padded_channels_last` in one pass, every element of ``xp`` written once. Blocks
    of 16 channels: 16 source rows are read along ``j`` while 64-byte runs of ``xp`` are written.
    """
    n_samples, c_in, height, width = x.shape
    hp, wp = xp.shape[1], xp.shape[2]
    for task in prange(n_samples * hp):
        n = task // hp
        i = task - n * hp
        r = i - ph
        if r < 0 or r >= height:
            for j in range(wp):
                for c in range(c_in):
                    xp[n, i, j, _index(c)] = 0
            continue
        for j in range(wp):
            col = j - pw
            if col < 0 or col >= width:
                for c in range(c_in):
                    xp[n, i, j, _index(c)] = 0
        lo, hi = max(0, -pw), min(width, wp - pw)
        for c0 in range(0, c_in, 16):
            c1 = min(c_in, c0 + 16)
            for col in range(lo, hi):
                for c in range(c0, c1):
                    xp[n, i, _index(col + pw), _index(c)] = x[n, _index(c), r, _index(col)]


@_jit
def input_transform(xp, shape, bt, v, n0, nb, r0, nr, tw, m):  # pragma: no cover - compiled
    """``v[e, t, c] = (B^T d_t B)[e]`` for the tiles of samples ``n0..n0+nb``, tile rows ``r0..r0+nr``.

    ``xp`` is the padded channels-last input ``(N, Hp, Wp, C)`` flattened (``shape`` its shape), ``bt``
    the ``(alpha, alpha)`` matrix ``B^T``, ``v`` the ``(alpha^2, T, C)`` output flattened, ``T = nb*nr*tw``
    tiles numbered row by row; tile ``(r, col)`` starts at row ``r*m``, column ``col*m`` of ``xp``.
    """
    hp, wp, c_in = shape[1], shape[2], shape[3]
    alpha = bt.shape[0]
    tiles = nb * nr * tw
    for row in prange(nb * nr):
        n = n0 + row // nr
        r = r0 + row % nr
        tmp = np.empty(alpha * alpha * c_in, dtype=v.dtype)  # (B^T d)[a, j, c]
        for col in range(tw):
            t = row * tw + col
            corner = ((n * hp + r * m) * wp + col * m) * c_in  # the tile's first element in xp
            for a in range(alpha):
                for j in range(alpha):
                    _combine(tmp, (a * alpha + j) * c_in, xp, corner + j * c_in, wp * c_in, bt[a], c_in)
            for a in range(alpha):
                for k in range(alpha):
                    _combine(v, ((a * alpha + k) * tiles + t) * c_in, tmp, a * alpha * c_in, c_in, bt[k], c_in)


@_jit
def output_transform(mm, at, y, shape, n0, nb, r0, nr, tw, m):  # pragma: no cover - compiled
    """``y[n, r*m + p, col*m + q, o] = (A^T M_t A)[p, q, o]`` for the block's tiles, cropped to ``y``.

    ``mm`` is ``(alpha^2, T, C_out)`` flattened, ``at`` the ``(m, alpha)`` matrix ``A^T``, ``y`` the
    channels-last output ``(N, OH, OW, C_out)`` flattened (``shape`` its shape).
    """
    oh, ow, c_out = shape[1], shape[2], shape[3]
    alpha = at.shape[1]
    tiles = nb * nr * tw
    for row in prange(nb * nr):
        n = n0 + row // nr
        r = r0 + row % nr
        tmp = np.empty(m * alpha * c_out, dtype=y.dtype)  # (A^T M)[p, b, o]
        for col in range(tw):
            t = row * tw + col
            for p in range(m):
                if r * m + p >= oh:
                    continue
                for b in range(alpha):
                    _combine(tmp, (p * alpha + b) * c_out, mm, (b * tiles + t) * c_out, alpha * tiles * c_out,
                             at[p], c_out)
            for p in range(m):
                if r * m + p >= oh:
                    continue
                for q in range(m):
                    if col * m + q >= ow:
                        continue
                    _combine(y, ((n * oh + r * m + p) * ow + col * m + q) * c_out, tmp, p * alpha * c_out, c_out,
                             at[q], c_out)


@_jit
def weight_transform(wt, g, u, groups):  # pragma: no cover - compiled
    """``u[a*alpha + b, grp, c, o'] = (G w[o, c] G^T)[a, b]`` in float64, rounded once into ``u``'s dtype.

    ``wt`` is the weight moved to ``(C_in/g, 3, 3, C_out)`` (output channels contiguous: the inner
    loops run over them), ``g`` the ``(alpha, 3)`` float64 matrix ``G``, ``u``
    ``(alpha^2, G, C_in/g, C_out/g)``; output channel ``o`` is ``o' = o % (C_out/g)`` of group ``o // (C_out/g)``.
    """
    cg, c_out = wt.shape[0], wt.shape[3]
    alpha = g.shape[0]
    og = c_out // groups
    for c in prange(cg):
        tmp = np.empty((alpha, 3, c_out), dtype=np.float64)  # (G w)[a, j, o]
        for a in range(alpha):
            for j in range(3):
                for o in range(c_out):
                    tmp[a, j, _index(o)] = (g[a, 0] * np.float64(wt[c, 0, j, _index(o)])
                                            + g[a, 1] * np.float64(wt[c, 1, j, _index(o)])
                                            + g[a, 2] * np.float64(wt[c, 2, j, _index(o)]))
        for a in range(alpha):
            for b in range(alpha):
                for grp in range(groups):
                    for k in range(og):
                        o = grp * og + k
                        u[a * alpha + b, grp, c, _index(k)] = (tmp[a, 0, _index(o)] * g[b, 0]
                                                                + tmp[a, 1, _index(o)] * g[b, 1]
                                                                + tmp[a, 2, _index(o)] * g[b, 2])
