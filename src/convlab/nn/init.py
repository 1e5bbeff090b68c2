"""Parameter initialisation, named like ``torch.nn.init``, with an explicit random generator.

Every function fills a :class:`~convlab.nn.Parameter` (or an ndarray) in place
and returns it. ``rng`` is a ``numpy.random.Generator``; None draws a fresh one
from the operating system's entropy (not reproducible).

A parameter built inside :class:`convlab.nn.skeleton` has no values to fill:
every function leaves it alone (nothing is drawn, ``rng`` is not advanced).

The layers' defaults are PyTorch's: ``kaiming_uniform_(w, a=sqrt(5))`` for
convolution and linear weights, which is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
and the same bound for their biases (He et al., arXiv:1502.01852, with torch's
``a = sqrt(5)`` leaky-ReLU slope).
"""

from __future__ import annotations

import math

import numpy as np

from .module import Parameter, is_weightless

__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

Target = Parameter | np.ndarray


def _array(fn: str, target: Target) -> np.ndarray:
    array = target.data if isinstance(target, Parameter) else target
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a Parameter or a floating-point ndarray, got {type(target).__name__}")
    return array


def _generator(fn: str, rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def calculate_fan_in_and_fan_out(target: Target) -> tuple[int, int]:
    """``fan_in = shape[1] * prod(kernel)``, ``fan_out = shape[0] * prod(kernel)`` (torch's rule).

    For a transposed convolution's weight ``(C_in, C_out/groups, *k)`` this is
    torch's convention too, so the default initialisation matches torch.
    """
    array = _array("calculate_fan_in_and_fan_out", target)
    if array.ndim < 2:
        raise ValueError(
            f"calculate_fan_in_and_fan_out: fan in and fan out need at least 2 dimensions, got shape {array.shape}"
        )
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


_DRAW_BLOCK = 2**20  # elements drawn (as float64) per block: the initialisers' temporary stays at 8 MiB


def _draw_into(array: np.ndarray, draw) -> None:
    """Fill ``array`` with ``draw(size)`` block by block, in C order.

    NumPy's generators draw float64; one draw of the whole shape would hold a
    float64 copy twice the size of a float32 parameter. Drawing blocks in order
    gives the same numbers (the generator's stream is consumed element by
    element) with an 8 MiB temporary.
    """
    if array.size <= _DRAW_BLOCK:
        array[...] = draw(array.shape)
        return
    flat = array.reshape(-1) if array.flags.c_contiguous else None
    for start in range(0, array.size, _DRAW_BLOCK):
        stop = min(start + _DRAW_BLOCK, array.size)
        if flat is not None:
            flat[start:stop] = draw(stop - start)
        else:
            array.flat[start:stop] = draw(stop - start)


def uniform_(target: Target, a: float = 0.0, b: float = 1.0, *, rng: np.random.Generator | None = None) -> Target:
    """Fill with ``U(a, b)``."""
    array = _array("uniform_", target)
    generator = _generator("uniform_", rng)
    if not is_weightless(array):  # a skeleton's parameter has no values to draw
        _draw_into(array, lambda size: generator.uniform(a, b, size=size))
    return target


def normal_(target: Target, mean: float = 0.0, std: float = 1.0, *,
            rng: np.random.Generator | None = None) -> Target:
    """Fill with ``N(mean, std^2)``."""
    array = _array("normal_", target)
    generator = _generator("normal_", rng)
    if not is_weightless(array):
        _draw_into(array, lambda size: generator.normal(mean, std, size=size))
    return target


def constant_(target: Target, value: float) -> Target:
    array = _array("constant_", target)
    if not is_weightless(array):
        array[...] = value
    return target


def zeros_(target: Target) -> Target:
    return constant_(target, 0.0)


def ones_(target: Target) -> Target:
    return constant_(target, 1.0)


def _fan(fn: str, target: Target, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{fn}: mode (={mode!r}) must be 'fan_in' or 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(target)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(target: Target, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                     rng: np.random.Generator | None = None) -> Target:
    """He uniform: ``U(-bound, bound)``, ``bound = gain * sqrt(3 / fan)`` (He et al., arXiv:1502.01852)."""
    fan = _fan("kaiming_uniform_", target, mode)
    if fan == 0:
        return target
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(target, -bound, bound, rng=rng)


def kaiming_normal_(target: Target, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                    rng: np.random.Generator | None = None) -> Target:
    """He normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)`` (torchvision's ResNets use ``mode='fan_out'``)."""
    fan = _fan("kaiming_normal_", target, mode)
    if fan == 0:
        return target
    return normal_(target, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), rng=rng)


def xavier_uniform_(target: Target, gain: float = 1.0, *, rng: np.random.Generator | None = None) -> Target:
    """Glorot uniform: ``bound = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(target)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(target, -bound, bound, rng=rng)


def xavier_normal_(target: Target, gain: float = 1.0, *, rng: np.random.Generator | None = None) -> Target:
    """Glorot normal: ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(target)
    return normal_(target, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)), rng=rng)


def default_weight_and_bias_(weight: Parameter, bias: Parameter | None, rng: np.random.Generator | None) -> None:
    """PyTorch's default for convolution and linear layers: weight, then bias, from one generator."""
    rng = _generator("reset_parameters", rng)
    if is_weightless(weight) and (bias is None or is_weightless(bias)):
        return  # built inside skeleton(): nothing to draw
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng=rng)
