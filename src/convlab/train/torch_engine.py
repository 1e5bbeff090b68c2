"""``TorchEngine``: the same training steps through PyTorch (``convlab train --engine torch``).

It implements the loop's engine interface (:mod:`convlab.train.engine`) on the
:func:`convlab.interop.to_torch` mirror of the model: torch autograd for the
gradients, ``torch.nn.functional.cross_entropy`` for the loss, and the
``torch.optim`` optimizer and ``torch.optim.lr_scheduler`` schedule that
:func:`~convlab.train.engine.build_optimizer` and
:func:`~convlab.train.engine.build_scheduler` choose (the same function builds
both engines' objects, so the recipes cannot drift apart). The batches are the
loop's: :class:`convlab.data.DataLoader` with its seeded order and augmentation,
turned into tensors with ``torch.from_numpy`` (no second reader).

One model, two views
--------------------
On the CPU the torch parameters and buffers *are* the convlab arrays
(``torch.from_numpy``, shared memory): every optimizer step, BatchNorm statistic
and checkpoint load is seen by both, and the convlab model the caller holds (the
TensorBoard callback's histograms and feature maps, ``evaluate``) is always the
trained one. On a GPU the convlab model is refreshed from the device after every
step. Gradients are shared the same way (``param.grad``).

Checkpoints
-----------
:meth:`TorchEngine.save_checkpoint` writes exactly what the NumPy engine writes:
the weights under torch's keys, and the optimizer's and the schedule's state in
torch's ``state_dict()`` layout, which :mod:`convlab.optim` shares. The torch state
is loaded into a :mod:`convlab.optim` optimizer and schedule of the same kind and
saved through :func:`convlab.train.checkpoint.save_checkpoint`, so a checkpoint of
either engine resumes or evaluates in the other (``tests/test_train_torch.py``).

Across processes
----------------
With ``distributed=True`` (``convlab train --nproc N``, :mod:`convlab.train.distributed`)
the mirror is wrapped in ``torch.nn.parallel.DistributedDataParallel`` on the
default process group. Every rank receives the same global batch from the loop
(the same seeded permutation and augmentation on every rank) and trains on its
shard ``x[rank::world]``, as ``DistributedSampler`` would give it; the loss of the
shard is scaled by ``len(shard) * world / len(batch)``, so DDP's average of the
gradients is the gradient of the global batch's mean loss (one process on the
whole batch gives the same weights, to float rounding, for models without
BatchNorm: BatchNorm normalises each shard by its own statistics, as torch's
BatchNorm does under DDP without SyncBatchNorm, and DDP broadcasts rank 0's
running statistics). The loss, the correct
predictions and the count are all-reduced, so every rank reports the global
batch; evaluation is sharded the same way and the predictions all-gathered.
Rank 0 alone writes checkpoints (the others wait on a barrier).

Dropout masks come from torch's generator, seeded every step from
``[seed, epoch, batch, rank]``: replayable after a resume, but not the NumPy
engine's masks (the two engines agree exactly on models without Dropout).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from .. import nn
from .engine import StepResult, build_optimizer, build_scheduler

__all__ = ["DEVICES", "STOP_REQUEST", "TorchEngine", "import_torch"]

DEVICES = ("cpu", "cuda")
#: Set (by the worker's signal handler, :mod:`convlab.train.distributed`) to stop every rank before the same step.
STOP_REQUEST = threading.Event()
_INSTALL = 'pip install "convlab[torch]"'


def import_torch() -> Any:
    """``import torch``, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"convlab.train: the torch engine (--engine torch, --nproc) needs PyTorch: {_INSTALL}") \
            from None
    return torch


def _device(torch: Any, device: object) -> Any:
    """``'cpu'``, ``'cuda'`` or ``'cuda:N'`` (or a torch.device) as a torch.device, checked."""
    text = str(device)
    kind = text.split(":", 1)[0]
    if kind not in DEVICES:
        raise ValueError(f"convlab.train.TorchEngine: `device` (={device!r}) must be one of {', '.join(DEVICES)}")
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise ValueError(f"convlab.train.TorchEngine: `device` (={device!r}) is not a device torch knows") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"convlab.train.TorchEngine: `device` (={device!r}): torch finds no CUDA device "
                         f"(torch.cuda.is_available() is False; torch {torch.__version__}); use the cpu")
    return parsed


def _matching(state: Any, template: Any) -> Any:
    """``state`` keeping only the dict keys ``template`` has (recursively, through lists of the same length)."""
    if isinstance(state, dict) and isinstance(template, dict):
        return {key: _matching(value, template[key]) for key, value in state.items() if key in template}
    if isinstance(state, list) and isinstance(template, list) and len(state) == len(template):
        return [_matching(s, t) for s, t in zip(state, template, strict=True)]
    return state


class TorchEngine:
    """Training steps on PyTorch: the :func:`~convlab.interop.to_torch` mirror of ``model``, autograd, torch.optim.

    Parameters
    ----------
    model : convlab.nn.Module
        The model to train; on the CPU its arrays are the torch model's (see the module docstring).
    optimizer, lr, momentum, weight_decay, schedule, total_steps, warmup, label_smoothing
        As :class:`~convlab.train.engine.NumpyEngine`'s (``fit`` passes them when given the class).
    device : {'cpu', 'cuda', 'cuda:N'}
    distributed : bool
        Wrap the mirror in DistributedDataParallel on the initialised default process group
        (:func:`convlab.train.distributed.init`); see the module docstring.
    """

    def __init__(self, model: nn.Module, *, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                 weight_decay: float = 0.0, schedule: str | None = None, total_steps: int = 1, warmup: int = 0,
                 label_smoothing: float = 0.0, device: object = "cpu", distributed: bool = False) -> None:
        torch = import_torch()
        from ..interop.torch_convert import to_torch

        if not isinstance(model, nn.Module):
            raise TypeError(f"convlab.train.TorchEngine: `model` must be a convlab.nn.Module, got "
                            f"{type(model).__name__}")
        self._torch = torch
        self.device = _device(torch, device)
        self.model = model
        self.label_smoothing = float(label_smoothing)
        self._recipe = dict(name=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            schedule=schedule, total_steps=total_steps, warmup=warmup)
        mirror = to_torch(model)
        names = [name for name, _ in model.named_parameters()]
        if names != [name for name, _ in mirror.named_parameters()]:  # the optimizer state is indexed by order
            raise RuntimeError("convlab.train.TorchEngine: internal error, the torch mirror lists the parameters "
                               "in another order")
        self._shared = self.device.type == "cpu" and self._share(mirror)
        if not self._shared:
            mirror.to(self.device)
        self.module = mirror
        self.rank, self.world_size = 0, 1
        self.network = mirror
        if distributed:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel

            if not dist.is_available() or not dist.is_initialized():
                raise ValueError("convlab.train.TorchEngine: `distributed` (=True) needs an initialised process "
                                 "group (convlab.train.distributed.init, or run under torchrun)")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(mirror, device_ids=device_ids)  # broadcasts rank 0's state
        self._distributed = distributed
        self.optimizer = build_optimizer(optimizer, mirror.parameters(), lr, momentum, weight_decay,
                                         module=torch.optim)
        self.scheduler = build_scheduler(self.optimizer, schedule, total_steps, warmup,
                                         module=torch.optim.lr_scheduler)
        self._dtype = next((p.dtype for p in mirror.parameters()), torch.float32)
        self._has_dropout = any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in mirror.modules())
        self._params = list(zip(model.parameters(), mirror.parameters(), strict=True))
        self.stop_requested = False  # distributed: set (by a signal handler) to stop every rank at the next step
        self._stop_agreed = False

    # ------------------------------------------------------------------ the two views of the weights

    def _share(self, mirror: Any) -> bool:
        """Make every torch parameter and buffer a view of the convlab array (False: some array cannot be)."""
        torch = self._torch
        arrays = [(name, p.data) for name, p in self.model.named_parameters()]
        arrays += list(self.model.named_buffers())
        if not all(a.flags.writeable and a.flags.c_contiguous and a.dtype.isnative for _, a in arrays):
            return False
        torch_params = dict(mirror.named_parameters())
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                torch_params[name].data = torch.from_numpy(param.data)
            for name, buffer in self.model.named_buffers():
                owner, _, attr = name.rpartition(".")
                mirror.get_submodule(owner)._buffers[attr] = torch.from_numpy(buffer)
        return True

    def _pull(self) -> None:
        """Refresh the convlab model from the torch model (a GPU run; on the CPU they share memory)."""
        if self._shared:
            return
        self.model.load_state_dict({k: v.detach().cpu() for k, v in self.module.state_dict().items()})

    def _input(self, x: np.ndarray) -> Any:
        tensor = self._torch.from_numpy(np.ascontiguousarray(x))
        return tensor.to(device=self.device, dtype=self._dtype, non_blocking=True)

    # ------------------------------------------------------------------ the engine interface

    @property
    def lr(self) -> float:
        """The learning rate the next step uses (the first parameter group's)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def seed_step(self, seed: int, epoch: int, batch: int) -> None:
        """Dropout draws from torch's generator: seeded from ``[seed, epoch, batch, rank]`` (only with Dropout)."""
        if self._has_dropout:
            value = np.random.default_rng([seed, epoch, batch, self.rank]).integers(2**63 - 1)
            self._torch.manual_seed(int(value))

    def _shard(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's examples of the global batch: ``[rank::world]`` (DistributedSampler's interleaving)."""
        if self.world_size == 1:
            return x, y
        return x[self.rank::self.world_size], y[self.rank::self.world_size]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        torch = self._torch
        functional = torch.nn.functional
        if self._stop_agreed:  # every rank saw the request in the last step's all-reduce: stop before this step
            self._stop_agreed = False
            raise KeyboardInterrupt
        total = len(y)
        xs, ys = self._shard(x, y)
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        target = torch.from_numpy(np.ascontiguousarray(ys)).to(self.device)
        logits = self.network(self._input(xs))
        loss = functional.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            correct = (logits.argmax(dim=1) == target).sum()
        if self.world_size > 1:
            import torch.distributed as dist

            # (shard mean * shard size, correct, count, stop flag) summed over the ranks: the global batch's
            stop = float(self.stop_requested or STOP_REQUEST.is_set())
            stats = torch.stack([loss.detach().double() * len(ys), correct.double(),
                                 torch.tensor(float(len(ys)), dtype=torch.float64, device=self.device),
                                 torch.tensor(stop, dtype=torch.float64, device=self.device)])
            dist.all_reduce(stats)
            loss_sum, correct_all, _, stop = stats.tolist()
            mean, correct_count = loss_sum / total, int(correct_all)
            self._stop_agreed = stop > 0
            # DDP averages the ranks' gradients: scale so that the average is the gradient of the global mean
            scaled = loss * (len(ys) * self.world_size / total)
        else:
            mean, correct_count = float(loss.detach()), int(correct)
            scaled = loss
        if not math.isfinite(mean):  # the same decision on every rank (the all-reduced loss)
            return StepResult(mean, correct_count, total, False)
        scaled.backward()
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            return StepResult(mean, correct_count, total, False)  # (DDP's averaged gradients: same on every rank)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self._shared:
            for ours, theirs in self._params:
                ours.grad = None if theirs.grad is None else theirs.grad.numpy()
        else:
            self._pull()
        return StepResult(mean, correct_count, total, True)

    def eval_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Evaluation mode, no gradients: the summed loss and the predicted classes of the whole batch."""
        torch = self._torch
        xs, ys = self._shard(x, y)
        self.module.eval()
        try:
            with torch.no_grad():
                target = torch.from_numpy(np.ascontiguousarray(ys)).to(self.device)
                logits = self.module(self._input(xs))
                loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum").double()
                predicted = logits.argmax(dim=1)
        finally:
            self.module.train()
        if self.world_size == 1:
            return float(loss), predicted.cpu().numpy()
        import torch.distributed as dist

        dist.all_reduce(loss)
        width = -(-len(y) // self.world_size)  # the largest shard; smaller ones are padded for all_gather
        padded = torch.full((width,), -1, dtype=predicted.dtype, device=self.device)
        padded[:len(predicted)] = predicted
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded)
        out = np.empty(len(y), dtype=np.int64)
        for rank, part in enumerate(gathered):
            count = len(range(rank, len(y), self.world_size))
            out[rank::self.world_size] = part[:count].cpu().numpy()
        return float(loss), out

    # ------------------------------------------------------------------ checkpoints

    def _convlab_optimizer(self) -> tuple[Any, Any]:
        """A :mod:`convlab.optim` optimizer and schedule of this run's kind, over the convlab model's parameters."""
        r = self._recipe
        optimizer = build_optimizer(r["name"], self.model.parameters(), r["lr"], r["momentum"], r["weight_decay"])
        scheduler = build_scheduler(optimizer, r["schedule"], r["total_steps"], r["warmup"])
        return optimizer, scheduler

    def state_in_convlab(self) -> tuple[Any, Any]:
        """This run's optimizer and schedule state loaded into :mod:`convlab.optim` objects (for a checkpoint)."""
        optimizer, scheduler = self._convlab_optimizer()
        state = self.optimizer.state_dict()
        groups = []
        for saved, ours in zip(state["param_groups"], optimizer.param_groups, strict=True):  # convlab's options only
            groups.append({key: value for key, value in saved.items() if key in ours or key == "params"})
        entries = {index: {key: (float(value) if key == "step" else value.detach().cpu().numpy())
                           for key, value in entry.items() if value is not None}
                   for index, entry in state["state"].items()}
        optimizer.load_state_dict({"state": entries, "param_groups": groups})
        if scheduler is not None:  # (torch's transient entries, e.g. _get_lr_called_within_step, left out)
            scheduler.load_state_dict(_matching(self.scheduler.state_dict(), scheduler.state_dict()))
        return optimizer, scheduler

    def save_checkpoint(self, path: str, **metadata: Any) -> str:
        """:func:`convlab.train.checkpoint.save_checkpoint`, the NumPy engine's format; rank 0 writes, all wait."""
        from .checkpoint import save_checkpoint

        if self.rank == 0:
            self._pull()
            optimizer, scheduler = self.state_in_convlab()
            save_checkpoint(path, self.model, optimizer=optimizer, scheduler=scheduler, **metadata)
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()  # nobody goes on (or exits) before the file is complete
        return path

    def restore(self, checkpoint: Any) -> None:
        """Load a checkpoint of either engine: weights, optimizer and schedule (all checked before any change)."""
        from .checkpoint import restore

        torch = self._torch
        optimizer, scheduler = self._convlab_optimizer()
        restore(checkpoint, self.model, optimizer, scheduler)  # the checks; the weights land in the shared arrays
        if not self._shared:
            with torch.no_grad():
                self.module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                             for k, v in self.model.state_dict().items()})
        state = optimizer.state_dict()
        groups = []
        for saved, ours in zip(state["param_groups"], self.optimizer.param_groups, strict=True):
            groups.append({**{k: v for k, v in ours.items() if k != "params"}, **saved})  # torch keeps its own keys
        entries = {index: {key: (torch.tensor(float(value)) if key == "step" else torch.from_numpy(value))
                           for key, value in entry.items()}
                   for index, entry in state["state"].items()}
        self.optimizer.load_state_dict({"state": entries, "param_groups": groups})
        if self.scheduler is not None and scheduler is not None:
            self.scheduler.load_state_dict(scheduler.state_dict())
