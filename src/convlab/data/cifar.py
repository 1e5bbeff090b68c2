"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html), both versions.

Binary version: CIFAR-10's ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
``test_batch.bin`` hold records of 1 label byte and 3072 pixel bytes (1024 red,
1024 green, 1024 blue, rows in order), ``batches.meta.txt`` the class names;
CIFAR-100's ``train.bin``/``test.bin`` hold records of a coarse label byte, a
fine label byte and 3072 pixel bytes, ``fine_label_names.txt`` and
``coarse_label_names.txt`` the names. A file's size must be a whole number
of records; the records are one ``np.frombuffer`` view.

Python version: the same batches as pickled dicts (``data_batch_1`` ...,
``test_batch``, ``batches.meta``; CIFAR-100's ``train``, ``test``, ``meta``),
written by Python 2: ``b'data'`` a uint8 array (N, 3072), ``b'labels'`` (or
``b'fine_labels'``/``b'coarse_labels'``) a list. They are read with
``encoding='bytes'``, as the CIFAR page says, through :class:`RestrictedUnpickler`,
which admits only what those files hold -- dicts, lists, tuples, strings, bytes,
numbers and NumPy arrays of numbers -- and refuses every other global (``os.system``,
``builtins.eval``...) with a ValueError naming the file and the global, before
calling anything.

CIFAR-100's label is the fine one (100 classes) unless
``open_dataset(path, label='coarse')`` asks for the 20 superclasses.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .dataset import Dataset

__all__ = ["RestrictedUnpickler", "is_cifar_folder", "load_pickle", "read_cifar"]

_PIXELS = 3 * 32 * 32
_BINARY = {
    "cifar-10": {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]},
    "cifar-100": {"train": ["train.bin"], "test": ["test.bin"]},
}
_PYTHON = {
    "cifar-10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar-100": {"train": ["train"], "test": ["test"]},
}
_LABELS = ("fine", "coarse")


def _reconstruct_function():
    """NumPy's ``_reconstruct`` (its module moved from numpy.core to numpy._core in NumPy 2)."""
    return np.zeros(0).__reduce__()[0]


def _safe_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype`` for numbers only: an object dtype would let a pickle place arbitrary objects in an array."""
    dtype = np.dtype(*args)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"refused global numpy.dtype({args[0]!r}): only numeric dtypes are admitted")
    return dtype


def _safe_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2 (``encode(text, 'latin1')``), latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused global _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR batch needs (Python docs, "Restricting Globals").

    Admitted: ``numpy.core.multiarray._reconstruct`` (or ``numpy._core``'s),
    ``numpy.ndarray``, ``numpy.dtype`` (numeric dtypes only), and
    ``_codecs.encode`` with latin-1 (how Python 3 writes bytes at protocol 2).
    Dicts, lists, tuples, strings, bytes and numbers need no global. Any other
    global raises ``pickle.UnpicklingError`` naming it, before it is looked up.
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], Callable[[], Any]]] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: _safe_dtype,
        ("_codecs", "encode"): lambda: _safe_encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return factory()


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """The object pickled in ``path``, through :class:`RestrictedUnpickler` with ``encoding='bytes'``.

    >>> import pickle, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "meta")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({b"label_names": [b"cat", b"dog"]}, f, protocol=2)
    >>> load_pickle(path)
    {b'label_names': [b'cat', b'dog']}
    >>> with open(path, "wb") as f:
    ...     pickle.dump(os.getcwd, f)
    >>> load_pickle(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...meta: refused global posix.getcwd (a CIFAR pickle holds only dicts, lists, ... nothing was executed)
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        if str(error).startswith("refused global"):
            raise ValueError(f"{path}: {error} (a CIFAR pickle holds only dicts, lists, strings, bytes, numbers "
                             f"and NumPy arrays; nothing was executed)") from None
        raise ValueError(f"{path}: not a readable pickle ({error})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as error:
        raise ValueError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None


def is_cifar_folder(folder: Path) -> str | None:
    """``'binary'``, ``'python'`` or None, from the file names in ``folder``."""
    names = {p.name for p in folder.iterdir() if p.is_file()}
    if names & {"data_batch_1.bin", "test_batch.bin", "train.bin", "test.bin"}:
        return "binary"
    if names & {"data_batch_1", "test_batch"} or ("meta" in names and names & {"train", "test"}):
        return "python"
    return None


def _which(folder: Path, table: dict[str, dict[str, list[str]]]) -> str:
    names = {p.name for p in folder.iterdir() if p.is_file()}
    cifar100 = table["cifar-100"]["train"] + table["cifar-100"]["test"]
    return "cifar-100" if any(n in names for n in cifar100) else "cifar-10"


def _names_from_text(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the class names ({error})") from None
    return [line.strip() for line in lines if line.strip()]


def _decode(names: list[Any]) -> list[str]:
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _binary_records(path: Path, label_bytes: int) -> np.ndarray:
    record = label_bytes + _PIXELS
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    if size == 0 or size % record:
        raise ValueError(f"{path}: {size} bytes is not a whole number of {record}-byte records "
                         f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + {_PIXELS} pixels); "
                         f"truncated or not a CIFAR batch")
    return np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, record)


def _check_range(labels: np.ndarray, count: int, path: Path) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= count))
    if bad.size:
        raise ValueError(f"{path}: label {int(labels[bad[0]])} (at index {int(bad[0])}) is outside [0, {count}) "
                         f"for the {count} classes")


def _missing(folder: Path, files: list[str], split: str) -> None:
    absent = [name for name in files if not (folder / name).is_file()]
    if absent:
        raise ValueError(f"{folder}: the {split} split needs {', '.join(files)}; missing {', '.join(absent)}")


def read_cifar(folder: str | os.PathLike[str], split: str = "train", *, label: str = "fine") -> Dataset:
    """CIFAR-10 or CIFAR-100 (binary or Python version) from its extracted folder.

    ``label``: CIFAR-100's 'fine' (100 classes) or 'coarse' (20 superclasses); CIFAR-10 has one label.
    """
    folder = Path(folder)
    if label not in _LABELS:
        raise ValueError(f"read_cifar: `label` (={label!r}) must be 'fine' or 'coarse'")
    kind = is_cifar_folder(folder)
    if kind is None:
        raise ValueError(f"{folder}: no CIFAR batch files (data_batch_1.bin, train.bin, data_batch_1, train ...)")
    table = _BINARY if kind == "binary" else _PYTHON
    name = _which(folder, table)
    files = table[name][split]
    _missing(folder, files, split)
    images, labels = [], []
    if kind == "binary":
        label_bytes = 2 if name == "cifar-100" else 1
        column = 1 if name == "cifar-100" and label == "fine" else 0  # CIFAR-100: coarse byte, then fine byte
        for file in files:
            records = _binary_records(folder / file, label_bytes)
            images.append(records[:, label_bytes:])
            labels.append(records[:, column].astype(np.int64))
        if name == "cifar-100":
            names_file = folder / f"{label}_label_names.txt"
        else:
            names_file = folder / "batches.meta.txt"
        classes = _names_from_text(names_file) if names_file.is_file() else None
    else:
        key = b"labels" if name == "cifar-10" else f"{label}_labels".encode()
        for file in files:
            path = folder / file
            batch = load_pickle(path)
            if not isinstance(batch, dict) or b"data" not in batch or key not in batch:
                found = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
                raise ValueError(f"{path}: a CIFAR batch is a dict with b'data' and {key!r}; found {found}")
            data = np.asarray(batch[b"data"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
                raise ValueError(f"{path}: b'data' must be uint8 (N, {_PIXELS}), found {data.dtype} {data.shape}")
            batch_labels = np.asarray(batch[key])
            if batch_labels.shape != (len(data),) or not np.issubdtype(batch_labels.dtype, np.integer):
                raise ValueError(f"{path}: {key!r} must hold {len(data)} integers, found {batch_labels.dtype} "
                                 f"{batch_labels.shape}")
            images.append(data)
            labels.append(batch_labels.astype(np.int64))
        meta_path = folder / ("batches.meta" if name == "cifar-10" else "meta")
        classes = None
        if meta_path.is_file():
            meta = load_pickle(meta_path)
            meta_key = b"label_names" if name == "cifar-10" else f"{label}_label_names".encode()
            if not isinstance(meta, dict) or meta_key not in meta:
                raise ValueError(f"{meta_path}: expected a dict with {meta_key!r}")
            classes = _decode(list(meta[meta_key]))
    count = len(classes) if classes else (10 if name == "cifar-10" else (100 if label == "fine" else 20))
    if classes is None:
        classes = [str(i) for i in range(count)]
    for file, batch_labels in zip(files, labels, strict=True):
        _check_range(batch_labels, count, folder / file)
    pixels = np.concatenate(images) if len(images) > 1 else np.ascontiguousarray(images[0])
    return Dataset(pixels.reshape(-1, 3, 32, 32), np.concatenate(labels), classes,
                   name=name if name == "cifar-10" or label == "fine" else f"{name}-coarse", source=str(folder),
                   split=split)
