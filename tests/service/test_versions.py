"""Model management: the versions list, the default version (persisted in the store, so it
survives restarts and every replica polls it), and removal (not the last, not the default,
not one a job reads; requests already running on it finish)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ganserve.manifest import list_versions, next_version
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


def test_deleted_highest_version_number_is_not_handed_out_again(api, store3):
    assert api.delete("/v1/models/baby-dcgan/versions/3").status_code == 200
    assert next_version(store3 / "baby-dcgan") == "4"


def test_concurrent_deletes_never_remove_the_last_version(api, store3, monkeypatch):
    """Two deletes of the last two versions at once (each judged while the other is still
    between its checks and its removal): one wins, one is told it would remove the last."""
    jobs = api.app.state.jobs
    slow = jobs.store.active_for

    def active_for(*a):                         # widen the window between check and act
        time.sleep(0.3)
        return slow(*a)
    monkeypatch.setattr(jobs.store, "active_for", active_for)
    assert api.delete("/v1/models/baby-dcgan/versions/3").status_code == 200
    codes: dict[str, int] = {}

    def delete(v: str) -> None:
        codes[v] = api.delete(f"/v1/models/baby-dcgan/versions/{v}").status_code
    threads = [threading.Thread(target=delete, args=(v,)) for v in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [200, 409], codes
    assert len(list_versions(store3 / "baby-dcgan")) == 1


def test_default_and_delete_of_one_version_at_once_leave_a_served_default(api, store3,
                                                                          monkeypatch):
    """PUT default 2 and DELETE 2 race: either the delete is refused (2 is the default) or
    the default is refused (2 is gone), never a default naming a removed version."""
    jobs = api.app.state.jobs
    slow = jobs.store.active_for

    def active_for(*a):
        time.sleep(0.3)
        return slow(*a)
    monkeypatch.setattr(jobs.store, "active_for", active_for)
    codes: dict[str, int] = {}

    def delete() -> None:
        codes["delete"] = api.delete("/v1/models/baby-dcgan/versions/2").status_code

    def put() -> None:
        time.sleep(0.1)                         # inside the delete's window
        codes["put"] = api.put("/v1/models/baby-dcgan/default",
                               json={"version": "2"}).status_code
    threads = [threading.Thread(target=delete), threading.Thread(target=put)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) in ([200, 404], [200, 409]), codes
    default = read_default(store3 / "baby-dcgan")
    assert default is None or default in list_versions(store3 / "baby-dcgan"), default


def test_version_published_since_the_last_poll_is_served_at_once(store3, tmp_path,
                                                                  monkeypatch):
    """A version a job (or another replica) just put in the store is loaded on the first
    request that names it, verified like any other, and once for a burst of requests."""
    from ganserve.service import registry as registry_module

    loaded: list[str] = []
    real_load = registry_module.load_version

    def counting_load(name, version, *a, **k):
        loaded.append(f"{name}/{version}")
        return real_load(name, version, *a, **k)
    monkeypatch.setattr(registry_module, "load_version", counting_load)
    with make_client(store3, data_dir=tmp_path / "d") as c:      # no polling at all
        wait_ready(c)
        add_version(store3 / "baby-dcgan", "1", "4")
        results: list = []

        def ask() -> None:
            r = c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1], "version": "4"})
            results.append((r.status_code, r.headers.get("x-model-version")))
        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [(200, "4")] * 6, results
        assert loaded.count("baby-dcgan/4") == 1, loaded      # one load for six requests
        # a version whose files do not match its manifest is refused as at any load
        bad = add_version(store3 / "baby-dcgan", "1", "5")
        next(p for p in bad.iterdir() if p.suffix == ".onnx").write_bytes(b"garbage")
        error(c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1], "version": "5"}),
              503, "model_unavailable")
        # a made-up version is still a plain 404
        error(c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1], "version": "77"}),
              404, "version_not_found")
