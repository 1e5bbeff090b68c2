"""The explorer: a local web page where every convolution, network and training run can be played with.

``convlab serve`` (:mod:`convlab.explorer.cli`) starts :func:`create_app` under uvicorn on 127.0.0.1.
The page (``static/``: plain HTML, CSS and JavaScript, nothing downloaded) only draws; every number comes
from the server, which calls the engine (:mod:`convlab.functional`, :mod:`convlab.ops.explain`), the
analysis (:mod:`convlab.analysis`), the pictures' data (:mod:`convlab.viz`) and the training records
(:mod:`convlab.train`). FastAPI, uvicorn and Pillow are imported when the app is created
(``pip install "convlab[web]"``); importing this package needs none of them.

Modules: :mod:`~convlab.explorer.app` (routes), :mod:`~convlab.explorer.schemas` (requests),
:mod:`~convlab.explorer.playground`, :mod:`~convlab.explorer.network`, :mod:`~convlab.explorer.training`
(the computations, no web framework), :mod:`~convlab.explorer.images` (uploads and PNGs).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(model: Any = None, logdir: str | None = None, checkpoint: str | None = None, **limits: Any) -> Any:
    """The explorer's FastAPI app; see :func:`convlab.explorer.app.create_app` (``limits``: ``time_limit``,
    ``mac_budget``, ``compute_slots``)."""
    from .app import create_app as create

    return create(model=model, logdir=logdir, checkpoint=checkpoint, **limits)
