"""Linear (fully connected), Flatten, Identity, Dropout and nearest-neighbour Upsample."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import as_bool, as_float, as_generator, as_int, check_dtype, check_grad, float_input
from .init import default_weight_and_bias_
from .module import Module, Parameter, _float_dtype

__all__ = ["Dropout", "Flatten", "Identity", "Linear", "Upsample"]


class Linear(Module):
    """``y = x W^T + b`` over the last axis: ``(*, in_features) -> (*, out_features)``; weight ``(out, in)``.

    Backward, as for a matmul ``[m,j][j,k]->[m,k]`` with ``X`` the input
    flattened to ``(M, in)``: ``dX = G W`` (``[m,k][k,j]``), ``dW = G^T X``,
    ``db = sum_m G``.

    Examples
    --------
    >>> import numpy as np
    >>> fc = Linear(512, 10, rng=np.random.default_rng(0))
    >>> fc
    Linear(in_features=512, out_features=10)
    >>> fc(np.zeros((4, 512), np.float32)).shape
    (4, 10)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: type | np.dtype | str = np.float32, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        layer = type(self).__name__
        self.in_features = as_int(layer, "in_features", in_features, minimum=1)
        self.out_features = as_int(layer, "out_features", out_features, minimum=1)
        bias = as_bool(layer, "bias", bias)
        dtype = _float_dtype(layer, dtype)
        # checked against the memory budget first; no memory inside skeleton()
        self.weight = Parameter.empty((self.out_features, self.in_features), dtype, owner=layer, name="weight")
        if bias:
            self.bias = Parameter.empty((self.out_features,), dtype, owner=layer, name="bias")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """PyTorch's default: weight and bias ``U(-1/sqrt(in_features), 1/sqrt(in_features))``."""
        default_weight_and_bias_(self.weight, self.bias, rng)

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{layer}: expected an input whose last axis has {self.in_features} features (in_features), "
                f"got shape {x.shape}"
            )
        check_dtype(layer, x, self.weight)
        y = x @ self.weight.data.T
        if self.bias is not None:
            y = y + self.bias.data
        self._save(x)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        g = check_grad(type(self).__name__, grad_output, x.shape[:-1] + (self.out_features,), x.dtype)
        g2 = g.reshape(-1, self.out_features)  # (M, out)
        x2 = x.reshape(-1, self.in_features)  # (M, in)
        self.weight.accumulate_grad(g2.T @ x2)  # (out, M) @ (M, in)
        if self.bias is not None:
            self.bias.accumulate_grad(g2.sum(axis=0))
        return g @ self.weight.data  # (*, out) @ (out, in)

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}"
        return text + (", bias=False" if self.bias is None else "")


class Identity(Module):
    """Returns its input; arguments are accepted and ignored (as torch), so it can stand in for any layer."""

    _reusable = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._save(np.shape(input))
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        self._saved()
        return grad_output


class Flatten(Module):
    """Flatten axes ``start_dim .. end_dim`` into one (default: everything but the batch axis).

    Examples
    --------
    >>> import numpy as np
    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    _reusable = True

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        layer = type(self).__name__
        self.start_dim = as_int(layer, "start_dim", start_dim)
        self.end_dim = as_int(layer, "end_dim", end_dim)

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = np.asarray(input)
        rank = max(x.ndim, 1)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank):
            raise ValueError(f"{layer}: start_dim (={self.start_dim}) and end_dim (={self.end_dim}) must be axes "
                             f"of the input of shape {x.shape}")
        if start > end:
            raise ValueError(f"{layer}: start_dim (={self.start_dim}) must not come after end_dim (={self.end_dim}) "
                             f"for an input of shape {x.shape}")
        self._save(x.shape)
        if x.ndim == 0:
            return x.reshape(1)
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        return np.asarray(grad_output).reshape(shape)

    def extra_repr(self) -> str:
        parts = []
        if self.start_dim != 1:
            parts.append(f"start_dim={self.start_dim}")
        if self.end_dim != -1:
            parts.append(f"end_dim={self.end_dim}")
        return ", ".join(parts)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    In eval mode it is the identity. The mask is drawn from ``rng`` (a
    ``numpy.random.Generator``; None draws a fresh one), so a seeded generator
    reproduces it. Backward multiplies by the same mask and scale.
    (Srivastava et al., JMLR 2014; the scaling at training time keeps the
    expectation, so inference needs no change.)

    Examples
    --------
    >>> import numpy as np
    >>> drop = Dropout(0.5, rng=np.random.default_rng(0))
    >>> y = drop(np.ones(6))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        layer = type(self).__name__
        self.p = as_float(layer, "p", p)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"{layer}: p (={p}) must be a probability in [0, 1]")
        self.inplace = as_bool(layer, "inplace", inplace)
        self.rng = as_generator(layer, rng)

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = float_input(type(self).__name__, input)
        if not self.training or self.p == 0.0:
            self._save(None)
            return x
        if self.p == 1.0:
            scaled_mask = np.zeros_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.p  # kept with probability 1 - p
            scaled_mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        self._save(scaled_mask)
        return x * scaled_mask

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (scaled_mask,) = self._saved()
        if scaled_mask is None:
            return grad_output
        g = check_grad(type(self).__name__, grad_output, scaled_mask.shape, scaled_mask.dtype)
        return g * scaled_mask  # y = x * m / (1-p) is linear in x

    def extra_repr(self) -> str:
        parts = [f"p={self.p}"] if self.p != 0.5 else []
        if self.inplace:
            parts.append("inplace=True")
        return ", ".join(parts)


class Upsample(Module):
    """Nearest-neighbour upsampling of ``(N, C, *S)`` by ``scale_factor`` (or to ``size``).

    Output size ``floor(S * scale_factor)`` (or ``size``); output ``o`` copies
    input ``min(floor(o * scale), S - 1)`` with ``scale = 1/scale_factor`` (or
    ``S/size``), torch's 'nearest' rule. Backward adds each output gradient to
    its source (a scatter-add).

    The first argument is ``scale_factor`` (the convlab contract), not torch's
    ``size``: give ``size=`` by keyword.

    Examples
    --------
    >>> import numpy as np
    >>> Upsample(scale_factor=2)(np.array([[[1.0, 2.0]]]))
    array([[[1., 1., 2., 2.]]])
    """

    _reusable = True

    def __init__(self, scale_factor: float | Sequence[float] | None = None, mode: str = "nearest", *,
                 size: int | Sequence[int] | None = None) -> None:
        super().__init__()
        layer = type(self).__name__
        if (scale_factor is None) == (size is None):
            raise ValueError(f"{layer}: give exactly one of scale_factor (={scale_factor!r}) and size (={size!r})")
        if mode != "nearest":
            raise ValueError(f"{layer}: mode (={mode!r}) is not supported; only 'nearest' is")
        if scale_factor is not None:
            factors = scale_factor if isinstance(scale_factor, (list, tuple)) else (scale_factor,)
            for value in factors:
                if as_float(layer, "scale_factor", value) <= 0:
                    raise ValueError(f"{layer}: scale_factor (={scale_factor!r}) must be > 0")
            scale_factor = tuple(float(v) for v in factors) if isinstance(scale_factor, (list, tuple)) \
                else float(scale_factor)
        if size is not None:
            size = tuple(as_int(layer, "size", v, minimum=1) for v in size) if isinstance(size, (list, tuple)) \
                else as_int(layer, "size", size, minimum=1)
        self.scale_factor = scale_factor
        self.size = size
        self.mode = mode

    def _sources(self, spatial: tuple[int, ...]) -> list[np.ndarray]:
        layer = type(self).__name__
        nd = len(spatial)
        given = self.scale_factor if self.size is None else self.size
        entries = given if isinstance(given, tuple) else (given,) * nd
        if len(entries) != nd:
            raise ValueError(f"{layer}: {'scale_factor' if self.size is None else 'size'} (={given!r}) has "
                             f"{len(entries)} entries but the input has {nd} spatial dimensions")
        sources = []
        for n, entry in zip(spatial, entries, strict=True):
            if self.size is None:
                out, scale = math.floor(n * entry), 1.0 / entry
            else:
                out, scale = entry, n / entry
            sources.append(np.minimum(np.floor(np.arange(out) * scale).astype(np.int64), n - 1))
        return sources

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 3:
            raise ValueError(f"{layer}: expected a batched input (N, C, *spatial), got shape {x.shape}")
        sources = self._sources(x.shape[2:])
        y = x
        for axis, index in enumerate(sources, start=2):
            y = np.take(y, index, axis=axis)  # gather along one spatial axis
        self._save(x.shape, sources)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape, sources = self._saved()
        g = np.asarray(grad_output)
        for axis in reversed(range(2, len(shape))):
            index = sources[axis - 2]
            target_shape = g.shape[:axis] + (shape[axis],) + g.shape[axis + 1:]
            scattered = np.zeros(target_shape, dtype=g.dtype)
            np.add.at(scattered, (slice(None),) * axis + (index,), g)  # adjoint of the gather: scatter-add
            g = scattered
        return g

    def extra_repr(self) -> str:
        text = f"scale_factor={self.scale_factor}" if self.size is None else f"size={self.size}"
        return text + (f", mode={self.mode!r}" if self.mode != "nearest" else "")
