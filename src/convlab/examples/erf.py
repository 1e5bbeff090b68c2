"""The effective receptive field (ERF): Luo et al.'s findings, measured by the engine's backward.

Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks" (NeurIPS 2016): send a gradient of 1 back from the
centre unit of the last layer, average the absolute input gradient over random
inputs, sum it over channels. Seed 000 quotes their result: the map is close to
a Gaussian, only the centre of the theoretical field matters much. The example
reproduces their qualitative findings on random-weight networks (8 channels, 3x3
kernels, ReLU, a 1-channel 48x48 input):

* in a ReLU stack of depth n the theoretical field grows as 2n + 1 but the spread
  of the ERF (its standard deviation) only about as sqrt(n), so the share of the
  field that holds 95% of the mass falls;
* subsampling (stride 2) and dilation (2) enlarge the ERF;
* skip connections (residual blocks) shrink it against a plain stack of the same depth;
* training enlarges it: only with a trained model given (``trained=``, e.g. one
  written by ``convlab train``: ``load_checkpoint(path).build_model()``), compared with the same
  architecture with fresh random weights.

The map here is the definition written out with ``model(x)`` and
``model.backward(grad)``; :func:`convlab.analysis.effective_receptive_field` is the
same computation with statistics and any model (the tests check the two agree), and
``convlab.viz.erf`` / ``convlab draw erf`` draw it (the example's result holds the maps:
``convlab.viz.erf_panel(result)`` draws them; nothing is written unless asked).

>>> result = run(io.StringIO(), samples=2)
>>> result.depths
(2, 4, 8, 16)
>>> result.fields
(5, 9, 17, 33)
"""

from __future__ import annotations

import copy
import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import nn
from ..shapes import receptive_field
from .worked import Page

__all__ = ["TITLE", "EffectiveFields", "erf_map", "mass_share", "run", "spread"]

TITLE = "The effective receptive field: Gaussian, growing as sqrt(depth) (Luo et al. 2016; seed 000)"
SIZE = 48
WIDTH = 8
DEPTHS = (2, 4, 8, 16)


class EffectiveFields(NamedTuple):
    depths: tuple[int, ...]
    fields: tuple[int, ...]  # theoretical field sizes of the ReLU stacks
    spreads: tuple[float, ...]  # standard deviation of their ERF (pixels)
    shares: tuple[float, ...]  # share of the theoretical field holding 95% of the mass
    variants: dict[str, float]  # spread of the 9-layer variants: plain, strided, dilated, residual
    maps: dict[str, np.ndarray]  # every ERF map (48x48; the trained model: its input size), by name
    trained: tuple[float, float] | None  # spread untrained, trained (when a trained model is given)


def erf_map(model: nn.Module, input_shape: tuple[int, int, int], samples: int, rng: np.random.Generator
            ) -> np.ndarray:
    """``mean_n sum_c |d y[n, :, h//2, w//2].sum() / d x[n, c]|`` over standard-normal inputs (Luo et al.)."""
    x = rng.standard_normal((samples, *input_shape)).astype(np.float64)
    with_modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        y = model(x)
        grad = np.zeros_like(y)
        grad[:, :, y.shape[2] // 2, y.shape[3] // 2] = 1.0  # every channel of the centre unit
        dx = model.backward(grad)
    finally:
        for m, mode in with_modes:
            m.training = mode
    return np.abs(dx).sum(axis=1).mean(axis=0)


def spread(erf: np.ndarray) -> float:
    """The standard deviation of the map along the rows, as a distribution (the Gaussian's sigma)."""
    marginal = erf.sum(axis=1) / erf.sum()
    pos = np.arange(marginal.size)
    mean = pos @ marginal
    return float(np.sqrt(((pos - mean) ** 2) @ marginal))


def mass_share(erf: np.ndarray, field_size: int, share: float = 0.95) -> float:
    """The fewest pixels holding ``share`` of the mass, over the field's area (``field_size**2``)."""
    values = np.sort(erf.ravel())[::-1]
    count = int(np.searchsorted(np.cumsum(values), share * values.sum() * (1 - 1e-12)) + 1)
    return count / field_size**2


def _conv(rng: np.random.Generator, c_in: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, WIDTH, 3, stride=stride, padding=dilation, dilation=dilation, rng=rng, dtype="float64")


def relu_stack(depth: int, rng: np.random.Generator, strides: tuple[int, ...] = (), dilation: int = 1
               ) -> nn.Sequential:
    """``depth`` 3x3 convolutions with ReLU; stride 2 at the layers listed in ``strides``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [_conv(rng, 1 if i == 0 else WIDTH, 2 if i in strides else 1, dilation), nn.ReLU()]
    return nn.Sequential(*layers)


def residual_stack(blocks: int, rng: np.random.Generator) -> nn.Sequential:
    """A stem convolution, then ``blocks`` residual blocks ``relu(x + conv(relu(conv(x))))`` (2 layers each)."""
    layers: list[nn.Module] = [_conv(rng, 1), nn.ReLU()]
    for _ in range(blocks):
        body = nn.Sequential(_conv(rng, WIDTH), nn.ReLU(), _conv(rng, WIDTH))
        layers.append(nn.Residual(body, post=nn.ReLU()))
    return nn.Sequential(*layers)


def _redrawn(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """A copy of ``model`` with every weight of 2+ dims drawn afresh (He normal, std sqrt(2 / fan_in))."""
    fresh = copy.deepcopy(model)
    for name, p in fresh.named_parameters():
        if p.data.ndim >= 2:
            fan_in = int(np.prod(p.data.shape[1:]))
            p.data[...] = rng.standard_normal(p.data.shape) * np.sqrt(2.0 / fan_in)
        elif name.endswith("bias"):
            p.data[...] = 0
    return fresh


def run(file: TextIO | None = None, number: int | None = None, *, samples: int = 4, seed: int = 0,
        trained: nn.Module | None = None) -> EffectiveFields:
    """Print the measurements; return them with the maps (``trained``: a trained convlab model, optional)."""
    page = Page(file)
    page.title(TITLE, number)
    rng = np.random.default_rng(seed)
    shape = (1, SIZE, SIZE)
    maps: dict[str, np.ndarray] = {}
    fields, spreads, shares = [], [], []
    page.step(f"(a) random-weight ReLU stacks ({WIDTH} channels, 3x3, padding 1) on {SIZE}x{SIZE}, {samples} inputs")
    page.line("depth  field  ERF sigma  sigma/sqrt(depth)  95% of the mass in")
    for depth in DEPTHS:
        erf = erf_map(relu_stack(depth, rng), shape, samples, rng)
        size = receptive_field([(3, 1, 1, 1)] * depth).size
        maps[f"relu{depth}"] = erf
        fields.append(size)
        spreads.append(spread(erf))
        shares.append(mass_share(erf, size))
        page.line(f"{depth:5d}  {size:5d}  {spreads[-1]:9.2f}  {spreads[-1] / np.sqrt(depth):17.2f}  "
                  f"{shares[-1]:.2f} of the field")
    slope = float(np.polyfit(np.log(DEPTHS), np.log(spreads), 1)[0])
    page.line(f"sigma grows as depth^{slope:.2f} (the field as depth^1)")
    variants = {
        "plain": relu_stack(9, rng),
        "strided": relu_stack(9, rng, strides=(1, 3)),
        "dilated": relu_stack(9, rng, dilation=2),
        "residual": residual_stack(4, rng),
    }
    spreads_9: dict[str, float] = {}
    page.step("(b) 9 convolution layers each (residual: a stem and 4 blocks): ERF sigma in input pixels")
    for name, model in variants.items():
        erf = erf_map(model, shape, samples, rng)
        maps[name] = erf
        spreads_9[name] = spread(erf)
        page.line(f"{name:9s} {spreads_9[name]:6.2f}")
    page.line("subsampling and dilation enlarge the ERF; skip connections shrink it")
    trained_spreads = None
    if trained is not None:
        input_shape = tuple(getattr(trained, "input_size", shape))
        before = erf_map(_redrawn(trained, rng), input_shape, samples, rng)
        after = erf_map(trained, input_shape, samples, rng)
        maps["untrained"], maps["trained"] = before, after
        trained_spreads = (spread(before), spread(after))
        page.step("(c) training")
        page.line(f"the trained model: ERF sigma {trained_spreads[1]:.2f} against {trained_spreads[0]:.2f} with "
                  "fresh random weights")
    else:
        page.line("(training enlarges it: pass trained=<a model trained by convlab train> to measure)")
    return EffectiveFields(DEPTHS, tuple(fields), tuple(spreads), tuple(shares), spreads_9, maps, trained_spreads)


if __name__ == "__main__":
    run()
