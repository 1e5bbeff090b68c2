"""convlab.data.transforms: each batch transform is deterministic for a seed, leaves its input alone and gives
the right pixels (flips, crop offsets inside the padding, rotations by right angles equal np.rot90,
exact normalisation, torchvision's jitter formulas, cutout squares clipped at the borders)."""

from __future__ import annotations

import numpy as np
import pytest

from convlab.data import Dataset
from convlab.data.transforms import (
    PRESETS,
    ColorJitter,
    Compose,
    Cutout,
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    preset,
)


def batch(count=6, channels=3, height=7, width=9, seed=0, dtype=np.float64):
    """Values in [0.1, 1]: no zero pixels, so a zeroed pixel is the transform's doing."""
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(count, channels, height, width)).astype(dtype)


RANDOM = [
    RandomCrop((7, 9), padding=2),
    RandomCrop(5, padding=(1, 3), padding_mode="reflect"),
    RandomHorizontalFlip(),
    RandomRotation(30),
    RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2), interpolation="bilinear"),
    ColorJitter(0.5, 0.5, 0.5),
    Cutout(4),
    Compose([RandomCrop((7, 9), padding=1), RandomHorizontalFlip(), Cutout(3)]),
]


@pytest.mark.parametrize("transform", RANDOM, ids=repr)
def test_deterministic_for_a_seed_and_input_untouched(transform):
    x = batch()
    before = x.copy()
    first = transform(x, np.random.default_rng(5))
    np.testing.assert_array_equal(first, transform(x, np.random.default_rng(5)))
    np.testing.assert_array_equal(x, before)
    assert first.dtype == x.dtype and first.shape[:2] == x.shape[:2]
    assert not np.array_equal(first, transform(x, np.random.default_rng(6)))  # the seed matters
    x32 = batch(dtype=np.float32)
    assert transform(x32, np.random.default_rng(5)).dtype == np.float32


def test_normalize_is_exact():
    x = batch()
    mean, std = [0.2, 0.5, 0.7], [0.3, 0.25, 0.1]
    expected = (x - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    np.testing.assert_array_equal(Normalize(mean, std)(x, None), expected)
    with pytest.raises(ValueError, match=r"Normalize: 2 means for a batch of 3 channels"):
        Normalize([0.1, 0.2], [1, 1])(x, None)
    with pytest.raises(ValueError, match=r"Normalize: `std` \(=\[1, 0\]\) must hold positive finite numbers"):
        Normalize([0, 0], [1, 0])


def test_flip_of_a_known_batch():
    x = np.arange(2 * 1 * 2 * 3, dtype=np.float64).reshape(2, 1, 2, 3)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)
    x = batch(count=64)
    out = RandomHorizontalFlip(0.5)(x, np.random.default_rng(3))
    flipped = np.random.default_rng(3).random(64) < 0.5
    np.testing.assert_array_equal(out[flipped], x[flipped, :, :, ::-1])
    np.testing.assert_array_equal(out[~flipped], x[~flipped])
    assert 10 < flipped.sum() < 54


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "symmetric"])
def test_crop_offsets_stay_inside_the_padding(mode):
    x = batch(count=40)
    pad = 2
    out = RandomCrop((7, 9), padding=pad, padding_mode=mode)(x, np.random.default_rng(11))
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=mode)
    rng = np.random.default_rng(11)
    tops, lefts = rng.integers(0, 2 * pad + 1, size=40), rng.integers(0, 2 * pad + 1, size=40)
    for image, top, left, original in zip(out, tops, lefts, padded, strict=True):
        np.testing.assert_array_equal(image, original[:, top:top + 7, left:left + 9])
    assert set(tops) == set(lefts) == set(range(2 * pad + 1))  # every offset in [0, 2*pad] occurs, none outside
    if mode == "constant":
        assert np.all(out[tops == 0, :, :pad] == 0) and np.all(out[lefts == 0, :, :, :pad] == 0)  # zeros
        assert np.all(out[tops == 2 * pad, :, -pad:] == 0) and np.all(out[(tops == pad) & (lefts == pad)] > 0)


def test_crop_without_padding_is_a_window_and_reflect_is_torchvision_reflect():
    x = np.arange(5, dtype=np.float64).reshape(1, 1, 1, 5) + 1  # 1 2 3 4 5
    reflected = RandomCrop((1, 9), padding=(2, 0), padding_mode="reflect")(x, np.random.default_rng(0))
    assert reflected.ravel().tolist() == [3, 2, 1, 2, 3, 4, 5, 4, 3]  # reflect: 12345 -> 321234543
    x = batch()
    same = RandomCrop((7, 9))(x, np.random.default_rng(0))
    np.testing.assert_array_equal(same, x)
    with pytest.raises(ValueError, match=r"RandomCrop: crop 8x9 is larger than the padded image 7x9"):
        RandomCrop((8, 9))(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"RandomCrop: `padding_mode` \(='wrap'\) must be one of constant"):
        RandomCrop(3, padding_mode="wrap")


@pytest.mark.parametrize("size", [6, 7])
@pytest.mark.parametrize(("angle", "turns"), [(90, 1), (-90, -1), (180, 2), (270, 3)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_rotation_by_right_angles_equals_rot90(size, angle, turns, interpolation):
    x = batch(count=3, height=size, width=size)
    out = RandomRotation((angle, angle), interpolation=interpolation)(x, np.random.default_rng(0))
    expected = np.rot90(x, turns, axes=(2, 3))  # counter-clockwise, as torchvision's positive angles
    if interpolation == "nearest":
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_rotation_angles_are_drawn_in_range():
    transform = RandomRotation(25)
    angle, tx, ty, scale = transform.parameters(1000, 8, 8, np.random.default_rng(0))
    assert -25 <= angle.min() < -24 and 24 < angle.max() <= 25
    assert not tx.any() and not ty.any() and np.all(scale == 1)


def test_affine_translation_and_scale():
    x = batch(count=2, channels=1, height=6, width=8)
    transform = RandomAffine(0)
    shifted = transform.apply(x, np.zeros(2), np.array([2.0, -1.0]), np.array([1.0, 0.0]), np.ones(2))
    np.testing.assert_array_equal(shifted[0, 0, 1:, 2:], x[0, 0, :-1, :-2])  # right 2, down 1
    assert not shifted[0, 0, 0].any() and not shifted[0, 0, :, :2].any()  # filled with zeros
    np.testing.assert_array_equal(shifted[1, 0, :, :-1], x[1, 0, :, 1:])  # left 1
    doubled = transform.apply(np.ones((1, 1, 9, 9)), np.zeros(1), np.zeros(1), np.zeros(1), np.array([0.5]))
    assert doubled[0, 0].sum() == 25 and doubled[0, 0, 2:7, 2:7].all()  # shrunk by half about the centre
    tx = RandomAffine(0, translate=(0.25, 0.5)).parameters(2000, 6, 8, np.random.default_rng(1))[1]
    assert set(np.unique(tx)) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # torchvision: round(U(-0.25*W, 0.25*W))


def grayscale(x):
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def test_color_jitter_follows_torchvisions_formulas():
    x = batch()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(ColorJitter((1, 1), (1, 1), (1, 1))(x, rng), x)  # factor 1: identity
    np.testing.assert_array_equal(ColorJitter()(x, rng), x)
    np.testing.assert_allclose(ColorJitter(brightness=(0.5, 0.5))(x, rng), x * 0.5, rtol=1e-15)
    np.testing.assert_allclose(ColorJitter(brightness=(3, 3))(x, rng), np.clip(x * 3, 0, 1), rtol=1e-15)
    mean = grayscale(x).mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(ColorJitter(contrast=(0.3, 0.3))(x, rng), np.clip(0.3 * x + 0.7 * mean, 0, 1),
                               rtol=1e-15)
    np.testing.assert_allclose(ColorJitter(saturation=(0.0, 0.0))(x, rng), np.repeat(grayscale(x), 3, axis=1),
                               rtol=1e-15)
    grey = batch(channels=1)
    np.testing.assert_array_equal(ColorJitter(saturation=(0.2, 0.2))(grey, rng), grey)  # one channel: unchanged
    np.testing.assert_allclose(ColorJitter(contrast=(2, 2))(grey, rng),
                               np.clip(2 * grey - grey.mean(axis=(1, 2, 3), keepdims=True), 0, 1), rtol=1e-15)


def test_color_jitter_factors_and_order():
    x = batch(count=200) * 0.7  # below 1/1.3: no clamping
    out = ColorJitter(brightness=0.3)(x, np.random.default_rng(2))
    ratio = (out / x).reshape(200, -1)
    assert np.allclose(ratio, ratio[:, :1]) and 0.7 <= ratio.min() < 0.72 and 1.28 < ratio.max() <= 1.3
    both = ColorJitter(brightness=(0.5, 0.5), contrast=(0.5, 0.5))(x, np.random.default_rng(3))
    order = np.argsort(np.random.default_rng(3).random((200, 3)), axis=1)
    brightness_first = np.flatnonzero(np.argmax(order == 0, axis=1) < np.argmax(order == 1, axis=1))
    b_then_c = 0.5 * (0.5 * x) + 0.5 * grayscale(0.5 * x).mean(axis=(1, 2, 3), keepdims=True)
    c_then_b = 0.5 * (0.5 * x + 0.5 * grayscale(x).mean(axis=(1, 2, 3), keepdims=True))
    expected = c_then_b.copy()
    expected[brightness_first] = b_then_c[brightness_first]
    np.testing.assert_allclose(both, expected, rtol=1e-15)
    assert 50 < len(brightness_first) < 150


@pytest.mark.parametrize("size", [1, 4, 5, 30])
def test_cutout_zeroes_exactly_a_square_clipped_at_the_borders(size):
    x = batch(count=50, height=10, width=12)
    out = Cutout(size)(x, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, 10, size=50), rng.integers(0, 12, size=50)
    for image, original, row, col in zip(out, x, rows, cols, strict=True):
        top, left = row - size // 2, col - size // 2
        r0, r1, c0, c1 = max(top, 0), min(top + size, 10), max(left, 0), min(left + size, 12)
        expected = original.copy()
        expected[:, r0:r1, c0:c1] = 0
        np.testing.assert_array_equal(image, expected)
        assert (image == 0).sum() == 3 * (r1 - r0) * (c1 - c0)
    if size == 4:
        clipped = [(r - 2 < 0 or c - 2 < 0 or r + 2 > 10 or c + 2 > 12) for r, c in zip(rows, cols, strict=True)]
        assert any(clipped) and not all(clipped)  # both whole and clipped squares were checked


def test_compose_applies_in_order_with_one_generator():
    x = batch()
    parts = [RandomCrop((7, 9), padding=2), RandomHorizontalFlip(), ColorJitter(0.4), Cutout(3)]
    out = Compose(parts)(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    expected = x
    for part in parts:
        expected = part(expected, rng)
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match=r"Compose: every transform must be callable"):
        Compose([1])


def test_preset_parses_the_cli_list():
    ds = Dataset(np.tile(np.array([0, 255], np.uint8), 3 * 32 * 16).reshape(1, 3, 32, 32).repeat(2, axis=0),
                 np.array([0, 1]), ["a", "b"])
    chosen = preset("cutout, jitter,crop,flip,rotate", ds)
    assert [type(t).__name__ for t in chosen.transforms] == ["RandomCrop", "RandomHorizontalFlip",
                                                             "RandomRotation", "ColorJitter", "Cutout"]
    assert chosen.transforms[0].padding == (4, 4, 4, 4) and chosen.transforms[-1].size == 8
    assert len(preset("none", ds)) == 0 and len(preset("", ds)) == 0
    normalize = preset("normalize", ds).transforms[0]
    assert normalize.mean.tolist() == [0.5] * 3 and normalize.std.tolist() == [0.5] * 3
    assert set(PRESETS) == {"crop", "flip", "rotate", "affine", "jitter", "normalize", "cutout"}
    with pytest.raises(ValueError, match=r"preset: unknown augmentation 'blur' in 'crop,blur'; choose from crop"):
        preset("crop,blur", ds)
    x = np.random.default_rng(0).uniform(size=(4, 3, 32, 32)).astype(np.float32)
    out = preset(",".join(PRESETS), ds)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32


@pytest.mark.parametrize(("make", "message"), [
    (lambda: RandomHorizontalFlip(1.5), r"RandomHorizontalFlip: `p` \(=1.5\) must be a number in \[0, 1\]"),
    (lambda: Cutout(0), r"Cutout: `size` \(=0\) must be a positive integer"),
    (lambda: RandomRotation((30, 10)), r"RandomRotation: `degrees` \(=\(30, 10\)\) must have min <= max"),
    (lambda: RandomAffine(0, translate=(2, 0)), r"RandomAffine: `translate` \(=\(2, 0\)\) must be None"),
    (lambda: ColorJitter(brightness=-1), r"ColorJitter: `brightness` \(=-1\) must be a number in \[0"),
    (lambda: RandomCrop(4, padding=-1), r"RandomCrop: `padding` \(=-1\) must be a non-negative int"),
])
def test_bad_arguments_name_the_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_transforms_refuse_integer_batches():
    with pytest.raises(ValueError, match=r"Cutout: expects a float batch \(B, C, H, W\), got uint8"):
        Cutout(2)(np.zeros((1, 1, 4, 4), np.uint8), np.random.default_rng(0))
