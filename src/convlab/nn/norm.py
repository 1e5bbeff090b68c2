"""Normalization layers: BatchNorm1d/2d/3d (Ioffe & Szegedy, arXiv:1502.03167) and LocalResponseNorm (AlexNet)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..ops.pool import avg_pool, avg_pool_vjp
from ._checks import as_bool, as_float, as_int, check_channels, check_dtype, check_grad, float_input
from .module import Module, Parameter, _float_dtype, is_weightless
from .parameter import empty_array

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LocalResponseNorm"]


def _fill(array: np.ndarray, value: float) -> None:
    """Set every element, except in a layer built inside convlab.nn.skeleton() (no values to set)."""
    if not is_weightless(array):
        array[...] = value


class _BatchNorm(Module):
    _ranks: ClassVar[tuple[int, ...]]
    _layout: ClassVar[str]

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: type | np.dtype | str = np.float32,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        self.num_features = as_int(layer, "num_features", num_features, minimum=1)
        self.eps = as_float(layer, "eps", eps)
        if self.eps <= 0:
            raise ValueError(f"{layer}: eps (={eps}) must be > 0")
        self.momentum = None if momentum is None else as_float(layer, "momentum", momentum)
        if self.momentum is not None and not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"{layer}: momentum (={momentum}) must be in [0, 1] (or None for a cumulative average)")
        self.affine = as_bool(layer, "affine", affine)
        self.track_running_stats = as_bool(layer, "track_running_stats", track_running_stats)
        dtype = _float_dtype(layer, dtype)
        # created through nn.parameter's one allocator: checked against the memory budget first, no memory
        # inside skeleton(); then filled (ones and zeros, as torch) by reset_parameters()
        channels = (self.num_features,)
        if self.affine:
            self.weight = Parameter.empty(channels, dtype, owner=layer, name="weight")
            self.bias = Parameter.empty(channels, dtype, owner=layer, name="bias")
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", empty_array(channels, dtype, owner=layer, name="running_mean"))
            self.register_buffer("running_var", empty_array(channels, dtype, owner=layer, name="running_var"))
            self.register_buffer("num_batches_tracked",
                                 empty_array((), np.int64, owner=layer, name="num_batches_tracked"))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        _BatchNorm.reset_parameters(self)  # not an override: a subclass may not be set up yet

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            _fill(self.running_mean, 0)
            _fill(self.running_var, 1)
            _fill(self.num_batches_tracked, 0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            _fill(self.weight.data, 1)
            _fill(self.bias.data, 0)

    def forward(self, input: np.ndarray) -> np.ndarray:
        """Normalize each channel by the batch statistics (training) or the running statistics (eval).

        Training uses the biased batch variance to normalize and updates
        ``running = (1 - momentum) * running + momentum * batch`` with the
        unbiased variance (``momentum=None``: the cumulative average over
        ``num_batches_tracked`` batches), as torch does. Without running
        statistics (``track_running_stats=False``) batch statistics are used in
        both modes.
        """
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim not in self._ranks:
            raise ValueError(f"{layer}: expected {self._layout}, got an input of shape {x.shape}")
        check_channels(layer, x, 1, self.num_features, "num_features")
        if self.affine:
            check_dtype(layer, x, self.weight)
        elif self.track_running_stats and x.dtype != self.running_mean.dtype:
            raise TypeError(f"{layer}: the input has dtype {x.dtype} but the running statistics are "
                            f"{self.running_mean.dtype}; cast the input or the layer (layer.to(np.{x.dtype}))")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # per-channel values broadcast over (N, C, *S)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            count = x.size // self.num_features
            if count <= 1:
                raise ValueError(
                    f"{layer}: batch statistics need more than 1 value per channel, got input shape {x.shape} "
                    f"(use a batch of 2 or more, or eval() to use the running statistics)"
                )
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(shape)  # becomes x_hat below, in place
            buffer = np.multiply(centered, centered)  # reused for the output below
            var = buffer.mean(axis=axes)  # biased: normalizes this batch (numpy.var's two passes, same numbers)
            if self.training and self.track_running_stats:
                self.num_batches_tracked[...] += 1
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean[...] = (1 - factor) * self.running_mean + factor * mean
                # unbiased (Bessel-corrected) for the running estimate, as torch
                self.running_var[...] = (1 - factor) * self.running_var + factor * var * (count / (count - 1))
        else:
            mean, var = self.running_mean, self.running_var
            centered = x - mean.reshape(shape)
            buffer = None
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        x_hat = centered
        x_hat *= inv_std.reshape(shape)
        y = x_hat
        if self.affine:
            y = np.multiply(x_hat, self.weight.data.reshape(shape), out=buffer)
            y += self.bias.data.reshape(shape)
        self._save(x_hat, inv_std, use_batch)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Gradients of input, weight (gamma) and bias (beta).

        ``y = gamma * x_hat + beta`` with ``x_hat = (x - mu) / sigma`` per channel, over ``M`` values:

        * ``d beta = sum g``, ``d gamma = sum g * x_hat``;
        * eval (mu, sigma constants): ``dx = g * gamma / sigma``;
        * training (mu, sigma^2 = mean(x), biased var(x) depend on x): with ``h = g * gamma``,
          ``dx = (M*h - sum h - x_hat * sum(h * x_hat)) / (M * sigma)``, because
          ``d mu / dx_i = 1/M`` and ``d sigma / dx_i = x_hat_i / M`` (Ioffe & Szegedy, arXiv:1502.03167, sec. 3).
        """
        x_hat, inv_std, use_batch = self._saved()
        g = check_grad(type(self).__name__, grad_output, x_hat.shape, x_hat.dtype)
        axes = (0,) + tuple(range(2, x_hat.ndim))
        shape = (1, -1) + (1,) * (x_hat.ndim - 2)
        # gamma is per channel, so sum h = gamma * sum g and sum h x_hat = gamma * sum g x_hat: two sums of
        # g serve both the parameter gradients and dx, which is written, as torch's CPU kernel does
        # (aten/src/ATen/native/Normalization.cpp, batch_norm_backward_cpu_template), as
        # dx = (g - sum g / M - x_hat * sum(g x_hat) / M) * gamma / sigma.
        scale = inv_std if not self.affine else (inv_std * self.weight.data).astype(x_hat.dtype, copy=False)
        if not use_batch:
            if self.affine:
                self.weight.accumulate_grad((g * x_hat).sum(axis=axes))
                self.bias.accumulate_grad(g.sum(axis=axes))
            return (g * scale.reshape(shape)).astype(x_hat.dtype, copy=False)
        count = x_hat.size // x_hat.shape[1]
        buffer = np.multiply(g, x_hat)
        sum_g_xhat = buffer.sum(axis=axes)
        sum_g = g.sum(axis=axes)
        if self.affine:
            self.weight.accumulate_grad(sum_g_xhat)
            self.bias.accumulate_grad(sum_g)
        np.multiply(x_hat, (sum_g_xhat / count).reshape(shape), out=buffer)
        grad = np.subtract(g, (sum_g / count).reshape(shape))
        grad -= buffer
        grad *= scale.reshape(shape)
        return grad.astype(x_hat.dtype, copy=False)

    def extra_repr(self) -> str:
        parts = [f"{self.num_features}"]
        if self.eps != 1e-5:
            parts.append(f"eps={self.eps}")
        if self.momentum != 0.1:
            parts.append(f"momentum={self.momentum}")
        if not self.affine:
            parts.append("affine=False")
        if not self.track_running_stats:
            parts.append("track_running_stats=False")
        return ", ".join(parts)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)``: statistics per channel over N (and L).

    Examples
    --------
    >>> import numpy as np
    >>> bn = BatchNorm1d(2)
    >>> y = bn(np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32))
    >>> np.round(y, 3)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> bn.running_mean, int(bn.num_batches_tracked)
    (array([0.2, 2. ], dtype=float32), 1)
    """

    _ranks = (2, 3)
    _layout = "a 2-d (N, C) or 3-d (N, C, L) input"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)``: statistics per channel over N, H and W.

    Examples
    --------
    >>> BatchNorm2d(64)
    BatchNorm2d(64)
    >>> BatchNorm2d(64, eps=1e-3, affine=False)
    BatchNorm2d(64, eps=0.001, affine=False)
    """

    _ranks = (4,)
    _layout = "a 4-d input (N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalization over ``(N, C, D, H, W)``: statistics per channel over N, D, H and W."""

    _ranks = (5,)
    _layout = "a 5-d input (N, C, D, H, W)"


class LocalResponseNorm(Module):
    """Local response normalization across channels (Krizhevsky et al., AlexNet, 2012, sec. 3.3).

    ``y_c = x_c / (k + alpha/size * sum_{c' in W(c)} x_c'^2)^beta`` with the
    window ``W(c) = [c - size//2, c + (size-1)//2]`` cut at the edges and the
    sum always divided by ``size`` (torch's definition). The window sum is an
    average pooling over the channel axis, run by the engine.

    Examples
    --------
    >>> import numpy as np
    >>> LocalResponseNorm(2, alpha=1.0, beta=1.0, k=0.0)(np.array([[[1.0], [1.0]]]))[:, :, 0]   # x / (x^2 / 2)
    array([[2., 1.]])
    """

    _reusable = False

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        layer = type(self).__name__
        self.size = as_int(layer, "size", size, minimum=1)
        self.alpha = as_float(layer, "alpha", alpha)
        self.beta = as_float(layer, "beta", beta)
        self.k = as_float(layer, "k", k)

    def _window_mean(self, a: np.ndarray, fn: str, grad: np.ndarray | None = None) -> np.ndarray:
        """Mean of ``a`` over the channel window (or its vjp with ``grad``), via avg pooling on ``(N, 1, C, S)``."""
        n, c = a.shape[:2]
        plane = a.reshape(n, 1, c, -1)  # (N, 1, C, prod(S)): channels become a pooled spatial axis
        pads = ((self.size // 2, (self.size - 1) // 2), (0, 0))
        kwargs = dict(kernel_size=(self.size, 1), stride=1, padding=pads, ndim=2, _fn=fn)
        if grad is None:
            return avg_pool(plane, **kwargs).reshape(a.shape)
        return avg_pool_vjp(grad.reshape(plane.shape), plane, **kwargs).reshape(a.shape)

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 3:
            raise ValueError(f"{layer}: expected an input (N, C, *spatial) with at least 3 dimensions, "
                             f"got shape {x.shape}")
        denominator = self.k + self.alpha * self._window_mean(x * x, layer)
        scale = denominator ** (-self.beta)
        self._save(x, denominator, scale)
        return x * scale

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """``y = x * D^-beta``, ``D = k + alpha * mean_W(x^2)``, so

        ``dx = g * D^-beta + 2x * alpha * mean_W^T(g * x * (-beta) * D^(-beta-1))``,
        where ``mean_W^T`` is the adjoint of the window mean (the average pooling's vjp).
        """
        x, denominator, scale = self._saved()
        layer = type(self).__name__
        g = check_grad(layer, grad_output, x.shape, x.dtype)
        through_denominator = -self.beta * g * x * scale / denominator  # dL/dD
        back = self._window_mean(x, f"{layer}.backward", grad=through_denominator)  # dL/d(x^2) / alpha
        return g * scale + 2 * self.alpha * x * back

    def extra_repr(self) -> str:
        parts = [f"{self.size}"]
        if self.alpha != 1e-4:
            parts.append(f"alpha={self.alpha}")
        if self.beta != 0.75:
            parts.append(f"beta={self.beta}")
        if self.k != 1.0:
            parts.append(f"k={self.k}")
        return ", ".join(parts)
