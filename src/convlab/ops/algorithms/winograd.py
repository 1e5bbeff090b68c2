"""Winograd minimal filtering F(m x m, 3 x 3) for stride-1, undilated 3x3 (and 3 / 3x3x3) kernels.

Lavin & Gray, "Fast algorithms for convolutional neural networks",
arXiv:1509.09308 (CVPR 2016). A tile of ``alpha = m + 2`` inputs per
dimension gives ``m`` outputs of a 3-tap correlation with ``alpha``
multiplications instead of ``3m``::

    y = A^T [ (G g) * (B^T d) ]                        (1-D)
    Y = A^T [ (G g G^T) * (B^T d B) ] A                 (2-D, separable)

and since the element-wise product is summed over the input channels, that sum
is ``alpha^2`` independent matrix products ``M[e] = V[e] @ U[e]``,
``(tiles, C_in) @ (C_in, C_out)``: the multiplications drop from ``9`` to
``alpha^2 / m^2`` per output and input channel (4 for F(2x2,3x3), 2.25 for
F(4x4,3x3)), and those that remain run in one batched GEMM.

The pipeline, all of it batched matrix products on stacked tiles (nothing
loops over tiles in Python):

1. the input is copied once into a zero-padded channels-last buffer
   ``(N, *S, C)`` with room for whole tiles;
2. the overlapping ``alpha^d`` tiles (step ``m``) are a stride-tricks view;
   a block of them is gathered as ``(alpha,)*d + (tiles, C)`` (runs of ``C``
   contiguous elements);
3. ``B^T d B``: one GEMM with the Kronecker product ``B^T (x) B^T``,
   ``(alpha^2, alpha^2) @ (alpha^2, tiles * C)`` (in 3-D, the 2-D product and one
   more along the third axis);
4. ``alpha^d`` GEMMs ``(tiles, C_in/g) @ (C_in/g, C_out/g)`` per group
   (one ``np.matmul`` over the stacked tile elements);
5. ``A^T M A`` the same way as 3, then the ``m^d`` outputs of each tile are
   written into a channels-last output, returned as an NCHW view;
6. the weights: ``G g G^T`` as one GEMM with ``G (x) G``, in float64.

Work is blocked over samples (or tile rows of one sample) so that the
transformed tiles of a block, about :data:`BLOCK_BYTES`, stay in the cache.

Compiled transforms (the optional ``fast`` extra, numba; :mod:`._winograd_numba`).
Profiled single-threaded on an Intel Xeon (AVX-512, float32, batch 8), the
NumPy pipeline above spent two thirds of its time outside the products on
ResNet-18's 64-channel layer at 56x56 (padding 2.9 ms, gather 4.5, ``B^T d B``
8.3, GEMMs 7.7, ``A^T M A`` 3.3, scatter 2.9) and half of it on VGG-16's
conv3_2; the Kronecker products multiply mostly by zeros (26 non-zeros of 36
in ``B^T``, 36 x 36 products per tile element), and every phase is a pass
over arrays larger than the cache. Where numba imports, 2-D float32/float64
calls run instead (:func:`_run_compiled`):

* per block of tiles (:data:`COMPILED_BLOCK_BYTES`, at least :data:`MIN_TILES`
  tiles so the GEMMs keep their rate), the input transform reads the NCHW input
  itself: each tile row's band of ``alpha`` padded rows is moved to channels-last
  in an L2-sized scratch buffer, and its tiles are transformed from there into
  ``V`` ``(alpha^2, tiles, C_in)`` (no padded copy of the whole input: it cost a
  pass over memory and a buffer the size of the input);
* per block of output channels (:func:`_channel_blocks`, about
  :data:`CHANNEL_BLOCK_BYTES` of transformed weights and products, at least
  :data:`MIN_CHANNELS` columns), the batched matmul gives ``M`` for those channels
  and the output transform writes them straight into the channels-last result;
* the weight transform (float64 sums, rounded once) runs once, block by block, or,
  where the map is one block of tiles (small maps: ResNet's 14x14 and 7x7 layers),
  inside the channel loop just before the block's products, so ``U`` (``alpha^2 / 9``
  times the weights: 4 times in F(4x4)) never exists whole and stays in the cache;
* the transforms of whole tiles are straight-line sums over the channels
  (:mod:`._winograd_numba`), vectorised.

Measured on ResNet-18's layers (one thread, a loaded 2-core Xeon, process CPU
time, F(4x4)), before and after these changes: layer3 (256 channels, 14x14)
18.1 -> 10 ms, layer4 (512, 7x7) 31.7 -> 16.5 ms (torch 12-13 ms on both); the
weight transform, 6 ms of layer4's 16.5, is bounded by writing ``U``.

3-D calls with one group run compiled too (:func:`_run_compiled_3d`), as 2-D
tiles of the frames: output frame ``od`` is the sum over the depth taps ``kd`` of
2-D 3x3 convolutions of input frames ``od + kd - pd``, and in the Winograd
domain that sum joins the channel sum (``3 C_in`` stacked channels, one product
per tile element). Each input frame is transformed into a ring of frame slots
(mirrored, so an output frame's three input frames are always adjacent slots: a
strided matrix for the products); the weights of the three taps are transformed
once. Per output and input channel that is ``3 alpha^2 / m^2``
multiplications (6.75 for F(4x4), against 27 direct and 3.4 in F(4x4x4) tiles),
with 2-D transforms instead of Kronecker products over 216-element tiles and no
padded copy: measured on a 3x3x3 64->64 layer (batch 2, 8 frames of 56x56, one thread,
a loaded Xeon) the NumPy pipeline's F(4) 65 ms became 42 ms (torch 65-79 ms),
with 27 MiB extra memory instead of 80. The weight gradient is its adjoint
(:func:`_weight_grad_3d`): 60 ms against the direct GEMM's 142 (torch 76). The
NumPy pipeline remains for 1-D and grouped 3-D calls, complex numbers, the
error bound, and every call where numba is not installed
(``conv_general(..., compiled=False)`` forces it).

Several threads. Splitting each product stack among the threads
(:func:`._products.matmul_stack`) and each compiled kernel's tile rows put a
barrier after every phase of every block: about 13 on ResNet-18's 14x14 layer,
66 per 3x3x3 call (10-20 per output frame), each one a wait whenever another
process holds a core, which made the calls slow and bimodal on a busy machine.
Where numba's threading layer takes launches from several threads, each thread
now runs a share of its own (:func:`._products.run_shares`; the compiled kernels
on one numba thread there, :func:`._winograd_numba.one_thread`, the products on
one BLAS thread) and the threads meet once or twice per call: the output
channels on small maps (one block of tiles: :func:`_pipelines`, the weight
transform of each thread's channels included), the blocks of tiles on large
ones (:data:`TILE_SHARES`, ``U`` first on all threads), and (sample, block of
tile rows) units in 3-D, each unit with its own ring (a ``threads``-th of the
rows) and, in the weight gradient, its own ``dU``, added up at the end. The
2-D weight gradient keeps the split stacks (a second ``dU`` would be 4-9 MB on
256-512 channels); each block's products are added into ``dU`` on the threads
that multiplied them (:func:`._products.matmul_accumulate`) and ``G^T dU G`` is
compiled (:func:`._winograd_numba.weight_gradient_transform`).

Gradients. The input gradient of a stride-1 3x3 layer is itself such a call
(the flipped, transposed weights; the ops pass a view, which the compiled
weight transform reads without a copy), so the planner prices it with
:func:`estimate` like a forward. The weight gradient is the adjoint of the
algorithm with respect to ``U`` (:func:`weight_grad`): ``alpha^2`` GEMMs
``V[e]^T Z[e]`` with ``Z = A dy A^T`` the transformed output-gradient tiles,
then ``G^T dU G`` in float64. The ops run it where a Winograd algorithm is
named, or where ``auto`` estimates it faster than the direct im2col + GEMM
gradient (:func:`weight_grad_tile`, :func:`weight_grad_estimate`) and the data
is finite. Its float32 error, measured on ResNet-18 and VGG-16 layer shapes
against float64: 2-3e-6 of the largest value for F(4x4), 6e-7 for F(2x2)
(direct GEMM: 4-9e-7).

The transforms come from the Toom-Cook construction on interpolation points
(Lavin & Gray, section 4; the transposition of a linear-convolution
algorithm, Winograd 1980): with points ``p_i`` and infinity, ``G`` and
``A^T`` evaluate polynomials at the points and ``B^T`` is the transposed
inverse of the Vandermonde matrix. F(2,3) uses Lavin & Gray's points
``0, 1, -1``. For F(4,3) the points ``0, 1, -1, 2, -1/2`` are used instead
of Lavin & Gray's ``0, +-1, +-2``: in float32 they measured 2-4x smaller
errors here, the effect of point choice studied by Barabasz, Anderson,
Soodhalter & Gregg, "Error analysis and improving the accuracy of Winograd
convolution for deep neural networks", ACM TOMS 46(4), 2020
(arXiv:1803.10986). The fractions go into ``G``, which is applied to the
weights in float64, so ``B^T`` and ``A^T`` hold small integers and powers of
two.

Accuracy. Let ``bound = |A^T| [ sum_c (|G| |g_c| |G^T|) * (|B^T| |d_c| |B|) ] |A|``,
the algorithm run on absolute values (:func:`error_bound` computes it). Each
transform is one matrix product whose entries sum ``alpha^d`` terms, the channel
sum has ``C_in/g`` terms and ``U`` is rounded once from float64, so with
Higham's ``gamma_n = n u / (1 - n u)`` (``u`` the unit roundoff, ``eps/2``;
Higham, "Accuracy and stability of numerical algorithms", 2002, lemma 3.3 and
section 3.5 for the sums of products) the computed output satisfies,
elementwise and for any summation order of the BLAS,

    |y - y_exact| <= gamma_(2 alpha^d + C_in/g + 1) * bound.

That worst case grows with the channel count; measured errors do not come
close. On normal and uniform random data with 1 to 1024 input channels the
largest ``|y - y_exact| / (eps * bound)`` was 1.2 for F(2x2,3x3) and 0.6 for
F(4x4,3x3), and the largest error relative to the largest output, in float32,
was 8e-7 for F(2x2,3x3), 4.9e-6 for F(4x4,3x3) and 6e-7 for direct summation
(gemm); in float64, 2e-15 and 7e-15. So F(4x4,3x3) loses about 3 bits to
direct summation, and stays four times under the float32 tolerance of the test
suite (2e-5 of the largest output): ``auto`` uses it in float32. The error grows
with the tile (F(6x6,3x3) measured 1.5e-5, which is why it is not offered).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._common import load_kernels
from ._costs import MACHINE, flops_per_mac, fmt, gemm_rate, gemm_seconds, stream
from ._layout import Call, as_view, block_bytes, check_applies, empty_result, padded_channels_last
from ._products import available as products_available
from ._products import matmul_accumulate, matmul_stack, run_shares, share_ranges, split_products
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM_F2", "ALGORITHM_F4", "BLOCK_BYTES", "CHANNEL_BLOCK_BYTES", "COMPILED_BLOCK_BYTES",
           "MIN_CHANNELS", "MIN_TILES", "POINTS", "WEIGHT_CHUNK", "conv_general", "conv_general_f2",
           "conv_general_f4", "error_bound", "estimate", "transforms", "unsupported", "uses_numba",
           "weight_grad", "weight_grad_estimate", "weight_grad_tile"]

#: Interpolation points (infinity is implied) of F(m, 3) for each output tile size m.
POINTS: dict[int, tuple[Fraction, ...]] = {
    2: (Fraction(0), Fraction(1), Fraction(-1)),
    4: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-1, 2)),
}

#: Target size of the transformed tiles of one block (input or output side).
BLOCK_BYTES = 8 * 2**20

R = 3  # the kernel size these transforms are for


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    n = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        p = rows[col][col]
        rows[col] = [v / p for v in rows[col]]
        for i in range(n):
            if i != col and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[col], strict=True)]
    return [row[n:] for row in rows]


@cache
def transforms(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(m, 3) in float64: shapes ``(m, alpha)``, ``(alpha, 3)``, ``(alpha, alpha)``.

    Toom-Cook: the correlation ``y = M_g^T d`` is the transpose of the linear
    convolution ``c = M_g u = Q [(P_g g) * (P_u u)]``, with ``P_u``, ``P_g``
    evaluating polynomials at the points (and infinity: the leading
    coefficient) and ``Q = V^-1`` interpolating; so ``A^T = P_u^T``,
    ``G = P_g``, ``B^T = Q^T``. Each row of ``B^T`` is then scaled to
    the smallest integers and ``G``'s row divided by the same factor.
    """
    points = POINTS[m]
    alpha = m + R - 1

    def evaluation(columns: int) -> list[list[Fraction]]:
        rows = [[p ** j for j in range(columns)] for p in points]
        return rows + [[Fraction(0)] * (columns - 1) + [Fraction(1)]]

    p_u, p_g = evaluation(m), evaluation(R)
    q = _inverse(evaluation(alpha))
    a_t = [[p_u[i][j] for i in range(alpha)] for j in range(m)]
    b_t = [[q[j][i] for j in range(alpha)] for i in range(alpha)]
    g = [row[:] for row in p_g]
    for i in range(alpha):
        scale = Fraction(math.lcm(*(v.denominator for v in b_t[i])))
        scale /= math.gcd(*(int(v * scale) for v in b_t[i]))  # the smallest integers
        b_t[i] = [v * scale for v in b_t[i]]
        g[i] = [v / scale for v in g[i]]
    as_array = lambda rows: np.array([[float(v) for v in row] for row in rows])  # noqa: E731
    return as_array(a_t), as_array(g), as_array(b_t)


def unsupported(call: Call) -> str | None:
    """Winograd F(m, 3) needs 3-tap kernels in 1-3 dimensions, stride 1, no dilation of either kind, floats."""
    if call.nd not in (1, 2, 3) or any(k != R for k in call.kernel):
        return f"it needs a 3, 3x3 or 3x3x3 kernel, got {call.kernel}"
    if any(s != 1 for s in call.stride):
        return f"it needs stride 1, got stride={call.stride}"
    if any(d != 1 for d in call.dilation):
        return f"it needs dilation 1, got dilation={call.dilation}"
    if any(d != 1 for d in call.input_dilation):
        return (f"it needs input_dilation 1 (in a transposed convolution: stride 1), "
                f"got input_dilation={call.input_dilation}")
    if call.dtype.kind not in "fc":
        return (f"it needs a floating-point dtype, got {call.dtype} (its transforms have fractions, so "
                f"integer results would not be exact)")
    return None


def error_bound(x: np.ndarray, weight: np.ndarray, padding: Sequence[tuple[int, int]], groups: int,
                m: int) -> np.ndarray:
    """The rigorous bound of ``|y - y_exact|`` of F(m, 3) on ``x``, elementwise (see the module docstring).

    ``gamma_(2 alpha^d + C_in/g + 1) * bound``, with ``bound`` F(m, 3) run in
    float64 on ``|x|``, ``|w|`` with ``|A^T|``, ``|G|``, ``|B^T|`` and ``u``
    the unit roundoff of the dtype of ``x``.
    """
    nd = weight.ndim - 2
    call = Call.of(x, weight, (1,) * nd, padding, (1,) * nd, (1,) * nd, groups)
    unit = np.finfo(call.dtype).eps / 2
    terms = 2 * (m + R - 1) ** nd + call.cg + 1
    gamma = terms * unit / (1 - terms * unit)
    magnitude = _run(call, np.abs(x).astype(np.float64), np.abs(weight).astype(np.float64), m,
                     absolute=True)
    return gamma * np.asarray(magnitude)


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
    *,
    m: int = 4,
    compiled: bool = True,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, with F(m, 3) tiles (m = 2 or 4).

    The compiled transforms where :func:`uses_numba` says so (unless ``compiled`` is False), else the
    NumPy pipeline. The result may be a transposed view of a channels-last buffer.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies(f"winograd_f{m}", unsupported(call))
    if m not in POINTS:
        raise ValueError(f"conv_general: Winograd output tile `m` (={m}) must be one of {tuple(POINTS)}")
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    if compiled and uses_numba(call):
        return _run_compiled(call, x, weight, m) if call.nd == 2 else _run_compiled_3d(call, x, weight, m)
    return _run(call, x.astype(call.dtype, copy=False), weight, m)


def conv_general_f2(x, weight, stride, padding, dilation, input_dilation, groups):
    """Winograd F(2x2, 3x3) (F(2, 3), F(2x2x2, 3x3x3) in 1-D and 3-D)."""
    return conv_general(x, weight, stride, padding, dilation, input_dilation, groups, m=2)


def conv_general_f4(x, weight, stride, padding, dilation, input_dilation, groups):
    """Winograd F(4x4, 3x3) (F(4, 3), F(4x4x4, 3x3x3) in 1-D and 3-D)."""
    return conv_general(x, weight, stride, padding, dilation, input_dilation, groups, m=4)


# --------------------------------------------------------------------------- the compiled transforms

_kernels = None  # the module ._winograd_numba once imported; False when numba does not import
_NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _load_kernels():
    """The compiled transforms' module, imported on first use; None without numba."""
    global _kernels
    _kernels = load_kernels(_kernels, "_winograd_numba")
    return _kernels or None


def uses_numba(call: Call) -> bool:
    """Whether :func:`conv_general` runs ``call`` with the compiled transforms: 2-D, or 3-D with one group
    (:func:`_run_compiled_3d`); float32/float64; numba imports."""
    return ((call.nd == 2 or (call.nd == 3 and call.groups == 1)) and call.dtype in _NUMBA_DTYPES
            and _load_kernels() is not None)


def _run_compiled(call: Call, x: np.ndarray, weight: np.ndarray, m: int) -> np.ndarray:
    """F(m x m, 3x3) with the compiled transforms of :mod:`._winograd_numba` (2-D, float32/float64).

    Blocks of samples or tile rows (:func:`_blocks`, sized by the transformed input ``V``); per block,
    the input transform writes ``V`` ``(alpha^2, tiles, C_in)`` straight from the NCHW input (no padded
    copy), then per block of output channels (:func:`_channel_blocks`) one batched matmul gives
    ``M`` ``(alpha^2, tiles, kb)`` and the output transform writes those channels of the block's
    outputs into the channels-last result (cropped there, so no partial tile is stored). With a single
    block of tiles (small maps) the weights are transformed per block of output channels, just before
    its products, so ``U`` never exists whole; otherwise ``U`` is transformed once, block by block.
    """

    kernels = _load_kernels()
    n, groups, cg, og, c_in, c_out, dtype = call.batch, call.groups, call.cg, call.og, call.c_in, call.c_out, call.dtype
    a_t, g, b_t = transforms(m)
    alpha = m + R - 1
    e = alpha * alpha
    out = call.out_size
    tiles = tuple(-(-o // m) for o in out)
    y = np.empty((n,) + out + (c_out,), dtype=dtype)  # (N, OH, OW, C_out)
    blocks = _blocks(n, tiles, e * c_in * dtype.itemsize, COMPILED_BLOCK_BYTES, MIN_TILES)
    most = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * tiles[1]
    channel_blocks = _channel_blocks(og, cg * groups, most, dtype.itemsize)
    widest = max(k1 - k0 for k0, k1 in channel_blocks)
    bt_d, at_d = b_t.astype(dtype), a_t.astype(dtype)
    y_flat, y_shape = y.reshape(-1), np.array(y.shape, dtype=np.int64)
    xc = np.ascontiguousarray(x, dtype=dtype)
    # (C_out, Cg, 3, 3), a view where it is one already (the input gradient's flipped weight); the cast is
    # exact (the call's dtype is the result type of x and the weight)
    wc = weight.astype(dtype, copy=False)
    (ph, _), (pw, _) = call.padding
    hv, wv = call.padded_size
    fused = len(blocks) == 1 and len(channel_blocks) > 1

    def weights(k0: int, k1: int, into: np.ndarray | None = None) -> np.ndarray:
        u = np.empty((e, groups, cg, k1 - k0), dtype=dtype) if into is None else into
        kernels.weight_transform(wc, g, u, og, k0)
        return u

    with kernels.launch() as threads, split_products(threads):
        if len(blocks) == 1 and _shares(kernels, threads):
            _pipelines(kernels, call, xc, wc, y, m, threads)
            return y.transpose(0, 3, 1, 2)
        if TILE_SHARES and not fused and len(blocks) > 1 and _shares(kernels, threads):
            # Per-thread shares of the blocks of tiles: U once (all threads), then each thread transforms,
            # multiplies and writes its own blocks (serial kernels, one BLAS thread), meeting the others only
            # at the end instead of after every kernel and product stack of every block.
            u_blocks = [weights(k0, k1) for k0, k1 in channel_blocks]
            workers = min(threads, len(blocks))
            bounds = [len(blocks) * i // workers for i in range(workers + 1)]

            def share(part: list[tuple[int, int, int, int]]) -> None:
                v_buffer = np.empty(e * most * c_in, dtype=dtype)
                m_buffer = np.empty(e * most * groups * widest, dtype=dtype)
                for n0, n1, r0, r1 in part:
                    count = (n1 - n0) * (r1 - r0) * tiles[1]
                    v = v_buffer[:e * count * c_in]
                    kernels.input_transform(xc, bt_d, v, n0, n1 - n0, r0, r1 - r0, tiles[1], m, ph, pw, hv,
                                                   wv)
                    v_view = v.reshape(e, count, groups, cg).transpose(0, 2, 1, 3)  # (alpha^2, G, tiles, Cg)
                    for (k0, k1), u in zip(channel_blocks, u_blocks, strict=True):
                        kb = k1 - k0
                        prod = m_buffer[:e * count * groups * kb]
                        np.matmul(v_view, u, out=prod.reshape(e, count, groups, kb).transpose(0, 2, 1, 3))
                        kernels.output_transform(prod, at_d, y_flat, y_shape, n0, n1 - n0, r0, r1 - r0,
                                                        tiles[1], m, groups, kb, og, k0)

            run_shares([kernels.one_thread(lambda part=blocks[a:b]: share(part))
                        for a, b in itertools.pairwise(bounds)], workers)
            return y.transpose(0, 3, 1, 2)
        v_buffer = np.empty(e * most * c_in, dtype=dtype)
        m_buffer = np.empty(e * most * groups * widest, dtype=dtype)
        if fused:
            u_scratch = np.empty(e * groups * cg * widest, dtype=dtype)
            u_blocks = None
        else:
            u_blocks = [weights(k0, k1) for k0, k1 in channel_blocks]  # U, in (alpha^2, G, Cg, kb) blocks
        for n0, n1, r0, r1 in blocks:
            count = (n1 - n0) * (r1 - r0) * tiles[1]
            v = v_buffer[:e * count * c_in]
            kernels.input_transform(xc, bt_d, v, n0, n1 - n0, r0, r1 - r0, tiles[1], m, ph, pw, hv, wv)
            v_view = v.reshape(e, count, groups, cg).transpose(0, 2, 1, 3)  # (alpha^2, G, tiles, Cg)
            for index, (k0, k1) in enumerate(channel_blocks):
                kb = k1 - k0
                if fused:
                    u = weights(k0, k1, u_scratch[:e * groups * cg * kb].reshape(e, groups, cg, kb))
                else:
                    u = u_blocks[index]
                prod = m_buffer[:e * count * groups * kb]
                # M[e, g] = V[e, g] @ U[e, g]: (alpha^2, G, tiles, Cg) @ (alpha^2, G, Cg, kb) -> (alpha^2, G, tiles, kb)
                matmul_stack(v_view, u, prod.reshape(e, count, groups, kb).transpose(0, 2, 1, 3), threads)
                kernels.output_transform(prod, at_d, y_flat, y_shape, n0, n1 - n0, r0, r1 - r0, tiles[1], m,
                                         groups, kb, og, k0)
    return y.transpose(0, 3, 1, 2)  # (N, C_out, OH, OW), a view


def _shares(kernels, threads: int) -> bool:
    """Whether work is split into per-thread shares: several threads, the products can be held to one BLAS
    thread each (threadpoolctl), and numba's threading layer takes launches from several threads at once."""
    return threads > 1 and products_available() and kernels.CONCURRENT_LAUNCHES


def _pipelines(kernels, call: Call, xc: np.ndarray, wc: np.ndarray, y: np.ndarray, m: int, threads: int) -> None:
    """One block of tiles (small maps) on ``threads`` threads: the input transform (all threads), then one
    pipeline per thread over its own share of the output channels.

    Each thread transforms its channels' weights, multiplies (``alpha^2`` GEMMs on one BLAS thread) and
    writes those channels' outputs (the compiled kernels on one thread each,
    :func:`._winograd_numba.one_thread`), so the threads meet once after the input transform and once
    at the end. Splitting the stack of ``alpha^2`` products instead (:func:`.matmul_stack`) put a
    barrier after every phase of every channel block, with the weight transform, a large share of the
    work on small maps, between them. Each thread has its own scratch for ``U`` and ``M``, so the blocks
    are narrower than :func:`_channel_blocks`'s: all threads' scratch together about
    :data:`CHANNEL_BLOCK_BYTES` (the extra memory of one thread), a multiple of 16 channels where that
    leaves 16 or more, and at least ``threads`` blocks. The transforms are those of the one-thread loop;
    the products are narrower GEMMs (equal to rounding).
    """
    n, groups, cg, og, c_in, dtype = call.batch, call.groups, call.cg, call.og, call.c_in, call.dtype
    a_t, g, b_t = transforms(m)
    e = (m + R - 1) ** 2
    tiles = tuple(-(-o // m) for o in call.out_size)
    count = n * tiles[0] * tiles[1]
    (ph, _), (pw, _) = call.padding
    hv, wv = call.padded_size
    per_channel = e * (groups * cg + count) * dtype.itemsize  # one channel's U and M (of every group)
    kb = max(1, CHANNEL_BLOCK_BYTES // threads // max(per_channel, 1))
    kb = min(og, kb - kb % 16 if kb >= 32 else kb, -(-og // threads))
    channel_blocks = [(k0, min(og, k0 + kb)) for k0 in range(0, og, kb)]
    widest = max(k1 - k0 for k0, k1 in channel_blocks)
    v = np.empty(e * count * c_in, dtype=dtype)
    kernels.input_transform(xc, b_t.astype(dtype), v, 0, n, 0, tiles[0], tiles[1], m, ph, pw, hv, wv)
    v_view = v.reshape(e, count, groups, cg).transpose(0, 2, 1, 3)  # (alpha^2, G, tiles, Cg)
    at_d = a_t.astype(dtype)
    y_flat, y_shape = y.reshape(-1), np.array(y.shape, dtype=np.int64)

    def pipeline(share: list[tuple[int, int]]) -> None:
        u_scratch = np.empty(e * groups * cg * widest, dtype=dtype)
        m_scratch = np.empty(e * count * groups * widest, dtype=dtype)
        for k0, k1 in share:
            kb = k1 - k0
            u = u_scratch[:e * groups * cg * kb].reshape(e, groups, cg, kb)
            kernels.weight_transform(wc, g, u, og, k0)
            prod = m_scratch[:e * count * groups * kb]
            np.matmul(v_view, u, out=prod.reshape(e, count, groups, kb).transpose(0, 2, 1, 3))
            kernels.output_transform(prod, at_d, y_flat, y_shape, 0, n, 0, tiles[0], tiles[1], m, groups,
                                            kb, og, k0)

    # contiguous shares of about equal width
    shares = [channel_blocks[s:t] for s, t in share_ranges(len(channel_blocks), threads) if t > s]
    run_shares([kernels.one_thread(lambda share=share: pipeline(share)) for share in shares], threads)


def _row_ranges(th: int, block: int, per_row: int) -> list[tuple[int, int]]:
    """Blocks ``(r0, r1)`` of ``th`` tile rows of ``per_row`` bytes each, about ``block`` bytes (at least one row)."""
    step = max(1, min(th, block // per_row))
    return [(r0, min(th, r0 + step)) for r0 in range(0, th, step)]


def _thread_units(n: int, th: int, tw: int, row_bytes: int, threads: int) -> tuple[list, int, list[int]]:
    """The 3-D paths' per-thread shares: ``(units, most, bounds)``.

    ``units`` are ``(sample, r0, r1)`` blocks of tile rows a ``threads``-th as large as one thread's block
    (all the threads' rings together take what one ring took), split further where samples are fewer than
    threads; ``most`` the largest block's tiles; thread ``i`` takes ``units[bounds[i]:bounds[i + 1]]``.
    ``row_bytes`` is one tile row's bytes of the ring.
    """
    row_blocks = _row_ranges(th, block_bytes(max(3 * COMPILED_BLOCK_BYTES, MIN_TILES * row_bytes // tw))
                             // threads, row_bytes)
    pieces = -(-threads // n)
    if n * len(row_blocks) < threads and th >= pieces:
        step = -(-th // pieces)
        row_blocks = [(r0, min(th, r0 + step)) for r0 in range(0, th, step)]
    units = [(s0, r0, r1) for s0 in range(n) for r0, r1 in row_blocks]
    most = max(r1 - r0 for r0, r1 in row_blocks) * tw
    workers = min(threads, len(units))
    return units, most, [len(units) * i // workers for i in range(workers + 1)]


def _run_compiled_3d(call: Call, x: np.ndarray, weight: np.ndarray, m: int) -> np.ndarray:
    """F(m x m, 3x3) over frames, summed over the 3 depth taps: a 3x3x3 convolution (one group, compiled).

    Output frame ``od`` is ``sum_kd conv2d(x[:, :, od + kd - pd], w[:, :, kd])``, and in the Winograd
    domain that sum joins the channel sum: ``M[e] = [V_od[e] V_od+1[e] V_od+2[e]] @ [U_0; U_1; U_2][e]``,
    one product ``(tiles, 3 C_in) @ (3 C_in, kb)`` per tile element. Per sample and block of tile rows,
    the padded frames are walked in order: frame ``p`` is transformed (by
    :func:`._winograd_numba.input_transform`, straight from the NCDHW input; zeros for the depth
    padding) into slot ``p % 3`` of a ring ``(alpha^2, tiles, 6, C_in)`` and, for ``p % 3 < 2``, into
    its mirror ``p % 3 + 3`` too, so the three frames of output frame ``od`` are always the three
    adjacent slots from ``od % 3``: a strided ``(tiles, 3 C_in)`` matrix, and the stacked weights
    ``U`` are transformed once in tap order (no rotations, no gathered or padded copy of the input).
    """

    kernels = _load_kernels()
    n, c_in, c_out, dtype = call.batch, call.c_in, call.c_out, call.dtype
    a_t, g, b_t = transforms(m)
    alpha = m + R - 1
    e = alpha * alpha
    od_count, oh, ow = call.out_size
    depth = call.x_shape[2]
    (pd, _), (ph, _), (pw, _) = call.padding
    hv, wv = call.padded_size[1:]
    th, tw = -(-oh // m), -(-ow // m)
    k = 3 * c_in
    y = np.empty((n, od_count, oh, ow, c_out), dtype=dtype)  # channels-last
    row_blocks = _row_ranges(th, block_bytes(max(3 * COMPILED_BLOCK_BYTES, MIN_TILES * e * k * dtype.itemsize)),
                             tw * e * k * dtype.itemsize)
    most = max(r1 - r0 for r0, r1 in row_blocks) * tw
    channel_blocks = _channel_blocks(c_out, k, most, dtype.itemsize)
    bt_d, at_d = b_t.astype(dtype), a_t.astype(dtype)
    y_flat = y.reshape(-1)
    y_shape = np.array((n * od_count, oh, ow, c_out), dtype=np.int64)
    xc = x.astype(dtype, copy=False)
    # (3 * C_out, C_in, 3, 3): the depth taps as the weight transform's groups, so U comes out (alpha^2, 3, C_in, kb)
    taps = weight.astype(dtype, copy=False).transpose(2, 0, 1, 3, 4).reshape(3 * c_out, c_in, R, R)
    with kernels.launch() as threads, split_products(threads):
        u_blocks = []
        for k0, k1 in channel_blocks:  # U = [U_0; U_1; U_2] per block of output channels: (alpha^2, 3 C_in, kb)
            u = np.empty((e, 3, c_in, k1 - k0), dtype=dtype)
            kernels.weight_transform(taps, g, u, c_out, k0)
            u_blocks.append(u.reshape(e, k, k1 - k0))
        shares = _shares(kernels, threads)

        def unit(s0: int, r0: int, r1: int, ring: np.ndarray, m_buffer: np.ndarray) -> None:
            """Every output frame of sample ``s0``'s tile rows ``r0..r1``: each kernel and product stack split
            among the threads, or, in a per-thread share, on this thread."""
            count = (r1 - r0) * tw
            v = ring[:e * count * 6 * c_in]
            slots = v.reshape(e, count, 6, c_in)
            for p in range(od_count + 2):  # padded frames, in order
                frame = p - pd
                for slot in ((p % 3, p % 3 + 3) if p % 3 < 2 else (p % 3,)):
                    if 0 <= frame < depth:
                        kernels.input_transform(xc[:, :, frame], bt_d, v, s0, 1, r0, r1 - r0, tw, m, ph, pw, hv, wv,
                                                6 * c_in, slot * c_in)
                    else:
                        slots[:, :, slot, :] = 0
                if p < 2:
                    continue
                od = p - 2
                first = od % 3
                window = slots[:, :, first:first + 3, :].reshape(e, count, k)  # (alpha^2, tiles, 3 C_in), strided
                for (k0, k1), u in zip(channel_blocks, u_blocks, strict=True):
                    kb = k1 - k0
                    prod = m_buffer[:e * count * kb].reshape(e, count, kb)
                    # (alpha^2, tiles, 3 C_in) @ (alpha^2, 3 C_in, kb) -> (alpha^2, tiles, kb)
                    matmul_stack(window, u, prod, 1 if shares else threads)
                    kernels.output_transform(prod.reshape(-1), at_d, y_flat, y_shape, s0 * od_count + od, 1, r0,
                                             r1 - r0, tw, m, 1, kb, c_out, k0)

        widest = max(k1 - k0 for k0, k1 in channel_blocks)
        if shares:
            # Per-thread shares of (sample, block of tile rows) units, each with a ring of its own: the threads
            # meet once at the end, not after each of the 10-20 kernels and product stacks of every output
            # frame. The blocks of tile rows a `threads`-th as large (all the rings together take what the one
            # ring took), and at least `threads` units: the tile rows are split further where samples are fewer.
            units, most, bounds = _thread_units(n, th, tw, tw * e * k * dtype.itemsize, threads)
            workers = len(bounds) - 1

            def share(part: list[tuple[int, int, int]]) -> None:
                ring = np.empty(e * most * 6 * c_in, dtype=dtype)
                m_buffer = np.empty(e * most * widest, dtype=dtype)
                for s0, r0, r1 in part:
                    unit(s0, r0, r1, ring, m_buffer)

            run_shares([kernels.one_thread(lambda part=units[a:b]: share(part))
                        for a, b in itertools.pairwise(bounds)], workers)
        else:
            ring = np.empty(e * most * 6 * c_in, dtype=dtype)
            m_buffer = np.empty(e * most * widest, dtype=dtype)
            for s0 in range(n):
                for r0, r1 in row_blocks:
                    unit(s0, r0, r1, ring, m_buffer)
    return y.transpose(0, 4, 1, 2, 3)  # (N, C_out, OD, OH, OW), a view


def weight_grad(xp: np.ndarray, gy: np.ndarray, groups: int, m: int = 4) -> np.ndarray:
    """The weight gradient of a stride-1, undilated 3x3 convolution by Winograd F(m x m, 3x3), compiled (2-D).

    ``xp`` is the padded input ``(N, C_in, H, W)``, ``gy`` the output gradient ``(N, C_out, H-2, W-2)``;
    the result ``gw[o, c, i, j] = sum_{n, p, q} gy[n, o, p, q] xp[n, g*Cg + c, p + i, q + j]``,
    ``(C_out, C_in/g, 3, 3)``. The adjoint of the forward's ``y = A^T [U * V] A`` with respect to
    ``U = G w G^T`` (Lavin & Gray 2016, section 4: the same transforms serve the gradients): with
    ``Z_t = A dy_t A^T`` (the output-gradient tiles, :func:`._winograd_numba.gradient_transform`),

        dU[e] = sum_t V_t[e]^T Z_t[e]    (alpha^2 GEMMs (C_in/g, tiles) @ (tiles, C_out/g))
        gw = G^T dU G                    (in float64, rounded once)

    ``V`` is the forward's input transform (:func:`._winograd_numba.input_transform`). Blocks of
    tiles as in :func:`_run_compiled`; each block's products are added into ``dU`` (in the call's
    dtype). Needs numba (:func:`uses_numba`); ``xp`` and ``gy`` float32/float64.
    """

    kernels = _load_kernels()
    if kernels is None:
        raise RuntimeError("winograd.weight_grad needs numba (the `fast` extra)")
    if m not in POINTS:
        raise ValueError(f"weight_grad: Winograd output tile `m` (={m}) must be one of {tuple(POINTS)}")
    if xp.ndim == 5:
        if groups != 1:
            raise ValueError(f"weight_grad: 3-D Winograd needs groups=1, got groups={groups}")
        return _weight_grad_3d(xp, gy, m)
    dtype = np.result_type(xp, gy)
    n, c_in, hp, wp = xp.shape
    c_out, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    if (oh, ow) != (hp - R + 1, wp - R + 1) or gy.shape[0] != n:
        raise ValueError(f"weight_grad: grad_output {gy.shape} does not fit the padded input {xp.shape}")
    cg, og = c_in // groups, c_out // groups
    a_t, g, b_t = transforms(m)
    alpha = m + R - 1
    e = alpha * alpha
    tiles = (-(-oh // m), -(-ow // m))
    blocks = _blocks(n, tiles, e * max(c_in, c_out) * dtype.itemsize,
                     _grad_block_bytes(e * max(c_in, c_out) * dtype.itemsize, xp.size * dtype.itemsize))
    most = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * tiles[1]
    v_buffer = np.empty(e * most * c_in, dtype=dtype)
    z_buffer = np.empty(e * most * c_out, dtype=dtype)
    du = np.empty((e, groups, cg, og), dtype=dtype)
    bt_d, a_d = b_t.astype(dtype), np.ascontiguousarray(a_t.T, dtype=dtype)  # A: (alpha, m)
    xc, gc = np.ascontiguousarray(xp, dtype=dtype), np.ascontiguousarray(gy, dtype=dtype)
    with kernels.launch() as threads, split_products(threads):
        for index, (n0, n1, r0, r1) in enumerate(blocks):
            count = (n1 - n0) * (r1 - r0) * tiles[1]
            v = v_buffer[:e * count * c_in]
            z = z_buffer[:e * count * c_out]
            kernels.input_transform(xc, bt_d, v, n0, n1 - n0, r0, r1 - r0, tiles[1], m, 0, 0, hp, wp)
            kernels.gradient_transform(gc, a_d, z, n0, n1 - n0, r0, r1 - r0, tiles[1])
            # dU[e, g] += V[e, g]^T Z[e, g]: (alpha^2, G, Cg, tiles) @ (alpha^2, G, tiles, Og)
            vt = v.reshape(e, count, groups, cg).transpose(0, 2, 3, 1)
            zt = z.reshape(e, count, groups, og).transpose(0, 2, 1, 3)
            if index == 0:
                matmul_stack(vt, zt, du, threads)
            else:  # each block's products added in, alpha tile elements at a time (not a second dU)
                matmul_accumulate(vt, zt, du, threads, -(-alpha // threads))
        # gw[o, c] = G^T dU[:, g, c, o] G in float64, rounded once
        gw = np.empty((c_out, cg, R, R), dtype=dtype)
        kernels.weight_gradient_transform(du, np.ascontiguousarray(g.T), gw)
    return gw


def _weight_grad_3d(xp: np.ndarray, gy: np.ndarray, m: int) -> np.ndarray:
    """The weight gradient of a stride-1 3x3x3 convolution (one group): the adjoint of :func:`_run_compiled_3d`.

    ``xp`` ``(N, C_in, Dp, Hp, Wp)`` padded, ``gy`` ``(N, C_out, Dp-2, Hp-2, Wp-2)``. Per output frame
    ``od`` the mirrored ring of :func:`_run_compiled_3d` holds the transformed input frames
    ``od .. od+2`` (each transformed once, twice for a mirrored slot) in adjacent slots, and
    ``dU[e] += [V_od V_od+1 V_od+2][e]^T Z_od[e]``, ``(3 C_in, tiles) @ (tiles, C_out)``; then
    ``gw[:, :, kd] = G^T dU[kd] G`` in float64.
    """

    kernels = _load_kernels()
    dtype = np.result_type(xp, gy)
    n, c_in, dp, hp, wp = xp.shape
    c_out, od_count, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3], gy.shape[4]
    if (od_count, oh, ow) != (dp - R + 1, hp - R + 1, wp - R + 1) or gy.shape[0] != n:
        raise ValueError(f"weight_grad: grad_output {gy.shape} does not fit the padded input {xp.shape}")
    a_t, g, b_t = transforms(m)
    alpha = m + R - 1
    e = alpha * alpha
    th, tw = -(-oh // m), -(-ow // m)
    k = 3 * c_in
    row_blocks = _row_ranges(th, block_bytes(max(3 * COMPILED_BLOCK_BYTES, MIN_TILES * e * k * dtype.itemsize)),
                             tw * e * k * dtype.itemsize)
    most = max(r1 - r0 for r0, r1 in row_blocks) * tw
    bt_d, a_d = b_t.astype(dtype), np.ascontiguousarray(a_t.T, dtype=dtype)  # A: (alpha, m)
    xc = xp.astype(dtype, copy=False)
    gc = np.ascontiguousarray(gy, dtype=dtype).reshape(n, c_out, od_count * oh, ow)  # frames stacked by rows

    def units(part: list[tuple[int, int, int]], most: int, threads: int) -> np.ndarray:
        """dU summed over the output frames of the (sample, block of tile rows) units ``part``; products on
        ``threads`` threads (1 in a per-thread share, whose kernels then run on one numba thread)."""
        ring = np.empty(e * most * 6 * c_in, dtype=dtype)
        z_buffer = np.empty(e * most * c_out, dtype=dtype)
        du = np.empty((e, k, c_out), dtype=dtype)
        first_product = True
        for s0, r0, r1 in part:
            count = (r1 - r0) * tw
            v = ring[:e * count * 6 * c_in]
            slots = v.reshape(e, count, 6, c_in)
            z = z_buffer[:e * count * c_out]
            for p in range(dp):  # padded frames, in order
                for slot in ((p % 3, p % 3 + 3) if p % 3 < 2 else (p % 3,)):
                    kernels.input_transform(xc[:, :, p], bt_d, v, s0, 1, r0, r1 - r0, tw, m, 0, 0, hp, wp,
                                            6 * c_in, slot * c_in)
                if p < 2:
                    continue
                od = p - 2
                first = od % 3
                kernels.gradient_transform(gc, a_d, z, s0, 1, r0, r1 - r0, tw, od * oh, oh)
                window = slots[:, :, first:first + 3, :].reshape(e, count, k)  # (alpha^2, tiles, 3 C_in)
                # (alpha^2, 3 C_in, tiles) @ (alpha^2, tiles, C_out) -> (alpha^2, 3 C_in, C_out)
                vt, zt = window.transpose(0, 2, 1), z.reshape(e, count, c_out)
                if first_product:
                    matmul_stack(vt, zt, du, threads)
                    first_product = False
                else:  # added in alpha tile elements at a time (not a second dU)
                    matmul_accumulate(vt, zt, du, threads, -(-alpha // threads))
        return du

    with kernels.launch() as threads, split_products(threads):
        if not _shares(kernels, threads):
            du = units([(s0, r0, r1) for s0 in range(n) for r0, r1 in row_blocks], most, threads)
        else:
            # Per-thread shares of (sample, block of tile rows) units as in the forward
            # (:func:`_run_compiled_3d`), each adding into a dU of its own (alpha^2 3 C_in C_out values, small
            # next to the rings); then the threads' dU are added up, in thread order.
            work, most, bounds = _thread_units(n, th, tw, tw * e * k * dtype.itemsize, threads)
            workers = len(bounds) - 1
            partial: list[np.ndarray | None] = [None] * workers

            def share(i: int) -> None:
                partial[i] = units(work[bounds[i]:bounds[i + 1]], most, 1)

            run_shares([kernels.one_thread(lambda i=i: share(i)) for i in range(workers)], workers)
            du = partial[0]
            for other in partial[1:]:
                du += other
        # gw[o, kd*C_in + c] = G^T dU[:, kd*C_in + c, o] G in float64: the depth taps as input channels
        taps = np.empty((c_out, k, R, R), dtype=dtype)
        kernels.weight_gradient_transform(du.reshape(e, 1, k, c_out), np.ascontiguousarray(g.T), taps)
    # (C_out, 3, C_in, 3, 3) -> (C_out, C_in, 3, 3, 3)
    return np.ascontiguousarray(taps.reshape(c_out, 3, c_in, R, R).transpose(0, 2, 1, 3, 4))


def _grad_block_bytes(tile_bytes: int, input_bytes: int) -> int:
    """The weight gradient's block of transformed tiles (each of ``V`` and ``Z``): :data:`MIN_TILES` tiles
    where that is at most half the padded input, else down to :data:`COMPILED_BLOCK_BYTES`.

    Its products' inner dimension is the block's tiles, so large blocks keep the GEMMs' rate; on
    small maps with many channels (ResNet-18's 128 channels at 28x28) a quarter of them measured
    as fast, with a third less memory (15.9 -> 10.8 MiB), within 2x torch's extra memory.
    """
    return max(COMPILED_BLOCK_BYTES, min(MIN_TILES * tile_bytes, input_bytes // 2))


def weight_grad_tile(call: Call, name: str, xp: np.ndarray | None = None, gy: np.ndarray | None = None,
                     direct: bool = False) -> int | None:
    """The tile ``m`` with which :func:`weight_grad` computes the weight gradient ``call`` describes, or None.

    ``call`` is the weight gradient's correlation as the ops describe it (input ``(C_in/g, g*N, *S)``,
    kernel ``(C_out, N, *O)``, stride and dilation swapped). Winograd applies to 2-D float32/float64
    gradients of stride-1, undilated 3x3 kernels where numba imports. ``name`` ``'winograd_f2'`` or
    ``'winograd_f4'`` takes that tile; ``'auto'``/``'tune'`` the tile whose estimate
    (:func:`weight_grad_estimate`) is below the direct im2col + GEMM gradient's
    (:func:`.gemm.estimate` of ``call``, or :func:`.gemm.weight_grad_estimate` where ``direct``: the ops
    would run the direct im2col + GEMM gradient), on finite ``xp`` and ``gy`` only (a NaN or inf would
    spread over the tiles' gradients, as in the forward); other names never.
    """
    if name not in ("auto", "tune", "winograd_f2", "winograd_f4"):
        return None
    kernel = call.out_size  # the correlation's output is the kernel
    nd = call.nd
    if (nd not in (2, 3) or (nd == 3 and call.groups != 1) or kernel != (R,) * nd
            or call.dilation != (1,) * nd or call.stride != (1,) * nd
            or call.input_dilation != (1,) * nd or call.dtype not in _NUMBA_DTYPES or call.is_empty or call.cg == 0
            or _load_kernels() is None):
        return None
    if name.startswith("winograd_f"):
        return int(name[len("winograd_f"):])
    from . import gemm

    best = min(POINTS, key=lambda m: weight_grad_estimate(call, m))
    other = gemm.weight_grad_estimate(call) if direct else gemm.estimate(call)
    if weight_grad_estimate(call, best) >= other.seconds:
        return None
    if xp is not None and not (np.isfinite(xp).all() and np.isfinite(gy).all()):
        return None
    return best


def weight_grad_estimate(call: Call, m: int) -> float:
    """Seconds of :func:`weight_grad` F(m) on the correlation ``call`` (see :func:`weight_grad_tile`).

    The forward's compiled estimate with the products turned around: ``alpha^2`` GEMMs
    ``(C_in/g, tiles) @ (tiles, C_out/g)`` per block of tiles (inner dimension the block's tiles),
    the input and output-gradient transforms (3 moved elements per transformed one, as in
    :func:`estimate`), each block's products added into ``dU``, and ``G^T dU G`` in float64.
    """
    if call.nd == 3:
        return _weight_grad_estimate_3d(call, m)
    b = call.dtype.itemsize
    cg, n = call.x_shape[0], call.x_shape[1] // call.groups  # (C_in/g, g*N, *S): channels per group, batch
    c_in, c_out, groups = cg * call.groups, call.c_out, call.groups
    og = c_out // groups
    elements = (m + R - 1) ** 2
    out = call.w_shape[2:]  # the forward's output size
    tiles = n * math.prod(-(-o // m) for o in out)
    transformed = elements * tiles * (c_in + c_out)
    tile_block = _grad_block_bytes(elements * max(c_in, c_out) * b, math.prod(call.x_shape) * b)
    blocks = max(1, -(-elements * tiles * max(c_in, c_out) * b // tile_block))
    compute = gemm_seconds(elements * tiles * cg * og * groups, -(-tiles // blocks), og,
                           elements * groups * blocks, call.dtype) / 0.7
    du = elements * groups * cg * og
    # the first block's products written into dU, each later block's added in (dU read and written); then
    # G^T dU G compiled (dU read once, the 9 taps written)
    moved = (2 * n * (c_in * math.prod(call.x_shape[2:]) + c_out * math.prod(out)) * b + 3 * (blocks - 1) * du * b
             + du * b + 9 * groups * cg * og * b)
    return compute + stream(3 * transformed * b + moved) + 3 * blocks * MACHINE.call_seconds


def _weight_grad_estimate_3d(call: Call, m: int) -> float:
    """Seconds of :func:`_weight_grad_3d`: per output frame and block of tile rows ``alpha^2`` GEMMs
    ``(3 C_in, tiles) @ (tiles, C_out)`` added into ``dU`` (its ``alpha^2 3 C_in C_out`` values read and
    written), every padded input frame and output-gradient frame transformed once (the rates of
    :func:`estimate`), and ``G^T dU G`` in float64."""
    b = call.dtype.itemsize
    c_in, n = call.x_shape[0], call.x_shape[1]  # (C_in, N, *S): one group
    c_out = call.c_out
    dp, hp, wp = call.x_shape[2:]
    od, oh, ow = call.w_shape[2:]  # the forward's output size
    alpha = m + R - 1
    e = alpha * alpha
    th, tw = -(-oh // m), -(-ow // m)
    k = 3 * c_in
    tile_bytes = e * k * b
    rows = _row_ranges(th, block_bytes(max(3 * COMPILED_BLOCK_BYTES, MIN_TILES * tile_bytes)), tw * tile_bytes)
    calls = n * od * len(rows)
    tiles = n * od * th * tw
    compute = gemm_seconds(e * tiles * k * c_out, -(-tiles // calls), c_out, e * calls, call.dtype) / 0.7
    transformed = e * n * th * tw * (dp * c_in * 5 // 3 + od * c_out)  # mirrored slots: two frames of three twice
    du = e * k * c_out
    # products added into dU after the first (read and written), then G^T dU G compiled
    moved = (2 * n * (c_in * dp * hp * wp * alpha / m + c_out * od * oh * ow) * b + 3 * (calls - 1) * du * b
             + du * b + 9 * k * c_out * b)
    return compute + stream(3 * transformed * b + moved) + 3 * calls * MACHINE.call_seconds


def _channel_blocks(og: int, c_in: int, tiles: int, itemsize: int) -> list[tuple[int, int]]:
    """Blocks ``(k0, k1)`` of the ``og`` output channels per group for the products and the output transform.

    A block has at least :data:`MIN_CHANNELS` channels (the products' columns), and its transformed
    weights (``alpha^2 C_in kb``) and products (``alpha^2 tiles kb``) together take about
    :data:`CHANNEL_BLOCK_BYTES` (36 values per F(4x4) tile element).
    """
    per_channel = 36 * (c_in + tiles) * itemsize
    kb = max(MIN_CHANNELS, CHANNEL_BLOCK_BYTES // max(per_channel, 1))
    if kb >= og:
        return [(0, og)]
    count = -(-og // kb)
    kb = -(-og // count)  # equal blocks
    return [(k0, min(og, k0 + kb)) for k0 in range(0, og, kb)]


#: Whether calls with several blocks of tiles run them as per-thread shares on several threads.
TILE_SHARES = True

#: Target bytes of one block of output channels (transformed weights and products), and its least width.
CHANNEL_BLOCK_BYTES = 4 * 2**20
MIN_CHANNELS = 64


#: The compiled path's block of transformed tiles (input or output side), at least :data:`MIN_TILES` tiles.
#: Measured on a 2-core Xeon (float32, batch 8): 2 MiB blocks (they stay in the L2 cache) were the
#: fastest for 64 channels, and 128-256 channels wanted at least ~200 tiles per block (the products'
#: rows) for the GEMMs to run near their full rate.
COMPILED_BLOCK_BYTES = 2 * 2**20
MIN_TILES = 256


def _blocks(n: int, tiles: tuple[int, ...], tile_bytes: int, target: int, min_tiles: int = 1,
            ) -> list[tuple[int, int, int, int]]:
    """Blocks ``(n0, n1, r0, r1)`` of samples and tile rows whose transformed tiles take about ``target`` bytes.

    A block has at least ``min_tiles`` tiles (whole tile rows), and at most a quarter of the memory budget.
    """
    per_sample = math.prod(tiles) * tile_bytes
    block = block_bytes(max(target, min_tiles * tile_bytes))
    if per_sample <= block:
        step = max(1, block // per_sample)
        return [(n0, min(n, n0 + step), 0, tiles[0]) for n0 in range(0, n, step)]
    step = max(1, block // (per_sample // tiles[0]))
    return [(n0, n0 + 1, r0, min(tiles[0], r0 + step)) for n0 in range(n) for r0 in range(0, tiles[0], step)]


def _weight_transform(weight: np.ndarray, g: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``U = G g G^T`` (per dimension) for every filter: ``(alpha^d, G, C_in/g, C_out/g)``, computed in float64.

    GEMMs of the filters' taps with the Kronecker product of ``G``,
    ``(filters, 3^d) @ (3^d, alpha^d)``, written through a transposed ``out=``
    straight into the layout of the main products (this orientation measured
    2-4x faster than ``(alpha^d, 3^d) @ (3^d, filters)``). The float64 work is
    done in chunks of :data:`WEIGHT_CHUNK` filters, so only the result, in the
    call's dtype, has the full size (512x512 3x3 filters for F(4x4): 38 MiB in
    float64 at once before, 1 MiB chunks now).
    """
    c_out, cg = weight.shape[:2]
    nd = weight.ndim - 2
    og = c_out // groups
    wide = np.complex128 if dtype.kind == "c" else np.float64
    taps = weight.reshape(groups, og, cg, R ** nd).transpose(0, 2, 1, 3).reshape(-1, R ** nd)  # (G*Cg*Og, 3^d)
    kron = _kron(g, nd).T.astype(wide)  # (3^d, alpha^d)
    filters = taps.shape[0]
    u = np.empty((kron.shape[1], filters), dtype=dtype)
    chunk = max(1, WEIGHT_CHUNK)
    wide_out = np.empty((kron.shape[1], min(chunk, filters)), dtype=wide)
    for f0 in range(0, filters, chunk):
        f1 = min(filters, f0 + chunk)
        part = wide_out[:, :f1 - f0]
        np.matmul(taps[f0:f1].astype(wide), kron, out=part.T)
        u[:, f0:f1] = part
    return u.reshape((-1, groups, cg, og))  # (alpha^d, G, Cg, Og)


#: Filters per float64 chunk of the weight transform (:func:`_weight_transform`).
WEIGHT_CHUNK = 4096


def _kron(matrix: np.ndarray, nd: int) -> np.ndarray:
    """The ``nd``-dimensional separable transform as one matrix on flattened tiles."""
    result = matrix
    for _ in range(nd - 1):
        result = np.kron(result, matrix)
    return result


def _transform(matrix: np.ndarray, src: np.ndarray, nd: int, rest: int, buffer: np.ndarray) -> np.ndarray:
    """Apply the 1-D transform ``matrix`` along each of the ``nd`` leading tile axes of ``src``.

    ``src`` is ``(k,)*nd + (rest,)``; the result ``(j,)*nd + (rest,)`` with
    ``(j, k) = matrix.shape``. In 1-D and 2-D this is one GEMM with the
    Kronecker product, ``(j^d, k^d) @ (k^d, rest)``: a single product with an
    inner dimension of ``k^d`` runs several times faster in OpenBLAS than
    ``d`` products with an inner dimension of ``k`` (measured: 2.2 ms against
    6.5 + 40 ms for F(4x4) on 100k columns). In 3-D (a 216x216 Kronecker
    product would be mostly multiplications by zero) the first two axes use
    the 2-D product and the third a product per slice.
    """
    j, k = matrix.shape
    if nd <= 2:
        out = buffer[:j ** nd * rest].reshape(j ** nd, rest)  # (j^d, rest)
        np.matmul(_kron(matrix, nd), src.reshape(k ** nd, rest), out=out)  # (j^d, k^d) @ (k^d, rest)
        return out
    first = buffer[:j * j * k * rest].reshape(j * j, k * rest)  # (j^2, k * rest)
    np.matmul(_kron(matrix, 2), src.reshape(k * k, k * rest), out=first)  # (j^2, k^2) @ (k^2, k * rest)
    result = np.empty((j * j, j, rest), dtype=src.dtype)
    np.matmul(matrix, first.reshape(j * j, k, rest), out=result)  # (j, k) @ (j^2, k, rest) -> (j^2, j, rest)
    return result


def _run(call: Call, x: np.ndarray, weight: np.ndarray, m: int, absolute: bool = False) -> np.ndarray:
    nd, n, groups, cg, og, c_in, c_out = call.nd, call.batch, call.groups, call.cg, call.og, call.c_in, call.c_out
    dtype = np.dtype(np.float64) if absolute else call.dtype
    a_t, g, b_t = transforms(m)
    if absolute:
        a_t, g, b_t = np.abs(a_t), np.abs(g), np.abs(b_t)
    alpha = m + R - 1
    out = call.out_size
    tiles = tuple(-(-o // m) for o in out)
    extra = tuple(t * m + R - 1 - p for t, p in zip(tiles, call.padded_size, strict=True))
    xp = padded_channels_last(x, call.padding, (1,) * nd, extra=extra, dtype=dtype)  # (N, *S', C)
    st = xp.strides
    # view[a_1..a_d, n, t_1..t_d, c] = xp[n, *(t*m + a), c]
    tile_view = as_strided(
        xp, (alpha,) * nd + (n,) + tiles + (c_in,),
        tuple(st[1:1 + nd]) + (st[0],) + tuple(s * m for s in st[1:1 + nd]) + (st[-1],), writeable=False)
    u = _weight_transform(weight, g, groups, dtype)  # (alpha^d, G, Cg, Og)
    b_t = b_t.astype(dtype)
    a_t = a_t.astype(dtype)
    y = np.empty((n,) + tuple(t * m for t in tiles) + (c_out,), dtype=dtype)  # channels-last, whole tiles
    per_sample = math.prod(tiles) * alpha ** nd * max(c_in, c_out) * dtype.itemsize
    row = per_sample // tiles[0]
    block = block_bytes(BLOCK_BYTES)
    if per_sample <= block:
        step = max(1, block // per_sample)
        blocks = [(n0, min(n, n0 + step), 0, tiles[0]) for n0 in range(0, n, step)]
    else:
        step = max(1, block // row)
        blocks = [(n0, n0 + 1, r0, min(tiles[0], r0 + step)) for n0 in range(n) for r0 in range(0, tiles[0], step)]
    most = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * math.prod(tiles[1:])
    ping = np.empty(alpha ** nd * most * max(c_in, c_out), dtype=dtype)
    pong = np.empty_like(ping)
    for n0, n1, r0, r1 in blocks:
        block_tiles = (n1 - n0) * (r1 - r0) * math.prod(tiles[1:])
        gathered = ping[:alpha ** nd * block_tiles * c_in].reshape(  # (alpha,)*d + (b, r, *tiles', C_in)
            (alpha,) * nd + (n1 - n0, r1 - r0) + tiles[1:] + (c_in,))
        np.copyto(gathered, tile_view[(slice(None),) * nd + (slice(n0, n1), slice(r0, r1))])
        # V = B^T d B: (alpha^d, tiles * C_in)
        # (alpha^d, tiles, G, Cg)
        v = _transform(b_t, gathered, nd, block_tiles * c_in, pong).reshape(alpha ** nd, block_tiles, groups, cg)
        # (alpha^d, tiles, G, Og)
        prod = ping[:alpha ** nd * block_tiles * c_out].reshape(alpha ** nd, block_tiles, groups, og)
        # M[e, g] = V[e, g] @ U[e, g]: (tiles, Cg) @ (Cg, Og), all alpha^d * G products in one matmul.
        # (alpha^d, G, tiles, Cg) @ (alpha^d, G, Cg, Og) -> (alpha^d, G, tiles, Og)
        np.matmul(v.transpose(0, 2, 1, 3), u, out=prod.transpose(0, 2, 1, 3))
        # Y = A^T M A: (m^d, tiles * C_out)
        src = _transform(a_t, prod, nd, block_tiles * c_out, pong)
        # (m,)*d + (b, r, *tiles', C_out) -> y[n0:n1, r0*m:r1*m, ...] seen as (b, r, m, t2, m, ..., C_out)
        result = src.reshape((m,) * nd + (n1 - n0, r1 - r0) + tiles[1:] + (c_out,))
        target = as_view(y[n0:n1, r0 * m:r1 * m],  # (b, r, m, t2, m, ..., C_out)
            (n1 - n0,) + sum((((r1 - r0) if i == 0 else tiles[i], m) for i in range(nd)), ()) + (c_out,))
        order = (nd,) + sum(((nd + 1 + i, i) for i in range(nd)), ()) + (2 * nd + 1,)
        np.copyto(target, result.transpose(order))  # (b, r, m, t2, m, ..., C_out)
    y = y[(slice(None),) + tuple(slice(0, o) for o in out)]
    return y.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view


def estimate(call: Call, m: int) -> Estimate:
    """The ``alpha^d`` GEMMs, the two transforms, the copies and the weight transform of F(m, 3).

    With the compiled transforms (:func:`uses_numba`) the transforms, the padded copy and the
    output are passes over memory; otherwise (the NumPy pipeline):

    The ``alpha^d`` GEMMs (``alpha = m + 2``) on ``T = N prod(ceil(O/m))`` tiles
    (inner dimension ``C_in/g``, ``C_out/g`` columns, at 0.7 of the rate: a
    block of tiles is a short matrix); the two Kronecker-product transforms as
    GEMMs at half the rate; the padded copy, the tile gather and the output
    scatter; the weight transform in float64 (``alpha^d C_out C_in/g`` values:
    it dominates small images with many channels, where Winograd loses).
    """
    b = call.dtype.itemsize
    nd = call.nd
    alpha = m + 2
    tiles = call.batch * math.prod(-(-o // m) for o in call.out_size)
    elements = alpha ** nd
    transformed_in = elements * tiles * call.c_in
    transformed_out = elements * tiles * call.c_out
    blocks = max(1, max(transformed_in, transformed_out) * b // BLOCK_BYTES)
    # The alpha^d products have only a block of tiles as rows: measured at 0.7 of the rate of
    # the window GEMM of the same inner dimension.
    compute = gemm_seconds(elements * tiles * call.c_out * call.cg, call.cg, call.og,
                           elements * call.groups * blocks, call.dtype) / 0.7
    input_bytes = math.prod(call.x_shape) * b
    if uses_numba(call) and nd == 3:
        return _estimate_3d(call, m)
    if uses_numba(call):
        # Compiled transforms (:func:`_run_compiled`), measured one thread on a loaded 2-core Xeon
        # (float32, batch 8, 64-512 channels): the input and output transforms about 0.5-1 ns per
        # transformed element, 3 moved elements per transformed one at stream bandwidth; the input
        # read through the bands (alpha/m of its rows twice, transposed), the output written once.
        # The weight transform (float64 sums, U written in the call's dtype) 0.65 ns per value of
        # U (6 ms for 512x512 filters in F(4x4)): 4 values' bytes moved. It is what makes Winograd
        # lose on 7x7 maps with many channels (U is 36/9 = 4 times the weights).
        tile_block = max(COMPILED_BLOCK_BYTES, MIN_TILES * elements * call.c_in * b)
        blocks = max(1, -(-transformed_in * b // tile_block))
        most = -(-tiles // blocks)
        channel_blocks = len(_channel_blocks(call.og, call.c_in, most, b))
        kb = -(-call.og // channel_blocks)
        compute = gemm_seconds(elements * tiles * call.c_out * call.cg, call.cg, kb,
                               elements * call.groups * blocks * channel_blocks, call.dtype) / 0.7
        transforms = stream(3 * (transformed_in + transformed_out) * b)
        moved = 2 * input_bytes * (alpha / m) ** (nd - 1) + call.batch * call.c_out * call.positions * b
        weights = 4 * elements * call.c_out * call.cg * b
        seconds = (compute + transforms + stream(moved + weights)
                   + 3 * blocks * channel_blocks * MACHINE.call_seconds)
        return Estimate(seconds, f"F({m}) GEMMs {fmt(compute)} on {tiles} tiles + compiled transforms "
                                 f"{fmt(transforms + stream(moved))} + weight transform {fmt(stream(weights))}")
    # B^T d B and A^T M A: one GEMM each with the Kronecker product (inner dimension alpha^d,
    # measured at half the large-GEMM rate).
    transform_macs = elements * transformed_in + m ** nd * transformed_out
    transforms = transform_macs * flops_per_mac(call.dtype) / (0.5 * gemm_rate(call.dtype))
    output = tiles * m ** nd * call.c_out * b
    moved = 4 * input_bytes + 2 * transformed_in * b + 2 * output  # padded copy (transposing), gather, scatter
    weights = 6 * elements * call.c_out * call.cg * 8  # the weight transform, in float64
    seconds = compute + transforms + stream(moved + weights) + 4 * blocks * MACHINE.call_seconds
    return Estimate(seconds, f"F({m}) GEMMs {fmt(compute)} on {tiles} tiles + transforms "
                             f"{fmt(transforms + stream(moved))} + weight transform {fmt(stream(weights))}")


def _estimate_3d(call: Call, m: int) -> Estimate:
    """Seconds of :func:`_run_compiled_3d`: 2-D tiles of every output frame, products over ``3 C_in``.

    ``alpha^2`` GEMMs ``(tiles, 3 C_in) @ (3 C_in, kb)`` per output frame, block of tile rows and block
    of output channels; each input frame transformed once per block of tile rows and each output tile
    once (the compiled transforms' rates of :func:`estimate`: 3 moved elements per transformed one),
    the input read through the bands (``alpha/m`` of its rows), the output written once; the weight
    transform of the three depth taps and its three rotations.
    """
    b = call.dtype.itemsize
    alpha = m + R - 1
    e = alpha * alpha
    od, oh, ow = call.out_size
    th, tw = -(-oh // m), -(-ow // m)
    k = 3 * call.c_in
    tile_bytes = e * k * b
    rows = _row_ranges(th, block_bytes(max(3 * COMPILED_BLOCK_BYTES, MIN_TILES * tile_bytes)), tw * tile_bytes)
    most = max(r1 - r0 for r0, r1 in rows) * tw
    channel_blocks = len(_channel_blocks(call.c_out, k, most, b))
    kb = -(-call.c_out // channel_blocks)
    tiles = call.batch * od * th * tw
    calls = call.batch * od * len(rows) * channel_blocks
    compute = gemm_seconds(e * tiles * call.c_out * k, k, kb, e * calls, call.dtype) / 0.7
    in_tiles = call.batch * call.x_shape[2] * th * tw * 5 // 3  # two of three frames written twice (mirrored slots)
    transforms = stream(3 * e * (in_tiles * call.c_in + tiles * call.c_out) * b)
    moved = 2 * math.prod(call.x_shape) * b * alpha / m + call.batch * call.c_out * call.positions * b
    weights = 4 * e * call.c_out * k * b  # U of the three taps, written once
    seconds = compute + transforms + stream(moved + weights) + 3 * calls * MACHINE.call_seconds
    return Estimate(seconds, f"F({m}) GEMMs {fmt(compute)} on {tiles} frame tiles (3 depth taps as channels) + "
                             f"compiled transforms {fmt(transforms + stream(moved))} + weight transform "
                             f"{fmt(stream(weights))}")


def _record(m: int, primitive, summary: str) -> Algorithm:
    """The record of F(m x m, 3x3); F2 and F4 differ only in ``m``."""
    return Algorithm(
        name=f"winograd_f{m}",
        summary=summary,
        primitive=primitive,
        unsupported=unsupported,
        estimate=lambda call: estimate(call, m),
        fixed_seconds=80e-6,
        exact_integers=False,
        nonfinite_exact=False,  # the transforms mix a tile: inf becomes NaN, a NaN spreads over the tile's outputs
    )


ALGORITHM_F2 = _record(2, conv_general_f2,
                       "Winograd F(2x2, 3x3) (Lavin & Gray 2016): 3-tap kernels, stride 1, no dilations, floats")
ALGORITHM_F4 = _record(4, conv_general_f4,
                       "Winograd F(4x4, 3x3): a quarter of the multiplications of the direct sum, larger rounding")
