"""LeNet on Fashion-MNIST as Dive into Deep Learning trains it (section 7.6; seed 004's LeNet).

The book's recipe: the LeNet of seed 004 (sigmoid, average pooling,
``Conv(1->6, 5, pad 2) ... Linear(84->10)``), every convolution and linear
weight drawn with ``xavier_uniform_``, cross-entropy, plain SGD with learning
rate 0.9, batches of 256, 10 epochs, images scaled to [0, 1] and nothing else.
The loop below is the book's ``train_ch6`` written with convlab's pieces: a
:class:`convlab.data.DataLoader` (seeded shuffling), :class:`convlab.nn.CrossEntropyLoss`,
the model's own backward pass and :class:`convlab.optim.SGD`.

The book reports test accuracy 0.779 after 10 epochs on the full Fashion-MNIST
(60,000 training images). ``run()`` trains on 2,560 images of the bundled subset
(``fashion-mnist-mini``) for 1 epoch (10 steps) so that the walk stays quick; the full
recipe is ``python -m convlab.examples.lenet_d2l --data fashion-mnist --epochs 10 --limit 0``
(or ``convlab train lenet --recipe d2l --data fashion-mnist``); README "Training"
gives the measured figures. With sigmoids and no normalisation the network
first sits at chance (loss ln 10 = 2.303) for a while before it starts to learn:
the reason the book's next sections add batch normalisation and ReLU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NamedTuple, TextIO

import numpy as np

from .. import models, nn, optim
from ..data import DataLoader, open_dataset
from .worked import Page

__all__ = ["BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "TITLE", "LeNetRun", "main", "run"]

TITLE = "LeNet on Fashion-MNIST, Dive into Deep Learning's recipe (seed 004, d2l 7.6)"
LEARNING_RATE = 0.9
BATCH_SIZE = 256
EPOCHS = 1  # run()'s default, on LIMIT bundled images (a quick look); the book trains 10 epochs on 60,000
LIMIT = 2560
BOOK_TEST_ACCURACY = 0.779


class LeNetRun(NamedTuple):
    train_loss: list[float]  # per epoch, the mean over its batches
    train_accuracy: list[float]
    test_accuracy: list[float]
    model: nn.Module


def _accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with nn.no_grad():
        for x, y in loader:
            correct += int(np.count_nonzero(model(x).argmax(axis=1) == y))
            total += len(y)
    return correct / total


def run(file: TextIO | None = None, number: int | None = None, *, data: str = "fashion-mnist-mini",
        epochs: int = EPOCHS, limit: int | None = LIMIT, seed: int = 0) -> LeNetRun:
    """Train d2l's LeNet with the book's recipe on the first ``limit`` images of ``data`` (None: all of them)
    for ``epochs`` epochs; print one line per epoch."""
    page = Page(file)
    page.title(TITLE, number)
    train, test = open_dataset(data, split="train"), open_dataset(data, split="test")
    if limit is not None:
        train = train.subset(np.arange(min(limit, len(train))))
    model = models.create("lenet", input_size=tuple(train.images.shape[1:]), num_classes=train.num_classes,
                          rng=seed)
    rng = np.random.default_rng(seed)
    for module in model.modules():  # d2l's init_weights: Xavier-uniform weights, default biases
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight, rng=rng)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE)
    train_loader = DataLoader(train, BATCH_SIZE, shuffle=True, seed=seed)
    test_loader = DataLoader(test, BATCH_SIZE)
    page.line(f"data: {train.name}, {len(train)} training and {len(test)} test images {train.images.shape[1:]}",
              f"model: lenet ({model.num_parameters()} parameters), xavier_uniform_ weights; "
              f"SGD lr {LEARNING_RATE}, batch {BATCH_SIZE}, {epochs} epochs, seed {seed}")
    result = LeNetRun([], [], [], model)
    for epoch in range(epochs):
        model.train()
        train_loader.set_epoch(epoch)
        loss_sum = correct = seen = 0
        for x, y in train_loader:
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
            loss_sum += float(loss) * len(y)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == y))
            seen += len(y)
        result.train_loss.append(loss_sum / seen)
        result.train_accuracy.append(correct / seen)
        result.test_accuracy.append(_accuracy(model, test_loader))
        page.line(f"epoch {epoch + 1:2d}: loss {result.train_loss[-1]:.3f}, train acc "
                  f"{result.train_accuracy[-1]:.3f}, test acc {result.test_accuracy[-1]:.3f}")
    page.line(f"the book, 10 epochs on the full Fashion-MNIST: test acc {BOOK_TEST_ACCURACY}; here "
              f"{result.test_accuracy[-1]:.3f} after {epochs} epoch{'s' * (epochs != 1)} on {len(train)} images "
              f"(chance: {1 / train.num_classes:.3f})",
              "the full recipe: python -m convlab.examples.lenet_d2l --data fashion-mnist --epochs 10 --limit 0")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convlab.examples.lenet_d2l [--data NAME|PATH] [--epochs N] [--seed N]``."""
    parser = argparse.ArgumentParser(prog="python -m convlab.examples.lenet_d2l", description=TITLE)
    parser.add_argument("--data", default="fashion-mnist-mini")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--limit", type=int, default=LIMIT, help="the first N training images (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs (={args.epochs}) must be >= 1")
    run(data=args.data, epochs=args.epochs, limit=args.limit or None, seed=args.seed)
    return 0


if __name__ == "__main__":  # python -m convlab.examples.lenet_d2l
    sys.exit(main())
