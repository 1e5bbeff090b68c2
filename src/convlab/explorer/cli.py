"""``convlab serve``: the explorer on http://127.0.0.1:8000 (another address only with an explicit --host)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``serve`` (standard library only at import time)."""
    p = subparsers.add_parser(
        "serve", help="the explorer: a local web page of convolutions, networks and training runs",
        description="Serve the explorer page: the convolution playground, any zoo model's layer table, feature "
                    "maps and receptive fields, and a training run's curves, all computed by convlab on this "
                    "machine. Binds 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", default=None, metavar="PATH.py:FACTORY",
                   help="a model file: FACTORY() returns a convlab.nn or torch.nn module (runs that file's code)")
    p.add_argument("--logdir", default=None, metavar="DIR", help="a `convlab train` log directory (curves)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="a `convlab train` checkpoint: its model, confusion matrix and misclassified examples")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="seconds one request's computation may take (default 30)")
    p.add_argument("--mac-budget", type=int, default=None, metavar="N",
                   help="multiply-accumulates a layer's views may cost (default 2e10)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import os

    if not 0 < args.port < 65536:
        print(f"convlab serve: error: --port ({args.port}) must be 1 to 65535", file=sys.stderr)
        return 2
    for option, path, kind in (("--logdir", args.logdir, os.path.isdir), ("--checkpoint", args.checkpoint,
                                                                         os.path.isfile)):
        if path is not None and not kind(path):
            print(f"convlab serve: error: {option} ({path!r}) does not exist", file=sys.stderr)
            return 2
    try:
        import uvicorn

        from .app import create_app
    except ImportError:
        print('convlab serve: error: the explorer needs FastAPI and uvicorn: pip install "convlab[web]"',
              file=sys.stderr)
        return 2
    try:
        limits = {name: value for name, value in (("time_limit", args.time_limit), ("mac_budget", args.mac_budget))
                  if value is not None}
        app = create_app(model=args.model, logdir=args.logdir, checkpoint=args.checkpoint, **limits)
    except (ValueError, TypeError, OSError, ImportError) as exc:  # ImportError: FastAPI missing, uvicorn present
        print(f"convlab serve: error: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"convlab serve: warning: binding {args.host}: the explorer is reachable from other machines; it has "
              "no authentication", file=sys.stderr)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"convlab explorer: http://{host}:{args.port}/  (OpenAPI schema: /openapi.json; Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
