"""The TensorBoard callback ``fit(logdir=...)`` adds: what it logs, when (through :class:`convlab.train.board.Board`).

Every step: ``loss/train`` and ``accuracy/train`` (of that batch) and ``lr``
(the rate the next step uses), at the optimizer step. At the end of every
epoch: ``loss/test`` and ``accuracy/test`` at the step, the epoch's means
under ``epoch/...`` at the epoch, histograms of every weight and gradient,
the first convolution's kernels and its feature maps for a fixed batch of test
images. At the start: the run's configuration and that fixed input batch as a
grid. Each scalar also goes to ``metrics.jsonl``. On a resume the board purges
what a previous writer logged at later steps, so the curves do not fold back.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger:
    """Logs a run to ``logdir``: see the module docstring. ``images``: the fixed batch ``(B, C, H, W)`` in [0, 1]."""

    def __init__(self, logdir: str | os.PathLike, config: dict[str, Any], images: np.ndarray | None = None) -> None:
        from .board import check_logdir

        self.logdir = check_logdir(logdir)
        self.config = config
        self.images = images
        self.board: Any = None

    def _layer(self, model: nn.Module) -> str | None:
        return next((name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)

    def on_fit_start(self, run: Any) -> None:
        from .board import Board

        self.board = Board(self.logdir, purge_step=run.step if run.step else None)
        self.board.config(self.config)
        if self.images is not None and self.images.shape[1] in (1, 3):
            self.board.images(run.step, self.images)

    def on_batch_end(self, run: Any, result: Any) -> None:
        self.board.scalars(run.step, {"loss/train": result.loss, "accuracy/train": result.correct / result.count},
                           epoch=run.epoch)
        self.board.lr(run.step, run.engine.lr, epoch=run.epoch)

    def on_epoch_end(self, run: Any, record: Any) -> None:
        board, step = self.board, run.step
        values = {"loss/train": record.train_loss, "accuracy/train": record.train_accuracy, "lr": record.lr}
        if record.test_accuracy is not None:
            test = {"loss/test": record.test_loss, "accuracy/test": record.test_accuracy}
            board.scalars(step, test, epoch=record.epoch - 1)
            values.update(test)
        board.epoch_scalars(record.epoch, values, step=step)
        board.histograms(step, run.model)
        layer = self._layer(run.model)
        if layer is not None:
            board.kernels(step, run.model, layer=layer)
            if self.images is not None:
                board.feature_maps(step, run.model, self.images, [layer])
        board.flush()

    def on_fit_end(self, run: Any, history: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
