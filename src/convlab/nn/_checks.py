"""Argument and input checks shared by the layers; every message names the layer, the parameter and the value."""

from __future__ import annotations

import numbers

import numpy as np

from ..ops._checks import as_array
from ..spec import as_bool as as_bool  # re-exported: the one flag check, shared with ops and spec
from .module import Parameter

SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


def as_int(layer: str, name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{layer}: {name} (={value}) must be >= {minimum}")
    return value


def as_float(layer: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer}: {name} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def as_generator(layer: str, rng: object) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{layer}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def float_input(layer: str, input: object) -> np.ndarray:
    """The input as a floating-point ndarray (no copy)."""
    x = as_array(layer, "input", input)
    if x.dtype.kind != "f":
        raise TypeError(f"{layer}: the input must have a floating-point dtype, got {x.dtype}")
    return x


def check_rank(layer: str, x: np.ndarray, ranks: tuple[int, ...], layout: str) -> None:
    if x.ndim not in ranks:
        raise ValueError(f"{layer}: expected {layout}, got an input of shape {x.shape}")


def conv_layout(nd: int) -> str:
    names = SPATIAL_NAMES.get(nd, "*spatial")
    return f"a {nd + 2}-d input (N, C, {names}) or a {nd + 1}-d unbatched input (C, {names})"


def check_channels(layer: str, x: np.ndarray, axis: int, expected: int, what: str) -> None:
    got = x.shape[axis]
    if got != expected:
        raise ValueError(
            f"{layer}: expected an input with {expected} channels ({what}), got {got} (input shape {x.shape})"
        )


def check_dtype(layer: str, x: np.ndarray, param: Parameter) -> None:
    want = param.data.dtype
    if x.dtype != want:
        raise TypeError(
            f"{layer}: the input has dtype {x.dtype} but the layer's parameters are {want}; cast the input "
            f"(x.astype(np.{want})) or the layer (layer.to(np.{x.dtype}))"
        )


def check_grad(layer: str, grad_output: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    g = as_array(f"{layer}.backward", "grad_output", grad_output)
    if g.shape != tuple(shape):
        raise ValueError(f"{layer}.backward: grad_output must have the output's shape {tuple(shape)}, got {g.shape}")
    if g.dtype != dtype:
        g = g.astype(dtype)
    return g
