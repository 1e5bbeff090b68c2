"""Batch augmentation: each transform is ``t(x, rng) -> x`` on a float batch ``(B, C, H, W)`` in [0, 1].

Vectorised over the batch (one random draw per image, made as one array per
parameter from the generator ``rng``, which the :class:`~convlab.data.loader.DataLoader`
derives from the seed, the epoch and the batch). Names, arguments and formulas
follow torchvision's ``transforms`` (``torchvision/transforms/transforms.py``
for the random parameters, ``_functional_tensor.py`` for the pixel formulas);
the input is never changed in place.

>>> import numpy as np
>>> x = np.arange(4, dtype=np.float64).reshape(1, 1, 1, 4) / 4
>>> RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0)).ravel().tolist()
[0.75, 0.5, 0.25, 0.0]
>>> Normalize([0.5], [0.25])(x, None).ravel().tolist()
[-2.0, -1.0, 0.0, 1.0]

Transforms: :class:`Normalize`, :class:`RandomCrop`, :class:`RandomHorizontalFlip`,
:class:`RandomRotation`, :class:`RandomAffine`, :class:`ColorJitter`,
:class:`Cutout`, :class:`Compose`; :func:`preset` builds the CLI's
``--augment crop,flip,rotate,affine,jitter,normalize,cutout``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "PRESETS",
    "ColorJitter",
    "Compose",
    "Cutout",
    "Normalize",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "preset",
]


def _batch(x: np.ndarray, owner: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        got = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{owner}: expects a float batch (B, C, H, W), got {got}")
    return x


def _number(value: object, owner: str, name: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise ValueError(f"{owner}: `{name}` (={value!r}) must be a number in [{low}, {high}]")
    return float(value)


def _pair(value: object, owner: str, name: str, *, low: float = -math.inf, high: float = math.inf,
          around: float | None = None) -> tuple[float, float]:
    """A (min, max) range: a number v gives (around - v, around + v) (or (-v, v)); a pair is taken as it is."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = _number(value, owner, name, low=0)
        centre = 0.0 if around is None else around
        lo, hi = centre - v, centre + v
        lo = max(lo, low)
    else:
        try:
            lo, hi = (_number(v, owner, name, low=low, high=high) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: `{name}` (={value!r}) must be a number or a (min, max) pair "
                             f"within [{low}, {high}]") from None
    if lo > hi:
        raise ValueError(f"{owner}: `{name}` (={value!r}) must have min <= max")
    return lo, hi


def _size(value: object, owner: str, name: str) -> tuple[int, int]:
    values = (value, value) if isinstance(value, numbers.Integral) else value
    try:
        height, width = values
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: `{name}` (={value!r}) must be an int or (H, W)") from None
    for v in (height, width):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{owner}: `{name}` (={value!r}) must hold positive integers")
    return int(height), int(width)


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel (torchvision's ``Normalize``; ``Dataset.mean_std()`` gives them)."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.shape != self.mean.shape or not np.all(np.isfinite(self.mean)):
            raise ValueError(f"Normalize: `mean` (={mean!r}) and `std` (={std!r}) must be equal-length lists of "
                             f"finite numbers")
        if not np.all(np.isfinite(self.std) & (self.std > 0)):
            raise ValueError(f"Normalize: `std` (={std!r}) must hold positive finite numbers")

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        _batch(x, "Normalize")
        if len(self.mean) not in (1, x.shape[1]):
            raise ValueError(f"Normalize: {len(self.mean)} means for a batch of {x.shape[1]} channels")
        mean = self.mean.astype(x.dtype).reshape(1, -1, 1, 1)
        std = self.std.astype(x.dtype).reshape(1, -1, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Pad, then crop ``size`` at a random offset per image (torchvision's ``RandomCrop``).

    ``padding``: an int (every side), ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``,
    as torchvision; ``padding_mode``: 'constant' (``fill``), 'edge', 'reflect' (``1234 -> 32123432``)
    or 'symmetric' (``1234 -> 21123443``). The offsets are ``rng.integers(0, H_padded - h + 1)``
    (rows, all images) then the same for columns.
    """

    MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size: int | tuple[int, int], padding: int | Sequence[int] = 0,
                 padding_mode: str = "constant", fill: float = 0.0) -> None:
        self.size = _size(size, "RandomCrop", "size")
        pads = (padding,) if isinstance(padding, numbers.Integral) else tuple(padding)
        if len(pads) not in (1, 2, 4) or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0
                                             for p in pads):
            raise ValueError(f"RandomCrop: `padding` (={padding!r}) must be a non-negative int, 2 or 4 of them")
        left, top, right, bottom = {1: pads * 4, 2: pads * 2, 4: pads}[len(pads)]
        self.padding = (int(left), int(top), int(right), int(bottom))
        if padding_mode not in self.MODES:
            raise ValueError(f"RandomCrop: `padding_mode` (={padding_mode!r}) must be one of {', '.join(self.MODES)}")
        self.padding_mode = padding_mode
        self.fill = _number(fill, "RandomCrop", "fill")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _batch(x, "RandomCrop")
        left, top, right, bottom = self.padding
        height, width = self.size
        if self.padding_mode == "reflect" and (max(top, bottom) >= x.shape[2] or max(left, right) >= x.shape[3]):
            raise ValueError(f"RandomCrop: reflect padding {self.padding} needs images larger than it; got "
                             f"{x.shape[2]}x{x.shape[3]}")
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        extra = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
        padded = np.pad(x, widths, mode=self.padding_mode, **extra) if any(self.padding) else x
        rows_free, cols_free = padded.shape[2] - height, padded.shape[3] - width
        if rows_free < 0 or cols_free < 0:
            raise ValueError(f"RandomCrop: crop {height}x{width} is larger than the padded image "
                             f"{padded.shape[2]}x{padded.shape[3]}")
        count = len(x)
        top_offsets = rng.integers(0, rows_free + 1, size=count)
        left_offsets = rng.integers(0, cols_free + 1, size=count)
        rows = top_offsets[:, None] + np.arange(height)  # (B, h)
        cols = left_offsets[:, None] + np.arange(width)  # (B, w)
        batch_index = np.arange(count)[:, None, None, None]
        channel_index = np.arange(x.shape[1])[None, :, None, None]
        return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, h, w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (``rng.random(B) < p``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _number(p, "RandomHorizontalFlip", "p", low=0, high=1)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _batch(x, "RandomHorizontalFlip")
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomAffine:
    """Rotate, translate and scale each image about its centre (torchvision's ``RandomAffine``, no shear).

    Per image (torchvision's ``get_params``): ``angle ~ U(degrees)`` (counter-clockwise,
    degrees), ``tx = round(U(-translate[0]*W, translate[0]*W))``, ``ty`` likewise with H,
    ``s ~ U(scale)``. The output pixel at ``p`` reads the input at
    ``centre + R(-angle) (p - centre - t) / s`` (centre ``((H-1)/2, (W-1)/2)``, as
    torchvision's grid), through ``scipy.ndimage.affine_transform`` with
    ``interpolation`` 'nearest' (torchvision's default) or 'bilinear'; outside: ``fill``
    (mode 'grid-constant': each pixel covers its +-0.5 square, as ``grid_sample``'s zeros
    padding, so a coordinate of -1e-16 still reads pixel 0).
    """

    def __init__(self, degrees: float | tuple[float, float], translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, interpolation: str = "nearest", fill: float = 0.0) -> None:
        owner = type(self).__name__
        self.degrees = _pair(degrees, owner, "degrees")
        if translate is not None:
            try:
                tx, ty = (_number(t, owner, "translate", low=0, high=1) for t in translate)
            except (TypeError, ValueError):
                raise ValueError(f"{owner}: `translate` (={translate!r}) must be None or (a, b) in [0, 1]") from None
            translate = (tx, ty)
        self.translate = translate
        self.scale = None if scale is None else _pair(scale, owner, "scale", low=1e-6)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"{owner}: `interpolation` (={interpolation!r}) must be 'nearest' or 'bilinear'")
        self.interpolation = interpolation
        self.fill = _number(fill, owner, "fill")

    def parameters(self, count: int, height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``(angle, tx, ty, scale)``, each ``(count,)``, drawn in this order."""
        angle = rng.uniform(*self.degrees, size=count)
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            tx = np.round(rng.uniform(-max_dx, max_dx, size=count))
            ty = np.round(rng.uniform(-max_dy, max_dy, size=count))
        else:
            tx = ty = np.zeros(count)
        scale = rng.uniform(*self.scale, size=count) if self.scale is not None else np.ones(count)
        return angle, tx, ty, scale

    def apply(self, x: np.ndarray, angle: np.ndarray, tx: np.ndarray, ty: np.ndarray,
              scale: np.ndarray) -> np.ndarray:
        """The transform with given per-image parameters (``angle`` in degrees, counter-clockwise)."""
        from scipy import ndimage

        _batch(x, type(self).__name__)
        height, width = x.shape[2:]
        centre = np.array([(height - 1) / 2, (width - 1) / 2])
        order = 0 if self.interpolation == "nearest" else 1
        out = np.empty_like(x)
        for index in range(len(x)):
            theta = math.radians(angle[index])
            cos, sin = math.cos(theta), math.sin(theta)
            # (row, col) coordinates, rows down: src = centre + M (dst - centre - t), M = R(-angle) / s
            matrix = np.array([[cos, sin], [-sin, cos]]) / scale[index]
            offset = centre - matrix @ (centre + np.array([ty[index], tx[index]]))
            for channel in range(x.shape[1]):
                ndimage.affine_transform(x[index, channel], matrix, offset=offset, output=out[index, channel],
                                         order=order, mode="grid-constant", cval=self.fill, prefilter=False)
        return out

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _batch(x, type(self).__name__)
        return self.apply(x, *self.parameters(len(x), x.shape[2], x.shape[3], rng))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"interpolation={self.interpolation!r})")


class RandomRotation(RandomAffine):
    """Rotate each image by ``U(-degrees, degrees)`` (or ``U(min, max)``) degrees, counter-clockwise.

    torchvision's ``RandomRotation``; :class:`RandomAffine` without translation or scaling.
    """

    def __init__(self, degrees: float | tuple[float, float], interpolation: str = "nearest",
                 fill: float = 0.0) -> None:
        super().__init__(degrees, interpolation=interpolation, fill=fill)

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation!r})"


def _grayscale(x: np.ndarray) -> np.ndarray:
    """(B, 1, H, W): ITU-R 601-2 luma, torchvision's ``rgb_to_grayscale`` (0.2989 R + 0.587 G + 0.114 B)."""
    if x.shape[1] == 1:
        return x
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _blend(image: np.ndarray, other: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """torchvision's ``_blend``: ``(ratio * image + (1 - ratio) * other).clamp(0, 1)`` for float images."""
    return np.clip(ratio * image + (1 - ratio) * other, 0, 1)


class ColorJitter:
    """Random brightness, contrast and saturation per image (torchvision's ``ColorJitter``, no hue).

    Each factor ``~ U(max(0, 1 - v), 1 + v)`` (or ``U(min, max)``); the three are applied in a
    random order per image, as torchvision (``fn_idx = randperm``), with the formulas of
    ``torchvision/transforms/_functional_tensor.py``:
    brightness ``x * f``; contrast ``f * x + (1 - f) * mean(gray(x))`` (the mean over the
    image); saturation ``f * x + (1 - f) * gray(x)`` (no change for one channel); each
    clamped to [0, 1]. A factor of 1 leaves the image unchanged.
    """

    def __init__(self, brightness: float | tuple[float, float] = 0, contrast: float | tuple[float, float] = 0,
                 saturation: float | tuple[float, float] = 0) -> None:
        self.ranges = {}
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            lo, hi = _pair(value, "ColorJitter", name, low=0, around=1.0)
            self.ranges[name] = None if lo == hi == 1.0 else (lo, hi)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _batch(x, "ColorJitter")
        count = len(x)
        order = np.argsort(rng.random((count, 3)), axis=1)  # a random permutation of the three per image
        factors = {name: None if r is None else rng.uniform(*r, size=count).astype(x.dtype)[:, None, None, None]
                   for name, r in self.ranges.items()}
        out = x.copy()
        for step in range(3):
            for op, name in enumerate(("brightness", "contrast", "saturation")):
                if factors[name] is None:
                    continue
                chosen = np.flatnonzero(order[:, step] == op)
                if chosen.size == 0:
                    continue
                image, factor = out[chosen], factors[name][chosen]
                if name == "brightness":
                    out[chosen] = _blend(image, 0, factor)
                elif name == "contrast":
                    out[chosen] = _blend(image, _grayscale(image).mean(axis=(1, 2, 3), keepdims=True), factor)
                elif x.shape[1] == 3:
                    out[chosen] = _blend(image, _grayscale(image), factor)
        return out

    def __repr__(self) -> str:
        return "ColorJitter(" + ", ".join(f"{k}={v}" for k, v in self.ranges.items()) + ")"


class Cutout:
    """Zero one ``size`` x ``size`` square per image (DeVries & Taylor 2017, arXiv:1708.04552).

    The square's centre is uniform over the image (``rng.integers(0, H)``, then the
    columns), its top-left corner ``centre - size // 2``, and it is clipped at the borders,
    so squares near an edge are smaller, as in the paper. (The paper's code gives an odd
    ``size`` a side of ``size - 1``; here the side is ``size`` before clipping.)
    """

    def __init__(self, size: int, fill: float = 0.0) -> None:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"Cutout: `size` (={size!r}) must be a positive integer")
        self.size = int(size)
        self.fill = _number(fill, "Cutout", "fill")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _batch(x, "Cutout")
        count, _, height, width = x.shape
        centre_rows = rng.integers(0, height, size=count)
        centre_cols = rng.integers(0, width, size=count)
        top, left = centre_rows - self.size // 2, centre_cols - self.size // 2
        rows, cols = np.arange(height), np.arange(width)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + self.size)  # (B, H); clipping is implicit
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + self.size)  # (B, W)
        mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # (B, 1, H, W)
        return np.where(mask, np.asarray(self.fill, dtype=x.dtype), x)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


class Compose:
    """Apply ``transforms`` in order, each drawing from the same generator."""

    def __init__(self, transforms: Sequence[object]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ValueError(f"Compose: every transform must be callable t(x, rng), got {t!r}")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


#: The names ``preset`` accepts, in the order it applies them (geometry, colour, normalisation, cutout last
#: as in DeVries & Taylor, who cut out of normalised images).
PRESETS = ("crop", "flip", "rotate", "affine", "jitter", "normalize", "cutout")


def preset(names: str, dataset: object) -> Compose:
    """The CLI's ``--augment`` list (comma-separated :data:`PRESETS`, or 'none') as a :class:`Compose`.

    With ``dataset``'s image size ``H x W``: crop = ``RandomCrop((H, W), padding=max(1, H // 8))``
    (4 for 32x32, 3 for 28x28); flip = ``RandomHorizontalFlip(0.5)``; rotate =
    ``RandomRotation(15)``; affine = ``RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1))``;
    jitter = ``ColorJitter(0.4, 0.4, 0.4)``; normalize = ``Normalize(*dataset.mean_std())``;
    cutout = ``Cutout(max(1, H // 4))``. Applied in the order of :data:`PRESETS` whatever the
    order given.

    >>> from convlab.data import Dataset
    >>> ds = Dataset(np.zeros((1, 1, 28, 28), np.uint8), np.array([0]), ["a"])
    >>> preset("flip,crop", ds)
    Compose([RandomCrop(size=(28, 28), padding=(3, 3, 3, 3), padding_mode='constant'), RandomHorizontalFlip(p=0.5)])
    """
    if not isinstance(names, str):
        raise ValueError(f"preset: `names` (={names!r}) must be a comma-separated string of {', '.join(PRESETS)}")
    chosen = [n.strip().lower() for n in names.split(",") if n.strip()]
    if chosen in ([], ["none"]):
        return Compose([])
    unknown = [n for n in chosen if n not in PRESETS]
    if unknown:
        raise ValueError(f"preset: unknown augmentation {unknown[0]!r} in {names!r}; choose from "
                         f"{', '.join(PRESETS)} (comma-separated) or 'none'")
    images = getattr(dataset, "images", None)
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise ValueError("preset: `dataset` must have .images of shape (N, C, H, W)")
    height, width = images.shape[2:]
    build = {
        "crop": lambda: RandomCrop((height, width), padding=max(1, height // 8)),
        "flip": lambda: RandomHorizontalFlip(0.5),
        "rotate": lambda: RandomRotation(15),
        "affine": lambda: RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        "jitter": lambda: ColorJitter(0.4, 0.4, 0.4),
        "normalize": lambda: Normalize(*dataset.mean_std()),
        "cutout": lambda: Cutout(max(1, height // 4)),
    }
    return Compose([build[name]() for name in PRESETS if name in chosen])
