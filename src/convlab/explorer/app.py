"""The explorer's web server: a FastAPI app whose routes validate (pydantic) and call the library.

Routes (the OpenAPI schema is at ``/openapi.json``, its page at ``/docs``):

=====================================  =======================================================================
``GET /``                              the page (``static/index.html``; ``/static/*`` its script and style)
``GET /api/limits``                    the bounds every request is checked against
``GET /api/presets``                   kernel presets (edge ``[1, -1]``, Sobel, blur, identity)
``POST /api/conv``                     the playground: drawn input, frames, output (convlab.functional),
                                       formula, code lines, the algorithm ``auto`` runs
``POST /api/conv/explain``             one output element's products and sum (convlab.ops.explain)
``POST /api/conv/animation.svg``       the animation as an animated SVG (convlab.viz.animate)
``GET /api/dataset``                   the bundled images' labels; ``/api/dataset/{i}.png`` one image,
                                       ``/api/dataset/{i}/grid?size=`` its pixels as numbers
``POST /api/images``                   upload a PNG/JPEG (checked, decoded by Pillow, kept in memory)
``GET /api/models``                    the zoo and the command line's models
``POST /api/network``                  the layer table (convlab.analysis) and each convolution's plan
``POST /api/network/layer``            one layer: feature maps, kernels, receptive field, ERF
``POST /api/network/figure/{kind}``    convlab.viz's figure of that layer as PNG
``GET /api/training``                  the log directory's curves (metrics.jsonl)
``GET /api/training/evaluation``       the checkpoint's confusion matrix and misclassified examples
=====================================  =======================================================================

Every request is bounded before work: the body (:data:`MAX_BODY_BYTES`, 413), the arrays and sizes
(pydantic constraints and each module's limits, 422 naming the field and the limit). Compute routes run
their work in a worker thread under a deadline (:class:`Computations`: ``time_limit`` seconds, a few at a
time), so the server keeps answering; past the deadline the answer is a 422 naming the field that sets the
work's size and the limit. A layer's views are also priced before any work, in multiply-accumulates from the
analysis (``mac_budget``). Refusals of
the library (ValueError/TypeError naming a parameter) become 422 answers in FastAPI's error format,
``{"detail": [{"loc": ["body", field], "msg": ..., "type": "value_error"}]}``; nothing else of a request
reaches a file path. Responses carry a restrictive Content-Security-Policy.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some imported locally.
import os
from importlib import resources
from typing import Any

import numpy as np

from . import images, network, playground, training

MAX_BODY_BYTES = 4 * 1024 * 1024
#: Wall-clock seconds one computation (a request's work in its thread) may take before the answer is a refusal.
TIME_LIMIT_S = 30.0
#: Multiply-accumulates a layer view may cost (the forward pass up to the layer, the ERF's forward and backward),
#: estimated from the analysis before any weight is built; above it the request is refused (or the ERF skipped).
MAC_BUDGET = 20_000_000_000
#: Computations running at once (a computation past its time limit keeps its slot until its thread ends).
COMPUTE_SLOTS = 4
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

#: Kernel presets (1-D and 2-D), torch's layout for one channel in and out.
PRESETS = {
    "edge [1, -1]": {"1": [1.0, -1.0], "2": [[1.0, -1.0]]},
    "Sobel x": {"1": [-1.0, 0.0, 1.0], "2": [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]},
    "Sobel y": {"1": [-1.0, 0.0, 1.0], "2": [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]},
    "blur (box 3)": {"1": [1 / 3, 1 / 3, 1 / 3], "2": [[1 / 9] * 3] * 3},
    "blur (binomial)": {"1": [0.25, 0.5, 0.25], "2": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16],
                                                      [1 / 16, 2 / 16, 1 / 16]]},
    "identity": {"1": [0.0, 1.0, 0.0], "2": [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]},
}


def _require_web() -> Any:
    try:
        import fastapi
    except ImportError:
        raise ImportError('the explorer needs FastAPI and uvicorn: pip install "convlab[web]"') from None
    return fastapi


def refusal(field: str, message: str, status: int = 422, kind: str = "value_error") -> Any:
    """A JSON refusal in FastAPI's validation-error format, naming the field."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": [{"loc": ["body", field], "msg": message, "type": kind}]}, status_code=status)


class _BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes with 413, by its Content-Length before reading,
    or as it streams in."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = {"detail": [{"loc": ["body"], "msg": f"the request body is larger than the limit of "
                                                         f"{self.limit} bytes", "type": "too_large"}]}
        from fastapi.responses import JSONResponse

        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await JSONResponse(too_large, status_code=413)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await JSONResponse(too_large, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


class TimeLimitExceeded(Exception):
    """A computation ran past the time limit; answered 422 naming the request field that sets its size."""

    def __init__(self, field: str, limit: float) -> None:
        super().__init__(f"the computation took more than the time limit of {limit:g} s per request (it depends on "
                         f"`{field}`; ask for less, or start the server with a larger --time-limit)")
        self.field = field
        self.limit = limit


class Computations:
    """Runs a request's work in a worker thread with a deadline (``time_limit`` seconds, queueing included).

    At most ``slots`` computations run at once. Past the deadline the request is answered with
    :class:`TimeLimitExceeded`; the thread is abandoned, not killed (Python cannot stop a thread), and
    finishes on its own: every computation is bounded by the size limits. It keeps its slot until then, so
    abandoned work cannot pile up, and a computation still waiting for a slot when its request is abandoned
    never starts.
    """

    def __init__(self, time_limit: float, slots: int) -> None:
        import threading

        self.time_limit = time_limit
        self._slots = threading.BoundedSemaphore(slots)

    async def run(self, field: str, fn: Any, *args: Any) -> Any:
        import threading

        import anyio

        abandoned = threading.Event()

        def work() -> Any:
            with self._slots:
                if abandoned.is_set():
                    return None
                return fn(*args)

        try:
            with anyio.fail_after(self.time_limit):
                return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            abandoned.set()
            raise TimeLimitExceeded(field, self.time_limit) from None


def create_app(model: str | Any | None = None, logdir: str | None = None, checkpoint: str | None = None, *,
               time_limit: float = TIME_LIMIT_S, mac_budget: int = MAC_BUDGET, compute_slots: int = COMPUTE_SLOTS
               ) -> Any:
    """The explorer's FastAPI app.

    Parameters
    ----------
    model : str or module, optional
        ``path.py:factory`` (the file's ``factory()`` returns a ``convlab.nn`` or ``torch.nn`` module) or the
        module itself; shown as ``cli:model``. Only the command line gives one, never a request.
    logdir : str, optional
        A ``convlab train`` log directory: its curves in the training view.
    checkpoint : str, optional
        A checkpoint written by ``convlab train``: the model (``cli:checkpoint``) and its confusion matrix.
    time_limit : float
        Seconds one request's computation may take (waiting for a slot included); past it the answer is a 422
        naming the field that sets the work's size and the limit.
    mac_budget : int
        Multiply-accumulates a layer view or figure may cost, estimated from the analysis before the model is
        built: the forward pass up to the layer (refused above it, 422 naming ``layer``/``input_size``), plus
        the ERF's forward and backward passes (the ERF is left out above it, with a note).
    compute_slots : int
        Computations running at once.
    """
    import math as _math

    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not (
            _math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"create_app: `time_limit` (={time_limit!r}) must be a positive number of seconds")
    for name, value in (("mac_budget", mac_budget), ("compute_slots", compute_slots)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"create_app: `{name}` (={value!r}) must be a positive integer")
    _require_web()
    from fastapi import FastAPI, File, Query, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    # pydantic's request models (imported here: this module imports without the web extra)
    from .schemas import ConvRequest, ExplainRequest, LayerRequest, NetworkRequest

    store = network.ModelStore(model, checkpoint)
    run = training.TrainingRun(logdir, checkpoint)
    uploads = images.UploadStore()
    static = resources.files("convlab.explorer") / "static"
    static_dir = os.fspath(static)

    app = FastAPI(title="convlab explorer", version="1", docs_url="/docs", redoc_url=None,
                  description="Every convolution, network and training run of convlab, computed by the engine.")
    app.state.store, app.state.run, app.state.uploads = store, run, uploads
    computations = Computations(float(time_limit), compute_slots)
    app.state.computations = computations

    @app.middleware("http")
    async def headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path not in ("/docs",):  # FastAPI's docs page loads its script from a CDN
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: RequestValidationError) -> Any:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]  # without the input echoed back (it may be large)
        return JSONResponse({"detail": errors}, status_code=422)

    for kind in (playground.PlaygroundError, network.NetworkError):
        @app.exception_handler(kind)
        async def refused(request: Any, exc: Any) -> Any:
            return refusal(exc.field, str(exc))

    @app.exception_handler(training.TrainingError)
    async def refused_training(request: Any, exc: training.TrainingError) -> Any:
        return refusal(exc.field, str(exc), exc.status)

    @app.exception_handler(TimeLimitExceeded)
    async def too_slow(request: Any, exc: TimeLimitExceeded) -> Any:
        return refusal(exc.field, str(exc), kind="time_limit")

    @app.exception_handler(images.ImageError)
    async def refused_image(request: Any, exc: images.ImageError) -> Any:
        return refusal("file", str(exc), exc.status)

    # follow_symlink=False (Starlette's default, stated): a link inside the assets pointing elsewhere is not served
    app.mount("/static", StaticFiles(directory=static_dir, follow_symlink=False), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> Any:
        return FileResponse(os.path.join(static_dir, "index.html"), media_type="text/html")

    @app.get("/api/limits")
    def limits() -> dict[str, Any]:
        return {"body_bytes": MAX_BODY_BYTES, "playground": {
                    "channels": playground.MAX_CHANNELS, "side_2d": playground.MAX_SIDE_2D,
                    "length_1d": playground.MAX_LENGTH_1D, "kernel_2d": playground.MAX_KERNEL_2D,
                    "kernel_1d": playground.MAX_KERNEL_1D, "frames": playground.MAX_FRAMES},
                "image_bytes": images.MAX_IMAGE_BYTES, "image_pixels": images.MAX_PIXELS,
                "image_side": images.MAX_SIDE, "network": {
                    "analysis_elements": network.MAX_ANALYSIS_ELEMENTS,
                    "forward_elements": network.MAX_FORWARD_ELEMENTS, "channels": network.MAX_CHANNELS,
                    "build_parameters": network.MAX_BUILD_PARAMETERS, "mac_budget": mac_budget},
                "time_limit_s": computations.time_limit}

    @app.get("/api/presets")
    def presets() -> dict[str, Any]:
        return PRESETS

    @app.post("/api/conv")
    async def conv(req: ConvRequest) -> dict[str, Any]:
        return await computations.run("input", playground.compute, req)

    @app.post("/api/conv/explain")
    async def conv_explain(req: ExplainRequest) -> dict[str, Any]:
        return await computations.run("input", playground.explain, req)

    @app.post("/api/conv/animation.svg", response_class=Response)
    async def conv_animation(req: ConvRequest) -> Any:
        return Response(await computations.run("input", _animation_svg, req), media_type="image/svg+xml")

    def _animation_svg(req: ConvRequest) -> str:
        from ..viz import animate

        x, w, b = playground._arguments(req)
        pool = {"max_pool": "max", "avg_pool": "avg"}.get(req.op)
        playground.checked_output(req, x, w, b)  # the playground's checks and limits first
        playground._scene(req, x, w, b)
        stride = req.stride if req.stride is not None else (None if pool else 1)
        animation = animate(x, w, b, kernel_size=req.kernel_size if pool else None, stride=stride,
                            padding=playground._padding(req.padding), dilation=req.dilation, groups=req.groups,
                            padding_mode=req.padding_mode, flip_kernel=req.flip_kernel,
                            transposed=req.op == "conv_transpose", output_padding=req.output_padding, pool=pool,
                            ceil_mode=req.ceil_mode, count_include_pad=req.count_include_pad)
        return animation.to_svg()

    @app.get("/api/dataset")
    def dataset_index() -> dict[str, Any]:
        data = network.dataset()
        count = min(len(data), 64)
        return {"name": network.DATASET, "count": count, "classes": list(data.classes),
                "labels": [int(v) for v in data.labels[:count]], "shape": list(data.images.shape[1:])}

    def _dataset_image(index: int) -> np.ndarray:
        data = network.dataset()
        if not 0 <= index < min(len(data), 64):
            raise network.NetworkError("index", f"`index` (={index}) must be 0 to {min(len(data), 64) - 1}")
        return data.images[index]

    @app.get("/api/dataset/{index}.png", response_class=Response)
    def dataset_png(index: int) -> Any:
        picture = _dataset_image(index)
        return Response(images.png(picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)),
                        media_type="image/png")

    @app.get("/api/dataset/{index}/grid")
    def dataset_grid(index: int, size: int = Query(8, ge=2, le=playground.MAX_SIDE_2D)) -> dict[str, Any]:
        """The image resized to ``size`` x ``size`` (grey, values 0-1 rounded to 2 decimals): a playground
        input."""
        picture = _dataset_image(index)
        grid = images.fit_to(picture.transpose(1, 2, 0), 1, size, size)[0]
        return {"index": index, "values": np.round(grid, 2).tolist()}

    @app.post("/api/images")
    async def upload(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008  (FastAPI's declaration)
        data = await file.read(images.MAX_IMAGE_BYTES + 1)
        key, array = await computations.run("file", uploads.add, data)
        return {"id": key, "height": int(array.shape[0]), "width": int(array.shape[1]),
                "channels": int(array.shape[2])}

    @app.get("/api/models")
    def model_list() -> dict[str, Any]:
        return {"models": store.catalog()}

    @app.post("/api/network")
    async def network_summary(req: NetworkRequest) -> dict[str, Any]:
        return await computations.run("input_size", network.summary, store, req.model, tuple(req.input_size))

    @app.post("/api/network/layer")
    async def network_layer(req: LayerRequest) -> dict[str, Any]:
        return await computations.run("input_size", network.layer_view, store, req, uploads, mac_budget)

    @app.post("/api/network/figure/{kind}", response_class=Response)
    async def network_figure(kind: str, req: LayerRequest) -> Any:
        if kind not in ("feature_maps", "kernels", "receptive_field", "erf"):
            raise network.NetworkError("kind", f"`kind` (={kind!r}) must be feature_maps, kernels, "
                                               "receptive_field or erf")
        png = await computations.run("input_size", network.figure_png, store, req, uploads, kind, mac_budget)
        return Response(png, media_type="image/png")

    @app.get("/api/training")
    def training_curves() -> dict[str, Any]:
        out = run.curves() if run.logdir is not None else {"logdir": None, "series": {}}
        out["checkpoint"] = run.checkpoint is not None
        return out

    @app.get("/api/training/evaluation")
    async def training_evaluation() -> dict[str, Any]:
        return await computations.run("checkpoint", run.evaluation)

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)  # outermost: before anything reads the body
    return app
