"""The dataset every reader returns: uint8 images ``(N, C, H, W)``, int64 labels ``(N,)`` and class names.

Like ``torch.utils.data.Dataset`` it has a length and is indexable
(``ds[i]`` is ``(image, label)``); unlike it, the whole split is held as two
arrays, which the :class:`~convlab.data.loader.DataLoader` batches with one
fancy index per batch. The arrays are read-only (a reader may hand out a view
of the file's bytes); ``ds.images.copy()`` gives a writable copy.

>>> import numpy as np
>>> ds = Dataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 1, 0]), ["a", "b"], name="toy")
>>> len(ds), ds.num_classes, ds.subset([1, 2]).labels.tolist()
(4, 2, [1, 1])
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["Dataset", "generic_classes"]


def generic_classes(labels: np.ndarray, at_least: int = 10) -> list[str]:
    """Class names ``'0'``, ``'1'``, ... covering every label (at least ``at_least`` of them).

    >>> generic_classes(np.array([0, 3]), at_least=2)
    ['0', '1', '2', '3']
    """
    count = int(labels.max()) + 1 if labels.size else 0
    return [str(i) for i in range(max(count, at_least))]


def _check_labels_in_range(labels: np.ndarray, num_classes: int, source: str) -> None:
    """ValueError naming ``source``, the first label outside ``[0, num_classes)`` and its position."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{source}: label {int(labels[index])} (at index {index}; {bad.size} such labels) is outside "
            f"[0, {num_classes}): the data has {num_classes} classes")


class Dataset:
    """A split of an image classification dataset held in memory.

    Parameters
    ----------
    images : ndarray, uint8, shape ``(N, C, H, W)``
    labels : ndarray of integers, shape ``(N,)``; stored as int64, each in ``[0, len(classes))``
    classes : sequence of str, the class names (``classes[label]``)
    name : str, a short name (``'fashion-mnist'``, ``'cifar-10'``...)
    source : str, where the data was read from (a path), used in messages
    split : str or None, ``'train'``/``'test'``, or None when the source has no splits

    Attributes
    ----------
    images, labels, classes, name, source, split; ``num_classes`` = ``len(classes)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], *, name: str = "dataset",
                 source: str = "", split: str | None = None) -> None:
        where = source or name
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            got = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images)
            raise ValueError(f"{where}: `images` must be a uint8 array (N, C, H, W), got {got}")
        labels = np.asarray(labels)
        if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
            raise ValueError(f"{where}: `labels` must be a 1-D integer array, got {labels.dtype} of shape "
                             f"{labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")
        classes = [str(c) for c in classes]
        if not classes:
            raise ValueError(f"{where}: `classes` is empty")
        labels = labels.astype(np.int64, copy=False)
        _check_labels_in_range(labels, len(classes), where)
        # Read-only views: the caller's arrays keep their flags, the dataset's cannot be changed by accident.
        self.images = images.view()
        self.images.flags.writeable = False
        self.labels = labels.view()
        self.labels.flags.writeable = False
        self.classes = classes
        self.name = name
        self.source = source
        self.split = split

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(classes)``."""
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one image, ``(C, H, W)``."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """``(image (C, H, W) uint8, label int)``."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"Dataset index must be an integer, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"Dataset index {index} out of range for {len(self)} images")
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        c, h, w = self.shape
        split = f", split={self.split!r}" if self.split else ""
        return (f"Dataset({self.name!r}{split}: {len(self)} images {c}x{h}x{w}, {self.num_classes} classes, "
                f"source={self.source!r})")

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """A new dataset holding ``images[indices]`` (integers in ``[-N, N)``, or a boolean mask of length N)."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"Dataset.subset: a boolean mask must have shape ({len(self)},), got {index.shape}")
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = index.astype(np.int64)
        elif not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
            raise ValueError(f"Dataset.subset: `indices` must be 1-D integers or a boolean mask, got {index.dtype} "
                             f"of shape {index.shape}")
        outside = (index < -len(self)) | (index >= len(self))
        if outside.any():
            raise ValueError(f"Dataset.subset: index {int(index[outside][0])} is out of range for {len(self)} images")
        return Dataset(self.images[index], self.labels[index], self.classes, name=self.name, source=self.source,
                       split=self.split)

    def class_counts(self) -> np.ndarray:
        """Images per class, ``(num_classes,)`` int64."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation (population, ddof=0) of the images scaled to [0, 1].

        Computed from a 256-bin histogram per channel, exactly and without a float copy of the data.

        >>> ds = Dataset(np.array([[[[0, 255]]]], np.uint8), np.array([0]), ["a"])
        >>> ds.mean_std()
        ((0.5,), (0.5,))
        """
        values = np.arange(256, dtype=np.float64) / 255.0
        means, stds = [], []
        for channel in range(self.images.shape[1]):
            counts = np.bincount(self.images[:, channel].reshape(-1), minlength=256).astype(np.float64)
            total = counts.sum()
            if total == 0:
                raise ValueError(f"{self.source or self.name}: mean_std of an empty dataset")
            mean = float(counts @ values / total)
            variance = float(counts @ (values - mean) ** 2 / total)
            means.append(mean)
            stds.append(variance**0.5)
        return tuple(means), tuple(stds)
