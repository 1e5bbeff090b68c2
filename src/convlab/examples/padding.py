"""Padding: PyTorch's 'same', TensorFlow's 'same' at stride 2, and the padding modes (seeds 000 and 004).

Seed 000 lists zero padding, replication padding and no padding; seed 004
gives the output size with ``p_h`` rows of padding in total. The engine's
``padding='same'`` (PyTorch: stride 1, the odd element on the right/bottom)
and ``'same_tf'`` (TensorFlow/Keras/JAX: output ``ceil(I / s)`` at any stride)
are shown on seed 000's 4x4 input, and the five padding modes on ``1 2 3 4``.

Seed 000 also says that with circular padding PyTorch's output can never be
larger than the input; both PyTorch and the engine give 8 outputs for 4
inputs with a 1-tap kernel and circular padding 2 (shown last).

>>> result = run(io.StringIO())
>>> result.modes["reflect"].tolist(), result.modes["symmetric"].tolist()
([3, 2, 1, 2, 3, 4, 3, 2], [2, 1, 1, 2, 3, 4, 4, 3])
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .stride_padding import INPUT, KERNEL
from .worked import Page, worked_example

__all__ = ["MODES", "SIGNAL", "TITLE", "Padding", "run"]

TITLE = "Padding: 'same', 'same_tf' and the padding modes (seeds 000, 004)"
SIGNAL = [1, 2, 3, 4]
MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


class Padding(NamedTuple):
    same: np.ndarray  # (4, 4): a 2x2 kernel with padding='same'
    same_padding: tuple[tuple[int, int], ...]  # 'same' as (lo, hi) per dimension
    same_tf: np.ndarray  # (2, 2): the 3x3 kernel, stride 2, padding='same_tf'
    same_tf_padding: tuple[tuple[int, int], ...]
    modes: dict[str, np.ndarray]  # mode -> 1 2 3 4 padded by 2 on each side (length 8)


def run(file: TextIO | None = None, number: int | None = None) -> Padding:
    """Show 'same' and 'same_tf' padding and the five padding modes."""
    page = Page(file)
    page.title(TITLE, number)
    x = np.array([INPUT])  # (1, 4, 4)
    same = worked_example(
        x, [[[[1, 1], [1, 1]]]], padding="same",
        title="(a) padding='same' (PyTorch): output size = input size at stride 1",
        notes=["The total padding d*(k-1) = 1 is odd; PyTorch puts the extra element on the right/bottom."])
    page.worked(same)
    same_tf = worked_example(
        x, [[KERNEL]], stride=2, padding="same_tf",
        title="(b) padding='same_tf' (TensorFlow/Keras/JAX 'same'): output = ceil(I / s) at any stride",
        notes=["The padding depends on the input size, so it is resolved by a rule of its own:"])
    page.worked(same_tf)

    page.step("(c) the padding modes on 1 2 3 4, padded by 2 on each side")
    page.line("A 1-tap kernel [1] shows the padded signal itself: F.conv1d(x, [[[1]]], padding=2, padding_mode=...)")
    signal = np.array([SIGNAL])  # (C=1, L=4)
    modes = {}
    for mode in MODES:
        modes[mode] = F.conv1d(signal, np.array([[[1]]]), padding=2, padding_mode=mode)[0]  # (8,)
        page.line(f"  {mode:<10} {' '.join(map(str, modes[mode].tolist()))}")
    page.line("zeros: the padding is 0; reflect: mirrored without repeating the edge; replicate: the",
              "edge repeated; circular: wrapped around; symmetric: mirrored with the edge repeated.",
              f"With circular padding the output here has {modes['circular'].size} elements for "
              f"{len(SIGNAL)} inputs: larger than the input,",
              "as in PyTorch (nn.Conv1d(1, 1, 1, padding=2, padding_mode='circular')), though seed 000 says",
              "a circular-padded convolution's output is never larger than its input.")
    return Padding(same.output[0], same.padding, same_tf.output[0], same_tf.padding, modes)


if __name__ == "__main__":  # python -m convlab.examples.padding
    run()
