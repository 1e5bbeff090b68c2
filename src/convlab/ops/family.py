"""The convolution family: pointwise, depthwise, separable, flattened and bottleneck convolutions.

Each member is written as what it is -- a composition of plain convolutions --
and comes with a cost comparison against the standard convolution it replaces
or approximates (from the one cost rule, :mod:`convlab.costs`).

Sources: Howard et al., "MobileNets", arXiv:1704.04861 (depthwise-separable
cost ratio ``1/N + 1/k^2``); Jin, Dundar & Culurciello, "Flattened
Convolutional Neural Networks for Feedforward Acceleration", arXiv:1412.5474;
He et al., "Deep Residual Learning", arXiv:1512.03385 (bottleneck).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..costs import Cost, conv_cost
from ..shapes import conv_output_shape
from ..spec import ConvSpec
from ._checks import as_array, compute_dtype
from .conv import _finish, _prepare_conv, conv
from .shuffle import channel_shuffle

__all__ = [
    "CostComparison",
    "LowRank",
    "bottleneck",
    "bottleneck_cost",
    "depthwise_conv",
    "depthwise_separable_conv",
    "depthwise_separable_cost",
    "depthwise_separable_equivalent_weight",
    "flatten_filters",
    "flattened_conv",
    "flattened_cost",
    "grouped_cost",
    "is_separable",
    "low_rank_approximation",
    "pointwise_conv",
    "separable_conv",
    "separable_factors",
    "separable_rank",
    "shuffled_grouped_conv",
    "spatially_separable_cost",
]


class CostComparison(NamedTuple):
    """A family member's cost next to the standard convolution's."""

    standard: Cost
    variant: Cost

    @property
    def ratio(self) -> float:
        """Variant MACs / standard MACs."""
        return self.variant.macs / self.standard.macs

    @property
    def param_ratio(self) -> float:
        return self.variant.params / self.standard.params


def _output_size(kernel, input_size, stride, padding, dilation, name) -> tuple[int, ...]:
    spec = ConvSpec(tuple(kernel), stride, padding, dilation, ndim=len(kernel), name=name)
    return tuple(int(o) for o in conv_output_shape(spec, tuple(input_size)))


# --------------------------------------------------------------------------- 1x1 and depthwise


def pointwise_conv(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
                   groups: int = 1, *, ndim: int | None = None) -> np.ndarray:
    """1x1 (pointwise) convolution, computed as the matrix product over channels that it is.

    ``y[n, o, *p] = sum_c weight[o, c] * x[n, c, *(p*stride)]``: at every pixel
    the channel vector is multiplied by the ``(C_out, C_in)`` matrix. It mixes
    channels and changes their number without looking at neighbours
    (Network in Network; GoogLeNet's and ResNet's reductions).

    Parameters
    ----------
    weight : ndarray
        ``(C_out, C_in/groups)`` or the conv layout ``(C_out, C_in/groups, 1, ..., 1)``.
    ndim : int, optional
        Number of spatial dimensions. A conv-layout weight says it; with a 2-D
        weight the input is taken as batched ``(N, C, *spatial)`` unless
        ``ndim`` is given (then ``(C, *spatial)`` is read as unbatched).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> pointwise_conv(x, np.array([[1.0, 1.0]]))[0, 0]   # sum of the two channels
    array([[ 4.,  6.],
           [ 8., 10.]])
    """
    fn = "pointwise_conv"
    x = as_array(fn, "input", input)
    w = as_array(fn, "weight", weight)
    if w.ndim < 2 or (w.ndim > 2 and any(k != 1 for k in w.shape[2:])):
        raise ValueError(f"{fn}: `weight` must be (C_out, C_in/groups) or have a 1x1 kernel, got shape {w.shape}")
    nd = w.ndim - 2 if w.ndim > 2 else (ndim if ndim is not None else x.ndim - 2)
    if nd < 1:
        raise ValueError(f"{fn}: `input` of shape {x.shape} has no spatial dimension; expected (N, C, *spatial)")
    w_full = w.reshape(w.shape[:2] + (1,) * nd)  # (C_out, C_in/g, 1, ..., 1)
    if groups != 1:
        return conv(x, w_full, bias, stride, 0, 1, groups, ndim=nd, _fn=fn)
    p = _prepare_conv(fn, nd, x, w_full, bias, stride, 0, 1, 1, "zeros")  # every check, nothing computed
    ct = compute_dtype(p.dtype)
    xs = p.x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in p.spec.stride)]  # (N, C_in, *O)
    y = np.einsum("oc,nc...->no...", w_full.reshape(w.shape[:2]).astype(ct, copy=False),
                  xs.astype(ct, copy=False))  # (N, C_out, *O)
    return _finish(y, p)


def depthwise_conv(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                   dilation=1, *, padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
    """Depthwise convolution: each input channel filtered on its own (``groups = C_in``).

    ``weight`` is ``(C_in * m, 1, *kernel)``; ``m > 1`` is the channel
    multiplier (each input channel gets ``m`` filters; outputs ``c*m .. c*m+m-1``
    come from input channel ``c``).

    Examples
    --------
    >>> import numpy as np
    >>> depthwise_conv(np.ones((1, 3, 5, 5)), np.ones((6, 1, 3, 3))).shape
    (1, 6, 3, 3)
    """
    fn = "depthwise_conv"
    x = as_array(fn, "input", input)
    w = as_array(fn, "weight", weight)
    if w.ndim < 3 or w.shape[1] != 1:
        raise ValueError(f"{fn}: `weight` must be (C_in * multiplier, 1, *kernel), got shape {w.shape}")
    channels = x.shape[1] if x.ndim == w.ndim else x.shape[0]
    return conv(x, w, bias, stride, padding, dilation, channels, padding_mode=padding_mode,
                algorithm=algorithm, _fn=fn)


def depthwise_separable_conv(
    input: np.ndarray,
    depthwise_weight: np.ndarray,
    pointwise_weight: np.ndarray,
    depthwise_bias: np.ndarray | None = None,
    pointwise_bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    dilation=1,
    *,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> np.ndarray:
    """Depthwise convolution followed by a 1x1 convolution (MobileNet, Xception).

    Equal to a standard convolution whose filters are
    ``w[o, c] = pointwise[o, c*m + j] * depthwise[c*m + j]`` summed over ``j``
    (:func:`depthwise_separable_equivalent_weight`), at a fraction
    ``1/C_out + 1/prod(k)`` of its multiplications.

    Examples
    --------
    >>> import numpy as np
    >>> depthwise_separable_conv(np.ones((1, 3, 7, 7)), np.ones((3, 1, 3, 3)), np.ones((128, 3, 1, 1))).shape
    (1, 128, 5, 5)
    """
    mid = depthwise_conv(input, depthwise_weight, depthwise_bias, stride, padding, dilation,
                         padding_mode=padding_mode, algorithm=algorithm)
    pw = as_array("depthwise_separable_conv", "pointwise_weight", pointwise_weight)
    return pointwise_conv(mid, pw.reshape(pw.shape[:2]), pointwise_bias, ndim=np.ndim(depthwise_weight) - 2)


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
    w = np.einsum("ocj,cjk->ock", pw.reshape(pw.shape[0], in_channels, m), dw.reshape(in_channels, m, -1))
    return w.reshape((pw.shape[0], in_channels) + kernel)


def depthwise_separable_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int],
                             input_size: Sequence[int], stride=1, padding=0, dilation=1,
                             multiplier: int = 1) -> CostComparison:
    """Multiplications of a standard convolution vs. depthwise (x multiplier) + pointwise.

    For stride 1 and the same output size the ratio is ``1/C_out + 1/prod(k)``
    (with multiplier 1): MobileNets, arXiv:1704.04861, section 3.1.

    Examples
    --------
    >>> c = depthwise_separable_cost(3, 128, (3, 3), (7, 7))
    >>> c.standard.macs, c.variant.macs, round(c.ratio, 4)
    (86400, 10275, 0.1189)
    """
    out = _output_size(kernel_size, input_size, stride, padding, dilation, "depthwise_separable_cost")
    standard = conv_cost(in_channels, out_channels, kernel_size, out)
    mid = in_channels * multiplier
    depthwise = conv_cost(in_channels, mid, kernel_size, out, groups=in_channels)
    pointwise = conv_cost(mid, out_channels, (1,) * len(kernel_size), out)
    return CostComparison(standard, depthwise + pointwise)


def grouped_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int], input_size: Sequence[int],
                 groups: int, stride=1, padding=0, dilation=1) -> CostComparison:
    """A grouped convolution against the ungrouped one: parameters and MACs divide by ``groups``.

    Examples
    --------
    >>> c = grouped_cost(64, 128, (3, 3), (32, 32), groups=2, padding=1)
    >>> c.param_ratio, c.ratio
    (0.5, 0.5)
    """
    out = _output_size(kernel_size, input_size, stride, padding, dilation, "grouped_cost")
    return CostComparison(conv_cost(in_channels, out_channels, kernel_size, out),
                          conv_cost(in_channels, out_channels, kernel_size, out, groups=groups))


def shuffled_grouped_conv(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
                          padding=0, dilation=1, groups: int = 1, *, padding_mode: str = "zeros",
                          algorithm: str = "auto") -> np.ndarray:
    """Grouped convolution followed by a channel shuffle with the same number of groups (ShuffleNet).

    A stack of grouped convolutions never lets information cross between
    groups; shuffling the output channels (``0 1 2 | 3 4 5 -> 0 3 1 4 2 5``)
    gives every group of the next layer channels from every group of this one.
    With a 1x1 kernel this is ShuffleNet's pointwise group convolution + shuffle
    (Zhang et al., arXiv:1707.01083). The shuffle is a permutation: it costs no
    multiplications, so the cost is that of the grouped convolution
    (:func:`grouped_cost`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(4.0).reshape(1, 4, 1, 1)
    >>> shuffled_grouped_conv(x, np.ones((4, 2, 1, 1)), groups=2)[0, :, 0, 0]   # group sums, interleaved
    array([1., 5., 1., 5.])
    """
    fn = "shuffled_grouped_conv"
    y = conv(input, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode,
             algorithm=algorithm, _fn=fn)
    return channel_shuffle(y, groups, ndim=np.ndim(weight) - 2)


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
        unfolding = np.moveaxis(k, axis, 0).reshape(k.shape[axis], -1)
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
    approx = sum(np.outer(c, r) for c, r in zip(cols, rows))
    error = float(np.sqrt(np.sum(s[rank:] ** 2)))
    norm = float(np.linalg.norm(k))
    return LowRank(approx, cols, rows, error, error / norm if norm else 0.0)


def separable_conv(input: np.ndarray, factors: Sequence[np.ndarray], stride=1, padding=0, dilation=1) -> np.ndarray:
    """Apply a separable kernel as successive 1-D convolutions, one spatial dimension at a time.

    The same kernel ``f0 (x) f1 (x) ...`` is applied to every channel
    (depthwise). Pass ``i`` convolves along spatial dimension ``i`` only, with
    that dimension's stride, padding and dilation, so the result equals the
    full-kernel convolution.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> y = separable_conv(x, [np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])])
    >>> y.shape
    (1, 1, 3, 3)
    """
    fn = "separable_conv"
    x = as_array(fn, "input", input)
    nd = len(factors)
    if x.ndim != nd + 2:
        raise ValueError(f"{fn}: `input` must be (N, C, *spatial) with {nd} spatial dims for {nd} factors, "
                         f"got shape {x.shape}")
    spec = ConvSpec(tuple(len(f) for f in factors), stride, padding, dilation, ndim=nd, name=fn)
    pads = spec.padding
    if isinstance(pads, str):
        raise ValueError(f"{fn}: `padding` 'same_tf' is not supported here; give explicit padding")
    channels = x.shape[1]
    y = x
    for axis, f in enumerate(factors):
        f = np.asarray(f, dtype=x.dtype)
        shape = [1] * nd
        shape[axis] = len(f)
        w = np.broadcast_to(f.reshape(shape), (channels, 1, *shape))  # (C, 1, 1.., k_axis, ..1)
        one_axis = tuple(v if i == axis else d for i, (v, d) in enumerate(zip(spec.stride, (1,) * nd)))
        dil = tuple(v if i == axis else 1 for i, v in enumerate(spec.dilation))
        pad = tuple(p if i == axis else (0, 0) for i, p in enumerate(pads))
        y = conv(y, np.ascontiguousarray(w), None, one_axis, pad, dil, channels, _fn=fn)
    return y


def spatially_separable_cost(kernel_size: Sequence[int], input_size: Sequence[int], channels: int = 1,
                             stride=1, padding=0, dilation=1) -> CostComparison:
    """Multiplications of a full kernel vs. its 1-D factors applied one dimension at a time.

    For an ``N x N`` image and an ``m x m`` kernel (stride 1, no padding) the
    ratio is ``(2N - m + 1) / (m (N - m + 1))``, which tends to ``2/m`` for
    ``N >> m``.

    Examples
    --------
    >>> c = spatially_separable_cost((3, 3), (5, 5))
    >>> c.standard.macs, c.variant.macs
    (81, 72)
    """
    fn = "spatially_separable_cost"
    nd = len(kernel_size)
    spec = ConvSpec(tuple(kernel_size), stride, padding, dilation, ndim=nd, name=fn)
    out = _output_size(kernel_size, input_size, stride, padding, dilation, fn)
    standard = conv_cost(channels, channels, kernel_size, out, groups=channels)
    variant = Cost(0, 0)
    size = list(input_size)
    for axis in range(nd):
        # After pass `axis`, dimensions <= axis have their output size, the rest their input size.
        size[axis] = out[axis]
        k = [1] * nd
        k[axis] = spec.kernel_size[axis]
        variant = variant + conv_cost(channels, channels, k, tuple(size), groups=channels)
    return CostComparison(standard, variant)


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


def flattened_conv(input: np.ndarray, channel: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray,
                   bias: np.ndarray | None = None, stride=1, padding=0) -> np.ndarray:
    """Flattened convolution: a 1-D filter across channels, then one down the rows, then one along the columns.

    Equal to the 2-D convolution with filters ``channel[o] (x) vertical[o] (x)
    horizontal[o]``; costs ``C_in + kh + kw`` weights per filter instead of
    ``C_in * kh * kw``.

    Shape
    -----
    As :func:`convlab.ops.conv` with kernel ``(kh, kw)``:
    ``O = floor((I + p_lo + p_hi - (k-1) - 1) / s) + 1`` per spatial dimension.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 2, 5, 5))
    >>> flattened_conv(x, np.ones((4, 2)), np.ones((4, 3)), np.ones((4, 3)), padding=1).shape
    (1, 4, 5, 5)
    """
    fn = "flattened_conv"
    x = as_array(fn, "input", input)
    ch = as_array(fn, "channel", channel)
    v = as_array(fn, "vertical", vertical)
    h = as_array(fn, "horizontal", horizontal)
    spec = ConvSpec((v.shape[1], h.shape[1]), stride, padding, ndim=2, name=fn)
    if isinstance(spec.padding, str):
        raise ValueError(f"{fn}: `padding` 'same_tf' is not supported here; give explicit padding")
    (pt, pb), (pl, pr) = spec.padding
    c_out = ch.shape[0]
    y = pointwise_conv(x, ch)  # (N, C_out, H, W): the channel pass
    y = conv(y, v.reshape(c_out, 1, -1, 1), None, (spec.stride[0], 1), ((pt, pb), (0, 0)), 1, c_out, _fn=fn)
    return conv(y, h.reshape(c_out, 1, 1, -1), bias, (1, spec.stride[1]), ((0, 0), (pl, pr)), 1, c_out, _fn=fn)


def flattened_cost(in_channels: int, out_channels: int, kernel_size: Sequence[int], input_size: Sequence[int],
                   stride=1, padding=0) -> CostComparison:
    """Standard 2-D convolution vs. its flattened form (channel, vertical, horizontal passes).

    Examples
    --------
    >>> c = flattened_cost(64, 64, (3, 3), (32, 32), padding=1)
    >>> round(c.ratio, 3)
    0.122
    """
    fn = "flattened_cost"
    out = _output_size(kernel_size, input_size, stride, padding, 1, fn)
    kh, kw = kernel_size
    standard = conv_cost(in_channels, out_channels, kernel_size, out)
    mid_h = out[0]
    channel = conv_cost(in_channels, out_channels, (1, 1), input_size)
    # flattened_conv pads the height in the vertical pass and the width only in the horizontal one.
    vertical = conv_cost(out_channels, out_channels, (kh, 1), (mid_h, input_size[1]), groups=out_channels)
    horizontal = conv_cost(out_channels, out_channels, (1, kw), out, groups=out_channels)
    return CostComparison(standard, channel + vertical + horizontal)


# --------------------------------------------------------------------------- bottleneck


def bottleneck(input: np.ndarray, reduce_weight: np.ndarray, conv_weight: np.ndarray, expand_weight: np.ndarray,
               stride=1, groups: int = 1) -> np.ndarray:
    """1x1 reduce, 3x3 (padding 1), 1x1 expand -- the ResNet bottleneck without norms and activations.

    Weights: ``reduce (C_mid, C)``, ``conv (C_mid, C_mid/groups, 3, 3)``, ``expand (C_out, C_mid)``
    (the 1x1 weights may also be in the conv layout); ``stride`` applies to the 3x3.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 256, 8, 8))
    >>> bottleneck(x, np.ones((64, 256)), np.ones((64, 64, 3, 3)), np.ones((256, 64)), stride=2).shape
    (1, 256, 4, 4)
    """
    mid = pointwise_conv(input, reduce_weight)
    mid = conv(mid, conv_weight, None, stride, 1, 1, groups, _fn="bottleneck")
    return pointwise_conv(mid, expand_weight)


def bottleneck_cost(channels: int, bottleneck_channels: int, input_size: Sequence[int],
                    kernel_size: Sequence[int] = (3, 3)) -> CostComparison:
    """One ``k x k`` convolution ``channels -> channels`` vs. the 1x1-reduce, kxk, 1x1-expand bottleneck.

    Examples
    --------
    >>> c = bottleneck_cost(256, 64, (56, 56))
    >>> c.standard.params, c.variant.params
    (589824, 69632)
    """
    fn = "bottleneck_cost"
    pad = tuple(k // 2 for k in kernel_size)
    out = _output_size(kernel_size, input_size, 1, pad, 1, fn)
    standard = conv_cost(channels, channels, kernel_size, out)
    ones = (1,) * len(kernel_size)
    variant = (conv_cost(channels, bottleneck_channels, ones, input_size)
               + conv_cost(bottleneck_channels, bottleneck_channels, kernel_size, out)
               + conv_cost(bottleneck_channels, channels, ones, out))
    return CostComparison(standard, variant)
