"""``POST /v1/jobs/project`` end to end: `ganserve serve` with its embedded worker (no Redis)
on baby versions with encoders; the result's latent feeds the other endpoints."""

from __future__ import annotations

import base64
import io
import shutil

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.jobs.conftest import wait_job
from tests.jobs.test_workers import env_for, sse_events, submit

pytestmark = pytest.mark.slow


@pytest.fixture
def project_server(inverted_store, tmp_path, job_server):
    models = tmp_path / "models"
    shutil.copytree(inverted_store, models)         # with the tiny classifier as evaluator
    env = env_for(models, tmp_path / "data", None, GANSERVE_EMBEDDED_WORKER="true",
                  GANSERVE_WORKER_METRICS_PORT="0", GANSERVE_MAX_PROJECT_STEPS="5000")
    server = job_server(models, env)
    yield server
    server.stop()


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode()


def decoded(b64png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64png))))


def sample_png(url: str, model: str, seed: int, **extra) -> bytes:
    r = httpx.post(f"{url}/v1/models/{model}/sample", json={"seeds": [seed], **extra},
                   timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_project_job_refines_and_its_w_feeds_interpolate_and_style_mix(project_server):
    url = project_server.url
    job = submit(url, {"model": "baby-stylegan", "image": b64(sample_png(url, "baby-stylegan",
                                                                          3)), "steps": 30},
                 "project")
    assert job["type"] == "project" and job["links"]["samples"]
    # the record keeps the image as the model sees it, not what was sent
    assert decoded(job["request"]["image"]).shape == (32, 32)
    events = sse_events(url, job["id"])
    final = events[-1][1]
    assert final["state"] == "succeeded", final
    assert [e for e, _ in events][0] == "state"
    last = final["progress"]            # the record keeps the last progress written
    assert last["stage"] == "refining" and last["step"] == last["total_steps"] == 30
    assert len(last["history"]) == 30 and last["eta_s"] == 0
    res = final["result"]
    assert res["method"] == "refined" and res["start"] == "encoder" and res["steps"] == 30
    assert len(res["latent"]["w"]) == 16 and len(res["loss"]) == 30
    assert res["scores"]["psnr"] >= res["start_scores"]["psnr"]
    png = httpx.get(f"{url}/v1/jobs/{job['id']}/samples.png", timeout=5)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    # the refined w is an interpolation's start: its first frame is the reconstruction
    r = httpx.post(f"{url}/v1/models/baby-stylegan/interpolate", timeout=30, json={
        "start": {"w": res["latent"]["w"]}, "end": {"seed": 1}, "space": "w", "steps": 2,
        "format": "json"})
    assert r.status_code == 200, r.text
    assert np.array_equal(decoded(r.json()["images"][0]["png"]), decoded(res["image"]))
    # and a style-mix row: the first row's source is the reconstruction too
    r = httpx.post(f"{url}/v1/models/baby-stylegan/style-mix", timeout=30, json={
        "row_sources": [{"w": res["latent"]["w"]}], "col_sources": [{"seed": 2}],
        "styles": "coarse", "format": "json"})
    assert r.status_code == 200, r.text
    cells = r.json()["images"]
    assert np.array_equal(decoded(cells[2]["png"]), decoded(res["image"]))


def test_project_job_conditional_keeps_the_given_class(project_server):
    url = project_server.url
    body = {"model": "baby-cgan", "image": b64(sample_png(url, "baby-cgan", 4)), "steps": 10,
            "class": "class2"}
    key = {"Idempotency-Key": "project-cgan-1"}
    r = httpx.post(f"{url}/v1/jobs/project", json=body, headers=key, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["request"]["class"] == 2                 # stored as the model's index
    again = httpx.post(f"{url}/v1/jobs/project", json=body, headers=key, timeout=30)
    assert again.status_code == 202 and again.json()["id"] == job["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = httpx.post(f"{url}/v1/jobs/project", json=body | {"class": 2}, headers=key,
                       timeout=30)
    assert other.status_code == 409                     # the key's first request decides
    res = wait_job(url, job["id"], ("succeeded",))["result"]
    assert res["class_index"] == 2 and res["class_name"] == "class2"
    r = httpx.post(f"{url}/v1/models/baby-cgan/interpolate", timeout=30, json={
        "start": {"z": res["latent"]["z"], "class": 2}, "end": {"seed": 1}, "steps": 2,
        "format": "json"})
    assert r.status_code == 200, r.text
    assert np.array_equal(decoded(r.json()["images"][0]["png"]), decoded(res["image"]))


def test_project_job_cancelled_while_refining(project_server):
    url = project_server.url
    job = submit(url, {"model": "baby-dcgan", "steps": 5000,
                       "image": b64(sample_png(url, "baby-dcgan", 2))}, "project")
    wait_job(url, job["id"], ("running",), until=lambda j: (j["progress"] or {}).get("step"))
    r = httpx.post(f"{url}/v1/jobs/{job['id']}/cancel", timeout=10)
    assert r.status_code == 202
    done = wait_job(url, job["id"], ("cancelled",))
    assert done["result"] is None


BAD_REQUESTS = [
    ({"image": "not base64!"}, 422, "image"),
    ({"image": b64(b"GIF89a not really")}, 422, "image"),
    ({"steps": 5001}, 422, "steps"),                # above GANSERVE_MAX_PROJECT_STEPS
    ({"class": "class1"}, 400, None),       # DCGAN takes no class (as /project answers)
    ({"model": "baby-cgan", "class": "no-such-class"}, 422, "class"),
    ({"model": "no-such-model"}, 404, None),
    ({"steps": 0}, 422, None),
    ({"version": "7"}, 404, None),
]


def test_project_job_bad_requests_get_a_clear_4xx(project_server):
    url = project_server.url
    base = {"model": "baby-dcgan", "image": b64(sample_png(url, "baby-dcgan", 2))}
    for body, status, field in BAD_REQUESTS:
        r = httpx.post(f"{url}/v1/jobs/project", json=base | body, timeout=30)
        assert r.status_code == status, (body, r.text)
        err = r.json()["error"]
        assert err["message"]
        if field:
            assert err.get("field") == field, (body, err)
    assert httpx.get(f"{url}/v1/jobs", params={"type": "project"}).json()["jobs"] == []
