"""Golden outputs: the shipped models answer these requests with these images, before and
after any refactoring.

The README's pictures in docs/api are the first set: each is the API's answer to the request
its README example sends. The rest are the answers stored in golden/ (PNG, WebP, JSON). On
the machine that made them the bytes are identical; on another CPU family ONNX Runtime's
kernels round a few pixels the other way, so answers are compared within the measured
cross-CPU bound (tests/models/pixels.py: one grey level, a tiny fraction of the pixels).
After an intended change of output, regenerate them with
``GANSERVE_UPDATE_GOLDEN=1 pytest tests/models/test_golden_outputs.py`` and say why in the
commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.models.pixels import assert_same_image, assert_same_json
from tests.service.conftest import make_client, wait_ready

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden")
EXTENSIONS = {"image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
              "application/json": ".json"}
DC, CG, SG = "fashion-dcgan", "fashion-cgan", "fashion-stylegan"

# the README's examples (scripts/api_examples.py) and the pictures they wrote
README_PICTURES = {
    "sample.png": ("POST", f"/v1/models/{DC}/sample",
                   {"seeds": [0, 1, 2, 3, 4, 5, 6, 7], "cols": 8, "scale": 3}),
    "interpolate.png": ("POST", f"/v1/models/{DC}/interpolate",
                        {"start": {"seed": 1}, "end": {"seed": 2}, "steps": 10, "scale": 3}),
    "interpolate.gif": ("POST", f"/v1/models/{DC}/interpolate",
                        {"start": {"seed": 1}, "end": {"seed": 2}, "steps": 16, "scale": 3,
                         "format": "gif"}),
    "sample-get.png": ("GET", f"/v1/models/{DC}/sample.png?seed=42&truncation_psi=0.7&scale=8",
                       None),
    "conditional.png": ("POST", f"/v1/models/{CG}/conditional",
                        {"class": "Sneaker", "seeds": [0, 1, 2, 3, 4, 5, 6, 7], "cols": 8,
                         "scale": 3}),
    "morph.png": ("POST", f"/v1/models/{CG}/interpolate",
                  {"start": {"seed": 3, "class": "Sneaker"},
                   "end": {"seed": 3, "class": "Sandal"}, "steps": 10, "scale": 3}),
    "style-mix.png": ("POST", f"/v1/models/{SG}/style-mix",
                      {"row_seeds": [85, 100, 75, 458], "col_seeds": [55, 821, 1789, 293, 3],
                       "styles": "0-3", "scale": 3}),
}

# more requests per model and family feature: psi, classes, w space, lerp, JSON, webp
REQUESTS = {
    f"{name}/sample/seeds-0-15-psi-{psi}": ("POST", f"/v1/models/{name}/sample",
                                            {"seeds": "0-15", "truncation_psi": psi})
    for name in (DC, CG, SG) for psi in (1.0, 0.6)
} | {
    f"{SG}/sample/json-latents": ("POST", f"/v1/models/{SG}/sample",
                                  {"seeds": [7, 4294967295], "format": "json",
                                   "return_latents": True}),
    f"{CG}/conditional/classes": ("POST", f"/v1/models/{CG}/conditional",
                                  {"class": 9, "seeds": [11, 12, 13], "scale": 2}),
    f"{SG}/interpolate/w-lerp": ("POST", f"/v1/models/{SG}/interpolate",
                                 {"start": {"seed": 5}, "end": {"seed": 6}, "space": "w",
                                  "method": "lerp", "steps": 6, "truncation_psi": 0.7}),
    f"{SG}/interpolate/webp": ("POST", f"/v1/models/{SG}/interpolate",
                               {"start": {"seed": 5}, "end": {"seed": 6}, "steps": 4,
                                "format": "webp"}),
    f"{SG}/style-mix/fine-json": ("POST", f"/v1/models/{SG}/style-mix",
                                  {"row_seeds": "1-2", "col_seeds": "3-5", "styles": "fine",
                                   "format": "json"}),
}


@pytest.fixture(scope="module")
def shipped():
    with make_client(REPO / "models") as c:
        wait_ready(c)
        yield c


def _answer(client, method: str, path: str, body: dict | None) -> tuple[bytes, str]:
    r = client.get(path) if method == "GET" else client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.content, r.headers["content-type"].split(";")[0]


@pytest.mark.parametrize("picture", sorted(README_PICTURES))
def test_readme_pictures_are_what_the_api_answers(shipped, picture):
    method, path, body = README_PICTURES[picture]
    got, _ = _answer(shipped, method, path, body)
    assert_same_image(got, (REPO / "docs/api" / picture).read_bytes(), picture)


def golden_file(key: str, media_type: str) -> Path:
    return GOLDEN / (key.replace("/", "__") + EXTENSIONS[media_type])


@pytest.mark.parametrize("key", sorted(REQUESTS))
def test_outputs_match_the_golden_answers(shipped, key):
    got, media_type = _answer(shipped, *REQUESTS[key])
    path = golden_file(key, media_type)
    if os.environ.get("GANSERVE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(got)
    assert path.is_file(), f"no golden answer {path.name} (GANSERVE_UPDATE_GOLDEN=1 makes it)"
    compare = assert_same_json if media_type == "application/json" else assert_same_image
    compare(got, path.read_bytes(), key)


def test_golden_folder_holds_only_these_answers():
    expected = {golden_file(k, t).name for k, (_, _, body) in REQUESTS.items()
                for t in [_media_type(body)]}
    assert {p.name for p in GOLDEN.iterdir()} == expected


def _media_type(body: dict | None) -> str:
    fmt = (body or {}).get("format", "png")
    return {"json": "application/json", "webp": "image/webp", "gif": "image/gif"}.get(
        fmt, "image/png")
