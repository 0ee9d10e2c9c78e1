"""`ganserve generate` writes the bytes the API returns for the same request (shipped models)."""

from pathlib import Path

import pytest

from ganserve.cli.main import main
from tests.models.pixels import assert_same_image

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


@pytest.fixture
def api(shipped_api):
    return shipped_api


def _generate(tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "out"
    assert main(["generate", *argv, "--models-dir", str(MODELS), "--outdir", str(out)]) == 0
    return out


def test_generate_seeds_and_grid_are_the_api_bytes(tmp_path, api):
    out = _generate(tmp_path, "fashion-cgan", "--seeds", "3,40-41", "--psi", "0.7",
                    "--class", "Sneaker", "--scale", "2", "--grid", "--cols", "2")
    for seed in (3, 40, 41):
        one = api.post("/v1/models/fashion-cgan/conditional", json={
            "class": "Sneaker", "seeds": [seed], "truncation_psi": 0.7, "scale": 2})
        assert (out / f"seed{seed:04d}.png").read_bytes() == one.content
    grid = api.post("/v1/models/fashion-cgan/conditional", json={
        "class": "Sneaker", "seeds": [3, 40, 41], "truncation_psi": 0.7, "scale": 2, "cols": 2})
    assert (out / "grid.png").read_bytes() == grid.content


def test_generate_interpolation_and_style_mix_are_the_api_bytes(tmp_path, api):
    """The same bytes as the API on this machine; the README's pictures (made on another
    CPU, perhaps) within the cross-CPU bound."""
    out = _generate(tmp_path, "fashion-dcgan/1", "--interpolate", "1", "2", "--steps", "16",
                    "--scale", "3", "--format", "gif")
    gif = api.post("/v1/models/fashion-dcgan/interpolate", json={
        "start": {"seed": 1}, "end": {"seed": 2}, "steps": 16, "scale": 3, "format": "gif"})
    assert (out / "interpolate-1-2.gif").read_bytes() == gif.content
    assert_same_image(gif.content, (REPO / "docs/api/interpolate.gif").read_bytes(), "gif")
    out = _generate(tmp_path, "fashion-stylegan", "--style-mix", "--row-seeds", "85,100,75,458",
                    "--col-seeds", "55,821,1789,293,3", "--styles", "0-3", "--scale", "3")
    mix = api.post("/v1/models/fashion-stylegan/style-mix", json={
        "row_seeds": [85, 100, 75, 458], "col_seeds": [55, 821, 1789, 293, 3],
        "styles": "0-3", "scale": 3})
    assert (out / "style-mix.png").read_bytes() == mix.content
    assert_same_image(mix.content, (REPO / "docs/api/style-mix.png").read_bytes(), "mix")


@pytest.mark.parametrize("argv, says", [
    (["fashion-dcgan", "--style-mix"], "families that support it: stylegan"),
    (["fashion-cgan", "--class", "nope"], "unknown class 'nope'"),
    (["no-such-model"], "no-such-model"),
    (["fashion-dcgn"], "no model named 'fashion-dcgn'; did you mean 'fashion-dcgan'? models: "
                       "fashion-cgan, fashion-dcgan, fashion-stylegan"),
    (["fashion-cgan", "--class", "Snekaer"], "did you mean 'Sneaker'? classes: T-shirt/top"),
    (["fashion-dcgan", "--seeds", "5-1"], "runs backwards"),
])
def test_generate_errors_are_one_line_exit_1(tmp_path, capsys, argv, says):
    rc = main(["generate", *argv, "--models-dir", str(MODELS), "--outdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and says in err and "Traceback" not in err
