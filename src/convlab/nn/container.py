"""Containers: how networks are written as DAGs (and what the analysis walks).

* :class:`Sequential` -- a chain.
* :class:`Residual` -- ``post(body(x) + shortcut(x))``, the ResNet block.
* :class:`Concat` -- every branch sees the input, outputs joined on the channel axis (Inception).
* :class:`ChannelShuffle`, :class:`ChannelSlice` -- ShuffleNet's shuffle and channel split.

Backward runs the DAG in reverse: a chain backwards; a residual sends the
gradient to both the body and the shortcut and adds their input gradients; a
concatenation splits the gradient per branch and sums the branches' input
gradients. Children are run in reverse of the forward order, which is what lets
a stateless activation be reused (see :mod:`convlab.nn.module`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from ..ops.shuffle import channel_shuffle, channel_shuffle_vjp
from ._checks import as_int, check_grad, float_input
from .module import Module

__all__ = ["ChannelShuffle", "ChannelSlice", "Concat", "Residual", "Sequential"]


def _named_arguments(layer: str, modules: tuple) -> list[tuple[str, Module]]:
    """``(*modules)`` named "0", "1", ... or one ``OrderedDict``/dict of name -> module."""
    if len(modules) == 1 and isinstance(modules[0], Mapping):
        items = [(str(name), module) for name, module in modules[0].items()]
        where = "key"
    else:
        items = [(str(i), module) for i, module in enumerate(modules)]
        where = "argument"
    for name, module in items:
        if not isinstance(module, Module):
            raise TypeError(f"{layer}: {where} {name!r} must be a convlab.nn.Module, got {type(module).__name__}")
    return items


class Sequential(Module):
    """A chain of modules: ``Sequential(*modules)`` (children "0", "1", ...) or ``Sequential(OrderedDict)``.

    Indexable (an int gives a module, a slice a Sequential sharing the
    modules), ``len()`` and iterable.

    Examples
    --------
    >>> import numpy as np
    >>> from collections import OrderedDict
    >>> from convlab.nn import Conv2d, ReLU
    >>> block = Sequential(OrderedDict(conv=Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(0)), relu=ReLU()))
    >>> block
    Sequential(
      (conv): Conv2d(3, 8, kernel_size=(3, 3), padding=(1, 1))
      (relu): ReLU()
    )
    >>> len(block), block[1]
    (2, ReLU())
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        for name, module in _named_arguments(type(self).__name__, modules):
            self.add_module(name, module)

    def _items(self) -> list[tuple[str, Module]]:
        return [(name, module) for name, module in self._modules.items() if module is not None]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Module]:
        return iter([module for _, module in self._items()])

    def __getitem__(self, index: int | slice | str) -> Any:
        items = self._items()
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if isinstance(index, str):
            return self.get_submodule(index)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: index must be an int, a slice or a child name, got {index!r}")
        if not -len(items) <= index < len(items):
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, named by its position."""
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, input: Any) -> Any:
        x = input
        for name, module in self._items():
            x = self._call_child(name, module, x)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g = grad_output
        for _, module in reversed(self._items()):
            g = module.backward(g)
        return g


class Residual(Module):
    """``post(body(x) + shortcut(x))``: a residual block (He et al., arXiv:1512.03385).

    ``Residual(body, shortcut=None, post=None)`` registers the children
    ``body``, ``shortcut`` and ``post`` (None means identity and registers
    nothing). To keep a reference implementation's key names, subclass it,
    call ``super().__init__()`` with no arguments, register the children under
    their own names and declare the order in class (or instance) attributes::

        class BasicBlock(Residual):
            body_names = ("conv1", "bn1", "relu", "conv2", "bn2")
            shortcut_name = "downsample"   # a child that may be None (identity)
            post_name = "relu"

    The body is the chain of ``body_names``; the same *stateless* module (an
    activation) may appear in the body and as ``post``, as torchvision's one
    ``relu``; a layer with parameters or state must be two instances.
    ``body_modules()``, ``shortcut_module()`` and ``post_module()`` give the
    modules themselves (the analysis reads these).

    Backward: with ``s = body(x) + shortcut(x)``, ``ds`` reaches both terms, so
    ``dx = body^T(ds) + shortcut^T(ds)`` (identity shortcut: ``+ ds``).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Conv2d, ReLU
    >>> block = Residual(Conv2d(4, 4, 3, padding=1, rng=np.random.default_rng(0)), post=ReLU())
    >>> block.body_names, block.shortcut_name, block.post_name
    (('body',), None, 'post')
    >>> block(np.ones((1, 4, 5, 5), np.float32)).shape
    (1, 4, 5, 5)
    """

    body_names: ClassVar[tuple[str, ...] | None] = None
    shortcut_name: ClassVar[str | None] = None
    post_name: ClassVar[str | None] = None

    def __init__(self, body: Module | None = None, shortcut: Module | None = None, post: Module | None = None) -> None:
        super().__init__()
        layer = type(self).__name__
        if type(self).body_names is not None and (body is not None or shortcut is not None or post is not None):
            raise TypeError(
                f"{layer}: declares body_names, so its children are registered by the subclass; "
                f"call super().__init__() without modules"
            )
        if body is None:
            if type(self) is Residual:
                raise TypeError(f"{layer}: body is required (or subclass Residual and declare body_names)")
            return  # a subclass registers its children and declares body_names itself
        for name, module in (("body", body), ("shortcut", shortcut), ("post", post)):
            if module is not None and not isinstance(module, Module):
                raise TypeError(f"{layer}: {name} must be a convlab.nn.Module or None, got {type(module).__name__}")
        self.body = body
        self.body_names = ("body",)
        if shortcut is not None:
            self.shortcut = shortcut
        self.shortcut_name = "shortcut" if shortcut is not None else None
        if post is not None:
            self.post = post
        self.post_name = "post" if post is not None else None

    def _named(self, role: str, name: str) -> Module:
        module = self._modules.get(name)
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {role} names {name!r}, which is not a child module "
                            f"(children: {[n for n, m in self._modules.items() if m is not None]})")
        return module

    def body_modules(self) -> list[Module]:
        """The body's chain, in order."""
        if self.body_names is None:
            raise TypeError(f"{type(self).__name__}: body_names is not declared")
        return [self._named("body_names", name) for name in self.body_names]

    def shortcut_module(self) -> Module | None:
        """The shortcut, or None for the identity (also when the named child is None)."""
        if self.shortcut_name is None or self._modules.get(self.shortcut_name) is None:
            return None
        return self._named("shortcut_name", self.shortcut_name)

    def post_module(self) -> Module | None:
        """The module applied to the sum, or None."""
        return None if self.post_name is None else self._named("post_name", self.post_name)

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        out = input
        for name, module in zip(self.body_names, self.body_modules(), strict=True):
            out = self._call_child(name, module, out)
        shortcut = self.shortcut_module()
        identity = input if shortcut is None else self._call_child(self.shortcut_name, shortcut, input)
        if np.shape(out) != np.shape(identity):
            raise ValueError(
                f"{layer}: the body's output shape {np.shape(out)} differs from the shortcut's {np.shape(identity)} "
                f"(input shape {np.shape(input)}); give a shortcut that matches, e.g. a 1x1 convolution with the "
                f"body's stride and output channels"
            )
        total = out + identity
        post = self.post_module()
        return total if post is None else self._call_child(self.post_name, post, total)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g = grad_output
        post = self.post_module()
        if post is not None:
            g = post.backward(g)
        shortcut = self.shortcut_module()
        grad_shortcut = g if shortcut is None else shortcut.backward(g)
        grad_body = g
        for module in reversed(self.body_modules()):
            grad_body = module.backward(grad_body)
        return grad_body + grad_shortcut


def _chain(entry: str | tuple[str, ...]) -> tuple[str, ...]:
    return (entry,) if isinstance(entry, str) else tuple(entry)


class Concat(Module):
    """Every branch gets the input; outputs are concatenated on the channel axis 1 (an Inception module).

    ``Concat(*branches)`` names the branches "0", "1", ...; ``Concat(OrderedDict)``
    by the keys. Subclasses call ``super().__init__()`` with no arguments,
    register children under their own names and declare
    ``branch_names = ("branch1", "branch2", ...)``; an entry may also be a tuple
    of names, a chain of children forming one branch (torchvision's Inception v3
    style ``("branch5x5_1", "branch5x5_2")``). ``branch_modules()`` gives each
    branch as a list of modules.

    Backward: the output gradient is split into each branch's channels, each
    branch runs backward, and the input gradients add (the input fans out).

    Examples
    --------
    >>> import numpy as np
    >>> from convlab.nn import Conv2d, MaxPool2d
    >>> rng = np.random.default_rng(0)
    >>> mixed = Concat(Conv2d(3, 4, 1, rng=rng), MaxPool2d(3, stride=1, padding=1))
    >>> mixed(np.ones((1, 3, 5, 5), np.float32)).shape
    (1, 7, 5, 5)
    """

    branch_names: ClassVar[tuple[str | tuple[str, ...], ...] | None] = None

    def __init__(self, *branches: Module | Mapping[str, Module]) -> None:
        super().__init__()
        layer = type(self).__name__
        if type(self).branch_names is not None and branches:
            raise TypeError(f"{layer}: declares branch_names, so its children are registered by the subclass; "
                            f"call super().__init__() without modules")
        if not branches and type(self) is not Concat:
            return  # a subclass registers its children and declares branch_names itself
        items = _named_arguments(layer, branches)
        if not items:
            raise ValueError(f"{layer}: needs at least one branch")
        for name, module in items:
            self.add_module(name, module)
        self.branch_names = tuple(name for name, _ in items)

    def branch_modules(self) -> list[list[Module]]:
        """Each branch as the chain of its modules, in ``branch_names`` order."""
        layer = type(self).__name__
        if not self.branch_names:
            raise TypeError(f"{layer}: branch_names is not declared (or empty)")
        branches = []
        for entry in self.branch_names:
            chain = []
            for name in _chain(entry):
                module = self._modules.get(name)
                if not isinstance(module, Module):
                    raise TypeError(f"{layer}: branch_names names {name!r}, which is not a child module "
                                    f"(children: {[n for n, m in self._modules.items() if m is not None]})")
                chain.append(module)
            branches.append(chain)
        return branches

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        outputs = []
        for entry, chain in zip(self.branch_names, self.branch_modules(), strict=True):
            out = input
            for name, module in zip(_chain(entry), chain, strict=True):
                out = self._call_child(name, module, out)
            outputs.append(out)
        first = np.shape(outputs[0])
        for entry, out in zip(self.branch_names, outputs, strict=True):
            shape = np.shape(out)
            if len(shape) < 2 or len(shape) != len(first) or shape[:1] + shape[2:] != first[:1] + first[2:]:
                raise ValueError(
                    f"{layer}: branch {entry!r} gives shape {shape} but branch {self.branch_names[0]!r} gives "
                    f"{first}; the shapes must agree on every axis except the channel axis 1 (input shape "
                    f"{np.shape(input)})"
                )
        self._save([np.shape(out)[1] for out in outputs])
        return np.concatenate(outputs, axis=1)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (channels,) = self._saved()
        g = np.asarray(grad_output)
        if g.ndim < 2 or g.shape[1] != sum(channels):
            raise ValueError(f"{type(self).__name__}.backward: grad_output must have {sum(channels)} channels on "
                             f"axis 1, got shape {g.shape}")
        pieces = np.split(g, np.cumsum(channels)[:-1], axis=1)  # one (N, C_branch, *S) slice per branch
        total = None
        for piece, chain in reversed(list(zip(pieces, self.branch_modules(), strict=True))):
            grad = np.ascontiguousarray(piece)
            for module in reversed(chain):
                grad = module.backward(grad)
            total = grad if total is None else total + grad
        return total


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet, arXiv:1707.01083; ``torch.nn.ChannelShuffle``).

    Backward is the inverse permutation (:func:`convlab.ops.channel_shuffle_vjp`).

    Examples
    --------
    >>> import numpy as np
    >>> ChannelShuffle(2)(np.arange(6.0).reshape(1, 6, 1))[0, :, 0]
    array([0., 3., 1., 4., 2., 5.])
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = as_int(type(self).__name__, "groups", groups, minimum=1)

    def _check_input(self, input: object) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 3:
            raise ValueError(f"{layer}: expected a batched input (N, C, *spatial), got shape {x.shape}")
        if x.shape[1] % self.groups:
            raise ValueError(f"{layer}: groups (={self.groups}) must divide the input channels (={x.shape[1]}, "
                             f"input shape {x.shape})")
        return x

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._check_input(input)
        self._save(x.shape, x.dtype)
        return channel_shuffle(x, self.groups)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape, dtype = self._saved()
        g = check_grad(type(self).__name__, grad_output, shape, dtype)
        return channel_shuffle_vjp(g, g, self.groups)  # only the input's shape and dtype matter

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ChannelSlice(Module):
    """Channels ``[start, stop)`` of a batched ``(N, C, *S)`` input (ShuffleNet v2's channel split).

    Backward puts the gradient back into those channels, zeros elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> ChannelSlice(2, 4)(np.arange(6.0).reshape(1, 6, 1))[0, :, 0]
    array([2., 3.])
    """

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        layer = type(self).__name__
        self.start = as_int(layer, "start", start, minimum=0)
        self.stop = as_int(layer, "stop", stop, minimum=1)
        if self.stop <= self.start:
            raise ValueError(f"{layer}: stop (={self.stop}) must be greater than start (={self.start})")

    def forward(self, input: np.ndarray) -> np.ndarray:
        layer = type(self).__name__
        x = float_input(layer, input)
        if x.ndim < 2:
            raise ValueError(f"{layer}: expected a batched input (N, C, *spatial), got shape {x.shape}")
        if self.stop > x.shape[1]:
            raise ValueError(f"{layer}: stop (={self.stop}) exceeds the input's {x.shape[1]} channels "
                             f"(input shape {x.shape})")
        self._save(x.shape, x.dtype)
        return np.ascontiguousarray(x[:, self.start:self.stop])

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape, dtype = self._saved()
        out_shape = (shape[0], self.stop - self.start) + tuple(shape[2:])
        g = check_grad(type(self).__name__, grad_output, out_shape, dtype)
        grad = np.zeros(shape, dtype=dtype)
        grad[:, self.start:self.stop] = g
        return grad

    def extra_repr(self) -> str:
        return f"start={self.start}, stop={self.stop}"
