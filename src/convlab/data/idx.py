"""IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzip-compressed.

The format (LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/): a
magic number of four bytes -- two zero bytes, a type code (0x08 unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
and the number of dimensions -- then each dimension as a big-endian uint32,
then the data in C order, big-endian. Images are ``0x00000803`` (ubyte, 3-D:
N x H x W), labels ``0x00000801`` (ubyte, 1-D: N).

The header is parsed first and the size it implies is compared with the
file's size (for a ``.gz`` file: with the most a deflate stream of that size
can hold, then with what decompresses, reading at most one byte more than
the header promised), so a truncated or mislabelled file is refused before
anything large is allocated. The data is then one ``np.frombuffer`` view of
the file's bytes (no per-item loop); a gzip file is decompressed once.

EMNIST's files store every image transposed (the NIST scans' columns as
rows); files whose name starts with ``emnist`` are transposed back, so that
the letters and digits appear upright. EMNIST's labels are kept as stored
(the 'letters' split counts from 1), and its classes are the generic
``'0'``, ``'1'``, ... names.

>>> import gzip, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "t10k-labels-idx1-ubyte.gz")
>>> with gzip.open(path, "wb") as f:
...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
>>> read_idx(path).tolist()
[7, 2, 1]
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from math import prod
from pathlib import Path

import numpy as np

from .dataset import Dataset, generic_classes

__all__ = [
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "MNIST_CLASSES",
    "find_idx_pair",
    "is_idx_name",
    "read_idx",
    "read_idx_pair",
]

#: Fashion-MNIST's labels (https://github.com/zalandoresearch/fashion-mnist#labels).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(i) for i in range(10))
#: KMNIST's ten hiragana, romanised (Clanuwat et al. 2018, kmnist_classmap.csv).
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")

# type code -> dtype (big-endian where it matters)
_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
# A deflate stream expands at most 1032:1 (zlib's technical details, "Maximum compression factor").
_DEFLATE_MAX_RATIO = 1032

_NAME = re.compile(r"^(?P<prefix>.*?)(?P<split>train|t10k|test)-(?P<kind>images|labels)[-.]idx[13]-ubyte(?:\.gz)?$")


def is_idx_name(name: str) -> bool:
    """Whether a file name follows MNIST's naming (``[prefix-]train-images-idx3-ubyte[.gz]`` and the like)."""
    return _NAME.match(name) is not None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _gunzip(path: Path, compressed: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` decompressed bytes and whether the gzip stream ended; corrupt data -> ValueError."""
    stream = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer (zlib manual, inflateInit2)
    try:
        data = stream.decompress(compressed, limit)
    except zlib.error as error:
        raise ValueError(f"{path}: corrupt gzip data ({error})") from None
    return data, stream.eof


def _magic_text(magic: int) -> str:
    return f"0x{magic:08X}"


def read_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> np.ndarray:
    """The array stored in the IDX file ``path`` (raw or gzip), in native byte order.

    ``magic`` (e.g. ``0x00000803`` for images) makes any other magic number an
    error. A ValueError names the file and the expected and found values: a
    wrong magic number, a header that implies more (or fewer) bytes than the
    file holds, corrupt gzip data. The array may be read-only (a view of the
    file's bytes).
    """
    path = Path(path)
    try:
        gz = _is_gzip(path)
        if gz:
            compressed = path.read_bytes()
            head, _ = _gunzip(path, compressed, 4)
        else:
            with open(path, "rb") as f:
                head = f.read(4)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the IDX file ({error.strerror or error})") from None
    if len(head) < 4:
        raise ValueError(f"{path}: {len(head)} bytes, too short for an IDX header (4 bytes of magic number)")
    found = int.from_bytes(head, "big")
    type_code, ndim = head[2], head[3]
    if magic is not None and found != magic:
        raise ValueError(f"{path}: wrong magic number: expected {_magic_text(magic)}, found {_magic_text(found)}")
    if head[:2] != b"\0\0" or type_code not in _TYPES or ndim == 0:
        raise ValueError(f"{path}: not an IDX file: magic number {_magic_text(found)} (expected two zero bytes, a "
                         f"type code in {', '.join(f'0x{t:02X}' for t in _TYPES)} and a number of dimensions >= 1)")
    header_size = 4 + 4 * ndim
    if gz:
        header, _ = _gunzip(path, compressed, header_size)
    else:
        with open(path, "rb") as f:
            header = f.read(header_size)
    if len(header) < header_size:
        raise ValueError(f"{path}: truncated IDX header: expected {header_size} bytes for {ndim} dimensions, "
                         f"found {len(header)}")
    dims = struct.unpack(f">{ndim}I", header[4:])
    dtype = _TYPES[type_code]
    expected = header_size + prod(dims) * dtype.itemsize  # a Python int: no overflow whatever the header says
    what = f"the header (magic {_magic_text(found)}, dimensions {'x'.join(map(str, dims))}) implies {expected} bytes"
    if gz:
        most = _DEFLATE_MAX_RATIO * len(compressed)
        if expected > most:
            raise ValueError(f"{path}: truncated or mislabelled: {what}, but a gzip file of {len(compressed)} "
                             f"bytes decompresses to at most {most}")
        data, ended = _gunzip(path, compressed, expected + 1)
        if len(data) != expected:
            state = "" if ended or len(data) > expected else " (the gzip stream is cut short)"
            raise ValueError(f"{path}: {'truncated' if len(data) < expected else 'too long'}: {what}, found "
                             f"{len(data) if len(data) <= expected else 'more than ' + str(expected)} "
                             f"decompressed bytes{state}")
    else:
        size = path.stat().st_size
        if size != expected:
            raise ValueError(f"{path}: {'truncated' if size < expected else 'too long'}: {what}, found {size} bytes")
        data = path.read_bytes()
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
    return array if dtype.isnative or dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def _known_classes(text: str) -> tuple[str, ...] | None:
    """The class names of a known IDX set, recognised by its path (None for others)."""
    lowered = text.lower()
    if "fashion" in lowered:
        return FASHION_MNIST_CLASSES
    if "kmnist" in lowered:
        return KMNIST_CLASSES
    if "emnist" in lowered:
        return None
    if "mnist" in lowered:
        return MNIST_CLASSES
    return None


def _name_of(images_path: Path) -> str:
    match = _NAME.match(images_path.name)
    prefix = match["prefix"].rstrip("-_.") if match else ""
    return prefix or images_path.parent.name or "idx"


def read_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str], *,
                  classes: tuple[str, ...] | list[str] | None = None, name: str | None = None,
                  split: str | None = None) -> Dataset:
    """A :class:`Dataset` from an IDX image file (``0x00000803``) and its label file (``0x00000801``).

    ``classes`` default: Fashion-MNIST's, KMNIST's or MNIST's names when the
    path says which (labels outside them are refused), otherwise ``'0'``..``'9'``
    or as many as the labels need.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if images_path.name.lower().startswith("emnist"):
        images = images.transpose(0, 2, 1)  # EMNIST stores each image transposed (see the module's docstring)
    images = images[:, None]  # (N, 1, H, W)
    labels = labels.astype(np.int64)
    path_text = str(images_path.resolve())
    if classes is None:
        known = _known_classes(path_text)
        if known is not None:
            bad = np.flatnonzero(labels >= len(known))
            if bad.size:
                raise ValueError(f"{labels_path}: label {int(labels[bad[0]])} (at index {int(bad[0])}) is outside "
                                 f"[0, {len(known)}) for this dataset's {len(known)} classes")
        classes = known if known is not None else generic_classes(labels)
    else:
        bad = np.flatnonzero(labels >= len(classes))
        if bad.size:
            raise ValueError(f"{labels_path}: label {int(labels[bad[0]])} (at index {int(bad[0])}) is outside "
                             f"[0, {len(classes)}) for the {len(classes)} classes")
    return Dataset(images, labels, list(classes), name=name or _name_of(images_path), source=str(images_path),
                   split=split)


def _split_names(split: str) -> tuple[str, ...]:
    return ("train",) if split == "train" else ("t10k", "test")


def find_idx_pair(folder: str | os.PathLike[str], split: str) -> tuple[Path, Path] | None:
    """The ``(images, labels)`` files of ``split`` ('train' or 'test': ``t10k-``/``test-``) in ``folder``.

    None when the folder holds no IDX file; a ValueError when it holds IDX
    files but not both of the split's, or several sets of them (EMNIST's
    folder: name one image file instead).
    """
    folder = Path(folder)
    found: dict[tuple[str, str], Path] = {}
    any_idx = False
    for entry in sorted(folder.iterdir(), key=lambda p: (p.name.endswith(".gz"), p.name)):  # raw files first
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        any_idx = True
        if match["split"] in _split_names(split):
            found.setdefault((match["prefix"], match["kind"]), entry)
    if not any_idx:
        return None
    prefixes = sorted({prefix for prefix, kind in found if (prefix, "images") in found and (prefix, "labels") in found})
    if not prefixes:
        names = ", ".join(p.name for p in found.values()) or "none"
        raise ValueError(f"{folder}: no IDX image and label files for split {split!r} (files of that split: {names}); "
                         f"expected e.g. {_split_names(split)[0]}-images-idx3-ubyte.gz and "
                         f"{_split_names(split)[0]}-labels-idx1-ubyte.gz")
    if len(prefixes) > 1:
        raise ValueError(f"{folder}: several IDX sets for split {split!r} (prefixes {', '.join(map(repr, prefixes))}); "
                         f"give the path of one image file")
    return found[(prefixes[0], "images")], found[(prefixes[0], "labels")]


def partner(path: Path) -> tuple[Path, Path]:
    """``(images, labels)`` for the path of either file of an IDX pair (the other found by its name)."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path}: not named like an IDX file ([prefix-]train-images-idx3-ubyte[.gz] ...)")
    swap = {"images": ("labels", "idx1"), "labels": ("images", "idx3")}[match["kind"]]
    stem = match["prefix"] + match["split"] + "-" + swap[0]
    candidates = [path.with_name(f"{stem}{sep}{swap[1]}-ubyte{gz}") for sep in "-." for gz in ("", ".gz")]
    other = next((c for c in candidates if c.is_file()), None)
    if other is None:
        raise ValueError(f"{path}: its {swap[0]} file is missing (looked for {candidates[0].name} and "
                         f"{candidates[1 + 2].name} next to it)")
    return (path, other) if match["kind"] == "images" else (other, path)
