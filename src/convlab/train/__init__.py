"""Training: the loop, checkpoints (safetensors) and TensorBoard logging (``convlab train``).

:func:`fit` trains a model on a :class:`convlab.data.Dataset` through an engine
(:class:`NumpyEngine`: forward, loss, backward, optimizer step per batch) and
returns a :class:`History`; :func:`evaluate` gives the loss, the accuracy, the
confusion matrix and the accuracy per class. :mod:`convlab.train.recipes`
names the recipes, :mod:`convlab.train.cli` is ``convlab train``.
"""

from . import recipes
from .board import Board, image_grid, read_metrics
from .checkpoint import Checkpoint, load_checkpoint, restore, save_checkpoint
from .engine import Engine, NumpyEngine, StepResult
from .loop import EpochRecord, Evaluation, History, Run, evaluate, fit

__all__ = ["Board", "Checkpoint", "Engine", "EpochRecord", "Evaluation", "History", "NumpyEngine", "Run", "StepResult",
           "evaluate", "fit", "image_grid", "load_checkpoint", "read_metrics", "recipes", "restore", "save_checkpoint"]
