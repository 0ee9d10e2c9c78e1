"""A family the service has never heard of is served once its description is registered:
nothing in the service names a family (here a copy of the baby DCGAN export, relabelled)."""

import json
import shutil
import time

import pytest

from ganserve import families
from ganserve.families import Family, register_family
from tests.service.conftest import error, make_client, wait_ready


@pytest.fixture
def toy_family():
    yield register_family(Family("toy-mlp", description="a tiny MLP generator (test)"))
    families._FAMILIES.pop("toy-mlp")          # leave the process as the other tests expect


def _relabelled(store, tmp_path, name: str, family: str):
    """A store holding a copy of the baby DCGAN export as ``name`` of ``family``."""
    root = tmp_path / "store"
    shutil.copytree(store / "baby-dcgan", root / name)
    manifest = root / name / "1" / "manifest.json"
    m = json.loads(manifest.read_text())
    m.update(name=name, family=family)
    manifest.write_text(json.dumps(m))
    return root


def test_a_registered_new_family_is_served_with_its_capabilities(store, tmp_path, toy_family):
    with make_client(_relabelled(store, tmp_path, "toy", "toy-mlp")) as c:
        wait_ready(c)
        info = c.get("/v1/models/toy").json()
        assert info["family"] == "toy-mlp" and info["capabilities"] == ["sample", "interpolate"]
        r = c.post("/v1/models/toy/sample", json={"seeds": [1, 2]})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        body = error(c.post("/v1/models/toy/style-mix", json={"row_seeds": [1],
                                                             "col_seeds": [2]}),
                     400, "unsupported_for_family")
        assert "toy-mlp" in body["message"] and "stylegan" in body["message"]
        doc = c.get("/openapi.json").json()
        sample = doc["paths"]["/v1/models/{name}/sample"]["post"]["parameters"][0]
        assert list(sample["examples"]) == ["toy"]


def test_a_manifest_of_an_unknown_family_is_refused_and_named(store, tmp_path):
    with make_client(_relabelled(store, tmp_path, "mystery", "biggan")) as c:
        # nothing servable: not ready once the scan is done, and the reason says so
        deadline = time.monotonic() + 30
        while (c.get("/v2/health/ready").json()["error"].startswith("starting")
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert "no servable model" in c.get("/v2/health/ready").json()["error"]
        v = c.get("/v1/models/mystery").json()["versions"][0]
        assert v["status"] == "failed" and "unknown model family 'biggan'" in v["error"]
