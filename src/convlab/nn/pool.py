"""Pooling layers: max, average, adaptive and global, in 1, 2 and 3 dimensions.

Forward runs :mod:`convlab.ops.pool`, backward its ``*_vjp``: max pooling
sends each output gradient to its window's argmax, average pooling spreads it
over the window divided by the divisor. A max or average pooling layer builds
its :class:`~convlab.spec.PoolSpec` once, at construction, and hands that same
object to :func:`~convlab.ops.pool.max_pool_spec` / :func:`~convlab.ops.pool.avg_pool_spec`
and their vjps on every forward and backward.

Attributes are normalized tuples, one entry per spatial dimension (torch keeps
what was given, e.g. an int): ``kernel_size``, ``stride`` (the kernel size when
``stride=None``), ``padding`` (ints, or ``(lo, hi)`` pairs when asymmetric),
``dilation``; ``.spec`` is the :class:`~convlab.spec.PoolSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..ops.pool import (
    adaptive_avg_pool,
    adaptive_avg_pool_vjp,
    adaptive_max_pool,
    adaptive_max_pool_vjp,
    avg_pool_spec,
    avg_pool_spec_vjp,
    max_pool_spec,
    max_pool_spec_vjp,
)
from ..spec import PoolSpec
from ._checks import as_bool, as_int, check_grad, check_rank, conv_layout, float_input
from .module import Module

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
]


def _padding_attribute(pairs: tuple[tuple[int, int], ...]) -> tuple:
    if all(lo == hi for lo, hi in pairs):
        return tuple(lo for lo, _ in pairs)
    return pairs


class _PoolNd(Module):
    _ndim: ClassVar[int]
    spec: PoolSpec

    def _set_spec(self, spec: PoolSpec, stride_given: bool) -> None:
        self.spec = spec
        self.kernel_size = spec.kernel_size
        self.stride = spec.stride
        self.padding = _padding_attribute(spec.padding)
        self._stride_given = stride_given

    def _check_input(self, input: object) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        check_rank(layer, x, (self._ndim + 1, self._ndim + 2), conv_layout(self._ndim))
        return x

    def _window_repr(self) -> list[str]:
        nd = self._ndim
        parts = [f"kernel_size={self.kernel_size}"]
        if self._stride_given and self.stride != self.kernel_size:
            parts.append(f"stride={self.stride}")
        if any(p != 0 and p != (0, 0) for p in self.padding):
            parts.append(f"padding={self.padding}")
        if getattr(self, "dilation", (1,) * nd) != (1,) * nd:
            parts.append(f"dilation={self.dilation}")
        return parts


class _MaxPoolNd(_PoolNd):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence = 0,
        dilation: int | Sequence[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=self._ndim, name=layer)
        self._set_spec(spec, stride is not None)
        self.dilation = spec.dilation
        self.ceil_mode = spec.ceil_mode
        self.return_indices = as_bool(layer, "return_indices", return_indices)

    def forward(self, input: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The maxima, with ``return_indices=True`` also their flat indices (backward takes the maxima's gradient)."""
        x = self._check_input(input)
        values, indices = max_pool_spec(x, self.spec, return_indices=True)
        self._save(x, values.shape)
        return (values, indices) if self.return_indices else values

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        return max_pool_spec_vjp(g, x, self.spec, _fn=f"{type(self).__name__}.backward")

    def extra_repr(self) -> str:
        parts = self._window_repr()
        if self.return_indices:
            parts.append("return_indices=True")
        if self.ceil_mode:
            parts.append("ceil_mode=True")
        return ", ".join(parts)


class _AvgPoolNd(_PoolNd):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                        ndim=self._ndim, name=layer)
        self._set_spec(spec, stride is not None)
        self.ceil_mode = spec.ceil_mode
        self.count_include_pad = spec.count_include_pad
        self.divisor_override = spec.divisor_override

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._check_input(input)
        y = avg_pool_spec(x, self.spec)
        self._save(x, y.shape)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        return avg_pool_spec_vjp(g, x, self.spec, _fn=f"{type(self).__name__}.backward")

    def extra_repr(self) -> str:
        parts = self._window_repr()
        if self.ceil_mode:
            parts.append("ceil_mode=True")
        if not self.count_include_pad:
            parts.append("count_include_pad=False")
        if self.divisor_override is not None:
            parts.append(f"divisor_override={self.divisor_override}")
        return ", ".join(parts)


def _output_size(layer: str, output_size: object, nd: int) -> tuple[int | None, ...]:
    entries = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size] * nd
    if len(entries) != nd:
        raise ValueError(f"{layer}: output_size (={output_size!r}) must have {nd} entries, one per spatial dimension")
    return tuple(None if v is None else as_int(layer, "output_size", v, minimum=1) for v in entries)


class _AdaptivePoolNd(Module):
    _ndim: ClassVar[int]

    def __init__(self, output_size: int | Sequence[int | None] | None) -> None:
        super().__init__()
        self.output_size = _output_size(type(self).__name__, output_size, self._ndim)

    def _check_input(self, input: object) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        check_rank(layer, x, (self._ndim + 1, self._ndim + 2), conv_layout(self._ndim))
        return x

    def extra_repr(self) -> str:
        size = self.output_size
        return f"output_size={size[0] if len(set(size)) == 1 else size}"


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._check_input(input)
        y = adaptive_avg_pool(x, self.output_size, ndim=self._ndim, _fn=type(self).__name__)
        self._save(x, y.shape)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        return adaptive_avg_pool_vjp(g, x, self.output_size, ndim=self._ndim, _fn=f"{type(self).__name__}.backward")


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size: int | Sequence[int | None] | None, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = as_bool(type(self).__name__, "return_indices", return_indices)

    def forward(self, input: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        x = self._check_input(input)
        values, indices = adaptive_max_pool(x, self.output_size, True, ndim=self._ndim, _fn=type(self).__name__)
        self._save(x, values.shape)
        return (values, indices) if self.return_indices else values

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, out_shape = self._saved()
        g = check_grad(type(self).__name__, grad_output, out_shape, x.dtype)
        return adaptive_max_pool_vjp(g, x, self.output_size, ndim=self._ndim, _fn=f"{type(self).__name__}.backward")

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", return_indices=True" if self.return_indices else "")


class _GlobalPool(Module):
    """Pool every spatial position of a batched ``(N, C, *S)`` input to ``(N, C, 1, ..., 1)`` (any number of dims)."""

    def _check_input(self, input: object) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 3:
            raise ValueError(f"{layer}: expected a batched input (N, C, *spatial) with at least one spatial "
                             f"dimension, got shape {x.shape}")
        return x

    # The adaptive pooling to size 1 and its vjp, set by each subclass.
    _pool = staticmethod(adaptive_avg_pool)
    _pool_vjp = staticmethod(adaptive_avg_pool_vjp)

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._check_input(input)
        nd = x.ndim - 2
        y = self._pool(x, (1,) * nd, ndim=nd, _fn=type(self).__name__)
        self._save(x)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        nd = x.ndim - 2
        g = check_grad(type(self).__name__, grad_output, x.shape[:2] + (1,) * nd, x.dtype)
        return self._pool_vjp(g, x, (1,) * nd, ndim=nd, _fn=f"{type(self).__name__}.backward")


class GlobalAvgPool(_GlobalPool):
    """Global average pooling, keeping the spatial dims: ``(N, C, *S) -> (N, C, 1, ..., 1)``.

    The same as ``AdaptiveAvgPool2d(1)`` on 4-d input (Lin et al., "Network in
    Network", arXiv:1312.4400), for any number of spatial dimensions. It has no
    state, so a torch model's ``avgpool`` maps onto it by name.

    Examples
    --------
    >>> import numpy as np
    >>> GlobalAvgPool()(np.arange(8.0).reshape(1, 2, 2, 2))[:, :, 0, 0]
    array([[1.5, 5.5]])
    """


class GlobalMaxPool(_GlobalPool):
    """Global max pooling, keeping the spatial dims: ``(N, C, *S) -> (N, C, 1, ..., 1)`` (``AdaptiveMaxPool2d(1)``).

    Examples
    --------
    >>> import numpy as np
    >>> GlobalMaxPool()(np.arange(8.0).reshape(1, 2, 4))[:, :, 0]
    array([[3., 7.]])
    """

    _pool = staticmethod(adaptive_max_pool)
    _pool_vjp = staticmethod(adaptive_max_pool_vjp)


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``(N, C, L)``.

    Shape
    -----
    ``L_out = floor_or_ceil((L + p_lo + p_hi - d*(k-1) - 1) / s) + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> MaxPool1d(2)(np.array([[[1.0, 3.0, 2.0, 5.0]]]))
    array([[[3., 5.]]])
    """

    _ndim = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling over ``(N, C, H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> pool = MaxPool2d(3, stride=2, padding=1)
    >>> pool
    MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    >>> pool(np.zeros((1, 1, 112, 112))).shape
    (1, 1, 56, 56)
    """

    _ndim = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``(N, C, D, H, W)``."""

    _ndim = 3


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling over ``(N, C, L)`` (``divisor_override`` goes beyond torch's AvgPool1d).

    Examples
    --------
    >>> import numpy as np
    >>> AvgPool1d(2)(np.array([[[1.0, 3.0, 2.0, 6.0]]]))
    array([[[2., 4.]]])
    """

    _ndim = 1


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling over ``(N, C, H, W)``.

    Shape
    -----
    ``H_out = floor_or_ceil((H + p_top + p_bottom - kh) / s) + 1``, likewise ``W_out``.
    """

    _ndim = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling over ``(N, C, D, H, W)``."""

    _ndim = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """``(N, C, L) -> (N, C, output_size)``; output ``i`` averages ``[floor(i*L/O), ceil((i+1)*L/O))``."""

    _ndim = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """``(N, C, H, W) -> (N, C, *output_size)``; None in ``output_size`` keeps that input size.

    Examples
    --------
    >>> import numpy as np
    >>> AdaptiveAvgPool2d((1, 1))(np.arange(16.0).reshape(1, 1, 4, 4))
    array([[[[7.5]]]])
    """

    _ndim = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """``(N, C, D, H, W) -> (N, C, *output_size)``."""

    _ndim = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """``(N, C, L) -> (N, C, output_size)``: the maximum of each adaptive window."""

    _ndim = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """``(N, C, H, W) -> (N, C, *output_size)``: the maximum of each adaptive window."""

    _ndim = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """``(N, C, D, H, W) -> (N, C, *output_size)``: the maximum of each adaptive window."""

    _ndim = 3
