"""The effective receptive field (convlab.analysis.effective_receptive_field) against what theory gives exactly."""

from __future__ import annotations

import numpy as np
import pytest

from convlab import models, nn
from convlab.analysis import effective_receptive_field
from convlab.analysis.erf import area_ratio


def ones_stack(n: int) -> nn.Sequential:
    """n single-channel 3x3 convolutions, all-ones weights, no bias, no nonlinearity, float64."""
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, bias=False, dtype="float64") for _ in range(n)])
    for conv in net:
        conv.weight.data[...] = 1.0
    return net


def box_power(n: int) -> np.ndarray:
    """The n-fold convolution of the 3x3 box, exactly (integers), as a (2n+1, 2n+1) array."""
    line = np.array([1], dtype=object)
    for _ in range(n):
        line = np.convolve(line, np.array([1, 1, 1], dtype=object))
    return np.outer(line, line)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_ones_stack_is_the_n_fold_box_exactly(n):
    size = 2 * n + 7
    erf = effective_receptive_field(ones_stack(n), (1, size, size), n_samples=1)
    out = size - 2 * n
    i = j = out // 2
    expected = np.zeros((size, size))
    expected[i:i + 2 * n + 1, j:j + 2 * n + 1] = box_power(n).astype(np.float64)
    assert erf.unit == (None, i, j)
    assert erf.output_shape == (1, out, out)
    np.testing.assert_array_equal(erf.map, expected)  # exact: integers below 2**53
    assert erf.field[0].size == 2 * n + 1 and erf.field_box == (i, j, i + 2 * n, j + 2 * n)


def test_sigma_grows_as_sqrt_n_while_the_field_grows_as_n():
    depths = np.array([1, 2, 4, 8, 16, 32, 64])
    sigmas, sizes = [], []
    for n in depths:
        size = 2 * n + 3
        erf = effective_receptive_field(ones_stack(int(n)), (1, size, size), n_samples=1)
        deep = box_power(int(n))[n].astype(np.float64)  # one row of the exact map (largest values ~ 3**128)
        np.testing.assert_allclose(erf.map[erf.unit[1] + n, erf.unit[2]:erf.unit[2] + 2 * n + 1],
                                   deep, rtol=1e-12)
        sigmas.append(erf.sigma[0])
        sizes.append(erf.field[0].size)
        # each axis is a sum of n uniform steps on {-1, 0, 1}: variance 2n/3
        assert erf.sigma == pytest.approx((np.sqrt(2 * n / 3),) * 2, rel=1e-9)
    slope_sigma = np.polyfit(np.log(depths), np.log(sigmas), 1)[0]
    slope_field = np.polyfit(np.log(depths), np.log(sizes), 1)[0]
    assert abs(slope_sigma - 0.5) <= 0.05
    assert sizes == [2 * n + 1 for n in depths]
    assert slope_field > 0.9
    # so the share of the theoretical field that holds 95% of the mass falls with depth
    shares = [effective_receptive_field(ones_stack(n), (1, 2 * n + 3, 2 * n + 3), n_samples=1).share_95
              for n in (2, 32)]
    assert shares[1] < shares[0] / 4


def test_statistics_of_a_known_map():
    erf = effective_receptive_field(ones_stack(2), (1, 9, 9), n_samples=1)
    # the 5x5 map (1 2 3 2 1) outer (1 2 3 2 1): the fewest largest values holding 95% of the total
    values = np.sort(erf.map.ravel())[::-1]
    k = int(np.argmax(np.cumsum(values) >= 0.95 * values.sum())) + 1
    assert erf.mass_pixels() == k and erf.share_95 == k / 25
    # RepLKNet's rectangle (erf/analyze_erf.py): log10(map + 1) / max, the smallest centred square above t
    data = np.log10(erf.map + 1)
    data /= data.max()
    for t, found in erf.area_ratios.items():
        side, ratio = found
        half = side // 2
        inside = data[4 - half:5 + half, 4 - half:5 + half].sum() / data.sum()
        assert inside > t and ratio == side * side / 81
        if side > 3:
            smaller = data[5 - half:4 + half, 5 - half:4 + half].sum() / data.sum()
            assert smaller <= t
    assert area_ratio(np.zeros((5, 5)), 0.5) is None


def test_random_relu_stack_and_images_and_unit():
    rng = np.random.default_rng(1)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=rng, dtype="float64"), nn.ReLU(),
                        nn.Conv2d(4, 3, 3, padding=1, rng=rng, dtype="float64"))
    images = rng.standard_normal((3, 2, 11, 11))
    erf = effective_receptive_field(net, (2, 11, 11), images=images, unit=(1, 2, 3))
    # the oracle: each image alone, gradient of output[1, 2, 3], absolute, summed over channels, averaged
    maps = []
    for x in images:
        y = net(x[None])
        g = np.zeros_like(y)
        g[0, 1, 2, 3] = 1
        maps.append(np.abs(net.backward(g)).sum(axis=(0, 1)))
    np.testing.assert_allclose(erf.map, np.mean(maps, axis=0), rtol=1e-12)
    assert erf.n_samples == 3 and erf.source == "given"
    assert erf.map[7:, :].sum() == 0 and erf.map[:, 8:].sum() == 0  # outside the 5x5 field of (2, 3)


def test_parameters_grads_and_modes_are_left_alone():
    model = models.create("resnet18_cifar", rng=0, input_size=(3, 16, 16))
    model.train()
    before = [p.grad for p in model.parameters()]
    effective_receptive_field(model, (3, 16, 16), n_samples=2)
    assert all(p.grad is b for p, b in zip(model.parameters(), before, strict=True))
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())


def test_zoo_model_stops_at_the_last_spatial_layer():
    erf = effective_receptive_field("resnet18", (3, 64, 64), n_samples=1)
    assert erf.layer == "layer4" and erf.output_shape == (512, 2, 2) and erf.unit == (None, 1, 1)
    assert erf.field[0].size == 435 and erf.field[0].jump == 32


def test_refusals():
    net = ones_stack(2)
    with pytest.raises(ValueError, match=r"`unit` \(=\(5, 0\)\) is not in .* \(C, H, W\) = \(1, 5, 5\)"):
        effective_receptive_field(net, (1, 9, 9), unit=(5, 0))
    with pytest.raises(ValueError, match="input_shape"):
        effective_receptive_field(net, (1, 9))
    with pytest.raises(ValueError, match="n_samples"):
        effective_receptive_field(net, (1, 9, 9), n_samples=0)
    with pytest.raises(TypeError, match="model"):
        effective_receptive_field(object(), (1, 9, 9))
    with pytest.raises(ValueError, match="images"):
        effective_receptive_field(net, (1, 9, 9), images=np.zeros((2, 1, 8, 8)))


def test_torch_model_and_its_convlab_mirror_agree():
    torch = pytest.importorskip("torch")
    import convlab.interop  # noqa: F401  (registers the torch backend)
    from convlab.interop.torch import to_torch

    model = models.create("resnet18_cifar", input_size=(3, 16, 16), rng=0, dtype="float64")
    mirror = to_torch(model)
    ours = effective_receptive_field(model, (3, 16, 16), n_samples=2, rng=3)
    theirs = effective_receptive_field(mirror, (3, 16, 16), n_samples=2, rng=3)
    assert isinstance(mirror, torch.nn.Module)
    assert theirs.layer == ours.layer and theirs.unit == ours.unit
    assert theirs.field == ours.field
    np.testing.assert_allclose(theirs.map, ours.map, rtol=1e-9, atol=1e-12 * ours.map.max())
    assert all(p.grad is None for p in mirror.parameters())
