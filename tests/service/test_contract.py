"""The OpenAPI document describes what the server does: every $ref resolves, every status an
operation can return is listed with the real error schema, the configured limits are the
documented ones, and Schemathesis finds no server error, undocumented status or response that
breaks its schema over a live server (at least 1,000 generated cases)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ganserve.service.auth import new_key
from tests.service.conftest import ServerProcess, make_client, wait_ready

REPO = Path(__file__).resolve().parents[2]
MIN_CASES = 1000
# small limits keep each generated request cheap; the document states them
LIMITS = {"GANSERVE_MAX_IMAGES": "16", "GANSERVE_MAX_SCALE": "4",
          "GANSERVE_MAX_INTERPOLATION_STEPS": "16", "GANSERVE_MAX_GRID_CELLS": "16"}
KEY, KEY_ENTRY = new_key("contract")
SERVED = {"sample": "baby-stylegan", "conditional": "baby-cgan", "interpolate": "baby-cgan",
          "style-mix": "baby-stylegan"}


@pytest.fixture(scope="module")
def live(inverted_store, tmp_path_factory):
    """On a copy of the store (with encoders and directions, so projection and edits are
    reached): the fuzzer also sets defaults and deletes versions."""
    root = tmp_path_factory.mktemp("contract")
    shutil.copytree(inverted_store, root / "models")
    keys = root / "keys.json"            # keys on: the fuzzer checks the auth rules too
    keys.write_text(json.dumps({"keys": [KEY_ENTRY]}))
    srv = ServerProcess(root / "models", workers=1, GANSERVE_LOG_LEVEL="ERROR",
                        GANSERVE_API_KEYS_FILE=str(keys), **LIMITS)
    srv.wait_ready()
    yield srv
    srv.stop(signal.SIGTERM)


def test_schemathesis_finds_nothing_over_1000_cases(live, tmp_path):
    """Every check Schemathesis has (server errors, undocumented statuses, response schemas,
    content types, headers, negative data accepted, positive data refused, ...) over the
    live server's own document; refusals are allowed only by schemathesis_hooks' list."""
    report = tmp_path / "report.json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
           "PYTHONPATH": str(REPO), "GANSERVE_TEST_MODELS": json.dumps(SERVED)}
    cmd = [str(Path(sys.executable).with_name("schemathesis")), "run",
           f"{live.url}/openapi.json", "--checks", "all", "--max-examples", "120",
           "--seed", "20261130", "--generation-database", "none", "--no-color",
           "--workers", "1", "--request-timeout", "30", "--report", "json",
           "--header", f"Authorization: Bearer {KEY}",
           # a job's event stream stays open while the job lives (the test server has no job
           # worker, so forever): tests/jobs covers it, the fuzzer would only wait it out
           "--exclude-path-regex", "/events$",
           "--report-json-path", str(report)]
    # cwd: Schemathesis keeps a cache folder in the working directory
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    result = json.loads(report.read_text())
    assert result["test_cases"]["generated"] >= MIN_CASES, result["test_cases"]
    assert result["operations"]["total"] == 37          # the document's operations
    assert result["operations"]["tested"] == 36         # all but the job event stream
    assert not result["failures"] and not result["errors"], result


def test_allow_list_refuses_what_is_not_on_it():
    from tests.service.schemathesis_hooks import allowed_rejection

    assert allowed_rejection('{"error": {"code": "invalid_input", "message": '
                             '"styles: style layer 9 out of range 0..7"}}')
    assert allowed_rejection('{"error": {"code": "invalid_input", "message": '
                             '"scale: Input should be a valid integer"}}') is None
    assert allowed_rejection("Internal Server Error") is None


# ---------------------------------------------------------------- the document itself

def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_every_ref_in_the_document_resolves(client):
    doc = client.get("/openapi.json").json()
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


def test_errors_are_documented_with_the_error_schema(client):
    doc = client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        # the Open Inference Protocol's paths: its own error shape, and 400 for a bad body
        protocol = path == "/v2" or path.startswith("/v2/")
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"500", "503"} <= codes, (method, path)
            if op.get("parameters") or op.get("requestBody"):
                assert ("400" if protocol else "422") in codes, (method, path)
            if method == "post":      # any body is read under the size and time limits
                assert {"408", "413"} <= codes, path
            if op.get("requestBody"):
                assert "415" in codes, path
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    shape = "/ProtocolErrorResponse" if protocol else "/ErrorResponse"
                    assert ref.endswith(shape), (method, path, code)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_documented_limits_are_the_configured_ones(store):
    with make_client(store, max_scale=5, max_images=7, max_interpolation_steps=9) as c:
        wait_ready(c)
        doc = c.get("/openapi.json").json()
        s = doc["components"]["schemas"]
        assert s["SampleRequest"]["properties"]["scale"]["maximum"] == 5
        n = s["SampleRequest"]["properties"]["n"]["anyOf"]
        assert next(b for b in n if b.get("type") == "integer")["maximum"] == 7
        seeds = s["SampleRequest"]["properties"]["seeds"]["anyOf"]
        assert next(b for b in seeds if b.get("type") == "array")["maxItems"] == 7
        assert s["InterpolateRequest"]["properties"]["steps"]["maximum"] == 9
        png = doc["paths"]["/v1/models/{name}/sample.png"]["get"]["parameters"]
        assert next(p for p in png if p["name"] == "scale")["schema"]["maximum"] == 5
        assert c.post("/v1/models/baby-dcgan/sample", json={"scale": 6}).status_code == 422
        assert c.post("/v1/models/baby-dcgan/sample", json={"scale": 5}).status_code == 200


@pytest.fixture(scope="module")
def client(inverted_store):
    """The baby models with encoders and directions: every operation has a model for it."""
    with make_client(inverted_store) as c:
        wait_ready(c)
        yield c


def test_path_examples_are_loaded_models_that_support_the_operation(client):
    doc = client.get("/openapi.json").json()
    want = {"/v1/models/{name}/conditional": "baby-cgan",
            "/v1/models/{name}/style-mix": "baby-stylegan",
            "/v1/models/{name}/project": "baby-cgan", "/v1/models/{name}/edit": "baby-cgan"}
    for path, item in doc["paths"].items():
        for op in item.values():
            for p in op.get("parameters", []):
                if p["in"] == "path" and p["name"] == "name":
                    (name,) = p["examples"]
                    assert client.get(f"/v1/models/{name}").status_code == 200, path
                    if path in want:
                        assert name == want[path], path


def test_without_an_encoder_anywhere_the_example_model_says_how_to_add_one(store):
    with make_client(store) as c:
        wait_ready(c)
        doc = c.get("/openapi.json").json()
        param = doc["paths"]["/v1/models/{name}/project"]["post"]["parameters"][0]
        (name,) = param["examples"]
        r = c.post(f"/v1/models/{name}/project", json={"image": "AAAA"})
        assert r.status_code == 409 and "ganserve train-encoder" in r.json()["error"]["message"]


def test_every_documented_example_body_runs_as_is(client):
    """The examples the docs page fills in, against the served models (class names aside:
    the test store's cGAN names its classes class0..class9)."""
    doc = client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        op = item.get("post")
        if not op or "application/json" not in op.get("requestBody", {}).get("content", {}):
            continue                    # (the dataset upload is multipart: test_datasets)
        job = path.startswith("/v1/jobs")       # a submission: accepted (202), no {name}
        url = path
        for param in op.get("parameters", []):  # {name}, {version}: their examples
            if param["in"] == "path":
                value = next(iter(param["examples"].values()))["value"]
                url = url.replace("{" + param["name"] + "}", value)
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for example in doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["examples"]:
            body = _with_test_classes(example)
            r = client.post(url, json=body)
            assert r.status_code == (202 if job else 200), (path, body, r.text)


def _with_test_classes(example: dict) -> dict:
    names = {"Sneaker": "class7", "Sandal": "class5"}
    out = {}
    for k, v in example.items():
        if isinstance(v, dict):
            v = _with_test_classes(v)
        out[k] = names.get(v, v) if isinstance(v, str) else v
    return out


def test_model_ready_and_health_ready_use_the_protocol_error_shape(client):
    r = client.get("/v2/models/nope/ready")
    assert r.status_code == 404 and r.json() == {"error": r.json()["error"]}
    assert "no model named 'nope'" in r.json()["error"]
    client.app.state.draining = True
    try:
        r = client.get("/v2/health/ready")
        assert r.status_code == 503 and r.json()["error"].startswith("draining")
        assert r.headers["retry-after"] == "1"
        r = client.post("/v1/models/baby-dcgan/sample", json={})
        assert r.status_code == 503 and r.headers["connection"] == "close"
        assert client.get("/v2/health/live").status_code == 200
    finally:
        client.app.state.draining = False
    assert client.get("/v2/health/ready").status_code == httpx.codes.OK
