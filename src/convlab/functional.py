"""The public face of the engine, named like ``torch.nn.functional``.

Code written for PyTorch ports by changing the import and passing NumPy
arrays::

    import convlab.functional as F
    y = F.conv2d(x, w, bias, stride=2, padding=1)

Beyond PyTorch: every function takes any number of spatial dimensions in its
N-d form (``conv``, ``conv_transpose``, ...), ``padding`` accepts
``'same_tf'``, ``'full'``, ``'causal'`` and ``(lo, hi)`` pairs, ``padding_mode``
accepts ``'symmetric'``, ``flip_kernel=True`` gives the true convolution, and
each op has a ``*_vjp`` returning its gradients. A single gradient of a
convolution has its own call, like ``torch.nn.grad``: ``conv_input_grad`` /
``conv2d_input`` and ``conv_weight_grad`` / ``conv2d_weight``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ops.algorithms.matrix import conv_matrix
from .ops.conv import (
    ConvGrads,
    conv,
    conv_input_grad,
    conv_transpose,
    conv_transpose_vjp,
    conv_vjp,
    conv_weight_grad,
)
from .ops.explain import explain_conv, explain_conv_transpose, explain_pool
from .ops.family import (
    bottleneck,
    depthwise_conv,
    depthwise_separable_conv,
    flattened_conv,
    pointwise_conv,
    separable_conv,
    shuffled_grouped_conv,
)
from .ops.loss import (
    LossGrads,
    cross_entropy,
    cross_entropy_vjp,
    log_softmax,
    log_softmax_vjp,
    mse_loss,
    mse_loss_vjp,
    nll_loss,
    nll_loss_vjp,
    softmax,
    softmax_vjp,
)
from .ops.padding import pad, pad_vjp
from .ops.pool import (
    adaptive_avg_pool,
    adaptive_avg_pool_vjp,
    adaptive_max_pool,
    adaptive_max_pool_vjp,
    avg_pool,
    avg_pool_spec,
    avg_pool_vjp,
    global_avg_pool,
    global_avg_pool_vjp,
    global_max_pool,
    global_max_pool_vjp,
    max_pool,
    max_pool_spec,
    max_pool_vjp,
    max_unpool,
    max_unpool_spec,
    max_unpool_vjp,
)
from .ops.shuffle import channel_shuffle, channel_shuffle_vjp
from .ops.unfold import fold, fold_vjp, unfold, unfold_vjp
from .spec import PoolSpec

__all__ = [
    "ConvGrads",
    "LossGrads",
    "adaptive_avg_pool",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_avg_pool_vjp",
    "adaptive_max_pool",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_max_pool_vjp",
    "avg_pool",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "avg_pool_vjp",
    "bottleneck",
    "channel_shuffle",
    "channel_shuffle_vjp",
    "conv",
    "conv1d",
    "conv1d_input",
    "conv1d_weight",
    "conv2d",
    "conv2d_input",
    "conv2d_weight",
    "conv3d",
    "conv3d_input",
    "conv3d_weight",
    "conv_input_grad",
    "conv_matrix",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose_vjp",
    "conv_vjp",
    "conv_weight_grad",
    "cross_entropy",
    "cross_entropy_vjp",
    "depthwise_conv",
    "depthwise_separable_conv",
    "explain_conv",
    "explain_conv_transpose",
    "explain_pool",
    "flattened_conv",
    "fold",
    "fold_vjp",
    "global_avg_pool",
    "global_avg_pool_vjp",
    "global_max_pool",
    "global_max_pool_vjp",
    "log_softmax",
    "log_softmax_vjp",
    "max_pool",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool_vjp",
    "max_unpool",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "max_unpool_vjp",
    "mse_loss",
    "mse_loss_vjp",
    "nll_loss",
    "nll_loss_vjp",
    "pad",
    "pad_vjp",
    "pointwise_conv",
    "separable_conv",
    "shuffled_grouped_conv",
    "softmax",
    "softmax_vjp",
    "unfold",
    "unfold_vjp",
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
    array([[12., 10.],
           [ 8., 18.]])
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


def _input_grad(nd: int):
    def grad(input_size: Sequence[int], weight: np.ndarray, grad_output: np.ndarray, stride=1, padding=0,
             dilation=1, groups=1, *, padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
        return conv_input_grad(input_size, weight, grad_output, stride, padding, dilation, groups,
                               padding_mode=padding_mode, algorithm=algorithm, ndim=nd, _fn=f"conv{nd}d_input")

    grad.__name__ = grad.__qualname__ = f"conv{nd}d_input"
    grad.__doc__ = (f"The input gradient of :func:`conv{nd}d`, like ``torch.nn.grad.conv{nd}d_input``. "
                    "See :func:`conv_input_grad`.")
    return grad


def _weight_grad(nd: int):
    def grad(input: np.ndarray, weight_size: Sequence[int], grad_output: np.ndarray, stride=1, padding=0,
             dilation=1, groups=1, *, padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
        return conv_weight_grad(input, weight_size, grad_output, stride, padding, dilation, groups,
                                padding_mode=padding_mode, algorithm=algorithm, ndim=nd, _fn=f"conv{nd}d_weight")

    grad.__name__ = grad.__qualname__ = f"conv{nd}d_weight"
    grad.__doc__ = (f"The weight gradient of :func:`conv{nd}d`, like ``torch.nn.grad.conv{nd}d_weight``. "
                    "See :func:`conv_weight_grad`.")
    return grad


conv1d_input, conv2d_input, conv3d_input = (_input_grad(nd) for nd in (1, 2, 3))
conv1d_weight, conv2d_weight, conv3d_weight = (_weight_grad(nd) for nd in (1, 2, 3))


def conv_transpose1d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
    """1-D transposed convolution: weight ``(C_in, C_out/groups, k)``. See :func:`conv_transpose`.

    ``padding='same'`` (TensorFlow/Keras, output ``L*s``) and ``padding_mode`` other than
    ``'zeros'`` (the exact adjoint of the convolution with that mode) are convlab extensions.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                          output_size=output_size, padding_mode=padding_mode, algorithm=algorithm, ndim=1,
                          _fn="conv_transpose1d")


def conv_transpose2d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
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
                          output_size=output_size, padding_mode=padding_mode, algorithm=algorithm, ndim=2,
                          _fn="conv_transpose2d")


def conv_transpose3d(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, output_size: Sequence[int] | None = None,
                     padding_mode: str = "zeros", algorithm: str = "auto") -> np.ndarray:
    """3-D transposed convolution: weight ``(C_in, C_out/groups, kd, kh, kw)``. See :func:`conv_transpose`.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d(np.ones((1, 2, 2, 2, 2)), np.ones((2, 1, 2, 2, 2)), stride=2).shape
    (1, 1, 4, 4, 4)
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                          output_size=output_size, padding_mode=padding_mode, algorithm=algorithm, ndim=3,
                          _fn="conv_transpose3d")


# --------------------------------------------------------------------------- pooling
# Each builds its PoolSpec once and hands it to the engine's spec entry point as it is.


def max_pool1d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """1-D max pooling: input ``(N, C, L)`` or ``(C, L)``. See :func:`max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> max_pool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, return_indices=True)
    (array([[[3., 5.]]]), array([[[1, 3]]]))
    """
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=1, name="max_pool1d")
    return max_pool_spec(input, spec, return_indices)


def max_pool2d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """2-D max pooling: input ``(N, C, H, W)`` or ``(C, H, W)``. See :func:`max_pool`.

    Shape
    -----
    ``H_out = floor_or_ceil((H + p_top + p_bottom - d*(kh-1) - 1) / s) + 1``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=2, name="max_pool2d")
    return max_pool_spec(input, spec, return_indices)


def max_pool3d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """3-D max pooling: input ``(N, C, D, H, W)`` or ``(C, D, H, W)``. See :func:`max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> max_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2, return_indices=True)[1].ravel()
    array([7])
    """
    spec = PoolSpec(kernel_size, stride, padding, dilation, ceil_mode, ndim=3, name="max_pool3d")
    return max_pool_spec(input, spec, return_indices)


def avg_pool1d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    """1-D average pooling: input ``(N, C, L)`` or ``(C, L)``. See :func:`avg_pool`.

    ``divisor_override`` goes beyond ``torch.nn.functional.avg_pool1d``, which lacks it.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool1d(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 2)
    array([[[2., 4.]]])
    >>> avg_pool1d(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 2, divisor_override=1)
    array([[[4., 8.]]])
    """
    spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override, ndim=1,
                    name="avg_pool1d")
    return avg_pool_spec(input, spec)


def avg_pool2d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    """2-D average pooling: input ``(N, C, H, W)`` or ``(C, H, W)``. See :func:`avg_pool`.

    Shape
    -----
    ``H_out = floor_or_ceil((H + p_top + p_bottom - kh) / s) + 1``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override, ndim=2,
                    name="avg_pool2d")
    return avg_pool_spec(input, spec)


def avg_pool3d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    """3-D average pooling: input ``(N, C, D, H, W)`` or ``(C, D, H, W)``. See :func:`avg_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2).ravel()
    array([3.5])
    """
    spec = PoolSpec(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override, ndim=3,
                    name="avg_pool3d")
    return avg_pool_spec(input, spec)


def adaptive_max_pool1d(input: np.ndarray, output_size, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """1-D adaptive max pooling: ``(N, C, L) -> (N, C, output_size)``. See :func:`adaptive_max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool1d(np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), 2)
    array([[[4., 3.]]])
    """
    return adaptive_max_pool(input, output_size, return_indices, ndim=1, _fn="adaptive_max_pool1d")


def adaptive_max_pool2d(input: np.ndarray, output_size, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """2-D adaptive max pooling: ``(N, C, H, W) -> (N, C, *output_size)``. See :func:`adaptive_max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool2d(np.arange(20.0).reshape(1, 1, 4, 5), (2, None)).shape   # None keeps W
    (1, 1, 2, 5)
    """
    return adaptive_max_pool(input, output_size, return_indices, ndim=2, _fn="adaptive_max_pool2d")


def adaptive_max_pool3d(input: np.ndarray, output_size, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """3-D adaptive max pooling: ``(N, C, D, H, W) -> (N, C, *output_size)``. See :func:`adaptive_max_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool3d(np.arange(27.0).reshape(3, 1, 3, 3), 1)[:, 0, 0, 0]   # unbatched
    array([ 8., 17., 26.])
    """
    return adaptive_max_pool(input, output_size, return_indices, ndim=3, _fn="adaptive_max_pool3d")


def adaptive_avg_pool1d(input: np.ndarray, output_size) -> np.ndarray:
    """1-D adaptive average pooling: ``(N, C, L) -> (N, C, output_size)``. See :func:`adaptive_avg_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool1d(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 2)
    array([[[2., 4.]]])
    """
    return adaptive_avg_pool(input, output_size, ndim=1, _fn="adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: np.ndarray, output_size) -> np.ndarray:
    """2-D adaptive average pooling: ``(N, C, H, W) -> (N, C, *output_size)``. See :func:`adaptive_avg_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 1)[0, 0]   # global average pooling
    array([[7.5]])
    """
    return adaptive_avg_pool(input, output_size, ndim=2, _fn="adaptive_avg_pool2d")


def adaptive_avg_pool3d(input: np.ndarray, output_size) -> np.ndarray:
    """3-D adaptive average pooling: ``(N, C, D, H, W) -> (N, C, *output_size)``. See :func:`adaptive_avg_pool`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool3d(np.ones((2, 3, 4, 5, 6)), (None, 2, 3)).shape
    (2, 3, 4, 2, 3)
    """
    return adaptive_avg_pool(input, output_size, ndim=3, _fn="adaptive_avg_pool3d")


def max_unpool1d(input: np.ndarray, indices: np.ndarray, kernel_size, stride=None, padding=0,
                 output_size: Sequence[int] | None = None) -> np.ndarray:
    """1-D max unpooling: ``(N, C, L_in) -> (N, C, L_out)``. See :func:`max_unpool`.

    Examples
    --------
    >>> import numpy as np
    >>> max_unpool1d(np.array([[[3.0, 5.0]]]), np.array([[[1, 3]]]), 2)
    array([[[0., 3., 0., 5.]]])
    """
    spec = PoolSpec(kernel_size, stride, padding, ndim=1, name="max_unpool1d")
    return max_unpool_spec(input, indices, spec, output_size)


def max_unpool2d(input: np.ndarray, indices: np.ndarray, kernel_size, stride=None, padding=0,
                 output_size: Sequence[int] | None = None) -> np.ndarray:
    """2-D max unpooling: ``(N, C, H_in, W_in) -> (N, C, H_out, W_out)``. See :func:`max_unpool`.

    Shape
    -----
    Default ``H_out = (H_in - 1)*s - 2*p + kh``, likewise ``W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> values, indices = max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> max_unpool2d(values, indices, 2)[0, 0]
    array([[ 0.,  0.,  0.,  0.],
           [ 0.,  5.,  0.,  7.],
           [ 0.,  0.,  0.,  0.],
           [ 0., 13.,  0., 15.]])
    """
    spec = PoolSpec(kernel_size, stride, padding, ndim=2, name="max_unpool2d")
    return max_unpool_spec(input, indices, spec, output_size)


def max_unpool3d(input: np.ndarray, indices: np.ndarray, kernel_size, stride=None, padding=0,
                 output_size: Sequence[int] | None = None) -> np.ndarray:
    """3-D max unpooling: ``(N, C, D_in, H_in, W_in) -> (N, C, D_out, H_out, W_out)``. See :func:`max_unpool`.

    Examples
    --------
    >>> import numpy as np
    >>> max_unpool3d(np.ones((1, 1, 1, 1, 1)), np.array([[[[[7]]]]]), 2).ravel()
    array([0., 0., 0., 0., 0., 0., 0., 1.])
    """
    spec = PoolSpec(kernel_size, stride, padding, ndim=3, name="max_unpool3d")
    return max_unpool_spec(input, indices, spec, output_size)
