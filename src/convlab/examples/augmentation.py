"""Invariance by augmentation: the same network trained with and without it, tested on moved images (seed 000).

Seed 000 says what a convolutional network is not invariant to by itself --
translation beyond its pooling, rotation, scale, brightness -- and that data
augmentation teaches it. Here one small network (two 3x3 convolutions with
ReLU and max pooling, then a linear layer), from the same initial weights and
the same batches, is trained twice on the bundled Fashion-MNIST subset
(``convlab.data.open_dataset('fashion-mnist-mini')``): once on the images as
they are, once through ``convlab.data.transforms``: ``RandomAffine(15,
translate=(0.15, 0.15), scale=(0.8, 1.2))`` then ``ColorJitter(brightness=0.6)``.
Both are then tested on the clean test images and on test images shifted by
4 pixels right and down, rotated by 20 degrees, shrunk to 80% and darkened to
40% brightness.

The loop is the textbook one, written out (the example sits below
``convlab.train`` in the layers): ``logits = model(x)``, ``loss =
nn.CrossEntropyLoss()(logits, y)``, ``model.backward(loss_fn.backward())``,
``optim.Adam.step()``. ``run()`` trains on 1,000 images for 3 epochs
(a few seconds); ``run(train_size=10000, test_size=2000, epochs=5)`` is the
full measurement (``python -m convlab.examples.augmentation --full``).
"""

from __future__ import annotations

import sys
from typing import NamedTuple, TextIO

import numpy as np

from .. import nn, optim
from ..data import DataLoader, Dataset, open_dataset
from ..data.transforms import ColorJitter, Compose, RandomAffine
from .worked import Page

__all__ = ["CONDITIONS", "TITLE", "Invariance", "augmentation", "network", "run", "test_conditions"]

TITLE = "Invariance by data augmentation: shifted, rotated, scaled and darkened test images (seed 000)"
CONDITIONS = ("clean", "shifted 4 px", "rotated 20 deg", "scaled 0.8", "darkened 0.4")
FULL = {"train_size": 10000, "test_size": 2000, "epochs": 5}


class Invariance(NamedTuple):
    conditions: tuple[str, ...]
    plain: tuple[float, ...]  # test accuracy per condition, trained without augmentation
    augmented: tuple[float, ...]  # ... with augmentation
    train_size: int
    test_size: int
    epochs: int


def network(seed: int = 0) -> nn.Module:
    """Conv(1->8, 3, pad 1) ReLU MaxPool(2), Conv(8->16, 3, pad 1) ReLU MaxPool(2), Linear(16*7*7 -> 10)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10, rng=rng),
    )


def augmentation() -> Compose:
    """The training augmentation: the four invariances the test measures."""
    return Compose([RandomAffine(15, translate=(0.15, 0.15), scale=(0.8, 1.2), interpolation="bilinear"),
                    ColorJitter(brightness=0.6)])


def test_conditions(x: np.ndarray) -> dict[str, np.ndarray]:
    """The test batch ``x`` (N, 1, H, W) in [0, 1] as each condition of :data:`CONDITIONS` shows it."""
    count = len(x)
    zeros, ones = np.zeros(count), np.ones(count)
    move = RandomAffine(0, interpolation="bilinear")
    return {
        "clean": x,
        "shifted 4 px": move.apply(x, zeros, ones * 4, ones * 4, ones),
        "rotated 20 deg": move.apply(x, ones * 20, zeros, zeros, ones),
        "scaled 0.8": move.apply(x, zeros, zeros, zeros, ones * 0.8),
        "darkened 0.4": x * np.float32(0.4),
    }


def balanced(dataset: Dataset, size: int) -> Dataset:
    """The first ``size // num_classes`` images of every class, in their order."""
    per_class = size // dataset.num_classes
    keep = np.concatenate([np.flatnonzero(dataset.labels == c)[:per_class] for c in range(dataset.num_classes)])
    return dataset.subset(np.sort(keep))


def train(model: nn.Module, data: Dataset, epochs: int, transform: Compose | None, seed: int) -> None:
    """Adam (lr 2e-3), batches of 64, seeded shuffling: the same batches for both networks."""
    loader = DataLoader(data, 64, shuffle=True, seed=seed, transform=transform)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(epochs):
        for x, y in loader.batches(epoch):
            optimizer.zero_grad()
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with nn.no_grad():
        predicted = np.concatenate([model(x[i:i + 500]).argmax(axis=1) for i in range(0, len(x), 500)])
    return float(np.mean(predicted == y))


def run(file: TextIO | None = None, number: int | None = None, *, train_size: int = 1000, test_size: int = 500,
        epochs: int = 3, seed: int = 0) -> Invariance:
    """Train twice (without, with augmentation) and print the accuracies per test condition."""
    page = Page(file)
    page.title(TITLE, number)
    train_data = balanced(open_dataset("fashion-mnist-mini", "train"), train_size)
    test_data = balanced(open_dataset("fashion-mnist-mini", "test"), test_size)
    page.line(f"data: fashion-mnist-mini, {len(train_data)} training and {len(test_data)} test images "
              f"(balanced), {epochs} epochs of Adam (lr 2e-3, batch 64), seed {seed}",
              "network: Conv(1->8, 3x3) ReLU MaxPool 2, Conv(8->16, 3x3) ReLU MaxPool 2, Linear(784 -> 10)",
              f"augmentation: {augmentation()!r}")
    x = test_data.images.astype(np.float32) / np.float32(255)
    shown = test_conditions(x)
    results = {}
    for name, transform in (("plain", None), ("augmented", augmentation())):
        model = network(seed)
        train(model, train_data, epochs, transform, seed)
        results[name] = tuple(accuracy(model, shown[c], test_data.labels) for c in CONDITIONS)
    page.line("", f"{'test images':<16}{'plain':>8}{'augmented':>11}")
    for index, condition in enumerate(CONDITIONS):
        page.line(f"{condition:<16}{results['plain'][index]:>8.3f}{results['augmented'][index]:>11.3f}")
    moved = {name: float(np.mean(results[name][1:])) for name in results}
    page.line("", f"mean over the four changed test sets: plain {moved['plain']:.3f}, augmented "
                  f"{moved['augmented']:.3f}")
    return Invariance(CONDITIONS, results["plain"], results["augmented"], len(train_data), len(test_data), epochs)


if __name__ == "__main__":  # python -m convlab.examples.augmentation [--full]
    run(**(FULL if "--full" in sys.argv[1:] else {}))
