"""NumPy ``.npz`` files (read with ``allow_pickle=False``).

Accepted array names, the first pair found:

* ``x_train``/``y_train``, ``x_test``/``y_test`` (Keras' ``mnist.npz`` layout);
* ``train_images``/``train_labels``, ``test_images``/``test_labels``;
* ``images``/``labels`` or ``x``/``y``: one set, whatever the split.

An optional ``classes`` array of strings names the classes (labels outside
them are refused); otherwise they are ``'0'``, ``'1'``, ... as the labels need.
Images are integers in 0..255 (stored as uint8), shaped ``(N, H, W)`` (one
channel), ``(N, C, H, W)`` or channels-last ``(N, H, W, C)``: a 4-D array is
taken as channels-last when its last axis is 1, 3 or 4 long and its second
axis is not; a fourth (alpha) channel is dropped. Each member's header is
compared with the size the zip file declares for it before it is read.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .dataset import Dataset, generic_classes

__all__ = ["NPZ_NAMES", "read_npz"]

NPZ_NAMES = (("x_{split}", "y_{split}"), ("{split}_images", "{split}_labels"), ("images", "labels"), ("x", "y"))


def _member_sizes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, int]]:
    """``name -> (shape, dtype, declared size)`` of every ``.npy`` member, from the headers only."""
    found = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    reader = {(1, 0): np.lib.format.read_array_header_1_0,
                              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if reader is None:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, _, dtype = reader(member)
                found[info.filename[:-4]] = (shape, dtype, info.file_size)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    return found


def _to_nchw(images: np.ndarray, path: Path, key: str) -> np.ndarray:
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
            images = images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        if images.shape[1] == 4:
            images = images[:, :3]
        return images
    raise ValueError(f"{path}: {key!r} must be (N, H, W), (N, C, H, W) or (N, H, W, C); found shape {images.shape}")


def read_npz(path: str | os.PathLike[str], split: str = "train") -> Dataset:
    """A :class:`Dataset` from the arrays in ``path`` (see the module docstring for the names)."""
    path = Path(path)
    members = _member_sizes(path)
    for shape, dtype, declared in members.values():
        needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if dtype.hasobject or needed > declared:
            raise ValueError(f"{path}: a member's header claims {shape} {dtype} ({needed} bytes) but the archive "
                             f"declares {declared} bytes; truncated or not a dataset")
    for images_name, labels_name in NPZ_NAMES:
        keys = images_name.format(split=split), labels_name.format(split=split)
        if keys[0] in members and keys[1] in members:
            break
    else:
        names = "; ".join(f"{a.format(split=split)}/{b.format(split=split)}" for a, b in NPZ_NAMES)
        raise ValueError(f"{path}: no image/label arrays for split {split!r}: found {sorted(members) or 'none'}, "
                         f"expected one of {names}")
    with np.load(path, allow_pickle=False) as archive:
        images, labels = archive[keys[0]], archive[keys[1]]
        classes = archive["classes"] if "classes" in members else None
    if not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"{path}: {keys[0]!r} must hold integers in 0..255 (uint8), found {images.dtype}; "
                         f"convert floats in [0, 1] with (x * 255).round().astype(np.uint8)")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"{path}: {keys[0]!r} holds values outside 0..255 ({images.min()}..{images.max()})")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {keys[1]!r} must be 1-D integers, found {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{path}: {keys[0]!r} holds {len(images)} images, {keys[1]!r} {len(labels)} labels")
    if labels.size and labels.min() < 0:
        bad = int(np.flatnonzero(labels < 0)[0])
        raise ValueError(f"{path}: label {int(labels[bad])} (at index {bad}) in {keys[1]!r} is negative")
    images = _to_nchw(images, path, keys[0]).astype(np.uint8, copy=False)
    if classes is not None:
        names = [str(c) for c in np.asarray(classes).reshape(-1)]
        bad = np.flatnonzero(labels >= len(names))
        if bad.size:
            raise ValueError(f"{path}: label {int(labels[bad[0]])} (at index {int(bad[0])}) in {keys[1]!r} is outside "
                             f"[0, {len(names)}) for the {len(names)} classes")
    else:
        names = generic_classes(labels.astype(np.int64))
    has_split = "{split}" in images_name
    return Dataset(np.ascontiguousarray(images), labels.astype(np.int64), names, name=path.stem, source=str(path),
                   split=split if has_split else None)
