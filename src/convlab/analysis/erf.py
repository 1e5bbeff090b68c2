"""The effective receptive field (ERF): how much each input pixel moves one output unit.

Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016: send a gradient of 1 back from one
output unit (0 everywhere else), take the absolute value of the gradient that
reaches the input, average it over random inputs (or given images) and sum it
over the input channels. The result is a map over the input's height and width;
the theoretical receptive field (:mod:`convlab.analysis.receptive`) is its
support, and for deep stacks most of the mass sits in a Gaussian-shaped centre
whose width grows like the square root of the depth, not like the depth.

Which unit. The unit is a spatial position ``(i, j)`` (every channel of that
position gets a gradient of 1, i.e. the unit is the sum of the channels there,
as RepLKNet's ``erf/visualize_erf.py`` takes the sum of the channels at the centre)
or ``(c, i, j)`` (one channel) of the *last layer with a spatial output*: for a
model whose output is ``(N, C, H, W)`` the whole model; for a ``convlab.nn.Sequential``
(every zoo model) ending in a pooling-to-vector and a classifier, the longest prefix of
its top-level children whose output is still ``(N, C, H, W)`` with ``H, W > 1`` (for
ResNet-18 that is ``layer4``). The default unit is the centre ``(H // 2, W // 2)``.

convlab models go through the engine's own backward (``model(x)`` then
``model.backward(grad)``); any other kind of model through a backend that a higher
layer registers (:func:`register_erf_backend`): importing :mod:`convlab.interop`
registers the one for torch modules (autograd), so this layer never imports torch.

Statistics of the map (:class:`EffectiveReceptiveField`):

* ``share_95``: the fewest pixels that hold 95% of the mass (largest first), as a
  share of the theoretical field's area on the input;
* ``sigma``/``mean``: a Gaussian fitted per axis by moments (the marginal of the map
  along each axis, as a distribution: mean and standard deviation). For the n-fold
  convolution of the 3x3 box (all-ones, linear stacks) this is exact: each axis is the
  sum of n independent uniform steps on {-1, 0, 1}, variance 2n/3;
* ``area_ratios``: RepLKNet's "high-contribution area ratio" (Ding et al., CVPR 2022,
  ``erf/analyze_erf.py`` in DingXiaoH/RepLKNet-pytorch): the map is rescaled as
  ``log10(map + 1) / max``, and for each threshold t in (0.2, 0.3, 0.5, 0.99) the
  smallest centred square of side ``2i + 1`` (``i = 1 .. H//2 - 1``, centred at
  ``(H // 2, W // 2)``) whose sum exceeds ``t`` of the total gives ``(side,
  side**2 / (H * W))`` (None when no such square exists). As in RepLKNet the log makes
  these depend on the scale of the map (theirs is a sum over 50 images, with ReLU
  instead of the absolute value of the gradient).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from ..shapes import ReceptiveField
from ._checks import check_input_shape

__all__ = [
    "AREA_THRESHOLDS",
    "ERFBackend",
    "EffectiveReceptiveField",
    "GradientProbe",
    "area_ratio",
    "effective_receptive_field",
    "erf_backends",
    "register_erf_backend",
    "unregister_erf_backend",
]

#: RepLKNet's thresholds of the high-contribution area ratio (erf/analyze_erf.py).
AREA_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)

_FN = "effective_receptive_field"


class GradientProbe(NamedTuple):
    """What a backend returns: the input gradients of one unit and where that unit lives.

    ``gradients``: ``(N, C, H, W)`` gradient of the unit with respect to each input;
    ``layer``: the name of the layer whose output holds the unit (``""``: the whole model);
    ``output_shape``: that layer's output ``(C, h, w)``; ``unit``: ``(c or None, i, j)`` as used;
    ``field``: its theoretical receptive field per spatial dim (None when unknown).
    """

    gradients: np.ndarray
    layer: str
    output_shape: tuple[int, int, int]
    unit: tuple[int | None, int, int]
    field: tuple[ReceptiveField, ...] | None


class ERFBackend(NamedTuple):
    """A registered backend: its name, the predicate choosing its models, and the probe function."""

    name: str
    predicate: Callable[[Any], bool]
    probe: Callable[..., GradientProbe]


_BACKENDS: list[ERFBackend] = []


def register_erf_backend(predicate: Callable[[Any], bool], probe: Callable[..., GradientProbe], *,
                         name: str | None = None) -> None:
    """Register ``probe(model, inputs, unit) -> GradientProbe`` for the models where ``predicate(model)`` holds.

    ``inputs`` is a float64 ``(N, C, H, W)`` array; ``unit`` is None, ``(i, j)`` or ``(c, i, j)``;
    the probe chooses the layer (the last with a spatial output), checks the unit against it
    (ValueError naming the unit and the output's size) and returns the input gradients. A
    name already registered is replaced; the latest registration is asked first.
    """
    if not callable(predicate) or not callable(probe):
        raise TypeError(f"register_erf_backend: `predicate` and `probe` must be callable, got "
                        f"{type(predicate).__name__} and {type(probe).__name__}")
    name = name or getattr(probe, "__qualname__", repr(probe))
    unregister_erf_backend(name)
    _BACKENDS.insert(0, ERFBackend(name, predicate, probe))


def unregister_erf_backend(name: str) -> None:
    """Remove the backend registered as ``name`` (nothing when there is none)."""
    _BACKENDS[:] = [b for b in _BACKENDS if b.name != name]


def erf_backends() -> list[ERFBackend]:
    """The registered backends, the first asked first."""
    return list(_BACKENDS)


# --------------------------------------------------------------------------- the result


def area_ratio(data: np.ndarray, threshold: float) -> tuple[int, float] | None:
    """RepLKNet's high-contribution area at one threshold, on an already rescaled map.

    The smallest centred square (side ``2i + 1``, ``i = 1 .. H//2 - 1``) whose sum is more
    than ``threshold`` of the map's sum: ``(side, side/H * side/W)``, or None (DingXiaoH/
    RepLKNet-pytorch, erf/analyze_erf.py, ``get_rectangle``).

    >>> area_ratio(np.pad(np.ones((3, 3)), 3), 0.5)   # 9x9: the 3x3 square holds everything
    (3, 0.1111111111111111)
    """
    h, w = data.shape
    total = float(np.sum(data))
    for i in range(1, h // 2):
        part = float(np.sum(data[h // 2 - i:h // 2 + 1 + i, w // 2 - i:w // 2 + 1 + i]))
        if total > 0 and part / total > threshold:
            side = 2 * i + 1
            return side, side / h * side / w
    return None


@dataclass(frozen=True)
class EffectiveReceptiveField:
    """The ERF map of one output unit and its statistics (see the module docstring).

    ``map`` is ``(H, W)`` float64 over the input; ``field`` the theoretical receptive field of
    the unit's layer per spatial dim (Araujo et al., Distill 2019) or None; ``unit`` is
    ``(c or None, i, j)`` in the output of ``layer`` (shape ``output_shape``); ``n_samples``
    the number of inputs averaged.
    """

    map: np.ndarray
    input_shape: tuple[int, int, int]
    layer: str
    output_shape: tuple[int, int, int]
    unit: tuple[int | None, int, int]
    field: tuple[ReceptiveField, ...] | None
    n_samples: int
    source: str = field(default="random")

    @property
    def field_box(self) -> tuple[int, int, int, int] | None:
        """The unit's theoretical field on the input, clipped to it: ``(top, left, bottom, right)`` inclusive."""
        if self.field is None:
            return None
        lo_hi = []
        for f, o, n in zip(self.field, self.unit[1:], self.input_shape[1:], strict=True):
            first = f.start + o * f.jump
            last = first + f.size - 1
            lo_hi.append((max(0, int(np.floor(float(first)))), min(n - 1, int(np.ceil(float(last))))))
        (top, bottom), (left, right) = lo_hi
        return top, left, bottom, right

    @property
    def field_area(self) -> int | None:
        """Pixels of the input inside the unit's theoretical field."""
        box = self.field_box
        if box is None:
            return None
        top, left, bottom, right = box
        return max(0, bottom - top + 1) * max(0, right - left + 1)

    def mass_pixels(self, share: float = 0.95) -> int:
        """The fewest pixels (largest values first) that hold ``share`` of the map's mass."""
        values = np.sort(self.map.ravel())[::-1]
        total = values.sum()
        if total <= 0:
            return 0
        return int(np.searchsorted(np.cumsum(values), share * total * (1 - 1e-12)) + 1)

    @property
    def share_95(self) -> float | None:
        """Pixels holding 95% of the mass over the theoretical field's area (None without a field)."""
        area = self.field_area
        return None if not area else self.mass_pixels(0.95) / area

    @property
    def mean(self) -> tuple[float, float]:
        """Centre of the Gaussian fit per axis (row, column), by moments."""
        return self._moments()[0]

    @property
    def sigma(self) -> tuple[float, float]:
        """Standard deviation of the Gaussian fit per axis (rows, columns), by moments, in input pixels."""
        return self._moments()[1]

    def _moments(self) -> tuple[tuple[float, float], tuple[float, float]]:
        total = self.map.sum()
        if total <= 0:
            return (float("nan"),) * 2, (float("nan"),) * 2
        means, sigmas = [], []
        for axis in (1, 0):  # marginal over columns -> rows, then over rows -> columns
            marginal = self.map.sum(axis=axis) / total
            pos = np.arange(marginal.size, dtype=np.float64)
            m = float(pos @ marginal)
            means.append(m)
            sigmas.append(float(np.sqrt(max(0.0, ((pos - m) ** 2) @ marginal))))
        return (means[0], means[1]), (sigmas[0], sigmas[1])

    @property
    def area_ratios(self) -> dict[float, tuple[int, float] | None]:
        """RepLKNet's high-contribution area ratio at 0.2, 0.3, 0.5, 0.99: ``{t: (side, ratio) or None}``."""
        data = np.log10(self.map + 1)
        peak = data.max()
        data = data / peak if peak > 0 else data
        return {t: area_ratio(data, t) for t in AREA_THRESHOLDS}

    def summary(self) -> str:
        """The statistics on a few lines."""
        where = f"{self.layer or 'output'} {self.output_shape} unit {self.unit}"
        lines = [f"ERF of {where}, input {self.input_shape}, {self.n_samples} {self.source} input(s)"]
        if self.field is not None:
            lines.append("theoretical field: " + " x ".join(f"size {_num(f.size)} jump {_num(f.jump)} start "
                                                            f"{_num(f.start)}" for f in self.field)
                         + f"; on the input {self.field_box} ({self.field_area} px)")
            lines.append(f"95% of the mass in {self.mass_pixels():,} px = {self.share_95:.3f} of the field")
        s, m = self.sigma, self.mean
        lines.append(f"Gaussian fit (moments): mean ({m[0]:.2f}, {m[1]:.2f}), sigma ({s[0]:.2f}, {s[1]:.2f}) px")
        ratios = ", ".join(f"{t}: " + ("-" if r is None else f"{r[0]} px ({r[1]:.4f})")
                           for t, r in self.area_ratios.items())
        lines.append(f"high-contribution area ratio (RepLKNet): {ratios}")
        return "\n".join(lines)


def _num(value: Any) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return str(value)


# --------------------------------------------------------------------------- the entry point


def _check_spatial_shape(input_shape: object) -> tuple[int, int, int]:
    shape = check_input_shape(_FN, input_shape)
    if isinstance(shape, list) or len(shape) not in (3, 4) or (len(shape) == 4 and shape[0] != 1):
        raise ValueError(f"{_FN}: `input_shape` must be (C, H, W) or (1, C, H, W) (a 2-d input), "
                         f"got {input_shape!r}")
    return tuple(shape[-3:])  # type: ignore[return-value]


def check_unit(unit: object, output_shape: Sequence[int], layer: str) -> tuple[int | None, int, int]:
    """``unit`` (None, ``(i, j)`` or ``(c, i, j)``) checked against a layer's output ``(C, h, w)``."""
    c_out, h, w = output_shape
    where = f"the output of {layer!r}" if layer else "the model's output"
    if unit is None:
        return None, h // 2, w // 2
    if isinstance(unit, (str, bytes)) or not isinstance(unit, Sequence) or len(unit) not in (2, 3) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in unit):
        raise TypeError(f"{_FN}: `unit` must be None, (i, j) or (c, i, j) of ints, got {unit!r}")
    c = int(unit[0]) if len(unit) == 3 else None
    i, j = (int(v) for v in unit[-2:])
    if not (0 <= i < h and 0 <= j < w) or (c is not None and not 0 <= c < c_out):
        raise ValueError(f"{_FN}: `unit` (={tuple(unit)!r}) is not in {where}, of shape (C, H, W) = "
                         f"{tuple(output_shape)}: channel 0..{c_out - 1}, row 0..{h - 1}, column 0..{w - 1}")
    return c, i, j


def one_hot(shape: tuple[int, ...], unit: tuple[int | None, int, int], dtype: Any) -> np.ndarray:
    """The output gradient ``(N, C, h, w)``: 1 at the unit (every channel when ``c`` is None), 0 elsewhere."""
    grad = np.zeros(shape, dtype=dtype)
    c, i, j = unit
    grad[:, slice(None) if c is None else c, i, j] = 1
    return grad


def effective_receptive_field(
    model: Any,
    input_shape: Sequence[int],
    *,
    unit: Sequence[int] | None = None,
    n_samples: int = 8,
    images: np.ndarray | None = None,
    rng: np.random.Generator | int | None = 0,
    batch_size: int = 8,
) -> EffectiveReceptiveField:
    """The effective receptive field of one output unit (Luo et al., NeurIPS 2016).

    Parameters
    ----------
    model : convlab.nn.Module, zoo name or a model a registered backend takes (torch: ``import convlab.interop``)
        A zoo name builds ``convlab.models.create(name, input_size=(C, H, W), rng=rng)`` (random weights).
    input_shape : (C, H, W) or (1, C, H, W)
    unit : None, (i, j) or (c, i, j)
        In the output of the last layer with a spatial output; None: its centre ``(h // 2, w // 2)``.
    n_samples : int
        Random inputs (standard normal, from ``rng``) averaged when ``images`` is None.
    images : ndarray, optional
        ``(N, C, H, W)`` inputs to average over instead of random ones.
    batch_size : int
        Inputs per forward/backward pass (memory).

    Returns
    -------
    EffectiveReceptiveField
        ``.map`` ``(H, W)`` = mean over inputs of ``sum_c |d unit / d x[c]|``, and the statistics.

    Examples
    --------
    >>> from convlab import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False, dtype="float64"),
    ...                     nn.Conv2d(1, 1, 3, bias=False, dtype="float64"))
    >>> for conv in net:
    ...     conv.weight.data[...] = 1.0
    >>> erf = effective_receptive_field(net, (1, 9, 9), n_samples=1)
    >>> erf.map[2:7, 2:7]              # the 3x3 box convolved with itself
    array([[1., 2., 3., 2., 1.],
           [2., 4., 6., 4., 2.],
           [3., 6., 9., 6., 3.],
           [2., 4., 6., 4., 2.],
           [1., 2., 3., 2., 1.]])
    >>> erf.field_box, erf.share_95
    ((2, 2, 6, 6), 0.84)
    """
    from .. import models, nn

    shape = _check_spatial_shape(input_shape)
    for name, value in (("n_samples", n_samples), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{_FN}: `{name}` (={value!r}) must be a positive int")
    if isinstance(model, str):
        model = models.create(model, input_size=shape, rng=rng)
    if images is not None:
        inputs = np.asarray(images, dtype=np.float64)
        if inputs.ndim == 3:
            inputs = inputs[None]
        if inputs.ndim != 4 or inputs.shape[1:] != shape:
            raise ValueError(f"{_FN}: `images` must be (N, C, H, W) with (C, H, W) = {shape}, got the shape "
                             f"{np.shape(images)}")
        source = "given"
    else:
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        inputs = generator.standard_normal((int(n_samples), *shape))
        source = "random"
    if isinstance(model, nn.Module):
        probe = _probe_convlab
    else:
        probe = next((b.probe for b in _BACKENDS if b.predicate(model)), None)
        if probe is None:
            names = ", ".join(b.name for b in _BACKENDS) or "none registered: `import convlab.interop` for torch"
            raise TypeError(f"{_FN}: `model` must be a convlab.nn.Module, a zoo model's name or a model a "
                            f"registered backend takes ({names}), got {type(model).__name__}")
    total = np.zeros(shape[1:], dtype=np.float64)
    result = None
    for first in range(0, len(inputs), int(batch_size)):
        result = probe(model, inputs[first:first + int(batch_size)], unit)
        total += np.abs(np.asarray(result.gradients, dtype=np.float64)).sum(axis=(0, 1))
    return EffectiveReceptiveField(total / len(inputs), shape, result.layer, result.output_shape, result.unit,
                                   result.field, len(inputs), source)


# --------------------------------------------------------------------------- convlab models


def spatial_prefix(model: Any, shape: tuple[int, int, int]) -> tuple[list[tuple[str, Any]], str]:
    """The top-level children of a ``Sequential`` up to the last one whose output is ``(N, C, h, w)``, h*w > 1.

    For any other model: the whole model, which must have a spatial output. Found by the analysis'
    shapes (no forward pass).
    """
    from .. import nn
    from . import analyze

    if isinstance(model, nn.Sequential):
        children = list(model.named_children())
        report = analyze(nn.Sequential(OrderedDict(children)), (1, *shape))
        shapes = _child_output_shapes(report, [name for name, _ in children])
        last = None
        for index, (name, _) in enumerate(children):
            out = shapes.get(name)
            if out is not None and len(out) == 4 and out[2] * out[3] > 1:
                last = index
        if last is None:
            raise ValueError(f"{_FN}: no layer of the model has a spatial output (N, C, H, W) for the input "
                             f"{shape}")
        return children[:last + 1], children[last][0]
    return [("", model)], ""


def _child_output_shapes(report: Any, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Output shape of each top-level child: the last row inside it (its name or ``name.``-prefixed)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for row in report:
        top = row.name.split(".")[0]
        if top in names:
            shapes[top] = row.output_shape
    return shapes


def _probe_convlab(model: Any, inputs: np.ndarray, unit: object) -> GradientProbe:
    from .. import nn
    from . import analyze

    shape = tuple(inputs.shape[1:])
    prefix, layer = spatial_prefix(model, shape)
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float64))
    x = inputs.astype(dtype, copy=False)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    training = [(m, m.training) for m in model.modules()]
    try:
        for p in params:
            p.requires_grad = False  # backward then leaves every .grad alone (and skips the weight gradients)
        model.eval()  # BatchNorm's running statistics: one input's gradient does not depend on the others
        out = x
        for _, child in prefix:
            out = child(out)
        if out.ndim != 4:
            raise ValueError(f"{_FN}: the model's output has the shape {out.shape}, not (N, C, H, W); pass a "
                             f"convlab.nn.Sequential whose prefix ends in a spatial layer")
        checked = check_unit(unit, out.shape[1:], layer)
        grad = one_hot(out.shape, checked, out.dtype)
        for _, child in reversed(prefix):
            grad = child.backward(grad)
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad = flag
        for m, mode in training:
            m.training = mode
    report = analyze(nn.Sequential(OrderedDict(prefix)) if layer else model, (1, *shape))
    return GradientProbe(np.asarray(grad), layer, tuple(out.shape[1:]), checked, report.receptive_field)
