"""Parameters and modules: the base class every layer and container derives from.

A :class:`Module` registers what is assigned to it, like ``torch.nn.Module``:
a :class:`Parameter` becomes a parameter, a :class:`Module` a child, and
:meth:`Module.register_buffer` adds a buffer (state that is saved but not
trained, e.g. BatchNorm's running statistics). ``state_dict()`` uses PyTorch's
key names (``layer1.0.conv1.weight``), so weights move between the two
frameworks by name.

Forward and backward
--------------------
``module(x)`` runs ``forward`` and caches what ``backward`` needs: always,
except inside ``with convlab.nn.no_grad():``. ``module.backward(grad_output)``
returns the gradient with respect to the input and *adds* the parameter
gradients to each ``Parameter.grad`` (``zero_grad()`` clears them).
Backward may be called again on the same cache (it is not freed), e.g. once
per output unit for an effective receptive field.

A module instance may be called only once per forward pass (the outermost
``module(x)`` call is one pass); a second call raises, because its cache would
overwrite the first. The exceptions are the stateless activations (ReLU, ReLU6,
Sigmoid, Tanh, Hardswish, Softmax), Identity, Flatten and Upsample
(``_reusable = True``): they keep one cache per call and backward uses them in
reverse order, which is the order containers run backward in. So a ResNet
block may register one ``relu`` and use it in both its body and its post step,
like torchvision. Call modules (``module(x)``), not ``module.forward(x)``:
the call is where the pass is tracked.

Models without weights
----------------------
Inside ``with convlab.nn.skeleton():`` a model is built with every layer,
hyperparameter and parameter shape, but no values: each :class:`Parameter`
(and each buffer) holds a read-only zero-stride array of the right shape and
dtype, which takes no memory, and the initialisers draw nothing (like torch's
``meta`` device). The analysis builds zoo models this way. Calling such a
model (or its backward) raises a ValueError saying it was built without
weights; :meth:`Module.load_state_dict` gives it real arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..spec import as_bool
from .parameter import (
    _STATE,
    Parameter,
    _to_numpy,
    _Weightless,
    _weightless,
    is_grad_enabled,
    is_weightless,
    no_grad,
    skeleton,
)

__all__ = [
    "IncompatibleKeys",
    "Module",
    "Parameter",
    "is_grad_enabled",
    "is_weightless",
    "no_grad",
    "skeleton",
]


def _without_weights_error(module: Module, where: str) -> ValueError | None:
    """The error for calling ``module`` when one of its own parameters or buffers has no values."""
    for kind, registry in (("parameter", module._parameters), ("buffer", module._buffers)):
        for name, value in registry.items():
            array = value.data if isinstance(value, Parameter) else value
            if isinstance(array, _Weightless):
                return ValueError(
                    f"{where}: this layer was built without weights (inside convlab.nn.skeleton()): its {kind} "
                    f"{name!r} has the shape {tuple(array.shape)} but no values; build the model outside "
                    f"skeleton(), or give it weights with load_state_dict(), before calling it"
                )
    return None


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not load (both empty after a strict load)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _add_indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


# --------------------------------------------------------------------------- modules


class Module:
    """Base class of every layer and container (numpy counterpart of ``torch.nn.Module``).

    Subclasses call ``super().__init__()`` first, then assign parameters,
    children and buffers; they implement ``forward`` (which calls
    ``self._save(...)`` with what backward needs) and ``backward``.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Linear, ReLU, Sequential
    >>> model = Sequential(Linear(4, 3, rng=np.random.default_rng(0)), ReLU())
    >>> list(model.state_dict())
    ['0.weight', '0.bias']
    >>> model.num_parameters()
    15
    >>> y = model(np.ones((2, 4), dtype=np.float32))
    >>> grad_input = model.backward(np.ones_like(y))
    >>> model[0].weight.grad.shape
    (3, 4)
    """

    #: Stateless modules that may be called more than once in one forward pass.
    _reusable: ClassVar[bool] = False

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_caches", [])
        object.__setattr__(self, "_cache_position", 0)
        object.__setattr__(self, "_pass_id", -1)

    # ----------------------------------------------------------------------- registration

    def _registries(self) -> tuple[dict, dict, dict]:
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError:
            raise TypeError(
                f"{type(self).__name__}: call super().__init__() in __init__ before assigning attributes"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        params, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter {name!r} "
                    f"(a convlab.nn.Parameter or None is expected; to change the values, assign to {name}.data)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to child module {name!r} "
                    f"(a convlab.nn.Module or None is expected)"
                )
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to buffer {name!r} "
                    f"(an ndarray or None is expected)"
                )
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: parameters, buffers and children live in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        params, buffers, modules = self._registries()
        for registry in (params, buffers, modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None: a declared but absent parameter, like a conv's ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"{type(self).__name__}.register_parameter: {name!r} must be a Parameter or None, "
                f"got {type(param).__name__}"
            )
        params, buffers, modules = self._registries()
        self.__dict__.pop(name, None)
        buffers.pop(name, None)
        modules.pop(name, None)
        params[name] = param

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """Register a buffer: saved in ``state_dict()``, not a parameter (e.g. running statistics)."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(
                f"{type(self).__name__}.register_buffer: {name!r} must be an ndarray or None, "
                f"got {type(array).__name__}"
            )
        params, buffers, modules = self._registries()
        self.__dict__.pop(name, None)
        params.pop(name, None)
        modules.pop(name, None)
        if array is not None and _STATE.skeleton_depth and not isinstance(array, _Weightless):
            array = _weightless(array.shape, array.dtype)  # inside skeleton(): the shape, no memory
        buffers[name] = array

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as the child ``name`` (names that are not identifiers, like "0", too)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}.add_module: {name!r} must be a Module or None, got {type(module).__name__}"
            )
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{type(self).__name__}.add_module: a child name must be a non-empty str without '.', "
                             f"got {name!r}")
        params, buffers, modules = self._registries()
        self.__dict__.pop(name, None)
        params.pop(name, None)
        buffers.pop(name, None)
        modules[name] = module

    # ----------------------------------------------------------------------- traversal

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct children in registration order (None placeholders skipped)."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module of the tree in pre-order, ``''`` for self; a module reachable twice is listed once."""
        seen: set[int] = set()

        def walk(module: Module, name: str) -> Iterator[tuple[str, Module]]:
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                if child is not None:
                    yield from walk(child, f"{name}.{child_name}" if name else child_name)

        yield from walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter of the tree, with its dotted name; a shared parameter is listed once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self) -> Iterator[np.ndarray]:
        for _, buffer in self.named_buffers():
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The module at the dotted path ``target`` (``''`` is self), e.g. ``'layer1.0.conv1'``."""
        module: Module = self
        if target == "":
            return module
        walked = []
        for part in target.split("."):
            child = module._modules.get(part)
            if child is None:
                where = ".".join(walked) or "the model"
                raise ValueError(
                    f"{type(self).__name__}.get_submodule: {where} has no child {part!r} (looking for {target!r}); "
                    f"its children are {[n for n, m in module._modules.items() if m is not None]}"
                )
            walked.append(part)
            module = child
        return module

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """Call ``fn`` on every child (recursively, children first) and then on self; return self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ----------------------------------------------------------------------- state

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, Module, str, bool]]:
        """(key, owner, attribute, is_parameter) in PyTorch's order: own parameters, own buffers, children."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, self, name, True
        for name, buffer in self._buffers.items():
            if buffer is not None:
                yield prefix + name, self, name, False
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by PyTorch key name (``features.0.weight``, ``bn1.running_mean``).

        The arrays are copies: later training does not change a saved state dict. (A model built
        inside :class:`skeleton` gives its weightless arrays, which nothing can change.)
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, owner, attr, is_param in self._state_entries():
            array = owner._parameters[attr].data if is_param else owner._buffers[attr]
            out[key] = array if isinstance(array, _Weightless) else np.array(array, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or torch tensors) into the parameters and buffers of the same names.

        Every key and shape is checked before anything is written. With
        ``strict=True`` (default) missing or unexpected keys raise; with
        ``strict=False`` they are returned. A shape mismatch always raises.
        Values are cast to the dtype of the parameter or buffer they fill.
        """
        fn = f"{type(self).__name__}.load_state_dict"
        strict = as_bool(fn, "strict", strict)
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{fn}: expected a mapping of name -> array, got {type(state_dict).__name__}")
        targets = {key: (owner, attr, is_param) for key, owner, attr, is_param in self._state_entries()}
        for key in state_dict:
            if not isinstance(key, str):
                raise TypeError(f"{fn}: state dict keys must be str, got {key!r} ({type(key).__name__})")
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        problems = []
        if strict and missing:
            problems.append(f"missing keys (in the model, not in the state dict): {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys (in the state dict, not in the model): {unexpected}")
        values = {}
        for key, (owner, attr, is_param) in targets.items():
            if key not in state_dict:
                continue
            value = _to_numpy(state_dict[key])
            if value.dtype.kind not in "iuf":
                problems.append(f"{key!r} has dtype {value.dtype}, not a real number type")
                continue
            current = owner._parameters[attr].data if is_param else owner._buffers[attr]
            if value.shape != current.shape:
                problems.append(
                    f"{key!r} has shape {tuple(value.shape)} in the state dict but {tuple(current.shape)} in the model"
                )
                continue
            values[key] = value
        if problems:
            raise ValueError(f"{fn}: the state dict does not match the model: " + "; ".join(problems))
        for key, value in values.items():
            owner, attr, is_param = targets[key]
            current = owner._parameters[attr].data if is_param else owner._buffers[attr]
            if isinstance(current, _Weightless):  # built inside skeleton(): the values get memory now
                loaded = np.array(value, dtype=current.dtype, copy=True)
                if is_param:
                    owner._parameters[attr].data = loaded
                else:
                    owner._buffers[attr] = loaded
                continue
            np.copyto(current, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    def to(self, dtype: type | np.dtype | str) -> Module:
        """Cast every floating-point parameter, gradient and buffer to ``dtype`` (in place); return self."""
        target = _float_dtype(type(self).__name__, dtype)
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = _astype(param.data, target)
                    if param.grad is not None:
                        param.grad = param.grad.astype(target)
            for name, buffer in module._buffers.items():
                if buffer is not None and buffer.dtype.kind == "f":
                    module._buffers[name] = _astype(buffer, target)
        return self

    # ----------------------------------------------------------------------- modes and gradients

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant; return self."""
        mode = as_bool(f"{type(self).__name__}.train", "mode", mode)
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (``train(False)``): BatchNorm uses running statistics, Dropout is the identity."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (to None, or to zeros with ``set_to_none=False``)."""
        set_to_none = as_bool(f"{type(self).__name__}.zero_grad", "set_to_none", set_to_none)
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = np.zeros_like(param.data)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameter elements (each shared parameter once); ``trainable_only`` skips frozen ones."""
        trainable_only = as_bool(f"{type(self).__name__}.num_parameters", "trainable_only", trainable_only)
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----------------------------------------------------------------------- forward and backward

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = _STATE
        if state.depth == 0:
            state.pass_id += 1  # the outermost call starts a forward pass
        elif self._pass_id == state.pass_id and not self._reusable:
            raise ValueError(
                f"{type(self).__name__}: this module instance is called a second time in one forward pass; "
                f"that is not supported for modules with state or parameters (only stateless activations, "
                f"Identity, Flatten and Upsample may be reused): register a second instance"
            )
        if state.weightless_made:
            error = _without_weights_error(self, type(self).__name__)
            if error is not None:
                raise error
        if self._pass_id != state.pass_id:
            self._caches.clear()
            object.__setattr__(self, "_pass_id", state.pass_id)
        state.depth += 1
        try:
            return self.forward(*args, **kwargs)
        finally:
            state.depth -= 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input of the last forward; adds parameter gradients to ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def tune(self, input_shape: Any, *, dtype: Any = None, repeat: int = 3, budget: float = 2.0,
             cache: bool = False, seed: int = 0) -> list:
        """Time the convolution algorithms of every conv call of this model on this machine; ``auto`` then runs
        the fastest measured (:mod:`convlab.ops.algorithms.tune`).

        One forward and one backward of a random input of ``input_shape`` (in
        ``dtype``, default the parameters' dtype) run inside
        :func:`~convlab.ops.algorithms.tune.tuning`: each convolution's forward,
        input gradient and weight gradient call is tuned the first time it is met.
        The parameters' gradients and the buffers (BatchNorm's running statistics)
        are left as they were. ``cache=True`` reads this machine's cache file first
        and writes it after. Returns the :class:`~convlab.ops.algorithms.tune.Tuned`
        answer of every primitive call the pass made, in order (calls with nothing to
        compute are left out).

        >>> import numpy as np
        >>> from convlab.nn import Conv2d, ReLU, Sequential
        >>> model = Sequential(Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(0)), ReLU())
        >>> found = model.tune((2, 3, 10, 10), repeat=1)
        >>> sorted({f.role for f in found})
        ['forward', 'input_grad', 'weight_grad']
        >>> from convlab.ops.algorithms import tune; tune.clear()
        """
        from ..ops.algorithms.trace import trace
        from ..ops.algorithms.tune import load, lookup, save, tuning

        fn = f"{type(self).__name__}.tune"
        shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
        if shape is None or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0
                                    for v in shape):
            raise ValueError(f"{fn}: `input_shape` (={input_shape!r}) must be a tuple of positive integers")
        if dtype is None:
            dtype = next((p.data.dtype for p in self.parameters() if p.data.dtype.kind == "f"), np.float32)
        target = _float_dtype(fn, dtype)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(shape).astype(target)
        grads = [(p, None if p.grad is None else p.grad.copy()) for p in self.parameters()]
        buffers = [(m, name, b.copy()) for m in self.modules() for name, b in m._buffers.items() if b is not None]
        if cache:
            load(quiet=True)
        try:
            with tuning(repeat=repeat, budget=budget), trace() as events:
                y = self(x)
                self.backward(rng.standard_normal(np.shape(y)).astype(target))
        finally:
            for p, g in grads:
                p.grad = g
            for m, name, b in buffers:
                m._buffers[name] = b
        if cache:
            save()
        found = (lookup(e.call, e.role) for e in events)
        return [f for f in found if f is not None]

    def _save(self, *items: Any) -> None:
        """Cache ``items`` for backward (nothing under :class:`no_grad`)."""
        if not _STATE.grad_enabled:
            return
        if _STATE.depth == 0:  # forward() called directly, outside any module call: a pass of its own
            self._caches.clear()
        self._caches.append(items)
        object.__setattr__(self, "_cache_position", len(self._caches) - 1)

    def _saved(self) -> tuple:
        """What forward cached; for a module used k times in a pass, the uses in reverse order, cyclically."""
        caches = self._caches
        if not caches and _STATE.weightless_made:
            error = _without_weights_error(self, f"{type(self).__name__}.backward")
            if error is not None:
                raise error
        if not caches:
            raise ValueError(
                f"{type(self).__name__}.backward: no forward pass is cached (call the module on an input first; "
                f"forward caches nothing inside convlab.nn.no_grad())"
            )
        position = self._cache_position
        object.__setattr__(self, "_cache_position", (position - 1) % len(caches))
        return caches[position]

    def _call_child(self, name: str, child: Module, *args: Any) -> Any:
        """Call a child; an error raised inside it gets a note naming the child (the path shows in tracebacks)."""
        try:
            return child(*args)
        except (ValueError, TypeError) as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"  in child {name!r} ({type(child).__name__}) of {type(self).__name__}")
            raise

    # ----------------------------------------------------------------------- repr

    def extra_repr(self) -> str:
        """The settings shown inside ``repr()``: only those that differ from the defaults."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): {_add_indent(repr(module), 2)}" for name, module in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(lines + children)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


# --------------------------------------------------------------------------- helpers shared by the layers


def _astype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array.astype(dtype)``; a weightless array stays weightless (no memory)."""
    if isinstance(array, _Weightless):
        return _weightless(array.shape, dtype)
    return array.astype(dtype)


def _float_dtype(layer: str, dtype: object) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{layer}: dtype (={dtype!r}) is not a NumPy dtype") from None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{layer}: dtype (={resolved}) must be float32 or float64")
    return resolved
