"""The base of the optimizers: parameter groups, per-parameter state, ``zero_grad`` and state dicts in torch's layout.

An optimizer holds ``param_groups`` (a list of dicts: ``"params"``, a list of
:class:`convlab.nn.Parameter`, and the options, e.g. ``"lr"``) and ``state``
(a dict from parameter to its state: NumPy arrays and a float ``"step"``).
``step()`` reads each ``param.grad`` (parameters whose ``grad`` is None are
skipped, as in torch) and updates ``param.data`` in place, in its dtype.

``state_dict()`` is torch's layout, with NumPy arrays where torch has tensors::

    {"state": {0: {"step": 3.0, "exp_avg": ndarray, ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1, 2]}, ...]}

Parameters are numbered in the order of the groups, as torch numbers them, so
a state dict of a convlab optimizer loads into ``torch.optim`` (arrays turned into
tensors) and the reverse (``load_state_dict`` accepts tensors and turns them
into arrays of the parameter's dtype). The group options are plain numbers,
strings, booleans, tuples and None (JSON-serialisable, for checkpoints).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..nn.parameter import Parameter, _to_numpy
from ..spec import as_bool

__all__ = ["Optimizer", "check_number"]

#: torch's implementation switches, which a torch state dict carries in its groups; they do not change the
#: numbers of the single-tensor path convlab follows, so they are accepted and kept as given.
TORCH_SWITCHES = ("foreach", "fused", "differentiable", "capturable")


def check_number(owner: str, name: str, value: object, *, minimum: float | None = None,
                 below: float | None = None, what: str = "") -> float:
    """``value`` as a float, or a ValueError naming ``owner``, ``name`` and the value.

    Bools, strings, None, arrays and NaN are refused; ``minimum`` is inclusive, ``below`` exclusive.
    ``what`` is torch's name of the check (``"Invalid learning rate"``), put in front of the message.
    """
    prefix = f"{owner}: {what}: " if what else f"{owner}: "
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{prefix}`{name}` must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{prefix}`{name}` must be a number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{prefix}`{name}` (={value!r}) must be >= {minimum}")
    if below is not None and number >= below:
        raise ValueError(f"{prefix}`{name}` (={value!r}) must be < {below}")
    return number


class Optimizer:
    """Base class: parameter groups, state, ``zero_grad``, ``state_dict``/``load_state_dict`` (torch.optim.Optimizer).

    Subclasses give ``defaults`` (the options and their values), check a group's
    options in :meth:`_check_group` and update one group in :meth:`_step_group`.

    Parameters
    ----------
    params : iterable of Parameter, of (name, Parameter) pairs, or of dicts
        The parameters (``model.parameters()`` or ``model.named_parameters()``), or
        parameter groups: dicts with ``"params"`` and any options that differ from
        the defaults, e.g. ``[{"params": body}, {"params": head, "lr": 0.1}]``.
    defaults : dict
        The options of every group that does not set them.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        owner = type(self).__name__
        self.defaults = dict(defaults)
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, (Parameter, np.ndarray, str, Mapping)):
            raise TypeError(f"{owner}: `params` must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got {type(params).__name__}")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{owner}: `params` must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got {type(params).__name__}") from None
        if not groups:
            raise ValueError(f"{owner}: got an empty parameter list (`params` is empty)")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----------------------------------------------------------------------- groups

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (a dict with ``"params"`` and options; missing options take the defaults)."""
        owner = f"{type(self).__name__}.add_param_group"
        if not isinstance(param_group, Mapping):
            raise TypeError(f"{owner}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{owner}: a parameter group needs the key 'params', got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{owner}: `params` must be an ordered collection (a set's order changes between runs); "
                            f"use a list")
        params = list(params)
        names = []
        tensors = []
        for i, item in enumerate(params):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                names.append(item[0])
                item = item[1]
            if not isinstance(item, Parameter):
                raise TypeError(f"{owner}: parameter {i} of the group is a {type(item).__name__}, not a "
                                f"convlab.nn.Parameter")
            tensors.append(item)
        if names and len(names) != len(tensors):
            raise ValueError(f"{owner}: give names for all the parameters of a group or for none "
                             f"({len(names)} of {len(tensors)} are named)")
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        if len({id(p) for p in tensors}) != len(tensors):
            raise ValueError(f"{owner}: a parameter appears twice in the group")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in tensors):
            raise ValueError(f"{owner}: some parameters appear in more than one parameter group")
        if self.param_groups and ("param_names" in group) != ("param_names" in self.param_groups[0]):
            raise ValueError(f"{owner}: all groups must have parameter names or none may (named_parameters() "
                             f"in one group and parameters() in another)")
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Check (and normalise in place) the options of one group; ValueError naming the option and value."""

    # ----------------------------------------------------------------------- gradients and steps

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: to None (default), or to zeros in place."""
        set_to_none = as_bool(f"{type(self).__name__}.zero_grad", "set_to_none", set_to_none)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    if set_to_none:
                        param.grad = None
                    else:
                        param.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given (called first)."""
        loss = None if closure is None else closure()
        for group in self.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            if with_grad:
                self._step_group(group, with_grad)
        return loss

    def _step_group(self, group: dict[str, Any], params: list[Parameter]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _step_group")

    @staticmethod
    def _grad(param: Parameter, owner: str) -> np.ndarray:
        grad = param.grad
        if grad.shape != param.data.shape:
            raise ValueError(f"{owner}.step: a gradient of shape {grad.shape} for a parameter of shape "
                             f"{param.data.shape}")
        return grad if grad.dtype == param.data.dtype else grad.astype(param.data.dtype)

    # ----------------------------------------------------------------------- state dicts

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``: torch's layout, copies."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            for param in group["params"]:
                index.setdefault(id(param), len(index))
            packed["params"] = [index[id(param)] for param in group["params"]]
            groups.append(packed)
        state = {}
        for param, entries in self.state.items():
            if id(param) in index:
                state[index[id(param)]] = {key: (np.array(value, copy=True) if isinstance(value, np.ndarray)
                                                 else value) for key, value in entries.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict of :meth:`state_dict`'s layout (from convlab, or torch's with tensors or arrays).

        The groups must have as many parameters as this optimizer's; every array must have
        its parameter's shape. Arrays are copied in the parameter's dtype, ``"step"`` becomes a
        float, and the groups' options replace the current ones (checked like the constructor's).
        Nothing changes unless everything is valid.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{owner}: expected a dict with the keys 'state' and 'param_groups', got "
                             f"{sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{owner}: the state dict has {len(saved_groups)} parameter groups, the optimizer "
                             f"{len(self.param_groups)}")
        id_map: dict[int, Parameter] = {}
        new_groups = []
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{owner}: parameter group {g} has {len(saved['params'])} parameters in the state "
                                 f"dict and {len(group['params'])} in the optimizer")
            for index, param in zip(saved["params"], group["params"], strict=True):
                id_map[int(index)] = param
            new_group = {key: copy.deepcopy(value) for key, value in saved.items() if key != "params"}
            if isinstance(new_group.get("betas"), list):
                new_group["betas"] = tuple(new_group["betas"])  # after a JSON round trip
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                new_group.setdefault(name, default)
            try:
                self._check_group(new_group)
            except ValueError as exc:
                raise ValueError(f"{owner}: parameter group {g}: {exc}") from None
            new_groups.append(new_group)
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, entries in state_dict["state"].items():
            try:
                index = int(key)  # JSON turns the keys into strings
            except (TypeError, ValueError):
                raise ValueError(f"{owner}: state key {key!r} is not a parameter index") from None
            if index not in id_map:
                raise ValueError(f"{owner}: the state has an entry for parameter {index}, which no group lists")
            param = id_map[index]
            loaded = {}
            for name, value in entries.items():
                if name == "step":
                    loaded[name] = float(_to_numpy(value))
                    continue
                array = _to_numpy(value)
                if array.dtype.kind == "f":
                    if array.shape != param.data.shape:
                        raise ValueError(f"{owner}: state {name!r} of parameter {index} has shape {array.shape}, "
                                         f"the parameter {param.data.shape}")
                    loaded[name] = np.array(array, dtype=param.data.dtype, copy=True)
                else:
                    loaded[name] = copy.deepcopy(value)
            new_state[param] = loaded
        for group, new_group in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(new_group)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key not in ("params", "param_names")]
        return "\n".join(lines) + "\n)"
