"""The training loop: :func:`fit` and :func:`evaluate`.

``fit`` turns a dataset into seeded batches (:class:`convlab.data.DataLoader`),
hands each batch to an engine (:class:`~convlab.train.engine.NumpyEngine`:
forward, loss, backward, optimizer and schedule step) and calls its callbacks
at Keras/Lightning's points (``on_fit_start``, ``on_batch_end``,
``on_epoch_end``, ``on_fit_end``): the progress bar, TensorBoard and anything
a user adds attach there without the loop knowing them.

Determinism and resuming
------------------------
Everything random is drawn from ``seed``: the order of epoch ``e`` is
``default_rng([seed, e])``, the augmentation of batch ``b`` ``default_rng([seed,
e, b])`` (the loader's contract), and the dropout masks of that step
``default_rng([seed, e, b, i])`` for the i-th Dropout layer. Step ``s`` of a run
is batch ``s % len(loader)`` of epoch ``s // len(loader)``, so a checkpoint holds
the weights, the BatchNorm statistics, the optimizer's and the schedule's
state and ``s``; resuming from it replays exactly the batches that follow and
ends with the same weights, bit for bit, as the run that never stopped
(``tests/test_train.py``).

Stopping
--------
``steps=N`` stops after N optimizer steps in all (counted from the start of the
run, also across resumes). Ctrl-C (SIGINT) stops after the current batch; a
``KeyboardInterrupt`` raised by a callback stops at once, the step being
complete. Both write a checkpoint (``checkpoint``, or ``interrupted.safetensors``
in ``logdir``, or in the current folder) and ``History.message`` says how to
resume. A loss or gradient that is NaN or infinite stops before the optimizer
changes anything, names the step and suggests a lower learning rate; the last
checkpoint written (the end of the last epoch) is kept, not replaced.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .. import nn
from ..data import DataLoader, Dataset
from .engine import OPTIMIZERS, SCHEDULES, Engine, NumpyEngine

__all__ = ["EpochRecord", "Evaluation", "History", "Run", "evaluate", "fit"]


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """The model on a dataset: mean cross-entropy, accuracy, confusion matrix and accuracy per class.

    ``confusion[i, j]`` counts the examples of true class ``i`` predicted as ``j``
    (rows sum to the class sizes, the matrix to ``count``); ``per_class[i]`` is
    ``confusion[i, i] / confusion[i].sum()`` (NaN for a class without examples).
    """

    loss: float
    accuracy: float
    confusion: np.ndarray
    per_class: np.ndarray
    classes: list[str]
    count: int
    correct: int


def _batches(loader: Any, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The batches of ``epoch`` from batch ``start`` on (the loader's ``batches`` when it has one)."""
    if hasattr(loader, "batches"):
        yield from loader.batches(epoch, start=start)
        return
    loader.set_epoch(epoch)
    for index, batch in enumerate(loader):
        if index >= start:
            yield batch


class _Evaluator:
    """Evaluation on the NumPy engine without an optimizer (what :func:`evaluate` uses by default)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.loss_fn = nn.CrossEntropyLoss(reduction="sum")

    def eval_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        with nn.no_grad(), np.errstate(over="ignore", invalid="ignore"):  # a diverged model: its loss says so
            logits = self.model(x)
        return float(self.loss_fn(logits, y)), logits.argmax(axis=1)


def _model_dtype(model: nn.Module) -> np.dtype:
    """The dtype batches are given in: the model's parameters' (float32 when it has none)."""
    return next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))


def evaluate(model: nn.Module, data: Dataset | DataLoader, batch_size: int = 256, *,
             engine: Engine | None = None, num_classes: int | None = None) -> Evaluation:
    """Loss, accuracy, confusion matrix and per-class accuracy of ``model`` on ``data``, in evaluation mode.

    BatchNorm uses its running statistics and Dropout is the identity while it
    runs; the model's mode is restored afterwards. ``data`` is a
    :class:`convlab.data.Dataset` (batched without shuffling or augmentation) or
    a :class:`convlab.data.DataLoader` (used as it is).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"convlab.train.evaluate: `batch_size` (={batch_size!r}) must be an int >= 1")
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size, dtype=_model_dtype(model))
    dataset = loader.dataset
    classes = list(dataset.classes)
    k = max(num_classes or 0, len(classes), getattr(model, "num_classes", 0) or 0)
    classes += [str(i) for i in range(len(classes), k)]
    runner = engine if engine is not None else _Evaluator(model)
    was_training = model.training
    model.eval()
    confusion = np.zeros((k, k), dtype=np.int64)
    total_loss = 0.0
    try:
        for x, y in _batches(loader, 0):
            loss_sum, predicted = runner.eval_batch(x, y)
            total_loss += loss_sum
            np.add.at(confusion, (y, predicted), 1)  # (true, predicted) pairs
    finally:
        model.train(was_training)
    count = int(confusion.sum())
    correct = int(np.trace(confusion))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    return Evaluation(total_loss / max(count, 1), correct / max(count, 1), confusion, per_class, classes,
                      count, correct)


# --------------------------------------------------------------------------- the run's records


@dataclass
class EpochRecord:
    """One finished epoch: training loss and accuracy (running means over its batches), test figures, time."""

    epoch: int  # 1-based, as printed
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    lr: float
    seconds: float  # training only (the test evaluation not included)
    examples_per_second: float


@dataclass
class History:
    """What :func:`fit` returns.

    ``stopped`` is ``'completed'``, ``'steps'`` (``steps=`` reached), ``'interrupted'`` (Ctrl-C) or ``'nan'``
    (a non-finite loss or gradient); ``message`` says what happened and, when stopped early, how to go on.
    """

    epochs: list[EpochRecord] = field(default_factory=list)
    evaluation: Evaluation | None = None
    stopped: str = "completed"
    step: int = 0
    epoch: int = 0
    checkpoint: str | None = None
    message: str = ""
    seconds: float = 0.0


@dataclass
class Run:
    """The state callbacks see: the model, the engine, where the run is, the running figures of the epoch."""

    model: nn.Module
    engine: Engine
    config: dict[str, Any]
    steps_per_epoch: int
    epochs: int
    step: int = 0  # optimizer steps done since the start of the run
    epoch: int = 0  # 0-based index of the epoch in progress
    batch: int = 0  # index of the batch just done within the epoch
    loss_sum: float = 0.0  # this epoch, over the batches this process ran
    correct: int = 0
    seen: int = 0
    epoch_start: float = 0.0
    last_loss: float = float("nan")
    stop: str | None = None  # set by Ctrl-C ('interrupted') or a callback
    history: History = field(default_factory=History)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def examples_per_second(self) -> float:
        elapsed = time.perf_counter() - self.epoch_start
        return self.seen / elapsed if elapsed > 0 else 0.0


def _call(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)


@contextlib.contextmanager
def _sigint_stops(run: Run) -> Iterator[None]:
    """While training, the first Ctrl-C asks the loop to stop after the current batch; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if run.stop == "interrupted":
            raise KeyboardInterrupt
        run.stop = "interrupted"

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- checks


def _check_int(name: str, value: object, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"convlab.train.fit: `{name}` (={value!r}) must be an int >= {minimum}"
                         + (" or None" if allow_none else ""))


def _check_float(name: str, value: object, minimum: float, strict: bool) -> None:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > minimum if strict else value >= minimum)
    if not ok:
        raise ValueError(f"convlab.train.fit: `{name}` (={value!r}) must be a finite number "
                         f"{'>' if strict else '>='} {minimum}")


def check_arguments(*, epochs: int, batch_size: int, optimizer: str, lr: float, momentum: float,
                    weight_decay: float, schedule: str | None, warmup: int, seed: int, steps: int | None,
                    label_smoothing: float) -> None:
    """The checks of :func:`fit`'s numbers and names (also run by ``convlab train`` before any data is read)."""
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("warmup", warmup, 0)
    _check_int("seed", seed, 0)
    _check_int("steps", steps, 1, allow_none=True)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"convlab.train.fit: `optimizer` (={optimizer!r}) must be one of {', '.join(OPTIMIZERS)}")
    if (schedule or "none") not in SCHEDULES:
        raise ValueError(f"convlab.train.fit: `schedule` (={schedule!r}) must be one of {', '.join(SCHEDULES)}")
    _check_float("lr", lr, 0.0, strict=True)
    _check_float("momentum", momentum, 0.0, strict=False)
    _check_float("weight_decay", weight_decay, 0.0, strict=False)
    _check_float("label_smoothing", label_smoothing, 0.0, strict=False)
    if label_smoothing > 1:
        raise ValueError(f"convlab.train.fit: `label_smoothing` (={label_smoothing!r}) must be in [0, 1]")


def interrupted_path(logdir: str | os.PathLike | None) -> str:
    """Where a Ctrl-C checkpoint goes without ``checkpoint=``: a new file in ``logdir`` or the current folder."""
    folder = os.fspath(logdir) if logdir is not None else os.getcwd()
    path = os.path.join(folder, "interrupted.safetensors")
    n = 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(folder, f"interrupted-{n}.safetensors")
    return path


def _check_resume(loaded: Any, config: dict[str, Any]) -> None:
    """A resumed run must replay the same batches: same model, seed, batch size and training set size."""
    saved = loaded.config if isinstance(loaded.config, dict) else {}
    problems = [f"{key} {saved[key]!r} in the checkpoint, {config[key]!r} now"
                for key in ("model", "seed", "batch_size", "train_size", "steps_per_epoch")
                if key in saved and saved[key] != config[key]]
    if problems:
        raise ValueError(f"convlab.train.fit: `resume` (={loaded.path!r}) is another run: " + "; ".join(problems)
                         + " (resuming replays the same batches; start a new run instead)")


# --------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_data: Dataset,
    test_data: Dataset | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str | None = None,
    warmup: int = 0,
    augment: str | Callable | None = None,
    label_smoothing: float = 0.0,
    logdir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    seed: int = 0,
    steps: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Iterable[Any] = (),
    model_name: str | None = None,
    config: dict[str, Any] | None = None,
    engine: Engine | None = None,
    file: TextIO | None = None,
) -> History:
    """Train ``model`` on ``train_data`` (and evaluate it on ``test_data`` after every epoch).

    Parameters
    ----------
    model : convlab.nn.Module
        Takes ``(N, C, H, W)`` float batches scaled to [0, 1], returns logits ``(N, num_classes)``.
    train_data, test_data : convlab.data.Dataset
    epochs, batch_size : int
        The last partial batch is kept, unless it would hold one example and the model has BatchNorm.
    optimizer : {'sgd', 'adam', 'adamw'}
    lr, momentum, weight_decay : float
        torch's meanings (momentum: SGD only).
    schedule : {'none', 'step', 'multistep', 'cosine', 'onecycle'}
        Stepped every optimizer step (see :func:`convlab.train.engine.build_scheduler`); ``warmup`` steps of
        linear warm-up before it.
    augment : str or callable
        ``'crop,flip'`` (names of :func:`convlab.data.transforms.preset`) or a transform ``t(x, rng) -> x``.
    logdir : path
        TensorBoard events and ``metrics.jsonl`` (:mod:`convlab.train.board`).
    checkpoint : path
        Written (safetensors, atomically) at the end of every epoch and when the run stops early;
        an existing file is refused unless ``overwrite=True`` (or it is the file being resumed).
    resume : path
        A checkpoint of this model to continue from (same ``seed``, ``batch_size`` and data for an exact replay).
    seed : int
        Everything random in the run comes from it (see the module docstring).
    steps : int
        Stop after this many optimizer steps in all.
    progress : bool
        A Rich progress bar on a terminal (plain lines otherwise) and the final tables, to ``file``.
    callbacks
        Objects with any of ``on_fit_start(run)``, ``on_batch_end(run, result)``, ``on_epoch_end(run, record)``,
        ``on_fit_end(run, history)``.

    Returns
    -------
    History
    """
    check_arguments(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, momentum=momentum,
                    weight_decay=weight_decay, schedule=schedule, warmup=warmup, seed=seed, steps=steps,
                    label_smoothing=label_smoothing)
    from .checkpoint import check_checkpoint_path, load_checkpoint
    from .progress import ProgressPrinter

    out = file if file is not None else sys.stdout
    name = model_name or getattr(model, "name", None) or type(model).__name__
    checkpoint = None if checkpoint is None else os.fspath(checkpoint)
    resume = None if resume is None else os.fspath(resume)
    if checkpoint is not None:
        same = resume is not None and os.path.abspath(checkpoint) == os.path.abspath(resume)
        check_checkpoint_path(checkpoint, overwrite=overwrite or same)
    loaded = load_checkpoint(resume) if resume is not None else None

    has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in model.modules())
    transform = augment
    if isinstance(augment, str):
        from ..data import transforms
        transform = transforms.preset(augment, train_data) if augment.strip() else None
    loader = DataLoader(train_data, batch_size, shuffle=True, seed=seed, transform=transform,
                        drop_last=has_bn and len(train_data) % batch_size == 1, dtype=_model_dtype(model))
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"convlab.train.fit: `train_data` has {len(train_data)} examples: no batch to train on")
    run_config = {
        "model": name, "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
        "momentum": momentum, "weight_decay": weight_decay, "schedule": schedule or "none", "warmup": warmup,
        "augment": augment if isinstance(augment, str) or augment is None else repr(augment),
        "label_smoothing": label_smoothing, "seed": seed, "train_size": len(train_data),
        "steps_per_epoch": steps_per_epoch, **(config or {}),
    }
    if engine is None or isinstance(engine, type) or not hasattr(engine, "train_step"):  # or a factory (a class,
        # functools.partial(TorchEngine, device=...)) called with the run's optimizer, schedule and length
        engine = (engine or NumpyEngine)(model, optimizer=optimizer, lr=lr, momentum=momentum,
                                         weight_decay=weight_decay, schedule=schedule,
                                         total_steps=steps_per_epoch * epochs, warmup=warmup,
                                         label_smoothing=label_smoothing)
    run = Run(model, engine, run_config, steps_per_epoch, epochs)
    if loaded is not None:
        _check_resume(loaded, run_config)
        engine.restore(loaded)
        run.step = loaded.step
    history = run.history
    history.checkpoint = checkpoint

    board = None
    if logdir is not None:
        from .callbacks import TensorBoardLogger
        shown = test_data if test_data is not None else train_data
        board = TensorBoardLogger(logdir, run_config, shown.images[:8].astype(np.float32) / 255)
    listeners: list[Any] = []
    if progress:
        listeners.append(ProgressPrinter(out))
    if board is not None:
        listeners.append(board)
    listeners += list(callbacks)

    model_config = {key: run_config[key] for key in ("input_size", "num_classes") if key in run_config}

    def save(path: str) -> None:
        engine.save_checkpoint(path, epoch=run.step // steps_per_epoch, step=run.step, config=run_config,
                               model_name=name, model_config=model_config or None, overwrite=True)

    started = time.perf_counter()
    try:
        with _sigint_stops(run):
            _call(listeners, "on_fit_start", run)
            while run.step < run.total_steps and run.stop is None:
                run.epoch, start = divmod(run.step, steps_per_epoch)
                run.loss_sum, run.correct, run.seen = 0.0, 0, 0
                run.epoch_start = time.perf_counter()
                for batch, (x, y) in enumerate(_batches(loader, run.epoch, start), start=start):
                    run.batch = batch
                    engine.seed_step(seed, run.epoch, run.batch)
                    result = engine.train_step(x, y)
                    run.last_loss = result.loss
                    if not result.finite:
                        run.stop = "nan"
                        break
                    run.step += 1
                    run.loss_sum += result.loss * result.count
                    run.correct += result.correct
                    run.seen += result.count
                    try:
                        _call(listeners, "on_batch_end", run, result)
                    except KeyboardInterrupt:
                        run.stop = "interrupted"
                    if steps is not None and run.step >= steps and run.stop is None:
                        run.stop = "steps"
                    if run.stop is not None:
                        break
                if run.stop is not None and run.step % steps_per_epoch != 0:
                    break  # stopped inside the epoch: no epoch record
                if run.stop == "nan":
                    break
                train_seconds, speed = time.perf_counter() - run.epoch_start, run.examples_per_second
                evaluation = None if test_data is None else evaluate(model, test_data, max(batch_size, 256),
                                                                     engine=engine)
                record = EpochRecord(
                    epoch=run.epoch + 1, train_loss=run.loss_sum / max(run.seen, 1),
                    train_accuracy=run.correct / max(run.seen, 1),
                    test_loss=None if evaluation is None else evaluation.loss,
                    test_accuracy=None if evaluation is None else evaluation.accuracy,
                    lr=engine.lr, seconds=train_seconds, examples_per_second=speed)
                history.epochs.append(record)
                history.evaluation = evaluation
                if checkpoint is not None:
                    save(checkpoint)
                _call(listeners, "on_epoch_end", run, record)
    except KeyboardInterrupt:  # a second Ctrl-C: stop now (the step in progress may be lost)
        run.stop = "interrupted"
    finally:
        history.seconds = time.perf_counter() - started
        history.step = run.step
        history.epoch = run.step // steps_per_epoch

    history.stopped = run.stop or "completed"
    position = f"step {run.step} (epoch {run.step // steps_per_epoch + 1}, batch {run.step % steps_per_epoch})"
    if history.stopped in ("interrupted", "steps"):
        if history.stopped == "interrupted" or checkpoint is not None:
            path = checkpoint if checkpoint is not None else interrupted_path(logdir)
            save(path)
            history.checkpoint = path
            what = "interrupted" if history.stopped == "interrupted" else f"stopped after {steps} steps"
            history.message = (f"{what} at {position}; checkpoint written to {path}; resume with --resume {path} "
                               f"(fit(..., resume={path!r})) and the same seed")
        else:
            history.message = f"stopped after {steps} steps at {position} (no checkpoint: pass --checkpoint)"
    elif history.stopped == "nan":
        kept = f"; the last good checkpoint stays at {checkpoint}" if checkpoint and os.path.exists(checkpoint) \
            else ""
        what = (f"the loss became {run.last_loss}" if not math.isfinite(run.last_loss) else
                f"a gradient became NaN or infinite (the loss was {run.last_loss:.4g})")
        history.message = (f"{what} at step {run.step + 1} (epoch {run.epoch + 1}, batch {run.batch}); training "
                           f"stopped before the update. Lower the learning rate (--lr, now {lr:g}){kept}")
        history.checkpoint = checkpoint if checkpoint and os.path.exists(checkpoint) else None
    else:
        history.message = (f"trained {epochs} epoch{'s' * (epochs != 1)} ({run.step} steps) in "
                           f"{history.seconds:.1f} s")
    if test_data is not None and history.evaluation is None and history.stopped != "nan":
        history.evaluation = evaluate(model, test_data, max(batch_size, 256), engine=engine)
    try:
        _call(listeners, "on_fit_end", run, history)
    finally:
        if board is not None:
            board.close()
    return history
