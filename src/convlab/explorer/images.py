"""Pictures in and out of the explorer: uploads decoded safely, arrays encoded as PNG data URLs.

Uploads are PNG or JPEG only, at most :data:`MAX_IMAGE_BYTES`, decoded by Pillow with its
decompression-bomb limit set to :data:`MAX_PIXELS` and a largest side of :data:`MAX_SIDE`, checked on
the header before the pixels are decoded. Decoded uploads are kept in memory (the last
:data:`MAX_UPLOADS`), named by a hash of their bytes; nothing is written to disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 4096
MAX_UPLOADS = 16
FORMATS = ("PNG", "JPEG")


class ImageError(ValueError):
    """A refusal of an upload; ``status`` is the HTTP status (413 too large, 422 otherwise)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def decode(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 ``(H, W, C)`` with C 1 (grey) or 3 (RGB), or an :class:`ImageError`."""
    from PIL import Image

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"`file`: the image has {len(data)} bytes, more than the limit of {MAX_IMAGE_BYTES}", 413)
    if not data:
        raise ImageError("`file`: the upload is empty")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's decompression-bomb check (a warning above, an error at 2x)
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as picture:
            width, height = picture.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise ImageError(f"`file`: the image is {width}x{height}, more than the limit of {MAX_PIXELS} "
                                 f"pixels or {MAX_SIDE} per side")
            picture.draft("RGB", (min(width, 1024), min(height, 1024)))  # JPEG: decode at a reduced scale
            picture = picture.convert("L" if picture.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB")
            array = np.asarray(picture, dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"`file`: {exc}") from None
    except Exception as exc:  # Pillow raises several kinds for undecodable data
        raise ImageError(f"`file`: not a PNG or JPEG image Pillow can decode ({type(exc).__name__})") from None
    return array[..., None] if array.ndim == 2 else array


class UploadStore:
    """The last :data:`MAX_UPLOADS` decoded uploads, by the first 16 hex digits of their SHA-256."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes) -> tuple[str, np.ndarray]:
        array = decode(data)
        key = hashlib.sha256(data).hexdigest()[:16]
        with self._lock:
            self._items[key] = array
            self._items.move_to_end(key)
            while len(self._items) > MAX_UPLOADS:
                self._items.popitem(last=False)
        return key, array

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            return self._items.get(key)


def fit_to(image: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """uint8 ``(h, w, c)`` -> float64 ``(channels, height, width)`` in [0, 1]: resized (bilinear, Pillow),
    grey to colour by repeating, colour to grey by Pillow's luma (ITU-R 601-2)."""
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if channels == 1:
        picture = picture.convert("L")
    elif picture.mode != "RGB":
        picture = picture.convert("RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.float64) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
    if array.shape[0] != channels:
        array = np.repeat(array[:1], channels, axis=0) if channels != 3 else array
    return array


def png(array: np.ndarray) -> bytes:
    """uint8 ``(H, W)`` (grey), ``(H, W, 3)`` or ``(H, W, 4)`` -> PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def normalised(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``values`` min-max scaled to uint8 (0 where constant), with the min and max: what a grey tile shows.

    Pixel = round(255 * (v - min) / (max - min)).
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    scaled = np.zeros(v.shape) if hi <= lo else (v - lo) / (hi - lo)
    return np.rint(scaled * 255).astype(np.uint8), lo, hi


def heat_rgba(values: np.ndarray) -> np.ndarray:
    """A map as ``viridis`` RGBA uint8, alpha growing with the value (an overlay on the input)."""
    from matplotlib import colormaps

    grey, _, _ = normalised(values)
    rgba = (colormaps["viridis"](grey / 255.0) * 255).round().astype(np.uint8)
    rgba[..., 3] = np.clip(60 + grey.astype(np.int32) * 195 // 255, 0, 255).astype(np.uint8)
    return rgba


def picture_url(chw: np.ndarray) -> str:
    """A float ``(C, H, W)`` image in [0, 1] as a PNG data URL (channels averaged unless RGB)."""
    shown = chw.transpose(1, 2, 0) if chw.shape[0] == 3 else chw.mean(axis=0)
    return data_url(png(np.rint(np.clip(shown, 0, 1) * 255).astype(np.uint8)))


def as_json(value: Any) -> Any:
    """NumPy scalars and arrays -> JSON values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
