"""Readiness means able to serve: an empty model store is not ready unless a setting says an
empty store is intended."""

from __future__ import annotations

from tests.service.conftest import make_client


def test_ready_is_503_with_an_empty_store(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    with make_client(empty, data_dir=tmp_path / "data") as c:
        assert c.get("/v2/health/live").status_code == 200
        r = c.get("/v2/health/ready")        # the protocol's error shape: one string
        assert r.status_code == 503 and "no servable model" in r.json()["error"], r.text
        assert "GANSERVE_ALLOW_EMPTY_STORE" in r.json()["error"]


def test_ready_with_an_empty_store_when_allowed(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    with make_client(empty, data_dir=tmp_path / "data", allow_empty_store=True) as c:
        assert c.get("/v2/health/ready").status_code == 200


def test_ready_with_a_servable_model(client):
    assert client.get("/v2/health/ready").json() == {"ready": True, "draining": False}
