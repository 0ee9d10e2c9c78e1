"""Projection (POST .../project) and latent directions (GET .../directions, POST .../edit)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.service import crafted
from tests.service.conftest import error, make_client, wait_ready

DC, CG, SG, PLAIN = "baby-dcgan", "baby-cgan", "baby-stylegan", "plain-dcgan"


@pytest.fixture(scope="module")
def client(inverted_store):
    with make_client(inverted_store) as c:
        wait_ready(c)
        yield c


def png_bytes(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


def shoe(size: int = 28) -> bytes:
    """A light shape on black, as Fashion-MNIST images are."""
    a = np.zeros((size, size), np.uint8)
    a[size // 3:2 * size // 3, size // 6:5 * size // 6] = 200
    return png_bytes(a)


def project(client, name: str, image: bytes = None, **fields):
    body = {"image": base64.b64encode(image or shoe()).decode(), **fields}
    return client.post(f"/v1/models/{name}/project", json=body)


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.mark.parametrize("name, latent, size", [(DC, "z", 16), (CG, "z", 16), (SG, "w", 16)])
def test_project_returns_latent_reconstruction_and_scores(client, name, latent, size):
    r = project(client, name)
    assert r.status_code == 200, r.text
    body = r.json()
    dim = client.get(f"/v1/models/{name}").json()[f"{latent}_dim"]
    assert list(body["latent"]) == [latent] and len(body["latent"][latent]) == dim
    assert decode(body["image"]).shape == decode(body["input"]).shape == (32, 32)
    # the 28-pixel image was padded to 32 with its background, as the training data was
    assert decode(body["input"])[:2].max() == 0
    assert set(body["scores"]) == {"psnr", "ssim"} and -1 <= body["scores"]["ssim"] <= 1
    assert (body["class_index"] is not None) == (name == CG)


def test_projected_z_starts_an_interpolation_to_a_seed(client):
    p = project(client, DC).json()
    r = client.post(f"/v1/models/{DC}/interpolate", json={
        "start": {"z": p["latent"]["z"]}, "end": {"seed": 3}, "steps": 3, "format": "json"})
    assert r.status_code == 200, r.text
    first = r.json()["images"][0]["png"]
    assert first == p["image"]          # the projection's reconstruction, the same bytes


def test_projected_w_starts_an_interpolation_in_w_and_an_edit(client):
    p = project(client, SG).json()
    w = p["latent"]["w"]
    r = client.post(f"/v1/models/{SG}/interpolate", json={
        "start": {"w": w}, "end": {"seed": 3}, "steps": 3, "space": "w", "format": "json"})
    assert r.status_code == 200, r.text
    assert r.json()["images"][0]["png"] == p["image"]
    e = client.post(f"/v1/models/{SG}/edit", json={"w": w, "format": "json"})
    assert e.status_code == 200 and e.json()["images"][0]["png"] == p["image"]


def test_style_mix_of_two_projected_images(client):
    """Rows and columns may be latents: the grid's sources are the two reconstructions,
    and its cells mix them."""
    a = project(client, SG).json()
    b = project(client, SG, shoe(20)).json()
    r = client.post(f"/v1/models/{SG}/style-mix", json={
        "row_sources": [{"w": a["latent"]["w"]}],
        "col_sources": [{"w": b["latent"]["w"]}, {"seed": 4}],
        "styles": "coarse", "format": "json"})
    assert r.status_code == 200, r.text
    cells = r.json()["images"]          # blank, col b, col seed 4; row a, a x b, a x 4
    assert len(cells) == 6 and cells[2]["seed"] == 4 and cells[3].get("seed") is None
    assert cells[1]["png"] == b["image"] and cells[3]["png"] == a["image"]
    assert cells[4]["png"] not in (a["image"], b["image"])
    # a seed among latents draws what row_seeds / col_seeds draw
    by_seed = client.post(f"/v1/models/{SG}/style-mix", json={
        "row_seeds": [1], "col_seeds": [4], "format": "json"}).json()["images"]
    assert cells[2]["png"] == by_seed[1]["png"]


@pytest.mark.parametrize("body, status, field", [
    ({"row_seeds": [1], "row_sources": [{"seed": 1}], "col_seeds": [2]}, 422, None),
    ({"col_seeds": [2]}, 422, None),
    ({"row_sources": [{"w": [0.0] * 3}], "col_seeds": [2]}, 422, "row_sources[0].w"),
    ({"row_sources": [{"seed": 1, "class": 2}], "col_seeds": [2]}, 400, None),
    ({"row_sources": [], "col_seeds": [2]}, 422, None),
])
def test_style_mix_refuses_bad_sources(client, body, status, field):
    r = client.post(f"/v1/models/{SG}/style-mix", json=body)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["error"]["field"] == field


def test_multipart_and_json_give_the_same_projection(client):
    a = project(client, CG, **{"class": "class3"}).json()
    r = client.post(f"/v1/models/{CG}/project", files={"file": ("shoe.png", shoe())},
                    data={"class": "class3"})
    assert r.status_code == 200, r.text
    assert r.json() == a and a["class_index"] == 3 and a["class_name"] == "class3"


def test_project_crops_rgb_and_odd_sizes_to_the_model(client):
    rgb = np.zeros((90, 60, 3), np.uint8)
    rgb[30:60, 10:50] = (250, 10, 10)
    r = project(client, DC, png_bytes(rgb, fmt="JPEG"))
    assert r.status_code == 200, r.text
    assert decode(r.json()["input"]).shape == (32, 32)


@pytest.mark.parametrize("content, status, code", [
    (b"hello, this is text", 422, "not_an_image"),
    (crafted.corrupt_png(), 422, "corrupt_image"),
    (png_bytes(np.zeros((5000, 1), np.uint8)), 413, "image_too_large"),
])
def test_project_refuses_bad_images(client, content, status, code):
    error(project(client, DC, content), status, code, "image")


def test_project_takes_a_large_photo_within_the_body_limit(client):
    big = np.full((1500, 2000, 3), 30, np.uint8)
    big[500:1000, 600:1400] = 220
    body = png_bytes(big)
    assert len(body) < 1 << 20
    r = project(client, SG, body)
    assert r.status_code == 200, r.text
    assert decode(r.json()["input"]).shape == (32, 32)


def test_project_refuses_a_decompression_bomb(client):
    r = project(client, DC, crafted.bomb_png())
    assert r.status_code in (413, 422) and r.json()["error"]["code"] == "image_too_large"


def test_project_refuses_bad_bodies(client):
    error(client.post(f"/v1/models/{DC}/project", json={"image": "%%%"}), 422,
          "invalid_input", "image")
    error(client.post(f"/v1/models/{DC}/project", json={"picture": "x"}), 422,
          "invalid_input")
    error(client.post(f"/v1/models/{DC}/project", content=b"x",
                      headers={"content-type": "text/plain"}), 415, "unsupported_media_type")
    error(client.post(f"/v1/models/{DC}/project", files={"image": ("a.png", shoe())}), 422,
          "invalid_input", "image")
    error(project(client, DC, **{"class": "class1"}), 400, "unsupported_for_family")
    error(project(client, CG, **{"class": "no-such"}), 422, "invalid_input", "class")


def test_version_without_an_encoder_or_directions_says_how_to_add_them(client):
    e = error(project(client, PLAIN), 409, "not_available")
    assert "ganserve train-encoder plain-dcgan/1" in e["message"]
    e = error(client.get(f"/v1/models/{PLAIN}/directions"), 409, "not_available")
    assert "ganserve directions plain-dcgan/1" in e["message"]
    assert client.get(f"/v1/models/{PLAIN}").json()["capabilities"] == ["sample",
                                                                       "interpolate"]
    assert {"project", "edit"} <= set(client.get(f"/v1/models/{DC}").json()["capabilities"])


def test_directions_list_principal_axes_and_class_pairs(client):
    d = client.get(f"/v1/models/{SG}/directions").json()
    names = [x["name"] for x in d["directions"]]
    assert d["space"] == "w" and names[:3] == ["pc0", "pc1", "pc2"]
    for pair in d["directions"][3:]:        # the classes the classifier found often enough
        assert pair["kind"] == "class" and pair["space"] == "w"
        assert pair["name"] == f"{pair['info']['from']}->{pair['info']['to']}"
    cg = client.get(f"/v1/models/{CG}/directions").json()["directions"]
    assert len(cg) == 3 + 90 and "class7->class5" in [x["name"] for x in cg]
    assert next(x for x in cg if x["kind"] == "class")["space"] == "class"


@pytest.mark.parametrize("name", [DC, CG, SG])
def test_edit_by_nothing_is_the_sample(client, name):
    edited = client.post(f"/v1/models/{name}/edit", json={"seed": 5})
    sample = client.post(f"/v1/models/{name}/sample", json={"seeds": [5]})
    assert edited.status_code == 200 and edited.content == sample.content


def test_edit_strip_walks_one_direction(client):
    r = client.post(f"/v1/models/{DC}/edit", json={
        "seed": 5, "strip": {"direction": "pc0", "start": -2, "stop": 2, "steps": 5},
        "format": "json"})
    assert r.status_code == 200, r.text
    pngs = [i["png"] for i in r.json()["images"]]
    plain = client.post(f"/v1/models/{DC}/sample", json={"seeds": [5], "format": "json"})
    assert pngs[2] == plain.json()["images"][0]["png"] and len(set(pngs)) == 5
    strip = client.post(f"/v1/models/{DC}/edit", json={
        "seed": 5, "strip": {"direction": "pc0", "steps": 4}, "scale": 2})
    assert Image.open(io.BytesIO(strip.content)).size == (4 * 64, 64)


def test_conditional_class_direction_moves_the_class_input(client):
    full = client.post(f"/v1/models/{CG}/edit", json={
        "seed": 1, "class": "class2", "directions": {"class2->class6": 1.0}})
    other = client.post(f"/v1/models/{CG}/conditional", json={"seeds": [1], "class": 6})
    assert full.status_code == 200 and full.content == other.content
    half = client.post(f"/v1/models/{CG}/edit", json={
        "seed": 1, "class": "class2", "directions": {"class2->class6": 0.5}})
    assert half.status_code == 200 and "x-classes" not in half.headers   # a mixture


def test_edit_refuses_unknown_directions_and_bad_sources(client):
    e = error(client.post(f"/v1/models/{DC}/edit", json={"seed": 1,
                                                          "directions": {"pc00": 1}}),
              422, "invalid_input", "directions")
    assert e["details"]["suggestion"] == "pc0"
    error(client.post(f"/v1/models/{DC}/edit", json={"seed": 1, "z": [0.0] * 16}), 422,
          "invalid_input")
    error(client.post(f"/v1/models/{DC}/edit", json={"w": [0.0] * 16}), 422,
          "invalid_input", "w")
    error(client.post(f"/v1/models/{SG}/edit", json={"w": [0.0] * 3}), 422,
          "invalid_input", "w")
    error(client.post(f"/v1/models/{SG}/edit", json={"seed": 1, "class": "class1"}), 400,
          "unsupported_for_family")
    error(client.post(f"/v1/models/{DC}/edit", json={"seed": 1, "directions": {"pc0": 1e9}}),
          422, "invalid_input")
    error(client.post(f"/v1/models/{DC}/edit", json={
        "seed": 1, "strip": {"direction": "nope", "steps": 3}}), 422, "invalid_input",
        "strip.direction")
