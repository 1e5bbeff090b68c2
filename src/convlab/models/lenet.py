"""LeNet: the Dive into Deep Learning version and LeNet-5 as LeCun et al. (1998) describe it.

One class, two configurations:

``lenet`` (Zhang et al., *Dive into Deep Learning*, section 7.6 "LeNet")
    ``Conv(1->6, 5x5, pad 2) Sigmoid AvgPool(2) Conv(6->16, 5x5) Sigmoid AvgPool(2)
    Flatten Linear(400->120) Sigmoid Linear(120->84) Sigmoid Linear(84->10)``
    on 1x28x28 (Fashion-MNIST): 61,706 parameters. The padding of 2 makes a 28x28
    image look like the paper's 32x32 input to C1.

``lenet5`` (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998, section II.B) on 1x32x32:

    ===== ==================================================== ============ ===========
    layer  what                                                 parameters   connections
    ===== ==================================================== ============ ===========
    C1    6 maps, 5x5 convolution -> 6x28x28                    156          122,304
    S2    2x2 subsampling: sum x trainable coefficient + bias   12           5,880
    C3    16 maps, 5x5, sparse connection table (Table I)       1,516        151,600
    S4    2x2 subsampling                                       32           2,000
    C5    120 maps, 5x5 convolution -> 120x1x1                  48,120       48,120
    F6    84 units, fully connected                             10,164       10,164
    ===== ==================================================== ============ ===========

    60,000 trainable parameters up to F6, every layer followed by the squashing function.

What is faithful and what is simplified in ``lenet5``:

* C3's connection table is implemented exactly, with grouped convolutions: the
  6 maps that see 3 contiguous S2 maps, the 9 that see 4, and the one that sees
  all 6 form three groups; a :class:`~convlab.nn.Concat` of
  :class:`~convlab.nn.ChannelSlice` gathers each map's inputs (wrapping around,
  e.g. maps 4, 5, 0) and one convolution with ``groups = number of maps``
  computes the group. Parameters 6*(3*25+1) + 9*(4*25+1) + (6*25+1) = 1,516, as in the paper.
* S2/S4 are exact: ``AvgPool2d(2)`` followed by a depthwise 1x1 convolution
  (one coefficient and one bias per map) equals the paper's
  "sum of four inputs times a trainable coefficient plus a trainable bias"
  (the coefficient absorbs the factor 4).
* The squashing function is ``tanh``. The paper's ``f(a) = A tanh(S a)`` with
  ``A = 1.7159``, ``S = 2/3`` spans the same function class: ``S`` folds into the
  preceding layer's weights and bias, ``A`` into the following layer's weights.
  Only the initial scale (and so the training dynamics) differs.
* Simplified: the output layer. The paper uses 10 Euclidean radial basis
  function units ``y_i = sum_j (x_j - w_ij)^2`` whose 84 x 10 = 840 parameters
  are fixed (hand-designed 7x12 bitmaps of the characters), not trained. Here it
  is ``Linear(84, num_classes)``, 850 trainable parameters, so the model has
  60,000 + 850 = 60,850 trainable parameters instead of 60,000 trainable + 840 fixed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .. import nn
from ..spec import as_bool
from ._common import Layers, ZooModel, check_choice

__all__ = ["LENET5_C3_TABLE", "LeNet", "connection_table_conv"]

#: LeCun et al. (1998), Table I: for each of C3's 16 maps, the S2 maps it is connected to.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def _runs(channels: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive channel indices as half-open ranges: (4, 5, 0) -> [(4, 6), (0, 1)]."""
    runs: list[tuple[int, int]] = []
    for c in channels:
        if runs and runs[-1][1] == c:
            runs[-1] = (runs[-1][0], c + 1)
        else:
            runs.append((c, c + 1))
    return runs


def connection_table_conv(
    L: Layers, table: Sequence[Sequence[int]], kernel_size: int
) -> nn.Concat:
    """A convolution whose output map ``j`` sees only the input maps ``table[j]``.

    Consecutive output maps with the same fan-in form one group: a ``Concat`` of
    ``ChannelSlice`` gathers their inputs one after another, and a convolution
    with ``groups = number of maps`` convolves each map's slice separately. The
    output channels come out in table order.
    """
    groups: list[tuple[int, list[Sequence[int]]]] = []
    for inputs in table:
        if groups and groups[-1][0] == len(inputs):
            groups[-1][1].append(inputs)
        else:
            groups.append((len(inputs), [inputs]))
    branches: OrderedDict[str, nn.Module] = OrderedDict()
    first = 0
    for fan_in, maps in groups:
        slices = [nn.ChannelSlice(start, stop) for inputs in maps for start, stop in _runs(inputs)]
        conv = L.Conv2d(fan_in * len(maps), len(maps), kernel_size, groups=len(maps))
        last = first + len(maps) - 1
        name = f"maps_{first}_{last}" if last > first else f"map_{first}"
        branches[name] = nn.Sequential(OrderedDict(gather=nn.Concat(*slices), conv=conv))
        first = last + 1
    return nn.Concat(branches)


class LeNet(ZooModel):
    """LeNet (Dive into Deep Learning, the default) and LeNet-5 (LeCun et al., 1998): see the module docstring.

    A flat ``Sequential`` like the book's ``nn.Sequential``, so ``model[0]`` is C1.

    Parameters
    ----------
    input_size : (channels, height, width)
        ``(1, 28, 28)`` for the book, ``(1, 32, 32)`` for the paper.
    num_classes : int
    activation : {'sigmoid', 'tanh', 'relu'}
        The squashing function after every layer but the last.
    c1_padding : int
        2 in the book (28x28 -> 28x28), 0 in the paper (32x32 -> 28x28).
    subsampling : {'average', 'trainable'}
        ``'average'``: a plain ``AvgPool2d(2)`` (the book); ``'trainable'``: the
        paper's S2/S4 (average, times a per-map coefficient, plus a per-map bias,
        then the activation).
    c3_connections : {'full', 'table'}
        ``'table'``: the paper's sparse C3 (:data:`LENET5_C3_TABLE`).
    c5 : {'linear', 'conv'}
        ``'linear'``: ``Flatten, Linear(16*5*5, 120)`` (the book); ``'conv'``: the
        paper's C5, a 5x5 convolution to 120 maps (1x1 on a 32x32 input), then Flatten.
        Both have 48,120 parameters on the standard input.
    pooling : {'average', 'max'}
        With ``subsampling='average'``: ``AvgPool2d(2)`` (the book) or ``MaxPool2d(2)``.
    batch_norm : bool
        A BatchNorm after every convolution and hidden linear layer, before the
        activation (Dive into Deep Learning, section 8.5, "LeNet with batch normalization").
    dtype, rng
        Parameter dtype and the random generator (or int seed) for the initial weights.

    Examples
    --------
    >>> model = LeNet(rng=0)
    >>> model.num_parameters()
    61706
    >>> LeNet((1, 32, 32), activation="tanh", c1_padding=0, subsampling="trainable",
    ...       c3_connections="table", c5="conv", rng=0).num_parameters()
    60850
    """

    def __init__(
        self,
        input_size: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        *,
        activation: str = "sigmoid",
        c1_padding: int = 2,
        subsampling: str = "average",
        c3_connections: str = "full",
        c5: str = "linear",
        pooling: str = "average",
        batch_norm: bool = False,
        dtype: object = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        args = self.arguments(input_size, num_classes, dtype, rng)
        model, size, num_classes, L = args
        check_choice(model, "activation", activation, tuple(_ACTIVATIONS))
        check_choice(model, "subsampling", subsampling, ("average", "trainable"))
        check_choice(model, "c3_connections", c3_connections, ("full", "table"))
        check_choice(model, "c5", c5, ("linear", "conv"))
        check_choice(model, "pooling", pooling, ("average", "max"))
        batch_norm = as_bool(model, "batch_norm", batch_norm)
        if isinstance(c1_padding, bool) or not isinstance(c1_padding, int) or c1_padding < 0:
            raise ValueError(f"{model}: `c1_padding` (={c1_padding!r}) must be an int >= 0")
        act = _ACTIVATIONS[activation]
        hw = args.spatial()

        def subsample(channels: int, where: str) -> list[nn.Module]:
            hw.pool(where, 2, 2)
            if subsampling == "average":
                return [nn.MaxPool2d(2, stride=2) if pooling == "max" else nn.AvgPool2d(2, stride=2)]
            # sum of the 2x2 inputs times a trainable coefficient plus a trainable bias, per map
            return [nn.Sequential(nn.AvgPool2d(2, stride=2), L.Conv2d(channels, channels, 1, groups=channels)), act()]

        def norm(features: int, kind: type = nn.BatchNorm2d) -> list[nn.Module]:
            return [kind(features, dtype=args.layers.dtype)] if batch_norm else []

        layers: list[nn.Module] = [L.Conv2d(size[0], 6, 5, padding=c1_padding), *norm(6), act()]
        hw.conv("C1", 5, padding=c1_padding)
        layers += subsample(6, "S2")
        c3 = connection_table_conv(L, LENET5_C3_TABLE, 5) if c3_connections == "table" else L.Conv2d(6, 16, 5)
        layers += [c3, *norm(16), act()]
        hw.conv("C3", 5)
        layers += subsample(16, "S4")
        if c5 == "conv":
            layers += [L.Conv2d(16, 120, 5), act(), nn.Flatten()]
            hw.conv("C5", 5)
            layers += [L.Linear(120 * hw.area, 84), act()]
        else:
            layers += [nn.Flatten(), L.Linear(16 * hw.area, 120), *norm(120, nn.BatchNorm1d), act(),
                       L.Linear(120, 84), *norm(84, nn.BatchNorm1d), act()]
        layers.append(L.Linear(84, num_classes))
        super().__init__(*layers, arguments=args)


PRESETS = {
    "lenet": (
        LeNet,
        dict(input_size=(1, 28, 28), num_classes=10),
        "LeNet as in Dive into Deep Learning (sigmoid, average pooling, 1x28x28, 10 classes)",
    ),
    "lenet5": (
        LeNet,
        dict(input_size=(1, 32, 32), num_classes=10, activation="tanh", c1_padding=0, subsampling="trainable",
             c3_connections="table", c5="conv"),
        "LeNet-5 (LeCun et al. 1998): 32x32, trainable subsampling, C3 connection table; linear output layer",
    ),
    "lenet_bn": (
        LeNet,
        dict(input_size=(1, 28, 28), num_classes=10, activation="relu", pooling="max", batch_norm=True),
        "LeNet with BatchNorm (d2l 8.5), ReLU and max pooling (1x28x28, 10 classes): convlab train's default model",
    ),
}
