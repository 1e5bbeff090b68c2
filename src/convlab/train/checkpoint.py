"""Checkpoints in safetensors: the model's weights under torch's names, the optimizer, the schedule, the RNG.

A checkpoint is one `safetensors <https://huggingface.co/docs/safetensors>`_ file,
written with the package's NumPy API and read without ever unpickling anything:

* **tensors**: the model's ``state_dict()`` under its own keys, exactly the keys
  torch's ``state_dict()`` has for the :func:`convlab.interop.to_torch` mirror
  (``conv1.weight``, ``bn1.running_mean``, ``bn1.num_batches_tracked`` ...), so
  ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in ck.model_state.items()})``
  works unchanged; plus the arrays of the optimizer's state under the reserved
  prefix ``__optimizer__.`` (``__optimizer__.state.3.exp_avg``) and any array of the
  scheduler's state under ``__scheduler__.``. No module path starts with a reserved
  prefix (:func:`save_checkpoint` refuses a model whose keys would);
* **metadata** (str -> str, JSON values): ``format`` (``"convlab.checkpoint"``),
  ``format_version``, ``model`` (class, zoo name and configuration), ``epoch``,
  ``step``, ``rng_state`` (NumPy generators as their ``bit_generator.state``),
  ``optimizer`` (class and torch-layout ``state_dict()`` with every array replaced
  by a reference to its tensor), ``scheduler`` (same), ``config`` (the run's
  configuration) and ``convlab_version``.

The JSON keeps what plain JSON would lose: tuples (``betas``), dicts with
non-string keys (the optimizer's ``{0: {...}}``) and NumPy dtypes are tagged
(``{"__tuple__": [...]}``, ``{"__items__": [[k, v], ...]}``, ``{"__dtype__": "float32"}``),
and floats are written with ``repr``, so every number comes back bit for bit.

The file is written atomically (:func:`convlab._files.atomic_writer`: a temporary
file in the same folder, flush, ``fsync``, ``os.replace``): a crash leaves the
previous checkpoint as it was. An existing file is replaced only with
``overwrite=True`` (``convlab train --overwrite``).

Loading (:func:`load_checkpoint`, :func:`restore`) checks every key, shape and
dtype against the model and lists every difference in one ``ValueError``.

Examples
--------
>>> import os, tempfile
>>> from convlab import models
>>> model = models.create("lenet", rng=0)
>>> path = os.path.join(tempfile.mkdtemp(), "lenet.safetensors")
>>> save_checkpoint(path, model, epoch=3, step=120, model_name="lenet")  # doctest: +SKIP
>>> checkpoint = load_checkpoint(path)  # doctest: +SKIP
>>> checkpoint.epoch, checkpoint.step, checkpoint.model_name  # doctest: +SKIP
(3, 120, 'lenet')
>>> restore(checkpoint, models.create("lenet", rng=1))  # doctest: +SKIP

(The examples need the ``train`` extra, safetensors; tests/test_checkpoint.py runs them.)
"""

from __future__ import annotations

import json
import numbers
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import nn
from .._files import atomic_writer
from ..spec import as_bool

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OPTIMIZER_PREFIX",
    "RESERVED_PREFIXES",
    "SCHEDULER_PREFIX",
    "Checkpoint",
    "check_checkpoint_path",
    "generator_from_state",
    "load_checkpoint",
    "restore",
    "save_checkpoint",
    "state_differences",
]

FORMAT = "convlab.checkpoint"
FORMAT_VERSION = 1
OPTIMIZER_PREFIX = "__optimizer__."
SCHEDULER_PREFIX = "__scheduler__."
RESERVED_PREFIXES = (OPTIMIZER_PREFIX, SCHEDULER_PREFIX)

_INSTALL = 'pip install "convlab[train]"'
_TAGS = ("__tuple__", "__items__", "__tensor__", "__dtype__")


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:  # pragma: no cover - the train extra is installed in the test environment
        raise ImportError(f"convlab checkpoints need safetensors: {_INSTALL}") from None
    return safetensors.numpy


# --------------------------------------------------------------------------- the checkpoint


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` read from a file (arrays are NumPy arrays, the rest JSON values).

    ``optimizer_state`` and ``scheduler_state`` have torch's ``state_dict()`` layout
    (``{"state": {0: {"step": 3.0, "exp_avg": array}}, "param_groups": [...]}``), or are
    None when the checkpoint holds none. ``rng_state`` is what was saved, with every NumPy
    generator replaced by its ``bit_generator.state`` dict (:func:`generator_from_state`
    makes a generator of one). ``model_name``/``model_config`` are the zoo name and the
    ``convlab.models.create`` configuration when the saver gave them (:meth:`build_model`).
    ``format_version`` is None for a plain safetensors weights file (no convlab metadata):
    only ``model_state`` is filled then.
    """

    path: str
    model_state: OrderedDict[str, np.ndarray]
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    epoch: int = 0
    step: int = 0
    rng_state: Any = None
    config: Any = None
    model_class: str | None = None
    model_name: str | None = None
    model_config: dict[str, Any] | None = None
    optimizer_class: str | None = None
    scheduler_class: str | None = None
    format_version: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def build_model(self, **overrides: Any) -> nn.Module:
        """``convlab.models.create(model_name, **model_config, **overrides)`` with the checkpoint's weights."""
        from .. import models

        if not self.model_name:
            raise ValueError(
                f"Checkpoint.build_model: {self.path!r} does not name a zoo model (it was saved from "
                f"{self.model_class or 'an unknown model'} without model_name); build the model yourself and "
                f"call restore(checkpoint, model)"
            )
        config = {k: v for k, v in (self.model_config or {}).items() if k != "rng"}
        model = models.create(self.model_name, **{**config, **overrides})
        restore(self, model)
        return model


# --------------------------------------------------------------------------- JSON with tuples, int keys, arrays


def _encode(value: Any, where: str, tensors: dict[str, np.ndarray] | None, prefix: str, fn: str) -> Any:
    """``value`` as JSON-able data; arrays go to ``tensors`` under ``prefix + path`` (or are refused)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)  # repr round-trips every float64 (and float32 widens exactly)
    if isinstance(value, np.ndarray):
        if tensors is None:
            raise TypeError(f"{fn}: {where} is a NumPy array, which this part of a checkpoint cannot hold "
                            f"(JSON values only)")
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{fn}: {where} is an array of dtype {value.dtype}; checkpoints hold bool, int and "
                            f"float arrays")
        key = prefix + where
        tensors[key] = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        return {"__tensor__": key}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, np.random.Generator):
        return _encode(value.bit_generator.state, where, tensors, prefix, fn)
    if isinstance(value, np.random.BitGenerator):
        return _encode(value.state, where, tensors, prefix, fn)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, _join(where, i), tensors, prefix, fn) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, _join(where, i), tensors, prefix, fn) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        plain = all(isinstance(k, str) for k in value) and not any(k in _TAGS for k in value)
        if plain:
            return {k: _encode(v, _join(where, k), tensors, prefix, fn) for k, v in value.items()}
        return {"__items__": [[_encode(k, _join(where, "<key>"), None, prefix, fn),
                               _encode(v, _join(where, k), tensors, prefix, fn)] for k, v in value.items()]}
    raise TypeError(
        f"{fn}: {where} is a {type(value).__name__} ({_short(value)}), which a checkpoint cannot hold: "
        f"only None, bools, numbers, strings, lists, tuples, dicts, NumPy dtypes, generators and arrays "
        f"(nothing is pickled)"
    )


def _join(where: str, key: object) -> str:
    """The dotted place of ``key`` inside ``where`` (``state.3.exp_avg``), for tensor names and messages."""
    return f"{where}.{key}" if where else str(key)


def _decode(value: Any, tensors: Mapping[str, np.ndarray], where: str) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors, where) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "__tuple__":
                return tuple(_decode(v, tensors, where) for v in inner)
            if tag == "__items__":
                return {_hashable(_decode(k, tensors, where)): _decode(v, tensors, where) for k, v in inner}
            if tag == "__dtype__":
                return np.dtype(inner)
            if tag == "__tensor__":
                if inner not in tensors:
                    raise ValueError(f"the metadata {where!r} refers to the tensor {inner!r}, which the file lacks")
                return tensors[inner]
        return {k: _decode(v, tensors, where) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, separators=(",", ":"))


# --------------------------------------------------------------------------- argument checks


def _check_path(fn: str, path: object) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{fn}: `path` must be a str or os.PathLike, got {type(path).__name__} ({_short(path)})")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{fn}: `path` (={text!r}) must name a file")
    return text


def check_checkpoint_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Refuse, before any training, a checkpoint path that could not be written; return it as a str.

    The folder is created when missing. Refused (ValueError naming the path): a folder in
    the file's place, a path whose folder cannot be created or written, and an existing
    file unless ``overwrite=True`` (``--overwrite``).
    """
    fn = "save_checkpoint"
    text = _check_path(fn, path)
    overwrite = as_bool(fn, "overwrite", overwrite)
    if os.path.isdir(text) or text.endswith(("/", os.sep)):
        raise ValueError(f"{fn}: `path` (={text!r}) is a folder; name a file, e.g. "
                         f"{os.path.join(text, 'checkpoint.safetensors')!r}")
    if os.path.lexists(text) and not overwrite:
        raise ValueError(f"{fn}: {text!r} exists; pass overwrite=True (convlab train --overwrite) to replace it, "
                         f"or choose another path")
    folder = os.path.dirname(os.path.abspath(text))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{fn}: cannot create the folder {folder!r} of {text!r} ({exc.strerror or exc})") from None
    import tempfile

    try:  # the way the checkpoint will be written: a temporary file in the same folder
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{os.path.basename(text)}.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise ValueError(f"{fn}: cannot write {text!r}: the folder {folder!r} is not writable "
                         f"({exc.strerror or exc})") from None
    return text


def _check_count(fn: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: `{name}` must be an int, got {_short(value)} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{fn}: `{name}` (={value}) must be >= 0")
    return int(value)


def _check_stateful(fn: str, name: str, value: object) -> None:
    for method in ("state_dict", "load_state_dict"):
        if not callable(getattr(value, method, None)):
            raise TypeError(f"{fn}: `{name}` must have state_dict() and load_state_dict() (a convlab.optim "
                            f"object), got {type(value).__name__}")


# --------------------------------------------------------------------------- saving


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    epoch: int = 0,
    step: int = 0,
    rng_state: Any = None,
    config: Any = None,
    model_name: str | None = None,
    model_config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Write the model, the optimizer's and the schedule's state and the run's position to ``path``.

    Parameters
    ----------
    path
        The file (``.safetensors`` by convention); its folder is created when missing.
    model
        A ``convlab.nn.Module``; its ``state_dict()`` becomes the tensors, under torch's keys.
    optimizer, scheduler
        Objects with torch's ``state_dict()`` layout (``convlab.optim``), or None.
    epoch, step
        Where the run is: completed epochs and optimizer steps (ints >= 0).
    rng_state
        JSON-able data in which NumPy generators may appear (saved as their
        ``bit_generator.state``), e.g. ``{"dropout": generator}``; see :func:`restore`'s ``rng``.
    config
        The run's configuration (JSON-able: what ``convlab train`` was asked), for the record.
    model_name, model_config
        The zoo name and the ``convlab.models.create`` keywords, so that
        :meth:`Checkpoint.build_model` can rebuild the model.
    overwrite
        Replace an existing file (otherwise ValueError naming it).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        An existing file without ``overwrite=True``, a folder in the file's place, an unwritable
        folder, a model built without weights or whose keys start with a reserved prefix.
    TypeError
        A value that cannot be stored (named by its place, e.g. ``config.callback``).
    """
    fn = "save_checkpoint"
    text = _check_path(fn, path)
    overwrite = as_bool(fn, "overwrite", overwrite)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: `model` must be a convlab.nn.Module, got {type(model).__name__}")
    epoch = _check_count(fn, "epoch", epoch)
    step = _check_count(fn, "step", step)
    if optimizer is not None:
        _check_stateful(fn, "optimizer", optimizer)
    if scheduler is not None:
        _check_stateful(fn, "scheduler", scheduler)
    if model_name is not None and not isinstance(model_name, str):
        raise TypeError(f"{fn}: `model_name` must be a str or None, got {type(model_name).__name__}")
    if model_config is not None and not isinstance(model_config, Mapping):
        raise TypeError(f"{fn}: `model_config` must be a mapping or None, got {type(model_config).__name__}")
    check_checkpoint_path(text, overwrite=overwrite)

    tensors: dict[str, np.ndarray] = {}
    for key, array in model.state_dict().items():
        if key.startswith(RESERVED_PREFIXES):
            raise ValueError(f"{fn}: the model's key {key!r} starts with a prefix checkpoints reserve "
                             f"{RESERVED_PREFIXES}; rename that module")
        if nn.is_weightless(array):
            raise ValueError(f"{fn}: the model was built without weights (inside convlab.nn.skeleton()): "
                             f"{key!r} has no values")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{fn}: the model's {key!r} has dtype {array.dtype}; checkpoints hold bool, int and "
                            f"float arrays")
        tensors[key] = np.asarray(array, order="C")

    model_info: dict[str, Any] = {"class": type(model).__name__, "name": model_name}
    model_info["config"] = dict(model_config) if model_config is not None else None
    for attribute in ("input_size", "num_classes"):  # what a zoo model records about itself
        if hasattr(model, attribute):
            model_info[attribute] = getattr(model, attribute)
    from importlib import metadata as package_metadata

    try:
        version = package_metadata.version("convlab")
    except package_metadata.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        version = "unknown"
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "convlab_version": version,
        "epoch": str(epoch),
        "step": str(step),
        "model": _dumps(_encode(model_info, "model", None, "", fn)),
        "model_keys": _dumps(list(tensors)),  # the state_dict's order (safetensors sorts its header)
        "rng_state": _dumps(_encode(rng_state, "rng_state", None, "", fn)),
        "config": _dumps(_encode(config, "config", None, "", fn)),
    }
    for name, obj, prefix in (("optimizer", optimizer, OPTIMIZER_PREFIX), ("scheduler", scheduler, SCHEDULER_PREFIX)):
        if obj is None:
            continue
        state = obj.state_dict()
        if not isinstance(state, Mapping):
            raise TypeError(f"{fn}: {name}.state_dict() returned a {type(state).__name__}, not a dict")
        encoded = {"class": type(obj).__name__, "state": _encode(state, "", tensors, prefix, fn)}
        metadata[name] = _dumps(encoded)

    data = _safetensors_numpy().save(tensors, metadata=metadata)
    try:
        with atomic_writer(text, overwrite=overwrite) as f:
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):  # in 1 MiB pieces
                f.write(view[start:start + (1 << 20)])
    except FileExistsError:
        raise ValueError(f"{fn}: {text!r} exists; pass overwrite=True (convlab train --overwrite) to replace it, "
                         f"or choose another path") from None
    return text


# --------------------------------------------------------------------------- loading


def _not_a_checkpoint(fn: str, path: str, reason: str) -> ValueError:
    return ValueError(f"{fn}: {path!r} is not a safetensors checkpoint ({reason})")


def _sniff(path: str) -> str | None:
    """A hint about what a file that is not safetensors looks like (pickles are never opened)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        return ("it is a zip archive, like PyTorch's torch.save files, which hold pickles that convlab never "
                "loads; in torch, save the weights with safetensors.torch.save_file(model.state_dict(), path)")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle, which convlab never loads (it can run code)"
    if head.startswith(b"\x93NUMPY"):
        return "it is a NumPy .npy file"
    return None


def load_checkpoint(path: str | os.PathLike[str], model: nn.Module | None = None) -> Checkpoint:
    """Read a checkpoint (no pickle: safetensors' header is JSON, the arrays raw bytes).

    Parameters
    ----------
    path
        A file written by :func:`save_checkpoint` (or any safetensors file of weights:
        then only ``model_state`` is filled).
    model
        If given, the checkpoint's weights are checked against it (every key, shape and
        dtype; :func:`state_differences`) and a mismatch raises. Nothing is loaded into it:
        :func:`restore` does that.

    Raises
    ------
    ValueError
        A missing file, a folder, a file that is not safetensors (random bytes, a truncated
        file, a pickle), a newer format version, metadata that does not parse, or weights that
        do not fit ``model`` (every difference listed).
    """
    fn = "load_checkpoint"
    text = _check_path(fn, path)
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: `model` must be a convlab.nn.Module or None, got {type(model).__name__}")
    if not os.path.exists(text):
        raise ValueError(f"{fn}: `path` (={text!r}) does not exist")
    if os.path.isdir(text):
        raise ValueError(f"{fn}: `path` (={text!r}) is a folder, not a checkpoint file")
    hint = _sniff(text)
    if hint is not None:
        raise _not_a_checkpoint(fn, text, hint)
    _safetensors_numpy()
    from safetensors import safe_open

    try:
        with safe_open(text, framework="np") as f:
            metadata = dict(f.metadata() or {})
            tensors = OrderedDict((key, f.get_tensor(key)) for key in f.keys())
    except Exception as exc:  # safetensors' errors (SafetensorError, a bad header) carry no common base class
        size = os.path.getsize(text)
        raise _not_a_checkpoint(fn, text, f"{type(exc).__name__}: {exc}; the file has {size} bytes") from None

    version = metadata.get("format_version")
    if metadata.get("format") != FORMAT:
        checkpoint = Checkpoint(path=text, model_state=tensors, metadata=metadata)  # a plain weights file
    else:
        try:
            number = int(version)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _not_a_checkpoint(fn, text, f"format_version {version!r} is not an int") from None
        if number > FORMAT_VERSION:
            raise ValueError(f"{fn}: {text!r} has checkpoint format version {number}; this convlab reads versions "
                             f"up to {FORMAT_VERSION}: upgrade convlab")
        checkpoint = _parse(fn, text, metadata, tensors, number)
    if model is not None:
        _raise_differences(fn, checkpoint, model)
    return checkpoint


def _parse(fn: str, path: str, metadata: dict[str, str], tensors: OrderedDict, version: int) -> Checkpoint:
    def field_(name: str, default: Any = None) -> Any:
        if name not in metadata:
            return default
        try:
            return _decode(json.loads(metadata[name]), tensors, name)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"{fn}: {path!r}: the metadata {name!r} does not parse ({exc})") from None

    model_state = OrderedDict((k, v) for k, v in tensors.items() if not k.startswith(RESERVED_PREFIXES))
    order = field_("model_keys")
    if isinstance(order, list) and sorted(order) == sorted(model_state):
        model_state = OrderedDict((key, model_state[key]) for key in order)  # the model's state_dict order
    model_info = field_("model", {}) or {}
    optimizer = field_("optimizer")
    scheduler = field_("scheduler")
    counts = {}
    for name in ("epoch", "step"):
        try:
            counts[name] = int(metadata.get(name, "0"))
        except ValueError:
            raise ValueError(f"{fn}: {path!r}: the metadata {name!r} (={metadata[name]!r}) is not an int") from None
    return Checkpoint(
        path=path,
        model_state=model_state,
        optimizer_state=None if optimizer is None else optimizer["state"],
        scheduler_state=None if scheduler is None else scheduler["state"],
        epoch=counts["epoch"],
        step=counts["step"],
        rng_state=field_("rng_state"),
        config=field_("config"),
        model_class=model_info.get("class"),
        model_name=model_info.get("name"),
        model_config=model_info.get("config"),
        optimizer_class=None if optimizer is None else optimizer.get("class"),
        scheduler_class=None if scheduler is None else scheduler.get("class"),
        format_version=version,
        metadata=metadata,
    )


# --------------------------------------------------------------------------- checks and restoring


def state_differences(model: nn.Module, state: Mapping[str, np.ndarray]) -> list[str]:
    """Every way ``state`` (name -> array) does not fit ``model``: missing and unexpected keys, shapes, dtypes.

    An empty list means :func:`restore` loads it exactly (no cast, no key left over).
    """
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes, dtypes = [], []
    for key, target in expected.items():
        if key not in state:
            continue
        value = state[key]
        if tuple(value.shape) != tuple(target.shape):
            shapes.append(f"{key!r} is {tuple(value.shape)} in the checkpoint, {tuple(target.shape)} in the model")
        elif np.dtype(value.dtype) != target.dtype:
            dtypes.append(f"{key!r} is {np.dtype(value.dtype)} in the checkpoint, {target.dtype} in the model")
    out = []
    if missing:
        out.append(f"{len(missing)} missing key(s) (in the model, not in the checkpoint): {missing}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected key(s) (in the checkpoint, not in the model): {unexpected}")
    if shapes:
        out.append(f"{len(shapes)} shape mismatch(es): " + "; ".join(shapes))
    if dtypes:
        out.append(f"{len(dtypes)} dtype mismatch(es): " + "; ".join(dtypes)
                   + " (convert the model first, e.g. model.to('float64'))")
    return out


def _saved_from(checkpoint: Checkpoint) -> str:
    if checkpoint.model_name and checkpoint.model_class:
        return f"saved from {checkpoint.model_name!r} ({checkpoint.model_class})"
    if checkpoint.model_class:
        return f"saved from a {checkpoint.model_class}"
    return "weights"


def _raise_differences(fn: str, checkpoint: Checkpoint, model: nn.Module) -> None:
    differences = state_differences(model, checkpoint.model_state)
    if differences:
        raise ValueError(
            f"{fn}: {checkpoint.path!r} ({_saved_from(checkpoint)}) does not fit the model ({type(model).__name__}): "
            + "; ".join(differences)
        )


def _optimizer_differences(checkpoint: Checkpoint, optimizer: Any) -> list[str]:
    """The saved optimizer state against ``optimizer``: class, groups, parameter counts, state shapes."""
    saved = checkpoint.optimizer_state
    out = []
    if checkpoint.optimizer_class and checkpoint.optimizer_class != type(optimizer).__name__:
        out.append(f"the optimizer is {type(optimizer).__name__}, the checkpoint's is {checkpoint.optimizer_class}")
    groups = getattr(optimizer, "param_groups", None)
    saved_groups = saved.get("param_groups", []) if isinstance(saved, Mapping) else []
    if groups is None:
        return out
    if len(groups) != len(saved_groups):
        out.append(f"the optimizer has {len(groups)} parameter group(s), the checkpoint {len(saved_groups)}")
        return out
    params = []
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups, strict=True)):
        ours = list(group.get("params", []))
        theirs = list(saved_group.get("params", []))
        if len(ours) != len(theirs):
            out.append(f"parameter group {i} has {len(ours)} parameters in the optimizer, {len(theirs)} in the "
                       f"checkpoint")
        params += list(zip(theirs, ours, strict=False))
    shapes = {index: tuple(np.shape(getattr(param, "data", param))) for index, param in params}
    for index, entry in (saved.get("state", {}) if isinstance(saved, Mapping) else {}).items():
        if index not in shapes:
            out.append(f"the checkpoint has optimizer state for parameter {index!r}, which no group lists")
            continue
        for name, value in (entry.items() if isinstance(entry, Mapping) else ()):
            if isinstance(value, np.ndarray) and value.ndim > 0 and tuple(value.shape) != shapes[index]:
                out.append(f"optimizer state {index}.{name} is {tuple(value.shape)} in the checkpoint, the "
                           f"parameter {shapes[index]}")
    return out


def generator_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A new ``numpy.random.Generator`` in the saved ``bit_generator.state`` (PCG64, Philox, ...)."""
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    bit_generator_class = getattr(np.random, name, None) if isinstance(name, str) else None
    if not (isinstance(bit_generator_class, type) and issubclass(bit_generator_class, np.random.BitGenerator)):
        raise ValueError(f"generator_from_state: `state` must be a bit_generator.state dict naming a NumPy bit "
                         f"generator, got {_short(state)}")
    bit_generator = bit_generator_class()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)


def _rng_pairs(target: Any, state: Any, where: str, out: list) -> None:
    """Pair each generator in ``target`` with its state in ``state`` (same structure), checking first."""
    if isinstance(target, np.random.Generator):
        if not (isinstance(state, Mapping) and state.get("bit_generator") == type(target.bit_generator).__name__):
            raise ValueError(f"restore: the checkpoint's rng_state{where} ({_short(state)}) is not a "
                             f"{type(target.bit_generator).__name__} state")
        out.append((target, state))
    elif isinstance(target, Mapping):
        if not isinstance(state, Mapping):
            raise ValueError(f"restore: `rng`{where} is a mapping, the checkpoint's rng_state{where} is "
                             f"{_short(state)}")
        for key, value in target.items():
            if key not in state:
                raise ValueError(f"restore: the checkpoint's rng_state{where} has no {key!r} "
                                 f"(it has {list(state)})")
            _rng_pairs(value, state[key], f"{where}[{key!r}]", out)
    else:
        raise TypeError(f"restore: `rng`{where} must be a numpy.random.Generator or a mapping of them, got "
                        f"{type(target).__name__}")


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


def restore(
    checkpoint: Checkpoint,
    model: nn.Module | None,
    optimizer: Any = None,
    scheduler: Any = None,
    *,
    rng: Any = None,
) -> None:
    """Load a checkpoint into the objects: weights, optimizer and scheduler state, generators.

    Everything is checked before anything is written, so a refusal leaves every object as it
    was: the weights' keys, shapes and dtypes (every difference listed in one ValueError), the
    optimizer's class, groups and state shapes, and that the checkpoint holds what is asked for.
    ``rng`` is a ``numpy.random.Generator`` or a mapping of them with the structure of the saved
    ``rng_state``; each gets its saved state, in place.
    """
    fn = "restore"
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"{fn}: `checkpoint` must be a Checkpoint (from load_checkpoint), got "
                        f"{type(checkpoint).__name__}")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: `model` must be a convlab.nn.Module or None, got {type(model).__name__}")
    problems = []
    if model is not None:
        problems += state_differences(model, checkpoint.model_state)
    for name, obj, state in (("optimizer", optimizer, checkpoint.optimizer_state),
                             ("scheduler", scheduler, checkpoint.scheduler_state)):
        if obj is None:
            continue
        _check_stateful(fn, name, obj)
        if state is None:
            problems.append(f"the checkpoint holds no {name} state")
    if optimizer is not None and checkpoint.optimizer_state is not None:
        problems += _optimizer_differences(checkpoint, optimizer)
    if (scheduler is not None and checkpoint.scheduler_class
            and checkpoint.scheduler_class != type(scheduler).__name__):
        problems.append(f"the scheduler is {type(scheduler).__name__}, the checkpoint's is "
                        f"{checkpoint.scheduler_class}")
    pairs: list = []
    if rng is not None:
        if checkpoint.rng_state is None:
            problems.append("the checkpoint holds no rng_state")
        else:
            _rng_pairs(rng, checkpoint.rng_state, "", pairs)
    if problems:
        raise ValueError(
            f"{fn}: {checkpoint.path!r} ({_saved_from(checkpoint)}) does not fit"
            f"{' the model (' + type(model).__name__ + ')' if model is not None else ''}: " + "; ".join(problems)
        )
    if model is not None:
        model.load_state_dict(checkpoint.model_state)
    if optimizer is not None:
        optimizer.load_state_dict(_copy(checkpoint.optimizer_state))
    if scheduler is not None:
        scheduler.load_state_dict(_copy(checkpoint.scheduler_state))
    for generator, state in pairs:
        generator.bit_generator.state = dict(state)

