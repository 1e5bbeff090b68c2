"""The per-batch work of training: forward, loss, backward, the finite check, the optimizer and schedule step.

The loop (:mod:`convlab.train.loop`) knows batches, epochs, callbacks and
checkpoints; an *engine* knows how one batch is computed. :class:`NumpyEngine`
runs convlab's own modules, losses (:class:`convlab.nn.CrossEntropyLoss`),
optimizers and schedules (:mod:`convlab.optim`); an engine for torch (a later
issue) implements the same methods:

``train_step(x, y) -> StepResult``
    One optimizer step on the batch; nothing is changed when the loss or a
    gradient is not finite (``StepResult.finite`` is False).
``eval_batch(x, y) -> (loss_sum, predictions)``
    Evaluation mode, no gradients: the summed loss and the predicted classes.
``seed_step(seed, epoch, batch)``
    Reseed whatever the step draws at random (dropout masks) from
    ``[seed, epoch, batch]``, so any step can be replayed after a resume.
``lr``, ``save_checkpoint(path, **metadata)``, ``restore(checkpoint)``
    The current learning rate; writing the model's, the optimizer's and the
    schedule's state to a checkpoint (:mod:`convlab.train.checkpoint`) and loading
    it back (everything checked before anything is changed).

The schedule is stepped once per optimizer step (torch's order: ``optimizer.step()``
then ``scheduler.step()``), with every period counted in steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np

from .. import nn
from .. import optim as _optim
from ..optim import lr_scheduler as _lr_scheduler

__all__ = ["OPTIMIZERS", "SCHEDULES", "Engine", "NumpyEngine", "StepResult", "build_optimizer", "build_scheduler",
           "data_gradient_skipped", "data_layer"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "multistep", "cosine", "onecycle")


def data_layer(model: nn.Module) -> nn.Module | None:
    """The layer that reads the batch, when it can skip its input gradient (``needs_input_grad``); else None.

    That is the first leaf of a zoo model (a ``Sequential``: its first child, descending into
    nested ``Sequential`` containers), if it is a convolution (:mod:`convlab.nn.conv`).
    """
    layer = model
    while isinstance(layer, nn.Sequential) and len(layer):
        layer = layer[0]
    return layer if hasattr(layer, "needs_input_grad") else None


@contextlib.contextmanager
def data_gradient_skipped(model: nn.Module) -> Iterator[None]:
    """Inside the block the layer that reads the data computes no input gradient (its backward returns
    None, which ends ``model.backward``); afterwards it is as it was, so the model the caller holds still
    gives input gradients (an effective receptive field, say)."""
    layer = data_layer(model)
    if layer is None:
        yield
        return
    saved = layer.needs_input_grad
    layer.needs_input_grad = False
    try:
        yield
    finally:
        layer.needs_input_grad = saved


class StepResult(NamedTuple):
    """One training step: the batch's mean loss, how many predictions were right, the batch size."""

    loss: float
    correct: int
    count: int
    finite: bool  # False: the loss or a gradient was NaN/inf and no parameter was changed


class Engine(Protocol):
    """The interface the loop drives (see the module docstring)."""

    model: Any

    @property
    def lr(self) -> float: ...

    def seed_step(self, seed: int, epoch: int, batch: int) -> None: ...

    def train_step(self, x: np.ndarray, y: np.ndarray) -> StepResult: ...

    def eval_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]: ...

    def save_checkpoint(self, path: str, **metadata: Any) -> str: ...

    def restore(self, checkpoint: Any) -> None: ...


def build_optimizer(name: str, params: Any, lr: float, momentum: float, weight_decay: float, *,
                    module: Any = None) -> Any:
    """``sgd`` (with ``momentum``), ``adam`` or ``adamw`` from :mod:`convlab.optim`, torch's arguments.

    ``module``: where the classes come from (``torch.optim`` for the torch engine; default :mod:`convlab.optim`).
    """
    optim = module if module is not None else _optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"convlab.train: `optimizer` (={name!r}) must be one of {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer: Any, schedule: str | None, total_steps: int, warmup: int = 0, *,
                    module: Any = None) -> Any | None:
    """The learning-rate schedule over ``total_steps`` optimizer steps, after ``warmup`` steps of linear warm-up.

    ``step``: x0.1 after each third of the run (``StepLR``); ``multistep``: x0.1 at 50% and 75% of the run
    (``MultiStepLR``, the ResNet paper's habit); ``cosine``: ``CosineAnnealingLR`` down to 0 at the end;
    ``onecycle``: ``OneCycleLR`` with ``max_lr`` the given learning rate (Smith & Topin, arXiv:1708.07120;
    it has its own warm-up, so ``warmup`` is refused with it). Warm-up is ``LinearLR`` from 1/(warmup+1) of
    the learning rate to all of it, chained with ``SequentialLR`` (torch's recipe). ``module``: where the
    classes come from (``torch.optim.lr_scheduler`` for the torch engine; default :mod:`convlab.optim.lr_scheduler`).
    """
    lr_scheduler = module if module is not None else _lr_scheduler
    schedule = "none" if schedule is None else schedule
    if schedule not in SCHEDULES:
        raise ValueError(f"convlab.train: `schedule` (={schedule!r}) must be one of {', '.join(SCHEDULES)}")
    if warmup < 0 or (warmup >= max(total_steps, 1) and warmup > 0):
        raise ValueError(f"convlab.train: `warmup` (={warmup}) must be >= 0 and less than the run's "
                         f"{total_steps} steps")
    if schedule == "onecycle":
        if warmup:
            raise ValueError(f"convlab.train: `warmup` (={warmup}) does not combine with the onecycle schedule, "
                             f"which warms up itself")
        return lr_scheduler.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=total_steps)
    rest = total_steps - warmup
    main: Any
    if schedule == "none":
        main = lr_scheduler.LambdaLR(optimizer, lambda step: 1.0) if warmup else None
    elif schedule == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=max(1, math.ceil(rest / 3)), gamma=0.1)
    elif schedule == "multistep":
        main = lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, rest // 2), max(2, rest * 3 // 4)], gamma=0.1)
    else:
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, rest))
    if not warmup:
        return main
    warm = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, schedulers=[warm, main], milestones=[warmup])


class NumpyEngine:
    """Training steps on convlab's NumPy engine.

    Parameters
    ----------
    model : convlab.nn.Module
        Called on float batches ``(N, C, H, W)``; returns logits ``(N, num_classes)``.
    optimizer : {'sgd', 'adam', 'adamw'}
    lr, momentum, weight_decay : float
        torch's meanings (``momentum`` is SGD's only).
    schedule : {'none', 'step', 'multistep', 'cosine', 'onecycle'} or None
    total_steps : int
        The run's length in optimizer steps (the schedule's period).
    warmup : int
        Steps of linear warm-up.
    label_smoothing : float
        :class:`convlab.nn.CrossEntropyLoss`'s ``label_smoothing``.
    """

    def __init__(self, model: nn.Module, *, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                 weight_decay: float = 0.0, schedule: str | None = None, total_steps: int = 1, warmup: int = 0,
                 label_smoothing: float = 0.0) -> None:
        self.model = model
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.eval_loss = nn.CrossEntropyLoss(reduction="sum")
        self.optimizer = build_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
        self.scheduler = build_scheduler(self.optimizer, schedule, total_steps, warmup)
        # Dropout layers draw their masks from their own generator: reseeded every step (seed_step)
        self._dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]

    @property
    def lr(self) -> float:
        """The learning rate the next step uses (the first parameter group's)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def seed_step(self, seed: int, epoch: int, batch: int) -> None:
        for index, dropout in enumerate(self._dropouts):
            dropout.rng = np.random.default_rng([seed, epoch, batch, index])

    def train_step(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        # Overflow is checked below (a non-finite loss or gradient stops the run with a message), not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._train_step(x, y)

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        model = self.model
        model.train()
        model.zero_grad()
        logits = model(x)
        loss = float(self.loss_fn(logits, y))
        correct = int(np.count_nonzero(logits.argmax(axis=1) == y))
        if not math.isfinite(loss):
            return StepResult(loss, correct, len(y), False)
        with data_gradient_skipped(model):  # nobody reads the gradient of the data
            model.backward(self.loss_fn.backward())
        for param in model.parameters():
            if param.grad is not None and not np.isfinite(param.grad).all():
                return StepResult(loss, correct, len(y), False)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return StepResult(loss, correct, len(y), True)

    def eval_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        with nn.no_grad(), np.errstate(over="ignore", invalid="ignore"):  # a diverged model: its loss says so
            logits = self.model(x)
        return float(self.eval_loss(logits, y)), logits.argmax(axis=1)

    def save_checkpoint(self, path: str, **metadata: Any) -> str:
        """:func:`convlab.train.checkpoint.save_checkpoint` of the model, the optimizer and the schedule."""
        from .checkpoint import save_checkpoint

        return save_checkpoint(path, self.model, optimizer=self.optimizer, scheduler=self.scheduler, **metadata)

    def restore(self, checkpoint: Any) -> None:
        """Load a :class:`~convlab.train.checkpoint.Checkpoint` into the model, the optimizer and the schedule."""
        from .checkpoint import restore

        restore(checkpoint, self.model, self.optimizer, self.scheduler)
