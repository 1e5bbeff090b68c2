"""What :func:`convlab.train.fit` prints: a progress bar while training, then the test accuracy and two tables.

On a terminal with Rich (the extra ``cli``) the bar shows the epoch, the
batches, the running loss and accuracy, the learning rate, examples per second
and the time left; elsewhere (a pipe, a file, no Rich) one plain line per
epoch. At the end: ``test accuracy`` (exactly :func:`convlab.train.evaluate`'s),
a per-class table and the confusion matrix (rows: true class, columns:
predicted), as Rich tables when Rich is installed, plain text otherwise.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

__all__ = ["ProgressPrinter", "evaluation_text", "print_evaluation"]


def _rich_console(file: TextIO) -> Any | None:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=file, highlight=False)


def accuracy_line(evaluation: Any) -> str:
    """``test accuracy 0.8765 (1753/2000), loss 0.3512``."""
    return (f"test accuracy {evaluation.accuracy:.4f} ({evaluation.correct}/{evaluation.count}), "
            f"loss {evaluation.loss:.4f}")


def evaluation_text(evaluation: Any) -> str:
    """The per-class table and the confusion matrix as plain text."""
    classes = evaluation.classes
    width = max(len(c) for c in classes)
    lines = [f"{'class':<{width}}  {'count':>6}  {'correct':>7}  {'accuracy':>8}"]
    for i, name in enumerate(classes):
        total = int(evaluation.confusion[i].sum())
        acc = "-" if total == 0 else f"{evaluation.per_class[i]:.4f}"
        lines.append(f"{name:<{width}}  {total:>6}  {int(evaluation.confusion[i, i]):>7}  {acc:>8}")
    cell = max(5, len(str(int(evaluation.confusion.max(initial=0)))) + 1)
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * (width + 2) + "".join(f"{i:>{cell}}" for i in range(len(classes)))]
    for i, name in enumerate(classes):
        lines.append(f"{name:<{width}}  " + "".join(f"{int(v):>{cell}}" for v in evaluation.confusion[i]))
    return "\n".join(lines)


def print_evaluation(evaluation: Any, file: TextIO) -> None:
    """The accuracy line, then the tables (Rich when installed)."""
    console = _rich_console(file)
    print(accuracy_line(evaluation), file=file, flush=True)
    if console is None:
        print(evaluation_text(evaluation), file=file)
        return
    from rich.table import Table

    per_class = Table(title="accuracy per class")
    for column in ("class", "count", "correct", "accuracy"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for i, name in enumerate(evaluation.classes):
        total = int(evaluation.confusion[i].sum())
        per_class.add_row(name, str(total), str(int(evaluation.confusion[i, i])),
                          "-" if total == 0 else f"{evaluation.per_class[i]:.4f}")
    console.print(per_class)
    confusion = Table(title="confusion matrix (rows: true class, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for i in range(len(evaluation.classes)):
        confusion.add_column(str(i), justify="right")
    for i, name in enumerate(evaluation.classes):
        confusion.add_row(f"{i} {name}", *(f"[bold]{v}[/bold]" if j == i else str(v)
                                           for j, v in enumerate(evaluation.confusion[i].tolist())))
    console.print(confusion)


class ProgressPrinter:
    """The callback ``fit(progress=True)`` adds: a Rich bar on a terminal; elsewhere a line every 30 s and one
    per epoch."""

    PLAIN_EVERY = 30.0  # seconds between the plain progress lines

    def __init__(self, file: TextIO) -> None:
        self.file = file
        console = _rich_console(file)
        self.console = console if console is not None and console.is_terminal else None
        self.progress: Any = None
        self.task: Any = None
        self._last_update = 0.0

    def on_fit_start(self, run: Any) -> None:
        config = run.config
        epochs = f"{run.epochs} epoch{'s' * (run.epochs != 1)}"
        print(f"training {config['model']} on {config['train_size']} examples: {epochs} of {run.steps_per_epoch} "
              f"batches of {config['batch_size']}, {config['optimizer']} lr {config['lr']:g}, "
              f"schedule {config['schedule']}, seed {config['seed']}"
              + (f"; resuming at step {run.step}" if run.step else ""), file=self.file, flush=True)
        if self.console is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.4f} lr {task.fields[lr]:.3g} "
                       "{task.fields[speed]:.0f} ex/s"),
            TimeRemainingColumn(), console=self.console, transient=False)
        self.progress.start()
        done = run.step
        self.task = self.progress.add_task("train", total=run.total_steps, completed=done,
                                           epoch=f"{done // run.steps_per_epoch + 1}/{run.epochs}",
                                           loss=float("nan"), acc=float("nan"), lr=run.engine.lr, speed=0.0)

    def on_batch_end(self, run: Any, result: Any) -> None:
        if self.progress is None:
            self._plain_line(run)
            return
        now = time.perf_counter()
        if now - self._last_update < 0.1 and run.step % run.steps_per_epoch:
            return
        self._last_update = now
        self.progress.update(self.task, completed=run.step, epoch=f"{run.epoch + 1}/{run.epochs}",
                             loss=run.loss_sum / max(run.seen, 1), acc=run.correct / max(run.seen, 1),
                             lr=run.engine.lr, speed=run.examples_per_second)

    def _plain_line(self, run: Any) -> None:
        """Without a bar: a line every ``PLAIN_EVERY`` seconds with the same figures and the time left."""
        now = time.perf_counter()
        if not self._last_update:
            self._last_update = now
        if now - self._last_update < self.PLAIN_EVERY:
            return
        self._last_update = now
        speed = run.examples_per_second
        left = (run.total_steps - run.step) * run.config["batch_size"] / speed if speed > 0 else float("nan")
        eta = f"{int(left // 60)}:{int(left % 60):02d}" if left == left else "?"
        print(f"  step {run.step}/{run.total_steps} (epoch {run.epoch + 1}/{run.epochs}): loss "
              f"{run.loss_sum / max(run.seen, 1):.4f} acc {run.correct / max(run.seen, 1):.4f} lr {run.engine.lr:.3g} "
              f"{speed:.0f} ex/s, ETA {eta}", file=self.file, flush=True)

    def on_epoch_end(self, run: Any, record: Any) -> None:
        test = "" if record.test_accuracy is None else \
            f", test loss {record.test_loss:.4f} accuracy {record.test_accuracy:.4f}"
        line = (f"epoch {record.epoch}/{run.epochs}: train loss {record.train_loss:.4f} accuracy "
                f"{record.train_accuracy:.4f}{test}, lr {record.lr:.3g}, {record.examples_per_second:.0f} ex/s, "
                f"{record.seconds:.1f} s")
        if self.progress is not None:
            self.progress.console.print(line, highlight=False)
        else:
            print(line, file=self.file, flush=True)

    def on_fit_end(self, run: Any, history: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
        print(history.message, file=self.file, flush=True)
        if history.evaluation is not None:
            print_evaluation(history.evaluation, self.file)

