"""im2col + GEMM, tuned: channels-last windows, one matrix product per block, 1x1 as a plain GEMM.

The classic lowering of a convolution to a matrix product (Chellapilla et al.,
"High performance convolutional neural networks for document processing",
2006; the ``unfold`` of :mod:`convlab.ops.unfold`), arranged for NumPy:

* the input is copied once into a zero-padded **channels-last** buffer
  ``(N, *S_padded, C)`` (the copy also inserts the zeros of input dilation and
  crops negative pads), so every kernel window is a run of contiguous
  ``(k_last, C)`` blocks and the window gather copies long contiguous runs;
* the window matrix of a block of output rows, ``(rows, prod(K) * C_in/g)``,
  is gathered into one reused buffer of about :data:`CHUNK_BYTES` (it stays in
  the last-level cache; a block is several samples, or part of one sample when
  a sample is large), then multiplied by the weight matrix
  ``(prod(K) * C_in/g, C_out/g)`` straight into the output with ``out=``:
  ``(rows, K*C) @ (K*C, C_out)``, the orientation in which OpenBLAS splits the
  long ``rows`` axis over its threads (the weight matrix is stored
  ``(C_out, K*C)`` and read transposed in place);
* when even :data:`MIN_ROWS` rows of windows exceed :data:`CHUNK_BYTES` (huge
  kernels over few outputs: the correlations of weight gradients), the kernel
  is cut along its first axis (:func:`kernel_pieces`): each piece's windows
  are gathered and multiplied by the weight rows they meet, the products
  summed into the output, so the block stays in cache and the call's extra
  memory stays about :data:`CHUNK_BYTES` (a blocked, split-K im2col);
* the output is produced channels-last ``(N, *O, C_out)`` and returned as the
  ``(N, C_out, *O)`` transposed *view* (no copy; NumPy reads it like any
  array, and a following convolution copies it into its own channels-last
  buffer anyway);
* a 1x1 kernel needs no windows. On a channels-first (C-contiguous) input it
  is ``W (C_out, C_in) @ x[n] (C_in, P)`` per sample, one batched ``np.matmul``
  with no copy and an NCHW result; on any other layout (the channels-last view
  a previous layer returned) one GEMM ``(N*P, C_in) @ (C_in, C_out)`` on the
  input moved to channels-last (a strided 1x1 subsamples it in the same copy).
  Measured on an idle machine (batch 8, ResNet-50's 1x1 layers): the NCHW
  product 1.2-2x faster than the channels-last copy + GEMM; an earlier
  measurement on a loaded machine had it up to 6x slower (OpenBLAS splits the
  wide per-sample products over its threads, which suffers most when another
  process shares the cores).
* on several BLAS threads, products that BLAS splits poorly are shared among
  Python threads instead, each on one BLAS thread (:mod:`._products`): the
  output channels of the window GEMMs (one group); a 1x1 layer's samples
  where its product is thin (``C_in > C_out``), its output channels where it
  is wide; a weight gradient's blocks where the gradient is
  smaller than a window block (each thread sums into a gradient of its own),
  a 1x1 weight gradient's output channels. BLAS splits a product's output and
  its threads meet after every slice of the sum, which a busy machine turns
  into waits of a time slice each.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._blas import gemm_add
from ._costs import MACHINE, blas_threads, fmt, gemm_seconds, l2_bytes, stream
from ._layout import Call, as_view, block_bytes, empty_result, padded_channels_first, padded_channels_last
from ._products import available as products_available
from ._products import matmul_stack, run_shares, share_ranges, split_products
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM", "CHUNK_BYTES", "MIN_ROWS", "channels_last", "conv_general", "estimate", "kernel_pieces",
           "unsupported", "weight_grad_estimate"]

#: Target size of one gathered window-matrix block: twice the L2 cache of a core (sysfs, :func:`._costs.l2_bytes`),
#: so it stays in the caches between its gather and its GEMM. Measured, a block at a time, batch 8: on a 2-core
#: Zen 5 (1 MiB L2) 2-8 MiB within a few percent of each other, 32-64 MiB 20-40% slower; on an Intel Xeon
#: (Sapphire Rapids, 2 MiB L2; one thread, CPU time) the ResNet stem, a 3x3/2 and a 3x3 layer at 56x56 within
#: noise at 2-8 MiB, 10-30% slower at 16-32 MiB. A block has at least :data:`MIN_ROWS` rows, so the GEMMs of
#: calls with huge kernels and few outputs (weight gradients) are not cut into thin slices.
CHUNK_BYTES = 2 * l2_bytes()
MIN_ROWS = 512


def unsupported(call: Call) -> str | None:
    """im2col + GEMM covers every call of the primitive (integers are exact: NumPy's matmul)."""
    return None


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`.

    The result may be a transposed view of a channels-last buffer.
    """
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    x = x.astype(call.dtype, copy=False)
    weight = weight.astype(call.dtype, copy=False)
    if all(k == 1 for k in call.kernel):
        return _pointwise(call, x, weight)
    return _windows(call, x, weight)


def _pointwise(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """1x1 kernels: one GEMM ``(N*P, C_in/g) @ (C_in/g, C_out/g)`` per group on the channels-last input.

    The only copy is the one that moves the (subsampled, padded) input to
    channels-last; no windows are gathered.
    """
    nd, groups, cg, og = call.nd, call.groups, call.cg, call.og
    if any(p != (0, 0) for p in call.padding) or any(ld != 1 for ld in call.input_dilation):
        x = padded_channels_first(x, call.padding, call.input_dilation)
    xs = x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in call.stride)]  # (N, C, *O)
    if x.flags.c_contiguous:
        # NCHW in, NCHW out: per sample and group W (Og, Cg) @ x (Cg, P), one batched matmul; no copy
        # unless the stride subsamples (the reshape then compacts the view).
        xm = xs.reshape(call.batch, groups, cg, call.positions)  # (N, G, Cg, P)
        threads = _sample_threads(call)
        if threads > 1:
            # the samples' products shared among threads, each on one BLAS thread
            y = np.empty((call.batch, og, call.positions), dtype=call.dtype)
            w = np.broadcast_to(weight.reshape(og, cg), (call.batch, og, cg))
            with split_products(threads):
                matmul_stack(w, xm[:, 0], y, threads)
            return y.reshape(call.out_shape)  # (N, C_out, *O)
        threads = _row_threads(og) if groups == 1 and SHARE_WIDE_ROWS else 1
        if threads > 1:
            # a wide product: the output channels shared among threads, each on one BLAS thread
            y = np.empty((call.batch, og, call.positions), dtype=call.dtype)
            w = weight.reshape(og, cg)
            with split_products(threads):
                run_shares([functools.partial(np.matmul, w[a:b], xm[:, 0], out=y[:, a:b])
                            for a, b in share_ranges(og, threads)], threads)
            return y.reshape(call.out_shape)  # (N, C_out, *O)
        y = np.matmul(weight.reshape(groups, og, cg), xm)  # (N, G, Og, P)
        return y.reshape(call.out_shape)  # (N, C_out, *O)
    rows = call.batch * call.positions
    xc = np.ascontiguousarray(np.moveaxis(xs, 1, -1)).reshape(rows, groups, cg)  # (N*P, G, Cg)
    w = weight.reshape(groups, og, cg).transpose(0, 2, 1)  # (G, Cg, Og)
    y = np.empty((call.batch,) + call.out_size + (call.c_out,), dtype=call.dtype)  # channels-last
    np.matmul(xc.transpose(1, 0, 2), w, out=as_view(y, (rows, groups, og)).transpose(1, 0, 2))  # (G, N*P, Og)
    return y.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view


#: Whether the window GEMMs of a call with one group on several BLAS threads have their output channels
#: shared among threads, each on one BLAS thread (see :func:`_matmul_columns`). Off: on a quiet machine
#: BLAS's own split was faster (Intel Xeon, two threads, load 0.1, batch 8, median: the stem 27.8 against
#: 38.5 ms shared, the 3x3/2 64->128 layer 9.5 against 12.0); on a busy one sharing wins (below).
SHARE_WINDOW_COLUMNS = False


def _matmul_columns(a: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` with the columns of ``b`` and ``out`` shared among ``threads`` threads,
    each on one BLAS thread (one call: BLAS as it is).

    BLAS splits a product itself, its threads meeting after every slice of the sum and at every call; a
    window GEMM is one call per block (the stem: 16 calls of ``(7056, 147) @ (147, 64)``). On a busy 2-core
    Intel Xeon (load 7), two threads, wall, min/median of 15, batch 8: the stem 49/95 ms against 169/250 on
    BLAS threads, a 3x3/2 64->128 layer at 56 29/49 against 48/71, a 3x3 512->512 at 7 82/118 against
    40/168 (torch 51/88). Each thread reads all of ``a`` and its share of ``b``: the same numbers.
    """
    if threads <= 1:
        return np.matmul(a, b, out=out)
    with split_products(threads):
        run_shares([functools.partial(np.matmul, a, b[:, s:t], out=out[:, s:t])
                    for s, t in share_ranges(b.shape[1], threads)], threads)
    return out

#: Whether a wide 1x1 product (C_out >= C_in) on several BLAS threads has its output channels shared among
#: threads, each on one BLAS thread (else BLAS splits each per-sample product). Off: no gain on a quiet
#: machine (ResNet-50's 256->1024 at 14x14, two threads: 5.0-5.5 ms either way, torch 4.5-5.2).
SHARE_WIDE_ROWS = False

#: Whether a 1x1 weight gradient on several BLAS threads has its output channels (rows of the gradient)
#: shared among threads, each on one BLAS thread. Off: on a quiet machine it was 1.6-2.3x slower than
#: BLAS's own split (Intel Xeon, two threads, load 0.1, batch 8: ResNet-50's 1x1 weight gradients 11-17
#: against 5-7.4 ms, torch 4.5-8); on a machine busy with other work (load 7) it was 4-10x faster.
SHARE_GRAD_ROWS = False


def _sample_threads(call: Call) -> int:
    """On how many threads an NCHW 1x1 call's per-sample products ``W (C_out, C_in) @ x[n] (C_in, P)`` run,
    each sample's on one BLAS thread (:func:`._products.matmul_stack`), or 1 (BLAS splits each product).

    Shared where BLAS runs on several threads, threadpoolctl can hold it to one, there is one group and
    a batch to share, and the product is thin: its sum (``C_in``) longer than its output is wide
    (``C_out``). BLAS splits a product's output among its threads, which meet after every slice of the
    sum. Two threads, Intel Xeon, batch 8 at 14x14: ``(256, 1024) @ (1024, 196)`` 4.6 ms on two BLAS
    threads, 3.7 ms shared; ``(1024, 256) @ (256, 196)`` the other way round, 3.75 against 5.6 ms.
    """
    if call.groups != 1 or call.batch < 2 or call.cg <= call.og:
        return 1
    threads = blas_threads()
    if threads <= 1 or not products_available():
        return 1
    return min(threads, call.batch)


def _blocks(n: int, rows: int, sample_bytes: int, row_bytes: int,
            gemm_row_bytes: int, chunk: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """Blocks ``(n0, n1, r0, r1)`` of samples and first-axis output rows, each about :data:`CHUNK_BYTES`.

    A block holds at least :data:`MIN_ROWS` rows of the window matrix (``gemm_row_bytes`` each), and at
    most a quarter of the memory budget (:func:`convlab.ops.get_memory_budget`). ``chunk`` replaces
    :data:`CHUNK_BYTES` (col2im sizes its column blocks the same way).
    """
    chunk = block_bytes(max(CHUNK_BYTES if chunk is None else chunk, MIN_ROWS * gemm_row_bytes))
    if sample_bytes <= chunk:
        per = max(1, chunk // max(sample_bytes, 1))
        for n0 in range(0, n, per):
            yield n0, min(n, n0 + per), 0, rows
        return
    per = max(1, chunk // max(row_bytes, 1))
    for n0 in range(n):
        for r0 in range(0, rows, per):
            yield n0, n0 + 1, r0, min(rows, r0 + per)


def _windows(call: Call, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    xp = padded_channels_last(x, call.padding, call.input_dilation)  # (N, *S_padded, C)
    y = channels_last(xp, weight, call.stride, call.dilation, call.out_size, call.groups)  # (N, *O, C_out)
    nd = call.nd
    return y.transpose((0, nd + 1) + tuple(range(1, nd + 1)))  # (N, C_out, *O), a view


def channels_last(xp: np.ndarray, weight: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
                  out: Sequence[int], groups: int) -> np.ndarray:
    """The windowed GEMM on an already padded channels-last input ``xp`` ``(N, *S_padded, C_in)``.

    Returns the channels-last output ``(N, *out, C_out)``. ``xp`` may be a view
    (a slice of a larger padded buffer, as the sub-pixel phases use).
    """
    n, c_in = xp.shape[0], xp.shape[-1]
    c_out = weight.shape[0]
    kernel = tuple(weight.shape[2:])
    out = tuple(out)
    nd = len(kernel)
    cg, og = c_in // groups, c_out // groups
    taps = math.prod(kernel)
    dtype = xp.dtype
    win = _window_view(xp, out, kernel, stride, dilation)  # (N, *O, *K, C)
    # Weight matrix with columns ordered like a window: (G, Og, Cg, *K) -> (G, Og, *K, Cg), used transposed
    # (BLAS reads a transposed operand in place). This copy writes runs of Cg contiguous elements; the
    # (G, *K, Cg, Og) order wrote runs of Og, 2.5-6x slower (a weight gradient's correlation, where the
    # "weight" is an output gradient as large as an activation, 1x1 to 112x112 kernels).
    k_axes = tuple(range(3, 3 + nd))
    w_view = weight.reshape((groups, og, cg) + kernel).transpose((0, 1) + k_axes + (2,))  # (G, Og, *K, Cg)
    y = np.empty((n,) + out + (c_out,), dtype=dtype)  # channels-last output
    pieces = kernel_pieces(n * math.prod(out), taps * c_in * dtype.itemsize, kernel[0])
    step = -(-kernel[0] // pieces)  # kernel rows per piece
    piece_row = taps // kernel[0] * step * c_in * dtype.itemsize  # bytes of one window-matrix row of a piece
    chunk = block_bytes(max(CHUNK_BYTES, MIN_ROWS * piece_row))
    blocks = list(_position_blocks((n,) + out, piece_row, chunk))
    buffer = np.empty(max(rows for _, rows in blocks) * piece_row // dtype.itemsize, dtype=dtype)
    part = None
    col_threads = _row_threads(c_out) if groups == 1 and SHARE_WINDOW_COLUMNS else 1
    for k0 in range(0, kernel[0], step):
        k1 = min(kernel[0], k0 + step)
        # the weight columns that meet the windows' kernel rows k0:k1, copied one piece at a time (in a
        # weight gradient's correlation the "weight" is an output gradient, as large as an activation)
        w_piece = np.ascontiguousarray(w_view[:, :, k0:k1], dtype=dtype).reshape(groups, og, -1)  # (G, Og, k*..*Cg)
        w_piece = w_piece.transpose(0, 2, 1)  # (G, k*K[1:]*Cg, Og), read transposed in place
        for index, rows in blocks:
            target = as_view(y[index], (rows, c_out))  # (rows, C_out)
            v = win[index][(slice(None),) * (1 + nd) + (slice(k0, k1),)]  # (b, *O', k, *K[1:], C)
            cols = _gather(buffer, v, groups, rows)  # (G, rows, k*K[1:]*Cg)
            if k0 == 0:
                if groups == 1:
                    _matmul_columns(cols[0], w_piece[0], target, col_threads)
                    continue
                res = np.matmul(cols, w_piece)  # (G, rows, Og), one GEMM per group
                np.copyto(as_view(target, (rows, groups, og)), res.transpose(1, 0, 2))  # (rows, G, Og)
                continue
            # the other kernel rows add their products into the result
            if part is None or part.shape[1] < rows:
                part = np.empty((groups, rows, og), dtype=dtype)
            if groups == 1:
                target += _matmul_columns(cols[0], w_piece[0], part[0, :rows], col_threads)  # (rows, C_out)
                continue
            res = np.matmul(cols, w_piece, out=part[:, :rows])  # (G, rows, Og)
            target += as_view(res.transpose(1, 0, 2).copy(), (rows, c_out))
        del w_piece
    return y


def _position_blocks(shape: tuple[int, ...], position_bytes: int,
                     chunk: int) -> Iterator[tuple[tuple[slice, ...], int]]:
    """Blocks of the output positions ``(N, *O)``, each about ``chunk`` bytes of windows: ``(index, rows)``.

    ``index`` slices a prefix of the axes (samples, then the first output axis, then the next ...):
    whole samples while they fit, else runs of one sample's first-axis slabs, else of the next axis
    within one slab (a 3-D call's depth slice of 56x56 positions is 3136 rows, too many for one block).
    """
    size = math.prod(shape[1:]) * position_bytes  # one index of the first axis
    if size <= chunk or len(shape) == 1:
        per = max(1, chunk // max(size, 1))
        rows = math.prod(shape[1:])
        for i0 in range(0, shape[0], per):
            i1 = min(shape[0], i0 + per)
            yield (slice(i0, i1),), (i1 - i0) * rows
        return
    for i in range(shape[0]):
        for index, rows in _position_blocks(shape[1:], position_bytes, chunk):
            yield (slice(i, i + 1),) + index, rows


def kernel_pieces(rows: int, row_bytes: int, first: int) -> int:
    """Into how many pieces of its first axis (``first`` long) the kernel is split for the window matrix.

    ``rows`` window-matrix rows of ``row_bytes`` each: a block of :data:`MIN_ROWS` of them (or all, when
    fewer) that would exceed :data:`CHUNK_BYTES` is cut along the kernel's first axis instead, each
    piece's windows gathered and multiplied by the weight columns they meet, the products summed: the
    block stays in the cache, and the call's extra memory stays about :data:`CHUNK_BYTES` whatever its
    kernel (a weight gradient's correlation: LeNet's first layer, 800 KB a row; the ResNet stem, 400 KB).
    """
    need = min(rows, MIN_ROWS) * row_bytes
    return max(1, min(first, -(-need // CHUNK_BYTES)))


def _window_view(xcl: np.ndarray, out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> np.ndarray:
    """``view[n, *o, *k, c] = xcl[n, *(o*stride + k*dilation), c]`` of a channels-last ``(N, *S, C)`` array.

    Read-only; length-1 axes get stride 0 (no overflow).
    """
    st = xcl.strides
    o_strides = tuple(0 if o == 1 else st[1 + i] * s for i, (o, s) in enumerate(zip(out, stride, strict=True)))
    k_strides = tuple(0 if k == 1 else st[1 + i] * d for i, (k, d) in enumerate(zip(kernel, dilation, strict=True)))
    return as_strided(xcl, (xcl.shape[0],) + tuple(out) + tuple(kernel) + (xcl.shape[-1],),
                      (st[0],) + o_strides + k_strides + (st[-1],), writeable=False)


def _gather(buffer: np.ndarray, v: np.ndarray, groups: int, rows: int) -> np.ndarray:
    """The im2col copy of the windows ``v`` ``(b, r, *O', *K, C)`` into ``buffer``: ``(G, rows, K*C/G)``.

    Runs of ``(k_last, C)`` contiguous elements; grouped, each group's channels
    are moved in front, ``(b, r, *O', *K, G, Cg) -> (G, b, r, *O', *K, Cg)``.
    """
    size = v.size
    if groups == 1:
        np.copyto(as_view(buffer[:size], v.shape), v)  # (b, r, *O', *K, C)
        return as_view(buffer[:size], (1, rows, size // rows))  # (1, rows, K*C)
    v = v.reshape(v.shape[:-1] + (groups, v.shape[-1] // groups))  # (b, r, *O', *K, G, Cg)
    order = (v.ndim - 2,) + tuple(range(v.ndim - 2)) + (v.ndim - 1,)
    cols = as_view(buffer[:size], (groups,) + v.shape[:-2] + (v.shape[-1],))  # (G, b, r, *O', *K, Cg)
    np.copyto(cols, v.transpose(order))  # (G, b, r, *O', *K, Cg)
    return as_view(cols, (groups, rows, size // (rows * groups)))  # (G, rows, K*Cg)


def weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int], groups: int) -> np.ndarray:
    """The weight gradient of a convolution as im2col + GEMM: ``(C_out, C_in/g, *K)``.

    ``gw[o, c, *k] = sum_{n, p} gy[n, o, *p] * xp[n, c, *(p*stride + k*dilation)]`` for the
    padded input ``xp`` ``(N, C_in, *S_padded)`` and the output gradient ``gy``
    ``(N, C_out, *O)``. The "backward filter" lowering (Chellapilla et al. 2006):
    the window matrix of a block of output positions, ``(rows, K*C_in/g)``, gathered
    from the channels-last input exactly as the forward does, meets the output
    gradient of the same positions, ``(rows, C_out/g)``, in one GEMM
    ``(K*C_in/g, rows) @ (rows, C_out/g)`` per group, summed over the blocks.
    A 1x1 kernel needs no windows: per sample ``gy[n] (C_out, P) @ x[n]^T (P, C_in)``
    on the channels-first arrays, as one batched product with no copies.
    The sum is kept ``(C_out/g, K*C_in/g)`` per group; where it is at least as large as a
    window block each block's product is added into it in place (BLAS ``beta = 1``,
    :func:`._blas.gemm_add`), and where a sample has :data:`MIN_ROWS` positions the blocks lie
    within one sample and read the output gradient where it is (no channels-last copy).
    (Measured and dropped: at stride 1, one GEMM per tap on shifted flat views
    of the input, ``(C_out, N P) @ (N P, C_in)``, needs no window matrix but ran
    2-4x slower: OpenBLAS does not split the long inner dimension over threads.)
    """
    n, c_in = xp.shape[:2]
    c_out = gy.shape[1]
    nd = len(kernel)
    kernel, stride, dilation = tuple(kernel), tuple(stride), tuple(dilation)
    out = gy.shape[2:]
    cg, og = c_in // groups, c_out // groups
    dtype = np.result_type(xp.dtype, gy.dtype)
    taps = math.prod(kernel)
    if taps == 1:
        xs = xp[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride,
                                                                                                strict=True))]
        p = math.prod(out)
        gm = gy.reshape(n, groups, og, p)  # (N, G, Og, P)
        if groups == 1 and dtype in (np.float32, np.float64):
            # one sample at a time, each product added into the gradient in place (BLAS beta = 1): no
            # (N, Og, Cg) stack of per-sample products (ResNet-50's 1x1 layers: 8 MiB beside torch's 1 MiB)
            gw = np.zeros((og, cg), dtype=dtype)

            def rows(o0: int, o1: int) -> None:
                for i in range(n):
                    xi = xs[i].reshape(cg, p).astype(dtype, copy=False)  # (Cg, P), a copy only when strided
                    gemm_add(gw[o0:o1], gm[i, 0, o0:o1].astype(dtype, copy=False), xi.T)  # (o, P) @ (P, Cg)

            threads = _row_threads(og) if SHARE_GRAD_ROWS else 1
            if threads == 1:
                rows(0, og)
            else:
                # each thread adds the products of its share of the output channels (contiguous rows of
                # the gradient) on one BLAS thread: no copy of the gradient, no meeting inside a product
                with split_products(threads):
                    run_shares([functools.partial(rows, a, b) for a, b in share_ranges(og, threads)], threads)
            return gw.reshape((c_out, cg) + kernel)  # (C_out, Cg, *K), K all ones
        xm = xs.reshape(n, groups, cg, p)  # (N, G, Cg, P), a copy only when the stride subsamples
        gw = np.matmul(gm, xm.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, Og, Cg)
        return gw.reshape((c_out, cg) + kernel).astype(dtype, copy=False)  # (C_out, Cg, *K), K all ones
    xcl = np.moveaxis(xp, 1, -1)  # (N, *S_padded, C_in)
    xcl = np.ascontiguousarray(xcl, dtype=dtype)  # (N, *S_padded, C_in)
    win = _window_view(xcl, out, kernel, stride, dilation)  # (N, *O, *K, C)
    inner = math.prod(out[1:])
    row_bytes = inner * taps * c_in * dtype.itemsize
    chunk = WEIGHT_GRAD_CHUNK_BYTES
    if math.prod(out) >= MIN_ROWS:
        # A sample's windows are enough rows for an efficient GEMM: blocks within one sample, whose output
        # gradient rows are a view of the NCHW array (no channels-last copy of it) and whose window block
        # is at most a sample (ResNet-18's 3x3/2 64->128 layer: 17.4 -> 8.4 MiB, same time).
        chunk = min(chunk, row_bytes * out[0])
    blocks = list(_blocks(n, out[0], row_bytes * out[0], row_bytes, taps * c_in * dtype.itemsize, chunk=chunk))
    block_size = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * inner * taps * c_in
    if all(n1 - n0 == 1 for n0, n1, _, _ in blocks):
        # Blocks within one sample (large samples: a long 1-D signal, a large image): the output gradient's
        # rows of a block are a strided (C_out, rows) view of the NCHW array, no channels-last copy of it;
        # per group (Og, rows) @ (rows, K*Cg).
        gyc = gy.astype(dtype, copy=False)

        def rows_of(n0: int, n1: int, r0: int, r1: int) -> np.ndarray:
            return gyc[n0, :, r0:r1].reshape(groups, og, -1)  # (G, Og, rows), a view for contiguous gy
    else:
        gcl = np.ascontiguousarray(np.moveaxis(gy, 1, -1), dtype=dtype)  # (N, *O, C_out)

        def rows_of(n0: int, n1: int, r0: int, r1: int) -> np.ndarray:
            # (rows, G, Og) -> (G, Og, rows): a view of whole rows of contiguous samples
            return gcl[n0:n1, r0:r1].reshape(-1, groups, og).transpose(1, 2, 0)

    # The sum is kept (G, Og, K*Cg), the orientation whose reordering into (C_out, Cg, *K) moves runs of
    # K*Cg elements: from (G, K*Cg, Og) that copy took 13.7 ms against 3.4 ms (512 channels 3x3, one thread)
    shape = (groups, og, taps * cg)
    threads = _reduction_threads(shape, block_size, len(blocks), dtype)

    def share(worker: int) -> np.ndarray:
        buffer = np.empty(block_size, dtype=dtype)
        total_t = np.zeros(shape, dtype=dtype)
        part = _part_buffer(total_t[0], buffer)
        for n0, n1, r0, r1 in blocks[worker::threads]:
            rows = (n1 - n0) * (r1 - r0) * inner
            g_rows = rows_of(n0, n1, r0, r1)  # (G, Og, rows)
            cols = _gather(buffer, win[n0:n1, r0:r1], groups, rows)  # (G, rows, K*Cg)
            for g in range(groups):
                _add_product(total_t[g], g_rows[g], cols[g], part)  # (Og, rows) @ (rows, K*Cg)
        return total_t

    if threads == 1:
        total_t = share(0)
    else:
        # a thin product (a small gradient summed over many rows) on several threads: each thread sums its
        # share of the blocks into a gradient of its own on one BLAS thread, the shares added at the end
        totals: list[np.ndarray | None] = [None] * threads

        def run(worker: int) -> None:
            totals[worker] = share(worker)

        with split_products(threads):
            run_shares([functools.partial(run, w) for w in range(threads)], threads)
        total_t = totals[0]
        for other in totals[1:]:
            total_t += other
    # (G, Og, *K, Cg) -> (G, Og, Cg, *K) -> (C_out, Cg, *K)
    gw = total_t.reshape((groups, og) + kernel + (cg,)).transpose((0, 1, nd + 2) + tuple(range(2, nd + 2)))
    return np.ascontiguousarray(gw).reshape((c_out, cg) + kernel)  # (C_out, Cg, *K)


def _reduction_threads(shape: tuple[int, ...], block_size: int, blocks: int, dtype: np.dtype) -> int:
    """On how many threads the weight gradient's blocks are summed, each on one BLAS thread into its own
    gradient, or 1 (BLAS splits each block's product over its threads).

    Several where BLAS runs on several threads, threadpoolctl can hold it to one, there are blocks to share
    and the gradient is smaller than a window block (the product is thin: a small output summed over many
    rows, ``(64, 12544) @ (12544, 147)`` per sample for the ResNet stem). BLAS splits a product's output
    among its threads, which meet after every slice of the long sum: on a busy 2-core Intel Xeon that call
    took 190-260 ms on two BLAS threads against 30 ms on one. A gradient as large as a block (ResNet-18's
    512-channel 3x3: 9 MiB) stays with BLAS, whose threads share its output; a copy per thread would
    double it.
    """
    if blocks < 2 or math.prod(shape) >= block_size:  # the gradient is at least a window block
        return 1
    threads = blas_threads()
    if threads <= 1 or not products_available():
        return 1
    return min(threads, blocks)


def _row_threads(rows: int) -> int:
    """Among how many threads ``rows`` rows (or columns) of a product are shared, each on one BLAS thread, or 1:
    a 1x1 weight gradient's rows (:data:`SHARE_GRAD_ROWS`), a wide 1x1 layer's output channels
    (:data:`SHARE_WIDE_ROWS`), a window GEMM's output channels (:data:`SHARE_WINDOW_COLUMNS`).

    Several where BLAS runs on several threads, threadpoolctl can hold it to one, and each thread gets at
    least a few rows. ResNet-50's 1x1 1024->256 at 14x14 (batch 8), busy 2-core Xeon: 79-97 ms on two BLAS
    threads (their meetings inside each per-sample product wait for a thread another process holds),
    15-20 ms on one.
    """
    threads = blas_threads()
    if threads <= 1 or not products_available():
        return 1
    return max(1, min(threads, rows // 8))


def _part_buffer(total: np.ndarray, block: np.ndarray) -> np.ndarray | None:
    """The buffer a block's product is written to before it is added to ``total``, or None to add it in place.

    In place (:func:`._blas.gemm_add`, BLAS ``beta = 1``) where the gradient of one group is at least as
    large as the window block: a second array of its size would be the largest temporary of the call
    (ResNet-18's 512-channel 3x3 layer: 9 MiB). A smaller gradient keeps ``np.matmul`` into this buffer and
    one add: NumPy's OpenBLAS ran the stem's thin products ``(64, 12544) @ (12544, 147)`` 1.4x faster than
    SciPy's (measured on an Intel Xeon, OpenBLAS 0.3.31 against 0.3.30).
    """
    if total.nbytes >= block.nbytes:
        return None
    return np.empty_like(total)


def _add_product(total: np.ndarray, a: np.ndarray, b: np.ndarray, part: np.ndarray | None) -> None:
    """``total += a @ b``: in place where ``part`` is None, else through ``part``."""
    if part is None:
        gemm_add(total, a, b)
        return
    np.matmul(a, b, out=part)
    total += part


#: Block size of the weight gradient's window matrix: larger than the forward's, since each block's
#: product is added into the whole (K*C_in/g, C_out/g) gradient.
WEIGHT_GRAD_CHUNK_BYTES = 8 * 2**20


def estimate(call: Call) -> Estimate:
    """The GEMM, the padded channels-last copy and the window gather.

    The GEMM of ``N P C_out (C_in/g) K`` MACs (``P`` output positions, ``K`` taps)
    with inner dimension ``K C_in/g`` (divided by the pieces the kernel is cut
    into: :func:`kernel_pieces`) and ``C_out/g`` columns; the padded
    channels-last copy of the input, the weight matrix's reordering copy; the
    window gather, ``N P K C_in`` elements written and read (and the per-group
    transposes when grouped); the sums of the pieces' products. A 1x1 kernel:
    the GEMM, the output, and the copies padding or a stride need.
    """
    b = call.dtype.itemsize
    input_bytes = math.prod(call.x_shape) * b
    if all(k == 1 for k in call.kernel):
        # No copy of the input at stride 1 without padding: an NCHW input is multiplied in place, and the
        # channels-last view a previous gemm call returned is contiguous once moved back. Padding copies the
        # padded input; a stride compacts the subsampled positions; the GEMM writes the output.
        compute = gemm_seconds(call.macs, call.cg, call.og, call.groups, call.dtype)
        padded = any(p != (0, 0) for p in call.padding) or any(ld != 1 for ld in call.input_dilation)
        moved = 2 * call.batch * call.c_in * math.prod(call.padded_size) * b if padded else 0
        if any(s > 1 for s in call.stride):
            moved += 2 * call.batch * call.c_in * call.positions * b
        moved += math.prod(call.out_shape) * b
        seconds = compute + stream(moved)
        return Estimate(seconds, f"1x1: GEMM {fmt(compute)} + copies and output {fmt(stream(moved))}")
    padded = call.batch * call.c_in * math.prod(call.padded_size) * b
    gathered = call.batch * call.positions * call.taps * call.c_in * b
    rows = call.batch * call.positions
    pieces = kernel_pieces(rows, call.taps * call.c_in * b, call.kernel[0])
    blocks = max(pieces, gathered // CHUNK_BYTES)
    # each piece of the kernel is a GEMM with 1/pieces of the inner dimension, its product added to the result
    compute = gemm_seconds(call.macs, max(1, call.taps * call.cg // pieces), call.og, blocks * call.groups,
                           call.dtype)
    weight_bytes = math.prod(call.w_shape) * b
    # the transposing copies count twice: the padded channels-last input; the weight matrix's copy
    # (small in a layer's forward; the size of an activation in a weight gradient's correlation) and
    # the window gather are plain copies (read and written once)
    moved = 2 * (input_bytes + padded) + 2 * weight_bytes + 2 * gathered
    moved += 3 * (pieces - 1) * rows * call.c_out * b  # the sums of the pieces' products
    if call.groups > 1:
        moved += 2 * gathered + 2 * math.prod(call.out_shape) * b  # per-group transposes
    seconds = compute + stream(moved) + 4 * blocks * MACHINE.call_seconds
    split = f", kernel in {pieces} pieces" if pieces > 1 else ""
    return Estimate(seconds, f"GEMM {fmt(compute)} + copies {fmt(stream(moved))} "
                             f"({gathered / 2**20:.3g} MiB of windows{split})")


def weight_grad_estimate(call: Call) -> Estimate:
    """Seconds of :func:`weight_grad` on the weight gradient whose correlation ``call`` describes.

    ``call`` is the correlation as the ops describe it (input ``(C_in/g, g*N, *S)``, kernel ``(C_out, N,
    *O)``, the gradient's taps as its output size). The direct path is not that correlation's GEMM: per
    block of ``rows`` output positions one product ``(C_out/g, rows) @ (rows, K*C_in/g)`` per group (the
    inner dimension is the block's rows), the input moved to channels-last once, the windows gathered
    (``N P K C_in`` elements written and read), the output gradient moved to channels-last where a sample
    has fewer than :data:`MIN_ROWS` positions (else read in place), each block's product added through a
    buffer where the gradient is smaller than a block (else in place), the final reordering of the gradient.
    A 1x1 kernel: one product per sample on the NCHW arrays.
    """
    b = call.dtype.itemsize
    groups = call.groups
    cg = call.x_shape[0]  # the correlation's batch axis holds the input channels of a group
    c_out, n = call.w_shape[:2]  # its kernel is the output gradient (C_out, N, *O)
    out = call.kernel  # the output gradient's positions
    positions, taps = math.prod(out), math.prod(call.out_size)
    c_in = cg * groups
    macs = n * positions * taps * cg * c_out
    input_bytes = math.prod(call.x_shape) * b
    grad_bytes = c_out * cg * taps * b
    if taps == 1:
        compute = gemm_seconds(macs, positions, cg, n * groups, call.dtype)
        moved = 2 * input_bytes if any(s > 1 for s in call.dilation) else 0  # the correlation's dilation: the stride
        return Estimate(compute + stream(moved), f"1x1: per-sample GEMMs {fmt(compute)}")
    row_bytes = taps * c_in * b
    chunk = WEIGHT_GRAD_CHUNK_BYTES
    if positions >= MIN_ROWS:
        chunk = min(chunk, row_bytes * positions)
    chunk = block_bytes(max(chunk, MIN_ROWS * row_bytes))
    rows = max(1, min(n * positions, chunk // row_bytes))
    blocks = -(-n * positions // rows)
    compute = gemm_seconds(macs, rows, taps * cg, blocks * groups, call.dtype)
    gathered = n * positions * taps * c_in * b
    moved = 2 * input_bytes + 2 * gathered + 2 * grad_bytes
    if positions < MIN_ROWS:
        moved += 2 * n * c_out * positions * b  # the output gradient moved to channels-last
    if grad_bytes < rows * row_bytes:
        moved += 3 * blocks * grad_bytes  # each block's product added through a buffer
    seconds = compute + stream(moved) + 4 * blocks * groups * MACHINE.call_seconds
    return Estimate(seconds, f"direct GEMM gradient {fmt(compute)} + copies {fmt(stream(moved))} "
                             f"({blocks} blocks of {rows} rows)")


ALGORITHM = Algorithm(
    name="gemm",
    summary="im2col tuned: channels-last windows, blocked, 1x1 as a GEMM",
    primitive=conv_general,
    estimate=estimate,
    fixed_seconds=30e-6,
)
