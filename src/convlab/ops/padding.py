"""Padding of the trailing (spatial) dimensions in every mode, forward and backward.

Each mode is an index map: padded position ``j`` (from ``-lo`` to ``S + hi - 1``)
reads input position ``source(j)``, or the constant when ``source(j) = -1``.
The forward pass gathers along that map; the backward pass scatters the
gradient back along the same map, so both share one definition::

    constant:   000 1234 000
    reflect:    432 1234 321
    replicate:  111 1234 444
    circular:   234 1234 123
    symmetric:  321 1234 432

Negative amounts crop, as in ``torch.nn.functional.pad``. A circular pad wraps
what the crop leaves, as torch does: ``1234`` padded by ``(-1, 1)`` is ``234 2``
(period ``234``), not ``234 1``; each wrap is at most that cropped size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..spec import as_int, entries
from ._checks import as_array, check_budget

__all__ = ["PAD_MODES", "check_pad_limits", "pad", "pad_pairs", "pad_pairs_vjp", "pad_vjp", "source_index"]

PAD_MODES = ("constant", "reflect", "replicate", "circular", "symmetric")
_CONV_MODE = {"zeros": "constant"}  # padding_mode names of the conv layers -> pad modes


def _kept(size: int, lo: int, hi: int) -> int:
    """How many of ``size`` input elements survive padding ``(lo, hi)`` (negative amounts crop)."""
    return max(0, size + min(lo, 0) + min(hi, 0))


def check_pad_limits(fn: str, mode: str, size: int, lo: int, hi: int, dim: int) -> None:
    """Raise ValueError where ``mode`` cannot produce ``(lo, hi)`` padding from ``size`` elements."""
    if mode == "replicate":
        if size == 0 and (lo > 0 or hi > 0):
            raise ValueError(f"{fn}: replicate padding needs a non-empty input, got size 0 in spatial dimension {dim}")
    elif mode == "circular" and (lo < 0 or hi < 0):
        # PyTorch crops first and wraps the cropped part (aten/src/ATen/native/PadNd.cpp,
        # _pad_circular_symint), so a wrap may take at most what the crop leaves; beyond
        # that torch reads its own output (an error or uninitialised memory).
        kept = _kept(size, lo, hi)
        if max(lo, hi) > kept:
            raise ValueError(
                f"{fn}: circular padding (={(lo, hi)}) must be at most the size left after cropping "
                f"(={kept} of {size}) in spatial dimension {dim}"
            )
    elif mode != "constant":
        # PyTorch's limits: reflect needs pad < size, circular pad <= size; symmetric
        # (the edge-repeating mirror) likewise pad <= size.
        limit, rule = (size - 1, "smaller than") if mode == "reflect" else (size, "at most")
        if max(lo, hi) > limit:
            raise ValueError(
                f"{fn}: {mode} padding (={(lo, hi)}) must be {rule} the input size (={size}) "
                f"in spatial dimension {dim}"
            )


def source_index(fn: str, mode: str, size: int, lo: int, hi: int, dim: int) -> np.ndarray:
    """Input index read by each padded position along one dimension (-1: the constant).

    Raises ValueError where the mode cannot produce that much padding from ``size``.
    """
    check_pad_limits(fn, mode, size, lo, hi, dim)
    j = np.arange(-lo, size + hi)
    if mode == "constant":
        return np.where((j >= 0) & (j < size), j, -1)
    if mode == "replicate":
        return np.clip(j, 0, size - 1)
    if mode == "circular":
        # The period is what survives the crop, [start, start + kept): PyTorch crops, then wraps.
        start = max(-lo, 0)
        return start + (j - start) % max(_kept(size, lo, hi), 1)
    if mode == "reflect":
        return np.where(j < 0, -j, np.where(j >= size, 2 * (size - 1) - j, j))
    # symmetric
    return np.where(j < 0, -j - 1, np.where(j >= size, 2 * size - 1 - j, j))


def _normalize_mode(fn: str, mode: str) -> str:
    mode = _CONV_MODE.get(mode, mode)
    if mode not in PAD_MODES:
        raise ValueError(f"{fn}: `mode` (={mode!r}) must be one of {PAD_MODES} (or 'zeros')")
    return mode


def pad_pairs(
    x: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    mode: str = "constant",
    value: float = 0.0,
    *,
    fn: str = "pad",
) -> np.ndarray:
    """Pad the last ``len(pairs)`` dimensions of ``x`` by ``(lo, hi)`` each.

    Returns ``x`` itself when nothing is padded (callers must not write to it).
    """
    mode = _normalize_mode(fn, mode)
    nd = len(pairs)
    lead = x.ndim - nd
    if lead < 0:
        raise ValueError(f"{fn}: padding {nd} dimensions of an array with only {x.ndim} ({x.shape})")
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    new_shape = list(x.shape)
    for i, (lo, hi) in enumerate(pairs):
        size = x.shape[lead + i]
        new_shape[lead + i] = size + lo + hi
        if size + lo + hi < 0:
            raise ValueError(f"{fn}: cropping {(lo, hi)} removes more than the size (={size}) of dimension {lead + i}")
    check_budget(fn, "padded array", new_shape, x.dtype.itemsize)
    if mode == "constant":
        out = np.full(new_shape, value, dtype=x.dtype)
        dst, src = [slice(None)] * lead, [slice(None)] * lead
        for i, (lo, hi) in enumerate(pairs):
            # Input i lands at i + lo and is kept where 0 <= i + lo < size + lo + hi (a crop may keep none).
            kept = _kept(x.shape[lead + i], lo, hi)
            dst.append(slice(max(lo, 0), max(lo, 0) + kept))
            src.append(slice(max(-lo, 0), max(-lo, 0) + kept))
        out[tuple(dst)] = x[tuple(src)]
        return out
    # Check every dimension's limits before the first copy is made.
    for i, (lo, hi) in enumerate(pairs):
        check_pad_limits(fn, mode, x.shape[lead + i], lo, hi, i)
    if math.prod(new_shape) == 0:
        return np.zeros(new_shape, dtype=x.dtype)  # nothing to copy: no index maps (as long as the padding)
    indices = [source_index(fn, mode, x.shape[lead + i], lo, hi, i) for i, (lo, hi) in enumerate(pairs)]
    out = x
    for i, idx in enumerate(indices):
        out = np.take(out, idx, axis=lead + i)
    return out


def pad_pairs_vjp(
    grad: np.ndarray,
    input_shape: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    mode: str = "constant",
    *,
    fn: str = "pad",
) -> np.ndarray:
    """Gradient of :func:`pad_pairs` with respect to its input.

    The adjoint of a gather is a scatter-add: every padded position adds its
    gradient to the input position it was read from (constant positions read
    nothing, so their gradient is dropped).
    """
    mode = _normalize_mode(fn, mode)
    nd = len(pairs)
    lead = len(input_shape) - nd
    if grad.size == 0 or math.prod(input_shape) == 0:
        for i, (lo, hi) in enumerate(pairs):
            check_pad_limits(fn, mode, int(input_shape[lead + i]), lo, hi, i)
        return np.zeros(tuple(input_shape), dtype=grad.dtype)  # nothing to scatter: no loop over the border
    g = grad
    for i, (lo, hi) in enumerate(pairs):
        axis = lead + i
        size = int(input_shape[axis])
        idx = source_index(fn, mode, size, lo, hi, i)
        moved = np.moveaxis(g, axis, 0)  # (padded, ...)
        out = np.zeros((size,) + moved.shape[1:], dtype=g.dtype)
        # The interior maps one to one; only the border positions need scattering.
        start = min(max(lo, 0), moved.shape[0])
        stop = start + _kept(size, lo, hi)
        out[max(-lo, 0): max(-lo, 0) + (stop - start)] = moved[start:stop]
        for j in list(range(0, start)) + list(range(stop, moved.shape[0])):
            if idx[j] >= 0:
                out[idx[j]] += moved[j]
        g = np.moveaxis(out, 0, axis)
    return g


def pad(input: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """Pad an array, with PyTorch's argument order (``torch.nn.functional.pad``).

    Parameters
    ----------
    input : ndarray
        Any shape.
    pad : sequence of int
        ``(last_lo, last_hi, second_last_lo, second_last_hi, ...)``: pairs for
        the trailing dimensions, last dimension first. Negative values crop.
    mode : {'constant', 'reflect', 'replicate', 'circular', 'symmetric'}
        ``'symmetric'`` mirrors with the edge repeated, which PyTorch lacks.
        For the non-constant modes each amount must be at most the size
        (``reflect``: smaller than the size). ``circular`` with a negative amount
        crops first and wraps the cropped part, as PyTorch does; each amount is
        then at most the size left after cropping.
    value : float
        Fill value for ``'constant'``.

    Shape
    -----
    ``out.shape[-i-1] = input.shape[-i-1] + pad[2*i] + pad[2*i+1]``

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1, 2, 3, 4])
    >>> pad(x, (3, 3), mode="reflect")
    array([4, 3, 2, 1, 2, 3, 4, 3, 2, 1])
    >>> pad(x, (3, 3), mode="symmetric")
    array([3, 2, 1, 1, 2, 3, 4, 4, 3, 2])
    >>> pad(x, (3, 3), mode="circular")
    array([2, 3, 4, 1, 2, 3, 4, 1, 2, 3])
    >>> pad(x, (-1, 2), mode="circular")   # crop 1, then wrap 234
    array([2, 3, 4, 2, 3])
    """
    x = as_array("pad", "input", input)
    out = pad_pairs(x, _torch_order_pairs("pad", pad, x), mode, value, fn="pad")
    return out.copy() if out is x else out  # always a new array: the caller's input is never aliased


def pad_vjp(grad_output: np.ndarray, input: np.ndarray, pad: Sequence[int], mode: str = "constant",
            value: float = 0.0) -> np.ndarray:
    """Gradient of :func:`pad` with respect to its input (``value`` has no gradient of interest here).

    Each padded element is a copy of one input element (or the constant), so the
    gradient of an input element is the sum of the gradients of all its copies.

    Examples
    --------
    >>> import numpy as np
    >>> pad_vjp(np.ones(7), np.zeros(4), (2, 1), mode="reflect")
    array([1., 2., 3., 1.])
    """
    fn = "pad_vjp"
    x = as_array(fn, "input", input)
    g = as_array(fn, "grad_output", grad_output)
    pairs = _torch_order_pairs(fn, pad, x)
    expected = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[x.ndim - len(pairs):], pairs, strict=True))
    if g.shape != x.shape[: x.ndim - len(pairs)] + expected:
        raise ValueError(f"{fn}: `grad_output` must have the padded shape "
                         f"{x.shape[: x.ndim - len(pairs)] + expected}, got {g.shape}")
    return pad_pairs_vjp(g, x.shape, pairs, mode, fn=fn)


def _torch_order_pairs(fn: str, pad: Sequence[int], x: np.ndarray) -> list[tuple[int, int]]:
    """``(last_lo, last_hi, second_last_lo, ...)`` -> ``(lo, hi)`` pairs in array order."""
    items = entries(fn, "pad", pad, forms="a sequence of ints (last_lo, last_hi, ...): a list, a tuple or a 1-D "
                                         "integer NumPy array")
    if items is None:
        raise TypeError(f"{fn}: `pad` must be a sequence of ints (last_lo, last_hi, ...), got {pad!r}")
    amounts = [as_int(fn, f"pad[{i}]", p) for i, p in enumerate(items)]  # type and range (+/-2**62)
    if len(amounts) % 2:
        raise ValueError(
            f"{fn}: `pad` must have an even number of entries (lo, hi per dimension), "
            f"got {len(amounts)}: {tuple(amounts)}"
        )
    nd = len(amounts) // 2
    if nd > x.ndim:
        raise ValueError(f"{fn}: `pad` covers {nd} dimensions but the input has only {x.ndim} (shape {x.shape})")
    # torch order is last dimension first; pairs are in array order.
    return [(amounts[2 * i], amounts[2 * i + 1]) for i in range(nd)][::-1]
