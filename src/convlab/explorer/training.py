"""The training view: a ``convlab train`` log directory's curves, and its checkpoint's confusion matrix and
misclassified test examples.

The curves are ``metrics.jsonl`` as :func:`convlab.train.read_metrics` reads it (re-read on every request,
so a running training's new points appear); the confusion matrix is :func:`convlab.train.evaluate` of the
checkpoint on the test split of the data it was trained on (its configuration's ``data``; the bundled
Fashion-MNIST subset otherwise), computed once per checkpoint file version.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from .. import nn
from ..data import open_dataset
from . import images

MAX_MISCLASSIFIED = 48
MAX_TEST_EXAMPLES = 10_000


class TrainingError(ValueError):
    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


class TrainingRun:
    """The log directory and the checkpoint given on the command line (either may be None)."""

    def __init__(self, logdir: str | None = None, checkpoint: str | None = None) -> None:
        self.logdir = None if logdir is None else os.path.realpath(logdir)
        self.checkpoint = None if checkpoint is None else os.path.abspath(checkpoint)
        self._lock = threading.Lock()
        self._evaluation: tuple[Any, dict[str, Any], Any] | None = None

    def curves(self) -> dict[str, Any]:
        from ..train import read_metrics
        from ..train.board import METRICS_FILE

        if self.logdir is None:
            raise TrainingError("logdir", "no log directory: start the server with --logdir DIR", 404)
        # Only files inside the log directory are read: a link in it pointing elsewhere is refused.
        path = os.path.join(self.logdir, METRICS_FILE)
        if os.path.lexists(path) and (os.path.islink(path) or not _inside(os.path.realpath(path), self.logdir)):
            raise TrainingError("logdir", f"`logdir`: {METRICS_FILE} is a link; only files inside the log directory "
                                          "are read", 403)
        try:
            records = read_metrics(self.logdir)
        except ValueError as exc:
            message = str(exc).replace(self.logdir, os.path.basename(self.logdir))
            return {"logdir": os.path.basename(self.logdir), "series": {}, "message": message}
        series: dict[str, list[list[float]]] = {}
        epochs: dict[str, list[Any]] = {}
        for r in records:
            series.setdefault(str(r["tag"]), []).append([float(r["step"]), float(r["value"])])
            epochs.setdefault(str(r["tag"]), []).append(r.get("epoch"))
        return {"logdir": os.path.basename(self.logdir), "series": series, "epochs": epochs,
                "records": len(records), "last_step": max((int(r["step"]) for r in records), default=0)}

    def _stamp(self) -> Any:
        stat = os.stat(self.checkpoint)
        return stat.st_mtime_ns, stat.st_size

    def evaluation(self) -> dict[str, Any]:
        """Confusion matrix, accuracy and the first misclassified test examples of the checkpoint."""
        from ..train import evaluate, load_checkpoint

        if self.checkpoint is None:
            raise TrainingError("checkpoint", "no checkpoint: start the server with --checkpoint PATH", 404)
        with self._lock:
            stamp = self._stamp()
            if self._evaluation is not None and self._evaluation[0] == stamp:
                return self._evaluation[1]
            loaded = load_checkpoint(self.checkpoint)
            model = loaded.build_model()
            config = loaded.config if isinstance(loaded.config, dict) else {}
            data_name = config.get("data") or "fashion-mnist-mini"
            test = open_dataset(data_name, split="test")
            if len(test) > MAX_TEST_EXAMPLES:
                test = test.subset(np.arange(MAX_TEST_EXAMPLES))
            result = evaluate(model, test, batch_size=256)
            # The predictions of each example (the same forward pass evaluate makes), for the examples shown.
            predicted = np.empty(len(test), dtype=np.int64)
            model.eval()
            with nn.no_grad():
                for first in range(0, len(test), 256):
                    x = test.images[first:first + 256].astype(np.float32) / 255
                    predicted[first:first + 256] = model(x).argmax(axis=1)
            wrong = np.flatnonzero(predicted != test.labels)
            examples = [{"index": int(i), "true": int(test.labels[i]), "predicted": int(predicted[i]),
                         "png": images.picture_url(test.images[i].astype(np.float64) / 255)}
                        for i in wrong[:MAX_MISCLASSIFIED]]
            out = {"checkpoint": os.path.basename(self.checkpoint), "model": loaded.model_name,
                   "epoch": loaded.epoch, "step": loaded.step, "data": data_name, "count": result.count,
                   "correct": result.correct, "accuracy": result.accuracy, "loss": result.loss,
                   "classes": list(result.classes), "confusion": result.confusion.tolist(),
                   "per_class": [None if np.isnan(v) else float(v) for v in result.per_class],
                   "misclassified": len(wrong), "examples": examples}
            self._evaluation = (stamp, out, None)
            return out
