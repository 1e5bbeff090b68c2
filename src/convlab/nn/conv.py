"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d (deconvolution).

Each holds a :class:`~convlab.spec.ConvSpec` (``.spec``), a weight and an
optional bias, and runs the engine: forward is :func:`convlab.ops.conv` (or
``conv_transpose``), backward its ``*_vjp`` (the input gradient of a
convolution is the transposed convolution of the output gradient and vice
versa; the derivation is in :mod:`convlab.ops.conv`).

Attributes follow torch: ``in_channels, out_channels, kernel_size, stride,
padding, dilation, groups, padding_mode, output_padding`` (tuples, one entry
per spatial dimension). ``padding`` is a tuple of ints for symmetric padding,
the string when a string was given (``'same'``, ``'valid'``, and convlab's
``'same_tf'``, ``'full'``, ``'causal'``; a transposed layer takes ``'valid'`` and
``'same'``, TensorFlow's, output = input * stride), and a tuple of ``(lo, hi)`` pairs
for asymmetric padding (a convlab extension); ``.spec.padding`` always holds
the resolved ``(lo, hi)`` pairs (or ``'same_tf'``, which depends on the input size).

The spec is built once, at construction, and handed to the engine as it is
(:func:`convlab.ops.conv.conv_spec` and friends) on every forward and backward.
``algorithm=`` chooses the engine's algorithm as in :mod:`convlab.functional`
(default ``'auto'``; the gradients fall back to ``'gemm'`` where a named one
does not apply). Backward computes only the gradients someone needs: none for
a frozen parameter (``requires_grad=False``), and no input gradient when
``needs_input_grad`` is False (the first layer of a network, whose input is
data; ``backward`` then returns None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..ops.algorithms import choose
from ..ops.conv import conv_spec, conv_spec_vjp, conv_transpose_spec, conv_transpose_spec_vjp
from ..spec import ConvSpec
from ._checks import as_bool, as_int, check_channels, check_dtype, check_grad, check_rank, conv_layout, float_input
from .init import default_weight_and_bias_
from .module import Module, Parameter, _float_dtype

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _padding_attribute(given: object, resolved: object) -> object:
    """torch's ``padding`` attribute: the string if one was given, ints if symmetric, else (lo, hi) pairs."""
    if isinstance(given, str):
        return given.lower()
    if isinstance(resolved, str):
        return resolved
    if all(lo == hi for lo, hi in resolved):
        return tuple(lo for lo, _ in resolved)
    return resolved


class _ConvNd(Module):
    _ndim: ClassVar[int]
    _transposed: ClassVar[bool] = False

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | tuple[tuple[int, int], ...] | str
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    output_padding: tuple[int, ...]
    spec: ConvSpec
    algorithm: str
    needs_input_grad: bool

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
               padding_mode, output_padding, dtype, rng, algorithm) -> None:
        super().__init__()
        layer = type(self).__name__
        nd = self._ndim
        in_channels = as_int(layer, "in_channels", in_channels, minimum=1)
        out_channels = as_int(layer, "out_channels", out_channels, minimum=1)
        bias = as_bool(layer, "bias", bias)
        dtype = _float_dtype(layer, dtype)
        spec = ConvSpec(kernel_size, stride, padding, dilation, groups, padding_mode, transposed=self._transposed,
                        output_padding=output_padding, ndim=nd, name=layer)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % spec.groups:
                raise ValueError(f"{layer}: {name} (={value}) must be divisible by groups (={spec.groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = spec.kernel_size
        self.stride = spec.stride
        self.padding = _padding_attribute(padding, spec.padding)
        self.dilation = spec.dilation
        self.groups = spec.groups
        self.padding_mode = spec.padding_mode
        self.output_padding = spec.output_padding
        self.spec = spec
        self._backward_spec = spec.with_name(f"{layer}.backward")
        choose(layer, algorithm)  # a clear error now rather than at the first forward
        self.algorithm = algorithm
        self.needs_input_grad = True
        if self._transposed:
            shape = (in_channels, out_channels // spec.groups) + spec.kernel_size
        else:
            shape = (out_channels, in_channels // spec.groups) + spec.kernel_size
        self.weight = Parameter.empty(shape, dtype, owner=layer, name="weight")  # checked against the budget first
        if bias:
            self.bias = Parameter.empty((out_channels,), dtype, owner=layer, name="bias")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """PyTorch's default: weight and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in = shape[1] * prod(k)``.

        ``rng`` (a ``numpy.random.Generator``) draws the weight, then the bias; None draws a fresh generator.
        """
        default_weight_and_bias_(self.weight, self.bias, rng)

    def _wanted(self) -> tuple[str, ...]:
        """The gradients backward computes: the input's unless switched off, trainable parameters'."""
        wanted = ("input",) if self.needs_input_grad else ()
        if self.weight.requires_grad:
            wanted += ("weight",)
        if self.bias is not None and self.bias.requires_grad:
            wanted += ("bias",)
        return wanted

    def _accumulate(self, grads) -> np.ndarray | None:
        if grads.weight is not None:
            self.weight.accumulate_grad(grads.weight)
        if grads.bias is not None:
            self.bias.accumulate_grad(grads.bias)
        return grads.input

    def _check_input(self, input: object) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        nd = self._ndim
        check_rank(layer, x, (nd + 1, nd + 2), conv_layout(nd))
        check_channels(layer, x, x.ndim - nd - 1, self.in_channels, "in_channels")
        check_dtype(layer, x, self.weight)
        return x

    def extra_repr(self) -> str:
        nd = self._ndim
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"]
        if self.stride != (1,) * nd:
            parts.append(f"stride={self.stride}")
        if isinstance(self.padding, str):
            if self.padding != "valid":
                parts.append(f"padding={self.padding!r}")
        elif any(p != 0 and p != (0, 0) for p in self.padding):
            parts.append(f"padding={self.padding}")
        if self.dilation != (1,) * nd:
            parts.append(f"dilation={self.dilation}")
        if any(self.output_padding) and not self.spec.same_output:  # padding='same' sets its own
            parts.append(f"output_padding={self.output_padding}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.bias is None:
            parts.append("bias=False")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode!r}")
        if self.algorithm != "auto":
            parts.append(f"algorithm={self.algorithm!r}")
        return ", ".join(parts)


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        dtype: type | np.dtype | str = np.float32,
        rng: np.random.Generator | None = None,
        algorithm: str = "auto",
    ) -> None:
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                    0, dtype, rng, algorithm)

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._check_input(input)
        bias = None if self.bias is None else self.bias.data
        y = conv_spec(x, self.weight.data, self.spec, bias, algorithm=self.algorithm)
        self._save(x, y.shape)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        x, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        wanted = self._wanted()
        if not wanted:
            return None
        bias = None if self.bias is None else self.bias.data
        grads = conv_spec_vjp(g, x, self.weight.data, self._backward_spec, bias, algorithm=self.algorithm,
                              wrt=wanted)
        return self._accumulate(grads)


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence = 0,
        output_padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | Sequence[int] = 1,
        padding_mode: str = "zeros",
        *,
        dtype: type | np.dtype | str = np.float32,
        rng: np.random.Generator | None = None,
        algorithm: str = "auto",
    ) -> None:
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                    output_padding, dtype, rng, algorithm)

    def forward(self, input: np.ndarray, output_size: Sequence[int] | None = None) -> np.ndarray:
        """``output_size`` (optional, spatial sizes with or without N and C) picks among the possible output sizes."""
        x = self._check_input(input)
        bias = None if self.bias is None else self.bias.data
        y = conv_transpose_spec(x, self.weight.data, self.spec, bias, output_size=output_size,
                                algorithm=self.algorithm)
        self._save(x, output_size, y.shape)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        x, output_size, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        wanted = self._wanted()
        if not wanted:
            return None
        bias = None if self.bias is None else self.bias.data
        grads = conv_transpose_spec_vjp(g, x, self.weight.data, self._backward_spec, bias, output_size=output_size,
                                        algorithm=self.algorithm, wrt=wanted)
        return self._accumulate(grads)


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)``; weight ``(C_out, C_in/groups, k)``.

    Shape
    -----
    ``L_out = floor((L + p_lo + p_hi - d*(k-1) - 1) / s) + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> Conv1d(2, 4, 3, padding=1, rng=np.random.default_rng(0))(np.ones((1, 2, 5), np.float32)).shape
    (1, 4, 5)
    """

    _ndim = 1


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)``; weight ``(C_out, C_in/groups, kh, kw)``.

    ``groups=in_channels`` is a depthwise convolution; ``dilation > 1`` is an
    atrous (dilated) convolution.

    Shape
    -----
    ``H_out = floor((H + p_top + p_bottom - d*(kh-1) - 1) / s) + 1``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2d(3, 64, 7, stride=2, padding=3, bias=False, rng=np.random.default_rng(0))
    >>> conv
    Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
    >>> conv(np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 64, 16, 16)
    """

    _ndim = 2


class Conv3d(_Conv):
    """3-D convolution over ``(N, C_in, D, H, W)``; weight ``(C_out, C_in/groups, kd, kh, kw)``.

    Examples
    --------
    >>> import numpy as np
    >>> Conv3d(1, 2, 3, rng=np.random.default_rng(0))(np.ones((1, 1, 4, 4, 4), np.float32)).shape
    (1, 2, 2, 2, 2)
    """

    _ndim = 3


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (deconvolution); weight ``(C_in, C_out/groups, k)``.

    Shape
    -----
    ``L_out = (L - 1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> ConvTranspose1d(2, 1, 3, stride=2, rng=np.random.default_rng(0))(np.ones((1, 2, 4), np.float32)).shape
    (1, 1, 9)
    """

    _ndim = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (deconvolution, fractionally strided); weight ``(C_in, C_out/groups, kh, kw)``.

    Beyond ``torch.nn.ConvTranspose2d``: ``padding='same'`` is Keras's
    ``Conv2DTranspose(padding='same')`` (output ``H*s``), and ``padding_mode``
    may be any mode, giving the exact adjoint of the convolution with that mode
    (see :func:`convlab.ops.conv.conv_transpose`).

    Shape
    -----
    ``H_out = (H - 1)*s - p_top - p_bottom + d*(kh-1) + output_padding + 1``, likewise ``W_out``
    (``H*s`` with ``padding='same'``).

    Examples
    --------
    >>> import numpy as np
    >>> up = ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, rng=np.random.default_rng(0))
    >>> up
    ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    >>> up(np.ones((1, 8, 5, 5), np.float32)).shape
    (1, 4, 10, 10)
    >>> ConvTranspose2d(8, 4, 3, stride=2, padding="same", padding_mode="reflect", rng=np.random.default_rng(0))
    ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), padding='same', padding_mode='reflect')
    """

    _ndim = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution; weight ``(C_in, C_out/groups, kd, kh, kw)``.

    Examples
    --------
    >>> import numpy as np
    >>> ConvTranspose3d(1, 1, 2, stride=2, rng=np.random.default_rng(0))(np.ones((1, 1, 2, 2, 2), np.float32)).shape
    (1, 1, 4, 4, 4)
    """

    _ndim = 3
