"""The convolution matrix: ``vec(y) = C vec(x)``, dense or sparse, and convolution as one product.

A convolution is linear in its input, so for a fixed weight it is a matrix
``C`` of shape ``(C_out * prod(O), C_in * prod(I))`` (one sample, row-major
``vec``). Row ``(o, p)`` holds the weights that output position ``p`` of
channel ``o`` multiplies with each input element; most entries are zero, so
``scipy.sparse`` is the natural storage. ``C.T`` maps an output-shaped array
back to the input's shape: that is the transposed convolution, and the reason
for its name (Dumoulin & Visin, arXiv:1603.07285, section 4.1).

Every padding mode is a gather (see :mod:`convlab.ops.padding`), so it folds
into ``C`` too: a reflected element adds its weight to the column of the input
element it copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...shapes import conv_output_shape, conv_transpose_output_shape, output_padding_for_size, resolve_padding
from ...spec import ConvSpec, as_bool
from .._checks import as_array, check_budget
from ..padding import source_index
from ._common import primitive_output_size
from ._record import Algorithm

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["ALGORITHM", "conv_general", "conv_matrix"]

_ENTRY_BYTES = 24  # per entry of C before the zeros are dropped: its row, column (int64) and value


def _entries(
    weight: np.ndarray,
    input_size: Sequence[int],
    output_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    index_maps: Sequence[np.ndarray],
    fn: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of ``C`` (duplicates are summed by the sparse constructor).

    ``index_maps[i][q]`` is the input index read at padded position ``q`` of
    spatial dimension ``i``, or -1 for a zero.
    """
    c_out, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    nd = len(kernel)
    og = c_out // groups
    # Per dimension, the input index met by output position p and tap k: map[p*s + k*d], (O_i, K_i).
    per_dim = [
        m[np.arange(o)[:, None] * s + np.arange(k)[None, :] * d]
        for m, o, k, s, d in zip(index_maps, output_size, kernel, stride, dilation, strict=True)
    ]
    # Broadcast to (*O, *K): dimension i's table sits on axes i (output) and nd + i (kernel).
    grids = []
    for i, table in enumerate(per_dim):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = table.shape
        grids.append(table.reshape(shape))  # (1, ..., O_i, ..., 1, ..., K_i, ..., 1): O_i on axis i, K_i on axis nd + i
    valid = np.ones((), dtype=bool)
    flat = np.zeros((), dtype=np.int64)
    for i, grid in enumerate(grids):
        valid = valid & (grid >= 0)
        flat = flat * int(input_size[i]) + np.maximum(grid, 0)
    full = tuple(output_size) + tuple(kernel)
    valid = np.broadcast_to(valid, full).reshape(math.prod(output_size), math.prod(kernel))  # (P, K)
    flat = np.broadcast_to(flat, full).reshape(valid.shape)  # (P, K) flat input position
    positions, taps = valid.shape
    check_budget(fn, "convolution matrix entries", (c_out, cg, positions, taps), _ENTRY_BYTES)
    in_plane = math.prod(input_size)
    o = np.arange(c_out)[:, None, None, None]
    c = (o // og) * cg + np.arange(cg)[None, :, None, None]  # global input channel of (o, c)
    p = np.arange(positions)[None, None, :, None]
    rows = np.broadcast_to(o * positions + p, (c_out, cg, positions, taps))
    cols = c * in_plane + flat[None, None]  # (C_out, Cg, P, K)
    # (C_out, Cg, 1, K) broadcast to (C_out, Cg, P, K)
    vals = np.broadcast_to(weight.reshape(c_out, cg, 1, taps), cols.shape)
    keep = np.broadcast_to(valid[None, None], cols.shape)
    return rows[keep], cols[keep], vals[keep]


def conv_matrix(
    weight: np.ndarray,
    input_size: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
    transposed: bool = False,
    output_padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
    sparse: bool = False,
) -> np.ndarray | scipy.sparse.csr_array:
    """The matrix ``C`` with ``vec(conv(x, weight, ...)) == C @ vec(x)`` for one sample.

    Parameters
    ----------
    weight : ndarray
        ``(C_out, C_in/groups, *kernel)``, or ``(C_in, C_out/groups, *kernel)``
        with ``transposed=True``.
    input_size : sequence of int
        Spatial size of the input (without N and C).
    stride, padding, dilation, groups, padding_mode, flip_kernel
        As in :func:`convlab.ops.conv`.
    transposed, output_padding, output_size
        Build the matrix of :func:`convlab.ops.conv_transpose` instead; it is
        the transpose of the convolution matrix of the same spec.
    sparse : bool
        Return a ``scipy.sparse.csr_array`` instead of a dense array.

    Shape
    -----
    ``(C_out * prod(O), C_in * prod(I))`` where ``O`` is the output size.

    Examples
    --------
    >>> import numpy as np
    >>> C = conv_matrix(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), (4, 4))
    >>> C.shape
    (4, 16)
    >>> C[0].reshape(4, 4)
    array([[1., 2., 3., 0.],
           [4., 5., 6., 0.],
           [7., 8., 9., 0.],
           [0., 0., 0., 0.]])
    """
    fn = "conv_matrix"
    flip_kernel, transposed, sparse = (as_bool(fn, name, value) for name, value in (
        ("flip_kernel", flip_kernel), ("transposed", transposed), ("sparse", sparse)))
    w = as_array(fn, "weight", weight)
    if w.ndim < 3:
        raise ValueError(f"{fn}: `weight` must have at least 3 dimensions, got shape {w.shape}")
    nd = w.ndim - 2
    if isinstance(input_size, (int, np.integer)):
        input_size = (int(input_size),) * nd
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != nd:
        raise ValueError(f"{fn}: `input_size` (={input_size}) must have {nd} entries for a {nd}-d kernel")
    if transposed:
        spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, transposed=True,
                        output_padding=output_padding, ndim=nd, name=fn)
        if output_size is not None:
            spec = spec.with_output_padding(output_padding_for_size(spec, input_size, output_size))
        out_size = tuple(int(o) for o in conv_transpose_output_shape(spec, input_size))
        if not sparse:  # C^T of the convolution from out_size: (C_out_T * prod(O), C_in_T * prod(I))
            check_budget(fn, "dense matrix", (w.shape[1] * spec.groups * math.prod(out_size),
                                              w.shape[0] * math.prod(input_size)), w.dtype.itemsize)
        # The transposed convolution is the adjoint of the convolution (with the same padding
        # mode) from its output space to its input space; with output_padding >= stride that
        # convolution's output is longer than input_size by a few rows, which are cut.
        forward = conv_matrix(w, out_size, spec.stride, spec.padding, spec.dilation, spec.groups,
                              padding_mode=spec.padding_mode, flip_kernel=flip_kernel, sparse=True)
        conv_out = [int(o) for o in conv_output_shape(ConvSpec(w.shape[2:], spec.stride, spec.padding, spec.dilation,
                                                               spec.groups, ndim=nd, name=fn), out_size)]
        keep = _crop_rows(w.shape[0], conv_out, input_size)
        result = forward[keep].T.tocsr()
        return result if sparse else result.toarray()
    spec = ConvSpec(w.shape[2:], stride, padding, dilation, groups, padding_mode, ndim=nd, name=fn)
    if flip_kernel:
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    c_out = w.shape[0]
    c_in = w.shape[1] * spec.groups
    if c_out % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the output channels (weight.shape[0]={c_out})")
    pads = resolve_padding(spec, input_size)
    out_size = tuple(int(o) for o in conv_output_shape(spec, input_size))
    shape = (c_out * math.prod(out_size), c_in * math.prod(input_size))
    # Every size is checked before anything is built: the dense result, the entries (rows, columns and
    # values of every output position and tap) and the per-dimension index maps.
    if not sparse:
        check_budget(fn, "dense matrix", shape, w.dtype.itemsize)
    check_budget(fn, "convolution matrix entries", (c_out, w.shape[1], math.prod(out_size), math.prod(w.shape[2:])),
                 _ENTRY_BYTES)
    for i, (s, (lo, hi)) in enumerate(zip(input_size, pads, strict=True)):
        check_budget(fn, f"index map of spatial dimension {i}", (max(s + lo + hi, 0),), 8)
    mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
    maps = [source_index(fn, mode, s, lo, hi, i) for i, (s, (lo, hi)) in enumerate(zip(input_size, pads, strict=True))]
    rows, cols, vals = _entries(w, input_size, out_size, spec.stride, spec.dilation, spec.groups, maps, fn)
    import scipy.sparse  # imported on first use (a tenth of a second)

    matrix = scipy.sparse.csr_array((vals, (rows, cols)), shape=shape)  # duplicates (modes) are summed
    return matrix if sparse else matrix.toarray()


def _crop_rows(channels: int, have: Sequence[int], want: Sequence[int]) -> np.ndarray:
    """Row indices of a ``(channels, *have)`` grid that lie inside ``(channels, *want)``."""
    grid = np.arange(channels * math.prod(have)).reshape((channels, *have))  # (channels, *have)
    return grid[(slice(None),) + tuple(slice(0, w) for w in want)].reshape(-1)  # (channels * prod(want),)


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """The convolution primitive as one sparse matrix product (same contract as the reference).

    Input dilation and negative padding (cropping) are index maps like any padding:
    dilated-and-padded position ``q`` reads input ``(q - lo) / ld`` when that is a whole
    number inside the input, and a zero otherwise.
    """
    n, c_in = x.shape[:2]
    size = x.shape[2:]
    kernel = weight.shape[2:]
    c_out = weight.shape[0]
    maps = []
    for s, ld, (lo, hi) in zip(size, input_dilation, padding, strict=True):
        dilated = (s - 1) * ld + 1 if s > 0 else 0
        u = np.arange(dilated + lo + hi) - lo
        maps.append(np.where((u >= 0) & (u < dilated) & (u % ld == 0), u // ld, -1))
    padded = tuple(len(m) for m in maps)
    out_size = primitive_output_size(padded, kernel, stride, dilation)
    if n == 0:
        return np.zeros((0, c_out) + out_size, dtype=np.result_type(x, weight))
    rows, cols, vals = _entries(weight, size, out_size, stride, dilation, groups, maps, "conv")
    import scipy.sparse

    matrix = scipy.sparse.csr_array(
        (vals, (rows, cols)), shape=(c_out * math.prod(out_size), c_in * math.prod(size))
    )
    flat = x.reshape(n, -1).T  # (C_in * prod(S), N)
    return np.asarray(matrix @ flat).T.reshape((n, c_out) + out_size)  # (N, C_out, *O)


ALGORITHM = Algorithm(
    name="matrix",
    summary="one sparse matrix product (the convolution matrix)",
    primitive=conv_general,
)
