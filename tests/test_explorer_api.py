"""The explorer's API (FastAPI TestClient): every number equals convlab's engine, analysis and training records
(and torch, which runs the page's torch line); refusals are 422/413 naming the field and the limit."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

import convlab.functional as F
from convlab.analysis import analyze, effective_receptive_field
from convlab.explorer import create_app


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def _torch_output(code: str, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    torch = pytest.importorskip("torch")
    scope = {"torch": torch, "x": torch.from_numpy(x[None]), "w": None if w is None else torch.from_numpy(w),
             "b": None if b is None else torch.from_numpy(b)}
    return eval(code, scope)[0].numpy()  # the page's line, run as written


def _convlab_output(code: str, x, w, b) -> np.ndarray:
    import convlab

    return eval(code, {"convlab": convlab, "x": x[None], "w": w, "b": b})[0]


CONFIGS = [
    dict(op="conv", ndim=2, c_in=1, c_out=1, size=(5, 5), k=(3, 3), stride=2, padding=1),
    dict(op="conv", ndim=2, c_in=2, c_out=4, size=(6, 7), k=(2, 3), stride=[1, 2], padding=[[0, 1], [2, 1]],
         dilation=[2, 1], groups=2, bias=True),
    dict(op="conv", ndim=2, c_in=1, c_out=1, size=(6, 6), k=(3, 3), stride=2, padding="same_tf",
         padding_mode="reflect"),
    dict(op="conv", ndim=2, c_in=1, c_out=2, size=(5, 5), k=(2, 2), padding="same", padding_mode="circular",
         flip_kernel=True),
    dict(op="conv", ndim=1, c_in=1, c_out=1, size=(8,), k=(2,), padding="causal", dilation=2),
    dict(op="conv", ndim=1, c_in=2, c_out=2, size=(7,), k=(3,), padding="full", padding_mode="replicate"),
    dict(op="conv_transpose", ndim=2, c_in=2, c_out=2, size=(3, 4), k=(3, 3), stride=2, padding=1,
         output_padding=1, bias=True),
    dict(op="conv_transpose", ndim=2, c_in=1, c_out=1, size=(3, 3), k=(3, 3), stride=2, padding=[[0, 1], [1, 0]]),
    dict(op="conv_transpose", ndim=1, c_in=2, c_out=4, size=(5,), k=(4,), stride=3, dilation=2, groups=2,
         output_padding=2),
    dict(op="max_pool", ndim=2, c_in=2, size=(7, 7), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(op="max_pool", ndim=1, c_in=1, size=(9,), kernel_size=2, dilation=3),
    dict(op="avg_pool", ndim=2, c_in=1, size=(5, 6), kernel_size=[2, 3], stride=[2, 2], padding=1,
         count_include_pad=False),
]


def _request(config: dict, rng: np.random.Generator):
    c = dict(config)
    op, nd = c.pop("op"), c.pop("ndim")
    c_in, size = c.pop("c_in"), c.pop("size")
    x = rng.integers(-5, 6, (c_in, *size)).astype(np.float64)
    w = b = None
    body = {"op": op, "ndim": nd, "input": x.tolist()}
    if op.startswith("conv"):
        c_out, k, groups = c.pop("c_out"), c.pop("k"), c.get("groups", 1)
        shape = (c_out, c_in // groups, *k) if op == "conv" else (c_in, c_out // groups, *k)
        w = rng.integers(-3, 4, shape).astype(np.float64)
        body["weight"] = w.tolist()
        if c.pop("bias", False):
            b = rng.integers(-2, 3, c_out).astype(np.float64)
            body["bias"] = b.tolist()
    body.update(c)
    return body, x, w, b


def _reference(body: dict, x, w, b) -> np.ndarray:
    """convlab.functional called directly with the configuration."""
    nd, op = body["ndim"], body["op"]
    pad = body.get("padding", 0)
    pad = tuple(tuple(p) for p in pad) if isinstance(pad, list) and pad and isinstance(pad[0], list) else pad
    if op == "conv":
        fn = getattr(F, f"conv{nd}d")
        return fn(x[None], w, b, body.get("stride", 1), pad, body.get("dilation", 1), body.get("groups", 1),
                  padding_mode=body.get("padding_mode", "zeros"), flip_kernel=body.get("flip_kernel", False))[0]
    if op == "conv_transpose":
        fn = getattr(F, f"conv_transpose{nd}d")
        return fn(x[None], w, b, body.get("stride", 1), pad, body.get("output_padding", 0), body.get("groups", 1),
                  body.get("dilation", 1))[0]
    if op == "max_pool":
        return getattr(F, f"max_pool{nd}d")(x[None], body["kernel_size"], body.get("stride"), pad,
                                            body.get("dilation", 1), body.get("ceil_mode", False))[0]
    return getattr(F, f"avg_pool{nd}d")(x[None], body["kernel_size"], body.get("stride"), pad,
                                        body.get("ceil_mode", False), body.get("count_include_pad", True))[0]


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_playground_numbers_equal_the_engine_and_torch(client, index):
    rng = np.random.default_rng(index)
    body, x, w, b = _request(CONFIGS[index], rng)
    r = client.post("/api/conv", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    expected = _reference(body, x, w, b)
    np.testing.assert_array_equal(np.array(data["output"]), expected)
    assert data["output_size"] == list(expected.shape[1:])
    assert len(data["frames"]) == expected.size  # one frame per output element, in (channel, *index) order
    assert [f["index"] for f in data["frames"]][:3] == [list(i) for i in np.ndindex(expected.shape)][:3]
    # the size formula's last number per dimension is the output size
    sizes = [int(line.rsplit("=", 1)[1]) for line in data["formula"] if line.strip().startswith(("H_out",
                                                                                               "W_out", "L_out"))]
    assert sizes == list(expected.shape[1:])
    # both copyable lines compute the same numbers
    np.testing.assert_allclose(_convlab_output(data["code"]["convlab"], x, w, b), expected)
    if not data["code"]["torch"].startswith("#"):
        np.testing.assert_allclose(_torch_output(data["code"]["torch"], x, w, b), expected, atol=1e-9)
    # every window cell is a cell of the drawn input
    shape = data["canvas_shape"]
    for frame in data["frames"]:
        for cells in frame["cells"].values():
            for cell, _role in cells:
                assert all(0 <= c < s for c, s in zip(cell, shape, strict=True))
    # clicking an output cell: its products and sum, from convlab.ops.explain
    position = [int(v) for v in np.unravel_index(rng.integers(expected.size), expected.shape)]
    e = client.post("/api/conv/explain", json={**body, "position": position}).json()
    assert e["result"] == pytest.approx(float(expected[tuple(position)]))
    if body["op"].startswith("conv"):
        assert e["sum"] == pytest.approx(sum(t["product"] for t in e["taps"]))
        for t in e["taps"]:
            assert t["product"] == t["value"] * t["weight"]
            if t["input_position"] is not None and body["op"] == "conv" and body.get("padding_mode",
                                                                                   "zeros") == "zeros":
                assert t["value"] == x[(t["channel"], *t["input_position"])]
    elif body["op"] == "max_pool":
        assert e["result"] == max(t["value"] for t in e["taps"])
    else:
        assert e["result"] == pytest.approx(sum(t["value"] for t in e["taps"]) / e["divisor"])


def test_playground_window_is_the_explained_taps(client):
    body = {"input": np.arange(16.0).reshape(1, 4, 4).tolist(), "weight": [[[[1.0, 2.0], [3.0, 4.0]]]],
            "stride": 2, "padding": 1, "dilation": 1}
    data = client.post("/api/conv", json=body).json()
    # output (1, 1): padded positions (2..3, 2..3) -> canvas cells, the taps of explain_conv
    frame = data["frames"][data["output_size"][1] + 1]
    assert frame["index"] == [0, 1, 1]
    assert sorted(tuple(c) for c, _ in frame["cells"]["0"]) == [(2, 2), (2, 3), (3, 2), (3, 3)]
    kinds = np.array(data["kinds"])
    assert (kinds[0] == 1).all() and (kinds[1:5, 1:5] == 0).all()  # padding row, then the input
    assert data["input_labels"][0][1][1:5] == ["0", "1", "2", "3"]
    assert data["plan"]["algorithm"] and "estimated" in data["plan"]["reason"]


def test_animation_svg_is_the_viz_animation(client):
    body = {"input": [[[1.0, 2.0, 3.0]]], "weight": [[[[1.0, -1.0]]]], "ndim": 2}
    r = client.post("/api/conv/animation.svg", json={**body, "input": [[[1.0, 2.0, 3.0]]]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.count('class="frame"') == 2  # one frame per output element


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"input": [[[1.0]]], "weight": [[[[1.0]]]], "stride": 0}, "stride", "greater than or equal to 1"),
    ({"input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]], "groups": 2}, "groups", "must divide"),
    ({"input": [[[1.0, 2.0, 3.0]]], "weight": [[[[1.0]]]], "padding": "same", "stride": 2}, "input", "same"),
    ({"input": np.zeros((1, 33, 33)).tolist(), "weight": [[[[1.0]]]]}, "input", "1 to 32"),
    ({"input": np.zeros((5, 3, 3)).tolist(), "weight": np.zeros((1, 5, 1, 1)).tolist()}, "input", "limit of 4"),
    ({"input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]], "padding": "sideways"}, "padding", "valid"),
    ({"input": [[[1.0, 2.0]]]}, "weight", "required"),
    ({"input": [[[1.0, 2.0], [3.0]]], "weight": [[[[1.0]]]]}, "input", "rectangular"),
    ({"op": "max_pool", "input": [[[1.0, 2.0]]], "kernel_size": 2, "weight": [[[[1.0]]]]}, "weight", "pooling"),
    ({"op": "avg_pool", "input": [[[1.0, 2.0]]], "kernel_size": 1, "dilation": 2}, "dilation", "average"),
    ({"op": "conv_transpose", "input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]], "padding_mode": "reflect"},
     "padding_mode", "zeros"),
    ({"input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]], "unknown": 1}, "unknown", "Extra"),
    ({"input": np.zeros((1, 32, 32)).tolist(), "weight": np.zeros((2, 1, 1, 1)).tolist()}, "input", "limit of 1024"),
])
def test_refusals_name_the_field(client, body, field, words):
    r = client.post("/api/conv", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(field in map(str, d["loc"]) for d in detail), detail
    assert any(words.lower() in d["msg"].lower() for d in detail), detail


def test_body_limit_is_413_before_parsing(client):
    r = client.post("/api/conv", content=b"[" * (5 * 1024 * 1024), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "4194304" in r.json()["detail"][0]["msg"]


def test_explain_position_outside(client):
    r = client.post("/api/conv/explain", json={"input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]], "position": [0, 0, 5]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "position"]


def test_static_files_and_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "convlab explorer" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2fetc%2fpasswd",
                 "/static/..\\app.py", "/static//etc/passwd", "/static/%252e%252e/app.py"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "import" not in r.text
    schema = client.get("/openapi.json").json()
    assert {"/api/conv", "/api/conv/explain", "/api/network", "/api/network/layer", "/api/training"} <= set(
        schema["paths"])


# --------------------------------------------------------------------------- network


def test_network_table_equals_the_analysis(client):
    from convlab.analysis import zoo_skeleton
    from convlab.ops.algorithms.plan import plan

    data = client.post("/api/network", json={"model": "resnet18", "input_size": [3, 64, 64]}).json()
    report = analyze("resnet18", (1, 3, 64, 64))
    assert [r["name"] for r in data["rows"]] == [r.name for r in report]
    for row, facts in zip(data["rows"], report, strict=True):
        expected = facts.to_dict()
        for key in ("output_shape", "params", "macs", "flops", "receptive_field"):
            assert row[key] == expected[key], (row["name"], key)
    assert data["totals"]["params"] == report.total_params == 11689512
    model = zoo_skeleton("resnet18", (1, 3, 64, 64))
    conv = model.layer2[0].conv1
    row = next(r for r in data["rows"] if r["name"] == "layer2.0.conv1")
    expected = plan(tuple(row["input_shapes"][0]), conv.weight.shape, conv.spec.stride, conv.spec.padding,
                    conv.spec.dilation, 1, conv.spec.groups, dtype=np.float32)
    assert row["plan"] == {"algorithm": expected.algorithm, "reason": expected.reason}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"model": "nosuchnet", "input_size": [1, 28, 28]}, "model", "not a zoo model"),
    ({"model": "lenet", "input_size": [1, 8, 8]}, "input_size", "too small"),
    ({"model": "lenet", "input_size": [4, 1024, 1024]}, "input_size", "limit of 3145728"),
    ({"model": "lenet", "input_size": [9, 28, 28]}, "input_size", "limit of 4"),
    ({"model": "../../etc/passwd", "input_size": [1, 28, 28]}, "model", "pattern"),
    ({"model": "lenet", "input_size": [1, 28]}, "input_size", "at least 3"),
])
def test_network_refusals(client, body, field, words):
    r = client.post("/api/network", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(field in map(str, d["loc"]) for d in detail) and any(words in d["msg"] for d in detail), detail


def _decode_png(url: str) -> np.ndarray:
    import base64

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_layer_view_equals_the_engine(client):
    from convlab import models
    from convlab.data import open_dataset
    from convlab.explorer.images import fit_to
    from convlab.viz.figures import feature_map_arrays, receptive_field_boxes

    body = {"model": "lenet", "input_size": [1, 28, 28], "layer": "3", "image": {"dataset": 5}}
    data = client.post("/api/network/layer", json=body).json()
    model = models.create("lenet", input_size=(1, 28, 28), rng=0)
    image = open_dataset("fashion-mnist-mini", split="test").images[5]
    x = fit_to(image.transpose(1, 2, 0), 1, 28, 28)
    np.testing.assert_array_equal(x[0] * 255, image[0])  # the bundled image itself, scaled to [0, 1]
    maps = feature_map_arrays(model, x, ["3"])["3"]
    assert data["feature_maps"]["shape"] == list(maps.shape)
    for tile in data["feature_maps"]["tiles"]:
        m = maps[tile["channel"]].astype(np.float64)
        assert (tile["min"], tile["max"]) == pytest.approx((m.min(), m.max()))
        expected = np.rint((m - m.min()) / (m.max() - m.min()) * 255)
        np.testing.assert_array_equal(_decode_png(tile["png"]), expected)
    weight = model[3].weight.data
    assert data["kernels"]["shape"] == list(weight.shape)
    assert _decode_png(data["kernels"]["filters"][0]["png"]).shape == (5, 6 * 5 + 5)  # 6 channels side by side
    unit = data["receptive_field"]["unit"]
    boxes = receptive_field_boxes(model, (1, 28, 28), "3", tuple(unit))
    assert [(b["layer"], tuple(b["box"])) for b in data["receptive_field"]["boxes"]] == boxes
    prefix = __import__("convlab").nn.Sequential(*[model[i] for i in range(4)])
    erf = effective_receptive_field(prefix, (1, 28, 28), images=x[None])
    assert data["erf"]["sigma"] == pytest.approx(list(erf.sigma))
    assert data["erf"]["field_box"] == list(erf.field_box)
    assert data["erf"]["max"] == pytest.approx(float(erf.map.max()))
    figure = client.post("/api/network/figure/kernels", json=body)
    assert figure.status_code == 200 and figure.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = client.post("/api/network/layer", json={**body, "layer": "nolayer"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "layer"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (one tiny compressed row follows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


def test_uploads_are_checked_and_used(client):
    from PIL import Image

    picture = np.zeros((40, 30, 3), dtype=np.uint8)
    picture[10:20, 5:15] = (255, 128, 0)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    r = client.post("/api/images", files={"file": ("a.png", buffer.getvalue(), "image/png")})
    assert r.status_code == 200 and r.json()["height"] == 40 and r.json()["channels"] == 3
    key = r.json()["id"]
    view = client.post("/api/network/layer", json={"model": "lenet", "input_size": [1, 28, 28], "layer": "0",
                                                   "image": {"upload": key}, "erf": False})
    assert view.status_code == 200 and view.json()["feature_maps"]["shape"] == [6, 28, 28]
    bomb = client.post("/api/images", files={"file": ("b.png", _png_header(50000, 50000), "image/png")})
    assert bomb.status_code == 422 and "limit" in bomb.json()["detail"][0]["msg"]
    big = client.post("/api/images", files={"file": ("c.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024 + 10),
                                                     "image/png")})
    assert big.status_code == 413
    junk = client.post("/api/images", files={"file": ("d.png", b"GIF89a....", "image/gif")})
    assert junk.status_code == 422 and junk.json()["detail"][0]["loc"] == ["body", "file"]
    stale = client.post("/api/network/layer", json={"model": "lenet", "input_size": [1, 28, 28], "layer": "0",
                                                    "image": {"upload": "0" * 16}})
    assert stale.status_code == 422 and "upload" in stale.json()["detail"][0]["msg"]


def test_a_torch_model_file_from_the_command_line(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "net.py"
    path.write_text("import torch\n\ndef make():\n    torch.manual_seed(0)\n    return torch.nn.Sequential("
                    "torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))\n")
    client = TestClient(create_app(model=f"{path}:make"))
    names = [m["name"] for m in client.get("/api/models").json()["models"]]
    assert names[0] == "cli:model"
    data = client.post("/api/network", json={"model": "cli:model", "input_size": [1, 16, 16]}).json()
    import importlib.util

    import convlab.interop  # noqa: F401

    spec = importlib.util.spec_from_file_location("net_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = analyze(module.make(), (1, 1, 16, 16))
    assert [r["output_shape"] for r in data["rows"]] == [list(r.output_shape) for r in report]
    assert data["totals"]["params"] == 40
    view = client.post("/api/network/layer", json={"model": "cli:model", "input_size": [1, 16, 16], "layer": "0",
                                                   "erf": False}).json()
    from convlab.explorer.network import chosen_image
    from convlab.explorer.schemas import ImageChoice

    x = torch.from_numpy(chosen_image(ImageChoice(dataset=0), None, (1, 16, 16)).astype(np.float32))
    out = module.make()[0](x[None])[0].detach().numpy()
    tile = view["feature_maps"]["tiles"][1]
    assert (tile["min"], tile["max"]) == pytest.approx((out[1].min(), out[1].max()), rel=1e-5)


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from convlab import models
    from convlab.data import open_dataset
    from convlab.train import fit

    folder = tmp_path_factory.mktemp("run")
    train = open_dataset("fashion-mnist-mini").subset(np.arange(256))
    test = open_dataset("fashion-mnist-mini", split="test").subset(np.arange(128))
    model = models.create("lenet", input_size=(1, 28, 28), num_classes=10, rng=0)
    fit(model, train, test, epochs=2, batch_size=64, logdir=folder / "log", checkpoint=folder / "last.safetensors",
        progress=False, model_name="lenet", config={"data": "fashion-mnist-mini"})
    return folder / "log", folder / "last.safetensors"


def test_training_curves_and_confusion(trained):
    from convlab.data import open_dataset
    from convlab.train import evaluate, load_checkpoint, read_metrics

    logdir, checkpoint = trained
    client = TestClient(create_app(logdir=str(logdir), checkpoint=str(checkpoint)))
    run = client.get("/api/training").json()
    records = read_metrics(logdir)
    expected: dict[str, list] = {}
    for r in records:
        expected.setdefault(r["tag"], []).append([float(r["step"]), float(r["value"])])
    assert run["series"] == expected and "loss/train" in expected and run["checkpoint"] is True
    e = client.get("/api/training/evaluation").json()
    result = evaluate(load_checkpoint(checkpoint).build_model(), open_dataset("fashion-mnist-mini", split="test"))
    assert e["confusion"] == result.confusion.tolist()
    assert e["accuracy"] == result.accuracy and e["count"] == 2000
    assert e["misclassified"] == result.count - result.correct
    for example in e["examples"]:
        assert example["true"] != example["predicted"]
    assert client.get("/api/models").json()["models"][0]["name"] == "cli:checkpoint"
    wrong = client.post("/api/network", json={"model": "cli:checkpoint", "input_size": [1, 32, 32]})
    assert wrong.status_code == 422 and "[1, 28, 28]" in wrong.json()["detail"][0]["msg"]


def test_training_without_logdir(client):
    assert client.get("/api/training").json()["series"] == {}
    r = client.get("/api/training/evaluation")
    assert r.status_code == 404 and "--checkpoint" in r.json()["detail"][0]["msg"]


def test_concurrent_requests_all_answered():
    """50 requests at once on one event loop (a shared portal): each answer is its own request's numbers."""
    from concurrent.futures import ThreadPoolExecutor

    grid = np.arange(16.0).reshape(1, 4, 4)

    def one(i: int) -> bool:
        x = grid + i
        kind = i % 3
        if kind == 0:
            r = client.post("/api/conv", json={"input": x.tolist(), "weight": [[[[1.0, 1.0]]]], "stride": 1 + i % 2})
            expected = F.conv2d(x[None], np.ones((1, 1, 1, 2)), stride=1 + i % 2)[0]
            return r.status_code == 200 and np.array_equal(np.array(json.loads(r.text)["output"]), expected)
        if kind == 1:
            r = client.post("/api/conv/explain", json={"input": x.tolist(), "weight": [[[[1.0, -1.0]]]],
                                                       "position": [0, i % 4, i % 3]})
            return r.status_code == 200 and r.json()["result"] == x[0, i % 4, i % 3] - x[0, i % 4, i % 3 + 1]
        r = client.get(f"/api/dataset/{i}/grid", params={"size": 4 + i % 5})
        return r.status_code == 200 and r.json()["index"] == i and len(r.json()["values"]) == 4 + i % 5

    with TestClient(create_app()) as client, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert all(results), [i for i, ok in enumerate(results) if not ok]


def test_a_link_in_the_logdir_pointing_outside_is_not_read(tmp_path):
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"tag": "loss/train", "step": 1, "value": 0.5}\nsecret-password-line\n{"x": 1}\n')
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "metrics.jsonl").symlink_to(outside)
    client = TestClient(create_app(logdir=str(logdir)))
    r = client.get("/api/training")
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "logdir"]
    assert "secret" not in r.text and "0.5" not in r.text
    (logdir / "metrics.jsonl").unlink()
    (logdir / "metrics.jsonl").symlink_to(logdir / "real.jsonl")  # a link, even one inside, is not followed
    (logdir / "real.jsonl").write_text('{"tag": "loss/train", "step": 1, "value": 0.5}\n')
    assert client.get("/api/training").status_code == 403
    (logdir / "metrics.jsonl").unlink()
    (logdir / "real.jsonl").rename(logdir / "metrics.jsonl")
    assert client.get("/api/training").json()["series"] == {"loss/train": [[1.0, 0.5]]}


def test_a_link_in_the_assets_pointing_outside_is_not_served(tmp_path, monkeypatch):
    """The assets' folder with a link to a file outside (and to a folder outside): neither is served."""
    import shutil
    from importlib import resources

    import convlab.explorer.app as explorer_app

    package = tmp_path / "package"
    shutil.copytree(resources.files("convlab.explorer") / "static", package / "static")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-password-line")
    (package / "static" / "leak.txt").symlink_to(secret)
    (package / "static" / "up").symlink_to(tmp_path, target_is_directory=True)

    class Files:
        @staticmethod
        def files(name):
            return package

    monkeypatch.setattr(explorer_app, "resources", Files)
    client = TestClient(create_app())
    assert client.get("/static/app.js").status_code == 200  # the copied assets are served
    for path in ("/static/leak.txt", "/static/up/secret.txt", "/static/up/../secret.txt", "/static/%2e%2e/secret.txt"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "secret-password" not in r.text


# --------------------------------------------------------------------------- time limit and cost budget


CONV = {"input": [[[1.0, 2.0, 3.0]]], "weight": [[[[1.0, -1.0]]]]}


def test_time_limit_refusal_names_the_field_and_the_limit():
    client = TestClient(create_app(time_limit=1e-6))
    for path, body, field in (("/api/conv", CONV, "input"), ("/api/conv/explain", {**CONV, "position": [0, 0, 0]},
                                                                 "input"),
                              ("/api/network", {"model": "lenet", "input_size": [1, 28, 28]}, "input_size")):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body", field] and detail["type"] == "time_limit", detail
        assert "time limit of 1e-06 s" in detail["msg"]
    assert client.get("/api/limits").json()["time_limit_s"] == 1e-6  # cheap routes still answer


def test_a_computation_past_its_time_limit_is_answered_while_it_runs(monkeypatch):
    import threading

    from convlab.explorer import playground

    release, finished = threading.Event(), threading.Event()

    def slow(req):
        release.wait(60)
        finished.set()
        return {}

    monkeypatch.setattr(playground, "compute", slow)
    client = TestClient(create_app(time_limit=0.3))
    r = client.post("/api/conv", json=CONV)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "time_limit"
    assert not finished.is_set()  # the answer came while the abandoned work was still running
    release.set()
    assert finished.wait(30)  # and the work then ends on its own
    monkeypatch.undo()
    r = client.post("/api/conv", json=CONV)
    assert r.status_code == 200 and r.json()["output"] == [[[-1.0, -1.0]]]


@pytest.mark.parametrize(("kwargs", "name"), [({"time_limit": 0}, "time_limit"), ({"time_limit": float("nan")},
                                              "time_limit"), ({"mac_budget": 0}, "mac_budget"),
                                              ({"compute_slots": 1.5}, "compute_slots")])
def test_create_app_refuses_bad_limits(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        create_app(**kwargs)


def test_mac_budget_refuses_before_work_and_leaves_out_the_erf():
    from convlab.explorer.network import layer_cost

    report = analyze("lenet", (1, 1, 28, 28))
    assert layer_cost(report, "3") == (117600 + 240000, 3 * (117600 + 240000))  # from the analysis' MACs
    body = {"model": "lenet", "input_size": [1, 28, 28], "layer": "3"}
    client = TestClient(create_app(mac_budget=300_000))
    r = client.post("/api/network/layer", json=body)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "input_size"] and "357600" in detail["msg"] and "budget of 300000" in detail["msg"]
    r = client.post("/api/network/figure/erf", json={**body, "layer": "0"})
    assert r.status_code == 422 and "budget of 300000" in r.json()["detail"][0]["msg"]
    view = client.post("/api/network/layer", json={**body, "layer": "0"}).json()  # 117600 + ERF 352800
    assert view["feature_maps"]["shape"] == [6, 28, 28] and view["erf"] is None
    assert "budget of 300000" in view["erf_note"] and view["receptive_field"] is not None
    assert client.get("/api/limits").json()["network"]["mac_budget"] == 300_000


def test_cli_serve_refusals(capsys):
    from convlab.cli import main

    assert main(["serve", "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--logdir", "/nonexistent/dir"]) == 2
    assert "--logdir" in capsys.readouterr().err
