"""Hyperparameters of a convolution or a pooling, normalized and validated once.

A :class:`ConvSpec` or :class:`PoolSpec` is built from the loose arguments a user
passes (``3``, ``(3, 5)``, ``"same"``, ``((0, 1), (2, 2))`` ...) and holds only
canonical tuples afterwards, one entry per spatial dimension. Everything
downstream (shape rules, engine, analysis, CLI) receives the canonical spec and
never re-parses user input.

Every integer a user passes to convlab (here, and the sizes, pad widths and
group counts the other ops take) is normalized by :func:`as_int`, which also
checks its range, ``|value| <= 2**62`` (:data:`MAX_INT`; the reason is in its
docstring). A per-dimension value may be an int, a list, a tuple, any other
sequence of ints, or a 1-D integer NumPy array (:func:`entries`); a sequence
with one entry is repeated for every dimension, like an int (PyTorch's rule
for convolutions and window pooling; :func:`as_tuple`).

Padding forms (``padding=``), for a kernel ``k`` with dilation ``d``:

* ``int`` -- the same amount on both sides of every spatial dimension;
* a tuple with one ``int`` per dimension -- symmetric per dimension;
* a tuple with one ``(lo, hi)`` pair per dimension -- asymmetric;
* ``"valid"`` -- no padding;
* ``"same"`` -- PyTorch semantics: stride 1 only, total ``d*(k-1)`` split with
  the extra element on the right (high) side;
* ``"same_tf"`` -- TensorFlow / Keras / JAX semantics, any stride: the output is
  ``ceil(I / s)`` and the total padding ``max((O-1)*s + d*(k-1) + 1 - I, 0)``,
  extra on the right. It depends on the input size, so it stays symbolic here
  and is resolved by :func:`convlab.shapes.resolve_padding`;
* ``"full"`` -- ``d*(k-1)`` on each side (every partial overlap);
* ``"causal"`` -- ``d*(k-1)`` on the left only (output ``t`` sees inputs ``<= t``).

A transposed convolution (``transposed=True``) takes the numeric forms (removed
from its output, as in PyTorch), ``"valid"`` and ``"same"``: TensorFlow/Keras
``Conv2DTranspose(padding='same')``, output ``I*s``, the adjoint of ``"same_tf"``
on an input of size ``I*s``; its padding does not depend on ``I``, so it is
resolved at construction to ``(lo, hi)`` pairs plus ``output_padding``.

Padding modes (``padding_mode=``), shown on ``1234`` padded by 3 on each side::

    zeros:      000 1234 000
    reflect:    432 1234 321     (mirror, edge not repeated; PyTorch/NumPy 'reflect')
    replicate:  111 1234 444     (NumPy 'edge')
    circular:   234 1234 123     (NumPy 'wrap')
    symmetric:  321 1234 432     (mirror with the edge repeated; NumPy/TF 'symmetric')
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

__all__ = [
    "INT_FORMS",
    "MAX_INT",
    "MAX_NDIM",
    "PADDING_MODES",
    "PADDING_STRINGS",
    "TRANSPOSED_PADDING_STRINGS",
    "ConvSpec",
    "PoolSpec",
    "as_bool",
    "as_int",
    "as_ndim",
    "as_shape",
    "as_tuple",
    "entries",
    "padding_pairs",
]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
PADDING_STRINGS = ("valid", "same", "same_tf", "full", "causal")
TRANSPOSED_PADDING_STRINGS = ("valid", "same")

Pairs = tuple[tuple[int, int], ...]


#: The largest magnitude of an integer hyperparameter: ``2**62`` (see :func:`as_int` for the reason).
MAX_INT = 2**62

#: The most spatial dimensions an op takes: no NumPy array has more than 64 dimensions (NumPy 2's
#: ``NPY_MAXDIMS``; NumPy 1 allows 32), so a larger ``ndim`` could never meet an input.
MAX_NDIM = 64

#: The per-dimension forms :func:`as_tuple` accepts, as its messages list them.
INT_FORMS = "an int, or one int per spatial dimension (a list, a tuple or a 1-D integer NumPy array)"


def as_bool(fn: str, name: str, value: object) -> bool:
    """Return ``value`` as a Python bool, or raise TypeError naming ``fn``, ``name`` and the value.

    Only ``True``, ``False`` and NumPy's boolean scalar are flags: ``'no'``, ``0``,
    ``1``, ``None`` or a one-element array are refused, because a truthy string
    such as ``flip_kernel='no'`` would otherwise switch the flag on.
    """
    if isinstance(value, bool):
        return value
    kind = type(value)
    if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):  # numpy.bool_ (no numpy import here)
        return bool(value)
    raise TypeError(f"{fn}: `{name}` must be a bool, got {value!r} ({kind.__name__}); give True or False")


def _ndarray(value: object) -> bool:
    """Whether ``value`` is a NumPy array (without importing NumPy: if it is not loaded, nothing is an array)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def entries(fn: str, name: str, value: object, *, forms: str = INT_FORMS, max_array_ndim: int = 1) -> tuple | None:
    """The entries of a per-dimension form, or None when ``value`` is a single value.

    A per-dimension form is a list, a tuple, any other sequence except a string,
    or a NumPy array with ``1 .. max_array_ndim`` dimensions (its entries as
    Python scalars, ``array.tolist()``); a 0-d array is a single value. An array
    of another shape raises TypeError listing ``forms``. The entries themselves
    are not checked here (:func:`as_int` does that, naming each one).

    >>> entries("f", "x", [1, 2]), entries("f", "x", 3)
    ((1, 2), None)
    """
    if isinstance(value, (str, bytes)):
        return None
    if _ndarray(value):
        ndim = value.ndim  # type: ignore[attr-defined]
        if ndim == 0:
            return None
        if ndim > max_array_ndim:
            raise TypeError(f"{fn}: `{name}` must be {forms}, got an array of shape "
                            f"{value.shape}")  # type: ignore[attr-defined]
        return tuple(value.tolist())  # type: ignore[attr-defined]
    if isinstance(value, Sequence):
        return tuple(value)
    return None


def as_int(fn: str, name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming ``fn``, ``name`` and the value.

    Python and NumPy integers are accepted (and a 0-d integer array). Booleans and
    floats are refused with TypeError even when they hold a whole number, because
    ``stride=2.0`` or ``stride=True`` is almost always a mistake.

    Every integer hyperparameter of convlab passes here once, where it is
    normalized, so one range holds everywhere: ``|value| <= 2**62``
    (:data:`MAX_INT`), else ValueError. The reason: the engine computes its indices
    in 64-bit integers (NumPy's int64 index arithmetic, numba's kernels, a C
    ``long`` inside NumPy), and each index is a hyperparameter plus or minus
    positions inside buffers the memory budget has already admitted (``o*s + k*d - lo``
    is a position of the padded input, ``(O - 1)*s`` and ``d*(k - 1)`` are at most
    its length). Two terms of magnitude at most ``2**62`` add up to less than
    ``2**63``, the int64 limit, so nothing downstream overflows; and no meaningful
    value comes near the bound, since no machine holds an array of ``2**62``
    elements. Python ints themselves never overflow, so the shape rules are exact
    on the way (they may still refuse a size).

    ``minimum``: ValueError ``fn: `name` (=v) must be >= minimum`` below it.
    """
    if _ndarray(value) and value.ndim == 0:  # type: ignore[attr-defined]
        value = value[()]  # type: ignore[index]  # the NumPy scalar: an integer passes, a bool or float does not
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{fn}: `{name}` must be an integer, got {value!r} ({type(value).__name__})"
        )
    v = int(value)
    if not -MAX_INT <= v <= MAX_INT:
        raise ValueError(
            f"{fn}: `{name}` (={v}) is out of range: integer hyperparameters must lie within +/-2**62 "
            f"(= {MAX_INT}), which keeps every index convlab computes inside int64"
        )
    if minimum is not None and v < minimum:
        raise ValueError(f"{fn}: `{name}` (={v}) must be >= {minimum}")
    return v


def as_ndim(fn: str, value: object, name: str = "ndim") -> int:
    """The number of spatial dimensions: an int in ``[1, MAX_NDIM]`` (TypeError/ValueError naming ``name``).

    >>> as_ndim("pool", 2)
    2
    """
    nd = as_int(fn, name, value)
    if nd < 1:
        raise ValueError(f"{fn}: `{name}`: the number of spatial dimensions (={nd}) must be >= 1")
    if nd > MAX_NDIM:
        raise ValueError(f"{fn}: `{name}`: the number of spatial dimensions (={nd}) must be at most {MAX_NDIM} "
                         f"(no NumPy array has more dimensions)")
    return nd


def as_shape(fn: str, name: str, value: object) -> tuple[int, ...]:
    """A shape: a sequence (list, tuple, 1-D integer array) of ints, each ``>= 0`` and at most ``2**62``.

    At most :data:`MAX_NDIM` entries. Each entry goes through :func:`as_int`, so
    the messages name ``name[i]``.

    >>> as_shape("f", "input_size", (1, 3, 32, 32))
    (1, 3, 32, 32)
    """
    items = entries(fn, name, value, forms="a sequence of ints (a shape: a list, a tuple or a 1-D integer array)")
    if items is None:
        raise TypeError(f"{fn}: `{name}` must be a sequence of ints (a shape), got {value!r} "
                        f"({type(value).__name__})")
    if len(items) > MAX_NDIM:
        raise ValueError(f"{fn}: `{name}` has {len(items)} entries; no NumPy array has more than {MAX_NDIM} dimensions")
    return tuple(as_int(fn, f"{name}[{i}]", v, minimum=0) for i, v in enumerate(items))


def as_tuple(fn: str, name: str, value: object, ndim: int, *, minimum: int | None = None) -> tuple[int, ...]:
    """Expand an int, or check a per-dimension form (:func:`entries`), to one int per spatial dimension.

    Each entry goes through :func:`as_int` (type and range). A NumPy array of
    another shape than 1-D is refused with the accepted forms listed.

    A sequence with one entry is repeated for every dimension, like an int:
    PyTorch's rule for convolutions (``expand_param_if_needed`` in
    aten/src/ATen/native/Convolution.cpp: ``conv2d(x, w, stride=(2,))`` is
    stride 2 in both dimensions) and for window pooling (the C++ kernels take
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` with one or ``ndim``
    entries, aten/src/ATen/native/AveragePool2d.cpp, DilatedMaxPool2d.cpp). convlab
    applies it to every per-dimension value, also where torch refuses one entry
    (``unfold``/``fold``, ``max_unpool``), so the rule is the same for every op.

    >>> as_tuple("conv2d", "stride", 2, 2), as_tuple("conv2d", "stride", [1, 2], 2)
    ((2, 2), (1, 2))
    >>> as_tuple("avg_pool2d", "padding", (1,), 2)
    (1, 1)
    """
    items = entries(fn, name, value)
    if items is not None:
        if len(items) != ndim and len(items) != 1:
            raise ValueError(
                f"{fn}: `{name}` has {len(items)} entries {items!r}, "
                f"but the operation has {ndim} spatial dimension{'s' if ndim != 1 else ''}; "
                "give one entry (repeated for every dimension) or one per dimension"
            )
        out = tuple(as_int(fn, f"{name}[{i}]", v) for i, v in enumerate(items))
    else:
        out = (as_int(fn, name, value),)
    if minimum is not None:
        for i, v in enumerate(out):
            if v < minimum:
                where = name if ndim == 1 or items is None else f"{name}[{i}]"
                raise ValueError(f"{fn}: `{where}` (={v}) must be >= {minimum}")
    return out * ndim if len(out) == 1 else out  # one entry: the same in every dimension


def _padding_pairs(
    fn: str,
    padding: object,
    ndim: int,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    allowed_strings: tuple[str, ...],
) -> Pairs | str:
    """Turn any accepted padding form into ``(lo, hi)`` pairs (or the symbolic ``'same_tf'``)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in allowed_strings:
            raise ValueError(
                f"{fn}: `padding` (={padding!r}) must be an int, a tuple, (lo, hi) pairs "
                f"or one of {allowed_strings}"
            )
        spans = tuple(d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True))
        if mode in ("same", "full", "causal"):
            for i, t in enumerate(spans):
                if t > MAX_INT:
                    raise ValueError(
                        f"{fn}: padding={padding!r} would pad dilation*(kernel_size-1) = {t} in spatial dimension "
                        f"{i}, beyond the range of integer hyperparameters (+/-2**62 = {MAX_INT})"
                    )
        if mode == "valid":
            return ((0, 0),) * ndim
        if mode == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{fn}: padding='same' (PyTorch semantics) requires stride 1, got stride={stride}; "
                    "use padding='same_tf' for the TensorFlow/Keras/JAX rule that works with any stride"
                )
            # total d*(k-1); PyTorch puts the odd element on the right.
            return tuple((t // 2, t - t // 2) for t in spans)
        if mode == "full":
            return tuple((t, t) for t in spans)
        if mode == "causal":
            return tuple((t, 0) for t in spans)
        return "same_tf"
    return padding_pairs(fn, padding, ndim, allowed_strings=allowed_strings)


def padding_pairs(fn: str, padding: object, ndim: int, *, allow_crop: bool = False,
                  allowed_strings: tuple[str, ...] = PADDING_STRINGS) -> Pairs:
    """The numeric padding forms (an int, one int per dimension, ``(lo, hi)`` pairs) as ``(lo, hi)`` pairs.

    Negative amounts (crops) are refused unless ``allow_crop``: the primitive's
    own calls crop, a user's padding never does. A sequence with one entry (an
    int or a pair) is repeated for every dimension, as :func:`as_tuple` does
    (PyTorch's ``avg_pool2d(x, 3, 1, (1,))`` pads 1 on both dimensions).

    >>> padding_pairs("conv", ((0, 1), 2), 2)
    ((0, 1), (2, 2))
    >>> padding_pairs("avg_pool2d", (1,), 2)
    ((1, 1), (1, 1))
    """
    forms = f"an int, one int or (lo, hi) pair per spatial dimension (a list, a tuple or an integer NumPy " \
            f"array of shape ({ndim},) or ({ndim}, 2)), or one of {allowed_strings}"
    items = entries(fn, "padding", padding, forms=forms, max_array_ndim=2)
    if items is not None:
        if len(items) != ndim and len(items) != 1:
            raise ValueError(
                f"{fn}: `padding` has {len(items)} entries {items!r}, but the operation has "
                f"{ndim} spatial dimension{'s' if ndim != 1 else ''}; give one int or one (lo, hi) pair per dimension "
                "(or a single one, repeated for every dimension)"
            )
        pairs = []
        for i, p in enumerate(items):
            pair = entries(fn, f"padding[{i}]", p, forms="an int or a (lo, hi) pair")
            if pair is not None:
                if len(pair) != 2:
                    raise ValueError(f"{fn}: `padding[{i}]` (={pair!r}) must be an int or a (lo, hi) pair")
                pairs.append((as_int(fn, f"padding[{i}][0]", pair[0]), as_int(fn, f"padding[{i}][1]", pair[1])))
            else:
                v = as_int(fn, f"padding[{i}]", p)
                pairs.append((v, v))
        out = tuple(pairs) * (ndim if len(pairs) == 1 else 1)  # one entry: repeated, like as_tuple's
    else:
        scalar = padding[()] if _ndarray(padding) else padding  # type: ignore[index]  # a 0-d array: its scalar
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Integral):
            raise TypeError(f"{fn}: `padding` must be {forms}, got {padding!r} ({type(padding).__name__})")
        v = as_int(fn, "padding", scalar)
        out = ((v, v),) * ndim
    if not allow_crop:
        for i, (lo, hi) in enumerate(out):
            if lo < 0 or hi < 0:
                raise ValueError(
                    f"{fn}: `padding` must be >= 0 (cropping is not supported), got {(lo, hi)} in spatial "
                    f"dimension {i}"
                )
    return out


def _transposed_same(kernel_size: tuple[int, ...], stride: tuple[int, ...],
                     dilation: tuple[int, ...]) -> tuple[Pairs, tuple[int, ...]]:
    """Padding pairs and ``output_padding`` of a transposed convolution with ``padding='same'``.

    TensorFlow/Keras convention (``tf.keras.layers.Conv2DTranspose(padding='same')``,
    whose output length is ``I*s`` by ``keras.utils.conv_utils.deconv_output_length``,
    computed by ``tf.nn.conv2d_transpose(..., padding='SAME')``, the gradient of
    ``tf.nn.conv2d`` with ``'SAME'`` padding): the adjoint of ``conv(padding='same_tf')``
    on an input of length ``O = I*s``. That convolution's output is ``ceil(I*s / s) = I``
    and its total padding ``max((I-1)*s + d*(k-1) + 1 - I*s, 0) = max(d*(k-1) + 1 - s, 0)``
    (:func:`convlab.shapes.same_tf_padding`), split ``floor(total/2)`` on the left and
    the rest (the odd element) on the right, which the transposed convolution crops.
    Neither depends on ``I``, so the rule resolves here, once. When the dilated kernel
    is shorter than the stride (``total = 0``) the last ``s - d*(k-1) - 1`` elements
    are reached by no window: they are the ``output_padding``, so ``O = I*s`` always.
    """
    from .shapes import conv_transpose_output_length, same_tf_padding  # shapes imports this module

    pairs, output_padding = [], []
    for k, s, d in zip(kernel_size, stride, dilation, strict=True):
        # Independent of I, so I = 1 (a forward input of length s) gives the rule.
        lo, hi = (int(v) for v in same_tf_padding(s, k, s, d))
        pairs.append((lo, hi))
        output_padding.append(s - int(conv_transpose_output_length(1, k, s, (lo, hi), d)))
    return tuple(pairs), tuple(output_padding)


def _transposed_padding(fn: str, padding: object, ndim: int, kernel_size: tuple[int, ...],
                        stride: tuple[int, ...], dilation: tuple[int, ...],
                        output_padding: tuple[int, ...]) -> tuple[Pairs, tuple[int, ...], bool]:
    """A transposed convolution's padding forms: ``(pairs, output_padding, same_output)``.

    Numbers are removed from the output (PyTorch); ``'valid'`` is no padding;
    ``'same'`` is TensorFlow's (see :func:`_transposed_same`). The other words
    have no transposed meaning convlab defines, and are refused.
    """
    if not isinstance(padding, str):
        return padding_pairs(fn, padding, ndim, allowed_strings=TRANSPOSED_PADDING_STRINGS), output_padding, False
    mode = padding.lower()
    if mode == "valid":
        return ((0, 0),) * ndim, output_padding, False
    if mode == "same":
        if any(output_padding):
            raise ValueError(
                f"{fn}: `output_padding` (={output_padding}) must be 0 with padding='same', which fixes the "
                "output size at input size * stride"
            )
        pairs, same_output_padding = _transposed_same(kernel_size, stride, dilation)
        return pairs, same_output_padding, True
    raise ValueError(
        f"{fn}: `padding` (={padding!r}) is not supported for a transposed convolution; give an int, a tuple "
        "or (lo, hi) pairs (removed from the output), 'valid', or 'same' (TensorFlow/Keras Conv2DTranspose: "
        "output size = input size * stride); 'same_tf', 'full' and 'causal' have no transposed meaning here"
    )


def _check_output_padding(fn: str, output_padding: tuple[int, ...], stride: tuple[int, ...],
                          dilation: tuple[int, ...]) -> None:
    """A transposed convolution's ``output_padding`` must be below ``max(stride, dilation)`` (PyTorch's rule)."""
    for i, (o, si, di) in enumerate(zip(output_padding, stride, dilation, strict=True)):
        if o >= max(si, di):
            raise ValueError(
                f"{fn}: `output_padding` (={o}) must be smaller than either stride (={si}) "
                f"or dilation (={di}) in spatial dimension {i}"
            )


def _ndim_of(fn: str, kernel_size: object, ndim: int | None) -> int:
    if ndim is None:
        items = entries(fn, "kernel_size", kernel_size)
        if items is None:
            raise ValueError(f"{fn}: `ndim` is needed when `kernel_size` (={kernel_size!r}) is a single int")
        if not items:
            raise ValueError(f"{fn}: the number of spatial dimensions (=0) must be >= 1: `kernel_size` is empty")
        if len(items) > MAX_NDIM:
            raise ValueError(f"{fn}: the number of spatial dimensions (={len(items)}, the entries of `kernel_size`) "
                             f"must be at most {MAX_NDIM} (no NumPy array has more dimensions)")
        return len(items)
    return as_ndim(fn, ndim)


@dataclass(frozen=True, init=False)
class ConvSpec:
    """Canonical hyperparameters of an N-d (transposed) convolution.

    Parameters
    ----------
    kernel_size, stride, dilation : int or sequence of int
        One entry per spatial dimension (an int or a one-entry sequence is
        repeated, as in PyTorch; a list, a tuple or a 1-D integer array gives one
        each). All must be >= 1, and at most ``2**62`` like every integer (:func:`as_int`).
    padding : int, tuple, (lo, hi) pairs or str
        Any form listed in the module docstring.
    groups : int
        Channels are split into ``groups`` independent convolutions.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}
        For a transposed convolution too (a convlab extension; PyTorch refuses it):
        the transposed convolution is the exact adjoint of the convolution with that mode.
    transposed : bool
        A transposed convolution (the adjoint of the convolution with this spec).
        Its padding is a number, pairs, ``'valid'`` or ``'same'`` (TensorFlow's:
        output = input * stride; resolved here to pairs and ``output_padding``,
        and ``same_output`` is set).
    output_padding : int or tuple of int
        Transposed only: extra size on the high side, each ``< max(stride, dilation)``.
    ndim : int, optional
        Number of spatial dimensions, needed when ``kernel_size`` is an int.
    name : str
        The function name used in error messages.

    Examples
    --------
    >>> spec = ConvSpec(3, stride=2, padding="same_tf", ndim=2)
    >>> spec.kernel_size, spec.stride, spec.padding
    ((3, 3), (2, 2), 'same_tf')
    >>> ConvSpec((3, 4), padding="same").padding
    ((1, 1), (1, 2))
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Pairs | str
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    transposed: bool
    output_padding: tuple[int, ...]
    name: str = field(compare=False, repr=False)
    same_output: bool = field(default=False, repr=False)

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: object = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        transposed: bool = False,
        output_padding: int | tuple[int, ...] = 0,
        *,
        ndim: int | None = None,
        name: str = "conv",
    ) -> None:
        fn = name
        nd = _ndim_of(fn, kernel_size, ndim)
        k = as_tuple(fn, "kernel_size", kernel_size, nd, minimum=1)
        s = as_tuple(fn, "stride", stride, nd, minimum=1)
        d = as_tuple(fn, "dilation", dilation, nd, minimum=1)
        g = as_int(fn, "groups", groups)
        if g < 1:
            raise ValueError(f"{fn}: `groups` (={g}) must be >= 1")
        if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
            raise ValueError(f"{fn}: `padding_mode` (={padding_mode!r}) must be one of {PADDING_MODES}")
        transposed = as_bool(fn, "transposed", transposed)
        op = as_tuple(fn, "output_padding", output_padding, nd, minimum=0)
        same_output = False
        if transposed:
            # Any padding_mode: the transposed convolution is the adjoint of the convolution with that mode.
            p, op, same_output = _transposed_padding(fn, padding, nd, k, s, d, op)
            _check_output_padding(fn, op, s, d)
        else:
            p = _padding_pairs(fn, padding, nd, k, s, d, PADDING_STRINGS)
            if any(op):
                raise ValueError(f"{fn}: `output_padding` (={op}) is only meaningful for a transposed convolution")
        for attr, value in (
            ("kernel_size", k), ("stride", s), ("padding", p), ("dilation", d), ("groups", g),
            ("padding_mode", padding_mode), ("transposed", transposed), ("output_padding", op), ("name", fn),
            ("same_output", same_output),
        ):
            object.__setattr__(self, attr, value)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.kernel_size)

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated kernel, ``d*(k-1) + 1`` per dimension."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))

    def _replaced(self, **changes: object) -> ConvSpec:
        new = object.__new__(ConvSpec)
        for attr in self.__dataclass_fields__:
            object.__setattr__(new, attr, changes.get(attr, getattr(self, attr)))
        return new

    def with_name(self, name: str) -> ConvSpec:
        """The same spec, reporting errors as ``name``."""
        return self._replaced(name=name)

    def with_output_padding(self, output_padding: tuple[int, ...]) -> ConvSpec:
        """The same transposed spec with another ``output_padding`` (checked like the constructor's)."""
        op = as_tuple(self.name, "output_padding", output_padding, self.ndim, minimum=0)
        if not self.transposed and any(op):
            raise ValueError(f"{self.name}: `output_padding` (={op}) is only meaningful for a transposed convolution")
        _check_output_padding(self.name, op, self.stride, self.dilation)
        return self._replaced(output_padding=op)


@dataclass(frozen=True, init=False)
class PoolSpec:
    """Canonical hyperparameters of an N-d max or average pooling.

    ``stride`` defaults to ``kernel_size`` (PyTorch), also when it is an empty
    sequence (``avg_pool2d(x, 2, ())``, as torch's pooling kernels read it). A
    one-entry sequence is repeated for every dimension, like an int (:func:`as_tuple`).
    Padding is an int, one int per
    dimension or ``(lo, hi)`` pairs, or ``'valid'``; as in PyTorch each side must be
    at most half the kernel size (``pad <= k // 2``), so that every window
    overlaps the input.

    Examples
    --------
    >>> spec = PoolSpec(2, ndim=2)
    >>> spec.kernel_size, spec.stride, spec.padding
    ((2, 2), (2, 2), ((0, 0), (0, 0)))
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Pairs
    dilation: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    name: str = field(compare=False, repr=False)

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: object = 0,
        dilation: int | tuple[int, ...] = 1,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        *,
        ndim: int | None = None,
        name: str = "pool",
    ) -> None:
        fn = name
        nd = _ndim_of(fn, kernel_size, ndim)
        k = as_tuple(fn, "kernel_size", kernel_size, nd, minimum=1)
        # PyTorch: stride=None or an empty list means stride = kernel_size.
        s = k if stride is None or entries(fn, "stride", stride) == () else as_tuple(
            fn, "stride", stride, nd, minimum=1
        )
        d = as_tuple(fn, "dilation", dilation, nd, minimum=1)
        # only 'valid' is allowed among the strings, and it resolves to pairs
        p = cast(Pairs, _padding_pairs(fn, padding, nd, k, s, d, ("valid",)))
        for i, ((lo, hi), ki) in enumerate(zip(p, k, strict=True)):
            if max(lo, hi) > ki // 2:
                raise ValueError(
                    f"{fn}: `padding` (={(lo, hi)}) must be at most half the kernel size "
                    f"(kernel_size={ki}, so at most {ki // 2}) in spatial dimension {i}"
                )
        ceil_mode = as_bool(fn, "ceil_mode", ceil_mode)
        count_include_pad = as_bool(fn, "count_include_pad", count_include_pad)
        if divisor_override is not None:
            divisor_override = as_int(fn, "divisor_override", divisor_override)
            if divisor_override == 0:
                raise ValueError(f"{fn}: `divisor_override` must be non-zero, got 0")
        for attr, value in (
            ("kernel_size", k), ("stride", s), ("padding", p), ("dilation", d), ("ceil_mode", ceil_mode),
            ("count_include_pad", count_include_pad), ("divisor_override", divisor_override), ("name", fn),
        ):
            object.__setattr__(self, attr, value)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.kernel_size)
