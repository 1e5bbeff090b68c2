"""Several input channels, several output channels, and the 1x1 convolution as a matrix product (seed 004).

Seed 004 (notes on Dive into Deep Learning, chapter 6) states the rules without
numbers: with several input channels each channel has its own kernel and the
results are summed; each output channel has its own set of kernels; a 1x1
convolution mixes channels (it is a fully connected layer applied at every
pixel). The arrays are the book's (section 6.4): figure 5.1's input and kernel
with a second channel added.

>>> result = run(io.StringIO())
>>> result.multi_input.tolist()
[[56, 72], [104, 120]]
"""

from __future__ import annotations

import io  # noqa: F401  (the doctest writes into a StringIO)
from typing import NamedTuple, TextIO

import numpy as np

from .. import functional as F
from .worked import Page, worked_example

__all__ = ["INPUT", "KERNEL", "TITLE", "Channels", "run"]

TITLE = "Input channels, output channels and the 1x1 convolution (seed 004)"
INPUT = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]  # (2, 3, 3)
KERNEL = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]  # (2, 2, 2): one 2x2 kernel per input channel


class Channels(NamedTuple):
    multi_input: np.ndarray  # (2, 2): one output channel from two input channels
    per_channel: np.ndarray  # (2, 2, 2): each input channel with its own kernel, before the sum
    multi_output: np.ndarray  # (3, 2, 2): three filters K, K+1, K+2
    pointwise: np.ndarray  # (2, 2, 3): a 1x1 convolution 3 -> 2 channels
    pointwise_by_matmul: np.ndarray  # (2, 2, 3): the same as a matrix product
    pointwise_equal: bool


def run(file: TextIO | None = None, number: int | None = None) -> Channels:
    """Compute the three channel examples and check each against its definition."""
    page = Page(file)
    page.title(TITLE, number)
    x = np.array(INPUT)  # (C_in=2, 3, 3)
    k = np.array(KERNEL)  # (C_in=2, 2, 2)

    multi = worked_example(x, k[None], title="(a) two input channels -> one output channel",
                           notes=["The filter has one 2x2 kernel per input channel; the two cross-correlations",
                                  "are added (the book's corr2d_multi_in)."])
    page.worked(multi)
    per_channel = np.stack([F.conv2d(x[c][None], k[c][None, None])[0] for c in range(2)])  # (2, 2, 2)
    page.array("each channel on its own (channel 0, channel 1)", per_channel, ("channel",))
    summed = per_channel.sum(axis=0)
    page.line(f"their sum {summed.tolist()} equals the output: {np.array_equal(summed, multi.output[0])}.")

    filters = np.stack([k, k + 1, k + 2])  # (C_out=3, C_in=2, 2, 2)
    several = worked_example(x, filters, title="(b) three output channels: filters K, K+1, K+2",
                             notes=["Each output channel has its own filter (one kernel per input channel);",
                                    "the outputs are stacked (the book's corr2d_multi_in_out)."])
    page.worked(several)

    rng = np.random.default_rng(0)
    x3 = rng.integers(-3, 4, size=(3, 2, 3))  # (C_in=3, 2, 3)
    w1 = rng.integers(-2, 3, size=(2, 3, 1, 1))  # (C_out=2, C_in=3, 1, 1)
    pointwise = worked_example(x3, w1, title="(c) a 1x1 convolution, 3 -> 2 channels",
                               notes=["A 1x1 kernel sees one pixel: at every pixel the 3 channel values are",
                                      "multiplied by a 2x3 matrix (the book's corr2d_multi_in_out_1x1)."])
    page.worked(pointwise)
    matrix = w1.reshape(2, 3)  # (C_out, C_in)
    by_matmul = (matrix @ x3.reshape(3, -1)).reshape(2, 2, 3)  # (C_out, H*W) -> (C_out, H, W)
    equal = np.array_equal(by_matmul, pointwise.output)
    page.line(f"weight.reshape(2, 3) @ input.reshape(3, 6), reshaped to (2, 2, 3), equals the output: {equal}.",
              f"F.pointwise_conv (the engine's matrix-product path) agrees: "
              f"{np.array_equal(F.pointwise_conv(x3, matrix, ndim=2), pointwise.output)}.")
    return Channels(multi.output[0], per_channel, several.output, pointwise.output, by_matmul, equal)


if __name__ == "__main__":  # python -m convlab.examples.channels
    run()
