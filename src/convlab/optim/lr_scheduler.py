"""Learning-rate schedules with torch's formulas and stepping protocol (``torch.optim.lr_scheduler``).

A scheduler sets ``group["lr"]`` of its optimizer's groups. Building it is its
first step (``last_epoch`` becomes 0 and the groups get their first rate);
call ``scheduler.step()`` after each ``optimizer.step()``. Like torch, the
schedules that torch computes recursively (``StepLR``, ``MultiStepLR``,
``CosineAnnealingLR``, ``LinearLR``) update the current rate from the previous
one (the "chainable" form, so they compose), and use their closed form where
torch does (``SequentialLR`` switching to the next schedule); the numbers are
torch's to the last bit where the same float operations allow.

``state_dict()`` holds only numbers, strings, lists and dicts (JSON-serialisable,
for checkpoints); ``LambdaLR`` does not save its functions (like torch for plain
functions and lambdas): build it with the same function before loading.

Examples
--------
>>> import numpy as np
>>> from convlab.nn import Parameter
>>> from convlab.optim import SGD
>>> optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
>>> scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(scheduler.get_last_lr()[0])
...     optimizer.step()
...     scheduler.step()
>>> rates
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import math
import numbers
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .optimizer import Optimizer, check_number

__all__ = ["CosineAnnealingLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR", "OneCycleLR",
           "SequentialLR", "StepLR"]


def _check_int(owner: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{owner}: `{name}` must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: `{name}` (={value!r}) must be >= {minimum}")
    return int(value)


def _per_group(owner: str, name: str, optimizer: Optimizer, value: object, **limits: Any) -> list[float]:
    """One value per group: a list of as many numbers as groups, or one number for all (torch's _format_param)."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{owner}: `{name}` must have one value per parameter group "
                             f"({len(optimizer.param_groups)}), got {len(value)}")
        return [check_number(owner, f"{name}[{i}]", v, **limits) for i, v in enumerate(value)]
    return [check_number(owner, name, value, **limits)] * len(optimizer.param_groups)


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``last_epoch``, ``state_dict()``/``load_state_dict()``.

    Subclasses compute the next rates in ``get_lr()`` (from ``last_epoch`` and the
    groups' current rates) and may give ``_get_closed_form_lr()``.
    """

    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        owner = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: `optimizer` must be a convlab.optim optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        last_epoch = _check_int(owner, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(f"{owner}: parameter group {i} has no 'initial_lr', which resuming with "
                                     f"last_epoch={last_epoch} needs (load the optimizer's state dict first)")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def step(self) -> None:
        """Advance one epoch (or batch, for per-step schedules) and set the groups' rates."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last step set, one per group (a copy)."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # ----------------------------------------------------------------------- state

    _NOT_SAVED: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (and functions): numbers, strings, lists, dicts."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key not in self._NOT_SAVED}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the attributes :meth:`state_dict` saved (unknown keys are refused)."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{owner}: expected a dict, got {type(state_dict).__name__}")
        unknown = sorted(set(state_dict) - set(self.state_dict()))
        if unknown:
            raise ValueError(f"{owner}: keys {unknown} are not attributes of {type(self).__name__} (a state dict "
                             f"of another scheduler?)")
        self.__dict__.update({key: copy.deepcopy(value) for key, value in state_dict.items()
                              if key not in self._NOT_SAVED})


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(last_epoch)``, one function for all groups or one per group.

    >>> import numpy as np
    >>> from convlab.nn import Parameter
    >>> from convlab.optim import SGD
    >>> optimizer = SGD([Parameter(np.zeros(1))], lr=0.1)
    >>> scheduler = LambdaLR(optimizer, lambda epoch: 0.5**epoch)
    >>> scheduler.step(); scheduler.get_last_lr()
    [0.05]
    """

    _NOT_SAVED = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        owner = type(self).__name__
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"{owner}: expected {len(optimizer.param_groups)} lr_lambdas (one per group), "
                                 f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for i, fn in enumerate(self.lr_lambdas):
            if not callable(fn):
                raise TypeError(f"{owner}: lr_lambda {i} must be callable, got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None] * len(self.lr_lambdas)  # functions are not saved (torch saves None too)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "lr_lambdas"})


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs: ``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        owner = type(self).__name__
        self.step_size = _check_int(owner, "step_size", step_size, 1)
        self.gamma = check_number(owner, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone (twice for a milestone given twice)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        owner = type(self).__name__
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise ValueError(f"{owner}: `milestones` must be a list of integers, got {milestones!r}")
        # a sorted list with repetitions (torch keeps a Counter, whose int keys JSON cannot hold)
        self.milestones = sorted(_check_int(owner, "milestones", m, 0) for m in milestones)
        self.gamma = check_number(owner, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        count = Counter(self.milestones)[self.last_epoch]
        if count == 0:
            return self._current_lrs()
        return [lr * self.gamma**count for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay): the factor goes from ``start_factor`` to ``end_factor`` in ``total_iters`` steps.

    ``lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)``, computed
    recursively like torch.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        owner = type(self).__name__
        start_factor = check_number(owner, "start_factor", start_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(f"{owner}: `start_factor` (={start_factor!r}) must be in (0, 1]")
        end_factor = check_number(owner, "end_factor", end_factor)
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"{owner}: `end_factor` (={end_factor!r}) must be in [0, 1]")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = _check_int(owner, "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # torch's recursive form: the ratio of consecutive factors
        ratio = 1.0 + (self.end_factor - self.start_factor) / (
            self.total_iters * self.start_factor + (self.last_epoch - 1) * (self.end_factor - self.start_factor))
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter, SGDR, arXiv:1608.03983) without restarts, torch's recursive form.

    Approximately ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``; after
    ``T_max`` the rate rises again (torch's behaviour).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        owner = type(self).__name__
        self.T_max = _check_int(owner, "T_max", T_max, 1)
        self.eta_min = check_number(owner, "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and self.last_epoch > 0:
            return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max))
                    / 2 for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [lr + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs(), strict=True)]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)) * (lr - self.eta_min) + self.eta_min
                for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at ``milestones`` (e.g. a warm-up, then cosine).

    >>> import numpy as np
    >>> from convlab.nn import Parameter
    >>> from convlab.optim import SGD
    >>> optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> warmup = LinearLR(optimizer, start_factor=0.25, total_iters=3)
    >>> decay = StepLR(optimizer, step_size=1, gamma=0.5)
    >>> scheduler = SequentialLR(optimizer, [warmup, decay], milestones=[3])
    >>> rates = []
    >>> for _ in range(6):
    ...     rates.append(scheduler.get_last_lr()[0])
    ...     optimizer.step()
    ...     scheduler.step()
    >>> rates
    [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    _NOT_SAVED = ("optimizer", "_schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int],
                 last_epoch: int = -1) -> None:
        owner = type(self).__name__
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError(f"{owner}: expects at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"{owner}: scheduler {i} is a {type(scheduler).__name__}, not a convlab scheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"{owner}: scheduler {i} ({type(scheduler).__name__}) belongs to another optimizer; "
                                 f"all must belong to the one given")
        milestones = [_check_int(owner, "milestones", m, 0) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{owner}: expects one milestone fewer than schedulers, got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = _check_int(owner, "last_epoch", last_epoch, -1) + 1
        self.optimizer = optimizer
        # as torch: back to the initial rates, undo the schedulers' initial steps, then the first one's
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._all_schedulers():
            scheduler.last_epoch -= 1
        index = bisect_right(self._milestones, 0)
        self._schedulers[index]._initial_step()
        self._last_lr = schedulers[index].get_last_lr()

    def _all_schedulers(self) -> Iterable[LRScheduler]:
        for scheduler in self._schedulers:
            if isinstance(scheduler, SequentialLR):
                yield from scheduler._all_schedulers()
            else:
                yield scheduler

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next schedule starts from its beginning (closed form)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        schedulers = state_dict.get("_schedulers", [])
        if len(schedulers) != len(self._schedulers):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state holds {len(schedulers)} schedulers, "
                             f"this one has {len(self._schedulers)}")
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "_schedulers"})
        for scheduler, state in zip(self._schedulers, schedulers, strict=True):
            scheduler.load_state_dict(state)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, arXiv:1708.07120), per batch, with torch's phases and momentum cycling.

    The rate goes from ``max_lr / div_factor`` up to ``max_lr`` in the first ``pct_start``
    of ``total_steps``, then down to ``initial_lr / final_div_factor`` (with ``three_phase``:
    back to the initial rate first, then down). ``anneal_strategy`` is ``'cos'`` or
    ``'linear'``. With ``cycle_momentum`` the momentum (SGD) or beta1 (Adam) moves the
    opposite way between ``max_momentum`` and ``base_momentum``.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        from ..spec import as_bool

        owner = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: `optimizer` must be a convlab.optim optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = _check_int(owner, "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_check_int(owner, "epochs", epochs, 1)
                                * _check_int(owner, "steps_per_epoch", steps_per_epoch, 1))
        else:
            raise ValueError(f"{owner}: give `total_steps`, or `epochs` and `steps_per_epoch` (got total_steps=None, "
                             f"epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r})")
        pct_start = check_number(owner, "pct_start", pct_start, minimum=0.0)
        if pct_start > 1:
            raise ValueError(f"{owner}: `pct_start` (={pct_start!r}) must be in [0, 1]")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{owner}: `anneal_strategy` (={anneal_strategy!r}) must be 'cos' or 'linear'")
        three_phase = as_bool(owner, "three_phase", three_phase)
        cycle_momentum = as_bool(owner, "cycle_momentum", cycle_momentum)
        div_factor = check_number(owner, "div_factor", div_factor)
        final_div_factor = check_number(owner, "final_div_factor", final_div_factor)
        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group(owner, "max_lr", optimizer, max_lr, minimum=0.0)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{owner}: the optimizer ({type(optimizer).__name__}) has no momentum or beta1 to "
                                 f"cycle; give cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group(owner, "max_momentum", optimizer, max_momentum)
            base_momentums = _per_group(owner, "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(max_momentums, base_momentums, optimizer.param_groups, strict=True):
                    if self.use_beta1:
                        group["betas"] = (high, *group["betas"][1:])
                    else:
                        group["momentum"] = high
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        return (end - start) * pct + start

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return self._annealing_cos(start, end, pct)
        return self._annealing_linear(start, end, pct)

    def get_lr(self) -> list[float]:
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"{type(self).__name__}: stepped {step_num} times, more than total_steps="
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs
