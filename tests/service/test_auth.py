"""API keys: 401 without one (WWW-Authenticate), 403 with a wrong one or a read-only one on a
write; inference open unless a setting says otherwise; keys never logged or echoed; the
keys file re-read when it changes; the docs' security scheme."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

from ganserve.service.auth import new_key
from tests.jobs.conftest import fine_tune_body
from tests.service import crafted
from tests.service.conftest import copy_store, data_files, error, make_client, wait_ready

FULL, FULL_ENTRY = new_key("ci")
READ, READ_ENTRY = new_key("dashboard", read_only=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [FULL_ENTRY, READ_ENTRY]}))
    return path


@pytest.fixture
def api(store, tmp_path, keys_file):
    models = copy_store(store, tmp_path / "models")
    with make_client(models, data_dir=tmp_path / "data", api_keys_file=keys_file) as c:
        wait_ready(c)
        yield c


def test_no_key_is_401_with_www_authenticate(api):
    r = api.get("/v1/jobs")
    body = error(r, 401, "unauthorized", "authorization")    # the shape of every error
    assert body["details"] == {"reason": "missing", "scheme": "Bearer"}
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = error(api.get("/v1/jobs", headers={"Authorization": "Basic abc"}), 401,
                 "unauthorized", "authorization")
    assert body["details"]["reason"] == "not_bearer"


def test_wrong_key_is_403_and_not_echoed(api):
    r = api.get("/v1/jobs", headers=bearer("gsk_not-a-key"))
    assert error(r, 403, "forbidden", "authorization")["details"] == {"reason": "unknown"}
    assert "gsk_not-a-key" not in r.text


def test_keys_read_and_write_by_their_kind(api):
    assert api.get("/v1/jobs", headers=bearer(READ)).status_code == 200
    assert api.get("/v1/models/baby-dcgan/versions", headers=bearer(READ)).status_code == 200
    body = error(api.post("/v1/jobs/fine-tune", json=fine_tune_body(dataset={
        "name": "fashion-mnist"}), headers=bearer(READ)), 403, "forbidden", "authorization")
    assert "read-only" in body["message"] and body["details"]["reason"] == "read_only"
    error(api.put("/v1/models/baby-dcgan/default", json={"version": "1"},
                  headers=bearer(READ)), 403, "forbidden")
    error(api.delete("/v1/models/baby-dcgan/versions/1", headers=bearer(READ)), 403,
          "forbidden")
    r = api.put("/v1/models/baby-dcgan/default", json={"version": "1"}, headers=bearer(FULL))
    assert r.status_code == 200


def test_datasets_need_a_key_and_uploads_a_writing_one(api, tmp_path):
    content = crafted.classes_zip({"Bag": 2})
    files = {"file": ("bags.zip", content, "application/zip")}
    error(api.post("/v1/datasets", files=files), 401, "unauthorized")
    error(api.post("/v1/datasets", files=files, headers=bearer(READ)), 403, "forbidden")
    assert data_files(tmp_path / "data") == set()       # refused before the body was read
    r = api.post("/v1/datasets", files=files, headers=bearer(FULL))
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    error(api.get("/v1/datasets"), 401, "unauthorized")
    assert api.get("/v1/datasets", headers=bearer(READ)).status_code == 200
    assert api.get(f"/v1/datasets/{ds}/preview.png", headers=bearer(READ)).status_code == 200
    error(api.delete(f"/v1/datasets/{ds}", headers=bearer(READ)), 403, "forbidden")
    assert api.delete(f"/v1/datasets/{ds}", headers=bearer(FULL)).status_code == 204


def test_inference_open_by_default(api):
    assert api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}).status_code == 200
    assert api.get("/v1/models").status_code == 200
    assert api.get("/v2/health/ready").status_code == 200


def test_inference_keyed_by_the_setting(store, tmp_path, keys_file):
    with make_client(store, data_dir=tmp_path / "data", api_keys_file=keys_file,
                     inference_needs_key=True) as c:
        wait_ready(c)
        error(c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}), 401,
              "unauthorized")
        assert c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]},
                      headers=bearer(READ)).status_code == 200
        assert c.get("/v1/models", headers=bearer(READ)).status_code == 200
        assert c.get("/v2/health/ready").status_code == 200       # probes stay open


def test_keys_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.get("/v1/jobs", headers=bearer(FULL))
    api.get("/v1/jobs", headers=bearer(READ + "x"))
    api.post("/v1/jobs/fine-tune", json={"model": "x"}, headers=bearer(READ))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/jobs" in text                   # the requests were logged...
    assert FULL not in text and READ not in text and "gsk_" not in text   # ...their keys not


def test_rotated_keys_file_is_reread(api, keys_file):
    assert api.get("/v1/jobs", headers=bearer(FULL)).status_code == 200
    fresh, entry = new_key("rotated")
    keys_file.write_text(json.dumps({"keys": [entry]}))
    later = time.time() + 5
    os.utime(keys_file, (later, later))
    error(api.get("/v1/jobs", headers=bearer(FULL)), 403, "forbidden")
    assert api.get("/v1/jobs", headers=bearer(fresh)).status_code == 200


def test_auth_failures_counted(api):
    api.get("/v1/jobs")
    text = api.get("/metrics").text
    assert 'ganserve_auth_failures_total{endpoint="/v1/jobs",reason="missing"}' in text


def test_openapi_has_the_bearer_scheme(api):
    doc = api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/jobs"]["get"]["security"] == [{"HTTPBearer": []}]


def test_no_keys_file_leaves_endpoints_open(store, tmp_path):
    with make_client(store, data_dir=tmp_path / "data") as c:
        wait_ready(c)
        assert c.get("/v1/jobs").status_code == 200


def test_missing_keys_file_stops_the_service(store, tmp_path):
    from pydantic import ValidationError

    from ganserve.service.settings import Settings

    with pytest.raises(ValidationError, match="api_keys_file"):
        Settings(models_dir=store, api_keys_file=tmp_path / "nope.json")


def test_a_bad_keys_file_is_one_line_at_start(tmp_path):
    from pydantic import ValidationError

    from ganserve.service.settings import Settings
    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps(FULL_ENTRY))          # an entry, not a file of entries
    with pytest.raises(ValidationError) as e:
        Settings(models_dir=tmp_path, api_keys_file=bad)
    message = str(e.value)
    assert '{"keys": [' in message and "not a keys file" in message


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_keys_file_removed_or_emptied_revokes_every_key(api, keys_file, caplog, how):
    assert api.get("/v1/jobs", headers=bearer(FULL)).status_code == 200
    if how == "removed":
        keys_file.unlink()
    else:
        keys_file.write_text("")
    with caplog.at_level(logging.ERROR, logger="ganserve.service.auth"):
        error(api.get("/v1/jobs", headers=bearer(FULL)), 403, "forbidden")
    assert "all 2 keys revoked" in caplog.text
    keys_file.write_text(json.dumps({"keys": [FULL_ENTRY]}))      # back: keys work again
    assert api.get("/v1/jobs", headers=bearer(FULL)).status_code == 200


def test_a_half_written_keys_file_keeps_the_last_good_keys(api, keys_file):
    keys_file.write_text('{"keys": [')
    os.utime(keys_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert api.get("/v1/jobs", headers=bearer(FULL)).status_code == 200


def test_read_only_keys_see_no_webhook_secret(store, tmp_path, keys_file):
    """A webhook URL often carries the receiver's secret: a full key sees it, a read-only
    key sees its scheme and host only, in the record, the list and the events' end."""
    models = copy_store(store, tmp_path / "models")
    url = "http://127.0.0.1:9/hook/s3cret?token=s3cret"
    with make_client(models, data_dir=tmp_path / "data", api_keys_file=keys_file,
                     webhook_allowed_hosts="127.0.0.1/32", webhook_secret="k" * 32) as api:
        wait_ready(api)
        body = fine_tune_body(dataset={"name": "fashion-mnist", "classes": ["Bag"],
                                       "limit": 64}) | {"webhook": {"url": url}}
        r = api.post("/v1/jobs/fine-tune", json=body, headers=bearer(FULL))
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        full = api.get(f"/v1/jobs/{job_id}", headers=bearer(FULL)).json()
        assert full["request"]["webhook"]["url"] == url
        seen = [api.get(f"/v1/jobs/{job_id}", headers=bearer(READ)).text,
                api.get("/v1/jobs", headers=bearer(READ)).text]
        for text in seen:
            assert "s3cret" not in text and "http://127.0.0.1/..." in text
