"""Convolution and transposed convolution, N-d, forward and backward (vjp).

Everything here is a thin layer over one primitive (see
:mod:`convlab.ops.algorithms`): a zero-padded, input-dilated, grouped
cross-correlation. The relations used, for one spatial dimension with stride
``s``, dilation ``d``, padding ``(lo, hi)`` and kernel ``k``:

* convolution:  ``y[o] = sum_k w[k] x_pad[o*s + k*d]``;
* transposed convolution is its adjoint. Reading the sum the other way round,
  ``x_pad[i]`` receives ``w[k] y[o]`` wherever ``i = o*s + k*d``. That is a
  stride-1 correlation of ``y`` dilated by ``s`` (``s - 1`` zeros between
  elements) with the flipped kernel, padded by ``d*(k-1)`` on both sides, with
  the channel axes of the weight swapped within each group. The padding of the
  forward convolution then crops ``lo`` on the left and ``hi`` on the right, and
  ``output_padding`` adds room on the right (Dumoulin & Visin, arXiv:1603.07285,
  relationships 13-14, generalized to dilation and groups);
* the input gradient of a convolution is therefore the transposed convolution
  of the output gradient with the same weight (like a matmul: forward
  ``[m,j][j,k]->[m,k]``, input gradient ``[m,k][k,j]->[m,j]``);
* the weight gradient ``gw[k] = sum_o gy[o] x_pad[o*s + k*d]`` is a correlation
  of the padded input with the output gradient as the kernel, in which stride
  and dilation swap roles and the batch axis plays the channels;
* the transposed convolution's gradients follow from the same facts: its input
  gradient is the forward convolution of the output gradient, its weight
  gradient the weight gradient of that convolution.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..shapes import (
    conv_output_shape,
    conv_transpose_output_shape,
    output_padding_for_size,
    resolve_padding,
    transpose_padding,
)
from ..spec import ConvSpec
from ._checks import as_array, check_budget, check_same_dtype, compute_dtype, split_batch
from .algorithms import Call, Primitive, choose, gemm, im2col
from .padding import check_pad_limits, pad_pairs, pad_pairs_vjp

__all__ = [
    "ConvGrads",
    "conv",
    "conv_input_grad",
    "conv_spec",
    "conv_spec_vjp",
    "conv_transpose",
    "conv_transpose_spec",
    "conv_transpose_spec_vjp",
    "conv_transpose_vjp",
    "conv_vjp",
    "conv_weight_grad",
]

Pairs = tuple[tuple[int, int], ...]


class ConvGrads(NamedTuple):
    """Gradients of a (transposed) convolution.

    ``bias`` is None when there is no bias; any field is None when ``wrt`` did not ask for it.
    """

    input: np.ndarray | None
    weight: np.ndarray | None
    bias: np.ndarray | None


# --------------------------------------------------------------------------- checks


class _Prepared(NamedTuple):
    x: np.ndarray  # batched (N, C, *S), original dtype
    w: np.ndarray
    b: np.ndarray | None
    unbatched: bool
    dtype: np.dtype
    spec: ConvSpec
    pads: Pairs
    out_size: tuple[int, ...]


def _ndim_from_weight(fn: str, w: np.ndarray, ndim: int | None) -> int:
    if ndim is None:
        if w.ndim < 3:
            raise ValueError(
                f"{fn}: `weight` must have at least 3 dimensions (C_out, C_in/groups, *kernel), got shape {w.shape}"
            )
        return w.ndim - 2
    if w.ndim != ndim + 2:
        layout = "C_in, C_out/groups" if "transpose" in fn else "C_out, C_in/groups"
        raise ValueError(
            f"{fn}: `weight` must have {ndim + 2} dimensions ({layout}, *kernel), "
            f"got shape {w.shape}"
        )
    return ndim


def _check_kernel(fn: str, w: np.ndarray) -> None:
    if any(k == 0 for k in w.shape[2:]):
        raise ValueError(f"{fn}: `weight` has an empty kernel: shape {w.shape} (every kernel size must be >= 1)")


def _check_bias(fn: str, b: np.ndarray | None, c_out: int) -> None:
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{fn}: `bias` must have shape ({c_out},), one value per output channel, got {b.shape}")


def _check_im2col(fn: str, spec: ConvSpec, c_in: int, positions: int, itemsize: int) -> None:
    # im2col works on blocks of samples and groups; one group of one sample must fit:
    # (positions, C_in/groups * prod(kernel)).
    check_budget(fn, "im2col buffer of one sample and group",
                 (positions, c_in // spec.groups * math.prod(spec.kernel_size)), itemsize)


def _check_channels(fn: str, x: np.ndarray, xb: np.ndarray, unbatched: bool, w: np.ndarray, expected: int,
                    what: str) -> None:
    c_in = xb.shape[1]
    if c_in == expected:
        return
    read = f" (input shape {x.shape}, read as unbatched (C, *spatial))" if unbatched else ""
    raise ValueError(
        f"{fn}: the input has {c_in} channel{'s' if c_in != 1 else ''}{read}, but `weight` of shape {w.shape} "
        f"expects {what} = {expected}"
    )


def _split_input(fn: str, x: np.ndarray, w: np.ndarray, nd: int, ndim: int | None) -> tuple[np.ndarray, bool]:
    if ndim is None and x.ndim not in (nd + 1, nd + 2):
        # The generic N-d op takes the number of spatial dims from the weight: say so.
        raise ValueError(
            f"{fn}: `input` of shape {x.shape} has {x.ndim} dimensions, but `weight` of shape {w.shape} means "
            f"{nd} spatial dimension{'s' if nd != 1 else ''}, so the input must have {nd + 2} (N, C, *spatial) "
            f"or {nd + 1} (C, *spatial)"
        )
    return split_batch(fn, "input", x, nd)


def _arrays(fn: str, input, weight, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = as_array(fn, "input", input)
    w = as_array(fn, "weight", weight)
    b = None if bias is None else as_array(fn, "bias", bias)
    return x, w, b


def _spec_of(fn: str, ndim: int | None, x: np.ndarray, weight: np.ndarray, **hyper) -> ConvSpec:
    """The call's spec, built once from the loose arguments (the kernel is the weight's).

    The ranks of the input and the weight are checked first: a wrong rank explains a wrong
    number of stride entries better than the stride's own message would.
    """
    nd = _ndim_from_weight(fn, weight, ndim)
    _split_input(fn, x, weight, nd, ndim)
    _check_kernel(fn, weight)
    return ConvSpec(weight.shape[2:], ndim=nd, name=fn, **hyper)


def _check_spec(fn: str, spec: object, w: np.ndarray, transposed: bool) -> ConvSpec:
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"{fn}: `spec` must be a convlab.spec.ConvSpec, got {type(spec).__name__}")
    if spec.transposed != transposed:
        kind = "a transposed" if spec.transposed else "a (non-transposed)"
        raise ValueError(f"{fn}: `spec` describes {kind} convolution ({spec!r})")
    _ndim_from_weight(fn, w, spec.ndim)
    _check_kernel(fn, w)
    if w.shape[2:] != spec.kernel_size:
        raise ValueError(f"{fn}: `weight` of shape {w.shape} has kernel {w.shape[2:]}, but the spec says "
                         f"kernel_size={spec.kernel_size}")
    return spec


def _prepare_conv(fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec) -> _Prepared:
    nd = spec.ndim
    xb, unbatched = _split_input(fn, x, w, nd, nd)
    dtype = check_same_dtype(fn, input=x, weight=w, bias=b)
    c_in, c_out = xb.shape[1], w.shape[0]
    if c_in % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the input channels (={c_in})")
    if c_out % spec.groups:
        raise ValueError(
            f"{fn}: `groups` (={spec.groups}) must divide the output channels (weight.shape[0]={c_out})"
        )
    _check_channels(fn, x, xb, unbatched, w, w.shape[1] * spec.groups,
                    f"weight.shape[1] * groups (={spec.groups})")
    _check_bias(fn, b, c_out)
    spatial = xb.shape[2:]
    pads = resolve_padding(spec, spatial)
    out_size = conv_output_shape(spec, spatial)
    if spec.padding_mode != "zeros":
        for i, (size, (lo, hi)) in enumerate(zip(spatial, pads, strict=True)):
            check_pad_limits(fn, spec.padding_mode, size, lo, hi, i)
    itemsize = compute_dtype(dtype).itemsize
    check_budget(fn, "output", (xb.shape[0], c_out) + tuple(out_size), itemsize)
    check_budget(fn, "padded input", (xb.shape[0], c_in) + tuple(s + lo + hi for s, (lo, hi) in
                                                                 zip(spatial, pads, strict=True)), itemsize)
    _check_im2col(fn, spec, c_in, math.prod(out_size), itemsize)
    return _Prepared(xb, w, b, unbatched, dtype, spec, pads, tuple(int(o) for o in out_size))


def _prepare_transpose(fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec,
                       output_size) -> _Prepared:
    nd = spec.ndim
    xb, unbatched = _split_input(fn, x, w, nd, nd)
    dtype = check_same_dtype(fn, input=x, weight=w, bias=b)
    c_in = xb.shape[1]
    if c_in % spec.groups:
        raise ValueError(f"{fn}: `groups` (={spec.groups}) must divide the input channels (={c_in})")
    _check_channels(fn, x, xb, unbatched, w, w.shape[0],
                    "weight.shape[0] (transposed weights are (C_in, C_out/groups, *kernel))")
    c_out = w.shape[1] * spec.groups
    _check_bias(fn, b, c_out)
    spatial = xb.shape[2:]
    if output_size is not None and spec.same_output:
        # padding='same' has one output size, I*s; output_size may only restate it.
        wanted = tuple(output_size)[-nd:] if len(tuple(output_size)) in (nd, nd + 2) else tuple(output_size)
        same = tuple(n * s for n, s in zip(spatial, spec.stride, strict=True))
        if tuple(int(v) for v in wanted) != same:
            raise ValueError(f"{fn}: `output_size` (={tuple(output_size)}) must be input size * stride (={same}) "
                             "with padding='same'")
    elif output_size is not None:
        if any(spec.output_padding):
            raise ValueError(f"{fn}: give either `output_size` or `output_padding` (={spec.output_padding}), not both")
        sizes = [int(v) for v in output_size] if isinstance(output_size, (list, tuple)) else output_size
        spec = spec.with_output_padding(output_padding_for_size(spec, spatial, sizes))
    out_size = conv_transpose_output_shape(spec, spatial)
    if spec.padding_mode != "zeros":
        # The output is the unpadded input of the convolution this is the adjoint of: the mode must be able
        # to pad it by (lo, hi).
        for i, (size, (lo, hi)) in enumerate(zip(out_size, spec.padding, strict=True)):
            check_pad_limits(fn, spec.padding_mode, int(size), lo, hi, i)
    itemsize = compute_dtype(dtype).itemsize
    check_budget(fn, "output", (xb.shape[0], c_out) + tuple(out_size), itemsize)
    if spec.padding_mode != "zeros":
        check_budget(fn, "padded output", (xb.shape[0], c_out) + tuple(
            o + lo + hi for o, (lo, hi) in zip(out_size, spec.padding, strict=True)), itemsize)
    # The primitive sees the input dilated by the stride and padded by about d*(k-1) per side.
    dilated = tuple((s - 1) * st + 1 + 2 * d * (k - 1)
                    for s, st, d, k in zip(spatial, spec.stride, spec.dilation, spec.kernel_size, strict=True))
    check_budget(fn, "dilated input", (xb.shape[0], c_in) + dilated, itemsize)
    check_budget(fn, "im2col buffer of one sample",
                 (math.prod(out_size), c_in // spec.groups * math.prod(spec.kernel_size)), itemsize)
    return _Prepared(xb, w, b, unbatched, dtype, spec, spec.padding, tuple(int(o) for o in out_size))


def _finish(y: np.ndarray, p: _Prepared) -> np.ndarray:
    if p.b is not None:
        y += p.b.astype(y.dtype).reshape((1, -1) + (1,) * p.spec.ndim)
    y = y.astype(p.dtype, copy=False)
    return y[0] if p.unbatched else y


def _flip(w: np.ndarray) -> np.ndarray:
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def _check_grad_output(fn: str, g: np.ndarray, p: _Prepared, c_out: int) -> np.ndarray:
    expected = (p.x.shape[0], c_out) + p.out_size
    gb = g[None] if p.unbatched and g.ndim == len(expected) - 1 else g
    if gb.shape != expected:
        shown = expected[1:] if p.unbatched else expected
        raise ValueError(f"{fn}: `grad_output` must have the output's shape {shown}, got {g.shape}")
    if g.dtype != p.dtype:
        raise TypeError(f"{fn}: `grad_output` has dtype {g.dtype}, but the input has {p.dtype}")
    return gb


_WRT = ("input", "weight", "bias")


def _check_wrt(fn: str, wrt) -> frozenset[str]:
    """The gradients asked for: a name or a sequence of names among 'input', 'weight', 'bias'."""
    names = (wrt,) if isinstance(wrt, str) else wrt
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"{fn}: `wrt` must be one of {_WRT} or a sequence of them, got {wrt!r}") from None
    bad = [n for n in names if n not in _WRT]
    if bad or not names:
        raise ValueError(f"{fn}: `wrt` (={wrt!r}) must name one or more of {_WRT}")
    return frozenset(names)


# --------------------------------------------------------------------------- raw relations


def _transpose_raw(x, w, stride, pads: Pairs, dilation, groups, output_padding, algorithm: Primitive,
                   role: str) -> np.ndarray:
    """Transposed convolution of batched ``x`` (N, C_in, *I) with ``w`` (C_in, C_out/g, *K).

    The adjoint of the convolution (see the module docstring): dilate by the
    stride, pad ``d*(k-1) - lo`` and ``d*(k-1) - hi + output_padding`` (negative
    amounts crop), flip the kernel, swap its channel axes per group, correlate
    at stride 1.
    """
    nd = len(stride)
    c_in, og = w.shape[:2]
    kernel = w.shape[2:]
    cg = c_in // groups
    # (C_in, C_out/g, *K) -> (g, C_in/g, C_out/g, *K) -> (g, C_out/g, C_in/g, *K) -> (C_out, C_in/g, *K)
    wt = w.reshape((groups, cg, og) + kernel).swapaxes(1, 2).reshape((groups * og, cg) + kernel)
    wt = _flip(wt)  # (C_out, C_in/g, *K), flipped
    pairs = transpose_padding(kernel, dilation, pads, output_padding)
    return algorithm(x, wt, (1,) * nd, pairs, dilation, stride, groups, role=role)


#: Input channels per group from which the weight gradient is computed by im2col + GEMM directly.
_DIRECT_WEIGHT_GRAD_CHANNELS = 4


def _weight_grad_raw(xp, gy, stride, dilation, groups, kernel, algorithm: Primitive) -> np.ndarray:
    """``gw[o, c, *k] = sum_{n, p} gy[n, o, *p] * xp[n, g*Cg + c, *(p*stride + k*dilation)]``.

    A correlation of the padded input with the output gradient as the kernel:
    stride and dilation swap roles, and the batch axis becomes the channel axis.
    With ``auto`` or ``gemm`` and at least :data:`_DIRECT_WEIGHT_GRAD_CHANNELS`
    input channels per group, the gradient is computed directly as im2col + GEMM
    instead (:func:`convlab.ops.algorithms.gemm.weight_grad`: no transposed copies
    of the input and the output gradient, a 1x1 kernel as one batched product on
    the NCHW arrays; measured 1.2-5x faster on ResNet and VGG layers). Depthwise
    and few-channel calls keep the correlation, where FFT and depthwise apply.
    """
    n, c_in = xp.shape[:2]
    c_out = gy.shape[1]
    nd = len(kernel)
    cg, og = c_in // groups, c_out // groups
    sp, out = xp.shape[2:], gy.shape[2:]
    if cg >= _DIRECT_WEIGHT_GRAD_CHANNELS and algorithm.name in ("auto", "gemm"):
        # The correlation this computes, as the trace describes it: input (C_in/g, g*N, *S), kernel
        # (g*C_out/g, N, *O), stride and dilation swapped.
        call = Call((cg, groups * n) + sp, (c_out, n) + out, tuple(dilation), ((0, 0),) * nd, tuple(stride),
                    (1,) * nd, groups, np.result_type(xp, gy))
        return algorithm.run_named("gemm", call, "weight_grad",
                                   lambda: gemm.weight_grad(xp, gy, kernel, stride, dilation, groups))
    sp_axes = tuple(range(3, 3 + nd))
    # The sum over the batch is split into blocks so the window matrix (prod(K) x block*prod(O) per
    # channel) stays small; each block's contribution is itself such a correlation.
    block = max(1, im2col.CHUNK_BYTES // max(math.prod(kernel) * math.prod(out) * xp.dtype.itemsize, 1))
    total = None
    for start in range(0, max(n, 1), block):
        xs, gs = xp[start:start + block], gy[start:start + block]
        m = xs.shape[0]
        # (m, C_in, *S) -> (m, g, C_in/g, *S) -> (C_in/g, g, m, *S) -> (C_in/g, g*m, *S): batch as channels
        xt = xs.reshape((m, groups, cg) + sp).transpose((2, 1, 0) + sp_axes).reshape((cg, groups * m) + sp)
        # (m, C_out, *O) -> (m, g, C_out/g, *O) -> (g, C_out/g, m, *O) -> (C_out, m, *O): the kernel
        wt = gs.reshape((m, groups, og) + out).transpose((1, 2, 0) + sp_axes).reshape((groups * og, m) + out)
        r = algorithm(xt, wt, tuple(dilation), ((0, 0),) * nd, tuple(stride), (1,) * nd, groups,
                      role="weight_grad")  # (C_in/g, C_out, *K')
        r = r[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)]
        total = r if total is None else total + r
    return np.ascontiguousarray(total.swapaxes(0, 1))  # (C_out, Cg, *K)


# --------------------------------------------------------------------------- public


def conv(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
    algorithm: str = "auto",
    ndim: int | None = None,
    _fn: str = "conv",
) -> np.ndarray:
    """N-d convolution (cross-correlation, as in deep learning), any number of spatial dimensions.

    Parameters
    ----------
    input : ndarray
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
    weight : ndarray
        ``(C_out, C_in/groups, *kernel)``; the number of spatial dimensions is
        ``weight.ndim - 2``.
    bias : ndarray, optional
        ``(C_out,)``.
    stride, dilation : int or tuple
        Dilation is also called atrous convolution (``d - 1`` holes between taps).
    padding : int, tuple, (lo, hi) pairs, or 'valid' / 'same' / 'same_tf' / 'full' / 'causal'
        See :mod:`convlab.spec`. ``'same'`` is PyTorch's (stride 1 only);
        ``'same_tf'`` is TensorFlow's (any stride).
    groups : int
        ``groups = C_in`` is depthwise convolution; ``C_out = m * C_in`` gives a
        channel multiplier ``m``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}
        ``reflect: 1234 -> 32123432``, ``symmetric: 1234 -> 21123443``,
        ``replicate: 1234 -> 11123444``, ``circular: 1234 -> 34123412`` (pad 2).
    flip_kernel : bool
        True computes the signal-processing convolution (kernel flipped in every
        spatial dimension) instead of the cross-correlation.
    algorithm : str
        ``'auto'``, ``'im2col'`` or ``'reference'``.

    Shape
    -----
    ``O = floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1`` per spatial dimension.

    dtypes: float32/float64/complex results are in the input dtype; integers
    are computed exactly in int64 and returned in the input dtype; float16 is
    computed in float32. NaN and Inf propagate as IEEE arithmetic says (a NaN
    in a window makes that output NaN; ``0 * inf`` is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> conv(x, w)[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    x, w, b = _arrays(_fn, input, weight, bias)
    spec = _spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    padding_mode=padding_mode)
    return conv_spec(x, w, spec, b, flip_kernel=flip_kernel, algorithm=algorithm)


def conv_spec(
    input: np.ndarray,
    weight: np.ndarray,
    spec: ConvSpec,
    bias: np.ndarray | None = None,
    *,
    flip_kernel: bool = False,
    algorithm: str = "auto",
) -> np.ndarray:
    """:func:`conv` with its hyperparameters given as a :class:`~convlab.spec.ConvSpec`, used as it is.

    The entry point of the layers (which build their spec once) and of
    :mod:`convlab.functional` (which builds one per call). Errors name
    ``spec.name``.

    Examples
    --------
    >>> import numpy as np
    >>> spec = ConvSpec(3, stride=2, padding=1, ndim=2, name="conv2d")
    >>> conv_spec(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), spec)[0, 0]
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])
    """
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_spec"
    x, w, b = _arrays(fn, input, weight, bias)
    p = _prepare_conv(fn, x, w, b, _check_spec(fn, spec, w, transposed=False))
    algo = choose(fn, algorithm)
    ct = compute_dtype(p.dtype)
    x, w = p.x.astype(ct, copy=False), p.w.astype(ct, copy=False)
    if flip_kernel:
        w = _flip(w)
    spec = p.spec
    if spec.padding_mode != "zeros":
        x = pad_pairs(x, p.pads, spec.padding_mode, fn=fn)
        pads = ((0, 0),) * spec.ndim
    else:
        pads = p.pads
    y = algo(x, w, spec.stride, pads, spec.dilation, (1,) * spec.ndim, spec.groups, role="forward")
    return _finish(y, p)


def conv_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
    algorithm: str = "auto",
    wrt: str | Sequence[str] = _WRT,
    ndim: int | None = None,
    _fn: str = "conv_vjp",
) -> ConvGrads:
    """Gradients of :func:`conv` with respect to input, weight and bias.

    Takes the forward arguments plus ``grad_output`` (the gradient of the loss
    with respect to the output); ``bias`` only says whether a bias gradient is
    wanted. The input gradient is a transposed convolution of ``grad_output``
    with the same weight; the weight gradient is a correlation of the padded
    input with ``grad_output`` (derivation in the module docstring).

    ``wrt`` names the gradients to compute (``'input'``, ``'weight'``,
    ``'bias'``, or a sequence of them; default all three); the others are
    returned as None and cost nothing. Only the input's shape is read when
    ``wrt`` is ``'input'`` (see :func:`conv_input_grad`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); w = np.ones((1, 1, 2, 2))
    >>> g = conv_vjp(np.ones((1, 1, 2, 2)), x, w)
    >>> g.weight[0, 0]   # each weight meets four inputs
    array([[ 8., 12.],
           [20., 24.]])
    """
    _check_wrt(_fn, wrt)
    x, w, b = _arrays(_fn, input, weight, bias)
    spec = _spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    padding_mode=padding_mode)
    return conv_spec_vjp(grad_output, x, w, spec, b, flip_kernel=flip_kernel, algorithm=algorithm, wrt=wrt)


def conv_spec_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    spec: ConvSpec,
    bias: np.ndarray | None = None,
    *,
    flip_kernel: bool = False,
    algorithm: str = "auto",
    wrt: str | Sequence[str] = _WRT,
) -> ConvGrads:
    """:func:`conv_vjp` with its hyperparameters given as a :class:`~convlab.spec.ConvSpec`, used as it is."""
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_spec_vjp"
    want = _check_wrt(fn, wrt)
    x, w, b = _arrays(fn, input, weight, bias)
    p = _prepare_conv(fn, x, w, b, _check_spec(fn, spec, w, transposed=False))
    gy = _check_grad_output(fn, as_array(fn, "grad_output", grad_output), p, p.w.shape[0])
    algo = choose(fn, algorithm, fallback="gemm")
    spec = p.spec
    ct = compute_dtype(p.dtype)
    w, gy = p.w.astype(ct, copy=False), gy.astype(ct, copy=False)
    if flip_kernel:
        w = _flip(w)
    nd = spec.ndim
    x_shape = p.x.shape
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], p.pads, strict=True))
    g_input = g_weight = g_bias = None
    if "input" in want:
        # Input gradient: transposed convolution back to the padded size. The trailing elements
        # no window reached get output_padding r = S_pad - ((O-1)*s + d*(k-1) + 1) < s.
        slack = tuple(
            sp - ((o - 1) * s + d * (k - 1) + 1)
            for sp, o, s, d, k in zip(padded, p.out_size, spec.stride, spec.dilation, spec.kernel_size, strict=True)
        )
        if x_shape[0] == 0:
            g_input = np.zeros(x_shape, dtype=ct)
        elif spec.padding_mode == "zeros":
            # The crop of the zero padding folds into the transposed convolution's own padding
            # (negative pads are crops inside the primitive): no padded gradient, no copy.
            # The conv weight (C_out, C_in/g, *K) is already in the transposed layout for a map C_out -> C_in.
            g_input = _transpose_raw(gy, w, spec.stride, p.pads, spec.dilation, spec.groups, slack, algo,
                                     "input_grad")
        else:
            g_padded = _transpose_raw(gy, w, spec.stride, ((0, 0),) * nd, spec.dilation, spec.groups, slack, algo,
                                      "input_grad")
            g_input = pad_pairs_vjp(g_padded, x_shape, p.pads, spec.padding_mode, fn=fn)
        if p.unbatched:
            g_input = g_input[0]
        g_input = g_input.astype(p.dtype, copy=False)
    if "weight" in want:
        xp = pad_pairs(p.x.astype(ct, copy=False), p.pads, spec.padding_mode, fn=fn)  # (N, C_in, *S_padded)
        g_weight = _weight_grad_raw(xp, gy, spec.stride, spec.dilation, spec.groups, spec.kernel_size, algo)
        if flip_kernel:
            g_weight = _flip(g_weight)
        g_weight = g_weight.astype(p.dtype, copy=False)
    if b is not None and "bias" in want:
        g_bias = gy.sum(axis=(0,) + tuple(range(2, 2 + nd))).astype(p.dtype, copy=False)
    return ConvGrads(g_input, g_weight, g_bias)


def conv_input_grad(
    input_size: Sequence[int],
    weight: np.ndarray,
    grad_output: np.ndarray,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    ndim: int | None = None,
    _fn: str = "conv_input_grad",
) -> np.ndarray:
    """The gradient of :func:`conv` with respect to its input, from the input's shape alone.

    Like ``torch.nn.grad.conv2d_input(input_size, weight, grad_output, ...)``:
    ``input_size`` is the input's shape, ``(N, C_in, *S)`` or unbatched
    ``(C_in, *S)``; the result has that shape. The input's values are never
    needed (the convolution is linear in its input).

    Examples
    --------
    >>> import numpy as np
    >>> g = conv_input_grad((1, 1, 3, 3), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    >>> g[0, 0]          # how many windows each input element is in
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    w = as_array(_fn, "weight", weight)
    x = _shape_only(_fn, input_size, w.dtype)
    return conv_vjp(grad_output, x, w, None, stride, padding, dilation, groups, padding_mode=padding_mode,
                    algorithm=algorithm, wrt="input", ndim=ndim, _fn=_fn).input


def conv_weight_grad(
    input: np.ndarray,
    weight_size: Sequence[int],
    grad_output: np.ndarray,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    ndim: int | None = None,
    _fn: str = "conv_weight_grad",
) -> np.ndarray:
    """The gradient of :func:`conv` with respect to its weight, from the weight's shape alone.

    Like ``torch.nn.grad.conv2d_weight(input, weight_size, grad_output, ...)``:
    ``weight_size`` is ``(C_out, C_in/groups, *K)``; the result has that shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv_weight_grad(x, (1, 1, 2, 2), np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    x = as_array(_fn, "input", input)
    w = _shape_only(_fn, weight_size, x.dtype, name="weight_size")
    return conv_vjp(grad_output, x, w, None, stride, padding, dilation, groups, padding_mode=padding_mode,
                    algorithm=algorithm, wrt="weight", ndim=ndim, _fn=_fn).weight


def _shape_only(fn: str, size, dtype: np.dtype, name: str = "input_size") -> np.ndarray:
    """A read-only zero array of shape ``size`` that takes no memory (a broadcast scalar)."""
    try:
        shape = tuple(operator.index(v) for v in size)
    except TypeError:
        raise TypeError(f"{fn}: `{name}` must be a sequence of ints (a shape), got {size!r}") from None
    if any(v < 0 for v in shape):
        raise ValueError(f"{fn}: `{name}` (={shape}) must not contain negative sizes")
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def conv_transpose(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    output_size: Sequence[int] | None = None,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    ndim: int | None = None,
    _fn: str = "conv_transpose",
) -> np.ndarray:
    """N-d transposed convolution (also called deconvolution or fractionally strided convolution).

    The adjoint of :func:`conv` with the same stride, padding, dilation and
    groups: it maps an output-shaped array back to the input's shape, which is
    why it undoes the size change (not the values) of a convolution.

    Parameters
    ----------
    input : ndarray
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
    weight : ndarray
        ``(C_in, C_out/groups, *kernel)``.
    padding : int, tuple, (lo, hi) pairs, 'valid' or 'same'
        Numbers are removed from the output, as in PyTorch. ``'same'`` is
        TensorFlow/Keras ``Conv2DTranspose(padding='same')``: the output is
        ``I*s``, the adjoint of ``conv(padding='same_tf')`` on an input of size
        ``I*s``; it crops ``floor(t/2)`` on the left and the rest on the right,
        ``t = max(d*(k-1) + 1 - s, 0)``, and adds ``max(s - d*(k-1) - 1, 0)`` of
        ``output_padding`` (so ``output_padding`` must be 0 and ``output_size``
        can only be ``I*s``).
    output_padding : int or tuple
        Added on the high side of the output; each ``< max(stride, dilation)``.
    output_size : tuple, optional
        The wanted spatial size (with or without N and C), resolved to
        ``output_padding``; an impossible size raises with the valid range.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}
        A convlab extension (PyTorch's ConvTranspose accepts 'zeros' only): with
        a mode, the transposed convolution is the exact adjoint ``C^T`` of the
        convolution ``C`` with that padding mode, which maps this function's
        output (its unpadded input) to its input. Where ``C`` reads a padded
        element that copies input element ``j`` (``reflect: 1234 -> 32123432``),
        ``C^T`` adds that element's contribution onto output ``j``, instead of
        dropping it as the zero padding does. The output size is the zero
        padding's; each side's padding must be one the mode can make from it.

    Shape
    -----
    ``O = (I - 1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1``
    (``O = I*s`` with ``padding='same'``).

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, padding=1).shape
    (1, 1, 5, 5)
    >>> conv_transpose(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, padding="same").shape
    (1, 1, 6, 6)
    >>> conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 3)), padding=1, padding_mode="reflect")
    array([[[2., 5., 2.]]])
    """
    x, w, b = _arrays(_fn, input, weight, bias)
    spec = _spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    padding_mode=padding_mode, transposed=True, output_padding=output_padding)
    return conv_transpose_spec(x, w, spec, b, output_size=output_size, algorithm=algorithm)


def conv_transpose_spec(
    input: np.ndarray,
    weight: np.ndarray,
    spec: ConvSpec,
    bias: np.ndarray | None = None,
    *,
    output_size: Sequence[int] | None = None,
    algorithm: str = "auto",
) -> np.ndarray:
    """:func:`conv_transpose` with its hyperparameters given as a transposed :class:`~convlab.spec.ConvSpec`.

    Examples
    --------
    >>> import numpy as np
    >>> spec = ConvSpec(3, stride=2, padding=1, transposed=True, ndim=2, name="conv_transpose2d")
    >>> conv_transpose_spec(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), spec, output_size=(6, 6)).shape
    (1, 1, 6, 6)
    """
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_transpose_spec"
    x, w, b = _arrays(fn, input, weight, bias)
    p = _prepare_transpose(fn, x, w, b, _check_spec(fn, spec, w, transposed=True), output_size)
    algo = choose(fn, algorithm)
    ct = compute_dtype(p.dtype)
    spec = p.spec
    x, w = p.x.astype(ct, copy=False), p.w.astype(ct, copy=False)
    if spec.padding_mode == "zeros":
        y = _transpose_raw(x, w, spec.stride, p.pads, spec.dilation, spec.groups, spec.output_padding, algo,
                           "forward")
    else:
        # C = K P: mode padding P (O -> O + lo + hi), then the unpadded strided correlation K. C^T = P^T K^T:
        # the transposed convolution onto the whole padded canvas, then the padding's adjoint, which adds
        # every border element onto the element it copies.
        canvas = _transpose_raw(x, w, spec.stride, ((0, 0),) * spec.ndim, spec.dilation, spec.groups,
                                spec.output_padding, algo, "forward")  # (N, C_out, *(O + lo + hi))
        y = pad_pairs_vjp(canvas, canvas.shape[:2] + p.out_size, p.pads, spec.padding_mode, fn=fn)
    return _finish(y, p)


def conv_transpose_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    output_size: Sequence[int] | None = None,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    wrt: str | Sequence[str] = _WRT,
    ndim: int | None = None,
    _fn: str = "conv_transpose_vjp",
) -> ConvGrads:
    """Gradients of :func:`conv_transpose` with respect to input, weight and bias.

    The transposed convolution is the adjoint of a convolution ``C`` whose
    input lives in this function's output space, so its input gradient is
    ``C`` applied to ``grad_output`` (a forward convolution, cropped where
    ``output_padding >= stride`` left extra rows), and its weight gradient is
    ``C``'s weight gradient with ``grad_output`` as the input and ``input`` as
    the output gradient. ``wrt`` names the gradients to compute, as in
    :func:`conv_vjp`. With a ``padding_mode`` (``C = K P``, the mode padding
    ``P`` then the strided correlation ``K``; the forward is ``P^T K^T``), both
    gradients read ``P`` applied to ``grad_output``: the input gradient is
    ``K P grad_output``, the convolution with that mode.
    """
    _check_wrt(_fn, wrt)
    x, w, b = _arrays(_fn, input, weight, bias)
    spec = _spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    padding_mode=padding_mode, transposed=True, output_padding=output_padding)
    return conv_transpose_spec_vjp(grad_output, x, w, spec, b, output_size=output_size, algorithm=algorithm,
                                   wrt=wrt)


def conv_transpose_spec_vjp(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    spec: ConvSpec,
    bias: np.ndarray | None = None,
    *,
    output_size: Sequence[int] | None = None,
    algorithm: str = "auto",
    wrt: str | Sequence[str] = _WRT,
) -> ConvGrads:
    """:func:`conv_transpose_vjp` with its hyperparameters given as a transposed :class:`~convlab.spec.ConvSpec`."""
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_transpose_spec_vjp"
    want = _check_wrt(fn, wrt)
    x, w, b = _arrays(fn, input, weight, bias)
    p = _prepare_transpose(fn, x, w, b, _check_spec(fn, spec, w, transposed=True), output_size)
    spec = p.spec
    c_out = p.w.shape[1] * spec.groups
    gy = _check_grad_output(fn, as_array(fn, "grad_output", grad_output), p, c_out)
    algo = choose(fn, algorithm, fallback="gemm")
    ct = compute_dtype(p.dtype)
    x, w, gy = p.x.astype(ct, copy=False), p.w.astype(ct, copy=False), gy.astype(ct, copy=False)
    nd = spec.ndim
    in_size = x.shape[2:]
    g_input = g_weight = g_bias = None
    # With a padding mode, y = P^T K^T x: both gradients see the output gradient padded by the mode, P gy.
    gyp = None if spec.padding_mode == "zeros" else pad_pairs(gy, p.pads, spec.padding_mode, fn=fn)
    if "input" in want:
        if x.shape[0] == 0:
            g_input = np.zeros(x.shape, dtype=ct)
        else:
            if gyp is None:
                g_input = algo(gy, w, spec.stride, p.pads, spec.dilation, (1,) * nd, spec.groups,
                               role="input_grad")
            else:
                g_input = algo(gyp, w, spec.stride, ((0, 0),) * nd, spec.dilation, (1,) * nd, spec.groups,
                               role="input_grad")
            g_input = g_input[(slice(None), slice(None)) + tuple(slice(0, s) for s in in_size)]
        if p.unbatched:
            g_input = g_input[0]
        g_input = np.ascontiguousarray(g_input).astype(p.dtype, copy=False)
    if "weight" in want:
        if gyp is None:
            gyp = pad_pairs(gy, p.pads, "constant", fn=fn)
        g_weight = _weight_grad_raw(gyp, x, spec.stride, spec.dilation, spec.groups, spec.kernel_size, algo)
        g_weight = g_weight.astype(p.dtype, copy=False)
    if b is not None and "bias" in want:
        g_bias = gy.sum(axis=(0,) + tuple(range(2, 2 + nd))).astype(p.dtype, copy=False)
    return ConvGrads(g_input, g_weight, g_bias)
