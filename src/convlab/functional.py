"""The public face of the engine, named like ``torch.nn.functional``.

Code written for PyTorch ports by changing the import and passing NumPy
arrays::

    import convlab.functional as F
    y = F.conv2d(x, w, bias, stride=2, padding=1)

Beyond PyTorch: every function takes any number of spatial dimensions in its
N-d form (``conv``, ``conv_transpose``, ...), ``padding`` accepts
``'same_tf'``, ``'full'``, ``'causal'`` and ``(lo, hi)`` pairs, ``padding_mode``
accepts ``'symmetric'``, ``flip_kernel=True`` gives the true convolution, and
each op has a ``*_vjp`` returning its gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ops.conv import ConvGrads, conv, conv_transpose, conv_transpose_vjp, conv_vjp
from .ops.padding import pad

__all__ = [
    "ConvGrads",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose_vjp",
    "conv_vjp",
    "pad",
]


def conv1d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
           dilation=1, groups=1, *, padding_mode: str = "zeros", flip_kernel: bool = False,
           algorithm: str = "auto") -> np.ndarray:
    """1-D convolution: input ``(N, C_in, L)``, weight ``(C_out, C_in/groups, k)``. See :func:`conv`.

    Examples
    --------
    >>> import numpy as np
    >>> conv1d(np.array([[[1.0, 2.0, 3.0, 4.0]]]), np.array([[[1.0, -1.0]]]))
    array([[[-1., -1., -1.]]])
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode,
                flip_kernel=flip_kernel, algorithm=algorithm, ndim=1, _fn="conv1d")


def conv2d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
           dilation=1, groups=1, *, padding_mode: str = "zeros", flip_kernel: bool = False,
           algorithm: str = "auto") -> np.ndarray:
    """2-D convolution: input ``(N, C_in, H, W)``, weight ``(C_out, C_in/groups, kh, kw)``. See :func:`conv`.

    Shape
    -----
    ``H_out = floor((H + p_top + p_bottom - d*(kh-1) - 1) / s) + 1``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0, 1, 2, 3], [2, 1, 3, 2], [0, 1, 3, 0], [0, 4, 1, 2]], dtype=float)
    >>> k = np.array([[2, 1, 0], [2, 1, 0], [1, 0, 2]], dtype=float)
    >>> conv2d(x[None, None], k[None, None])[0, 0]
    array([[13., 17.],
           [ 8., 20.]])
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode,
                flip_kernel=flip_kernel, algorithm=algorithm, ndim=2, _fn="conv2d")


def conv3d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
           dilation=1, groups=1, *, padding_mode: str = "zeros", flip_kernel: bool = False,
           algorithm: str = "auto") -> np.ndarray:
    """3-D convolution: input ``(N, C_in, D, H, W)``, weight ``(C_out, C_in/groups, kd, kh, kw)``. See :func:`conv`.

    Examples
    --------
    >>> import numpy as np
    >>> conv3d(np.ones((1, 2, 4, 4, 4)), np.ones((3, 2, 3, 3, 3))).shape
    (1, 3, 2, 2, 2)
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode,
                flip_kernel=flip_kernel, algorithm=algorithm, ndim=3, _fn="conv3d")


def conv_transpose1d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     algorithm: str = "auto") -> np.ndarray:
    """1-D transposed convolution: weight ``(C_in, C_out/groups, k)``. See :func:`conv_transpose`.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                          output_size=output_size, algorithm=algorithm, ndim=1, _fn="conv_transpose1d")


def conv_transpose2d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     algorithm: str = "auto") -> np.ndarray:
    """2-D transposed convolution (deconvolution): weight ``(C_in, C_out/groups, kh, kw)``. See :func:`conv_transpose`.

    Shape
    -----
    ``H_out = (H - 1)*s - p_top - p_bottom + d*(kh-1) + output_padding + 1``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, padding=1).shape
    (1, 1, 5, 5)
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                          output_size=output_size, algorithm=algorithm, ndim=2, _fn="conv_transpose2d")


def conv_transpose3d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     algorithm: str = "auto") -> np.ndarray:
    """3-D transposed convolution: weight ``(C_in, C_out/groups, kd, kh, kw)``. See :func:`conv_transpose`.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d(np.ones((1, 2, 2, 2, 2)), np.ones((2, 1, 2, 2, 2)), stride=2).shape
    (1, 1, 4, 4, 4)
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                          output_size=output_size, algorithm=algorithm, ndim=3, _fn="conv_transpose3d")
