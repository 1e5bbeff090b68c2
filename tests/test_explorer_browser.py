"""The explorer in a real browser (Playwright driving Debian's chromium): the numbers the page shows equal the
engine's, the analysis' and the training records'. One server (uvicorn in a thread) and one browser per module."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; CI installs it)", allow_module_level=True)
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import convlab.functional as F  # noqa: E402
from convlab.analysis import analyze  # noqa: E402
from convlab.explorer import create_app  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from convlab import models
    from convlab.data import open_dataset
    from convlab.train import fit

    folder = tmp_path_factory.mktemp("run")
    train = open_dataset("fashion-mnist-mini").subset(np.arange(192))
    test = open_dataset("fashion-mnist-mini", split="test").subset(np.arange(64))
    model = models.create("lenet", input_size=(1, 28, 28), num_classes=10, rng=0)
    fit(model, train, test, epochs=2, batch_size=64, logdir=folder / "log", checkpoint=folder / "last.safetensors",
        progress=False, model_name="lenet", config={"data": "fashion-mnist-mini"})
    return folder / "log", folder / "last.safetensors"


@pytest.fixture(scope="module")
def server(run):
    logdir, checkpoint = run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(logdir=str(logdir), checkpoint=str(checkpoint)), host="127.0.0.1",
                            port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(server + "/")
        page.wait_for_selector("#output-grid td")
        page.errors = errors
        yield page
        browser.close()


def _grid_values(page) -> np.ndarray:
    cells = page.eval_on_selector_all("#out-0 tr",
                                      "rows => rows.map(r => [...r.cells].map(c => Number(c.dataset.value)))")
    return np.array(cells)


def _wait_for(page, expression: str, timeout: float = 30.0) -> None:
    """Poll ``expression`` (page.wait_for_function evaluates a string, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        shown = page.evaluate("document.getElementById('conv-error').textContent")
        assert time.monotonic() < deadline, f"timed out waiting for {expression}; the page says {shown!r}"
        time.sleep(0.05)


def _wait_update(page, action) -> None:
    before = page.evaluate("document.body.dataset.convReady")
    action()
    _wait_for(page, f"document.body.dataset.convReady !== {json.dumps(before)}")


def test_playground_stride_padding_and_products(page, tmp_path):
    x = np.array([list(map(float, line.split())) for line in page.input_value("#input").splitlines()])
    w = np.array([list(map(float, line.split())) for line in page.input_value("#weight").splitlines()])
    _wait_update(page, lambda: page.fill("#stride", "2"))
    _wait_update(page, lambda: page.fill("#padding", "1"))
    expected = F.conv2d(x[None, None], w[None, None], stride=2, padding=1)[0, 0]
    np.testing.assert_array_equal(_grid_values(page), expected)
    formula = page.text_content("#formula")
    h = x.shape[0]
    assert f"H_out = floor(({h} + 1 + 1 - (3-1) - 1) / 2) + 1 = {expected.shape[0]}" in formula
    assert page.text_content("#code-torch").startswith("torch.nn.functional.conv2d(x, w, None, stride=2")
    # click an output cell: its products and sum
    page.click('#out-0 td[data-index="0,1,1"]')
    page.wait_for_selector("#taps tr.tap-row")
    products = page.eval_on_selector_all("#taps td.product", "cells => cells.map(c => Number(c.dataset.value))")
    values = page.eval_on_selector_all("#taps tr.tap-row td:nth-child(3)",
                                       "cells => cells.map(c => Number(c.dataset.value))")
    window = np.pad(x, 1)[2:5, 2:5]  # output (1, 1), stride 2, padding 1
    np.testing.assert_array_equal(np.array(values), window.ravel())
    np.testing.assert_array_equal(np.array(products), (window * w).ravel())
    assert float(page.get_attribute("#explain", "data-result")) == expected[1, 1]
    assert page.text_content("#explain").strip().endswith(f"= {int(expected[1, 1])}")
    assert "current" in page.get_attribute('#out-0 td[data-index="0,1,1"]', "class")
    # stepping moves the window to the next output element
    page.click("#step")
    assert page.text_content("#frame-counter").startswith(f"frame {1 * expected.shape[1] + 1 + 2} /")
    page.screenshot(path=str(tmp_path / "playground.png"))
    assert not page.errors


def test_playground_transposed_and_pooling(page):
    page.select_option("#op", "conv_transpose")
    _wait_update(page, lambda: page.fill("#output_padding", "1"))
    x = np.array([list(map(float, line.split())) for line in page.input_value("#input").splitlines()])
    w = np.array([list(map(float, line.split())) for line in page.input_value("#weight").splitlines()])
    expected = F.conv_transpose2d(x[None, None], w[None, None], stride=2, padding=1, output_padding=1)[0, 0]
    np.testing.assert_array_equal(_grid_values(page), expected)
    page.select_option("#op", "max_pool")
    _wait_update(page, lambda: page.fill("#kernel_size", "3"))
    expected = F.max_pool2d(x[None, None], 3, 2, 1)[0, 0]
    np.testing.assert_array_equal(_grid_values(page), expected)
    page.fill("#stride", "0")  # refused: the message names the field
    page.wait_for_selector("#conv-error:not([hidden])")
    assert "stride" in page.text_content("#conv-error")
    assert page.errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    page.errors.clear()  # the deliberate refusal's 422
    _wait_update(page, lambda: page.fill("#stride", "2"))
    assert page.is_hidden("#conv-error")


def test_network_table_and_feature_maps(page, tmp_path):
    page.click("#tab-network")
    assert page.is_visible("#view-network") and page.is_hidden("#view-playground")  # one view at a time
    page.wait_for_selector("#model option[value=lenet]", state="attached")
    page.select_option("#model", "lenet")
    page.fill("#net-input", "1,28,28")
    page.click("#net-form button[type=submit]")
    page.wait_for_selector("#layers tr.layer-row")
    rows = page.eval_on_selector_all("#layers tr.layer-row", "rows => rows.map(r => [r.dataset.layer, "
                                     "r.querySelector('.c-shape').textContent, "
                                     "r.querySelector('.c-params').textContent, r.querySelector('.c-rf').textContent])")
    report = analyze("lenet", (1, 1, 28, 28))
    assert [(r[0], r[1], int(r[2])) for r in rows] == [(f.name, "x".join(map(str, f.output_shape)), f.params)
                                                      for f in report]
    assert rows[4][3] == "x".join(str(f.size) for f in report["3"].receptive_field)
    page.click('#layers tr[data-layer="0"]')
    _wait_for(page, "document.body.dataset.layerReady === '0'")
    loaded = page.eval_on_selector_all("#feature-maps img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert loaded == [28] * 6  # LeNet's first convolution: 6 maps of 28x28
    assert page.eval_on_selector_all("#kernels img", "imgs => imgs.length") == 6
    assert page.eval_on_selector_all("#rf-view rect", "r => r.length") == 1
    _wait_for(page, "document.body.dataset.erfReady === '0'")  # the ERF comes on its own request
    assert "ERF of 0" in page.text_content("#erf-summary")
    page.screenshot(path=str(tmp_path / "network.png"))
    assert not page.errors


def test_training_curves_and_confusion(page, run):
    from convlab.data import open_dataset
    from convlab.train import evaluate, load_checkpoint, read_metrics

    logdir, checkpoint = run
    page.click("#tab-training")
    assert page.is_hidden("#view-network") and page.is_hidden("#view-playground")
    page.wait_for_selector("#curves polyline", state="attached")
    page.wait_for_selector("#confusion td.count", timeout=60_000)
    shown = page.eval_on_selector_all("#curves polyline",
                                      "ls => ls.map(l => [l.dataset.tag, JSON.parse(l.dataset.points)])")
    expected: dict[str, list] = {}
    for r in read_metrics(logdir):
        expected.setdefault(r["tag"], []).append([float(r["step"]), float(r["value"])])
    assert dict(shown) == expected
    counts = page.eval_on_selector_all("#confusion tr", "rows => rows.slice(1).map(r => [...r.querySelectorAll('td')]"
                                       ".map(c => Number(c.textContent)))")
    result = evaluate(load_checkpoint(checkpoint).build_model(), open_dataset("fashion-mnist-mini", split="test"))
    assert counts == result.confusion.tolist()
    assert page.eval_on_selector_all("#misclassified figure", "f => f.length") == min(48, result.count - result.correct)
    assert not page.errors
