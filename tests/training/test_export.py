import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import load_file

from ganserve.generator import OnnxGenerator
from ganserve.manifest import ManifestError, load_manifest, verify_files
from ganserve.training.export import ExportError, export_run
from ganserve.training.networks import build, config_from_dict
from tests.conftest import baby_run


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_export_writes_graphs_weights_and_manifest(family, baby_exports):
    vdir = baby_exports[family]
    m = load_manifest(vdir)
    verify_files(vdir, m)
    assert m.family == family and m.version == "1" and m.opset >= 17
    expected = {"stylegan": {"mapping", "synthesis"}}.get(family, {"generator"})
    assert set(m.graphs) == expected
    assert all(0 <= d <= 1e-4 for d in m.parity.values()) and set(m.parity) == expected
    assert set(m.weights) == {"G", "D", "G_ema"}
    assert m.training.steps == 4 and m.training.command == f"test {family}"
    assert m.created_at and all(len(h) == 64 for h in m.files.values())
    for g in m.graphs.values():
        model = onnx.load(str(vdir / g.file))
        assert model.opset_import[0].version >= 17
        dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert dim0.dim_param, "batch axis must be dynamic"
    if family == "stylegan":
        assert m.num_ws == 8 and len(m.w_avg) == m.w_dim
    if family == "cgan":
        assert m.num_classes == 10 and len(m.class_names) == 10


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_exported_onnx_matches_torch_on_any_batch(family, baby_exports):
    vdir = baby_exports[family]
    m = load_manifest(vdir)
    cfg = config_from_dict(family, m.model_args)
    G, _ = build(family, cfg)
    G.load_state_dict(load_file(str(vdir / "G_ema.safetensors")))
    G.eval()
    gen = OnnxGenerator(vdir)
    seeds = [3, 1, 4, 1, 5]
    classes = [0, 1, 2, 3, 9] if m.conditional else None
    ours = gen.generate(seeds, classes)
    z = torch.from_numpy(gen.latents(seeds))
    with torch.no_grad():
        ref = G(z, torch.tensor(classes or [0] * 5)).numpy()
    assert ours.shape == (5, 1, 32, 32)
    assert np.abs(ours - ref).max() <= 1e-4


def test_weights_for_finetune_rebuild_the_models(baby_exports):
    vdir = baby_exports["stylegan"]
    m = load_manifest(vdir)
    G, D = build("stylegan", config_from_dict("stylegan", m.model_args))
    G.load_state_dict(load_file(str(vdir / m.weights["G"])))
    D.load_state_dict(load_file(str(vdir / m.weights["D"])))


def test_existing_version_is_refused(baby_exports, tmp_path):
    vdir = baby_exports["dcgan"]
    with pytest.raises(ExportError, match="immutable"):
        export_run(tmp_path / "unused", vdir.parent.parent, "baby-dcgan", "1")


def test_bad_name_and_version_are_refused(tmp_path):
    with pytest.raises(ExportError, match="model name"):
        export_run(tmp_path, tmp_path, "Bad Name!", "1")
    with pytest.raises(ExportError, match="positive integers"):
        export_run(tmp_path, tmp_path, "ok", "v1")


def test_parity_failure_publishes_nothing(idx_dir, tmp_path):
    run = baby_run(tmp_path, "dcgan", idx_dir, steps=2)
    with pytest.raises(ExportError, match="refusing to publish"):
        export_run(run, tmp_path / "store", "strict", "1", parity_tol=1e-15)
    assert not (tmp_path / "store" / "strict" / "1").exists()
    assert not any((tmp_path / "store" / "strict").iterdir())       # temp folder cleaned


def test_next_version_is_automatic(idx_dir, tmp_path):
    run = baby_run(tmp_path, "dcgan", idx_dir, steps=2)
    assert export_run(run, tmp_path / "s", "m").name == "1"
    assert export_run(run, tmp_path / "s", "m").name == "2"


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_export_records_the_blocks_freeze_d_counts(baby_exports, family):
    from ganserve.training.loop import d_blocks
    from ganserve.training.networks import build, config_from_dict

    m = load_manifest(baby_exports[family])
    _, D = build(family, config_from_dict(family, m.model_args))
    assert m.d_blocks == d_blocks(D) > 0


def test_corrupted_file_fails_verification(baby_exports, tmp_path):
    import shutil
    vdir = shutil.copytree(baby_exports["dcgan"], tmp_path / "copy" / "1")
    with open(vdir / "generator.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ManifestError, match="generator.onnx: sha256 mismatch"):
        verify_files(vdir, load_manifest(vdir))
    (vdir / "D.safetensors").unlink()
    with pytest.raises(ManifestError, match="D.safetensors: missing"):
        OnnxGenerator(vdir)


def test_manifest_keeps_the_fid_curve_up_to_the_exported_step(idx_dir, tmp_path):
    import json

    run = baby_run(tmp_path, "dcgan", idx_dir, steps=2)
    with open(run / "metrics.jsonl", "a") as f:
        for row in ({"step": 1, "fid": 9.0, "fid_n": 8}, {"step": 2, "fid": 7.0, "fid_n": 8},
                    {"step": 2, "fid": 6.5, "fid_n": 8},       # re-logged after a resume
                    {"step": 5, "fid": 1.0, "fid_n": 8}):      # past the checkpoint
            f.write(json.dumps(row) + "\n")
    vdir = export_run(run, tmp_path / "store", "curve", "1")
    curve = load_manifest(vdir).training.fid_curve
    assert curve == [{"step": 1, "fid": 9.0, "fid_n": 8}, {"step": 2, "fid": 6.5, "fid_n": 8}]


def test_manifest_says_which_output_ranges_are_nominal(baby_exports):
    """StyleGAN's synthesis has no tanh: its [-1, 1] is nominal (clip for display); the
    DCGAN/cGAN generators end in tanh, so theirs is a bound."""
    from ganserve.manifest import load_manifest
    sg = load_manifest(baby_exports["stylegan"]).graphs["synthesis"].outputs[0]
    assert sg.value_range == [-1.0, 1.0] and sg.range_kind == "nominal"
    for fam in ("dcgan", "cgan"):
        out = load_manifest(baby_exports[fam]).graphs["generator"].outputs[0]
        assert out.range_kind == "bounded"
    assert load_manifest(baby_exports["stylegan"]).graphs["mapping"].outputs[0].range_kind \
        is None
