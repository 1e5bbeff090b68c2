"""Images through ``Conv2d(3, 6, 3)`` and into TensorBoard: the inputs and the six feature maps (seed 000).

Seed 000 reads the CIFAR-10 test set in batches of 64, passes each batch
through one untrained ``Conv2d(in_channels=3, out_channels=6, kernel_size=3)``
(``(64, 3, 32, 32) -> (64, 6, 30, 30)``) and writes the inputs and the outputs
to TensorBoard with ``writer.add_images``. To show six channels as RGB images
it calls ``torch.reshape(output, (-1, 3, 30, 30))`` (without keeping the
result, so the call does nothing, as its comment notes); had it kept it, each
"image" would be three channels of one map paired as red, green and blue, and
the batch would double to 128 images that mix two examples' maps.

Here every output channel is its own grayscale image: the tag
``output/channel_k`` holds map ``k`` of every image in the batch, scaled to
[0, 1] with that channel's minimum and maximum over the batch (one scale per
channel, so the six maps' brightness is comparable across images). The inputs
are under ``input``. With ``data=PATH`` to a CIFAR-10 folder (the binary or
the Python version) it reads the test split; without it, the bundled
Fashion-MNIST subset, whose one gray channel is repeated to three (a gray
image in RGB) so the same ``Conv2d(3, 6, 3)`` applies.

``tensorboard --logdir DIR`` then shows the batches under IMAGES.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from typing import NamedTuple, TextIO

import numpy as np

from .. import nn
from ..data import DataLoader, open_dataset
from .worked import Page

__all__ = ["BATCH_SIZE", "TITLE", "FeatureMaps", "channel_images", "main", "run"]

TITLE = "Conv2d(3, 6, 3) on images, the inputs and six feature maps in TensorBoard (seed 000)"
BATCH_SIZE = 64
BATCHES = 2  # run()'s default; the seed walks the whole test set


class FeatureMaps(NamedTuple):
    logdir: str | None  # None: the events went to a temporary folder, removed
    input_shape: tuple[int, ...]  # one batch, (64, 3, H, W)
    output_shape: tuple[int, ...]  # (64, 6, H-2, W-2)
    tags: list[str]  # the image tags written
    steps: int


def channel_images(maps: np.ndarray) -> list[np.ndarray]:
    """``(N, C, H, W)`` feature maps -> C arrays ``(N, 1, H, W)`` in [0, 1], each channel min-max scaled over the batch.

    >>> [m[:, 0, 0, 0].tolist() for m in channel_images(np.array([[[[0.0]], [[5.0]]], [[[2.0]], [[1.0]]]]))]
    [[0.0, 1.0], [1.0, 0.0]]
    """
    out = []
    for c in range(maps.shape[1]):
        channel = maps[:, c:c + 1]  # (N, 1, H, W): one channel, every image
        low, high = float(channel.min()), float(channel.max())
        out.append((channel - low) / (high - low) if high > low else np.zeros_like(channel))
    return out


def run(file: TextIO | None = None, number: int | None = None, *, data: str | None = None,
        logdir: str | None = None, batches: int = BATCHES, seed: int = 0, _shown: bool = True) -> FeatureMaps:
    """Write ``batches`` batches of inputs and feature maps to ``logdir`` (None: a temporary folder, removed)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # pragma: no cover - the train extra is installed in the test environment
        raise ImportError('the TensorBoard example needs tensorboardX: pip install "convlab[train]"') from None
    page = Page(file)
    if _shown:
        page.title(TITLE, number)
    dataset = open_dataset(data if data is not None else "fashion-mnist-mini", split="test")
    if logdir is None:  # a look at the shapes only: the events go to a temporary folder, removed at the end
        with tempfile.TemporaryDirectory(prefix="convlab-tensorboard-") as folder:
            return run(file, number, data=data, logdir=folder, batches=batches, seed=seed, _shown=False)._replace(
                logdir=None)
    folder = logdir
    conv = nn.Conv2d(in_channels=3, out_channels=6, kernel_size=3, stride=1, padding=0,
                     rng=np.random.default_rng(seed))
    page.line(f"data: {dataset.name}, test split, {len(dataset)} images {dataset.images.shape[1:]}"
              + ("; its one gray channel repeated to 3 (RGB)" if dataset.images.shape[1] == 1 else ""),
              f"model: {conv!r} (untrained, seed {seed})")
    tags = ["input"] + [f"output/channel_{c}" for c in range(conv.out_channels)]
    input_shape = output_shape = ()
    writer = SummaryWriter(folder)
    try:
        for step, (x, _) in enumerate(DataLoader(dataset, BATCH_SIZE)):
            if step == batches:
                break
            if x.shape[1] == 1:
                x = np.repeat(x, 3, axis=1)  # (N, 3, H, W): gray as RGB
            with nn.no_grad():
                output = conv(x)
            input_shape, output_shape = x.shape, output.shape
            page.line(f"step {step}: input {tuple(x.shape)} -> output {tuple(output.shape)}")
            writer.add_images("input", x, step, dataformats="NCHW")
            for tag, images in zip(tags[1:], channel_images(output), strict=True):
                writer.add_images(tag, images, step, dataformats="NCHW")
    finally:
        writer.close()
    page.line(f"wrote the tags {', '.join(tags)} for {min(batches, step + 1)} steps; "
              + (f"see them with: tensorboard --logdir {folder}" if _shown else
                 "(to a temporary folder, removed now: pass --logdir DIR to keep them for tensorboard --logdir DIR)"))
    return FeatureMaps(folder, tuple(input_shape), tuple(output_shape), tags, min(batches, step + 1))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convlab.examples.tensorboard_conv [--data CIFAR_FOLDER] [--logdir DIR] [--batches N]``."""
    parser = argparse.ArgumentParser(prog="python -m convlab.examples.tensorboard_conv", description=TITLE)
    parser.add_argument("--data", default=None, help="a CIFAR-10 folder (default: the bundled Fashion-MNIST)")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--batches", type=int, default=BATCHES)
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches (={args.batches}) must be >= 1")
    run(data=args.data, logdir=args.logdir, batches=args.batches)
    return 0


if __name__ == "__main__":  # python -m convlab.examples.tensorboard_conv
    sys.exit(main())
