"""Learning the edge kernel from data by gradient descent (seed 003, Dive into Deep Learning 5.1.4).

The input is the edge-detection image ``X`` and the target is its edges
``Y = conv2d(X, [[1, -1]])``. Starting from a random 1x2 kernel, each step
computes ``Y_hat = conv2d(X, w)``, the squared error ``sum((Y_hat - Y)**2)``,
and its gradient with respect to the kernel with the engine's own backward
pass, :func:`convlab.functional.conv_vjp` (``grad_output = 2*(Y_hat - Y)``),
then moves the kernel by ``-lr`` times that gradient. As in the book there is
no bias, the learning rate is 3e-2 and the loss is printed every 2 steps.

>>> result = run(io.StringIO())
>>> bool(np.all(np.diff(result.losses) < 0)), bool(np.abs(result.kernel - [1, -1]).max() < 0.1)
(True, True)
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .edge_detection import KERNEL, edge_image
from .worked import Page, format_matrix

__all__ = ["LEARNING_RATE", "STEPS", "TITLE", "LearnedKernel", "run"]

TITLE = "Learning the kernel [[1, -1]] from data, with the engine's gradient (seed 003)"
LEARNING_RATE = 3e-2
# With this image the squared error's Hessian has eigenvalues 12 and 60, so each step multiplies
# the kernel's error by 1 - 0.03*12 = 0.64 and -0.8 along the two eigenvectors: after 12 steps any
# start in [-1, 1]^2 is within 0.08 of [1, -1] (0.8**12 = 0.069), and the loss falls at every step.
STEPS = 12


class LearnedKernel(NamedTuple):
    initial: np.ndarray  # (2,) the random start
    kernel: np.ndarray  # (2,) after the last step
    losses: np.ndarray  # (STEPS + 1,) the loss before each step and after the last one


def run(file: TextIO | None = None, number: int | None = None, *, seed: int = 0, steps: int = STEPS,
        learning_rate: float = LEARNING_RATE) -> LearnedKernel:
    """Learn the 1x2 kernel from ``seed``'s random start; print the loss every 2 steps."""
    page = Page(file)
    page.title(TITLE, number)
    x = edge_image()[None, None]  # (1, 1, 6, 8)
    target = F.conv2d(x, np.array([[KERNEL]]))  # (1, 1, 6, 7)
    rng = np.random.default_rng(seed)
    weight = rng.uniform(-1.0, 1.0, size=(1, 1, 1, 2))  # (C_out, C_in, 1, 2)
    initial = weight[0, 0, 0].copy()
    page.line("X: the 6x8 edge image; Y = F.conv2d(X, [[1, -1]]), its 6x7 edges.",
              "Each step: Y_hat = F.conv2d(X, w); loss = sum((Y_hat - Y)**2);",
              "  grad_w = F.conv_vjp(2*(Y_hat - Y), X, w).weight; w -= lr * grad_w",
              f"(no bias, lr = {learning_rate:g}, {steps} steps, random start from "
              f"numpy.random.default_rng({seed}).uniform(-1, 1))")
    page.array("initial kernel", initial[None])
    losses = []
    for step in range(1, steps + 1):
        error = F.conv2d(x, weight) - target  # (1, 1, 6, 7)
        losses.append(float(np.sum(error ** 2)))
        weight = weight - learning_rate * F.conv_vjp(2.0 * error, x, weight).weight
        if step % 2 == 0:
            page.line(f"step {step:2d}, loss {losses[-1]:.3f}")
    losses.append(float(np.sum((F.conv2d(x, weight) - target) ** 2)))
    kernel = weight[0, 0, 0]
    page.line(f"after the last step, loss {losses[-1]:.3g}")
    page.line("learned kernel:", format_matrix(np.round(kernel, 4)[None]),
              f"largest difference from [1, -1]: {np.abs(kernel - np.array(KERNEL[0])).max():.3g}")
    return LearnedKernel(initial, kernel, np.array(losses))


if __name__ == "__main__":  # python -m convlab.examples.learn_kernel
    run()
