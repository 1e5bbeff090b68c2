"""The explorer's whole API fuzzed from its OpenAPI schema (schemathesis, in-process through ASGI): no answer is a
server error, and every refusal is a JSON body naming the field; plus random well-formed playground configurations,
whose answers are the engine's numbers or a refusal naming a field."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from convlab.explorer import create_app  # noqa: E402

EXAMPLES_PER_OPERATION = 30  # per operation and mode (valid and invalid requests): 500+ requests in all
FIELDS = {"input", "weight", "bias", "kernel_size", "stride", "padding", "padding_mode", "dilation", "groups",
          "output_padding", "ceil_mode", "count_include_pad", "flip_kernel", "op", "ndim", "position", "model",
          "input_size", "layer", "image", "max_channels", "erf", "feature_maps", "file", "index", "size", "kind"}


def _check_refusal(status: int, body: object, where: str) -> None:
    """A 4xx answer: JSON ``{"detail": [{"loc": [...], "msg": ...}]}`` (422, 413) or ``{"detail": text}``."""
    assert isinstance(body, dict) and "detail" in body, (where, status, body)
    detail = body["detail"]
    if status in (413, 422):
        assert isinstance(detail, list) and detail, (where, body)
        for d in detail:
            assert isinstance(d["loc"], list) and isinstance(d["msg"], str) and d["msg"], (where, d)
    else:
        assert isinstance(detail, (str, list)), (where, body)


def test_schema_fuzzing_finds_no_server_error():
    app = create_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts = {"requests": 0, "ok": 0, "refused": 0}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /api/conv", "POST /api/conv/explain", "POST /api/network",
                                              "POST /api/network/layer", "POST /api/images",
                                              "POST /api/network/figure/{kind}", "GET /api/dataset/{index}/grid"}
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
            @given(case=operation.as_strategy(mode))
            def one(case):
                _label = case.operation.label
                response = case.call()
                counts["requests"] += 1
                assert response.status_code < 500, (_label, response.status_code, response.text[:500])
                if response.status_code >= 400:
                    counts["refused"] += 1
                    _check_refusal(response.status_code, response.json(), _label)
                else:
                    counts["ok"] += 1

            try:
                one()
            except Unsatisfiable:  # an operation without parameters has no invalid request
                assert mode == schemathesis.GenerationMode.NEGATIVE and not operation.path_parameters
    assert counts["requests"] >= 500, counts
    assert counts["ok"] > 0 and counts["refused"] > 0, counts


def test_schema_examples_are_answered():
    """The requests the schema shows (``/docs``) are computed: 200 for the playground's and the network's."""
    app = create_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    answers: dict[str, set[int]] = {}
    for operation in (result.ok() for result in schema.get_all_operations()):
        strategies = schema.get_strategies_from_examples(operation)
        if not strategies:
            continue

        @settings(max_examples=3 * len(strategies), deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=st.one_of(strategies))
        def one(case):
            response = case.call()
            assert response.status_code < 500, (case.operation.label, response.text[:500])
            answers.setdefault(case.operation.label, set()).add(response.status_code)

        one()
    for label in ("POST /api/conv", "POST /api/conv/explain", "POST /api/conv/animation.svg", "POST /api/network",
                  "POST /api/network/layer"):
        assert answers[label] == {200}, (label, answers)


# --------------------------------------------------------------------------- well-formed random configurations


@st.composite
def configurations(draw):
    """A playground request of consistent shapes with random hyperparameters (which may break a rule)."""
    nd = draw(st.sampled_from([1, 2]))
    op = draw(st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool"]))
    groups = draw(st.sampled_from([1, 1, 2])) if op.startswith("conv") else 1
    c_in = groups * draw(st.integers(1, 2))
    size = [draw(st.integers(1, 7)) for _ in range(nd)]
    per_dim = st.integers(1, 3) | st.lists(st.integers(1, 3), min_size=nd, max_size=nd)
    body = {"op": op, "ndim": nd, "input": np.arange(c_in * np.prod(size), dtype=float).reshape(c_in, *size).tolist(),
            "stride": draw(per_dim), "dilation": draw(per_dim),
            "padding": draw(st.integers(0, 2) | st.sampled_from(["valid", "same", "same_tf", "full", "causal"])
                            | st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=nd, max_size=nd))}
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    if op.startswith("conv"):
        c_out = groups * draw(st.integers(1, 2))
        shape = (c_out, c_in // groups, *k) if op == "conv" else (c_in, c_out // groups, *k)
        body["weight"] = (np.arange(np.prod(shape), dtype=float).reshape(shape) % 5 - 2).tolist()
        body["groups"] = groups
        if draw(st.booleans()):
            body["bias"] = [0.5] * c_out
        if op == "conv":
            body["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
            body["flip_kernel"] = draw(st.booleans())
        else:
            body["output_padding"] = draw(st.integers(0, 2))
    else:
        body["kernel_size"] = k
        body["ceil_mode"] = draw(st.booleans())
        if op == "avg_pool":
            body.pop("dilation")
            body["count_include_pad"] = draw(st.booleans())
        if draw(st.booleans()):
            body.pop("stride")
    return body


def test_random_configurations_are_computed_or_refused_naming_a_field():
    from fastapi.testclient import TestClient

    from convlab.explorer import playground
    from convlab.explorer.schemas import ConvRequest

    client = TestClient(create_app())
    seen = {200: 0, 422: 0}

    @settings(max_examples=80, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=configurations(), pick=st.integers(0, 10_000))
    def one(body, pick):
        r = client.post("/api/conv", json=body)
        assert r.status_code in (200, 422), (body, r.status_code, r.text[:500])
        seen[r.status_code] += 1
        if r.status_code == 422:
            detail = r.json()["detail"]
            assert any(str(d["loc"][-1]) in FIELDS for d in detail), (body, detail)
            return
        req = ConvRequest(**body)
        x, w, b = playground._arguments(req)
        expected = playground.engine_output(req, x, w, b)  # convlab.functional, called directly
        np.testing.assert_array_equal(np.array(r.json()["output"]), expected)
        position = [int(v) for v in np.unravel_index(pick % expected.size, expected.shape)]
        e = client.post("/api/conv/explain", json={**body, "position": position})
        assert e.status_code == 200, (body, position, e.text[:500])
        assert e.json()["result"] == pytest.approx(float(expected[tuple(position)]))

    one()
    assert seen[200] > 10 and seen[422] > 0, seen
