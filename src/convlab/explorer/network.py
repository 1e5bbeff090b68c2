"""The network view's computation: the analysis' layer table, the planner's choice per convolution, and one
layer's feature maps, kernels, theoretical and effective receptive fields for one image.

Models: every zoo name (analysed inside :func:`convlab.nn.skeleton`, built with seeded random weights only
when a layer's pictures are asked for), a checkpoint written by ``convlab train`` and a model file given on
the command line (``path.py:factory``, a ``convlab.nn`` or ``torch.nn`` module). Nothing of a request is
ever imported or executed: the request names a model, the server holds them.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import models, nn
from ..analysis import analyze, effective_receptive_field
from ..data import open_dataset
from ..viz.figures import feature_map_arrays, layer_module, receptive_field_boxes
from . import images

#: Largest input the layer table analyses, and the largest one a forward pass (feature maps, ERF) runs on.
MAX_ANALYSIS_ELEMENTS = 3 * 1024 * 1024
MAX_FORWARD_ELEMENTS = 3 * 256 * 256
MAX_CHANNELS = 4
#: Models with more parameters are analysed but not built (their weights would take too much memory).
MAX_BUILD_PARAMETERS = 150_000_000
DATASET = "fashion-mnist-mini"


class NetworkError(ValueError):
    """A refusal naming the request field it is about (``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Entry:
    """A model the server holds: a zoo name, or one given on the command line."""

    name: str
    description: str
    input_size: tuple[int, int, int]
    source: str  # 'zoo', 'checkpoint' or 'file'
    fixed_input: bool = False
    model: Any = None  # the built model (checkpoint / file)
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_factory(spec: str) -> Any:
    """``path.py:factory`` -> ``factory()`` (a command-line option only: this runs the file's code)."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        raise ValueError(f"--model: {spec!r} must be path.py:factory (a Python file and a function in it)")
    module_spec = importlib.util.spec_from_file_location("convlab_explorer_user_model", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--model: cannot load {path!r}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"--model: {path!r} has no function {name!r}")
    return factory()


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


class ModelStore:
    """The zoo and the command line's models; built models cached (the last two) with a lock each."""

    def __init__(self, model: str | Any | None = None, checkpoint: str | None = None) -> None:
        self.entries: dict[str, Entry] = {}
        self._built: OrderedDict[tuple[str, tuple[int, ...]], Entry] = OrderedDict()
        self._reports: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._catalog: list[dict[str, Any]] | None = None
        if checkpoint is not None:
            from ..train import load_checkpoint

            loaded = load_checkpoint(checkpoint)
            built = loaded.build_model()
            size = tuple(int(v) for v in built.input_size)
            self.entries["cli:checkpoint"] = Entry("cli:checkpoint", f"{loaded.model_name} from {checkpoint} "
                                                   f"(epoch {loaded.epoch}, step {loaded.step})", size,
                                                   "checkpoint", True, built)
        if model is not None:
            built = load_factory(model) if isinstance(model, str) else model
            if _is_torch(built):
                import convlab.interop  # noqa: F401  (registers the analysis' and the ERF's torch readers)
            elif not isinstance(built, nn.Module):
                raise TypeError(f"--model: the factory returned {type(built).__name__}, not a convlab.nn or "
                                "torch.nn module")
            size = tuple(int(v) for v in getattr(built, "input_size", (3, 224, 224)))
            label = model if isinstance(model, str) else type(built).__name__
            self.entries["cli:model"] = Entry("cli:model", f"{type(built).__name__} from {label}", size, "file",
                                              False, built)

    # ---- listing
    def catalog(self) -> list[dict[str, Any]]:
        if self._catalog is None:
            rows = [{"name": e.name, "description": e.description, "input_size": list(e.input_size),
                     "source": e.source, "fixed_input": e.fixed_input} for e in self.entries.values()]
            for name in models.list():
                config = models.defaults(name)
                rows.append({"name": name, "description": models.describe(name),
                             "input_size": list(config["input_size"]), "source": "zoo", "fixed_input": False})
            self._catalog = rows
        return self._catalog

    def _entry(self, name: str) -> Entry | None:
        if name in self.entries:
            return self.entries[name]
        if name.lower() in models.list():
            return None
        raise NetworkError("model", f"`model` (={name!r}) is not a zoo model (convlab models lists them) nor "
                                    f"one given on the command line ({', '.join(self.entries) or 'none'})")

    def _check_size(self, name: str, size: tuple[int, ...], limit: int) -> None:
        c = size[0]
        if c > MAX_CHANNELS:
            raise NetworkError("input_size", f"`input_size` has {c} channels, more than the limit of "
                                             f"{MAX_CHANNELS}")
        if math.prod(size) > limit:
            raise NetworkError("input_size", f"`input_size` {'x'.join(map(str, size))} has {math.prod(size)} "
                                             f"elements, more than the limit of {limit}")
        entry = self.entries.get(name)
        if entry is not None and entry.fixed_input and tuple(size) != entry.input_size:
            raise NetworkError("input_size", f"`input_size` must be {list(entry.input_size)} for {name} (its "
                                             "weights were trained at that size)")

    # ---- the analysis
    def analysis_target(self, name: str, size: tuple[int, ...]) -> Any:
        """What :func:`convlab.analysis.analyze` takes: the held model or the zoo name."""
        entry = self._entry(name)
        if entry is None:
            return name.lower()
        return entry.model

    def report(self, name: str, size: tuple[int, ...]) -> Any:
        """The analysis of the model at ``size`` (the last few kept: a layer view asks for it every click)."""
        self._check_size(name, size, MAX_ANALYSIS_ELEMENTS)
        target = self.analysis_target(name, size)
        key = (name, tuple(size))
        with self._lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                return self._reports[key]
        try:
            report = analyze(target, (1, *size))
        except (ValueError, TypeError) as exc:
            raise NetworkError("input_size", f"{name} at input {list(size)}: {exc}") from None
        with self._lock:
            self._reports[key] = report
            while len(self._reports) > 8:
                self._reports.popitem(last=False)
        return report

    def check_forward(self, name: str, size: tuple[int, ...]) -> None:
        """Refuse an input larger than a forward pass may take (before any analysis or build)."""
        self._check_size(name, size, MAX_FORWARD_ELEMENTS)

    # ---- built models
    def built(self, name: str, size: tuple[int, ...]) -> Entry:
        """A model with weights: the held one, or the zoo's with seeded random weights (rng 0)."""
        self._check_size(name, size, MAX_FORWARD_ELEMENTS)
        entry = self._entry(name)
        if entry is not None:
            if entry.source == "file" and _is_torch(entry.model):
                with self._lock:
                    if not hasattr(entry, "converted"):
                        from ..interop.torch import from_torch

                        try:
                            entry.converted = from_torch(entry.model)  # type: ignore[attr-defined]
                        except (TypeError, ValueError) as exc:
                            entry.converted = exc  # type: ignore[attr-defined]
                if isinstance(entry.converted, Exception):  # type: ignore[attr-defined]
                    raise NetworkError("model", f"the torch model cannot run on convlab's engine for pictures: "
                                                f"{entry.converted}")  # type: ignore[attr-defined]
                return Entry(entry.name, entry.description, tuple(size), "file", False,
                             entry.converted, entry.lock)  # type: ignore[attr-defined]
            return entry
        key = (name.lower(), tuple(size))
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key]
            count = models.count_parameters(name.lower(), input_size=tuple(size))
            if count > MAX_BUILD_PARAMETERS:
                raise NetworkError("model", f"{name} has {count} parameters, more than the limit of "
                                            f"{MAX_BUILD_PARAMETERS} for building its weights")
            try:
                model = models.create(name.lower(), input_size=tuple(size), rng=0)
            except (ValueError, TypeError) as exc:
                raise NetworkError("input_size", f"{name} at input {list(size)}: {exc}") from None
            entry = Entry(name.lower(), models.describe(name.lower()), tuple(size), "zoo", False, model)
            self._built[key] = entry
            while len(self._built) > 2:
                self._built.popitem(last=False)
            return entry


# --------------------------------------------------------------------------- the layer table


def conv_plans(target: Any, report: Any, size: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """The algorithm ``auto`` runs for each convolution's forward (batch 1, float32), and why.

    convlab.ops.algorithms.plan on the layer's shapes: the input as the analysis gives it (padded first
    for a padding mode other than zeros, which the engine pads before the primitive call). Transposed
    convolutions and models not built from convlab.nn are left out.
    """
    from ..ops.algorithms.plan import plan
    from ..shapes import resolve_padding

    if isinstance(target, str):
        from ..analysis import zoo_skeleton

        target = zoo_skeleton(target, (1, *size))
    if not isinstance(target, nn.Module):
        return {}
    rows = {row.name: row for row in report}
    plans: dict[str, dict[str, Any]] = {}
    for name, module in target.named_modules():
        spec = getattr(module, "spec", None)
        weight = getattr(module, "weight", None)
        if name not in rows or spec is None or weight is None or getattr(spec, "transposed", True):
            continue
        x_shape = tuple(rows[name].input_shapes[0])
        pairs = resolve_padding(spec, x_shape[2:])
        if spec.padding_mode != "zeros":
            x_shape = x_shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], pairs, strict=True))
            pairs = ((0, 0),) * spec.ndim
        chosen = plan(x_shape, tuple(weight.shape), spec.stride, pairs, spec.dilation, 1, spec.groups,
                      dtype=weight.data.dtype)
        plans[name] = {"algorithm": chosen.algorithm, "reason": chosen.reason}
    return plans


def summary(store: ModelStore, name: str, size: tuple[int, ...]) -> dict[str, Any]:
    report = store.report(name, size)
    rows = [row.to_dict() for row in report]
    plans = conv_plans(store.analysis_target(name, size), report, size)
    for row in rows:
        row["plan"] = plans.get(row["name"])
    totals = {"params": int(report.total_params), "macs": int(report.total_macs),
              "flops": int(report.total_flops)}
    return {"model": name, "input_size": list(size), "rows": rows, "totals": totals,
            "warnings": list(getattr(report, "model_warnings", []) or [])}


# --------------------------------------------------------------------------- one layer, one image


_DATA: dict[str, Any] = {}
_DATA_LOCK = threading.Lock()


def dataset(split: str = "test") -> Any:
    """The bundled Fashion-MNIST subset (read once)."""
    with _DATA_LOCK:
        if split not in _DATA:
            _DATA[split] = open_dataset(DATASET, split=split)
        return _DATA[split]


def chosen_image(choice: Any, uploads: images.UploadStore, size: tuple[int, ...]) -> np.ndarray:
    """The request's image at the model's input ``(C, H, W)``, float64 in [0, 1]."""
    if choice.upload is not None:
        picture = uploads.get(choice.upload)
        if picture is None:
            raise NetworkError("image", f"`image.upload` (={choice.upload!r}) is not a current upload (the last "
                                        f"{images.MAX_UPLOADS} are kept); upload it again")
    else:
        data = dataset()
        index = choice.dataset if choice.dataset is not None else 0
        if index >= len(data):
            raise NetworkError("image", f"`image.dataset` (={index}) must be below {len(data)}")
        picture = data.images[index].transpose(1, 2, 0)
    return images.fit_to(picture, *size)


def _tiles(maps: np.ndarray, limit: int) -> list[dict[str, Any]]:
    tiles = []
    for c in range(min(len(maps), limit)):
        grey, lo, hi = images.normalised(maps[c])
        tiles.append({"channel": c, "png": images.data_url(images.png(grey)), "min": lo, "max": hi})
    return tiles


def _kernels(module: Any, limit: int) -> dict[str, Any] | None:
    weight = getattr(module, "weight", None)
    array = None if weight is None else np.asarray(getattr(weight, "data", weight), dtype=np.float64)
    if array is None or array.ndim != 4:
        return None
    shown = []
    for f in range(min(array.shape[0], limit)):
        grey, lo, hi = images.normalised(array[f])  # (C_in/g, kh, kw), the filter on its own scale
        if array.shape[1] == 3:
            tile = grey.transpose(1, 2, 0)
        else:
            c = min(array.shape[1], 16)
            tile = np.concatenate([np.pad(grey[i], ((0, 0), (0, 1)), constant_values=255) for i in range(c)],
                                  axis=1)[:, :-1]
        shown.append({"filter": f, "png": images.data_url(images.png(tile)), "min": lo, "max": hi})
    return {"shape": list(array.shape), "filters": shown}


def _top_prefix(model: Any, layer: str) -> Any | None:
    """The top-level children of a Sequential up to the one holding ``layer``: the model the ERF is taken of."""
    if not isinstance(model, nn.Sequential):
        return None
    children = list(model.named_children())
    top = layer.split(".")[0]
    names = [n for n, _ in children]
    if top not in names:
        return None
    return nn.Sequential(OrderedDict(children[: names.index(top) + 1]))


def layer_cost(report: Any, layer: str) -> tuple[int, int]:
    """Multiply-accumulates of a layer's views, from the analysis: ``(forward, erf)``.

    ``forward``: the layers up to ``layer`` in the order they run (the feature maps' pass stops after it).
    ``erf``: the ERF's forward and backward passes through the top-level children up to the one holding
    ``layer``, counted as 3x that forward (a backward pass costs about twice its forward: one convolution
    for the input's gradient and one for the weight's; Goodfellow et al., Deep Learning, 6.5.7).
    """
    rows = list(report)
    names = [row.name for row in rows]
    at = names.index(layer)
    forward = sum(int(row.macs or 0) for row in rows[: at + 1])
    top = layer.split(".")[0]
    last = max(i for i, name in enumerate(names) if name.split(".")[0] == top)
    return forward, 3 * sum(int(row.macs or 0) for row in rows[: last + 1])


def _priced_layer(store: ModelStore, req: Any, mac_budget: int | None) -> tuple[Any, Any, int, int]:
    """The report and row of ``req.layer``, refused before any work when the forward pass costs more than
    ``mac_budget``; also the costs (forward, ERF)."""
    size = tuple(req.input_size)
    store.check_forward(req.model, size)
    report = store.report(req.model, size)
    names = [row.name for row in report]
    if req.layer not in names:
        raise NetworkError("layer", f"`layer` (={req.layer!r}) is not a layer of {req.model}; the layers are "
                                    f"{', '.join(names[1:13])} ...")
    forward, erf = layer_cost(report, req.layer)
    if mac_budget is not None and forward > mac_budget:
        raise NetworkError("input_size", f"`input_size` {list(size)}: {req.model} up to layer {req.layer!r} costs "
                                         f"{forward} multiply-accumulates, more than the budget of {mac_budget} "
                                         "per request (choose a smaller input or an earlier layer)")
    return report, report[req.layer], forward, erf


def layer_view(store: ModelStore, req: Any, uploads: images.UploadStore,
               mac_budget: int | None = None) -> dict[str, Any]:
    """One layer for one image: feature maps (the forward pass stops after the layer), kernels, the theoretical
    receptive field and the ERF (left out, with a note, when it would cost more than ``mac_budget``)."""
    size = tuple(req.input_size)
    _, row, forward, erf_cost = _priced_layer(store, req, mac_budget)
    entry = store.built(req.model, size)
    model = entry.model
    x = chosen_image(req.image, uploads, size)
    result: dict[str, Any] = {"model": req.model, "layer": req.layer, "facts": row.to_dict(),
                              "image": images.picture_url(x), "input_size": list(size),
                              "weights": "trained" if entry.source == "checkpoint" else
                              ("given" if entry.source == "file" else "random (rng 0), untrained"),
                              "macs": {"forward": forward, "erf": erf_cost}, "erf_note": None}
    with entry.lock:  # feature_map_arrays wraps the layers' forward on the instance for its pass
        try:
            module = layer_module(model, req.layer)
        except ValueError:
            module = None
        maps = None
        if module is not None and req.feature_maps:
            maps = feature_map_arrays(model, x, [req.layer], stop_after=True)[req.layer]
        result["feature_maps"] = None
        if maps is not None and maps.ndim == 3:
            result["feature_maps"] = {"shape": list(maps.shape), "tiles": _tiles(maps, req.max_channels)}
        elif maps is not None:
            values = np.ravel(maps)[:1000]
            result["feature_maps"] = {"shape": list(maps.shape), "values": [float(v) for v in values]}
        result["kernels"] = None if module is None else _kernels(module, req.max_channels)
        spatial = row.receptive_field is not None and row.scope == "spatial" and len(row.output_shape) == 4
        result["receptive_field"] = None
        result["erf"] = None
        if spatial:
            h, w = row.output_shape[2:]
            unit = (h // 2, w // 2)
            boxes = receptive_field_boxes(model, size, req.layer, unit)
            result["receptive_field"] = {"unit": list(unit), "boxes": [{"layer": n, "box": list(b)}
                                                                       for n, b in boxes]}
            spent = forward if maps is not None else 0
            erf_wanted = req.erf
            if erf_wanted and mac_budget is not None and spent + erf_cost > mac_budget:
                erf_wanted = False
                result["erf_note"] = (f"ERF left out: its passes cost about {erf_cost} multiply-accumulates, over the "
                                      f"budget of {mac_budget} per request with the feature maps' {spent}")
            prefix = _top_prefix(model, req.layer) if erf_wanted else None
            if prefix is not None:
                try:
                    field_ = effective_receptive_field(prefix, size, images=x[None])
                except ValueError:
                    field_ = None
                if field_ is not None:
                    result["erf"] = {"layer": field_.layer, "unit": [None if v is None else int(v)
                                                                     for v in field_.unit],
                                     "output_shape": list(field_.output_shape),
                                     "png": images.data_url(images.png(images.heat_rgba(field_.map))),
                                     "field_box": None if field_.field_box is None else list(field_.field_box),
                                     "sigma": list(field_.sigma), "mean": list(field_.mean),
                                     "share_95": field_.share_95, "max": float(field_.map.max()),
                                     "summary": field_.summary()}
    return result


def figure_png(store: ModelStore, req: Any, uploads: images.UploadStore, kind: str,
               mac_budget: int | None = None) -> bytes:
    """One of convlab.viz's figures of the layer as PNG: 'feature_maps', 'kernels', 'receptive_field', 'erf'."""
    from ..viz import figures

    size = tuple(req.input_size)
    _, _, _, erf_cost = _priced_layer(store, req, mac_budget)
    if kind == "erf" and mac_budget is not None and erf_cost > mac_budget:
        raise NetworkError("input_size", f"`input_size` {list(size)}: the ERF of {req.model} at layer {req.layer!r} "
                                         f"costs about {erf_cost} multiply-accumulates, more than the budget of "
                                         f"{mac_budget} per request")
    entry = store.built(req.model, size)
    x = chosen_image(req.image, uploads, size)
    makers: dict[str, Callable[[], Any]] = {
        "feature_maps": lambda: figures.feature_maps(entry.model, x, [req.layer], max_channels=req.max_channels,
                                                     model_name=req.model),
        "kernels": lambda: figures.kernels(entry.model, req.layer, model_name=req.model),
        "receptive_field": lambda: figures.receptive_field(entry.model, size, req.layer,
                                                           _centre(store, req, size), x, model_name=req.model),
        "erf": lambda: figures.erf(effective_receptive_field(_top_prefix(entry.model, req.layer) or entry.model,
                                                             size, images=x[None]), model_name=req.model),
    }
    import io

    with entry.lock:
        try:
            figure = makers[kind]()
        except (ValueError, TypeError) as exc:
            raise NetworkError("layer", str(exc)) from None
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _centre(store: ModelStore, req: Any, size: tuple[int, ...]) -> tuple[int, int]:
    row = store.report(req.model, size)[req.layer]
    if len(row.output_shape) != 4:
        raise NetworkError("layer", f"`layer` (={req.layer!r}) has no spatial output ({row.output_shape})")
    return row.output_shape[2] // 2, row.output_shape[3] // 2
