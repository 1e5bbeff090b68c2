"""A folder of images with one sub-folder per class (torchvision's ``ImageFolder`` layout), read with Pillow.

::

    root/cat/0001.png          classes: the sub-folders' names, sorted
    root/dog/abc.jpg           (root/train/<class>/... and root/test/<class>/... select the split)

Pillow is imported on first use (``pip install "convlab[train]"``). Every file
with an image extension is opened lazily first (headers only): one that is
not an image, or holds more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's
decompression-bomb limit, kept as the user set it), is refused with a
ValueError naming it; images of different sizes are refused, naming two of
them and their sizes, unless ``resize=(H, W)`` is given (bilinear, Pillow's
``Image.resize``). Grey and colour images are converted to the mode most of
them have ('L', one channel, or 'RGB', three; a tie gives 'RGB'); an alpha
channel is dropped. Only then is the ``(N, C, H, W)`` array allocated and filled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import Dataset

__all__ = ["IMAGE_EXTENSIONS", "read_image_folder", "resize_images"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                              ".pbm"})
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "La"})


def _pillow():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is installed with the train and viz extras
        raise ImportError('reading a folder of images needs Pillow: pip install "convlab[train]"') from None
    return Image


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def class_folders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def _split_folder(folder: Path, split: str) -> tuple[Path, str | None]:
    """``folder/train`` or ``folder/test`` when the folder is split that way, else the folder itself."""
    names = {p.name for p in class_folders(folder)}
    if "train" in names and ({"test", "val"} & names):
        chosen = folder / split if split == "train" or "test" in names else folder / "val"
        return chosen, split
    return folder, None


def _check_size(resize: tuple[int, int] | None) -> None:
    if resize is not None and (len(resize) != 2 or min(resize) < 1):
        raise ValueError(f"`resize` (={resize!r}) must be (H, W), two positive integers")


def resize_images(images: np.ndarray, size: tuple[int, int], source: str = "") -> np.ndarray:
    """``images`` (N, C, H, W) uint8 resized to ``size`` = (H, W) with Pillow's bilinear filter (a copy)."""
    _check_size(size)
    height, width = size
    if images.shape[2:] == (height, width):
        return images
    image_module = _pillow()
    out = np.empty((len(images), images.shape[1], height, width), dtype=np.uint8)
    for index, image in enumerate(images):
        for channel in range(images.shape[1]):  # mode 'L' per channel: bilinear is separable per channel
            picture = image_module.fromarray(np.ascontiguousarray(image[channel]), mode="L")
            out[index, channel] = np.asarray(picture.resize((width, height), image_module.Resampling.BILINEAR))
    return out


def read_image_folder(folder: str | os.PathLike[str], split: str = "train", *,
                      resize: tuple[int, int] | None = None) -> Dataset:
    """The images under ``folder`` (one sub-folder per class), uint8 ``(N, C, H, W)``; see the module docstring."""
    _check_size(resize)
    image_module = _pillow()
    root, found_split = _split_folder(Path(folder), split)
    if not root.is_dir():
        raise ValueError(f"{folder}: the {split!r} split needs the sub-folder {root.name}/, which is missing")
    classes = class_folders(root)
    if not classes:
        raise ValueError(f"{root}: no class sub-folders (expected {root}/<class name>/<image files>)")
    files: list[tuple[Path, int]] = []
    for label, class_folder in enumerate(classes):
        files += [(p, label) for p in sorted(class_folder.iterdir(), key=lambda p: p.name)
                  if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise ValueError(f"{root}: no image files in its class sub-folders ({', '.join(c.name for c in classes)}); "
                         f"extensions read: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    limit = image_module.MAX_IMAGE_PIXELS
    sizes, grey = [], 0
    for path, _ in files:  # headers only: sizes and modes, before any pixel is decoded
        try:
            with image_module.open(path) as image:
                size, mode = image.size, image.mode
        except image_module.DecompressionBombError as error:
            raise ValueError(f"{path}: refused as a decompression bomb ({error})") from None
        except (OSError, ValueError, SyntaxError) as error:  # UnidentifiedImageError is an OSError
            raise ValueError(f"{path}: not a readable image ({error})") from None
        if limit is not None and size[0] * size[1] > limit:
            raise ValueError(f"{path}: {size[1]}x{size[0]} = {size[0] * size[1]} pixels exceeds Pillow's "
                             f"decompression-bomb limit Image.MAX_IMAGE_PIXELS = {limit}")
        sizes.append(size)
        grey += mode in _GREY_MODES
    if resize is None:
        first = sizes[0]
        for (path, _), size in zip(files, sizes, strict=True):
            if size != first:
                raise ValueError(f"images of different sizes: {files[0][0]} is {first[1]}x{first[0]} (HxW), {path} "
                                 f"is {size[1]}x{size[0]}; pass resize=(H, W) to resize them all")
        height, width = first[1], first[0]
    else:
        height, width = resize
    mode = "L" if grey > len(files) - grey else "RGB"
    channels = 1 if mode == "L" else 3
    images = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for index, (path, _) in enumerate(files):
        try:
            with image_module.open(path) as image:
                picture = image.convert(mode)
                if picture.size != (width, height):
                    picture = picture.resize((width, height), image_module.Resampling.BILINEAR)
                pixels = np.asarray(picture)
        except (OSError, ValueError, SyntaxError) as error:
            raise ValueError(f"{path}: not a readable image ({error})") from None
        images[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
    labels = np.array([label for _, label in files], dtype=np.int64)
    return Dataset(images, labels, [c.name for c in classes], name=Path(folder).resolve().name, source=str(root),
                   split=found_split)
