"""Factorizations of convolution kernels: the weights of the family's cheaper members, found from a full kernel.

* spatially separable: a kernel that is an outer product of 1-D vectors
  (:func:`is_separable`, :func:`separable_factors`), or its best rank-r
  approximation from the SVD (Eckart-Young, :func:`low_rank_approximation`),
  feeds :func:`~convlab.ops.family.separable_conv`;
* flattened: the best rank-1 approximation of each 3-D filter (Jin, Dundar &
  Culurciello, arXiv:1412.5474, :func:`flatten_filters`) feeds
  :func:`~convlab.ops.family.flattened_conv`;
* depthwise-separable: the standard weight a depthwise + pointwise pair
  computes (:func:`depthwise_separable_equivalent_weight`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_array

__all__ = [
    "FlattenedFilters",
    "LowRank",
    "depthwise_separable_equivalent_weight",
    "flatten_filters",
    "is_separable",
    "low_rank_approximation",
    "separable_factors",
    "separable_rank",
]


# --------------------------------------------------------------------------- depthwise-separable


def depthwise_separable_equivalent_weight(depthwise_weight: np.ndarray, pointwise_weight: np.ndarray,
                                          in_channels: int) -> np.ndarray:
    """The standard convolution weight ``(C_out, C_in, *k)`` that a depthwise-separable pair computes.

    Depthwise channel ``q = c*m + j`` filters input channel ``c``, so
    ``w[o, c] = sum_j pointwise[o, c*m + j] * depthwise[c*m + j, 0]``.

    Examples
    --------
    >>> import numpy as np
    >>> depthwise_separable_equivalent_weight(np.ones((6, 1, 3, 3)), np.ones((4, 6)), 3).shape
    (4, 3, 3, 3)
    """
    fn = "depthwise_separable_equivalent_weight"
    dw = as_array(fn, "depthwise_weight", depthwise_weight)
    pw = as_array(fn, "pointwise_weight", pointwise_weight)
    pw = pw.reshape(pw.shape[:2])  # (C_out, C_in*m)
    c_mid, kernel = dw.shape[0], dw.shape[2:]
    if c_mid % in_channels or pw.shape[1] != c_mid:
        raise ValueError(f"{fn}: depthwise weight {dw.shape} and pointwise weight {pw.shape} do not chain "
                         f"for in_channels={in_channels}")
    m = c_mid // in_channels
    pw_split = pw.reshape(pw.shape[0], in_channels, m)  # (C_out, C_in, m)
    dw_split = dw.reshape(in_channels, m, -1)  # (C_in, m, prod(k))
    w = np.einsum("ocj,cjk->ock", pw_split, dw_split)  # (C_out, C_in, prod(k))
    return w.reshape((pw.shape[0], in_channels) + kernel)  # (C_out, C_in, *k)


# --------------------------------------------------------------------------- spatially separable


def separable_rank(kernel: np.ndarray, tol: float | None = None) -> int:
    """Numerical rank of a 2-D kernel (singular values above ``tol``).

    ``tol`` defaults to NumPy's ``matrix_rank`` rule, ``s_max * max(shape) * eps``.
    A kernel is spatially separable exactly when its rank is 1.

    Examples
    --------
    >>> import numpy as np
    >>> separable_rank(np.outer([1, 2, 1], [-1, 0, 1])), separable_rank(np.eye(3))
    (1, 3)
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"separable_rank: `kernel` must be 2-D, got shape {k.shape}")
    return int(np.linalg.matrix_rank(k, tol=tol))


def is_separable(kernel: np.ndarray, tol: float | None = None) -> bool:
    """Whether an N-d kernel is an outer product of 1-D vectors (every unfolding has rank <= 1).

    Examples
    --------
    >>> import numpy as np
    >>> is_separable(np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]))   # Sobel
    True
    >>> is_separable(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))     # Laplacian
    False
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim < 1:
        raise ValueError(f"is_separable: `kernel` must have at least one dimension, got shape {k.shape}")
    for axis in range(k.ndim):
        unfolding = np.moveaxis(k, axis, 0).reshape(k.shape[axis], -1)  # (k[axis], prod of the other sizes)
        if np.linalg.matrix_rank(unfolding, tol=tol) > 1:
            return False
    return True


def separable_factors(kernel: np.ndarray, tol: float | None = None) -> list[np.ndarray]:
    """1-D factors whose outer product is the kernel: ``kernel = f0 (x) f1 (x) ...``.

    Every factor after the first is scaled so its first non-zero entry is +-1;
    the first factor carries the scale. Raises ValueError for a non-separable
    kernel (use :func:`low_rank_approximation`).

    Examples
    --------
    >>> import numpy as np
    >>> col, row = separable_factors(np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    >>> col, row
    (array([1., 2., 1.]), array([-1.,  0.,  1.]))
    """
    k = np.asarray(kernel, dtype=np.float64)
    if not is_separable(k, tol):
        raise ValueError(
            f"separable_factors: the kernel of shape {k.shape} is not separable (some unfolding has rank > 1); "
            "use low_rank_approximation for the best separable approximation"
        )
    if not np.any(k):
        return [np.zeros(n) for n in k.shape]
    # The position of the largest entry gives a non-zero fibre along every axis.
    anchor = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    factors = []
    for axis in range(k.ndim):
        fibre = k[anchor[:axis] + (slice(None),) + anchor[axis + 1:]].copy()
        if axis > 0:
            fibre = fibre / abs(fibre[np.flatnonzero(fibre)[0]])
        factors.append(fibre)
    # Rescale the first factor so the outer product reproduces the kernel.
    product = factors[0]
    for f in factors[1:]:
        product = np.multiply.outer(product, f)
    scale = k[anchor] / product[anchor]
    factors[0] = factors[0] * scale
    return factors


class LowRank(NamedTuple):
    """Best rank-``r`` approximation of a 2-D kernel (Eckart-Young), as ``r`` separable terms."""

    approximation: np.ndarray
    columns: list[np.ndarray]  # u_i * sqrt(s_i)
    rows: list[np.ndarray]  # v_i * sqrt(s_i)
    error: float  # Frobenius norm of kernel - approximation = sqrt(sum of discarded s_i^2)
    relative_error: float


def low_rank_approximation(kernel: np.ndarray, rank: int = 1) -> LowRank:
    """The best rank-``rank`` approximation of a 2-D kernel and its error, from the SVD.

    Each term ``columns[i] (x) rows[i]`` is separable, so a rank-r kernel costs
    ``r`` pairs of 1-D convolutions.

    Examples
    --------
    >>> import numpy as np
    >>> lr = low_rank_approximation(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]), rank=1)
    >>> round(lr.relative_error, 4)
    0.1005
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"low_rank_approximation: `kernel` must be 2-D, got shape {k.shape}")
    if not 1 <= rank <= min(k.shape):
        raise ValueError(f"low_rank_approximation: `rank` (={rank}) must be in [1, {min(k.shape)}]")
    u, s, vt = np.linalg.svd(k)
    cols = [u[:, i] * np.sqrt(s[i]) for i in range(rank)]
    rows = [vt[i] * np.sqrt(s[i]) for i in range(rank)]
    approx = sum(np.outer(c, r) for c, r in zip(cols, rows, strict=True))
    error = float(np.sqrt(np.sum(s[rank:] ** 2)))
    norm = float(np.linalg.norm(k))
    return LowRank(approx, cols, rows, error, error / norm if norm else 0.0)


# --------------------------------------------------------------------------- flattened


class FlattenedFilters(NamedTuple):
    """Rank-1 factors of every 3-D filter: ``w[o] ~ channel[o] (x) vertical[o] (x) horizontal[o]``."""

    channel: np.ndarray  # (C_out, C_in)
    vertical: np.ndarray  # (C_out, kh)
    horizontal: np.ndarray  # (C_out, kw)
    approximation: np.ndarray  # (C_out, C_in, kh, kw)
    relative_error: float  # ||w - approximation|| / ||w||


def flatten_filters(weight: np.ndarray, iterations: int = 100) -> FlattenedFilters:
    """Best rank-1 approximation of each ``C_in x kh x kw`` filter (Jin et al., arXiv:1412.5474).

    Found by alternating least squares (higher-order power iteration) started
    from the leading singular vectors of each unfolding; exact for rank-1
    filters, and the error is reported for a general filter.

    Shape
    -----
    ``weight (C_out, C_in, kh, kw)`` -> ``channel (C_out, C_in)``, ``vertical (C_out, kh)``,
    ``horizontal (C_out, kw)``: ``C_in + kh + kw`` numbers per filter instead of ``C_in*kh*kw``.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.einsum("c,h,w->chw", [1.0, 2.0], [1.0, 0.0, -1.0], [1.0, 2.0, 1.0])[None]   # rank 1
    >>> f = flatten_filters(w)
    >>> f.channel.shape, f.vertical.shape, f.horizontal.shape, f.relative_error < 1e-12
    ((1, 2), (1, 3), (1, 3), True)
    """
    fn = "flatten_filters"
    w = as_array(fn, "weight", weight).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"{fn}: `weight` must be (C_out, C_in, kh, kw), got shape {w.shape}")
    c_out = w.shape[0]
    factors = [np.zeros((c_out, n)) for n in w.shape[1:]]
    approx = np.zeros_like(w)
    for o in range(c_out):
        t = w[o]
        # Unfolding a of the (C_in, kh, kw) filter: (t.shape[a], product of the other two sizes).
        vecs = [np.linalg.svd(np.moveaxis(t, a, 0).reshape(t.shape[a], -1))[0][:, 0] for a in range(3)]
        for _ in range(iterations):
            vecs[0] = np.einsum("chw,h,w->c", t, vecs[1], vecs[2])
            vecs[0] /= np.linalg.norm(vecs[0]) or 1.0
            vecs[1] = np.einsum("chw,c,w->h", t, vecs[0], vecs[2])
            vecs[1] /= np.linalg.norm(vecs[1]) or 1.0
            vecs[2] = np.einsum("chw,c,h->w", t, vecs[0], vecs[1])
        scale = np.linalg.norm(vecs[2])
        vecs[2] = vecs[2] / (scale or 1.0)
        factors[0][o], factors[1][o], factors[2][o] = vecs[0] * scale, vecs[1], vecs[2]
        approx[o] = np.einsum("c,h,w->chw", *(f[o] for f in factors))
    norm = float(np.linalg.norm(w))
    err = float(np.linalg.norm(w - approx)) / norm if norm else 0.0
    return FlattenedFilters(factors[0], factors[1], factors[2], approx, err)
