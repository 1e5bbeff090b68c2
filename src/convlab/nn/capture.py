"""Intermediate outputs of any model for one forward pass (convlab modules have no hooks).

:func:`capture_outputs` is the one way convlab reads a layer's output from inside
a model: TensorBoard's feature maps (``convlab.train.board``) and the pictures
(``convlab.viz.feature_maps``, ``correlation``) both call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..spec import as_bool
from .module import Module
from .parameter import no_grad

__all__ = ["capture_outputs", "evaluation_mode"]


@contextlib.contextmanager
def evaluation_mode(model: Module) -> Iterator[None]:
    """Evaluation mode for the block; every module's own mode is restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:  # pre-order: each module's call sets its subtree, descendants follow
            module.train(mode)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _StopForward(BaseException):
    """Ends the forward pass once every requested output is captured (``stop_after=True``).

    A BaseException, like GeneratorExit, so that a model's own ``except Exception`` cannot swallow it.
    """


def capture_outputs(model: Module, x: np.ndarray, layers: Sequence[str], *,
                    stop_after: bool = False) -> dict[str, np.ndarray]:
    """The outputs of the submodules named ``layers`` (dotted paths) for the input ``x``.

    The model runs once in evaluation mode under ``convlab.nn.no_grad()`` (each module's
    mode is restored afterwards); each named submodule's ``forward`` is wrapped for that
    call only, so any model works. A module called more than once in the pass (a shared
    activation) gives its first output. The forward pass replaces the modules' caches:
    call this between training steps, not between a forward and its backward.

    With ``stop_after=True`` the pass ends as soon as the last of ``layers`` has produced its
    output (its wrapper raises a private exception that this function catches): the layers after
    it never run, so an early layer of a large model costs only the layers before it.

    >>> from convlab.nn import Linear, ReLU, Sequential
    >>> model = Sequential(Linear(2, 2, rng=np.random.default_rng(0)), ReLU())
    >>> out = capture_outputs(model, np.ones((1, 2), dtype=np.float32), ["0"])
    >>> out["0"].shape
    (1, 2)

    Stopping after layer ``1``: the last layer, which takes 3 features, is never called.

    >>> model = Sequential(Linear(2, 2, rng=np.random.default_rng(0)), ReLU(), Linear(3, 1))
    >>> capture_outputs(model, np.ones((1, 2), dtype=np.float32), ["1"], stop_after=True)["1"].shape
    (1, 2)
    """
    fn = "capture_outputs"
    stop_after = as_bool(fn, "stop_after", stop_after)
    if not isinstance(model, Module):
        raise TypeError(f"{fn}: `model` must be a convlab.nn.Module, got {type(model).__name__}")
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"{fn}: `layers` must be a non-empty list of submodule names, got {_short(layers)}")
    modules = {}
    for name in layers:
        if not isinstance(name, str):
            raise TypeError(f"{fn}: `layers` must hold str names, got {_short(name)}")
        modules[name] = model.get_submodule(name)  # a ValueError naming the missing child and the choices
    outputs: dict[str, np.ndarray] = {}
    wrapped = []
    try:
        for name, module in modules.items():
            if "forward" in module.__dict__:
                raise ValueError(f"{fn}: {name!r} is listed twice or already wrapped")
            original = module.forward

            def forward(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                out = _original(*args, **kwargs)
                outputs.setdefault(_name, np.array(out, copy=True))
                if stop_after and len(outputs) == len(modules):
                    raise _StopForward
                return out

            object.__setattr__(module, "forward", forward)
            wrapped.append(module)
        with evaluation_mode(model), no_grad():
            try:
                model(x)
            except _StopForward:
                pass
    finally:
        for module in wrapped:
            del module.__dict__["forward"]
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise ValueError(f"{fn}: the forward pass did not call {missing}")
    return {name: outputs[name] for name in layers}
