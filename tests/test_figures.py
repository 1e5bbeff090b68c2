"""convlab.viz's static figures and `convlab draw`: the numbers they draw, the pixels, the files."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib import colormaps
from PIL import Image

from convlab import functional as F
from convlab import models, nn, viz
from convlab.analysis import analyze, effective_receptive_field
from convlab.cli import main


def rgba(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def pixel(fig, ax, x: float, y: float) -> np.ndarray:
    """The RGB (0-255) at data coordinates (x, y) of ``ax``."""
    buffer = rgba(fig)
    px, py = ax.transData.transform((x, y))
    return buffer[int(buffer.shape[0] - py), int(px), :3].astype(int)


def brute_coverage(n: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """Independent oracle: enumerate windows along each axis and count."""
    line = np.zeros(n, int)
    for start in range(-p, n + p - d * (k - 1), s):
        for t in range(k):
            if 0 <= start + t * d < n:
                line[start + t * d] += 1
    return np.outer(line, line)


def test_coverage_counts_match_seed_000_and_enumeration():
    counts = viz.coverage_counts(5, 3)
    assert counts[0, 0] == counts[-1, -1] == counts[0, -1] == 1 and counts[2, 2] == 9 and counts.max() == 9
    for n, k, s, p, d in [(5, 3, 1, 0, 1), (7, 3, 2, 1, 1), (8, 2, 2, 0, 1), (9, 3, 1, 2, 2), (6, 4, 3, 1, 1)]:
        np.testing.assert_array_equal(viz.coverage_counts(n, k, s, p, d), brute_coverage(n, k, s, p, d))


def test_checkerboard_counts():
    counts = viz.checkerboard_counts(4, 3, 2)  # 3 taps at stride 2: 1, 2, 1, 2 ... (Odena et al. 2016)
    np.testing.assert_array_equal(counts[0], [1, 1, 2, 1, 2, 1, 2, 1, 1])
    np.testing.assert_array_equal(counts, np.outer(counts[0], counts[0]))
    even = viz.checkerboard_counts(4, 4, 2)  # divisible: 1 1 2 2 2 2 2 2 1 1, flat inside
    np.testing.assert_array_equal(even[0], [1, 1, 2, 2, 2, 2, 2, 2, 1, 1])
    y = F.conv_transpose(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2)
    np.testing.assert_array_equal(counts, y[0, 0])


def test_coverage_figure_pixels_are_the_counts():
    fig = viz.coverage(5, 3)
    ax = fig.axes[0]
    counts = viz.coverage_counts(5, 3)
    np.testing.assert_array_equal(ax.images[0].get_array(), counts)
    assert "kernel 3" in ax.get_title() and "input 5" in ax.get_title()
    cmap = colormaps["cividis"]
    for i, j in [(0, 0), (2, 2), (1, 2)]:
        expected = np.array(cmap(counts[i, j] / counts.max())[:3]) * 255
        got = pixel(fig, ax, j - 0.38, i - 0.38)  # a corner of the cell, away from the number written in it
        assert np.abs(got - expected).max() <= 3, (i, j, got, expected)
    texts = {t.get_text() for t in ax.texts}
    assert {"1", "9"} <= texts


def test_conv_matrix_figure_is_the_engines_matrix():
    fig = viz.conv_matrix(4, 3)
    matrix = fig.axes[1].images[0].get_array()
    weight = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(matrix, F.conv_matrix(weight, (4, 4)))
    assert matrix.shape == (4, 16)
    assert "4x16" in fig.axes[1].get_title() and "input 4x4, kernel 3x3" in fig.get_suptitle()
    with pytest.raises(ValueError, match=r"conv_matrix: the kernel \(3, dilated to 3\) is larger than the padded"):
        viz.conv_matrix(2, 3)


def test_kernels_rgb_patches_are_min_max_normalised():
    model = models.create("alexnet", input_size=(3, 96, 96), rng=0)
    fig = viz.kernels(model, "features.0")
    w = model.get_submodule("features.0").weight.data[5].astype(np.float64)
    expected = ((w - w.min()) / (w.max() - w.min())).transpose(1, 2, 0)
    np.testing.assert_allclose(fig.axes[5].images[0].get_array(), expected)
    assert "RGB kernels 11x11" in fig.get_suptitle()
    deep = viz.kernels(model, "features.3", max_filters=4, max_channels=3)
    assert len(deep.axes) == 12 and deep.axes[0].images[0].get_cmap().name == "gray"
    with pytest.raises(ValueError, match=r"no layer named 'feature\.0'; close names: features\.0"):
        viz.kernels(model, "feature.0")
    with pytest.raises(ValueError, match="no 2-d convolution weight"):
        viz.kernels(model, "features.1")


def test_feature_maps_are_the_layer_outputs():
    model = models.create("lenet", rng=0)
    image = np.random.default_rng(0).random((1, 28, 28))
    arrays = viz.feature_map_arrays(model, image, ["0", "2"])
    x = image[None].astype(np.float32)
    expected = model[1](model[0](x))[0]  # conv, activation
    np.testing.assert_allclose(arrays["2"], model[2](expected[None])[0], rtol=1e-6)
    fig = viz.feature_maps(model, image, ["0", "2"], max_channels=4)
    tiles = [ax for ax in fig.axes if ax.images]
    np.testing.assert_allclose(tiles[1].images[0].get_array(), arrays["0"][1])
    assert len(tiles) == 8 and "feature maps of LeNet" in fig.get_suptitle()
    assert model[0].__dict__.get("forward") is None  # the capture left the instance alone


def test_receptive_field_boxes_follow_the_analysis():
    model = models.create("alexnet", input_size=(3, 224, 224), rng=0)
    boxes = viz.receptive_field_boxes(model, (3, 224, 224), "features.12", (2, 2))
    rf = analyze(model, (1, 3, 224, 224))["features.12"].receptive_field[0]
    top, left, bottom, _ = boxes[-1][1]
    assert boxes[-1][0] == "features.12" and bottom - top + 1 == rf.size == 195
    assert top == rf.start + 2 * rf.jump
    assert boxes[0][0] == "features.0" and boxes[0][1][2] - boxes[0][1][0] + 1 == 11
    fig = viz.receptive_field(model, (3, 224, 224), "features.12", (2, 2))
    patch = fig.axes[0].patches[-1]
    assert (patch.get_width(), patch.get_height()) == (195, 195) and patch.get_xy() == (left - 0.5, top - 0.5)
    with pytest.raises(ValueError, match=r"`unit` \(=\(6, 0\)\) is not in the output of 'features\.12', which is 6x6"):
        viz.receptive_field_boxes(model, (3, 224, 224), "features.12", (6, 0))
    with pytest.raises(ValueError, match=r"no layer named 'features\.13'"):
        viz.receptive_field_boxes(model, (3, 224, 224), "features.13", (0, 0))


def test_erf_figure_draws_the_map_and_the_field():
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, bias=False, dtype="float64") for _ in range(3)])
    for conv in net:
        conv.weight.data[...] = 1.0
    result = effective_receptive_field(net, (1, 11, 11), n_samples=1)
    fig = viz.erf(result, model_name="ones3")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), result.map)
    field = ax.patches[0]
    assert (field.get_width(), field.get_height()) == (7, 7) and field.get_xy() == (1.5, 1.5)
    assert "ones3" in ax.get_title() and "sigma 1.41x1.41" in ax.get_title()
    brightest = np.array(colormaps["viridis"](1.0)[:3]) * 255
    assert np.abs(pixel(fig, ax, 5.3, 5.3) - brightest).max() <= 3  # the centre holds the maximum


def test_curves_plot_the_records(tmp_path):
    records = [{"tag": "loss/train", "step": s, "epoch": 0, "value": 1.0 / (s + 1), "wall_time": 0.0}
               for s in (2, 0, 1)]
    records += [{"tag": "accuracy/test", "step": 2, "epoch": 0, "value": 0.5, "wall_time": 0.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    fig = viz.curves(tmp_path)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xydata(), [[0, 1.0], [1, 0.5], [2, 1 / 3]])
    assert "3 steps" not in fig.get_suptitle() and "2 tags" in fig.get_suptitle()
    with pytest.raises(ValueError, match=r"metrics\.jsonl. does not exist"):
        viz.curves(tmp_path / "missing")


@pytest.mark.parametrize("groups", [2, 4, 8])
def test_correlation_of_grouped_layers_is_block_diagonal(groups):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, rng=rng), nn.ReLU(),
                          nn.Conv2d(16, 16, 1, groups=groups, rng=rng))
    model.input_size = (3, 12, 12)
    r = viz.correlation_matrix(model, "1", "2", n_samples=4)
    block = np.kron(np.eye(groups), np.ones((16 // groups, 16 // groups))).astype(bool)
    assert r.shape == (16, 16) and r.max() <= 1 + 1e-12
    assert r[block].mean() > 2 * r[~block].mean()
    same = viz.correlation_matrix(model, "1", "1", n_samples=2)
    live = same.diagonal() > 0
    np.testing.assert_allclose(same.diagonal()[live], 1.0)
    fig = viz.correlation(model, "1", "2", n_samples=4)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), r)
    assert f"groups {groups}" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- convlab draw


def test_draw_writes_the_figure_as_a_png(tmp_path, capsys):
    path = tmp_path / "coverage.png"
    assert main(["draw", "coverage", "--input-size", "5x5", "--kernel-size", "3", "-o", str(path)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        decoded = np.asarray(picture.convert("RGBA"))
    expected = rgba(viz.coverage((5, 5), (3, 3), (1, 1), (0, 0), (1, 1)))  # the CLI's parsed values
    assert decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)


def test_draw_svg_and_default_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["draw", "checkerboard", "--kernel-size", "3", "--stride", "2"]) == 0
    written = capsys.readouterr().out.strip()
    assert written.endswith("checkerboard_5_k3_s2_p0.png") and (tmp_path / written).exists()
    assert main(["draw", "matrix", "-o", "m.svg"]) == 0
    text = (tmp_path / "m.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_draw_refusals_are_one_line(tmp_path, capsys):
    existing = tmp_path / "c.png"
    existing.write_bytes(b"keep")
    cases = [
        (["coverage", "-o", str(existing)], "exists; pass --overwrite"),
        (["matrix", "--input-size", "2", "--kernel-size", "3", "-o", str(tmp_path / "m.png")],
         "larger than the padded input"),
        (["kernels", "alexnet", "--layer", "feature.0", "-o", str(tmp_path / "k.png")], "close names: features.0"),
        (["field", "alexnet", "--layer", "features.12", "--unit", "9,9", "-o", str(tmp_path / "f.png")],
         "is not in the output of 'features.12'"),
        (["coverage", "-o", str(tmp_path / "missing" / "c.png")], "does not exist"),
        (["coverage", "-o", str(existing / "c.png")], "does not exist"),
        (["coverage", "-o", str(tmp_path / "c.gif")], "extension"),
        (["erf", "lenet", "--unit", "7,7", "-o", str(tmp_path / "e.png")], "`unit`"),
        (["kernels", "lenett", "--layer", "0"], "not in the zoo; close names: lenet"),
    ]
    for argv, message in cases:
        assert main(["draw", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert existing.read_bytes() == b"keep"
    assert main(["draw", "coverage", "-o", str(existing), "--overwrite"]) == 0
    assert existing.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_erf_prints_the_statistics(tmp_path, capsys):
    path = tmp_path / "erf.png"
    assert main(["draw", "erf", "lenet", "--samples", "1", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "95% of the mass" in out and out.strip().endswith(str(path))
    with Image.open(path) as picture:
        assert picture.size == (640, 540)


def test_importing_viz_does_not_import_matplotlib():
    code = "import sys, convlab.viz, convlab.viz.cli_draw; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_figures_do_not_touch_pyplot():
    viz.coverage(5, 3)
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()
    buffer = io.BytesIO()
    viz.checkerboard(3, 3, 2).savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_erf_panel_draws_the_examples_maps():
    from convlab.examples import erf as example

    maps = {"a": np.outer([0, 1, 0], [0, 2, 0]), "b": np.ones((3, 3))}
    fig = viz.erf_panel(maps)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), maps["a"])
    assert "2 maps, 3x3" in fig.get_suptitle()
    result = example.EffectiveFields((), (), (), (), {}, maps, None)
    assert len(viz.erf_panel(result).axes) == 2
