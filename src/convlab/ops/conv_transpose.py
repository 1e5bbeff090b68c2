"""Transposed convolution (deconvolution), N-d, forward and backward: the adjoint of :func:`convlab.ops.conv.conv`.

The relations are derived in :mod:`convlab.ops.conv`'s docstring: the forward
is the convolution's input gradient (the input dilated by the stride, the
flipped kernel, :func:`convlab.shapes.transpose_padding`), its input gradient
is the forward convolution of ``grad_output``, its weight gradient the
convolution's weight gradient with the roles of input and output swapped.
With a ``padding_mode`` other than zeros it is the exact adjoint of the
convolution with that mode (a convlab extension; PyTorch refuses it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..spec import ConvSpec
from ._checks import as_array, check_exact_integers, compute_dtype, result_dtype
from ._conv_common import (
    WRT,
    ConvGrads,
    arrays,
    check_grad_output,
    check_spec,
    check_wrt,
    finish,
    mode_fold,
    prepare_transpose,
    spec_of,
    transpose_raw,
    weight_grad_raw,
)
from .algorithms import choose
from .padding import pad_pairs, pad_pairs_vjp

__all__ = ["conv_transpose", "conv_transpose_spec", "conv_transpose_spec_vjp", "conv_transpose_vjp"]


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
    x, w, b = arrays(_fn, input, weight, bias)
    spec = spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
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
    x, w, b = arrays(fn, input, weight, bias)
    p = prepare_transpose(fn, x, w, b, check_spec(fn, spec, w, transposed=True), output_size)
    algo = choose(fn, algorithm)
    spec = p.spec
    # each output sums C_in/g * prod(K) products, more where a padding mode folds the edges back (P^T)
    check_exact_integers(fn, "output", p.x, p.w, p.w.shape[0] // spec.groups * math.prod(spec.kernel_size)
                         * mode_fold(spec.padding_mode, spec.padding), p.b)
    ct = compute_dtype(p.dtype)
    x, w = p.x.astype(ct, copy=False), p.w.astype(ct, copy=False)
    if spec.padding_mode == "zeros":
        y = transpose_raw(x, w, spec.stride, p.pads, spec.dilation, spec.groups, spec.output_padding, algo,
                           "forward")
    else:
        # C = K P: mode padding P (O -> O + lo + hi), then the unpadded strided correlation K. C^T = P^T K^T:
        # the transposed convolution onto the whole padded canvas, then the padding's adjoint, which adds
        # every border element onto the element it copies.
        canvas = transpose_raw(x, w, spec.stride, ((0, 0),) * spec.ndim, spec.dilation, spec.groups,
                                spec.output_padding, algo, "forward")  # (N, C_out, *(O + lo + hi))
        y = pad_pairs_vjp(canvas, canvas.shape[:2] + p.out_size, p.pads, spec.padding_mode, fn=fn)
    return finish(y, p)


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
    wrt: str | Sequence[str] = WRT,
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
    check_wrt(_fn, wrt)
    x, w, b = arrays(_fn, input, weight, bias)
    spec = spec_of(_fn, ndim, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
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
    wrt: str | Sequence[str] = WRT,
) -> ConvGrads:
    """:func:`conv_transpose_vjp` with its hyperparameters given as a transposed :class:`~convlab.spec.ConvSpec`."""
    fn = spec.name if isinstance(spec, ConvSpec) else "conv_transpose_spec_vjp"
    want = check_wrt(fn, wrt)
    x, w, b = arrays(fn, input, weight, bias)
    p = prepare_transpose(fn, x, w, b, check_spec(fn, spec, w, transposed=True), output_size)
    spec = p.spec
    c_out = p.w.shape[1] * spec.groups
    gy = check_grad_output(fn, as_array(fn, "grad_output", grad_output), p, c_out)
    algo = choose(fn, algorithm, fallback="gemm")
    inputs = p.x.shape[0] * math.prod(p.x.shape[2:])  # (N, *I): the sum of the weight gradient
    if "input" in want:
        check_exact_integers(fn, "input gradient", gy, p.w, p.w.shape[1] * math.prod(spec.kernel_size))
    if "weight" in want:
        check_exact_integers(fn, "weight gradient", gy, p.x, inputs)
    if b is not None and "bias" in want:
        check_exact_integers(fn, "bias gradient", gy, np.ones(1, dtype=gy.dtype),
                             gy.shape[0] * math.prod(gy.shape[2:]))
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
        g_input = np.ascontiguousarray(g_input).astype(result_dtype(p.dtype), copy=False)
    if "weight" in want:
        if gyp is None:
            gyp = pad_pairs(gy, p.pads, "constant", fn=fn)
        g_weight = weight_grad_raw(gyp, x, spec.stride, spec.dilation, spec.groups, spec.kernel_size, algo)
        g_weight = g_weight.astype(result_dtype(p.dtype), copy=False)
    if b is not None and "bias" in want:
        g_bias = gy.sum(axis=(0,) + tuple(range(2, 2 + nd))).astype(result_dtype(p.dtype), copy=False)
    return ConvGrads(g_input, g_weight, g_bias)
