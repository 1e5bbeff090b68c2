"""The bundled dataset ``'fashion-mnist-mini'``: a class-balanced subset of Fashion-MNIST.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist)
is MIT-licensed, Copyright (c) 2017 Zalando SE; the licence travels with the
files (``files/LICENSE``). The subset: 1,000 training images of each of the ten
classes (10,000) and 200 test images of each (2,000), picked from the full
training and test sets by :func:`mini_indices` (for each class, a
``numpy.random.default_rng(SEED)`` choice without replacement, in class order;
the picked images keep their order in the original file). They are stored as
gzip-compressed IDX files in ``files/`` (the MNIST layout:
``train-images-idx3-ubyte.gz`` ...). :func:`build_fashion_mnist_mini` rebuilds
them from Debian's ``dataset-fashion-mnist`` package, byte for byte.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from .._files import write_bytes_atomic
from .dataset import Dataset
from .idx import FASHION_MNIST_CLASSES, read_idx_pair

__all__ = ["FILES", "PER_CLASS", "SEED", "build_fashion_mnist_mini", "mini_indices", "open_fashion_mnist_mini"]

FILES = Path(__file__).resolve().parent / "files"
SEED = 2017
PER_CLASS = {"train": 1000, "test": 200}
_PREFIX = {"train": "train", "test": "t10k"}


def mini_indices(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
    """The sorted indices of ``per_class`` images of every class, chosen by ``default_rng(seed)``.

    >>> mini_indices(np.array([0, 1, 0, 1, 0, 1]), 2, seed=0).tolist()
    [1, 2, 4, 5]
    """
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(int(labels.max()) + 1)]
    return np.sort(np.concatenate(chosen))


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as an IDX file (magic ``0x000008`` + its number of dimensions, then big-endian sizes)."""
    if array.dtype != np.uint8:
        raise ValueError(f"idx_bytes: only uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def build_fashion_mnist_mini(source: str | os.PathLike[str] = "/usr/share/datasets/fashion-mnist",
                             destination: str | os.PathLike[str] = FILES, *, overwrite: bool = False,
                             per_class: dict[str, int] | None = None) -> list[Path]:
    """Write the four files of 'fashion-mnist-mini' into ``destination`` from the full set in ``source``.

    The gzip streams carry no time stamp or name (``mtime=0``), so the same
    source gives the same bytes. Files are written atomically; existing ones
    only with ``overwrite=True``. ``per_class`` (default :data:`PER_CLASS`)
    is for tests. Returns the paths written.
    """
    per_class = PER_CLASS if per_class is None else per_class
    written = []
    for split, prefix in _PREFIX.items():
        full = read_idx_pair(Path(source) / f"{prefix}-images-idx3-ubyte.gz",
                             Path(source) / f"{prefix}-labels-idx1-ubyte.gz", classes=FASHION_MNIST_CLASSES)
        keep = mini_indices(full.labels, per_class[split])
        for kind, array in (("images-idx3", full.images[keep, 0]), ("labels-idx1", full.labels[keep].astype(np.uint8))):
            path = Path(destination) / f"{prefix}-{kind}-ubyte.gz"
            write_bytes_atomic(path, gzip.compress(idx_bytes(array), compresslevel=9, mtime=0), overwrite=overwrite)
            written.append(path)
    return written


def open_fashion_mnist_mini(split: str = "train") -> Dataset:
    """The bundled subset's ``split`` ('train': 10,000 images, 'test': 2,000), 1x28x28 uint8."""
    prefix = _PREFIX[split]
    return read_idx_pair(FILES / f"{prefix}-images-idx3-ubyte.gz", FILES / f"{prefix}-labels-idx1-ubyte.gz",
                         classes=FASHION_MNIST_CLASSES, name="fashion-mnist-mini", split=split)
