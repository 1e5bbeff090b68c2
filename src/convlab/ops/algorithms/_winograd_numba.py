"""Compiled (Numba) transforms of the 2-D Winograd path; imported lazily by :mod:`.winograd`, never eagerly.

The NumPy path of :mod:`.winograd` spends most of its time outside the
products: a gathered copy of every tile, two Kronecker-product GEMMs with an
inner dimension of ``alpha^2`` (36 for F(4x4, 3x3), mostly multiplications by
zero) over arrays many times the cache, and a scatter of the output tiles.
These kernels do each transform in one pass, tile by tile, with the channels
as the contiguous inner loop (vectorised by LLVM):

:func:`input_transform`
    ``V[e, t, c] = (B^T d_t B)[e]`` for a block of tiles read from the NCHW
    input: each task (a sample's tile row) moves its band of ``alpha`` padded
    rows to channels-last in a scratch buffer (zeros where the padding is, and
    where a crop cut the input off), then per tile ``B^T d`` (``alpha x alpha``
    rows of ``C`` values, in a scratch buffer that stays in L1/L2) and
    ``(B^T d) B`` into ``V``.
:func:`output_transform`
    ``Y = A^T M_t A`` for the block and a block of output channels, written
    straight into the channels-last output (tiles that overhang the output are
    cropped as they are written).
:func:`weight_transform`
    ``U = G g G^T`` per filter in float64, rounded once to the output dtype,
    written into the ``(alpha^2, G, C_in/g, kb)`` layout of the products, for a
    block of ``kb`` output channels per group.

The sums of whole tiles run through straight-line kernels, one per matrix
shape (``_rows6x6``, ``_rows4x6``, ``_rows4x4``, ``_rows2x4``; ``_rows6x3``,
``_rows4x3`` for ``G``): every row of the matrix at once, so each input run is
read once and the channel loop has no inner loop left (LLVM vectorises it).
They add every column in order, zeros included; ``0 * x`` adds an exact zero
to a finite sum, so the numbers are those of skipping the zeros
(:func:`_combine`, still used for tiles cropped on the right); a NaN or inf
spreads over its tile (the record says so: ``nonfinite_exact=False``).

Each transform applies the 1-D transform along one axis then the other
(``alpha`` terms per sum, twice), a different order of the same sums as the
Kronecker product of the NumPy path; the error bound of :mod:`.winograd`
covers both (it counts ``alpha^d >= 2 alpha`` terms per transform).

The ``prange`` loops run on the threading layer :mod:`._depthwise_numba`
selects (the fork-safe one), and launches take its lock where that layer is
not thread safe (:func:`._depthwise_numba.exclusive`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numba import uint64 as _index

from ._depthwise_numba import THREADING_LAYER, THREADSAFE_LAYERS, _jit, exclusive, launch

#: Whether kernels may be launched from several Python threads at once (the threading layer is thread safe).
CONCURRENT_LAUNCHES = THREADING_LAYER in THREADSAFE_LAYERS

__all__ = [
    "CONCURRENT_LAUNCHES",
    "THREADING_LAYER",
    "exclusive",
    "gradient_transform",
    "input_transform",
    "launch",
    "one_thread",
    "output_transform",
    "weight_gradient_transform",
    "weight_transform",
]


# Indices of the hot loops are unsigned (see _depthwise_numba: a signed index gets a wraparound
# test that stops LLVM from vectorising the loop); the arrays are passed flat (1-D, contiguous).


@njit(inline="always", nogil=True)
def _combine(out, dst, src, start, step, coefs, n):  # pragma: no cover - compiled
    """``out[dst + c] = sum_i coefs[i] * src[start + i*step + c]`` for ``c < n``; zero coefficients are skipped.

    One row of ``A^T`` combining ``n``-long channel runs, for the outputs of a tile cropped on the right
    (whole tiles use the straight-line ``_rows*`` kernels, which give the same numbers).
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


@njit(inline="always", nogil=True)
def _rows6x6(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """:func:`_rows` for a ``(6, 6)`` matrix: the body is straight-line, so the channel loop vectorises."""
    m00, m01, m02, m03, m04, m05 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3], mat[0, 4], mat[0, 5]
    m10, m11, m12, m13, m14, m15 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3], mat[1, 4], mat[1, 5]
    m20, m21, m22, m23, m24, m25 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3], mat[2, 4], mat[2, 5]
    m30, m31, m32, m33, m34, m35 = mat[3, 0], mat[3, 1], mat[3, 2], mat[3, 3], mat[3, 4], mat[3, 5]
    m40, m41, m42, m43, m44, m45 = mat[4, 0], mat[4, 1], mat[4, 2], mat[4, 3], mat[4, 4], mat[4, 5]
    m50, m51, m52, m53, m54, m55 = mat[5, 0], mat[5, 1], mat[5, 2], mat[5, 3], mat[5, 4], mat[5, 5]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        d3 = src[_index(start + 3 * sstep + c)]
        d4 = src[_index(start + 4 * sstep + c)]
        d5 = src[_index(start + 5 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3 + m04 * d4 + m05 * d5
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3 + m14 * d4 + m15 * d5
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3 + m24 * d4 + m25 * d5
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2 + m33 * d3 + m34 * d4 + m35 * d5
        out[_index(dst + 4 * ostep + c)] = m40 * d0 + m41 * d1 + m42 * d2 + m43 * d3 + m44 * d4 + m45 * d5
        out[_index(dst + 5 * ostep + c)] = m50 * d0 + m51 * d1 + m52 * d2 + m53 * d3 + m54 * d4 + m55 * d5


@njit(inline="always", nogil=True)
def _rows4x6(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """:func:`_rows` for a ``(4, 6)`` matrix: the body is straight-line, so the channel loop vectorises."""
    m00, m01, m02, m03, m04, m05 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3], mat[0, 4], mat[0, 5]
    m10, m11, m12, m13, m14, m15 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3], mat[1, 4], mat[1, 5]
    m20, m21, m22, m23, m24, m25 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3], mat[2, 4], mat[2, 5]
    m30, m31, m32, m33, m34, m35 = mat[3, 0], mat[3, 1], mat[3, 2], mat[3, 3], mat[3, 4], mat[3, 5]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        d3 = src[_index(start + 3 * sstep + c)]
        d4 = src[_index(start + 4 * sstep + c)]
        d5 = src[_index(start + 5 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3 + m04 * d4 + m05 * d5
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3 + m14 * d4 + m15 * d5
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3 + m24 * d4 + m25 * d5
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2 + m33 * d3 + m34 * d4 + m35 * d5


@njit(inline="always", nogil=True)
def _rows4x4(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """:func:`_rows` for a ``(4, 4)`` matrix: the body is straight-line, so the channel loop vectorises."""
    m00, m01, m02, m03 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3]
    m10, m11, m12, m13 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3]
    m20, m21, m22, m23 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3]
    m30, m31, m32, m33 = mat[3, 0], mat[3, 1], mat[3, 2], mat[3, 3]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        d3 = src[_index(start + 3 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2 + m33 * d3


@njit(inline="always", nogil=True)
def _rows2x4(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """:func:`_rows` for a ``(2, 4)`` matrix: the body is straight-line, so the channel loop vectorises."""
    m00, m01, m02, m03 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3]
    m10, m11, m12, m13 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        d3 = src[_index(start + 3 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3


@_jit
def input_transform(x, bt, v, n0, nb, r0, nr, tw, m, ph, pw, hv, wv, vrow=0, voff=0):  # pragma: no cover - compiled
    """``v[e, t, c] = (B^T d_t B)[e]`` for the tiles of samples ``n0..n0+nb``, tile rows ``r0..r0+nr``.

    ``x`` is the NCHW input ``(N, C, H, W)`` (C-contiguous), ``bt`` the ``(alpha, alpha)`` matrix
    ``B^T``, ``v`` the ``(alpha^2, T, C)`` output flattened, ``T = nb*nr*tw`` tiles numbered row by
    row. The input is padded by ``ph`` rows and ``pw`` columns in front (negative: cropped) and is
    ``hv x wv`` once padded; tile ``(r, col)`` reads padded rows ``r*m..r*m+alpha-1`` and columns
    ``col*m..col*m+alpha-1``, zeros outside. No padded copy of the whole input is made: each
    task (a sample's tile row) first moves its band of ``alpha`` padded rows to channels-last
    ``(alpha, W', C)`` in a scratch buffer (L2-sized), 16 channels at a time, then transforms
    the band's tiles from there.

    ``vrow`` (when not 0) is the length of a row of ``v`` and ``voff`` where the ``C`` values start in
    it: the 3-D path writes three frames' tiles side by side, ``v`` ``(alpha^2, T, 3, C)``. ``x`` may
    be a strided view (a frame ``x5[:, :, d]`` of a 5-D input).
    """
    c_in, height, width = x.shape[1], x.shape[2], x.shape[3]
    row_len = vrow if vrow > 0 else c_in
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
            # tmp[a, j] = sum_i bt[a, i] band[i, col*m + j], then v[a*alpha + k, t] = sum_j bt[k, j] tmp[a, j]
            if alpha == 6:
                for j in range(6):
                    _rows6x6(tmp, j * c_in, 6 * c_in, band, corner + j * c_in, wp * c_in, bt, c_in)
                for a in range(6):
                    _rows6x6(v, (a * 6 * tiles + t) * row_len + voff, tiles * row_len, tmp, a * 6 * c_in, c_in, bt,
                             c_in)
            else:
                for j in range(4):
                    _rows4x4(tmp, j * c_in, 4 * c_in, band, corner + j * c_in, wp * c_in, bt, c_in)
                for a in range(4):
                    _rows4x4(v, (a * 4 * tiles + t) * row_len + voff, tiles * row_len, tmp, a * 4 * c_in, c_in, bt,
                             c_in)


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
            for b in range(alpha):  # tmp[p, b] = sum_a at[p, a] mm[a*alpha + b, t]
                if alpha == 6:
                    _rows4x6(tmp, b * width, 6 * width, mm, (b * tiles + t) * width, 6 * tiles * width, at, width)
                else:
                    _rows2x4(tmp, b * width, 4 * width, mm, (b * tiles + t) * width, 4 * tiles * width, at, width)
            whole = col * m + m <= ow
            for p in range(m):
                if r * m + p >= oh:
                    continue
                pixel = ((n * oh + r * m + p) * ow + col * m) * c_out + k0
                for grp in range(groups):
                    if whole and alpha == 6:  # y[.., col*m + q] = sum_b at[q, b] tmp[p, b]
                        _rows4x6(y, pixel + grp * og, c_out, tmp, p * 6 * width + grp * kb, width, at, kb)
                        continue
                    if whole:
                        _rows2x4(y, pixel + grp * og, c_out, tmp, p * 4 * width + grp * kb, width, at, kb)
                        continue
                    for q in range(ow - col * m):  # a tile cropped on the right
                        _combine(y, pixel + q * c_out + grp * og, tmp, p * alpha * width + grp * kb, width, at[q],
                                 kb)


@njit(inline="always", nogil=True)
def _rows6x3(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(6, 3)``, ``c < n``."""
    m00, m01, m02 = mat[0, 0], mat[0, 1], mat[0, 2]
    m10, m11, m12 = mat[1, 0], mat[1, 1], mat[1, 2]
    m20, m21, m22 = mat[2, 0], mat[2, 1], mat[2, 2]
    m30, m31, m32 = mat[3, 0], mat[3, 1], mat[3, 2]
    m40, m41, m42 = mat[4, 0], mat[4, 1], mat[4, 2]
    m50, m51, m52 = mat[5, 0], mat[5, 1], mat[5, 2]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2
        out[_index(dst + 4 * ostep + c)] = m40 * d0 + m41 * d1 + m42 * d2
        out[_index(dst + 5 * ostep + c)] = m50 * d0 + m51 * d1 + m52 * d2


@njit(inline="always", nogil=True)
def _rows4x3(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(4, 3)``, ``c < n``."""
    m00, m01, m02 = mat[0, 0], mat[0, 1], mat[0, 2]
    m10, m11, m12 = mat[1, 0], mat[1, 1], mat[1, 2]
    m20, m21, m22 = mat[2, 0], mat[2, 1], mat[2, 2]
    m30, m31, m32 = mat[3, 0], mat[3, 1], mat[3, 2]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2


@njit(inline="always", nogil=True)
def _rows6x4(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(6, 4)``, ``c < n``."""
    m00, m01, m02, m03 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3]
    m10, m11, m12, m13 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3]
    m20, m21, m22, m23 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3]
    m30, m31, m32, m33 = mat[3, 0], mat[3, 1], mat[3, 2], mat[3, 3]
    m40, m41, m42, m43 = mat[4, 0], mat[4, 1], mat[4, 2], mat[4, 3]
    m50, m51, m52, m53 = mat[5, 0], mat[5, 1], mat[5, 2], mat[5, 3]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        d2 = src[_index(start + 2 * sstep + c)]
        d3 = src[_index(start + 3 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1 + m32 * d2 + m33 * d3
        out[_index(dst + 4 * ostep + c)] = m40 * d0 + m41 * d1 + m42 * d2 + m43 * d3
        out[_index(dst + 5 * ostep + c)] = m50 * d0 + m51 * d1 + m52 * d2 + m53 * d3


@njit(inline="always", nogil=True)
def _rows4x2(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(4, 2)``, ``c < n``."""
    m00, m01 = mat[0, 0], mat[0, 1]
    m10, m11 = mat[1, 0], mat[1, 1]
    m20, m21 = mat[2, 0], mat[2, 1]
    m30, m31 = mat[3, 0], mat[3, 1]
    for c in range(n):
        d0 = src[_index(start + 0 * sstep + c)]
        d1 = src[_index(start + 1 * sstep + c)]
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1
        out[_index(dst + 3 * ostep + c)] = m30 * d0 + m31 * d1


@_jit
def gradient_transform(gy, a, z, n0, nb, r0, nr, tw, frame_row=0, frame_rows=0):  # pragma: no cover - compiled
    """``z[e, t, o] = (A dy_t A^T)[e]`` for the output-gradient tiles of samples ``n0..``, tile rows ``r0..``.

    The weight gradient's transform (the adjoint of the output transform): ``gy`` is the NCHW
    output gradient ``(N, C_out, OH, OW)`` (C-contiguous), ``a`` the ``(alpha, m)`` matrix ``A``,
    ``z`` ``(alpha^2, T, C_out)`` flattened; tile ``(r, col)`` holds ``gy[..., r*m:(r+1)*m,
    col*m:(col+1)*m]``, zeros where it overhangs. Each task (a sample's tile row) moves its band of
    ``m`` rows to channels-last first, like :func:`input_transform`.

    With ``frame_rows`` > 0, ``gy`` holds frames stacked along its rows (a 5-D gradient
    ``(N, C_out, D, OH, OW)`` seen as ``(N, C_out, D*OH, OW)``) and the tiles are those of the
    ``frame_rows`` rows from row ``frame_row`` (one frame).
    """
    c_out, all_rows, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    oh = frame_rows if frame_rows > 0 else all_rows
    gf = gy.reshape(-1)
    alpha, m = a.shape[0], a.shape[1]
    tiles = nb * nr * tw
    wp = tw * m
    for row in prange(nb * nr):
        n = n0 + row // nr
        r = r0 + row % nr
        band = np.empty(m * wp * c_out, dtype=z.dtype)  # (m, wp, C_out)
        line = np.empty(16 * ow, dtype=z.dtype)
        for i in range(m):
            src = r * m + i
            base = i * wp * c_out
            if src >= oh:
                for k in range(wp * c_out):
                    band[_index(base + k)] = 0
                continue
            for k in range(ow * c_out, wp * c_out):
                band[_index(base + k)] = 0
            for c0 in range(0, c_out, 16):
                c1 = min(c_out, c0 + 16)
                for c in range(c0, c1):  # contiguous rows of the gradient first, then the transposition in L1
                    first = ((n * c_out + c) * all_rows + frame_row + src) * ow
                    for j in range(ow):
                        line[_index((c - c0) * ow + j)] = gf[_index(first + j)]
                for j in range(ow):
                    for c in range(c0, c1):
                        band[_index(base + j * c_out + c)] = line[_index((c - c0) * ow + j)]
        tmp = np.empty(alpha * m * c_out, dtype=z.dtype)  # (A dy)[p, j, o]
        for col in range(tw):
            t = row * tw + col
            corner = col * m * c_out
            # tmp[p, j] = sum_i a[p, i] dy[i, j], then z[p*alpha + q, t] = sum_j a[q, j] tmp[p, j]
            if alpha == 6:
                for j in range(4):
                    _rows6x4(tmp, j * c_out, 4 * c_out, band, corner + j * c_out, wp * c_out, a, c_out)
                for p in range(6):
                    _rows6x4(z, (p * 6 * tiles + t) * c_out, tiles * c_out, tmp, p * 4 * c_out, c_out, a, c_out)
            else:
                for j in range(2):
                    _rows4x2(tmp, j * c_out, 2 * c_out, band, corner + j * c_out, wp * c_out, a, c_out)
                for p in range(4):
                    _rows4x2(z, (p * 4 * tiles + t) * c_out, tiles * c_out, tmp, p * 2 * c_out, c_out, a, c_out)


@_jit
def weight_transform(w, g, u, og, k0):  # pragma: no cover - compiled
    """``u[a*alpha + b, grp, c, k] = (G w[grp*og + k0 + k, c] G^T)[a, b]`` in float64, rounded once into ``u``.

    ``w`` is the weight ``(C_out, C_in/g, 3, 3)`` as given (any strides: the input gradient's flipped,
    transposed view is read without a copy), ``g`` the ``(alpha, 3)``
    float64 matrix ``G``, ``u`` ``(alpha^2, G, C_in/g, kb)`` (C-contiguous): output channels
    ``k0 .. k0+kb`` of each group (``og`` per group), all of them when ``k0 = 0`` and ``kb = og``.
    Each task (a group's input channel) gathers its ``kb`` filters' 9 taps into ``(9, kb)``
    float64 rows, then ``G w`` and ``(G w) G^T`` are straight-line sums over ``kb`` contiguous
    filters (vectorised), in the order ``g_0 w_0 + g_1 w_1 + g_2 w_2``.
    """
    cg, kb = u.shape[2], u.shape[3]
    groups = u.shape[1]
    alpha = g.shape[0]
    uf = u.reshape(-1)
    plane = groups * cg * kb  # u's stride between tile elements
    for task in prange(groups * cg):
        grp = task // cg
        c = task - grp * cg
        taps = np.empty(9 * kb, dtype=np.float64)  # (3, 3, kb)
        for k in range(kb):
            o = grp * og + k0 + k
            for i in range(3):
                for j in range(3):
                    taps[_index((i * 3 + j) * kb + k)] = np.float64(w[o, c, i, j])
        tmp = np.empty(alpha * 3 * kb, dtype=np.float64)  # (G w)[a, j, k]
        dst = task * kb
        if alpha == 6:
            for j in range(3):  # tmp[a, j] = sum_i g[a, i] w[i, j]
                _rows6x3(tmp, j * kb, 3 * kb, taps, j * kb, 3 * kb, g, kb)
            for a in range(6):  # u[a*alpha + b] = sum_j g[b, j] tmp[a, j]
                _rows6x3(uf, a * 6 * plane + dst, plane, tmp, a * 3 * kb, kb, g, kb)
        else:
            for j in range(3):
                _rows4x3(tmp, j * kb, 3 * kb, taps, j * kb, 3 * kb, g, kb)
            for a in range(4):
                _rows4x3(uf, a * 4 * plane + dst, plane, tmp, a * 3 * kb, kb, g, kb)


@njit(inline="always", nogil=True)
def _rows3x6(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(3, 6)``, ``c < n``."""
    m00, m01, m02, m03, m04, m05 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3], mat[0, 4], mat[0, 5]
    m10, m11, m12, m13, m14, m15 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3], mat[1, 4], mat[1, 5]
    m20, m21, m22, m23, m24, m25 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3], mat[2, 4], mat[2, 5]
    for c in range(n):
        d0 = np.float64(src[_index(start + 0 * sstep + c)])
        d1 = np.float64(src[_index(start + 1 * sstep + c)])
        d2 = np.float64(src[_index(start + 2 * sstep + c)])
        d3 = np.float64(src[_index(start + 3 * sstep + c)])
        d4 = np.float64(src[_index(start + 4 * sstep + c)])
        d5 = np.float64(src[_index(start + 5 * sstep + c)])
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3 + m04 * d4 + m05 * d5
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3 + m14 * d4 + m15 * d5
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3 + m24 * d4 + m25 * d5


@njit(inline="always", nogil=True)
def _rows3x4(out, dst, ostep, src, start, sstep, mat, n):  # pragma: no cover - compiled
    """``out[dst + a*ostep + c] = sum_i mat[a, i] * src[start + i*sstep + c]``, ``mat`` ``(3, 4)``, ``c < n``."""
    m00, m01, m02, m03 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3]
    m10, m11, m12, m13 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3]
    m20, m21, m22, m23 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3]
    for c in range(n):
        d0 = np.float64(src[_index(start + 0 * sstep + c)])
        d1 = np.float64(src[_index(start + 1 * sstep + c)])
        d2 = np.float64(src[_index(start + 2 * sstep + c)])
        d3 = np.float64(src[_index(start + 3 * sstep + c)])
        out[_index(dst + 0 * ostep + c)] = m00 * d0 + m01 * d1 + m02 * d2 + m03 * d3
        out[_index(dst + 1 * ostep + c)] = m10 * d0 + m11 * d1 + m12 * d2 + m13 * d3
        out[_index(dst + 2 * ostep + c)] = m20 * d0 + m21 * d1 + m22 * d2 + m23 * d3


@_jit
def weight_gradient_transform(du, gt, gw):  # pragma: no cover - compiled
    """``gw[grp*og + o, c, i, j] = (G^T dU[:, grp, c, o] G)[i, j]`` in float64, rounded once into ``gw``.

    The last step of the Winograd weight gradient (:func:`.winograd.weight_grad`): ``du`` is
    ``(alpha^2, G, C_in/g, C_out/g)`` (C-contiguous), ``gt`` the ``(3, alpha)`` float64 matrix ``G^T``,
    ``gw`` the ``(C_out, C_in/g, 3, 3)`` result. Each task (a group's input channel) reads its
    ``alpha^2`` rows of ``og`` contiguous values, sums ``G^T dU`` then ``(G^T dU) G`` over them
    (straight-line, vectorised over the output channels), and writes its ``og`` filters' 9 taps.
    """
    groups, cg, og = du.shape[1], du.shape[2], du.shape[3]
    alpha = gt.shape[1]
    duf = du.reshape(-1)
    plane = groups * cg * og
    for task in prange(groups * cg):
        grp = task // cg
        c = task - grp * cg
        base = task * og
        tmp = np.empty(3 * alpha * og, dtype=np.float64)  # (G^T dU)[i, b, o]
        res = np.empty(9 * og, dtype=np.float64)  # [i*3 + j, o]
        if alpha == 6:
            for b in range(6):  # tmp[i, b] = sum_a gt[i, a] dU[a*alpha + b]
                _rows3x6(tmp, b * og, 6 * og, duf, base + b * plane, 6 * plane, gt, og)
            for i in range(3):  # res[i, j] = sum_b gt[j, b] tmp[i, b]
                _rows3x6(res, i * 3 * og, og, tmp, i * 6 * og, og, gt, og)
        else:
            for b in range(4):
                _rows3x4(tmp, b * og, 4 * og, duf, base + b * plane, 4 * plane, gt, og)
            for i in range(3):
                _rows3x4(res, i * 3 * og, og, tmp, i * 4 * og, og, gt, og)
        for o in range(og):
            for i in range(3):
                for j in range(3):
                    gw[grp * og + o, c, i, j] = res[_index((i * 3 + j) * og + o)]



def one_thread(task):
    """``task`` run with numba's thread count set to 1 on the calling thread (numba's setting is per thread),
    then set back: a per-thread share of :mod:`.winograd` launches the kernels there, one thread each. The
    parallel kernels are used, not copies compiled without ``parallel``: those measured 1.5-2.3x slower
    (the input transform of 2x256 channels at 56x56: 3.9 ms parallel on one thread, 9.2 ms serial)."""

    def run():
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return task()
        finally:
            numba.set_num_threads(before)

    return run
