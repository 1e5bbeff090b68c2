"""TensorBoard logging through tensorboardX (no TensorFlow), and a plain ``metrics.jsonl`` beside it.

:class:`Board` is what the training loop calls; ``tensorboard --logdir DIR``
shows what it writes:

=============================  ==========================================================  ====================
TensorBoard tag                what                                                        x axis
=============================  ==========================================================  ====================
``loss/train`` ...             :meth:`Board.scalars`: any scalar (``loss/train``,          the optimizer step
                               ``accuracy/train``, ``loss/test``, ``accuracy/test``)
``lr``, ``lr/group1`` ...      :meth:`Board.lr`: the learning rate of each parameter group  the optimizer step
``epoch/loss/train`` ...       :meth:`Board.epoch_scalars`: per-epoch values                the epoch
``inputs``                     :meth:`Board.images`: a batch as a grid (:func:`image_grid`)  the step
``features/<layer>/<i>``       :meth:`Board.feature_maps`: each channel of a layer's        the step
                               output for sample ``i`` of a fixed batch, as a grey tile
``kernels/<layer>``            :meth:`Board.kernels`: the first convolution's kernels       the step
                               (RGB patches when it reads 3 channels, else grey tiles)
``weights/<name>``,            :meth:`Board.histograms`: histograms of each parameter       the step
``gradients/<name>``           and of its gradient
``config``                     :meth:`Board.config`: the run's configuration (text) and     0
                               the HParams dashboard's hyperparameters
=============================  ==========================================================  ====================

Every scalar is also appended to ``metrics.jsonl`` in the logdir, one JSON object
per line, ``{"tag", "step", "epoch", "value", "wall_time"}``, flushed at each write,
which :func:`read_metrics` (and ``convlab.viz``) reads without TensorBoard.

Intermediate outputs (feature maps) come from :func:`capture_outputs`, which
wraps the chosen submodules' ``forward`` for one forward pass (convlab modules
have no hooks); it works for any model, not only ``nn.Sequential``.

The logdir is created when missing and checked before training starts
(:func:`check_logdir`): a file in its place or a folder that cannot be written
is refused with a ValueError naming it.

Examples
--------
>>> import numpy as np
>>> batch = np.arange(2 * 1 * 2 * 2, dtype=np.float64).reshape(2, 1, 2, 2)
>>> grid = image_grid(batch, nrow=2, padding=1, normalize=True)
>>> grid.shape  # 3 channels (grey is repeated, as torchvision does), 1 + 2 * (2 + 1) pixels each way
(3, 4, 7)
>>> (grid[0] * 7).round().astype(int)  # values 0..7 stretched to 0..1; the padding is 0
array([[0, 0, 0, 0, 0, 0, 0],
       [0, 0, 1, 0, 4, 5, 0],
       [0, 2, 3, 0, 6, 7, 0],
       [0, 0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import nn
from ..nn.capture import capture_outputs
from ..ops._checks import check_budget
from ..spec import as_bool

__all__ = [
    "METRICS_FILE",
    "Board",
    "capture_outputs",
    "check_logdir",
    "image_grid",
    "read_metrics",
    "to_uint8",
]

METRICS_FILE = "metrics.jsonl"
_INSTALL = 'pip install "convlab[train]"'


def _summary_writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # pragma: no cover - the train extra is installed in the test environment
        raise ImportError(f"convlab's TensorBoard logging needs tensorboardX: {_INSTALL}") from None
    return SummaryWriter


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_int(fn: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: `{name}` must be an int, got {_short(value)} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{fn}: `{name}` (={value}) must be >= {minimum}")
    return int(value)


# --------------------------------------------------------------------------- pictures as arrays


def image_grid(
    batch: np.ndarray,
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range: tuple[float, float] | None = None,
    scale_each: bool = False,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Tile a batch of images into one image, like ``torchvision.utils.make_grid``.

    Parameters
    ----------
    batch
        ``(B, C, H, W)``, or one image ``(C, H, W)`` or ``(H, W)``. One-channel images are
        repeated to three channels (as torchvision does); integer arrays become float64.
    nrow
        Images per row of the grid.
    padding
        Pixels between images and around the grid (filled with ``pad_value``).
    normalize
        Shift and scale to [0, 1]: by ``value_range`` (low, high) when given, else by the
        batch's min and max (each image's own with ``scale_each``); values are first clipped
        to the range. A constant image becomes 0 (the divisor is ``max(high - low, 1e-5)``).

    Returns
    -------
    ndarray
        ``(C', (H + padding) * rows + padding, (W + padding) * min(nrow, B) + padding)``,
        ``rows = ceil(B / min(nrow, B))``; a batch of one image is returned without padding,
        as torchvision does.

    The semantics are torchvision's (torchvision/utils.py, ``make_grid``), rewritten for NumPy.
    """
    fn = "image_grid"
    if not isinstance(batch, np.ndarray):
        batch = np.asarray(batch)
    if batch.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: `batch` must hold numbers, got dtype {batch.dtype}")
    nrow = _check_int(fn, "nrow", nrow, 1)
    padding = _check_int(fn, "padding", padding, 0)
    normalize = as_bool(fn, "normalize", normalize)
    scale_each = as_bool(fn, "scale_each", scale_each)
    if batch.ndim == 2:
        batch = batch[None]
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4:
        raise ValueError(f"{fn}: `batch` must be (B, C, H, W), (C, H, W) or (H, W), got shape {batch.shape}")
    if 0 in batch.shape:
        raise ValueError(f"{fn}: `batch` of shape {batch.shape} has no pixels")
    if value_range is not None:
        if not (isinstance(value_range, Sequence) and len(value_range) == 2
                and all(isinstance(v, numbers.Real) and math.isfinite(v) for v in value_range)
                and value_range[0] < value_range[1]):
            raise ValueError(f"{fn}: `value_range` must be (low, high) with finite low < high, got "
                             f"{_short(value_range)}")
    count, channels, height, width = batch.shape
    columns = min(nrow, count)
    rows = -(-count // columns)
    out_channels = 3 if channels == 1 else channels
    shape = (out_channels, (height + padding) * rows + padding, (width + padding) * columns + padding)
    dtype = batch.dtype if batch.dtype.kind == "f" else np.dtype(np.float64)
    check_budget(fn, "grid", shape, dtype.itemsize)

    images = batch.astype(dtype, copy=True)
    if normalize:
        groups = images if scale_each else images[None]  # one range per image, or one for the batch

        for group in groups:
            low, high = (value_range if value_range is not None
                         else (float(np.min(group)), float(np.max(group))))
            np.clip(group, low, high, out=group)
            group -= low
            group /= max(high - low, 1e-5)
    if channels == 1:
        images = np.repeat(images, 3, axis=1)  # (B, 3, H, W)
    if count == 1:
        return images[0]
    grid = np.full(shape, pad_value, dtype=dtype)
    for k in range(count):
        y, x = divmod(k, columns)
        top, left = y * (height + padding) + padding, x * (width + padding) + padding
        grid[:, top:top + height, left:left + width] = images[k]
    return grid


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` floats in [0, 1] -> ``(H, W, C)`` uint8, rounding as torchvision's ``save_image``.

    torchvision/utils.py: ``grid.mul(255).add_(0.5).clamp_(0, 255)`` then a cast to uint8.

    >>> to_uint8(np.array([[[0.0, 0.5, 1.0, 2.0]]]))[0, :, 0]
    array([  0, 128, 255, 255], dtype=uint8)
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"to_uint8: `image` must be (C, H, W), got shape {image.shape}")
    scaled = np.clip(np.nan_to_num(image.astype(np.float64) * 255 + 0.5, nan=0.0), 0, 255)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0))  # (H, W, C)


def _first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    for name, module in model.named_modules():
        weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if weight is not None and weight.data.ndim == 4 and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            return name, module
    raise ValueError(f"Board.kernels: the model ({type(model).__name__}) has no Conv2d layer")


def _zoom(tiles: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of ``(N, C, h, w)`` tiles by an integer factor."""
    return np.repeat(np.repeat(tiles, factor, axis=2), factor, axis=3)


def kernel_tiles(weight: np.ndarray, *, min_size: int = 32) -> tuple[np.ndarray, int, bool]:
    """The tiles :meth:`Board.kernels` grids for a conv weight ``(C_out, C_in/groups, kh, kw)``.

    Returns ``(tiles, nrow, scale_each)``: with 3 input channels one RGB tile per kernel,
    each scaled to its own range; otherwise one grey tile per (output, input) channel pair,
    a row per output channel, one range for the whole layer. Tiles are enlarged by an
    integer factor (nearest neighbour) to at least ``min_size`` pixels where possible.
    """
    out_channels, in_channels, kh, kw = weight.shape
    factor = max(1, min_size // max(kh, kw))
    if in_channels == 3:
        return _zoom(weight, factor), math.ceil(math.sqrt(out_channels)), True
    tiles = weight.reshape(out_channels * in_channels, 1, kh, kw)  # (C_out * C_in, 1, kh, kw)
    nrow = in_channels if in_channels > 1 else math.ceil(math.sqrt(out_channels))
    return _zoom(tiles, factor), nrow, False


# --------------------------------------------------------------------------- the logdir and metrics.jsonl


def check_logdir(logdir: str | os.PathLike[str]) -> str:
    """Create ``logdir`` if missing and check it can be written; return it as a str.

    Refused with a ValueError naming it: an empty name, a file in its place (or in the
    place of a folder above it), a folder that cannot be created or written.
    """
    fn = "Board"
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"{fn}: `logdir` must be a str or os.PathLike, got {type(logdir).__name__}")
    text = os.fspath(logdir)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{fn}: `logdir` (={text!r}) must name a folder")
    if os.path.exists(text) and not os.path.isdir(text):
        raise ValueError(f"{fn}: `logdir` (={text!r}) is a file, not a folder; choose another logdir")
    try:
        os.makedirs(text, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{fn}: `logdir` (={text!r}) cannot be created ({exc.strerror or exc})") from None
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=text, prefix=".convlab-write-check.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise ValueError(f"{fn}: `logdir` (={text!r}) is not writable ({exc.strerror or exc})") from None
    metrics = os.path.join(text, METRICS_FILE)
    if os.path.exists(metrics) and (os.path.isdir(metrics) or not os.access(metrics, os.W_OK)):
        raise ValueError(f"{fn}: `logdir` (={text!r}): {METRICS_FILE} there is not a writable file")
    return text


def read_metrics(logdir: str | os.PathLike[str], tag: str | None = None) -> list[dict[str, Any]]:
    """The records of ``logdir/metrics.jsonl`` in the order written (only ``tag``'s when given).

    Each is ``{"tag": str, "step": int, "epoch": int | None, "value": float, "wall_time": float}``.
    A last line cut short (a run killed while writing) is skipped; any other line that does
    not parse is a ValueError naming the file and the line number.
    """
    fn = "read_metrics"
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"{fn}: `logdir` must be a str or os.PathLike, got {type(logdir).__name__}")
    path = os.path.join(os.fspath(logdir), METRICS_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{fn}: {path!r} does not exist (no run has logged to {os.fspath(logdir)!r})")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not {"tag", "step", "value"} <= record.keys():
                raise ValueError("not a metrics record")
        except ValueError as exc:
            if number == len(lines):  # the unterminated last line of an interrupted write
                break
            raise ValueError(f"{fn}: {path!r} line {number} is not a metrics record ({exc}): {line[:80]!r}") from None
        if tag is None or record["tag"] == tag:
            records.append(record)
    return records


# --------------------------------------------------------------------------- the board


class Board:
    """One run's TensorBoard writer (tensorboardX ``SummaryWriter``) and its ``metrics.jsonl``.

    Parameters
    ----------
    logdir
        The run's folder (created when missing; :func:`check_logdir`).
    purge_step
        When resuming at this step: TensorBoard hides the events a previous writer left at
        steps >= ``purge_step``, and ``metrics.jsonl`` drops its records at those steps
        (rewritten atomically).
    flush_secs
        How often tensorboardX flushes its queue (``metrics.jsonl`` is flushed at every write).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, logdir: str | os.PathLike[str], *, purge_step: int | None = None, flush_secs: int = 30) -> None:
        self.logdir = check_logdir(logdir)
        if purge_step is not None:
            purge_step = _check_int("Board", "purge_step", purge_step, 0)
        flush_secs = _check_int("Board", "flush_secs", flush_secs, 1)
        writer_class = _summary_writer_class()
        self.metrics_path = os.path.join(self.logdir, METRICS_FILE)
        if purge_step is not None and os.path.exists(self.metrics_path):
            self._purge_metrics(purge_step)
        # tensorboardX names the event file by the second and the host: a second writer in the same second
        # (a quick resume) would truncate the first one's file. A nanosecond suffix keeps both, in order.
        self.writer = writer_class(logdir=self.logdir, purge_step=purge_step, flush_secs=flush_secs,
                                   filename_suffix=f".{time.time_ns()}")
        self._metrics = open(self.metrics_path, "a", encoding="utf-8")  # closed by close()
        self._session_end: Any = None
        self.closed = False

    # ----------------------------------------------------------------------- context

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Write everything queued to disk (event files and metrics.jsonl)."""
        self._check_open("flush")
        self.writer.flush()
        self._metrics.flush()

    def close(self) -> None:
        """Flush and close the files (again: a no-op)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._session_end is not None:
                self.writer._get_file_writer().add_summary(self._session_end)
            self.writer.close()
        finally:
            self._metrics.close()

    def _check_open(self, fn: str) -> None:
        if self.closed:
            raise ValueError(f"Board.{fn}: the board of {self.logdir!r} is closed")

    def _purge_metrics(self, purge_step: int) -> None:
        from .._files import atomic_writer

        kept = [r for r in read_metrics(self.logdir) if int(r["step"]) < purge_step]
        with atomic_writer(self.metrics_path, text=True) as f:
            for record in kept:
                f.write(json.dumps(record) + "\n")

    # ----------------------------------------------------------------------- scalars

    def _values(self, fn: str, values: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, float]:
        if values is not None and not isinstance(values, Mapping):
            raise TypeError(f"Board.{fn}: `values` must be a mapping of tag -> number, got {type(values).__name__}")
        merged = {**(values or {}), **more}
        out = {}
        for tag, value in merged.items():
            if not isinstance(tag, str) or not tag.strip():
                raise ValueError(f"Board.{fn}: a tag must be a non-empty str, got {tag!r}")
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(()).item()
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Board.{fn}: the value of {tag!r} must be a real number, got {_short(value)}")
            out[tag] = float(value)
        return out

    def _write_scalars(self, values: Mapping[str, float], x: int, step: int, epoch: int | None) -> None:
        wall_time = time.time()
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, x, walltime=wall_time)
            record = {"tag": tag, "step": step, "epoch": epoch, "value": value, "wall_time": wall_time}
            self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()

    def scalars(self, step: int, values: Mapping[str, Any] | None = None, /, *, epoch: int | None = None,
                **more: Any) -> None:
        """Log scalars at the optimizer step ``step``: ``board.scalars(10, {"loss/train": 0.3}, epoch=0)``.

        Tags that are not Python names go in the mapping (or ``**{"loss/train": 0.3}``).
        """
        self._check_open("scalars")
        step = _check_int("Board.scalars", "step", step, 0)
        if epoch is not None:
            epoch = _check_int("Board.scalars", "epoch", epoch, 0)
        self._write_scalars(self._values("scalars", values, more), step, step, epoch)

    def epoch_scalars(self, epoch: int, values: Mapping[str, Any] | None = None, /, *, step: int | None = None,
                      **more: Any) -> None:
        """Log per-epoch values under ``epoch/<tag>`` with the epoch as TensorBoard's x axis.

        ``metrics.jsonl`` records ``step`` (the optimizer step at the epoch's end, when given;
        else the epoch) and ``epoch``.
        """
        self._check_open("epoch_scalars")
        epoch = _check_int("Board.epoch_scalars", "epoch", epoch, 0)
        step = epoch if step is None else _check_int("Board.epoch_scalars", "step", step, 0)
        values_ = {f"epoch/{tag}": v for tag, v in self._values("epoch_scalars", values, more).items()}
        self._write_scalars(values_, epoch, step, epoch)

    def lr(self, step: int, lr: float | Sequence[float], *, epoch: int | None = None) -> None:
        """The learning rate: ``lr`` for the first parameter group, ``lr/group<i>`` for the others."""
        if isinstance(lr, (list, tuple, np.ndarray)):
            rates = list(np.asarray(lr, dtype=object).reshape(-1))
            if not rates:
                raise ValueError("Board.lr: `lr` is an empty list")
        else:
            rates = [lr]
        values = {("lr" if i == 0 else f"lr/group{i}"): rate for i, rate in enumerate(rates)}
        self.scalars(step, values, epoch=epoch)

    # ----------------------------------------------------------------------- images

    def _image(self, tag: str, grid: np.ndarray, step: int) -> np.ndarray:
        pixels = to_uint8(grid)
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        return pixels

    def images(self, step: int, batch: np.ndarray, *, tag: str = "inputs", nrow: int = 8, padding: int = 2,
               normalize: bool = True) -> np.ndarray:
        """An input batch ``(B, C, H, W)`` (C = 1 or 3) as one grid image; returns its uint8 pixels ``(H, W, 3)``.

        uint8 batches are read as 0..255; with ``normalize`` (default) the batch's min..max is
        stretched to the full range (normalised inputs are shown with their contrast).
        """
        self._check_open("images")
        step = _check_int("Board.images", "step", step, 0)
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(f"Board.images: `batch` must be (B, C, H, W) with C 1 or 3, got shape {batch.shape}; "
                             f"show other channel counts with feature_maps")
        if batch.dtype == np.uint8:
            batch = batch / 255.0
        return self._image(tag, image_grid(batch, nrow=nrow, padding=padding, normalize=normalize), step)

    def feature_maps(self, step: int, model: nn.Module, batch: np.ndarray, layers: Sequence[str], *,
                     padding: int = 1) -> dict[str, list[np.ndarray]]:
        """Each channel of each named layer's output, for each sample of ``batch``, as grey tiles.

        Tag ``features/<layer>/<i>`` for sample ``i``; each tile is scaled to its own range.
        The outputs come from :func:`capture_outputs` (evaluation mode, no gradients). Returns
        the uint8 pixels written, by layer.
        """
        self._check_open("feature_maps")
        step = _check_int("Board.feature_maps", "step", step, 0)
        outputs = capture_outputs(model, batch, layers)
        written: dict[str, list[np.ndarray]] = {}
        for name, out in outputs.items():
            if out.ndim != 4:
                raise ValueError(f"Board.feature_maps: the output of {name!r} has shape {out.shape}, not a feature "
                                 f"map (N, C, H, W); choose a convolution, pooling or activation layer")
            channels = out.shape[1]
            nrow = math.ceil(math.sqrt(channels))
            written[name] = [
                self._image(f"features/{name}/{i}", image_grid(sample[:, None], nrow=nrow, padding=padding,
                                                               normalize=True, scale_each=True), step)
                for i, sample in enumerate(out)  # sample: (C, H, W) -> C grey tiles (C, 1, H, W)
            ]
        return written

    def kernels(self, step: int, model: nn.Module, *, layer: str | None = None, padding: int = 1) -> np.ndarray:
        """The kernels of ``layer`` (default: the model's first Conv2d) as one image, tag ``kernels/<layer>``.

        RGB patches when the layer reads 3 channels, else one grey tile per (output, input)
        channel pair (:func:`kernel_tiles`). Returns the uint8 pixels written.
        """
        self._check_open("kernels")
        step = _check_int("Board.kernels", "step", step, 0)
        if layer is None:
            layer, module = _first_conv(model)
        else:
            module = model.get_submodule(layer)
            weight = module._parameters.get("weight")
            if weight is None or weight.data.ndim != 4:
                raise ValueError(f"Board.kernels: {layer!r} ({type(module).__name__}) has no 2-d convolution weight")
        tiles, nrow, scale_each = kernel_tiles(module.weight.data)
        grid = image_grid(tiles, nrow=nrow, padding=padding, normalize=True, scale_each=scale_each)
        return self._image(f"kernels/{layer}", grid, step)

    # ----------------------------------------------------------------------- histograms and configuration

    def histograms(self, step: int, model: nn.Module, *, weights: bool = True, gradients: bool = True) -> None:
        """Histograms of each parameter (``weights/<name>``) and of its gradient (``gradients/<name>``).

        Non-finite entries are left out of a histogram (TensorBoard's buckets need finite values);
        a parameter without a gradient has no gradient histogram.
        """
        self._check_open("histograms")
        step = _check_int("Board.histograms", "step", step, 0)
        weights = as_bool("Board.histograms", "weights", weights)
        gradients = as_bool("Board.histograms", "gradients", gradients)
        for name, param in model.named_parameters():
            for kind, array, wanted in (("weights", param.data, weights), ("gradients", param.grad, gradients)):
                if not wanted or array is None:
                    continue
                values = np.asarray(array, dtype=np.float64).reshape(-1)
                values = values[np.isfinite(values)]
                if values.size:
                    self.writer.add_histogram(f"{kind}/{name}", values, step)

    def config(self, config: Mapping[str, Any], *, metrics: Sequence[str] = ("accuracy/test", "loss/test")) -> None:
        """The run's configuration: as JSON text (tag ``config``) and as HParams hyperparameters.

        Values that are not bool/int/float/str are shown as text; nested mappings are flattened
        (``optimizer.lr``). ``metrics`` are the scalar tags the HParams dashboard lists beside them.
        """
        self._check_open("config")
        if not isinstance(config, Mapping):
            raise TypeError(f"Board.config: `config` must be a mapping, got {type(config).__name__}")
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        self.writer.add_text("config", "```json\n" + text + "\n```", 0)
        from tensorboardX.summary import hparams

        flat = {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value, default=str)
                for key, value in _flatten(config).items()}
        experiment, session_start, session_end = hparams(flat, {tag: 0.0 for tag in metrics})
        writer = self.writer._get_file_writer()
        writer.add_summary(experiment)
        writer.add_summary(session_start)
        self._session_end = session_end  # written by close(): the run ended


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, np.generic):
            out[name] = value.item()
        else:
            out[name] = value
    return out
