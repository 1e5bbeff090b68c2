"""Screenshots of the explorer's three views for the README: ``python -m convlab.explorer.screenshots OUTDIR``.

Starts the explorer (uvicorn, in a thread, on a free port of 127.0.0.1) with a small training run (LeNet with
batch normalisation, 2 epochs on the bundled 10,000 images at the recipe's learning rate: about 83% test accuracy;
written to a temporary folder; or ``--logdir`` and ``--checkpoint``), drives Debian's Chromium through Playwright
(``/usr/bin/chromium``, headless; Playwright's own browser downloads are not used) and writes ``playground.png``,
``network.png`` and ``training.png`` to OUTDIR: PNGs with a 256-colour palette (Pillow), written atomically; an
existing file only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
NAMES = ("playground.png", "network.png", "training.png")


def _train(folder: Path) -> tuple[Path, Path]:
    from .. import models
    from ..data import open_dataset
    from ..train import fit
    from ..train.recipes import default_lr

    train = open_dataset("fashion-mnist-mini")
    test = open_dataset("fashion-mnist-mini", split="test")
    model = models.create("lenet_bn", input_size=(1, 28, 28), num_classes=10, rng=0)
    fit(model, train, test, epochs=2, batch_size=128, lr=default_lr(model), logdir=folder / "lenet_bn",
        checkpoint=folder / "lenet_bn.safetensors", progress=False, model_name="lenet_bn",
        config={"data": "fashion-mnist-mini"})
    return folder / "lenet_bn", folder / "lenet_bn.safetensors"


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("screenshots: the explorer's server did not start within 30 s")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def _wait(page: Any, expression: str, timeout: float = 120.0) -> None:
    """Poll ``expression`` in the page (the page's CSP forbids the string evaluation wait_for_function uses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: timed out waiting for {expression}")
        time.sleep(0.1)


def _write_png(data: bytes, path: Path, overwrite: bool) -> int:
    """The screenshot with a 256-colour palette (a few times smaller), written atomically; its size in bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"screenshots: {path} exists (pass --overwrite to replace it)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(buffer.getvalue())


def take(outdir: str | os.PathLike[str], *, logdir: str | None = None, checkpoint: str | None = None,
         overwrite: bool = False, width: int = 1280, height: int = 1150) -> dict[str, int]:
    """Write the three screenshots to ``outdir``; returns ``{name: bytes}``."""
    from playwright.sync_api import sync_playwright

    from .app import create_app

    out = Path(outdir)
    if not out.is_dir():
        raise ValueError(f"screenshots: OUTDIR ({str(out)!r}) must be an existing folder")
    if not overwrite:
        for name in NAMES:
            if (out / name).exists():
                raise FileExistsError(f"screenshots: {out / name} exists (pass --overwrite to replace it)")
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"screenshots: {CHROMIUM} is absent (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        if logdir is None or checkpoint is None:
            trained_logdir, trained_checkpoint = _train(Path(scratch))
            logdir = logdir or str(trained_logdir)
            checkpoint = checkpoint or str(trained_checkpoint)
        server, thread, url = _serve(create_app(logdir=logdir, checkpoint=checkpoint))
        sizes: dict[str, int] = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                page.goto(url + "/")
                page.wait_for_selector("#output-grid td")
                # the playground: Sobel x on a 5x5 ramp, stride 2, padding 1, one output cell explained
                before = page.evaluate("document.body.dataset.convReady")
                page.fill("#stride", "2")
                page.fill("#padding", "1")
                _wait(page, f"document.body.dataset.convReady !== {before!r} && "
                            "document.querySelectorAll('#output-grid td').length === 9")
                page.click('#out-0 td[data-index="0,1,1"]')
                page.wait_for_selector("#taps tr.tap-row")
                sizes[NAMES[0]] = _write_png(page.screenshot(), out / NAMES[0], overwrite)
                # the network: the trained model, its second convolution's feature maps and fields
                page.click("#tab-network")
                page.wait_for_selector("#model option[value='cli:checkpoint']", state="attached")
                page.select_option("#model", "cli:checkpoint")
                page.fill("#net-input", "1,28,28")
                page.click("#net-form button[type=submit]")
                page.wait_for_selector("#layers tr.layer-row")
                layer = page.eval_on_selector_all("#layers tr.layer-row", "rows => rows.filter(r => "
                                                  "r.querySelector('.c-kind').textContent === 'conv')[1].dataset.layer")
                page.click(f'#layers tr[data-layer="{layer}"]')
                _wait(page, f"document.body.dataset.erfReady === {layer!r}")
                sizes[NAMES[1]] = _write_png(page.screenshot(), out / NAMES[1], overwrite)
                # the training run: curves, confusion matrix, misclassified examples
                page.click("#tab-training")
                page.wait_for_selector("#confusion td.count", timeout=120_000)
                page.wait_for_selector("#misclassified img")
                sizes[NAMES[2]] = _write_png(page.screenshot(), out / NAMES[2], overwrite)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convlab.explorer.screenshots",
                                     description="Screenshots of the explorer's three views (PNG) for the README.")
    parser.add_argument("outdir", help="an existing folder (the README's are in docs/images)")
    parser.add_argument("--logdir", help="a `convlab train` log directory (default: a small LeNet run, trained now)")
    parser.add_argument("--checkpoint", help="its checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace existing screenshots")
    args = parser.parse_args(argv)
    try:
        sizes = take(args.outdir, logdir=args.logdir, checkpoint=args.checkpoint, overwrite=args.overwrite)
    except (ValueError, FileExistsError, RuntimeError, ImportError) as exc:
        print(f"screenshots: error: {exc}" if not str(exc).startswith("screenshots") else str(exc), file=sys.stderr)
        return 2
    for name, size in sizes.items():
        print(f"{Path(args.outdir) / name}: {size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
