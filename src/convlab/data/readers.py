"""``open_dataset``: recognise a dataset by its name or by the files at a path, and read one split.

Names
-----
``'fashion-mnist-mini'``
    The subset of Fashion-MNIST that ships with convlab (10,000 training and
    2,000 test images, 1,000 and 200 per class; :mod:`convlab.data.bundled`).
``'fashion-mnist'``
    The full Fashion-MNIST (60,000 + 10,000) from the folders of
    :data:`SEARCH_PATHS` (Debian's package: ``apt-get install dataset-fashion-mnist``
    puts it in ``/usr/share/datasets/fashion-mnist/``). Nothing is downloaded.

Paths (what the files are, not their extensions, decides)
---------------------------------------------------------
* a folder of IDX files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-...``; prefixed names such as ``emnist-digits-train-...`` too), or one IDX
  image or label file (its partner found by name): :mod:`convlab.data.idx`;
* a CIFAR-10/100 folder, binary or Python version: :mod:`convlab.data.cifar`
  (``label='coarse'`` for CIFAR-100's superclasses);
* a ``.npz`` file: :mod:`convlab.data.arrays`;
* a folder with one sub-folder of images per class: :mod:`convlab.data.folder`.

``split`` is ``'train'`` or ``'test'``; a source without splits (one IDX pair,
an ``images``/``labels`` npz, an image folder without train/ and test/) is
read whatever the split asks, and its dataset's ``split`` is None.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from . import bundled
from .arrays import read_npz
from .cifar import is_cifar_folder, read_cifar
from .dataset import Dataset
from .folder import class_folders, read_image_folder, resize_images
from .idx import FASHION_MNIST_CLASSES, find_idx_pair, is_idx_name, partner, read_idx_pair

__all__ = ["NAMES", "SEARCH_PATHS", "open_dataset"]

#: Where the named datasets are looked for, in order (tests point these elsewhere).
SEARCH_PATHS: dict[str, list[str]] = {
    "fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
}
NAMES = ("fashion-mnist-mini", "fashion-mnist")
SPLITS = ("train", "test")


def _check_resize(resize: object) -> tuple[int, int] | None:
    if resize is None:
        return None
    values = (resize, resize) if isinstance(resize, numbers.Integral) and not isinstance(resize, bool) else resize
    try:
        height, width = values
    except (TypeError, ValueError):
        raise ValueError(f"open_dataset: `resize` (={resize!r}) must be None, an int or (H, W)") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= 2**16:
            raise ValueError(f"open_dataset: `resize` (={resize!r}) must hold integers in [1, 65536]")
    return int(height), int(width)


def _named(name: str, split: str) -> Dataset:
    if name == "fashion-mnist-mini":
        return bundled.open_fashion_mnist_mini(split)
    for folder in SEARCH_PATHS[name]:
        pair = find_idx_pair(folder, split) if Path(folder).is_dir() else None
        if pair is not None:
            return read_idx_pair(*pair, classes=FASHION_MNIST_CLASSES, name=name, split=split)
    raise ValueError(f"open_dataset: {name!r} was not found in {', '.join(SEARCH_PATHS[name])}: install it with "
                     f"`apt-get install dataset-fashion-mnist` (Debian, Ubuntu), or give the path of a folder holding "
                     f"its four IDX files (train-images-idx3-ubyte.gz ...)")


def _open_file(path: Path, split: str) -> Dataset:
    if path.suffix.lower() == ".npz":
        return read_npz(path, split)
    if is_idx_name(path.name):
        images, labels = partner(path)
        return read_idx_pair(images, labels)
    raise ValueError(f"open_dataset: {path} is not a dataset file convlab reads (a .npz file, or an IDX file named "
                     f"like train-images-idx3-ubyte[.gz]); folders: IDX, CIFAR-10/100, or one sub-folder per class")


def _open_folder(path: Path, split: str, resize: tuple[int, int] | None, label: str) -> tuple[Dataset, bool]:
    """The dataset in the folder ``path`` and whether it was resized on reading."""
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise ValueError(f"open_dataset: the folder {path} is empty")
    pair = find_idx_pair(path, split)
    if pair is not None:
        return read_idx_pair(*pair, split=split), False
    if is_cifar_folder(path):
        return read_cifar(path, split, label=label), False
    archives = sorted(p for p in entries if p.is_file() and p.suffix.lower() == ".npz")
    if len(archives) == 1:
        return read_npz(archives[0], split), False
    if class_folders(path):
        return read_image_folder(path, split, resize=resize), True
    names = ", ".join(sorted(p.name for p in entries)[:8])
    raise ValueError(f"open_dataset: no dataset recognised in {path} (it holds {names}); expected IDX files "
                     f"(train-images-idx3-ubyte.gz ...), CIFAR batches (data_batch_1.bin, data_batch_1, train.bin "
                     f"...), one .npz file, or one sub-folder of images per class")


def open_dataset(path_or_name: str | os.PathLike[str], split: str = "train", *,
                 resize: int | tuple[int, int] | None = None, label: str = "fine") -> Dataset:
    """Read one split of a dataset: by name (see :data:`NAMES`) or from a path (see the module docstring).

    Parameters
    ----------
    path_or_name : ``'fashion-mnist-mini'``, ``'fashion-mnist'``, or a file or folder
    split : ``'train'`` or ``'test'``
    resize : None, an int or ``(H, W)``: resize every image (bilinear); needed for a
        folder of images of different sizes
    label : CIFAR-100 only: ``'fine'`` (100 classes) or ``'coarse'`` (20)

    Returns
    -------
    Dataset: ``.images`` uint8 ``(N, C, H, W)``, ``.labels`` int64 ``(N,)``, ``.classes``.

    Examples
    --------
    >>> ds = open_dataset("fashion-mnist-mini", split="test")
    >>> ds.images.shape, ds.images.dtype, ds.classes[9]
    ((2000, 1, 28, 28), dtype('uint8'), 'Ankle boot')
    """
    if split not in SPLITS:
        raise ValueError(f"open_dataset: `split` (={split!r}) must be 'train' or 'test'")
    if label not in ("fine", "coarse"):
        raise ValueError(f"open_dataset: `label` (={label!r}) must be 'fine' or 'coarse' (CIFAR-100's labels)")
    size = _check_resize(resize)
    if not isinstance(path_or_name, str | os.PathLike):
        raise TypeError(f"open_dataset: `path_or_name` must be a dataset name or a path, got {path_or_name!r}")
    path = Path(path_or_name)
    resized = False
    if isinstance(path_or_name, str) and path_or_name in NAMES and not path.exists():
        dataset = _named(path_or_name, split)
    elif path.is_dir():
        dataset, resized = _open_folder(path, split, size, label)
        if label == "coarse" and not dataset.name.startswith("cifar-100"):
            raise ValueError(f"open_dataset: `label` (='coarse') applies to CIFAR-100 only; {path} is {dataset.name}")
    elif path.is_file():
        dataset = _open_file(path, split)
    else:
        raise ValueError(f"open_dataset: {str(path_or_name)!r} is neither an existing file or folder nor a dataset "
                         f"name ({', '.join(NAMES)})")
    if size is not None and not resized and dataset.shape[1:] != size:
        dataset = Dataset(resize_images(dataset.images, size), dataset.labels, dataset.classes, name=dataset.name,
                          source=dataset.source, split=dataset.split)
    return dataset
