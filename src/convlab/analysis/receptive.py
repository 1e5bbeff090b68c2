"""Receptive fields over a graph: one layer's own field, composition, and the multi-path union.

Everything here is per spatial dimension and uses :class:`convlab.shapes.ReceptiveField`
``(size, jump, start)`` in input pixels (Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019):

* ``size`` -- how many input positions can influence one output unit;
* ``jump`` -- the distance in input pixels between neighbouring output units
  (the effective stride);
* ``start`` -- where the field of output unit 0 begins (negative: in the padding);
  the field of unit ``o`` begins at ``start + o*jump``;
* ``center = start + (size - 1)/2`` and the *effective padding* ``-start``.

A layer's own field (as if it were the whole network) comes from
:func:`convlab.shapes.receptive_field`, the one sequential rule, for every layer
with an integer stride (convolution, pooling -- a window counts like a kernel --,
padding, strided slicing). Two fields compose like two affine maps (the
recursion of Araujo et al., eqs. 1-3, applied to a prefix and one more layer)::

    size  = size_prefix + (size_layer - 1) * jump_prefix
    jump  = jump_prefix * jump_layer
    start = start_prefix + start_layer * jump_prefix

Fractional strides (transposed convolution, upsampling) are not covered by the
integer rule; their own fields are derived here (see :func:`transposed_field`,
:func:`upsample_field`) and hold :class:`fractions.Fraction` values. Such fields
are the *affine extent*: the exact set of inputs of one output unit depends on
its phase ``o mod s`` and is contained in ``[start + o*jump, start + o*jump + size - 1]``.

Multi-path nodes (additions, concatenations) take the union of their inputs'
fields and check alignment (Araujo et al., section "Arbitrary computation
graphs"): all paths must agree on the jump, and their centres should coincide.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from ..shapes import ReceptiveField, adaptive_pool_window, receptive_field
from ..spec import as_bool

__all__ = [
    "adaptive_field",
    "center",
    "compose",
    "effective_padding",
    "layer_field",
    "merge_fields",
    "transposed_field",
    "upsample_field",
]

Number = int | Fraction

IDENTITY = ReceptiveField(1, 1, 0)


def _norm(value: Number) -> Number:
    """A Fraction with denominator 1 becomes an int (so integer networks stay in ints)."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def layer_field(kernel_size: int, stride: int, padding_lo: int, dilation: int = 1) -> ReceptiveField:
    """The field of one integer-stride layer on its own: ``convlab.shapes.receptive_field`` of one layer.

    >>> layer_field(3, 2, 1)
    ReceptiveField(size=3, jump=2, start=-1)
    """
    return receptive_field([(kernel_size, stride, padding_lo, dilation)])


def compose(prefix: ReceptiveField, layer: ReceptiveField) -> ReceptiveField:
    """The field of ``layer`` applied after a network whose field is ``prefix`` (affine composition).

    >>> three = IDENTITY
    >>> for _ in range(3):
    ...     three = compose(three, layer_field(3, 1, 0))
    >>> three
    ReceptiveField(size=7, jump=1, start=0)
    """
    jump = prefix.jump
    return ReceptiveField(
        _norm(prefix.size + (layer.size - 1) * jump),
        _norm(jump * layer.jump),
        _norm(prefix.start + layer.start * jump),
    )


def transposed_field(kernel_size: int, stride: int, padding_lo: int, dilation: int = 1) -> ReceptiveField:
    """Own field of a transposed convolution (fractional stride ``1/s``).

    Derivation (Dumoulin & Visin, arXiv:1603.07285, section 4: a transposed
    convolution scatters input ``i`` through tap ``m`` to output
    ``o = i*s + m*d - p_lo``): output ``o`` reads the inputs
    ``i = (o + p_lo - m*d) / s`` for ``m = 0..k-1``, the real interval
    ``[(o + p_lo - d*(k-1)) / s, (o + p_lo) / s]``. So ``jump = 1/s``,
    ``size = d*(k-1)/s + 1`` and ``start = (p_lo - d*(k-1)) / s``; composed after a
    prefix, the size grows by ``d*(k-1) * jump_new`` with ``jump_new = jump/s``.
    The integer inputs inside that interval number ``floor`` or ``ceil`` of
    ``d*(k-1)/s`` (+1) depending on the phase ``o mod s``.

    >>> transposed_field(4, 2, 1)
    ReceptiveField(size=Fraction(5, 2), jump=Fraction(1, 2), start=Fraction(-1, 1))
    """
    span = dilation * (kernel_size - 1)
    return ReceptiveField(Fraction(span, stride) + 1, Fraction(1, stride), Fraction(padding_lo - span, stride))


def upsample_field(step: Fraction, mode: str = "nearest", align_corners: bool = False) -> ReceptiveField:
    """Own field of an upsampling whose output ``o`` samples the input at ``x_o``, ``step`` input pixels apart.

    PyTorch's ``interpolate`` (``step = 1/scale_factor``, or ``(I - 1)/(O - 1)`` with
    ``align_corners=True``):

    * ``nearest``: ``x_o = o*step``, reads ``floor(x_o)``;
    * ``nearest-exact``: ``x_o = (o + 1/2)*step``, reads ``floor(x_o)``;
    * ``linear``/``bilinear``/``trilinear``: ``x_o = (o + 1/2)*step - 1/2`` (``o*step`` with
      ``align_corners``), reads ``floor(x_o)`` and ``floor(x_o) + 1``;
    * ``bicubic``: the same ``x_o``, reads ``floor(x_o) - 1 .. floor(x_o) + 2``.

    ``floor(x_o)`` is not affine in ``o``: the field returned is the smallest affine
    extent ``[start + o*step, start + o*step + size - 1]`` that contains every unit's
    taps. With ``step = q/p``, ``frac(x_o)`` repeats with period ``p``; from its largest
    and smallest values, ``start = x_0 - max frac + first tap`` and
    ``size = taps' span + 1 + (max frac - min frac)``. Border clamping is ignored.

    >>> upsample_field(Fraction(1, 2))   # nearest x2: o reads floor(o/2)
    ReceptiveField(size=Fraction(3, 2), jump=Fraction(1, 2), start=Fraction(-1, 2))
    >>> upsample_field(Fraction(1, 2), "bilinear")
    ReceptiveField(size=Fraction(5, 2), jump=Fraction(1, 2), start=-1)
    >>> upsample_field(Fraction(1))
    ReceptiveField(size=1, jump=1, start=0)
    """
    align_corners = as_bool("upsample_field", "align_corners", align_corners)
    step = Fraction(step)
    if mode in ("nearest", "nearest-exact"):
        taps = (0, 0)
        x0 = step / 2 if mode == "nearest-exact" else Fraction(0)
    else:
        taps = (-1, 2) if mode == "bicubic" else (0, 1)
        x0 = Fraction(0) if align_corners else step / 2 - Fraction(1, 2)
    period = min(step.denominator, 4096)  # frac(x0 + j*step) repeats every denominator steps
    fracs = [(x0 + j * step) % 1 for j in range(period)]
    high, low = max(fracs), min(fracs)
    return ReceptiveField(
        _norm(Fraction(taps[1] - taps[0] + 1) + high - low), _norm(step), _norm(x0 - high + taps[0])
    )


def adaptive_field(input_length: int, output_length: int) -> tuple[ReceptiveField, bool]:
    """Own field of adaptive pooling ``I -> O``; the flag says whether windows are uniform.

    When ``O`` divides ``I`` adaptive pooling is a pooling with kernel = stride = ``I/O``.
    Otherwise windows ``[floor(i*I/O), ceil((i+1)*I/O))`` (:func:`convlab.shapes.adaptive_pool_window`)
    differ in size and spacing; the field is the smallest affine extent with jump ``I/O``
    that contains every window: ``start = min_i(floor(i*I/O) - i*I/O)`` and
    ``size = max_i(ceil((i+1)*I/O) - 1 - i*I/O) - start + 1``.

    >>> adaptive_field(9, 2)   # windows [0, 5) and [4, 9)
    (ReceptiveField(size=Fraction(11, 2), jump=Fraction(9, 2), start=Fraction(-1, 2)), False)
    """
    if input_length % output_length == 0:
        k = input_length // output_length
        return layer_field(k, k, 0), True
    jump = Fraction(input_length, output_length)
    low = high = None
    for i in range(output_length):
        first, end = adaptive_pool_window(input_length, output_length, i)
        lo, hi = first - i * jump, end - 1 - i * jump
        low = lo if low is None else min(low, lo)
        high = hi if high is None else max(high, hi)
    return ReceptiveField(_norm(high - low + 1), jump, _norm(low)), False


def effective_padding(field: ReceptiveField) -> Number:
    """Araujo et al.'s effective padding: how far the field of unit 0 reaches left of the input, ``-start``."""
    return _norm(-field.start)


def center(field: ReceptiveField) -> Number:
    """Centre of the field of output unit 0, ``start + (size - 1)/2`` (exact)."""
    return _norm(field.start + Fraction(field.size - 1) / 2)


def merge_fields(
    fields: Sequence[ReceptiveField], names: Sequence[str], dim: int, skip: Sequence[bool] = ()
) -> tuple[ReceptiveField, list[str]]:
    """Union of the fields of several paths meeting at one node, and the alignment warnings.

    The union of the regions: ``start = min(start)``, ``end = max(start + size - 1)``,
    ``size = end - start + 1`` (equal to the largest size when the paths are aligned).
    Paths flagged in ``skip`` (broadcast from a spatial size of 1, e.g. a squeeze-and-
    excitation gate) join the union but not the alignment check. Alignment (Araujo et
    al., Distill 2019, "Arbitrary computation graphs"): all paths must have the same
    jump and the same centre; otherwise a warning names the paths and values, and the
    merged jump is the largest one.
    """
    start = min(f.start for f in fields)
    end = max(f.start + f.size - 1 for f in fields)
    checked = [(f, n) for f, n, s in zip(fields, names, list(skip) + [False] * len(fields), strict=False) if not s]
    warnings: list[str] = []
    jumps = {f.jump for f, _ in checked}
    if len(jumps) > 1:
        detail = ", ".join(f"{n}: {_text(f.jump)}" for f, n in checked)
        warnings.append(f"receptive field misaligned in spatial dim {dim}: paths disagree on jump ({detail})")
    else:
        centres = {center(f) for f, _ in checked}
        if len(centres) > 1:
            detail = ", ".join(f"{n}: {_text(center(f))}" for f, n in checked)
            warnings.append(
                f"receptive field misaligned in spatial dim {dim}: path centres differ ({detail} input pixels)"
            )
    jump = max(f.jump for f in ((checked and [f for f, _ in checked]) or fields))
    return ReceptiveField(_norm(end - start + 1), _norm(jump), _norm(start)), warnings


def _text(value: Number) -> str:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    return str(value)
