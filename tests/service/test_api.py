"""Every endpoint, format and error through the ASGI app (httpx TestClient)."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ganserve.latents import z_from_seed
from tests.service.conftest import add_version, copy_store, error, make_client, wait_ready

DC, CG, SG = "baby-dcgan", "baby-cgan", "baby-stylegan"


def png_size(content: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(content)).size


# ---------------------------------------------------------------- models

def test_models_list_families_capabilities_versions(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {DC, CG, SG}
    assert models[SG]["capabilities"] == ["sample", "interpolate", "style-mix"]
    assert models[CG]["conditional"] and len(models[CG]["classes"]) == 10
    assert models[SG]["num_ws"] == 8 and models[SG]["latest"] == "1"
    v = models[DC]["versions"][0]
    assert v["status"] == "ready" and v["provider"] == "CPUExecutionProvider"
    assert v["deterministic"] is True and v["training"]["steps"] == 4


def test_get_model_and_unknown_model(client):
    assert client.get(f"/v1/models/{CG}").json()["family"] == "cgan"
    body = error(client.get("/v1/models/nope"), 404, "model_not_found", "name")
    assert body["message"].endswith("models: baby-cgan, baby-dcgan, baby-stylegan"), body
    assert body["details"]["available"] == ["baby-cgan", "baby-dcgan", "baby-stylegan"]
    # a near miss is named, here and wherever a model name is looked up
    for path in ("/v1/models/baby-dcgn", "/v1/models/baby-dcgn/versions"):
        body = error(client.get(path), 404, "model_not_found", "name")
        assert "did you mean 'baby-dcgan'?" in body["message"], (path, body)
        assert body["details"]["suggestion"] == "baby-dcgan"
    r = client.get("/v2/models/baby-dcgn/ready")        # the protocol's shape: one string
    assert r.status_code == 404 and "did you mean 'baby-dcgan'?" in r.json()["error"]
    body = error(client.post(f"/v1/models/{CG}/conditional", json={"class": "clas3"}), 422,
                 "invalid_input", "class")
    assert "did you mean 'class3'?" in body["message"] and "classes: class0," in body["message"]
    assert body["details"]["suggestion"] == "class3"


# ---------------------------------------------------------------- sample

def test_sample_png_grid_with_cols_and_scale(client):
    r = client.post(f"/v1/models/{DC}/sample", json={"seeds": [1, 2, 3, 4], "cols": 2,
                                                       "scale": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert png_size(r.content) == (2 * 32 * 3, 2 * 32 * 3)
    assert r.headers["x-seeds"] == "1,2,3,4" and r.headers["x-model-version"] == "1"


def test_sample_n_draws_seeds_and_reports_them(client):
    r = client.post(f"/v1/models/{SG}/sample", json={"n": 3, "format": "json",
                                                       "return_latents": True})
    body = r.json()
    assert r.status_code == 200 and body["family"] == "stylegan" and len(body["images"]) == 3
    for img in body["images"]:
        assert np.allclose(img["latent"], z_from_seed(img["seed"], 16))
        assert png_size(base64.b64decode(img["png"])) == (32, 32)


def test_accept_header_selects_json(client):
    r = client.post(f"/v1/models/{DC}/sample", json={"seeds": [5]},
                    headers={"accept": "application/json"})
    assert r.headers["content-type"] == "application/json"
    assert r.json()["images"][0]["seed"] == 5


def test_same_seed_same_bytes_alone_or_in_a_big_request(client):
    for name in (DC, CG, SG):
        alone = client.post(f"/v1/models/{name}/sample", json={"seeds": [42]}).content
        many = client.post(f"/v1/models/{name}/sample",
                           json={"seeds": list(range(30, 94)), "format": "json"}).json()
        assert base64.b64decode(many["images"][12]["png"]) == alone, name


def test_truncation_psi_changes_and_zero_collapses(client):
    a = client.post(f"/v1/models/{DC}/sample", json={"seeds": [1, 2], "truncation_psi": 0})
    b = client.post(f"/v1/models/{DC}/sample", json={"seeds": [3, 4], "truncation_psi": 0})
    assert a.content == b.content            # psi = 0: every seed gives the mean latent
    c = client.post(f"/v1/models/{SG}/sample", json={"seeds": [1], "truncation_psi": 0.5})
    d = client.post(f"/v1/models/{SG}/sample", json={"seeds": [1]})
    assert c.content != d.content


@pytest.mark.parametrize("body, field", [
    ({"n": 257}, "n"),
    ({"seeds": list(range(300))}, "seeds"),
    ({"seeds": [2**32]}, "seeds.0"),
    ({"seeds": [-1]}, "seeds.0"),
    ({"truncation_psi": 2.5}, "truncation_psi"),
    ({"truncation_psi": -0.1}, "truncation_psi"),
    ({"n": 2, "seeds": [1]}, "n"),
    ({"scale": 17}, "scale"),
    ({"bogus": 1}, "bogus"),
])
def test_sample_invalid_input_names_the_field(client, body, field):
    error(client.post(f"/v1/models/{DC}/sample", json=body), 422, "invalid_input", field)


def test_nan_and_malformed_json_are_422(client):
    r = client.post(f"/v1/models/{DC}/sample", content=b'{"truncation_psi": NaN}',
                    headers={"content-type": "application/json"})
    error(r, 422, "invalid_input", "truncation_psi")
    r = client.post(f"/v1/models/{DC}/sample", content=b'{"n": ',
                    headers={"content-type": "application/json"})
    error(r, 422, "invalid_input")


def test_version_pinning_and_unknown_version(client):
    r = client.post(f"/v1/models/{DC}/sample", json={"seeds": [1], "version": "1"})
    assert r.headers["x-model-version"] == "1"
    body = error(client.post(f"/v1/models/{DC}/sample", json={"version": "9"}), 404,
                 "version_not_found", "version")
    assert body["details"]["available"] == ["1"]


def test_oversized_body_413(client):
    r = client.post(f"/v1/models/{DC}/sample", content=b"{" + b" " * 2_000_000 + b"}",
                    headers={"content-type": "application/json"})
    error(r, 413, "payload_too_large")


def test_unknown_route_uses_the_error_shape(client):
    error(client.get("/v1/nothing"), 404, "not_found")
    error(client.delete(f"/v1/models/{DC}"), 405, "method_not_allowed")


# ---------------------------------------------------------------- conditional

def test_conditional_by_name_and_index(client):
    r = client.post(f"/v1/models/{CG}/conditional",
                    json={"class": "class7", "seeds": [1, 2], "format": "json"})
    assert [i["class_index"] for i in r.json()["images"]] == [7, 7]
    assert r.headers["x-classes"] == "class7,class7"
    by_index = client.post(f"/v1/models/{CG}/conditional", json={"class": 7, "seeds": [1]})
    by_name = client.post(f"/v1/models/{CG}/conditional", json={"class": "CLASS7",
                                                                  "seeds": [1]})
    assert by_index.content == by_name.content


def test_conditional_errors(client):
    body = error(client.post(f"/v1/models/{CG}/conditional", json={"class": "Sneakers"}),
                 422, "invalid_input", "class")
    assert "class0" in body["message"]
    error(client.post(f"/v1/models/{CG}/conditional", json={"class": 10}), 422,
          "invalid_input", "class")
    error(client.post(f"/v1/models/{CG}/conditional", json={}), 422, "invalid_input", "class")
    body = error(client.post(f"/v1/models/{DC}/conditional", json={"class": 1}), 400,
                 "unsupported_for_family")
    assert body["details"]["supported_families"] == ["cgan"]


def test_sample_on_cgan_defaults_class_to_seed_mod_k(client):
    r = client.post(f"/v1/models/{CG}/sample", json={"seeds": [13], "format": "json"})
    assert r.json()["images"][0]["class_index"] == 3


# ---------------------------------------------------------------- interpolate

def test_interpolate_strip_json_and_animations(client):
    req = {"start": {"seed": 1}, "end": {"seed": 2}, "steps": 6, "scale": 2}
    r = client.post(f"/v1/models/{DC}/interpolate", json=req)
    assert png_size(r.content) == (6 * 64, 64)
    j = client.post(f"/v1/models/{DC}/interpolate", json={**req, "format": "json"}).json()
    assert len(j["images"]) == 6 and j["grid_png"]
    assert [i.get("seed") for i in j["images"]] == [1, None, None, None, None, 2]
    for fmt in ("gif", "webp"):
        r = client.post(f"/v1/models/{DC}/interpolate", json={**req, "format": fmt})
        assert r.headers["content-type"] == f"image/{fmt}"
        im = Image.open(io.BytesIO(r.content))
        assert im.n_frames == 6


def test_interpolate_endpoints_match_samples(client):
    """The first frame of a seed interpolation is that seed's sample, byte for byte."""
    for name in (DC, SG):
        strip = client.post(f"/v1/models/{name}/interpolate", json={
            "start": {"seed": 11}, "end": {"seed": 12}, "steps": 3, "format": "json"}).json()
        single = client.post(f"/v1/models/{name}/sample", json={"seeds": [11]}).content
        assert base64.b64decode(strip["images"][0]["png"]) == single


def test_interpolate_cgan_between_classes(client):
    r = client.post(f"/v1/models/{CG}/interpolate", json={
        "start": {"seed": 3, "class": "class7"}, "end": {"seed": 3, "class": 5}, "steps": 4,
        "format": "json"})
    imgs = r.json()["images"]
    assert imgs[0]["class_index"] == 7 and imgs[-1]["class_index"] == 5


def test_interpolate_w_space_and_explicit_latents(client):
    r = client.post(f"/v1/models/{SG}/interpolate", json={
        "start": {"seed": 1}, "end": {"w": [0.1] * 16}, "steps": 3, "space": "w",
        "method": "lerp"})
    assert r.status_code == 200
    r = client.post(f"/v1/models/{DC}/interpolate", json={
        "start": {"z": [0.0] * 16}, "end": {"seed": 4}, "steps": 3})
    assert r.status_code == 200


@pytest.mark.parametrize("body, status, field", [
    ({"start": {"seed": 1}, "end": {"seed": 2}, "steps": 65}, 422, "steps"),
    ({"start": {"seed": 1}, "end": {"seed": 2}, "steps": 1}, 422, "steps"),
    ({"start": {"z": [0.0] * 5}, "end": {"seed": 2}}, 422, "start.z"),
    ({"start": {"seed": 1, "z": [0.0] * 16}, "end": {"seed": 2}}, 422, "start"),
    ({"start": {"seed": 1}, "end": {"seed": 2}, "method": "cubic"}, 422, "method"),
])
def test_interpolate_invalid(client, body, status, field):
    error(client.post(f"/v1/models/{DC}/interpolate", json=body), status, "invalid_input",
          field)


def test_interpolate_nan_latent_and_w_space_on_dcgan(client):
    r = client.post(f"/v1/models/{DC}/interpolate",
                    content=b'{"start": {"z": [NaN, 0]}, "end": {"seed": 1}}',
                    headers={"content-type": "application/json"})
    error(r, 422, "invalid_input", "start.z.0")
    error(client.post(f"/v1/models/{DC}/interpolate", json={
        "start": {"seed": 1}, "end": {"seed": 2}, "space": "w"}), 400, "unsupported_for_family")
    error(client.post(f"/v1/models/{SG}/interpolate", json={
        "start": {"w": [0.0] * 3}, "end": {"seed": 2}, "space": "w"}), 422, "invalid_input",
        "start.w")


# ---------------------------------------------------------------- style mix

def test_style_mix_grid_layout(client):
    r = client.post(f"/v1/models/{SG}/style-mix", json={
        "row_seeds": [1, 2], "col_seeds": [3, 4, 5], "styles": "0-3", "scale": 2})
    assert png_size(r.content) == (4 * 64, 3 * 64)
    j = client.post(f"/v1/models/{SG}/style-mix", json={
        "row_seeds": [1, 2], "col_seeds": [3, 4, 5], "styles": "coarse",
        "format": "json"}).json()
    seeds = [i.get("seed") for i in j["images"]]
    assert seeds == [None, 3, 4, 5, 1, None, None, None, 2, None, None, None]
    # sources in the grid are the plain samples
    single = client.post(f"/v1/models/{SG}/sample", json={"seeds": [3]}).content
    assert base64.b64decode(j["images"][1]["png"]) == single


def test_style_mix_all_layers_gives_the_column_image(client):
    j = client.post(f"/v1/models/{SG}/style-mix", json={
        "row_seeds": [1], "col_seeds": [3], "styles": "0-7", "format": "json"}).json()
    assert j["images"][3]["png"] == j["images"][1]["png"]


@pytest.mark.parametrize("body, status, code, field", [
    ({"row_seeds": [1], "col_seeds": [2], "styles": "0-9"}, 422, "invalid_input", "styles"),
    ({"row_seeds": [1], "col_seeds": [2], "styles": "huge"}, 422, "invalid_input", "styles"),
    ({"row_seeds": list(range(20)), "col_seeds": list(range(20))}, 422, "invalid_input",
     "row_seeds"),
    ({"row_seeds": [], "col_seeds": [2]}, 422, "invalid_input", "row_seeds"),
])
def test_style_mix_invalid(client, body, status, code, field):
    error(client.post(f"/v1/models/{SG}/style-mix", json=body), status, code, field)


def test_style_mix_on_dcgan_is_400_naming_families(client):
    body = error(client.post(f"/v1/models/{DC}/style-mix",
                             json={"row_seeds": [1], "col_seeds": [2]}), 400,
                 "unsupported_for_family")
    assert "stylegan" in body["message"]


# ---------------------------------------------------------------- GET sample.png

def test_sample_png_shortcut(client):
    r = client.get(f"/v1/models/{CG}/sample.png?seed=42&psi=0.7&class=class3&scale=8")
    assert r.status_code == 200 and png_size(r.content) == (256, 256)
    post = client.post(f"/v1/models/{CG}/conditional", json={
        "class": 3, "seeds": [42], "truncation_psi": 0.7, "scale": 8})
    assert post.content == r.content
    error(client.get(f"/v1/models/{CG}/sample.png?seed=-4"), 422, "invalid_input", "seed")
    error(client.get(f"/v1/models/{DC}/sample.png?class=1"), 400, "unsupported_for_family")


# ---------------------------------------------------------------- ops endpoints

def test_health_and_metrics(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get(f"/v2/models/{SG}/ready").status_code == 200
    assert client.get("/v2/models/nope/ready").status_code == 404
    client.post(f"/v1/models/{DC}/sample", json={"seeds": [1, 2]})
    text = client.get("/metrics").text
    for name in ("ganserve_requests_total", "ganserve_request_duration_seconds_bucket",
                 "ganserve_queue_wait_seconds_bucket", "ganserve_inference_seconds_bucket",
                 "ganserve_batch_rows_bucket", "ganserve_images_generated_total",
                 "ganserve_requests_in_flight", "ganserve_queue_rows", "ganserve_model_info"):
        assert name in text, name
    assert 'endpoint="/v1/models/{name}/sample",model="baby-dcgan",status="200"' in text
    assert 'provider="CPUExecutionProvider"' in text


def test_docs_work_offline(client):
    page = client.get("/docs").text
    assert "cdn.jsdelivr" not in page and "unpkg" not in page
    import re
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        assert client.get(asset).status_code == 200, asset
    spec = client.get("/openapi.json").json()
    sample = spec["paths"]["/v1/models/{name}/sample"]["post"]
    assert "image/png" in sample["responses"]["200"]["content"]
    assert "422" in sample["responses"] and "ErrorResponse" in str(spec["components"])


def test_request_id_is_echoed(client):
    r = client.get("/v1/models", headers={"x-request-id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"


# ---------------------------------------------------------------- registry behaviour

def test_corrupt_version_is_refused_and_others_serve(store, tmp_path):
    root = copy_store(store, tmp_path / "s")
    onnx = root / DC / "1" / "generator.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    with make_client(root) as c:
        wait_ready(c)
        m = c.get(f"/v1/models/{DC}").json()
        assert m["versions"][0]["status"] == "failed"
        assert "sha256 mismatch" in m["versions"][0]["error"]
        error(c.post(f"/v1/models/{DC}/sample", json={}), 503, "model_unavailable")
        assert c.post(f"/v1/models/{SG}/sample", json={}).status_code == 200


def test_new_version_is_picked_up_without_restart(store, tmp_path):
    root = copy_store(store, tmp_path / "s")
    settings = dict(poll_interval_s=0.1)
    from fastapi.testclient import TestClient

    from ganserve.service.main import create_app
    from ganserve.service.settings import Settings
    with TestClient(create_app(Settings(models_dir=root, **settings))) as c:
        wait_ready(c)
        assert c.post(f"/v1/models/{DC}/sample", json={}).headers["x-model-version"] == "1"
        add_version(root / DC, "1", "2")
        import time
        for _ in range(100):
            if c.get(f"/v1/models/{DC}").json()["latest"] == "2":
                break
            time.sleep(0.05)
        r = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1]})
        assert r.headers["x-model-version"] == "2"
        pinned = c.post(f"/v1/models/{DC}/sample", json={"seeds": [1], "version": "1"})
        assert pinned.headers["x-model-version"] == "1" and pinned.content == r.content


def test_a_request_larger_than_the_whole_queue_is_422_not_503(store):
    """A full queue is a 503 with Retry-After (tests/service/test_server.py, under real
    concurrency); a request of more rows than the queue can ever hold is the client's to
    change: retrying would never help."""
    with make_client(store, max_queue_rows=4) as c:
        wait_ready(c)
        r = c.post(f"/v1/models/{DC}/sample", json={"n": 8})
        body = error(r, 422, "invalid_input")
        assert "GANSERVE_MAX_QUEUE_ROWS=4" in body["message"] and "retry-after" not in r.headers


def test_passed_deadline_is_504(store):
    with make_client(store, request_deadline_s=0.001, max_batch_delay_ms=50) as c:
        wait_ready(c)
        error(c.post(f"/v1/models/{SG}/sample", json={"n": 4}), 504, "deadline_exceeded")


def test_not_ready_while_loading(store):
    from ganserve.service.main import create_app
    from ganserve.service.settings import Settings
    app = create_app(Settings(models_dir=store))
    from fastapi.testclient import TestClient
    c = TestClient(app)        # no lifespan: the registry never scans
    error(c.post(f"/v1/models/{DC}/sample", json={}), 503, "not_ready")
    assert c.get("/v2/health/ready").status_code == 503


def test_request_ids_are_unique_and_new_per_process(monkeypatch):
    from ganserve.service import middleware
    ids = middleware._RequestIds()
    first = [ids.next() for _ in range(2000)]
    assert len(set(first)) == 2000 and all(len(i) >= 16 for i in first)
    monkeypatch.setattr(middleware.os, "getpid", lambda: -7)       # as in a forked worker
    assert ids.next()[:10] != first[0][:10]
