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
from collections.abc import Sequence

import numpy as np

from ..spec import ConvSpec, as_bool, as_shape
from ._checks import as_array, check_exact_integers, compute_dtype, result_dtype
from ._conv_common import (
    WRT,
    ConvGrads,
    arrays,
    check_grad_output,
    check_spec,
    check_wrt,
    depthwise_weight_grad,
    finish,
    flip,
    mode_fold,
    prepare_conv,
    spec_of,
    transpose_raw,
    weight_grad_raw,
)
from .algorithms import choose
from .conv_transpose import conv_transpose, conv_transpose_spec, conv_transpose_spec_vjp, conv_transpose_vjp
from .padding import pad_pairs, pad_pairs_vjp

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
    (any width, signed or unsigned) are computed exactly in int64 and returned
    as int64, as NumPy's ``sum`` returns narrow integers, and a call whose sums
    could leave int64 (``max|x| * max|w| * terms`` over ``2**63 - 1``) is
    refused rather than wrapped; float16 is computed in float32. NaN and Inf
    propagate as IEEE arithmetic says (a NaN in a window makes that output NaN;
    ``0 * inf`` is NaN), under ``algorithm='auto'`` too: it never runs an
    algorithm that would spread them (FFT, Winograd) on data that holds them.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> conv(x, w)[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    x, w, b = arrays(_fn, input, weight, bias)
    spec = spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
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
    flip_kernel = as_bool(fn, "flip_kernel", flip_kernel)
    x, w, b = arrays(fn, input, weight, bias)
    p = prepare_conv(fn, x, w, b, check_spec(fn, spec, w, transposed=False))
    algo = choose(fn, algorithm)
    check_exact_integers(fn, "output", p.x, p.w, math.prod(p.w.shape[1:]), p.b)
    ct = compute_dtype(p.dtype)
    x, w = p.x.astype(ct, copy=False), p.w.astype(ct, copy=False)
    if flip_kernel:
        w = flip(w)
    spec = p.spec
    if spec.padding_mode != "zeros":
        x = pad_pairs(x, p.pads, spec.padding_mode, fn=fn)
        pads = ((0, 0),) * spec.ndim
    else:
        pads = p.pads
    y = algo(x, w, spec.stride, pads, spec.dilation, (1,) * spec.ndim, spec.groups, role="forward")
    return finish(y, p)


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
    wrt: str | Sequence[str] = WRT,
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
    check_wrt(_fn, wrt)
    x, w, b = arrays(_fn, input, weight, bias)
    spec = spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
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
    wrt: str | Sequence[str] = WRT,
) -> ConvGrads:
    """:func:`conv_vjp` with its hyperparameters given as a :class:`~convlab.spec.ConvSpec`, used as it is."""
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_spec_vjp"
    flip_kernel = as_bool(fn, "flip_kernel", flip_kernel)
    want = check_wrt(fn, wrt)
    x, w, b = arrays(fn, input, weight, bias)
    p = prepare_conv(fn, x, w, b, check_spec(fn, spec, w, transposed=False))
    gy = check_grad_output(fn, as_array(fn, "grad_output", grad_output), p, p.w.shape[0])
    algo = choose(fn, algorithm, fallback="gemm")
    spec = p.spec
    out = gy.shape[0] * math.prod(gy.shape[2:])  # (N, *O): the sum of the weight and bias gradients
    if "input" in want:
        check_exact_integers(fn, "input gradient", gy, p.w, p.w.shape[0] // spec.groups * math.prod(spec.kernel_size)
                             * mode_fold(spec.padding_mode, p.pads))
    if "weight" in want:
        check_exact_integers(fn, "weight gradient", p.x, gy, out)
    if b is not None and "bias" in want:
        check_exact_integers(fn, "bias gradient", gy, np.ones(1, dtype=gy.dtype), out)
    ct = compute_dtype(p.dtype)
    w, gy = p.w.astype(ct, copy=False), gy.astype(ct, copy=False)
    if flip_kernel:
        w = flip(w)
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
            g_input = transpose_raw(gy, w, spec.stride, p.pads, spec.dilation, spec.groups, slack, algo,
                                     "input_grad")
        else:
            g_padded = transpose_raw(gy, w, spec.stride, ((0, 0),) * nd, spec.dilation, spec.groups, slack, algo,
                                      "input_grad")
            g_input = pad_pairs_vjp(g_padded, x_shape, p.pads, spec.padding_mode, fn=fn)
        if p.unbatched:
            g_input = g_input[0]
        g_input = g_input.astype(result_dtype(p.dtype), copy=False)
    if "weight" in want:
        g_weight = None
        if spec.padding_mode == "zeros":  # a depthwise layer's, read in place (no padded or transposed copies)
            g_weight = depthwise_weight_grad(p.x.astype(ct, copy=False), gy, p.pads, spec.stride, spec.dilation,
                                             spec.groups, spec.kernel_size, algo)
        if g_weight is None:
            xp = pad_pairs(p.x.astype(ct, copy=False), p.pads, spec.padding_mode, fn=fn)  # (N, C_in, *S_padded)
            g_weight = weight_grad_raw(xp, gy, spec.stride, spec.dilation, spec.groups, spec.kernel_size, algo)
        if flip_kernel:
            g_weight = flip(g_weight)
        g_weight = g_weight.astype(result_dtype(p.dtype), copy=False)
    if b is not None and "bias" in want:
        g_bias = gy.sum(axis=(0,) + tuple(range(2, 2 + nd))).astype(result_dtype(p.dtype), copy=False)
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
    """A read-only zero array of shape ``size`` that takes no memory (a broadcast scalar).

    ``size`` is checked like every shape (:func:`convlab.spec.as_shape`: ints, not bools, ``0 <= v <= 2**62``).
    """
    return np.broadcast_to(np.zeros((), dtype=dtype), as_shape(fn, name, size))
