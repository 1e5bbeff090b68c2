"""``convlab train MODEL``: train a zoo model on a dataset with the NumPy engine.

Every value is checked before any data is read or any weight allocated; a
refusal is one line naming the option and the value as given (exit status 2).
Options not given come from the recipe (``--recipe``, :mod:`convlab.train.recipes`)
or, with ``--resume``, from the checkpoint's run, so ``convlab train lenet
--resume run.safetensors`` continues the same run.

Exit status: 0 trained (or stopped at ``--steps``), 1 the loss became NaN/inf,
2 a refused value, 130 interrupted by Ctrl-C (a checkpoint was written).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_parser", "main", "run"]

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
                    re.ASCII | re.IGNORECASE)
_DATA_NAMES = ("fashion-mnist-mini", "fashion-mnist")


class TrainUsageError(ValueError):
    """A refused value: printed as one line, exit status 2."""


def _refuse(option: str, text: object, problem: str) -> TrainUsageError:
    return TrainUsageError(f"`{option}` (={text!r}): {problem}")


def _int(option: str, text: str | None, minimum: int) -> int | None:
    if text is None:
        return None
    token = text.strip()
    if not _INT.fullmatch(token) or len(token) > 30:
        raise _refuse(option, text, f"must be an integer >= {minimum}")
    value = int(token)
    if value < minimum:
        raise _refuse(option, text, f"must be an integer >= {minimum}")
    if value > 2**62:
        raise _refuse(option, text, "is too large (at most 2**62)")
    return value


def _float(option: str, text: str | None, *, positive: bool) -> float | None:
    if text is None:
        return None
    token = text.strip()
    if not _FLOAT.fullmatch(token):
        raise _refuse(option, text, "is not a number (decimals like 0.1 or 1e-3)")
    value = float(token)
    if not math.isfinite(value):
        raise _refuse(option, text, "must be a finite number")
    if value < 0 or (positive and value == 0):
        raise _refuse(option, text, f"must be {'> 0' if positive else '>= 0'}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convlab train`` on the ``convlab`` command's subparsers (standard library only here)."""
    p = subparsers.add_parser(
        "train", help="train a zoo model on Fashion-MNIST (bundled), the Debian package's or your data",
        description="Train a zoo model (convlab models lists them) on the NumPy engine, with a progress bar, "
                    "the test accuracy, a per-class table and the confusion matrix at the end. Ctrl-C stops "
                    "after the current batch and writes a checkpoint; --resume continues a run exactly. "
                    "Options not given come from --recipe (default: Adam lr 1e-3, 1e-2 for sigmoid/tanh "
                    "networks without BatchNorm, batch 128, 10 epochs, cosine schedule; d2l: the book's LeNet "
                    "recipe) or from the checkpoint being resumed.")
    p.add_argument("model", metavar="MODEL", help="a zoo name, e.g. lenet, lenet_bn, resnet18_cifar")
    p.add_argument("--data", metavar="PATH|NAME",
                   help="fashion-mnist-mini (bundled, the default), fashion-mnist (apt-get install "
                        "dataset-fashion-mnist) or a dataset folder/file convlab.data.open_dataset reads")
    p.add_argument("--recipe", default=None, metavar="NAME", help="default or d2l (see convlab.train.recipes)")
    p.add_argument("--epochs", metavar="N")
    p.add_argument("--batch-size", metavar="N")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", metavar="LR", help="learning rate (the peak one with --schedule onecycle)")
    p.add_argument("--momentum", metavar="M", help="SGD's momentum")
    p.add_argument("--weight-decay", metavar="WD")
    p.add_argument("--schedule", choices=("none", "step", "multistep", "cosine", "onecycle"))
    p.add_argument("--warmup", metavar="STEPS", help="steps of linear learning-rate warm-up")
    p.add_argument("--augment", metavar="LIST", help="comma list of crop, flip, rotate, jitter, cutout ('' none)")
    p.add_argument("--label-smoothing", metavar="EPS")
    p.add_argument("--logdir", metavar="DIR", help="TensorBoard events and metrics.jsonl")
    p.add_argument("--checkpoint", metavar="PATH", help="safetensors checkpoint written after every epoch")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    p.add_argument("--seed", metavar="N", help="seed of the weights, the batch order, augmentation, dropout")
    p.add_argument("--steps", metavar="N", help="stop after N optimizer steps in all")
    p.add_argument("--num-classes", metavar="N", help="the model's classes (default: the data's)")
    p.add_argument("--limit", metavar="N", help="use only the first N training examples")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --checkpoint file")
    p.add_argument("--quiet", action="store_true", help="no progress; only the final result")
    p.add_argument("--engine", choices=("numpy", "torch"), help="numpy (default) or torch: the to_torch mirror, "
                   "torch autograd and torch.optim, same data, checkpoints and TensorBoard tags")
    p.add_argument("--nproc", metavar="N", help="N processes of DistributedDataParallel (torch, gloo on the cpu); "
                   "--batch-size is the global batch. Several machines: torchrun (see the README)")
    p.add_argument("--device", metavar="DEVICE", help="cpu (default) or cuda (torch engine; NCCL with --nproc)")
    p.add_argument("--master-port", metavar="PORT", help="the rendezvous port of --nproc (default: a free one)")
    p.set_defaults(run=run)
    return p


def _writable_folder(option: str, text: str, folder: str) -> None:
    """``folder`` (or its nearest existing parent, which will hold it) is a writable directory."""
    probe = os.path.abspath(folder or ".")
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise _refuse(option, text, f"{probe!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _refuse(option, text, f"the folder {probe!r} is not writable")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: the options given, else the checkpoint's run, else the recipe; all checked."""
    from . import recipes

    given = {
        "epochs": _int("--epochs", args.epochs, 1),
        "batch_size": _int("--batch-size", args.batch_size, 1),
        "optimizer": args.optimizer,
        "lr": _float("--lr", args.lr, positive=True),
        "momentum": _float("--momentum", args.momentum, positive=False),
        "weight_decay": _float("--weight-decay", args.weight_decay, positive=False),
        "schedule": args.schedule,
        "warmup": _int("--warmup", args.warmup, 0),
        "augment": args.augment,
        "label_smoothing": _float("--label-smoothing", args.label_smoothing, positive=False),
        "seed": _int("--seed", args.seed, 0),
    }
    if given["label_smoothing"] is not None and given["label_smoothing"] > 1:
        raise _refuse("--label-smoothing", args.label_smoothing, "must be in [0, 1]")
    if args.recipe is not None and args.recipe not in recipes.RECIPES:
        raise _refuse("--recipe", args.recipe, f"unknown recipe; the recipes: {', '.join(sorted(recipes.RECIPES))}")
    return given


def _check_model(name: str) -> str:
    from .. import models

    key = name.lower()
    if key not in models.list():
        close = difflib.get_close_matches(key, models.list(), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise _refuse("MODEL", name, f"unknown model{hint} (convlab models lists them)")
    return key


def _check_data(text: str) -> None:
    if text in _DATA_NAMES:
        return
    if not os.path.exists(text):
        raise _refuse("--data", text, f"no such file or folder (or a name: {', '.join(_DATA_NAMES)})")
    if os.path.isdir(text) and not os.listdir(text):
        raise _refuse("--data", text, "the folder is empty")


def run(args: argparse.Namespace) -> int:
    """Run ``convlab train`` from parsed arguments; the exit status."""
    try:
        return _run(args)
    except (ValueError, TypeError, FileExistsError) as exc:
        message = re.sub(r"\s*\n\s*", " ", str(exc))
        print(f"convlab train: error: {message}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import models
    from ..data import open_dataset
    from . import checkpoint as ckpt
    from . import recipes
    from .loop import fit

    name = _check_model(args.model)
    given = _settings(args)
    from .distributed import launch, plan

    run_plan = plan(args, _int)  # --engine, --nproc, --device, --master-port
    steps = _int("--steps", args.steps, 1)
    num_classes = _int("--num-classes", args.num_classes, 1)
    limit = _int("--limit", args.limit, 1)
    data = args.data if args.data is not None else "fashion-mnist-mini"
    _check_data(data)
    if args.logdir is not None:
        if os.path.exists(args.logdir) and not os.path.isdir(args.logdir):
            raise _refuse("--logdir", args.logdir, "is a file, not a folder")
        _writable_folder("--logdir", args.logdir, args.logdir)
    if args.checkpoint is not None:
        if os.path.isdir(args.checkpoint):
            raise _refuse("--checkpoint", args.checkpoint, "is a folder; name a file, e.g. run.safetensors")
        same_as_resume = args.resume is not None and os.path.abspath(args.resume) == os.path.abspath(args.checkpoint)
        if os.path.exists(args.checkpoint) and not args.overwrite and not same_as_resume:
            raise _refuse("--checkpoint", args.checkpoint, "exists; pass --overwrite to replace it")
        _writable_folder("--checkpoint", args.checkpoint, os.path.dirname(args.checkpoint))

    previous: dict[str, Any] = {}
    if args.resume is not None:
        if not os.path.isfile(args.resume):
            raise _refuse("--resume", args.resume, "no such checkpoint file")
        try:
            loaded = ckpt.load_checkpoint(args.resume)
        except (ValueError, OSError) as exc:
            raise _refuse("--resume", args.resume, f"not a convlab checkpoint ({exc})") from None
        previous = dict(loaded.config)
        if previous.get("model") != name:
            raise _refuse("--resume", args.resume, f"is a checkpoint of {previous.get('model')!r}, not of {name!r}")
        for key, option in (("seed", "--seed"), ("batch_size", "--batch-size")):
            if given[key] is not None and key in previous and given[key] != previous[key]:
                raise _refuse(option, given[key], f"differs from the resumed run's {previous[key]}; a resumed run "
                                                  f"replays the same batches (start a new run instead)")
    recipe = recipes.get(args.recipe or previous.get("recipe", "default"))
    settings = {key: value if value is not None else previous.get(key, getattr(recipe, key, 0))
                for key, value in given.items()}
    if settings["schedule"] == "onecycle" and settings["warmup"]:
        raise _refuse("--warmup", settings["warmup"], "does not combine with --schedule onecycle (it warms up itself)")
    if limit is None:
        limit = previous.get("limit")

    if run_plan.launch:
        return launch(args, run_plan)
    train = open_dataset(data, split="train")
    test = open_dataset(data, split="test")
    if limit is not None:
        train = train.subset(np.arange(min(limit, len(train))))
    classes = num_classes if num_classes is not None else previous.get("num_classes", max(train.num_classes,
                                                                                          test.num_classes))
    for split, dataset in (("training", train), ("test", test)):
        top = int(dataset.labels.max(initial=0))
        if top >= classes:
            raise _refuse("--num-classes", classes, f"the {split} labels of {data!r} go up to {top}; "
                                                    f"--num-classes must be at least {top + 1}")
    if settings["augment"]:
        from ..data import transforms

        try:
            transforms.preset(settings["augment"], train)
        except ValueError as exc:
            raise _refuse("--augment", settings["augment"], str(exc)) from None
    input_size = tuple(int(v) for v in train.images.shape[1:])
    model = models.create(name, input_size=input_size, num_classes=classes, rng=settings["seed"])
    if settings["lr"] is None:
        settings["lr"] = recipes.default_lr(model)
    if args.resume is None:
        recipes.initialize(model, recipe.init, np.random.default_rng([settings["seed"], 1]))
    config = {"recipe": recipe.name, "data": data, "limit": limit, "num_classes": classes,
              "input_size": list(input_size)}
    with run_plan:  # a rank of --nproc/torchrun: the process group; rank 0 alone prints and logs
        history = fit(model, train, test, steps=steps, logdir=args.logdir if run_plan.rank == 0 else None,
                      checkpoint=args.checkpoint, resume=args.resume, overwrite=args.overwrite,
                      progress=not args.quiet and run_plan.rank == 0, model_name=name, config=config,
                      engine=run_plan.engine_factory(), **settings)
    if args.quiet:
        from .progress import accuracy_line

        print(history.message)
        if history.evaluation is not None:
            print(accuracy_line(history.evaluation))
    return {"completed": 0, "steps": 0, "nan": 1, "interrupted": 130}[history.stopped]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convlab.train ...``: the same as ``convlab train ...``."""
    parser = argparse.ArgumentParser(prog="convlab")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return args.run(args)
