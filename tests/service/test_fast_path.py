"""The hot routes' fast path answers exactly as the FastAPI routes do, errors included.

Every request below goes to two apps over the same store: the service as built, and the same
app without its ``FastPath`` layer. Status, headers and body must agree (the request id, a
fresh value per request, aside); a spy counts which requests the fast path served itself, so
that the comparison cannot pass by both going through FastAPI.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from ganserve.service.api import fast_path
from ganserve.service.api.fast_path import FastPath
from ganserve.service.auth import new_key
from ganserve.service.errors import ServiceError
from tests.service.conftest import make_client, wait_ready

DC, CG, SG = "baby-dcgan", "baby-cgan", "baby-stylegan"
KEY, KEY_ENTRY = new_key("fast-path", read_only=True)
JSON = {"Content-Type": "application/json"}
SEED = {"inputs": [{"name": "seed", "datatype": "INT64", "shape": [2], "data": [3, 4]}]}

# (method path, body, headers, served by the fast path itself)
CASES = [
    (f"/v1/models/{DC}/sample", {"seeds": [1]}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": [1, 2, 3, 4], "cols": 2, "scale": 2}, {}, True),
    (f"/v1/models/{DC}/sample", {"n": 2, "seeds": [5, 6], "format": "json",
                                 "return_latents": True}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": [7]}, {"Accept": "application/json"}, True),
    (f"/v1/models/{CG}/sample", {"seeds": [1, 2], "class": "class1"}, {}, True),
    (f"/v1/models/{CG}/conditional", {"seeds": [1], "class": 3,
                                      "truncation_psi": 0.7}, {}, True),
    (f"/v1/models/{SG}/sample", {"seeds": [9], "truncation_psi": 0.5}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": "0-2"}, {}, True),
    # errors the handler raises: answered by the app's handler for them, on the fast path
    ("/v1/models/nope/sample", {"seeds": [1]}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": [1], "version": "99"}, {}, True),
    (f"/v1/models/{CG}/sample", {"seeds": [1], "class": "clas3"}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": [1], "class": 1}, {}, True),
    (f"/v1/models/{DC}/conditional", {"seeds": [1], "class": 1}, {}, True),
    (f"/v1/models/{DC}/sample", {"seeds": "0-99999"}, {}, True),
    # FastAPI's own validation errors: handed on to the route
    (f"/v1/models/{DC}/sample", {"seeds": [1], "bogus": 1}, {}, False),
    (f"/v1/models/{DC}/sample", {"seeds": [-1]}, {}, False),
    (f"/v1/models/{DC}/sample", [1, 2], {}, False),
    (f"/v1/models/{DC}/sample", b'{"seeds": [1', {}, False),
    (f"/v1/models/{DC}/sample", b"", {}, False),
    (f"/v1/models/{DC}/sample", b"[" * 5000 + b"]" * 5000, {}, False),
    (f"/v1/models/{DC}/sample", b"seeds=1", {"Content-Type": "application/x-www-form-urlencoded"},
     False),
    ("/v1/models/" + "x" * 129 + "/sample", {"seeds": [1]}, {}, False),
    # the inference protocol: its own error shape
    (f"/v2/models/{DC}/infer", SEED, {}, True),
    (f"/v2/models/{SG}/versions/1/infer", SEED, {}, True),
    (f"/v2/models/{DC}/infer", {"inputs": [{"name": "seed", "datatype": "FP32",
                                            "shape": [1], "data": [1.5]}]}, {}, True),
    (f"/v2/models/{DC}/versions/7/infer", SEED, {}, True),
    (f"/v2/models/{DC}/infer", b"{", {}, True),
    ("/v2/models/" + "x" * 129 + "/infer", SEED, {}, False),
]


def _normalised(r) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "content-length")}
    body = r.content
    if r.headers.get("content-type", "").startswith("application/json"):
        data = r.json()
        if isinstance(data.get("error"), dict):
            data["error"].pop("request_id", None)
        body = json.dumps(data, sort_keys=True).encode()
    return r.status_code, headers, body


@pytest.fixture(scope="module")
def served(store):
    calls: list[str] = []
    real = FastPath._direct

    async def spy(request, hot, params, body):
        try:
            response = await real(request, hot, params, body)
        except ServiceError:
            calls.append(request.url.path)
            raise
        if response is not None:
            calls.append(request.url.path)
        return response

    fast_path.FastPath._direct = staticmethod(spy)
    try:
        with make_client(store) as fast, make_client(store) as plain:
            plain.app.user_middleware = [m for m in plain.app.user_middleware
                                         if m.cls is not FastPath]
            plain.app.middleware_stack = plain.app.build_middleware_stack()
            wait_ready(fast)
            wait_ready(plain)
            yield fast, plain, calls
    finally:
        fast_path.FastPath._direct = staticmethod(real)


def _send(client, path, body, headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={**JSON, **headers})


@pytest.mark.parametrize("path, body, headers, fast", CASES,
                         ids=[f"{i}:{c[0][-24:]}" for i, c in enumerate(CASES)])
def test_fast_path_answers_as_the_route_does(served, path, body, headers, fast):
    fast_client, plain, calls = served
    before = len(calls)
    a = _send(fast_client, path, body, headers)
    b = _send(plain, path, body, headers)
    assert _normalised(a) == _normalised(b), (a.text[:300], b.text[:300])
    assert (len(calls) > before) == fast, "served by " + ("FastAPI" if fast else "fast path")
    assert a.headers["x-request-id"]


def test_fast_path_png_is_the_documented_image(served):
    fast_client, _, _ = served
    r = _send(fast_client, f"/v1/models/{DC}/sample", {"seeds": [11], "format": "json"}, {})
    png = base64.b64decode(r.json()["images"][0]["png"])
    direct = _send(fast_client, f"/v1/models/{DC}/sample", {"seeds": [11]}, {})
    assert direct.status_code == 200 and direct.content == png


def test_fast_path_checks_the_key_first(store, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [KEY_ENTRY]}))
    with make_client(store, api_keys_file=keys, inference_needs_key=True) as c:
        wait_ready(c)
        before = _auth_failures(c)
        r = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1]})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1], "bogus": 1})
        assert r.status_code == 401                     # the key before the body's fields
        r = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1]},
                   headers={"Authorization": "Bearer nope"})
        assert r.status_code == 403
        r = c.post(f"/v2/models/{DC}/infer", json=SEED)
        assert r.status_code == 401 and set(r.json()) == {"error"}
        # the protocol route reads its own body after the key check: a chunked body past the
        # size limit from a client without a key is a 401, not a 413 (nor read at all)
        chunks = iter([b"x" * 700_000, b"x" * 700_000])
        r = c.post(f"/v2/models/{DC}/infer", content=chunks,
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 401, r.text
        r = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1]},
                   headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert _auth_failures(c) - before == 5                 # each counted once


def _auth_failures(client) -> float:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return sum(float(v) for v in re.findall(r"^ganserve_auth_failures_total\{.*\} ([\d.e+]+)$",
                                            r.text, re.M))


def test_fast_path_metrics_name_the_route(served):
    fast_client, _, _ = served
    _send(fast_client, f"/v1/models/{DC}/sample", {"seeds": [1]}, {})
    text = fast_client.get("/metrics").text
    line = [x for x in text.splitlines() if x.startswith("ganserve_requests_total{")
            and 'endpoint="/v1/models/{name}/sample"' in x and f'model="{DC}"' in x
            and 'status="200"' in x]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 1, text[:2000]


def test_fast_path_binary_tensors_round_trip(served):
    fast_client, plain, calls = served
    header = json.dumps({"inputs": [{"name": "seed", "datatype": "INT64", "shape": [1],
                                     "parameters": {"binary_data_size": 8}}],
                         "outputs": [{"name": "image", "parameters": {"binary_data": True}}]}
                        ).encode()
    body = header + np.array([5], np.int64).tobytes()
    headers = {"Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(header))}
    before = len(calls)
    a = fast_client.post(f"/v2/models/{DC}/infer", content=body, headers=headers)
    b = plain.post(f"/v2/models/{DC}/infer", content=body, headers=headers)
    assert a.status_code == 200 and len(calls) == before + 1
    assert _normalised(a) == _normalised(b)
