"""Pure shape rules: output sizes, padding resolution and their explanations.

Every rule lives here exactly once. Each returns an :class:`Explained`, an
``int`` that also carries its formula with the numbers substituted, so the
engine, the analysis, the CLI and the pictures all print the same arithmetic::

    >>> n = conv_output_length(32, 3, stride=2, padding=(1, 1), dilation=2)
    >>> n
    15
    >>> print(n.explanation)
    floor((32 + 1 + 1 - 2*(3-1) - 1) / 2) + 1 = 15

Sources: Dumoulin & Visin, "A guide to convolution arithmetic for deep
learning", arXiv:1603.07285 (relationships 1-15); PyTorch's
``pooling_output_shape`` for the ceil-mode rule; the TensorFlow documentation of
``tf.nn.convolution`` for ``'same'`` padding with strides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .spec import MAX_INT, ConvSpec, Pairs, PoolSpec, as_int, entries

__all__ = [
    "Explained",
    "ReceptiveField",
    "adaptive_pool_window",
    "conv_output_length",
    "conv_output_shape",
    "conv_transpose_output_length",
    "conv_transpose_output_shape",
    "output_length",
    "output_padding_for_size",
    "pool_output_length",
    "pool_output_shape",
    "receptive_field",
    "resolve_padding",
    "same_tf_padding",
    "transpose_padding",
]


class Explained(int):
    """An ``int`` that remembers how it was computed.

    ``formula`` is the symbolic rule, ``substituted`` the same with numbers in,
    and ``explanation`` is ``substituted + " = " + value``.
    """

    formula: str
    substituted: str

    def __new__(cls, value: int, formula: str, substituted: str) -> Explained:
        obj = super().__new__(cls, value)
        obj.formula = formula
        obj.substituted = substituted
        return obj

    @property
    def explanation(self) -> str:
        return f"{self.substituted} = {int(self)}"

    def __repr__(self) -> str:
        return repr(int(self))

    def __reduce__(self):  # pickles (and copies) as the plain int plus its text
        return (Explained, (int(self), self.formula, self.substituted))


def _pair(padding: int | tuple[int, int]) -> tuple[int, int]:
    return (padding, padding) if isinstance(padding, int) else (int(padding[0]), int(padding[1]))


def _span(kernel_size: int, dilation: int) -> str:
    """Text of the dilated kernel span d*(k-1)."""
    return f"{dilation}*({kernel_size}-1)" if dilation != 1 else f"({kernel_size}-1)"


def output_length(padded_length: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """The number of kernel windows in an already padded (and input-dilated) length, 0 when none fits.

    ``floor((S - d*(k-1) - 1) / s) + 1`` (Dumoulin & Visin, relationship 6). The
    plain-int form of :func:`conv_output_length`, for the engine's hot paths.

    >>> output_length(7, 3, stride=2)
    3
    """
    span = dilation * (kernel_size - 1) + 1
    return (padded_length - span) // stride + 1 if padded_length >= span else 0


def transpose_padding(
    kernel_size: Sequence[int], dilation: Sequence[int], padding: Sequence[tuple[int, int]],
    output_padding: Sequence[int],
) -> Pairs:
    """The zero padding of the stride-1 convolution that computes a transposed convolution.

    A transposed convolution is the input dilated by the stride, padded by
    ``d*(k-1) - lo`` on the left and ``d*(k-1) - hi + output_padding`` on the
    right (negative amounts crop), correlated with the flipped kernel
    (Dumoulin & Visin, arXiv:1603.07285, relationships 13-14, with dilation).

    >>> transpose_padding((3, 3), (1, 1), ((1, 1), (0, 0)), (1, 0))
    ((1, 2), (2, 2))
    """
    return tuple(
        (d * (k - 1) - lo, d * (k - 1) - hi + op)
        for k, d, (lo, hi), op in zip(kernel_size, dilation, padding, output_padding, strict=True)
    )


def conv_output_length(
    input_length: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
) -> Explained:
    """Output length of a convolution along one dimension.

    ``O = floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1``
    (Dumoulin & Visin, relationship 6, with dilation and asymmetric padding).
    May be <= 0 when the dilated kernel does not fit in the padded input; callers
    that need a valid size check it.
    """
    lo, hi = _pair(padding)
    numerator = input_length + lo + hi - dilation * (kernel_size - 1) - 1
    value = numerator // stride + 1
    return Explained(
        value,
        "floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1",
        f"floor(({input_length} + {lo} + {hi} - {_span(kernel_size, dilation)} - 1) / {stride}) + 1",
    )


def conv_transpose_output_length(
    input_length: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> Explained:
    """Output length of a transposed convolution along one dimension.

    ``O = (I - 1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1``
    (Dumoulin & Visin, relationship 14, with dilation). It is the largest input
    length of the forward convolution that maps to ``I``, less the
    ``output_padding`` slack.
    """
    lo, hi = _pair(padding)
    value = (input_length - 1) * stride - lo - hi + dilation * (kernel_size - 1) + output_padding + 1
    return Explained(
        value,
        "(I - 1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1",
        f"({input_length} - 1)*{stride} - {lo} - {hi} + {_span(kernel_size, dilation)} + {output_padding} + 1",
    )


def pool_output_length(
    input_length: int,
    kernel_size: int,
    stride: int,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> Explained:
    """Output length of a pooling along one dimension (PyTorch's rule).

    ``O = floor_or_ceil((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1``; with
    ``ceil_mode`` a last window that would start in the right padding (or past
    the input) is dropped: if ``(O - 1)*s >= I + p_lo`` then ``O -= 1``.
    """
    lo, hi = _pair(padding)
    numerator = input_length + lo + hi - dilation * (kernel_size - 1) - 1
    body = f"({input_length} + {lo} + {hi} - {_span(kernel_size, dilation)} - 1) / {stride}"
    if not ceil_mode:
        formula = "floor((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1"
        return Explained(numerator // stride + 1, formula, f"floor({body}) + 1")
    value = -(-numerator // stride) + 1
    text = f"ceil({body}) + 1"
    formula = "ceil((I + p_lo + p_hi - d*(k-1) - 1) / s) + 1, minus 1 if the last window starts in the right padding"
    if (value - 1) * stride >= input_length + lo:
        # PyTorch: the last pooling window must start inside the input or left padding.
        text = f"{text} - 1 (last window would start at {(value - 1) * stride} >= {input_length} + {lo})"
        value -= 1
    return Explained(value, formula, text)


def same_tf_padding(
    input_length: int, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[Explained, Explained]:
    """TensorFlow/Keras/JAX ``'same'`` padding ``(lo, hi)`` along one dimension.

    ``O = ceil(I / s)``; ``total = max((O - 1)*s + d*(k-1) + 1 - I, 0)``;
    ``lo = floor(total / 2)`` and ``hi = total - lo`` (extra on the right).
    """
    out = -(-input_length // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - input_length, 0)
    text = f"max((ceil({input_length}/{stride}) - 1)*{stride} + {_span(kernel_size, dilation)} + 1 - {input_length}, 0)"
    lo = total // 2
    return (
        Explained(lo, "floor(total / 2)", f"floor({text} / 2)"),
        Explained(total - lo, "total - p_lo", f"{text} - {lo}"),
    )


def resolve_padding(spec: ConvSpec, input_size: Sequence[int]) -> Pairs:
    """The spec's padding as explicit ``(lo, hi)`` pairs for this input size."""
    if spec.padding != "same_tf":
        return spec.padding  # type: ignore[return-value]
    return tuple(
        tuple(same_tf_padding(i, k, s, d))  # type: ignore[misc]
        for i, k, s, d in zip(input_size, spec.kernel_size, spec.stride, spec.dilation, strict=True)
    )


def _check_rank(fn: str, input_size: Sequence[int], ndim: int) -> None:
    if len(input_size) != ndim:
        raise ValueError(
            f"{fn}: the input has {len(input_size)} spatial dimension(s) {tuple(input_size)}, "
            f"but the spec has {ndim}"
        )


def _check_length(fn: str, length: Explained, dim: int) -> None:
    """Refuse an output length no array can have (more than ``2**62``, :data:`convlab.spec.MAX_INT`).

    The memory budget refuses such an output whenever it holds elements; without
    samples or channels it holds none, and the length itself must be refused.
    """
    if length > MAX_INT:
        raise ValueError(f"{fn}: the output would have length {int(length)} in spatial dimension {dim} "
                         f"({length.explanation}), more than any array can hold (2**62)")


def conv_output_shape(spec: ConvSpec, input_size: Sequence[int]) -> tuple[Explained, ...]:
    """Spatial output shape of a (non-transposed) convolution; raises if the kernel does not fit.

    >>> spec = ConvSpec(3, stride=2, padding=1, ndim=2)
    >>> conv_output_shape(spec, (32, 31))
    (16, 16)
    """
    fn = spec.name
    _check_rank(fn, input_size, spec.ndim)
    pads = resolve_padding(spec, input_size)
    out = []
    dims = zip(input_size, spec.kernel_size, spec.stride, pads, spec.dilation, strict=True)
    for i, (n, k, s, p, d) in enumerate(dims):
        o = conv_output_length(n, k, s, p, d)
        if o < 1:
            raise ValueError(
                f"{fn}: the kernel (size {k}, dilation {d}, so it spans {d * (k - 1) + 1}) is larger than "
                f"the padded input ({n} + {p[0]} + {p[1]} = {n + p[0] + p[1]}) in spatial dimension {i}: "
                f"{o.explanation}"
            )
        _check_length(fn, o, i)
        out.append(o)
    return tuple(out)


def conv_transpose_output_shape(
    spec: ConvSpec, input_size: Sequence[int], output_padding: Sequence[int] | None = None
) -> tuple[Explained, ...]:
    """Spatial output shape of a transposed convolution; raises if it would be empty."""
    fn = spec.name
    _check_rank(fn, input_size, spec.ndim)
    op = spec.output_padding if output_padding is None else tuple(output_padding)
    out = []
    for i, (n, k, s, p, d, o_pad) in enumerate(
        zip(input_size, spec.kernel_size, spec.stride, spec.padding, spec.dilation, op, strict=True)
    ):
        o = conv_transpose_output_length(n, k, s, p, d, o_pad)
        if o < 1:
            raise ValueError(f"{fn}: the output would be empty in spatial dimension {i}: {o.explanation}")
        _check_length(fn, o, i)
        out.append(o)
    return tuple(out)


def output_padding_for_size(spec: ConvSpec, input_size: Sequence[int], output_size: Sequence[int]) -> tuple[int, ...]:
    """Resolve a requested transposed-convolution ``output_size`` to ``output_padding``.

    Each size must lie in ``[O_min, O_min + max(s, d) - 1]`` where ``O_min`` is
    the output size with ``output_padding = 0``, since ``output_padding < max(s, d)``
    (the rule of ``torch.nn.functional.conv_transpose*``; the ``nn.ConvTranspose``
    module allows only ``stride - 1``). ``output_size``
    may also include the batch and channel dimensions, which are ignored.
    """
    fn = spec.name
    given = entries(fn, "output_size", output_size,
                    forms="a sequence of ints (a list, a tuple or a 1-D integer NumPy array), one per spatial "
                          "dimension, or with batch and channels first")
    if given is None:
        raise TypeError(f"{fn}: `output_size` must be a sequence of ints, got {output_size!r} "
                        f"({type(output_size).__name__})")
    size = given[2:] if len(given) == spec.ndim + 2 else given
    if len(size) != spec.ndim:
        raise ValueError(
            f"{fn}: `output_size` (={given}) must have {spec.ndim} entries "
            f"(or {spec.ndim + 2} with batch and channels)"
        )
    offset = len(given) - spec.ndim
    size = tuple(as_int(fn, f"output_size[{i + offset}]", v) for i, v in enumerate(size))  # type and range
    _check_rank(fn, input_size, spec.ndim)
    # The size with output_padding 0 may itself be <= 0; a larger output_padding can still reach >= 1.
    base = [
        conv_transpose_output_length(n, k, s, p, d, 0)
        for n, k, s, p, d in zip(input_size, spec.kernel_size, spec.stride, spec.padding, spec.dilation, strict=True)
    ]
    out = []
    for i, (want, lo, s, d) in enumerate(zip(size, base, spec.stride, spec.dilation, strict=True)):
        hi = lo + max(s, d) - 1
        if not lo <= want <= hi:
            raise ValueError(
                f"{fn}: `output_size` (={want}) is impossible in spatial dimension {i}: "
                f"with this input, kernel, stride and padding the output size must be in [{lo}, {hi}] "
                f"({lo.explanation}, plus output_padding 0..{max(s, d) - 1})"
            )
        out.append(want - lo)
    return tuple(out)


def pool_output_shape(spec: PoolSpec, input_size: Sequence[int]) -> tuple[Explained, ...]:
    """Spatial output shape of a max or average pooling; raises if it would be empty.

    >>> pool_output_shape(PoolSpec(3, stride=2, ceil_mode=True, ndim=1), (6,))
    (3,)
    """
    fn = spec.name
    _check_rank(fn, input_size, spec.ndim)
    out = []
    for i, (n, k, s, p, d) in enumerate(
        zip(input_size, spec.kernel_size, spec.stride, spec.padding, spec.dilation, strict=True)
    ):
        o = pool_output_length(n, k, s, p, d, spec.ceil_mode)
        if o < 1:
            raise ValueError(
                f"{fn}: the pooling window (size {k}, dilation {d}) does not fit in the padded input "
                f"({n} + {p[0]} + {p[1]}) in spatial dimension {i}: {o.explanation}"
            )
        _check_length(fn, o, i)
        out.append(o)
    return tuple(out)


def adaptive_pool_window(input_length: int, output_length: int, index: int) -> tuple[int, int]:
    """Half-open input window ``[start, end)`` of adaptive pooling output ``index``.

    ``start = floor(i*I/O)``, ``end = ceil((i+1)*I/O)`` (PyTorch's rule), so the
    windows cover the input and neighbouring windows may overlap by one.
    ``index`` may also be an integer array: every window at once, elementwise.
    """
    start = (index * input_length) // output_length
    end = -(-((index + 1) * input_length) // output_length)
    return start, end


class ReceptiveField(NamedTuple):
    """Receptive field of one output unit of a stack of layers, along one dimension.

    ``size``: how many input positions can influence one output unit;
    ``jump``: how far apart (in input positions) neighbouring output units' fields are
    (the product of the strides, also called the effective stride);
    ``start``: input coordinate of the first output unit's field's first position
    (negative when it begins in the padding); ``center`` = ``start + (size - 1) / 2``.
    """

    size: int
    jump: int
    start: int

    @property
    def center(self) -> float:
        return self.start + (self.size - 1) / 2


def receptive_field(layers: Sequence[tuple[int, int, int, int]]) -> ReceptiveField:
    """Receptive field of a sequential stack along one dimension; each layer is ``(k, s, p_lo, d)``.

    Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
    Networks", Distill 2019, eqs. (2)-(4) with the dilated kernel ``d*(k-1) + 1``::

        size  = 1 + sum_l d_l*(k_l - 1) * prod_{i<l} s_i
        jump  = prod_l s_l
        start = -sum_l p_l * prod_{i<l} s_i

    Pooling layers count like convolutions (their window is the kernel). For a
    transposed convolution or upsampling the stride is a fraction and this
    integer rule does not apply.

    >>> receptive_field([(3, 1, 0, 1), (3, 1, 0, 2), (3, 1, 0, 4)]).size   # dilations 1, 2, 4
    15
    >>> receptive_field([(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1)])
    ReceptiveField(size=8, jump=2, start=-3)
    """
    size, jump, start = 1, 1, 0
    for k, s, p, d in layers:
        size += d * (k - 1) * jump
        start -= p * jump
        jump *= s
    return ReceptiveField(size, jump, start)
