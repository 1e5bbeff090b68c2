"""Datasets, the loader and batch augmentation (layer 1: NumPy; Pillow for image folders; SciPy for rotations).

>>> from convlab.data import open_dataset, DataLoader, transforms
>>> train = open_dataset("fashion-mnist-mini")          # bundled: 10,000 images, 1,000 per class
>>> train.images.shape, train.labels.dtype, train.num_classes
((10000, 1, 28, 28), dtype('int64'), 10)
>>> loader = DataLoader(train, 256, shuffle=True, seed=0, transform=transforms.preset("crop,flip", train))
>>> x, y = next(iter(loader))
>>> x.shape, x.dtype, y.shape
((256, 1, 28, 28), dtype('float32'), (256,))

Modules: :mod:`~convlab.data.readers` (``open_dataset``: names and formats),
:mod:`~convlab.data.idx`, :mod:`~convlab.data.cifar`, :mod:`~convlab.data.arrays`,
:mod:`~convlab.data.folder` (the formats), :mod:`~convlab.data.bundled` (the
bundled Fashion-MNIST subset and its licence), :mod:`~convlab.data.dataset`,
:mod:`~convlab.data.loader`, :mod:`~convlab.data.transforms`.
"""

from __future__ import annotations

from . import transforms
from .dataset import Dataset
from .idx import FASHION_MNIST_CLASSES
from .loader import DataLoader
from .readers import NAMES, SEARCH_PATHS, open_dataset

__all__ = ["FASHION_MNIST_CLASSES", "NAMES", "SEARCH_PATHS", "DataLoader", "Dataset", "open_dataset", "transforms"]
