"""Model management: the versions list, the default version (persisted in the store, so it
survives restarts and every replica polls it), and removal (not the last, not the default,
not one a job reads; requests already running on it finish)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ganserve.manifest import list_versions
from ganserve.model_store import read_default
from tests.service.conftest import add_version, copy_store, error, make_client, wait_ready


@pytest.fixture
def store3(store, tmp_path):
    models = copy_store(store, tmp_path / "models")
    add_version(models / "baby-dcgan", "1", "2")
    add_version(models / "baby-dcgan", "1", "3")
    return models


@pytest.fixture
def api(store3, tmp_path):
    with make_client(store3, data_dir=tmp_path / "data") as c:
        wait_ready(c)
        yield c


def served_version(api, **body) -> str:
    r = api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1], **body})
    assert r.status_code == 200, r.text
    return r.headers["x-model-version"]


def test_versions_list_sizes_and_default(api):
    body = api.get("/v1/models/baby-dcgan/versions").json()
    assert body["default"] == "3"
    assert [v["version"] for v in body["versions"]] == ["1", "2", "3"]
    assert all(v["size_bytes"] > 0 and v["created_at"] for v in body["versions"])
    assert [v["default"] for v in body["versions"]] == [False, False, True]


def test_default_version_serves_unversioned_requests(api, store3):
    assert served_version(api) == "3"
    r = api.put("/v1/models/baby-dcgan/default", json={"version": "2"})
    assert r.status_code == 200 and r.json()["default"] == "2"
    assert served_version(api) == "2"
    assert served_version(api, version="3") == "3"          # pinned requests unchanged
    assert served_version(api, version="latest") == "3"
    assert read_default(store3 / "baby-dcgan") == "2"
    assert api.get("/v1/models/baby-dcgan").json()["default"] == "2"
    api.put("/v1/models/baby-dcgan/default", json={"version": None})
    assert served_version(api) == "3"


def test_default_survives_a_restart(store3, tmp_path):
    with make_client(store3, data_dir=tmp_path / "d1") as c:
        wait_ready(c)
        c.put("/v1/models/baby-dcgan/default", json={"version": "1"})
    with make_client(store3, data_dir=tmp_path / "d2") as c:
        wait_ready(c)
        assert served_version(c) == "1"


def test_bad_default_requests(api):
    error(api.put("/v1/models/nope/default", json={"version": "1"}), 404, "model_not_found")
    error(api.put("/v1/models/baby-dcgan/default", json={"version": "9"}), 404,
          "version_not_found")
    error(api.put("/v1/models/baby-dcgan/default", json={"version": "x"}), 422,
          "invalid_input", "version")
    error(api.put("/v1/models/baby-dcgan/default", json={}), 422, "invalid_input", "version")
    error(api.put("/v1/models/baby-dcgan/default", content=b"version=1",
                  headers={"content-type": "application/x-www-form-urlencoded"}), 415,
          "unsupported_media_type")


def test_delete_version_removes_it_atomically(api, store3):
    r = api.delete("/v1/models/baby-dcgan/versions/2")
    assert r.status_code == 200, r.text
    assert [v["version"] for v in r.json()["versions"]] == ["1", "3"]
    assert list_versions(store3 / "baby-dcgan") == ["1", "3"]
    assert not [p for p in (store3 / "baby-dcgan").iterdir() if p.name.startswith("_deleted")]
    error(api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1], "version": "2"}), 404,
          "version_not_found")


def test_delete_refuses_last_default_and_in_use(api, store3):
    api.put("/v1/models/baby-dcgan/default", json={"version": "3"})
    assert "default" in error(api.delete("/v1/models/baby-dcgan/versions/3"), 409,
                              "conflict")["message"]
    job = api.post("/v1/jobs/evaluate", json={"model": "baby-dcgan", "version": "2",
                                              "n": 8}).json()
    if "id" in job:                      # needs Fashion-MNIST for the reference check
        body = error(api.delete("/v1/models/baby-dcgan/versions/2"), 409, "conflict")
        assert job["id"] in body["message"]
        api.post(f"/v1/jobs/{job['id']}/cancel")
    assert api.delete("/v1/models/baby-dcgan/versions/2").status_code == 200
    assert api.delete("/v1/models/baby-dcgan/versions/1").status_code == 200
    assert "last version" in error(api.delete("/v1/models/baby-cgan/versions/1"), 409,
                                   "conflict")["message"]
    error(api.delete("/v1/models/baby-dcgan/versions/7"), 404, "version_not_found")
    error(api.delete("/v1/models/nope/versions/1"), 404, "model_not_found")


def test_requests_in_flight_finish_while_a_version_is_deleted(api):
    errors, done = [], threading.Event()

    def hammer():
        while not done.is_set():
            r = api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1, 2], "version": "2"})
            if r.status_code not in (200, 404):
                errors.append(r.status_code)
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    asyncio.run(asyncio.sleep(0.3))
    assert api.delete("/v1/models/baby-dcgan/versions/2").status_code == 200
    asyncio.run(asyncio.sleep(0.3))
    done.set()
    for t in threads:
        t.join()
    assert errors == []


def test_delete_refuses_a_default_set_through_another_worker(store3, tmp_path):
    """Two workers (or replicas) of one store: the default one sets is refused for deletion
    by the other at once, before its next poll."""
    with make_client(store3, data_dir=tmp_path / "a") as a, \
            make_client(store3, data_dir=tmp_path / "b") as b:
        wait_ready(a)
        wait_ready(b)
        assert a.put("/v1/models/baby-dcgan/default", json={"version": "2"}).status_code == 200
        body = error(b.delete("/v1/models/baby-dcgan/versions/2"), 409, "conflict")
        assert "default" in body["message"]
