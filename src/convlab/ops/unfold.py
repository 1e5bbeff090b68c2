"""Unfold (im2col) and fold (col2im), N-d, forward and backward.

``unfold`` copies every kernel window of a zero-padded input into a column;
``fold`` adds columns back into an array, summing where windows overlap. One
is the adjoint of the other, so each one's gradient is the other::

    unfold:  cols[n, c*K + k, l] = x_pad[n, c, *(o*stride + k*dilation)]
    fold:    x_pad[n, c, *(o*stride + k*dilation)] += cols[n, c*K + k, l]

where ``k`` is the row-major index of a kernel tap among ``K = prod(kernel_size)``
and ``l`` the row-major index of the output position ``o``. In 2-D this is
exactly the layout of ``torch.nn.functional.unfold`` / ``fold``; in N-d the
same rule runs over more axes. A convolution is ``weight.reshape(C_out, -1) @
unfold(x)``, which is why im2col + GEMM is the classic convolution algorithm.

Padding accepts every form of :class:`convlab.spec.ConvSpec` (ints, per-dimension
ints, ``(lo, hi)`` pairs, ``'valid'``, ``'same'``, ``'same_tf'``, ``'full'``,
``'causal'``), always zeros; PyTorch takes ints only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..shapes import conv_output_shape, resolve_padding
from ..spec import MAX_INT, ConvSpec, as_ndim, as_tuple, entries
from ._checks import as_array, check_budget, compute_dtype, split_batch
from .algorithms._common import sliding_windows
from .padding import pad_pairs, pad_pairs_vjp

__all__ = ["check_grad_output", "fold", "fold_vjp", "scatter_windows", "unfold", "unfold_vjp"]

Pairs = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- shared pieces


def scatter_windows(
    cols: np.ndarray,
    padded_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """The adjoint of :func:`~convlab.ops.algorithms._common.sliding_windows`: add windows back.

    ``cols`` is ``(N, C, *K, *O)`` (a broadcast view is fine); the result
    ``out`` of shape ``(N, C, *padded_size)`` has
    ``out[n, c, *(o*stride + k*dilation)] += cols[n, c, *k, *o]``. The loop runs
    over the kernel taps only: for one tap, the positions ``o*stride + k*dilation``
    are distinct, so each tap is one strided, conflict-free addition.
    """
    nd = len(kernel_size)
    out_size = cols.shape[2 + nd:]
    out = np.zeros(cols.shape[:2] + tuple(padded_size), dtype=cols.dtype)
    for tap in np.ndindex(*kernel_size):
        region = tuple(
            slice(k * d, k * d + (o - 1) * s + 1, s)
            for k, d, o, s in zip(tap, dilation, out_size, stride, strict=True)
        )
        out[(slice(None), slice(None)) + region] += cols[(slice(None), slice(None)) + tap]  # (N, C, *O)
    return out


def check_grad_output(
    fn: str, grad_output: object, expected: tuple[int, ...], unbatched: bool, dtype: np.dtype
) -> np.ndarray:
    """``grad_output`` as a batched array of the forward output's shape ``expected`` and the input's dtype."""
    g = as_array(fn, "grad_output", grad_output)
    gb = g[None] if unbatched and g.ndim == len(expected) - 1 else g
    if gb.shape != expected:
        shown = expected[1:] if unbatched else expected
        raise ValueError(f"{fn}: `grad_output` must have the output's shape {shown}, got {g.shape}")
    if g.dtype != dtype:
        raise TypeError(f"{fn}: `grad_output` has dtype {g.dtype}, but the input has {dtype}")
    return gb


def _ndim(fn: str, ndim: int | None, *sized: tuple[str, object]) -> int:
    """Spatial dimensions: ``ndim`` if given, else the length of the first sequence in ``sized``, else 2 (PyTorch)."""
    if ndim is not None:
        return as_ndim(fn, ndim)
    for name, value in sized:
        items = entries(fn, name, value)
        if items is not None:
            return as_ndim(fn, len(items), f"len({name})")
    return 2


def _spec(fn: str, nd: int, kernel_size, dilation, padding, stride) -> ConvSpec:
    return ConvSpec(kernel_size, stride, padding, dilation, ndim=nd, name=fn)


# --------------------------------------------------------------------------- unfold


def _gathered(spatial: Sequence[int], spec: ConvSpec, pads: Pairs, out_size: Sequence[int]) -> bool:
    """Whether the windows are gathered by index (:func:`_index_maps`) instead of viewed in a padded copy.

    A padded copy of the input is what a strided window view needs; it is the
    fast way while the padding is small against the data. Where the padded
    input would be more than twice the input and the columns together (a
    padding or a stride much larger than the input), the windows are gathered
    instead, so the memory and the work follow the input and the columns,
    never the padding.
    """
    padded = math.prod(max(0, size + lo + hi) for size, (lo, hi) in zip(spatial, pads, strict=True))
    return padded > 2 * (math.prod(spatial) + math.prod(spec.kernel_size) * math.prod(out_size))


def _index_maps(spatial: Sequence[int], spec: ConvSpec, pads: Pairs, out_size: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Per spatial dimension, the input index each (tap, output) reads: ``o*s + k*d - lo``, or ``S`` in the padding.

    Dimension ``i``'s array is shaped ``(1, .., K_i, .., 1, .., O_i, .., 1)`` (``K_i`` at
    axis ``i``, ``O_i`` at axis ``nd + i``), so the maps broadcast to ``(*K, *O)``.
    Index ``S`` reads the zero appended to the input. Every value computed stays
    within int64 whatever the hyperparameters (each below ``2**62``): the outputs
    whose window starts past the input (``o*s - lo > S``) and the taps reaching
    past it from the leftmost start (``k*d > S - 1 + lo``) are never computed.
    """
    nd = spec.ndim
    maps = []
    for i, (size, o, k, st, d, (lo, _)) in enumerate(zip(spatial, out_size, spec.kernel_size, spec.stride,
                                                         spec.dilation, pads, strict=True)):
        index = np.full((k, o), size, dtype=np.int64)  # (K_i, O_i)
        outs = max(0, min(o, (size + lo) // st + 1))  # o*s - lo <= S: within [-lo, S]
        taps = max(0, min(k, (size - 1 + lo) // d + 1))  # k*d <= S - 1 + lo
        if outs and taps:
            start = np.arange(outs, dtype=np.int64) * st - lo  # (O',)
            reach = start[None, :] + (np.arange(taps, dtype=np.int64) * d)[:, None]  # (K', O')
            index[:taps, :outs] = np.where((reach >= 0) & (reach < size), reach, size)
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = k, o
        maps.append(index.reshape(shape))
    return tuple(maps)


def _unfold_raw(x: np.ndarray, spec: ConvSpec, pads: Pairs, out_size: tuple[int, ...]) -> np.ndarray:
    """im2col of batched ``x`` ``(N, C, *S)`` -> ``(N, C*prod(K), prod(O))``."""
    nd = spec.ndim
    n, c = x.shape[:2]
    shape = (n, c * math.prod(spec.kernel_size), math.prod(out_size))
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=x.dtype)
    if _gathered(x.shape[2:], spec, pads, out_size):
        xz = pad_pairs(x, ((0, 1),) * nd, "constant")  # (N, C, *(S + 1)): index S reads a zero
        cols = xz[(slice(None), slice(None)) + _index_maps(x.shape[2:], spec, pads, out_size)]  # (N, C, *K, *O)
        return cols.reshape(shape)  # (N, C*K, L)
    xp = pad_pairs(x, pads, "constant")  # (N, C, *S_padded)
    windows = sliding_windows(xp, spec.kernel_size, spec.stride, spec.dilation, out_size)  # (N, C, *O, *K)
    kernel_axes = tuple(range(2 + nd, 2 + 2 * nd))
    out_axes = tuple(range(2, 2 + nd))
    cols = windows.transpose((0, 1) + kernel_axes + out_axes)  # (N, C, *K, *O)
    return cols.reshape(shape)  # (N, C*K, L)


def _fold_raw(cols: np.ndarray, spec: ConvSpec, pads: Pairs, spatial: tuple[int, ...],
              out_size: tuple[int, ...]) -> np.ndarray:
    """col2im of batched ``cols`` ``(N, C*prod(K), L)`` -> ``(N, C, *spatial)``."""
    n = cols.shape[0]
    taps = math.prod(spec.kernel_size)
    c = cols.shape[1] // taps
    if cols.size == 0 or n * c * math.prod(spatial) == 0:
        return np.zeros((n, c) + spatial, dtype=cols.dtype)
    summed = cols.astype(compute_dtype(cols.dtype), copy=False)  # float16 sums in float32, integers in int64
    blocks = summed.reshape((n, c) + spec.kernel_size + out_size)  # (N, C, *K, *O)
    if _gathered(spatial, spec, pads, out_size):
        out = np.zeros((n, c) + tuple(v + 1 for v in spatial), dtype=summed.dtype)  # index S collects the padding
        np.add.at(out, (slice(None), slice(None)) + _index_maps(spatial, spec, pads, out_size), blocks)
        return out[(slice(None), slice(None)) + tuple(slice(0, v) for v in spatial)].astype(cols.dtype)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads, strict=True))
    out_padded = scatter_windows(blocks, padded, spec.kernel_size, spec.stride, spec.dilation)  # (N, C, *S_padded)
    # Entries read from the zero padding have no input to go back to: crop them.
    return pad_pairs_vjp(out_padded, (n, c) + spatial, pads, "constant").astype(cols.dtype, copy=False)


def _prepare_unfold(fn: str, input, kernel_size, dilation, padding, stride, ndim):
    x = as_array(fn, "input", input)
    nd = _ndim(fn, ndim, ("kernel_size", kernel_size))
    spec = _spec(fn, nd, kernel_size, dilation, padding, stride)
    xb, unbatched = split_batch(fn, "input", x, nd)
    spatial = tuple(int(s) for s in xb.shape[2:])
    pads = resolve_padding(spec, spatial)
    out_size = tuple(int(o) for o in conv_output_shape(spec, spatial))
    n, c = xb.shape[:2]
    if math.prod(out_size) > MAX_INT:  # possible without channels, where the budget sees 0 bytes
        raise ValueError(f"{fn}: the unfolded matrix would have {math.prod(out_size)} columns (output size "
                         f"{out_size}), more than any array can hold (2**62)")
    check_budget(fn, "unfolded matrix", (n, c * math.prod(spec.kernel_size), math.prod(out_size)), x.dtype.itemsize)
    if not _gathered(spatial, spec, pads, out_size):  # else no padded copy is made
        check_budget(fn, "padded input", (n, c) + tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads,
                                                                                           strict=True)),
                     x.dtype.itemsize)
    return xb, unbatched, spec, pads, spatial, out_size


def unfold(
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    stride: int | Sequence[int] = 1,
    *,
    ndim: int | None = None,
) -> np.ndarray:
    """Extract sliding blocks into columns (im2col), any number of spatial dimensions.

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
    kernel_size, dilation, stride : int or tuple
        One entry per spatial dimension.
    padding : int, tuple, (lo, hi) pairs or str
        Zero padding, any form of :class:`convlab.spec.ConvSpec`.
    ndim : int, optional
        Number of spatial dimensions. By default ``len(kernel_size)``, or 2
        when ``kernel_size`` is an int (``torch.nn.functional.unfold`` is 2-D only).

    Returns
    -------
    ndarray
        ``(N, C*prod(kernel_size), L)`` (or ``(C*prod(kernel_size), L)``) in the
        input's dtype: row ``c*K + k`` holds channel ``c`` seen through kernel
        tap ``k`` (row-major), column ``l`` is the row-major output position.

    Shape
    -----
    ``L = prod(O)``, ``O = floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1`` per dimension.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> unfold(x, 2)[0]          # each column is one 2x2 window, flattened
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> unfold(np.arange(5.0).reshape(1, 5), 3, ndim=1)    # unbatched 1-D
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    """
    fn = "unfold"
    xb, unbatched, spec, pads, _, out_size = _prepare_unfold(fn, input, kernel_size, dilation, padding, stride, ndim)
    cols = _unfold_raw(xb, spec, pads, out_size)
    return cols[0] if unbatched else cols


def unfold_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    stride: int | Sequence[int] = 1,
    *,
    ndim: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`unfold` with respect to its input: :func:`fold` of ``grad_output``.

    ``unfold`` copies ``x[i]`` into every column entry that reads it, so the
    gradient of ``x[i]`` is the sum of those entries' gradients: col2im.

    Examples
    --------
    >>> import numpy as np
    >>> unfold_vjp(np.ones((1, 4, 4)), np.zeros((1, 1, 3, 3)), 2)[0, 0]   # windows covering each input
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    fn = "unfold_vjp"
    xb, unbatched, spec, pads, spatial, out_size = _prepare_unfold(fn, input, kernel_size, dilation, padding, stride,
                                                                   ndim)
    n, c = xb.shape[:2]
    g = check_grad_output(fn, grad_output, (n, c * math.prod(spec.kernel_size), math.prod(out_size)), unbatched,
                          xb.dtype)
    grad = _fold_raw(g, spec, pads, spatial, out_size)
    return grad[0] if unbatched else grad


# --------------------------------------------------------------------------- fold


def _prepare_fold(fn: str, input, output_size, kernel_size, dilation, padding, stride, ndim):
    cols = as_array(fn, "input", input)
    nd = _ndim(fn, ndim, ("output_size", output_size), ("kernel_size", kernel_size))
    spec = _spec(fn, nd, kernel_size, dilation, padding, stride)
    spatial = as_tuple(fn, "output_size", output_size, nd, minimum=1)
    if cols.ndim == 3:
        unbatched = False
    elif cols.ndim == 2:
        cols, unbatched = cols[None], True
    else:
        raise ValueError(
            f"{fn}: `input` must have 3 dimensions (N, C*prod(kernel_size), L) or 2 (C*prod(kernel_size), L), "
            f"got shape {cols.shape}"
        )
    taps = math.prod(spec.kernel_size)
    if cols.shape[1] % taps:
        raise ValueError(
            f"{fn}: the input's dimension {0 if unbatched else 1} (={cols.shape[1]}) must be divisible by "
            f"prod(kernel_size) (={taps} for kernel_size={spec.kernel_size})"
        )
    pads = resolve_padding(spec, spatial)
    out_size = tuple(int(o) for o in conv_output_shape(spec, spatial))
    if cols.shape[2] != math.prod(out_size):
        count = " * ".join(str(o) for o in out_size) + (f" = {math.prod(out_size)}" if nd > 1 else "")
        raise ValueError(
            f"{fn}: the input's last dimension (={cols.shape[2]}) must be the number of sliding blocks, "
            f"{count} for output_size={spatial}, "
            f"kernel_size={spec.kernel_size}, dilation={spec.dilation}, padding={pads} and stride={spec.stride}"
        )
    n, c = cols.shape[0], cols.shape[1] // taps
    check_budget(fn, "output", (n, c) + spatial, cols.dtype.itemsize)
    if not _gathered(spatial, spec, pads, out_size):  # else no padded copy is made
        check_budget(fn, "padded output", (n, c) + tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads,
                                                                                             strict=True)),
                     cols.dtype.itemsize)
    return cols, unbatched, spec, pads, spatial, out_size


def fold(
    input: np.ndarray,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    stride: int | Sequence[int] = 1,
    *,
    ndim: int | None = None,
) -> np.ndarray:
    """Sum columns back into an array (col2im), the adjoint of :func:`unfold`.

    Overlapping contributions are added; entries that fall in the padding are
    dropped. ``fold(unfold(x))`` is therefore ``x`` times the number of
    windows covering each element, not ``x``.

    Parameters
    ----------
    input : ndarray
        ``(N, C*prod(kernel_size), L)`` or unbatched ``(C*prod(kernel_size), L)``.
    output_size : int or tuple
        The spatial size of the result (without padding).
    kernel_size, dilation, padding, stride
        As in :func:`unfold`.
    ndim : int, optional
        By default ``len(output_size)``, else ``len(kernel_size)``, or 2 when
        both are ints (PyTorch's fold is 2-D only).

    Shape
    -----
    ``(N, C*prod(k), prod(O)) -> (N, C, *output_size)`` with
    ``O = floor((S + p_lo + p_hi - d*(k-1) - 1) / s) + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> fold(np.ones((1, 4, 4)), (3, 3), 2)[0, 0]    # how many 2x2 windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> fold(np.arange(6.0).reshape(2, 3), 8, 2, stride=3, ndim=1)  # unbatched 1-D, gaps stay 0
    array([[0., 3., 0., 1., 4., 0., 2., 5.]])
    """
    fn = "fold"
    cols, unbatched, spec, pads, spatial, out_size = _prepare_fold(fn, input, output_size, kernel_size, dilation,
                                                                   padding, stride, ndim)
    y = _fold_raw(cols, spec, pads, spatial, out_size)
    return y[0] if unbatched else y


def fold_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    stride: int | Sequence[int] = 1,
    *,
    ndim: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`fold` with respect to its input: :func:`unfold` of ``grad_output``.

    ``fold`` adds column entry ``j`` into position ``i(j)``, so the gradient of
    entry ``j`` is the output gradient at ``i(j)`` (zero where ``i(j)`` is padding): im2col.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> fold_vjp(g, np.zeros((1, 4, 4)), (3, 3), 2)[0]
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    fn = "fold_vjp"
    cols, unbatched, spec, pads, spatial, out_size = _prepare_fold(fn, input, output_size, kernel_size, dilation,
                                                                   padding, stride, ndim)
    n, c = cols.shape[0], cols.shape[1] // math.prod(spec.kernel_size)
    g = check_grad_output(fn, grad_output, (n, c) + spatial, unbatched, cols.dtype)
    grad = _unfold_raw(g, spec, pads, out_size)
    return grad[0] if unbatched else grad
