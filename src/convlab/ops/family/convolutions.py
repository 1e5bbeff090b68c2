"""The convolution family as operations: pointwise, depthwise, separable, flattened and bottleneck convolutions.

Each member is written as what it is -- a composition of plain convolutions
(:func:`convlab.ops.conv.conv`, with the groups, kernel and stride that make it
that member) -- and so runs on every algorithm the engine has. Their weights can
be found from a full kernel with :mod:`convlab.ops.family.factorization`; what
they save is compared in :mod:`convlab.ops.family.costs`.

Sources: Howard et al., "MobileNets", arXiv:1704.04861; Chollet, "Xception",
arXiv:1610.02357; Jin, Dundar & Culurciello, "Flattened Convolutional Neural
Networks for Feedforward Acceleration", arXiv:1412.5474; Zhang et al.,
"ShuffleNet", arXiv:1707.01083; He et al., "Deep Residual Learning",
arXiv:1512.03385 (bottleneck).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...spec import ConvSpec
from .._checks import as_array
from ..conv import conv
from ..shuffle import channel_shuffle

__all__ = [
    "bottleneck",
    "depthwise_conv",
    "depthwise_separable_conv",
    "flattened_conv",
    "pointwise_conv",
    "separable_conv",
    "shuffled_grouped_conv",
]


# --------------------------------------------------------------------------- 1x1 and depthwise


def pointwise_conv(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
                   groups: int = 1, *, ndim: int | None = None, algorithm: str = "auto") -> np.ndarray:
    """1x1 (pointwise) convolution: a matrix product over channels at every pixel.

    ``y[n, o, *p] = sum_c weight[o, c] * x[n, c, *(p*stride)]``: at every pixel
    the channel vector is multiplied by the ``(C_out, C_in)`` matrix. It mixes
    channels and changes their number without looking at neighbours
    (Network in Network; GoogLeNet's and ResNet's reductions). It runs as
    :func:`~convlab.ops.conv.conv` with a 1x1 kernel, whose GEMM algorithm is
    exactly that matrix product.

    Parameters
    ----------
    weight : ndarray
        ``(C_out, C_in/groups)`` or the conv layout ``(C_out, C_in/groups, 1, ..., 1)``.
    ndim : int, optional
        Number of spatial dimensions. A conv-layout weight says it; with a 2-D
        weight the input is taken as batched ``(N, C, *spatial)`` unless
        ``ndim`` is given (then ``(C, *spatial)`` is read as unbatched).
    algorithm : str
        As in :func:`~convlab.ops.conv.conv` (default ``'auto'``).

    Shape
    -----
    ``O = floor((I - 1) / s) + 1`` per spatial dimension.

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
    return conv(x, w_full, bias, stride, 0, 1, groups, algorithm=algorithm, ndim=nd, _fn=fn)


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
    (:func:`~convlab.ops.family.depthwise_separable_equivalent_weight`), at a
    fraction ``1/C_out + 1/prod(k)`` of its multiplications
    (:func:`~convlab.ops.family.depthwise_separable_cost`).

    Examples
    --------
    >>> import numpy as np
    >>> depthwise_separable_conv(np.ones((1, 3, 7, 7)), np.ones((3, 1, 3, 3)), np.ones((128, 3, 1, 1))).shape
    (1, 128, 5, 5)
    """
    mid = depthwise_conv(input, depthwise_weight, depthwise_bias, stride, padding, dilation,
                         padding_mode=padding_mode, algorithm=algorithm)
    pw = as_array("depthwise_separable_conv", "pointwise_weight", pointwise_weight)
    pw = pw.reshape(pw.shape[:2])  # (C_out, C_in*m), from the conv layout too
    return pointwise_conv(mid, pw, pointwise_bias, ndim=np.ndim(depthwise_weight) - 2)


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
    (:func:`~convlab.ops.family.grouped_cost`).

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
        one_axis = tuple(v if i == axis else d for i, (v, d) in enumerate(zip(spec.stride, (1,) * nd, strict=True)))
        dil = tuple(v if i == axis else 1 for i, v in enumerate(spec.dilation))
        pad = tuple(p if i == axis else (0, 0) for i, p in enumerate(pads))
        y = conv(y, np.ascontiguousarray(w), None, one_axis, pad, dil, channels, _fn=fn)
    return y


# --------------------------------------------------------------------------- flattened


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
    vertical_w = v.reshape(c_out, 1, -1, 1)  # (C_out, 1, kh, 1)
    horizontal_w = h.reshape(c_out, 1, 1, -1)  # (C_out, 1, 1, kw)
    y = pointwise_conv(x, ch)  # (N, C_out, H, W): the channel pass
    y = conv(y, vertical_w, None, (spec.stride[0], 1), ((pt, pb), (0, 0)), 1, c_out, _fn=fn)  # (N, C_out, H_out, W)
    return conv(y, horizontal_w, bias, (1, spec.stride[1]), ((0, 0), (pl, pr)), 1, c_out, _fn=fn)


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
