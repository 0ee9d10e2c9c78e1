"""The Python API: ``ganserve.generate`` and friends in process give the API's bytes; the
client (sync and async) against a real server gives its images, jobs, datasets, versions
and errors as typed results; the client loads neither torch nor the server; the README's
Python examples run as written."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganserve
from ganserve.client import ApiError, AsyncClient, Client
from ganserve.images import SNEAKER_PNG
from ganserve.local import Models
from tests.service import crafted
from tests.service.conftest import store as store  # noqa: F401 (the baby store fixture)

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


@pytest.fixture
def api(shipped_api):
    return shipped_api


@pytest.fixture(scope="module")
def local():
    return Models(MODELS)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_local_sample_and_conditional_are_the_apis_bytes(api, local):
    imgs = local.generate("fashion-dcgan", seeds=[3, 4, 5], psi=0.7)
    assert len(imgs) == 3 and imgs.seeds == [3, 4, 5] and imgs.version
    r = api.post("/v1/models/fashion-dcgan/sample", json={"seeds": [3, 4, 5],
                                                          "truncation_psi": 0.7, "cols": 2})
    assert imgs.png(cols=2) == r.content
    one = api.post("/v1/models/fashion-dcgan/sample", json={"seeds": [4],
                                                            "truncation_psi": 0.7})
    assert np.array_equal(np.asarray(imgs[1]), _pixels(one.content))
    bags = local.conditional("fashion-cgan", "Bag", "0-3")
    r = api.post("/v1/models/fashion-cgan/conditional", json={"class": "Bag", "seeds": "0-3"})
    assert bags.png() == r.content and bags.classes == [8] * 4


def test_local_interpolate_and_style_mix_are_the_apis_bytes(api, local):
    frames = local.interpolate("fashion-stylegan", 1, 2, steps=5, space="w")
    r = api.post("/v1/models/fashion-stylegan/interpolate", json={
        "start": {"seed": 1}, "end": {"seed": 2}, "steps": 5, "space": "w"})
    assert frames.png() == r.content and len(frames) == 5
    grid = local.style_mix("fashion-stylegan", [85, 100], [55, 821, 1789], styles="0-3",
                           psi=0.8)
    r = api.post("/v1/models/fashion-stylegan/style-mix", json={
        "row_seeds": [85, 100], "col_seeds": [55, 821, 1789], "styles": "0-3",
        "truncation_psi": 0.8})
    assert grid.png() == r.content


def test_local_errors_name_the_problem(local):
    with pytest.raises(Exception, match="fashion-dcgan"):
        local.generate("fashion-dcgen")                 # the near miss is named
    with pytest.raises(Exception, match="style"):
        local.style_mix("fashion-dcgan", [1], [2])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ganserve on a copy of the shipped store (jobs queued, none run)."""
    from tests.service.conftest import ServerProcess, copy_store

    srv = ServerProcess(copy_store(MODELS, tmp_path_factory.mktemp("py") / "models"))
    srv.wait_ready()
    yield srv
    srv.stop()


def test_client_images_are_the_apis_pixels(server, api):
    with Client(server.url) as c:
        imgs = c.sample("fashion-dcgan", seeds=[3, 4], psi=0.7, return_latents=True)
        assert imgs.model == "fashion-dcgan" and imgs.seeds == [3, 4]
        assert len(imgs.latents) == 2
        r = api.post("/v1/models/fashion-dcgan/sample", json={"seeds": [4],
                                                              "truncation_psi": 0.7})
        assert np.array_equal(np.asarray(imgs[1]), _pixels(r.content))
        bags = c.conditional("fashion-cgan", "Bag", [0, 1])
        assert bags.classes == ["Bag", "Bag"]
        frames = c.interpolate("fashion-stylegan", 1, {"seed": 2}, steps=4)
        assert len(frames) == 4
        mix = c.style_mix("fashion-stylegan", [1, 2], [3], styles="fine")
        assert len(mix) == (2 + 1) * (1 + 1) and mix.grid_png[:4] == b"\x89PNG"


def test_client_errors_carry_the_apis_error_body(server):
    with Client(server.url) as c:
        with pytest.raises(ApiError) as e:
            c.sample("fashion-dcgen", seeds=[1])
        assert e.value.status == 404 and e.value.code == "model_not_found"
        assert "fashion-dcgan" in e.value.message and e.value.request_id
        with pytest.raises(ApiError) as e:
            c.sample("fashion-dcgan", seeds=[1], psi=7.0)
        assert e.value.status == 422 and e.value.field


def test_client_jobs_datasets_and_versions(server):
    with Client(server.url) as c:
        ds = c.upload_dataset(crafted.classes_zip({"Bag": 4}), name="bags",
                              filename="bags.zip")
        assert ds["id"] in {d["id"] for d in c.datasets()}
        job = c.fine_tune("fashion-dcgan", {"id": ds["id"]}, steps=20)
        assert job.state == "queued" and not job.done
        assert c.job(job.id).id == job.id and job.id in {j.id for j in c.jobs(limit=5)}
        with pytest.raises(TimeoutError):               # queued, no worker: it never moves
            c.wait(job, timeout=1, poll_s=0.1)
        again = c.fine_tune("fashion-dcgan", {"id": ds["id"]}, steps=20,
                            idempotency_key=f"retry-{job.id}")
        assert c.fine_tune("fashion-dcgan", {"id": ds["id"]}, steps=20,
                           idempotency_key=f"retry-{job.id}").id == again.id
        c.cancel(again)
        seen = []
        c.cancel(job)
        done = c.wait(job, timeout=30, on_progress=seen.append)
        assert done.state == "cancelled" and done.done and seen[-1].state == "cancelled"
        c.delete_dataset(ds["id"])
        versions = c.versions("fashion-dcgan")
        assert versions["versions"] and c.set_default("fashion-dcgan", None)["name"]
        with pytest.raises(ApiError) as e:
            c.delete_version("fashion-dcgan", versions["versions"][0]["version"])
        assert e.value.status == 409                    # the model's last version


def test_client_projects_edits_and_mixes_a_projected_image(server):
    sneaker = base64.b64decode(SNEAKER_PNG)
    with Client(server.url) as c:
        p = c.project("fashion-stylegan", sneaker)
        w = p["latent"]["w"]
        assert len(w) == c.model("fashion-stylegan")["w_dim"] and p["scores"]["ssim"] > 0
        names = [d["name"] for d in c.directions("fashion-stylegan")["directions"]]
        assert "pc0" in names and "Sneaker->Sandal" in names
        strip = c.edit("fashion-stylegan", {}, w=w, strip={
            "direction": "Sneaker->Sandal", "start": 0, "stop": 1, "steps": 3})
        assert len(strip) == 3
        assert np.array_equal(np.asarray(strip[0]), _pixels(base64.b64decode(p["image"])))
        mix = c.style_mix("fashion-stylegan", [{"w": w}, 5], [1, 2])
        assert len(mix) == 3 * 3 and mix.seeds[3] is None and mix.seeds[6] == 5
        job = c.project_job("fashion-stylegan", Image.open(io.BytesIO(sneaker)), steps=5)
        assert job.type == "project" and job.state == "queued"
        c.cancel(job)


def test_async_client_does_what_the_sync_one_does(server):
    async def run():
        async with AsyncClient(server.url) as c:
            imgs, models = await asyncio.gather(
                c.sample("fashion-dcgan", seeds="0-1"), c.models())
            assert len(imgs) == 2 and {m["name"] for m in models} >= {"fashion-dcgan"}
            with pytest.raises(ApiError):
                await c.model("nope")
            p = await c.project("fashion-dcgan", base64.b64decode(SNEAKER_PNG))
            assert len(p["latent"]["z"]) == (await c.model("fashion-dcgan"))["z_dim"]
            job = await c.evaluate("fashion-dcgan", n=64)
            await c.cancel(job)
            assert (await c.wait(job, timeout=30)).state == "cancelled"
    asyncio.run(run())


def test_client_loads_neither_torch_nor_the_server():
    code = ("import sys, ganserve\n"
            "c = ganserve.Client('http://127.0.0.1:9')\n"
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', "
            "'ganserve.service', 'ganserve.training', 'ganserve.worker', 'onnxruntime'))]\n"
            "assert not bad, bad[:5]\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _readme_python() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- python-examples -->")[1].split("<!-- /python-examples -->")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_examples_run(server, tmp_path):
    blocks = _readme_python()
    assert len(blocks) >= 2
    script = "\n".join(blocks).replace("http://127.0.0.1:8000", server.url)
    env = {**os.environ, "GANSERVE_MODELS_DIR": str(MODELS)}
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


def test_top_level_names_are_the_documented_ones():
    assert {"generate", "conditional", "interpolate", "style_mix", "Client", "AsyncClient",
            "ApiError", "Models"} <= set(ganserve.__all__)
    with pytest.raises(AttributeError):
        ganserve.no_such_name  # noqa: B018


def test_local_api_works_inside_a_running_event_loop(local, api):
    """A notebook or an async handler already runs a loop: the in-process API still works."""
    async def in_a_loop():
        return local.generate("fashion-dcgan", seeds=[7]).png()
    r = api.post("/v1/models/fashion-dcgan/sample", json={"seeds": [7]})
    assert asyncio.run(in_a_loop()) == r.content


def test_local_api_serves_the_default_version_as_the_api_does(store, tmp_path):
    """No version given: the store's chosen default (what unversioned API requests get),
    else the highest; each version is loaded once."""
    from ganserve.model_store import write_default
    from tests.service.conftest import add_version, copy_store

    models = copy_store(store, tmp_path / "models")
    add_version(models / "baby-dcgan", "1", "2")
    m = Models(models)
    assert m.generate("baby-dcgan").version == "2"
    write_default(models / "baby-dcgan", "1")
    assert m.generate("baby-dcgan").version == "1"
    assert m.version("baby-dcgan") is m.version("baby-dcgan", "1")


def test_api_error_survives_odd_bodies_and_pickling():
    import pickle

    e = ApiError(502, {"error": "bad gateway"}, "")
    assert e.code == "http_error" and e.message == "bad gateway"
    assert ApiError(500, ["x"], "oops").message == "oops"
    copy = pickle.loads(pickle.dumps(ApiError(404, {"error": {"code": "model_not_found",
                                                               "message": "no"}})))
    assert copy.status == 404 and copy.code == "model_not_found"


def _paged(items: list[str], key: str, seen: list):
    """A server that pages ``items`` three at a time with cursors, and records uploads."""
    import httpx

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            seen.append(request.read())
            return httpx.Response(201, json={"id": "d1"})
        start = int(request.url.params.get("cursor", 0))
        page = [{"id": i, "type": "evaluate", "state": "queued", "model": "m"} if key == "jobs" else
                {"id": i} for i in items[start:start + 3]]
        more = start + 3 < len(items)
        return httpx.Response(200, json={key: page, "next": str(start + 3) if more else None})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("key", ["jobs", "datasets"])
def test_client_lists_follow_the_cursor_to_the_last_page(key):
    import httpx

    items = [f"x{i}" for i in range(8)]
    with Client(http=httpx.Client(transport=_paged(items, key, []),
                                  base_url="http://t")) as c:
        everything = [x.id if key == "jobs" else x["id"] for x in getattr(c, key)()]
        first = getattr(c, key)(limit=4)
    assert everything == items and len(first) == 4

    async def run():
        async with AsyncClient(http=httpx.AsyncClient(transport=_paged(items, key, []),
                                                      base_url="http://t")) as a:
            return await getattr(a, key)(), await getattr(a, key)(limit=2)
    got, two = asyncio.run(run())
    assert len(got) == 8 and len(two) == 2


def test_client_upload_streams_the_file_from_disk(tmp_path):
    """The request holds the path, opened when sent (httpx streams an open file), never
    the file's bytes read whole."""
    import httpx

    path = tmp_path / "big.npz"
    path.write_bytes(os.urandom(3 << 20))
    seen: list[bytes] = []
    with Client(http=httpx.Client(transport=_paged([], "datasets", seen),
                                  base_url="http://t")) as c:
        assert c._upload_dataset(path).files["file"][1] == path
        assert c.upload_dataset(path, name="big")["id"] == "d1"
    assert path.read_bytes() in seen[0] and b'filename="big.npz"' in seen[0]
