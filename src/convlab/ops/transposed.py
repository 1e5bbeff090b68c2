"""Transposed convolution three ways, to see why they are one operation.

* :func:`by_zero_insertion` -- the tutorials' recipe: insert ``s - 1`` zeros
  between input elements, pad ``d*(k-1) - p`` on each side (plus
  ``output_padding`` on the far side), flip the kernel and convolve with
  stride 1 (Dumoulin & Visin, arXiv:1603.07285, relationship 14);
* :func:`by_matrix` -- multiply by ``C.T``, the transpose of the convolution
  matrix of the forward convolution (hence the name);
* :func:`by_scatter` -- every input element stamps a copy of the kernel,
  scaled by its value, into the output at ``i*s - p`` (and the copies add up).

All three equal :func:`convlab.ops.conv_transpose`; the engine itself uses the
first, expressed through its convolution primitive.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..shapes import conv_transpose_output_shape, transpose_padding
from ..spec import ConvSpec
from ._checks import as_array
from .algorithms.matrix import conv_matrix
from .conv import conv

__all__ = ["by_matrix", "by_scatter", "by_zero_insertion"]


def _spec(fn, x, w, stride, padding, output_padding, dilation) -> ConvSpec:
    if x.ndim != w.ndim:
        raise ValueError(f"{fn}: `input` must be batched (N, C_in, *spatial) like the weight's rank, got {x.shape}")
    return ConvSpec(w.shape[2:], stride, padding, dilation, transposed=True, output_padding=output_padding,
                    ndim=w.ndim - 2, name=fn)


def by_zero_insertion(input: np.ndarray, weight: np.ndarray, stride=1, padding=0, output_padding=0,
                      dilation=1) -> np.ndarray:
    """Insert zeros, pad, flip the kernel, convolve at stride 1 (groups = 1).

    Examples
    --------
    >>> import numpy as np
    >>> by_zero_insertion(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, padding=1).shape
    (1, 1, 5, 5)
    """
    fn = "by_zero_insertion"
    x, w = as_array(fn, "input", input), as_array(fn, "weight", weight)
    spec = _spec(fn, x, w, stride, padding, output_padding, dilation)
    nd = spec.ndim
    size = x.shape[2:]
    # 1. s - 1 zeros between neighbouring input elements.
    spread = np.zeros(x.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(size, spec.stride,
                                                                          strict=True)), dtype=x.dtype)
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in spec.stride)] = x
    # 2. d*(k-1) - p on each side, output_padding more on the far side (negative = crop).
    pairs = transpose_padding(spec.kernel_size, spec.dilation, spec.padding, spec.output_padding)
    crop = tuple(slice(max(-lo, 0), spread.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs))
    spread = spread[(slice(None), slice(None)) + crop]
    padded = np.pad(spread, [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pairs])
    # 3. flip the kernel and swap its channel axes: (C_in, C_out, *k) -> (C_out, C_in, *k).
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd].swapaxes(0, 1)
    # 4. an ordinary stride-1 convolution with the same dilation.
    return conv(padded, np.ascontiguousarray(flipped), None, 1, 0, spec.dilation, _fn=fn)


def by_matrix(input: np.ndarray, weight: np.ndarray, stride=1, padding=0, output_padding=0,
              dilation=1) -> np.ndarray:
    """Multiply each sample by ``C.T``, the transposed convolution matrix (groups = 1)."""
    fn = "by_matrix"
    x, w = as_array(fn, "input", input), as_array(fn, "weight", weight)
    spec = _spec(fn, x, w, stride, padding, output_padding, dilation)
    out_size = tuple(int(o) for o in conv_transpose_output_shape(spec, x.shape[2:]))
    matrix = conv_matrix(w, x.shape[2:], spec.stride, spec.padding, spec.dilation, transposed=True,
                         output_padding=spec.output_padding, sparse=True)
    flat = x.reshape(x.shape[0], -1).T  # (C_in * prod(I), N)
    return np.asarray(matrix @ flat).T.reshape((x.shape[0], w.shape[1]) + out_size)


def by_scatter(input: np.ndarray, weight: np.ndarray, stride=1, padding=0, output_padding=0,
               dilation=1) -> np.ndarray:
    """Stamp the kernel, scaled by each input element, at ``i*s - p_lo`` and add (groups = 1)."""
    fn = "by_scatter"
    x, w = as_array(fn, "input", input), as_array(fn, "weight", weight)
    spec = _spec(fn, x, w, stride, padding, output_padding, dilation)
    out_size = tuple(int(o) for o in conv_transpose_output_shape(spec, x.shape[2:]))
    # Work on the uncropped canvas, then cut the padding off.
    canvas = tuple(o + lo + hi for o, (lo, hi) in zip(out_size, spec.padding, strict=True))
    y = np.zeros((x.shape[0], w.shape[1]) + canvas, dtype=np.result_type(x, w))
    for i in itertools.product(*(range(n) for n in x.shape[2:])):
        value = x[(slice(None), slice(None)) + i]  # (N, C_in)
        stamp = np.tensordot(value, w, axes=(1, 0))  # (N, C_out, *k)
        region = tuple(slice(ii * s, ii * s + d * (k - 1) + 1, d)
                       for ii, s, d, k in zip(i, spec.stride, spec.dilation, spec.kernel_size, strict=True))
        y[(slice(None), slice(None)) + region] += stamp
    keep = tuple(slice(lo, lo + o) for o, (lo, _) in zip(out_size, spec.padding, strict=True))
    return y[(slice(None), slice(None)) + keep]
