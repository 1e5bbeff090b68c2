"""The explorer's speed, measured in-process through its API (FastAPI's TestClient; nothing asserted).

``python -m convlab.explorer.measure`` prints

- the playground: 200 changes of a 7x7 input's configuration (stride, padding, dilation, kernel preset), each one
  ``POST /api/conv``; the median and the 95th percentile of the answer time;
- ResNet-18's feature maps for a 224x224 image (random weights, ``erf: false``: what the page asks for first),
  per layer, the first request (the model is built) and the next ones; and the same layers with the whole model
  run (``capture_outputs`` without ``stop_after``), the cost before the forward pass stopped after the layer.

The figures depend on the machine and its load; the README quotes them with the CPU named.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.1.conv2")


def _percentiles(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max()), "requests": len(ms)}


def playground(client: Any, requests: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = np.arange(49.0).reshape(1, 7, 7)
    kernels = [[[[1.0, -1.0]]], [[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]], [[[1 / 9] * 3] * 3]]
    times = []
    for _ in range(requests):
        body = {"input": x.tolist(), "weight": kernels[rng.integers(len(kernels))],
                "stride": int(rng.integers(1, 3)), "padding": int(rng.integers(0, 3)),
                "dilation": int(rng.integers(1, 3))}
        start = time.perf_counter()
        r = client.post("/api/conv", json=body)
        times.append(time.perf_counter() - start)
        if r.status_code not in (200, 422):
            raise RuntimeError(f"/api/conv answered {r.status_code}: {r.text[:200]}")
    return _percentiles(times)


def feature_maps(client: Any, model: str = "resnet18", size: tuple[int, int, int] = (3, 224, 224),
                 layers: tuple[str, ...] = LAYERS, repeats: int = 3) -> dict[str, Any]:
    from . import network
    from .schemas import ImageChoice

    out: dict[str, Any] = {}
    body = {"model": model, "input_size": list(size), "erf": False}
    start = time.perf_counter()
    r = client.post("/api/network/layer", json={**body, "layer": layers[0]})
    r.raise_for_status()
    out["first_request_s"] = time.perf_counter() - start  # the analysis and the model's weights built
    entry = client.app.state.store.built(model, size)
    x = network.chosen_image(ImageChoice(dataset=0), client.app.state.uploads, size)
    from ..viz.figures import feature_map_arrays

    for layer in layers:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            r = client.post("/api/network/layer", json={**body, "layer": layer})
            times.append(time.perf_counter() - start)
            r.raise_for_status()
        whole = []
        for _ in range(repeats):
            start = time.perf_counter()
            feature_map_arrays(entry.model, x, [layer])  # the whole model runs
            whole.append(time.perf_counter() - start)
        out[layer] = {"request_s": float(np.median(times)), "whole_model_forward_s": float(np.median(whole))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convlab.explorer.measure", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from fastapi.testclient import TestClient

    from .app import create_app

    with TestClient(create_app()) as client:
        client.post("/api/conv", json={"input": [[[1.0, 2.0]]], "weight": [[[[1.0]]]]})  # warm-up
        print("playground (7x7, 200 changes):", {k: round(v, 1) for k, v in playground(client, args.requests).items()})
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        maps = feature_maps(client, repeats=args.repeats)
        print(f"resnet18 224x224, first layer request (analysis + weights built): {maps.pop('first_request_s'):.2f} s")
        for layer, row in maps.items():
            print(f"  {layer:16s} feature maps request {row['request_s']:.3f} s   "
                  f"(whole model's forward: {row['whole_model_forward_s']:.3f} s)")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
