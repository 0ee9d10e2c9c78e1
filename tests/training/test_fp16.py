"""Float16 twins of the graphs: written at export, checked, served where asked for."""

import shutil

import numpy as np
import onnx
import pytest

from ganserve.generator import OnnxGenerator
from ganserve.images import encode_png
from ganserve.manifest import load_manifest, verify_files
from ganserve.service.rendering import pixels
from ganserve.training.export import export_run
from ganserve.training.fp16 import FP16_PARITY_TOL, Fp16Error, add_fp16_graphs
from tests.conftest import baby_run
from tests.service.conftest import make_client, wait_ready

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def fp16_store(tmp_path_factory, idx_dir):
    """Baby DCGAN and StyleGAN exported with --fp16: {family: version dir}."""
    root = tmp_path_factory.mktemp("fp16")
    return {fam: export_run(baby_run(root, fam, idx_dir), root / "models", f"half-{fam}", "1",
                            fp16=True)
            for fam in ("dcgan", "stylegan")}


@pytest.mark.parametrize("family", ["dcgan", "stylegan"])
def test_export_fp16_writes_checked_twins_beside_the_graphs(family, fp16_store):
    vdir = fp16_store[family]
    m = load_manifest(vdir)
    verify_files(vdir, m)                       # the twins are hashed like every file
    assert m.has_fp16 and set(m.parity_fp16) == set(m.graphs)
    # a real conversion: the numbers moved, and no further than the tolerance
    assert all(0 < d <= FP16_PARITY_TOL for d in m.parity_fp16.values())
    for spec in m.graphs.values():
        assert spec.fp16_file == spec.file.replace(".onnx", ".fp16.onnx")
        half = onnx.load(str(vdir / spec.fp16_file))
        weights = {t.data_type for t in half.graph.initializer if len(t.dims) > 1}
        assert weights == {FLOAT16}
        io = half.graph.input[:] + half.graph.output[:]
        assert {t.type.tensor_type.elem_type for t in io} == {FLOAT}   # the same interface


def test_export_without_fp16_writes_no_twins(baby_exports):
    m = load_manifest(baby_exports["dcgan"])
    assert not m.has_fp16 and m.parity_fp16 == {}
    assert not list(baby_exports["dcgan"].glob("*.fp16.onnx"))


def test_fp16_past_tolerance_writes_nothing(baby_exports, tmp_path):
    vdir = tmp_path / "1"
    shutil.copytree(baby_exports["stylegan"], vdir)
    before = (vdir / "manifest.json").read_bytes()
    with pytest.raises(Fp16Error, match="differs from float32"):
        add_fp16_graphs(vdir, tol=0.0)
    assert (vdir / "manifest.json").read_bytes() == before
    assert not list(vdir.glob("*.fp16.onnx"))


def test_generator_runs_fp16_graphs_close_to_fp32(fp16_store):
    vdir = fp16_store["stylegan"]
    full = OnnxGenerator(vdir, device="cpu")
    half = OnnxGenerator(vdir, device="cpu", fp16=True)
    assert half.fp16 and not full.fp16
    seeds = list(range(8))
    a, b = full.generate(seeds), half.generate(seeds)
    assert 0 < np.abs(a - b).max() <= FP16_PARITY_TOL


@pytest.mark.parametrize("setting, served_fp16", [("auto", False), ("on", True),
                                                  ("off", False)])
def test_service_runs_fp16_where_the_setting_says(fp16_store, setting, served_fp16):
    """On this CPU: auto runs float32 (float16 pays on a GPU only), on runs the twins."""
    models = fp16_store["dcgan"].parent.parent
    with make_client(models, fp16=setting) as c:
        wait_ready(c)
        info = c.get("/v1/models/half-dcgan").json()
        assert info["versions"][0]["fp16"] is served_fp16
        got = c.post("/v1/models/half-dcgan/sample", json={"seeds": [7]})
    # the bytes of the graphs it says it runs: same machine, same sessions' numbers
    gen = OnnxGenerator(fp16_store["dcgan"], device="cpu", fp16=served_fp16)
    assert got.status_code == 200
    assert got.content == encode_png(pixels(gen.generate([7]))[0])
