"""The Open Inference Protocol, driven by the real clients teams use with Triton and KServe
(``tritonclient.http``): metadata, Triton's model configuration, infer with JSON and binary
tensors and compressed bodies, the ``image`` output equal to ``/sample``'s PNG pixels for the
same request, and bad requests answered in the protocol's error shape."""

from __future__ import annotations

import gzip
import io
import json
import zlib

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from ganserve.service.oip import tensors
from tests.service.conftest import REPO, ServerProcess, copy_store

MODELS = ("fashion-dcgan", "fashion-cgan", "fashion-stylegan")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(copy_store(REPO / "models", tmp_path_factory.mktemp("oip") / "models"))
    srv.wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tc(server):
    c = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield c
    c.close()


def _png_pixels(content: bytes) -> np.ndarray:
    a = np.array(Image.open(io.BytesIO(content)))
    return a[..., None] if a.ndim == 2 else a


def _sample(server, model: str, seed: int, psi: float, cls: str | None = None) -> np.ndarray:
    body = {"seeds": [seed], "truncation_psi": psi} | ({"class": cls} if cls else {})
    r = httpx.post(f"{server.url}/v1/models/{model}/sample", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return _png_pixels(r.content)


def _input(name: str, array: np.ndarray, datatype: str, binary: bool = True):
    t = triton.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def test_protocol_metadata_and_config_through_tritonclient(tc):
    assert tc.is_server_live() and tc.is_server_ready()
    meta = tc.get_server_metadata()
    assert meta["name"] == "ganserve" and "binary_tensor_data" in meta["extensions"]
    m = tc.get_model_metadata("fashion-stylegan")
    assert m["platform"] == "ganserve" and m["versions"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in m["inputs"]}
    outputs = {t["name"]: (t["datatype"], t["shape"]) for t in m["outputs"]}
    assert inputs["seed"] == ("INT64", [-1]) and inputs["w"][1][0] == -1
    assert outputs["image"][0] == "UINT8" and outputs["image"][1][0] == -1
    assert outputs["raw"][1][1:] == [1, 32, 32] and "class" not in inputs
    assert {t["name"] for t in tc.get_model_metadata("fashion-cgan")["inputs"]} >= {"class"}
    version = m["versions"][-1]
    assert tc.get_model_metadata("fashion-stylegan", version)["versions"] == [version]
    config = tc.get_model_config("fashion-dcgan")
    assert config["max_batch_size"] == 256 and config["input"][0]["name"] == "seed"
    assert tc.is_model_ready("fashion-dcgan") and tc.is_model_ready("fashion-dcgan", "1")
    assert not tc.is_model_ready("fashion-dcgan", "99")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("model", MODELS)
def test_protocol_image_is_the_sample_pngs_pixels(server, tc, model, binary):
    seeds, psi = np.array([3, 11], np.int64), 0.7
    r = tc.infer(model, [_input("seed", seeds, "INT64", binary),
                         _input("truncation_psi", np.array([psi], np.float32), "FP32", binary)],
                 outputs=[triton.InferRequestedOutput("image", binary_data=binary)],
                 request_id="r-1")
    images = r.as_numpy("image")
    assert r.get_response()["id"] == "r-1" and images.dtype == np.uint8
    for seed, image in zip(seeds, images):
        assert np.array_equal(image, _sample(server, model, int(seed), psi)), (model, seed)


def test_protocol_conditional_classes_by_index_and_by_name(server, tc):
    seeds = np.array([5, 6], np.int64)
    by_index = tc.infer("fashion-cgan", [_input("seed", seeds, "INT64"),
                                         _input("class", np.array([7, 7], np.int64), "INT64")])
    names = np.array([b"Sneaker", b"Sneaker"], dtype=np.object_)
    by_name = tc.infer("fashion-cgan", [_input("seed", seeds, "INT64"),
                                        _input("class", names, "BYTES")])
    got = by_index.as_numpy("image")
    assert np.array_equal(got, by_name.as_numpy("image"))
    assert np.array_equal(got[0], _sample(server, "fashion-cgan", 5, 1.0, "Sneaker"))


def test_protocol_latent_outputs_feed_back_as_inputs(tc):
    """StyleGAN: ask for raw, z and w; the w given back (psi 1) makes the same image, and the
    z given back with the same psi too."""
    outs = [triton.InferRequestedOutput(n) for n in ("image", "raw", "z", "w")]
    first = tc.infer("fashion-stylegan", [_input("seed", np.array([9], np.int64), "INT64")],
                     outputs=outs, parameters={"truncation_psi": 0.5})
    raw, z, w = (first.as_numpy(n) for n in ("raw", "z", "w"))
    assert raw.shape == (1, 1, 32, 32) and raw.dtype == np.float32
    again_w = tc.infer("fashion-stylegan", [_input("w", w, "FP32")])
    again_z = tc.infer("fashion-stylegan", [_input("z", z, "FP32")],
                       parameters={"truncation_psi": 0.5})
    assert np.array_equal(again_w.as_numpy("image"), first.as_numpy("image"))
    assert np.array_equal(again_z.as_numpy("image"), first.as_numpy("image"))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_protocol_compressed_requests_and_responses(tc, algorithm):
    seeds = np.arange(4, dtype=np.int64)
    plain = tc.infer("fashion-dcgan", [_input("seed", seeds, "INT64")])
    packed = tc.infer("fashion-dcgan", [_input("seed", seeds, "INT64")],
                      request_compression_algorithm=algorithm,
                      response_compression_algorithm=algorithm)
    assert np.array_equal(plain.as_numpy("image"), packed.as_numpy("image"))


def _refused(call, status: str, *words: str) -> None:
    with pytest.raises(InferenceServerException) as e:
        call()
    assert e.value.status() == status, e.value
    assert all(w in e.value.message() for w in words), e.value.message()


def test_protocol_bad_requests_are_refused_in_the_protocol_shape(tc):
    seed = _input("seed", np.array([1], np.int64), "INT64")
    _refused(lambda: tc.infer("fashion-dcgn", [seed]), "404", "did you mean 'fashion-dcgan'")
    _refused(lambda: tc.infer("fashion-dcgan", [seed], model_version="7"), "404", "version")
    _refused(lambda: tc.infer("fashion-dcgan", [_input("seed", np.array([1.0], np.float32),
                                                       "FP32")]), "400", "datatype FP32")
    _refused(lambda: tc.infer("fashion-dcgan", [_input("z", np.zeros((1, 3), np.float32),
                                                       "FP32")]), "400", "shape [1, 3]")
    _refused(lambda: tc.infer("fashion-cgan", [seed, _input("class", np.array([10], np.int64),
                                                            "INT64")]),
             "400", "out of range 0..9")
    _refused(lambda: tc.infer("fashion-dcgan", [seed], parameters={"temperature": 2}),
             "400", "'temperature' is not supported")
    _refused(lambda: tc.infer("fashion-dcgan", [seed],
                              outputs=[triton.InferRequestedOutput("w")]),
             "400", "not an output", "image, raw, z")
    _refused(lambda: tc.infer("fashion-dcgan", [seed, _input("w", np.zeros((1, 128),
                                                                           np.float32),
                                                             "FP32")]),
             "400", "exactly one of seed, z")


def test_protocol_malformed_bodies_get_the_protocol_error(server):
    url = f"{server.url}/v2/models/fashion-dcgan/infer"
    head = json.dumps({"inputs": [{"name": "seed", "shape": [2], "datatype": "INT64",
                                   "parameters": {"binary_data_size": 16}}]}).encode()
    cases = [
        (b"{not json", {}, 400, "cannot be parsed"),
        (head + b"\0" * 8, {"Inference-Header-Content-Length": str(len(head))}, 400,
         "runs past"),
        (head + b"\0" * 24, {"Inference-Header-Content-Length": str(len(head))}, 400,
         "belong to no input"),
        (head, {"Inference-Header-Content-Length": "99999"}, 400, "not a length"),
        (gzip.compress(b"{" * 10), {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (zlib.compress(b" " * (4 << 20)), {"Content-Encoding": "deflate"}, 413, "inflates"),
        (json.dumps({"inputs": [{"name": "seed", "shape": [3], "datatype": "INT64",
                                 "data": [1, 2]}]}).encode(), {}, 400, "holds 3 elements"),
        (json.dumps({"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64",
                                 "data": [1]}], "extra": 1}).encode(), {}, 400, "extra"),
    ]
    for body, headers, status, words in cases:
        r = httpx.post(url, content=body, headers=headers, timeout=30)
        assert r.status_code == status and words in r.json()["error"], (words, r.text)
        assert list(r.json()) == ["error"] and r.headers["x-request-id"]


# ---------------------------------------------------------------------------------- gRPC
@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory):
    """Two API workers sharing one gRPC port (SO_REUSEPORT), beside HTTP."""
    from tests.service.conftest import free_port

    port = free_port()
    srv = ServerProcess(copy_store(REPO / "models", tmp_path_factory.mktemp("grpc") / "models"),
                        workers=2, GANSERVE_GRPC_PORT=str(port))
    srv.grpc = f"127.0.0.1:{port}"
    srv.wait_ready()
    yield srv
    srv.stop()


def _grpc_input(name: str, array: np.ndarray, datatype: str):
    import tritonclient.grpc as tg

    t = tg.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array)
    return t


def test_grpc_metadata_health_and_infer_match_http(grpc_server):
    import tritonclient.grpc as tg

    c = tg.InferenceServerClient(grpc_server.grpc)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("fashion-cgan")
    assert not c.is_model_ready("nope")
    meta = c.get_server_metadata(as_json=True)
    assert meta["name"] == "ganserve" and "binary_tensor_data" in meta["extensions"]
    m = c.get_model_metadata("fashion-stylegan", as_json=True)
    assert {t["name"] for t in m["outputs"]} == {"image", "raw", "z", "w"}
    seeds = np.array([3, 11], np.int64)
    r = c.infer("fashion-stylegan", [_grpc_input("seed", seeds, "INT64")],
                parameters={"truncation_psi": 0.7}, request_id="g-1")
    assert r.get_response().id == "g-1"
    for seed, image in zip(seeds, r.as_numpy("image")):
        assert np.array_equal(image, _sample(grpc_server, "fashion-stylegan", int(seed), 0.7))
    names = np.array([b"Bag"], dtype=np.object_)
    r = c.infer("fashion-cgan", [_grpc_input("seed", np.array([4], np.int64), "INT64"),
                                 _grpc_input("class", names, "BYTES")])
    assert np.array_equal(r.as_numpy("image")[0], _sample(grpc_server, "fashion-cgan", 4, 1.0,
                                                          "Bag"))
    c.close()


def test_grpc_errors_are_status_codes_with_the_http_message(grpc_server):
    import tritonclient.grpc as tg

    c = tg.InferenceServerClient(grpc_server.grpc)
    seed = _grpc_input("seed", np.array([1], np.int64), "INT64")
    cases = [("fashion-dcgn", [seed], "NOT_FOUND", "did you mean 'fashion-dcgan'"),
             ("fashion-dcgan", [_grpc_input("seed", np.array([1.0], np.float32), "FP32")],
              "INVALID_ARGUMENT", "datatype FP32"),
             ("fashion-cgan", [seed, _grpc_input("class", np.array([10], np.int64), "INT64")],
              "INVALID_ARGUMENT", "out of range 0..9")]
    for model, inputs, code, words in cases:
        with pytest.raises(InferenceServerException) as e:
            c.infer(model, inputs)
        assert e.value.status() == f"StatusCode.{code}" and words in e.value.message(), e.value
    c.close()
    # labelled as the HTTP side labels the same refusal: 400, not the REST API's 422
    metrics = httpx.get(f"{grpc_server.url}/metrics", timeout=30).text
    assert ('ganserve_requests_total{endpoint="grpc:ModelInfer",model="fashion-dcgan",'
            'status="400"}') in metrics


def test_grpc_refuses_what_only_http_carries(grpc_server):
    """The binary tensor extension's parameters, and contents beside raw_input_contents."""
    import grpc
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pb_grpc

    def request(**fields) -> pb.ModelInferRequest:
        r = pb.ModelInferRequest(model_name="fashion-dcgan", **fields)
        r.inputs.add(name="seed", datatype="INT64", shape=[1])
        r.raw_input_contents.append(np.array([1], np.int64).tobytes())
        return r

    sized = request()
    sized.inputs[0].parameters["binary_data_size"].int64_param = 8
    both = request()
    both.inputs[0].contents.int64_contents.append(1)
    with grpc.insecure_channel(grpc_server.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ModelInfer(request()).raw_output_contents
        for bad, words in ((sized, "binary tensor extension"), (both, "send one")):
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(bad)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
            assert words in e.value.details(), e.value.details()


def test_grpc_finishes_the_rpc_in_flight_on_sigterm(tmp_path):
    """A stop signal: no new RPCs, but the one in flight (a long batch) gets its images
    and the server exits by the signal it drained on, as on the HTTP side."""
    import signal
    import threading
    import time

    import tritonclient.grpc as tg

    from tests.service.conftest import free_port

    port = free_port()
    srv = ServerProcess(copy_store(REPO / "models", tmp_path / "models"),
                        GANSERVE_GRPC_PORT=str(port), GANSERVE_MAX_IMAGES="4096",
                        GANSERVE_MAX_QUEUE_ROWS="4096")
    try:
        srv.wait_ready()
        c = tg.InferenceServerClient(f"127.0.0.1:{port}")
        done, results = threading.Event(), []
        c.async_infer("fashion-stylegan", [_grpc_input("seed", np.arange(4096), "INT64")],
                      callback=lambda result, error: (results.append((result, error)),
                                                       done.set()))
        time.sleep(0.3)                         # the batch is running
        assert not done.is_set(), f"the batch ended before the signal: {results}"
        srv.proc.send_signal(signal.SIGTERM)
        assert done.wait(60) and results[0][1] is None, results
        assert results[0][0].as_numpy("image").shape == (4096, 32, 32, 1)
        assert srv.proc.wait(60) in (0, -signal.SIGTERM), srv.output()[-2000:]
        c.close()
    finally:
        srv.stop(signal.SIGKILL)


def test_readme_protocol_example_runs(grpc_server, tmp_path):
    import re
    import subprocess
    import sys

    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- oip-examples -->")[1].split("<!-- /oip-examples -->")[0]
    script = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    script = script.replace("127.0.0.1:8000", grpc_server.url.removeprefix("http://"))
    script = script.replace("127.0.0.1:8001", grpc_server.grpc)
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "(4, 32, 32, 1)" in r.stdout, r.stdout + r.stderr[-2000:]


def test_grpc_stubs_are_the_protos_compiled():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "grpc_stubs.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_protocol_keeps_the_api_key_rule_over_http_and_grpc(tmp_path):
    """GANSERVE_INFERENCE_NEEDS_KEY: a read-only key opens infer and metadata, over HTTP
    (Authorization header) and gRPC (authorization metadata); none is a 401 / UNAUTHENTICATED."""
    import tritonclient.grpc as tg

    from ganserve.service.auth import new_key
    from tests.service.conftest import free_port

    key, entry = new_key("dashboard", read_only=True)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [entry]}))
    port = free_port()
    srv = ServerProcess(copy_store(REPO / "models", tmp_path / "models"),
                        GANSERVE_GRPC_PORT=str(port), GANSERVE_API_KEYS_FILE=str(keys),
                        GANSERVE_INFERENCE_NEEDS_KEY="true")
    try:
        srv.wait_ready()
        body = {"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64", "data": [1]}]}
        url = f"{srv.url}/v2/models/fashion-dcgan/infer"
        r = httpx.post(url, json=body, timeout=30)
        assert r.status_code == 401 and "API key" in r.json()["error"], r.text
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 200, r.text
        c = tg.InferenceServerClient(f"127.0.0.1:{port}")
        seed = _grpc_input("seed", np.array([1], np.int64), "INT64")
        with pytest.raises(InferenceServerException) as e:
            c.infer("fashion-dcgan", [seed])
        assert e.value.status() == "StatusCode.UNAUTHENTICATED", e.value
        assert c.is_model_ready("fashion-dcgan")        # health needs no key, as over HTTP
        got = c.infer("fashion-dcgan", [seed], headers={"authorization": f"Bearer {key}"})
        assert np.array_equal(got.as_numpy("image")[0], np.array(
            r.json()["outputs"][0]["data"], np.uint8).reshape(32, 32, 1))
        c.close()
    finally:
        srv.stop()


def test_a_request_larger_than_the_queue_is_a_400_not_a_503(tmp_path):
    """Found through the protocol: a request of more rows than GANSERVE_MAX_QUEUE_ROWS was a
    503 "retry later" every time; it can never fit, so it is the client's to change."""
    from tests.service.conftest import make_client, wait_ready

    with make_client(REPO / "models", max_images=64, max_queue_rows=32) as c:
        wait_ready(c)
        r = c.post("/v2/models/fashion-dcgan/infer", json=_seed_body(40))
        assert r.status_code == 400 and "GANSERVE_MAX_QUEUE_ROWS=32" in r.json()["error"]
        r = c.post("/v1/models/fashion-dcgan/sample", json={"n": 40})
        assert r.status_code == 422 and "send fewer" in r.json()["error"]["message"], r.text
        assert c.post("/v2/models/fashion-dcgan/infer", json=_seed_body(32)).status_code == 200


# ------------------------------------------------ hostile protocol requests (review fixes)
@pytest.fixture(scope="module")
def app_client():
    from tests.service.conftest import make_client, wait_ready

    with make_client(REPO / "models", max_images=4096, max_queue_rows=4096,
                     max_output_pixels=64 * 32 * 32) as c:
        wait_ready(c)
        yield c


def _seed_body(n: int = 1, **extra) -> dict:
    return {"inputs": [{"name": "seed", "shape": [n], "datatype": "INT64",
                        "data": list(range(n))}], **extra}


def test_protocol_odd_numbers_and_sizes_are_400s_not_500s(app_client):
    url = "/v2/models/fashion-dcgan/infer"
    cases = [
        ({"inputs": [{"name": "z", "shape": [1, 100], "datatype": "FP32",
                      "data": [10 ** 400] + [0] * 99}]}, {}, "does not fit FP32"),
        ({"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64",
                      "parameters": {"binary_data_size": 8.0}}]}, {}, "a byte count"),
        ({"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64",
                      "parameters": {"binary_data_size": -8}}]}, {}, "a byte count"),
        ({"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64",
                      "parameters": {"binary_data_size": True}}]}, {}, "a byte count"),
        (_seed_body(), {"Inference-Header-Content-Length": "9" * 5000}, "not a length"),
    ]
    for body, headers, words in cases:
        r = app_client.post(url, content=json.dumps(body), headers=headers)
        assert r.status_code == 400 and words in r.json()["error"], (words, r.text[:300])


def test_protocol_limits_rows_and_json_outputs(app_client, monkeypatch):
    """Rows: what the output pixel limit holds at the model's resolution (as the config
    says); JSON outputs: a budget of elements, past which binary_data is the way."""
    config = app_client.get("/v2/models/fashion-dcgan/config").json()
    assert config["max_batch_size"] == 64
    r = app_client.post("/v2/models/fashion-dcgan/infer", json=_seed_body(65))
    assert r.status_code == 400 and "65 rows" in r.json()["error"], r.text
    from ganserve.service.oip import inference

    # one output of 64 rows fits the budget, two do not
    monkeypatch.setattr(inference, "MAX_JSON_ELEMENTS", 64 * 1024)
    two = [{"name": "image"}, {"name": "raw"}]
    r = app_client.post("/v2/models/fashion-dcgan/infer", json=_seed_body(64, outputs=two))
    assert r.status_code == 400 and "binary_data" in r.json()["error"], r.text
    binary = [{"name": "image"}, {"name": "raw", "parameters": {"binary_data": True}}]
    r = app_client.post("/v2/models/fashion-dcgan/infer", json=_seed_body(64, outputs=binary))
    assert r.status_code == 200, r.text


def test_protocol_timeout_parameter_and_long_class_names(app_client):
    r = app_client.post("/v2/models/fashion-dcgan/infer",
                        json=_seed_body(64, parameters={"timeout": 1}))      # 1 microsecond
    assert r.status_code == 504 and "deadline" in r.json()["error"], r.text
    body = {"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64", "data": [1]},
                       {"name": "class", "shape": [1], "datatype": "BYTES",
                        "data": ["x" * 100_000]}]}
    r = app_client.post("/v2/models/fashion-cgan/infer", json=body)
    assert r.status_code == 400 and len(r.content) < 300, r.text[:300]


def test_protocol_gzip_members_and_trailing_bytes(app_client):
    body = json.dumps(_seed_body()).encode()
    half = len(body) // 2
    two_members = gzip.compress(body[:half]) + gzip.compress(body[half:])
    url = "/v2/models/fashion-dcgan/infer"
    r = app_client.post(url, content=two_members, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    r = app_client.post(url, content=zlib.compress(body) + b"junk",
                        headers={"Content-Encoding": "deflate"})
    assert r.status_code == 400 and "after the deflate stream" in r.json()["error"], r.text


def test_protocol_names_each_tensor_once(app_client):
    seed = {"name": "seed", "shape": [1], "datatype": "INT64", "data": [1]}
    url = "/v2/models/fashion-dcgan/infer"
    r = app_client.post(url, json={"inputs": [seed, seed]})
    assert r.status_code == 400 and r.json()["error"] == "inputs.seed: given twice", r.text
    r = app_client.post(url, json={"inputs": [seed], "outputs": [{"name": "image"}] * 2})
    assert r.status_code == 400 and r.json()["error"] == "outputs.image: asked twice", r.text


@pytest.mark.parametrize("shape", [(1, 32, 32, 1), (3, 4, 4, 3), (0, 2), (256,)])
def test_protocol_json_array_spells_what_json_dumps_would(shape):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    if arr.size:
        arr.reshape(-1)[:2] = (0, 255)
    t = tensors.Tensor("image", "UINT8", list(shape), arr)
    assert tensors.json_array(t) == json.dumps(arr.reshape(-1).tolist(),
                                               separators=(",", ":")).encode()
    z = tensors.Tensor("z", "FP32", [2], np.array([0.5, -1.25], np.float32))
    assert json.loads(tensors.json_array(z)) == [0.5, -1.25]
