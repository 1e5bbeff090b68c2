"""``DataLoader``: batches of a :class:`~convlab.data.dataset.Dataset`, shuffled and augmented reproducibly.

Like ``torch.utils.data.DataLoader(dataset, batch_size, shuffle, drop_last)``,
with every random choice derived from the seed, the epoch and the batch
number, so any epoch and any batch can be replayed exactly (resuming a run):

* the order of epoch ``e`` is ``np.random.default_rng([seed, e]).permutation(N)``
  (``arange(N)`` without shuffling);
* the transform of batch ``b`` of epoch ``e`` draws from ``np.random.default_rng([seed, e, b])``.

A batch is ``(x, y)``: ``x`` the images converted to ``dtype`` and scaled to
[0, 1] (``uint8 / 255``, batch by batch: the dataset is never converted as a
whole), then passed through ``transform(x, rng)``; ``y`` the int64 labels.

Iterating (``for x, y in loader``) runs epoch :attr:`epoch` and moves it on by
one, so successive loops see new orders, as torch's loader does;
``set_epoch(e)`` chooses the next epoch (as torch's ``DistributedSampler.set_epoch``),
and ``batches(e, start)`` runs epoch ``e`` from batch ``start`` without touching it.

>>> import numpy as np
>>> from convlab.data import Dataset
>>> ds = Dataset(np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1), np.arange(5), list("abcde"))
>>> loader = DataLoader(ds, 2, shuffle=True, seed=0)
>>> len(loader), [y.tolist() for _, y in loader.batches(0)]
(3, [[2, 4], [3, 0], [1]])
>>> [y.tolist() for _, y in loader.batches(0, start=2)]
[[1]]
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator

import numpy as np

from .dataset import Dataset

__all__ = ["DataLoader"]

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _non_negative_int(value: object, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"DataLoader: `{name}` (={value!r}) must be an integer >= {minimum}")
    return int(value)


class DataLoader:
    """Batches of ``(x, y)`` from ``dataset``; see the module docstring for the order and the generators.

    Parameters
    ----------
    dataset : Dataset (or any object with uint8 ``.images`` (N, C, H, W) and int ``.labels`` (N,))
    batch_size : int >= 1
    shuffle : bool, a new seeded permutation every epoch
    seed : int >= 0
    drop_last : bool, leave out the last batch when it is smaller than ``batch_size``
    transform : callable ``transform(x, rng) -> x`` on float batches (``convlab.data.transforms``), or None
    dtype : float32 or float64
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, transform: Transform | None = None, dtype: object = np.float32) -> None:
        self.batch_size = _non_negative_int(batch_size, "batch_size", 1)
        self.seed = _non_negative_int(seed, "seed")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool | np.bool_):
                raise ValueError(f"DataLoader: `{name}` (={flag!r}) must be True or False")
        images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"DataLoader: `dataset` must have uint8 .images (N, C, H, W), got "
                             f"{type(dataset).__name__}")
        if not isinstance(labels, np.ndarray) or labels.shape != (len(images),):
            raise ValueError(f"DataLoader: `dataset` must have .labels of shape ({len(images)},)")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"DataLoader: `dtype` (={dtype!r}) must be float32 or float64") from None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"DataLoader: `dtype` (={dtype!r}) must be float32 or float64")
        if transform is not None and not callable(transform):
            raise ValueError(f"DataLoader: `transform` (={transform!r}) must be callable transform(x, rng) or None")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0

    def __len__(self) -> int:
        count, rest = divmod(len(self.dataset.images), self.batch_size)
        return count + (rest > 0 and not self.drop_last)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``for`` loop runs (its order and its transforms' generators)."""
        self.epoch = _non_negative_int(epoch, "epoch")

    def order(self, epoch: int) -> np.ndarray:
        """The indices of epoch ``epoch`` in the order they are served, int64 ``(N,)``."""
        epoch = _non_negative_int(epoch, "epoch")
        count = len(self.dataset.images)
        if not self.shuffle:
            return np.arange(count, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(count)

    def batch(self, epoch: int, index: int, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of epoch ``epoch``: ``(x, y)``, exactly as iteration serves it."""
        index = _non_negative_int(index, "index")
        if index >= len(self):
            raise ValueError(f"DataLoader: batch `index` (={index}) must be < {len(self)}, the number of batches")
        order = self.order(epoch) if order is None else order
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.dataset.images[chosen].astype(self.dtype)  # (B, C, H, W): only this batch is converted
        x /= 255
        y = self.dataset.labels[chosen].astype(np.int64, copy=False)
        if self.transform is not None:
            x = self.transform(x, np.random.default_rng([self.seed, epoch, index]))
        return x, y

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of epoch ``epoch`` from batch ``start`` (for resuming in the middle of an epoch)."""
        epoch = _non_negative_int(epoch, "epoch")
        start = _non_negative_int(start, "start")
        if start > len(self):
            raise ValueError(f"DataLoader: `start` (={start}) must be <= {len(self)}, the number of batches")
        order = self.order(epoch)
        for index in range(start, len(self)):
            yield self.batch(epoch, index, order)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch = self.epoch
        self.epoch += 1
        return self.batches(epoch)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset.images)} images, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last}, transform={self.transform!r})")
