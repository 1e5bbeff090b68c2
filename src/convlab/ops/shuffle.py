"""Channel shuffle (ShuffleNet), forward and backward.

Zhang et al., "ShuffleNet", arXiv:1707.01083, section 3.1: with ``g`` groups,
reshape the channels into a ``(g, C/g)`` grid, transpose it to ``(C/g, g)`` and
flatten, so that the next grouped convolution sees channels from every group::

    C = 6, g = 2:   0 1 2 | 3 4 5   ->   0 3 1 4 2 5

Output channel ``j*g + i`` is input channel ``i*(C/g) + j``. The shuffle is a
permutation, so its gradient is the inverse permutation: the shuffle with
``C/g`` groups.
"""

from __future__ import annotations

import numpy as np

from ..spec import as_int, as_ndim
from ._checks import as_array, split_batch

__all__ = ["channel_shuffle", "channel_shuffle_vjp"]


def _prepare(fn: str, input: object, groups: object, ndim: int | None) -> tuple[np.ndarray, bool, int]:
    x = as_array(fn, "input", input)
    g = as_int(fn, "groups", groups)  # type and range (+/-2**62); >= 1 below, after the input's rank
    if ndim is None:
        # PyTorch: the channels are axis 1 of an input with at least 3 dimensions.
        if x.ndim < 3:
            raise ValueError(
                f"{fn}: `input` must have at least 3 dimensions (N, C, *spatial), got shape {x.shape}; "
                f"pass ndim= for an unbatched (C, *spatial) input"
            )
        xb, unbatched = x, False
    else:
        xb, unbatched = split_batch(fn, "input", x, as_ndim(fn, ndim))
    if g < 1:
        raise ValueError(f"{fn}: `groups` (={g}) must be >= 1")
    channels = xb.shape[1]
    if channels % g:
        raise ValueError(f"{fn}: `groups` (={g}) must divide the number of channels (={channels})")
    return xb, unbatched, g


def _shuffle(xb: np.ndarray, groups: int) -> np.ndarray:
    n, c = xb.shape[:2]
    if c == 0:
        return xb.copy()  # no channels to permute (any number of groups divides 0)
    spatial = xb.shape[2:]
    grid = xb.reshape((n, groups, c // groups) + spatial)  # (N, g, C/g, *S)
    return np.ascontiguousarray(grid.swapaxes(1, 2)).reshape(xb.shape)  # (N, C/g, g, *S) -> (N, C, *S)


def channel_shuffle(input: np.ndarray, groups: int, *, ndim: int | None = None) -> np.ndarray:
    """Interleave the channels of ``groups`` groups (``torch.nn.functional.channel_shuffle``).

    Parameters
    ----------
    input : ndarray
        ``(N, C, *spatial)`` with at least one spatial dimension (as in PyTorch,
        axis 1 holds the channels). With ``ndim`` given, unbatched
        ``(C, *spatial)`` is accepted too.
    groups : int
        Must divide ``C``.
    ndim : int, optional
        Number of spatial dimensions; only needed for unbatched input.

    Shape
    -----
    ``(N, C, *S) -> (N, g, C/g, *S) -> (N, C/g, g, *S) -> (N, C, *S)``.

    Examples
    --------
    >>> import numpy as np
    >>> channel_shuffle(np.arange(6).reshape(1, 6, 1), 2)[0, :, 0]
    array([0, 3, 1, 4, 2, 5])
    >>> channel_shuffle(np.arange(6).reshape(6, 1), 3, ndim=1)[:, 0]   # unbatched
    array([0, 2, 4, 1, 3, 5])
    """
    fn = "channel_shuffle"
    xb, unbatched, g = _prepare(fn, input, groups, ndim)
    y = _shuffle(xb, g)
    return y[0] if unbatched else y


def channel_shuffle_vjp(
    grad_output: np.ndarray, input: np.ndarray, groups: int, *, ndim: int | None = None
) -> np.ndarray:
    """Gradient of :func:`channel_shuffle` with respect to its input.

    A permutation's adjoint is its inverse: output channel ``j*g + i`` came
    from input channel ``i*(C/g) + j``, and shuffling with ``C/g`` groups sends
    it back there.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(1, 6, 1)
    >>> channel_shuffle_vjp(channel_shuffle(x, 2), x, 2)[0, :, 0]
    array([0., 1., 2., 3., 4., 5.])
    """
    fn = "channel_shuffle_vjp"
    xb, unbatched, g = _prepare(fn, input, groups, ndim)
    gy = as_array(fn, "grad_output", grad_output)
    gb = gy[None] if unbatched and gy.ndim == xb.ndim - 1 else gy
    if gb.shape != xb.shape:
        shown = xb.shape[1:] if unbatched else xb.shape
        raise ValueError(f"{fn}: `grad_output` must have the output's shape {shown}, got {gy.shape}")
    if gy.dtype != xb.dtype:
        raise TypeError(f"{fn}: `grad_output` has dtype {gy.dtype}, but the input has {xb.dtype}")
    c = xb.shape[1]
    grad = _shuffle(gb, c // g if c else 1)
    return grad[0] if unbatched else grad
