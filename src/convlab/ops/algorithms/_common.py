"""Pieces every algorithm of the convolution primitive shares."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from types import ModuleType

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...shapes import output_length
from ..padding import pad_pairs

__all__ = ["dilate_and_pad", "load_kernels", "numba_threads", "primitive_output_size", "sliding_windows"]


def dilate_and_pad(
    x: np.ndarray, input_dilation: Sequence[int], padding: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Insert ``input_dilation - 1`` zeros between input elements, then zero-pad (negative pads crop).

    ``x`` is ``(N, C, *S)``; the result is ``(N, C, *((S - 1)*ld + 1 + lo + hi))``.
    """
    nd = len(input_dilation)
    if any(ld != 1 for ld in input_dilation):
        spatial = x.shape[2:]
        dilated = tuple((s - 1) * ld + 1 if s > 0 else 0 for s, ld in zip(spatial, input_dilation, strict=True))
        z = np.zeros(x.shape[:2] + dilated, dtype=x.dtype)
        z[(slice(None), slice(None)) + tuple(slice(None, None, ld) for ld in input_dilation)] = x
        x = z
    if len(padding) != nd:
        raise ValueError(f"internal: {len(padding)} padding pairs for {nd} spatial dimensions")
    return pad_pairs(x, padding, "constant", fn="conv")


def primitive_output_size(
    padded_size: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[int, ...]:
    """Output size on an already dilated and padded input: ``floor((S - d*(k-1) - 1) / s) + 1`` (0 if none fits)."""
    return tuple(output_length(s, k, st, d) for s, k, st, d in zip(padded_size, kernel_size, stride, dilation,
                                                                     strict=True))


def sliding_windows(
    xp: np.ndarray,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
) -> np.ndarray:
    """A read-only view ``(N, C, *O, *K)`` of every kernel window of ``xp`` ``(N, C, *S)``.

    ``view[n, c, *o, *k] = xp[n, c, *(o*stride + k*dilation)]``. Axes of length one get
    stride 0, so huge strides or dilations never overflow the byte offsets.
    """
    st = xp.strides[2:]
    out_strides = tuple(0 if o == 1 else s * step for o, s, step in zip(output_size, st, stride, strict=True))
    k_strides = tuple(0 if k == 1 else s * d for k, s, d in zip(kernel_size, st, dilation, strict=True))
    shape = xp.shape[:2] + tuple(output_size) + tuple(kernel_size)
    if xp.size == 0:
        return np.zeros(shape, dtype=xp.dtype)
    return as_strided(xp, shape, xp.strides[:2] + out_strides + k_strides, writeable=False)


def load_kernels(cached: ModuleType | bool | None, module: str) -> ModuleType | bool:
    """The compiled kernels' module ``module`` (in this package), imported on first use; False without numba.

    ``cached`` is what the caller remembered: None (not tried yet), False (numba does not
    import) or the module. Each algorithm keeps its own ``_kernels`` so tests can hide it.
    """
    if cached is None:
        try:
            cached = importlib.import_module(f"{__package__}.{module}")
        except ImportError:
            cached = False
    return cached


def numba_threads(numba_module) -> int:
    """The threads the compiled kernels run on: numba's own setting (``NUMBA_NUM_THREADS``), or
    ``OMP_NUM_THREADS`` when only that is set, like BLAS."""
    threads = numba_module.config.NUMBA_NUM_THREADS
    if "NUMBA_NUM_THREADS" not in os.environ:
        with contextlib.suppress(KeyError, ValueError):
            threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    return threads
