import json

import numpy as np
import pytest
import torch

from ganserve.manifest import load_manifest
from training.eval.evaluate import evaluate, format_table
from training.eval.extractor import ExtractorSpec, FeatureExtractor


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_evaluate_writes_metrics_into_manifest(family, baby_exports, extractor_dir, idx_dir):
    vdir = baby_exports[family]
    r = evaluate(vdir, n=64, extractor=extractor_dir, data=idx_dir)
    for key in ("fid", "kid", "precision", "recall", "class_histogram", "class_entropy_bits"):
        assert key in r, key
    assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert sum(r["class_histogram"].values()) == pytest.approx(1.0, abs=1e-3)
    assert r["floor"] == {"fid": 1.0}
    if family == "cgan":
        assert 0 <= r["conditional_accuracy"] <= 1
        assert len(r["conditional_accuracy_per_class"]) == 10
    else:
        assert "conditional_accuracy" not in r
    stored = load_manifest(vdir).metrics["tiny"]
    assert stored["fid"] == r["fid"] and stored["n"] == 64
    table = format_table("m", r)
    assert "FID" in table and "precision" in table


def test_evaluate_is_deterministic(baby_exports, extractor_dir, idx_dir):
    a = evaluate(baby_exports["dcgan"], n=50, extractor=extractor_dir, data=idx_dir, write=False)
    b = evaluate(baby_exports["dcgan"], n=50, extractor=extractor_dir, data=idx_dir, write=False)
    assert a["fid"] == b["fid"] and a["precision"] == b["precision"]


def test_truncation_changes_stylegan_samples(baby_exports, extractor_dir, idx_dir):
    a = evaluate(baby_exports["stylegan"], n=50, extractor=extractor_dir, data=idx_dir,
                 write=False)
    b = evaluate(baby_exports["stylegan"], n=50, extractor=extractor_dir, data=idx_dir,
                 psi=0.0, write=False)
    assert a["fid"] != b["fid"]


def _rgb_extractor(folder, size=16):
    """An Inception-style extractor: RGB, resized, [0, 255] input, no logits."""
    folder.mkdir()

    class Net(torch.nn.Module):
        def forward(self, image):
            return torch.nn.functional.avg_pool2d(image, 4).flatten(1)

    torch.onnx.export(Net(), (torch.zeros(2, 3, size, size),), str(folder / "rgb.onnx"),
                      input_names=["x"], output_names=["pool"], opset_version=17, dynamo=False,
                      dynamic_axes={"x": {0: "b"}, "pool": {0: "b"}})
    spec = ExtractorSpec(name="rgb-pool", file="rgb.onnx", input="x", features="pool",
                         input_size=size, channels=3, value_range=(0.0, 255.0),
                         resize_filter="bicubic")
    (folder / "rgb.json").write_text(spec.model_dump_json())
    return folder / "rgb.json"


def test_any_onnx_extractor_with_declared_preprocessing(baby_exports, idx_dir, tmp_path):
    spec_path = _rgb_extractor(tmp_path / "ext")
    ext = FeatureExtractor(spec_path)
    x = ext.preprocess(np.full((2, 1, 32, 32), 1.0, np.float32))
    assert x.shape == (2, 3, 16, 16) and np.allclose(x, 255.0, atol=1e-3)
    r = evaluate(baby_exports["dcgan"], n=40, extractor=spec_path, data=idx_dir)
    assert r["extractor"] == "rgb-pool" and "class_histogram" not in r and r["fid"] >= 0
    # reference statistics computed from the data, since the spec ships none
    assert r["reference_n"] == 40
    assert "rgb-pool" in load_manifest(baby_exports["dcgan"]).metrics


def test_extractor_spec_errors_are_clear(tmp_path):
    from ganserve.manifest import ManifestError
    with pytest.raises(ManifestError, match="no extractor spec"):
        FeatureExtractor(tmp_path)
    (tmp_path / "extractor.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ManifestError, match="invalid extractor spec"):
        FeatureExtractor(tmp_path)


def test_evaluate_without_data_uses_shipped_reference(baby_exports, extractor_dir, tmp_path):
    r = evaluate(baby_exports["dcgan"], n=32, extractor=extractor_dir, data=tmp_path / "none",
                 write=False)
    assert "fid" in r and "kid" not in r and "precision" not in r


def test_stylegan_extras_measure_truncation_and_mixing(baby_exports, extractor_dir, idx_dir):
    r = evaluate(baby_exports["stylegan"], n=40, extractor=extractor_dir, data=idx_dir,
                 write=False)
    assert set(r["truncation"]) == {"class_entropy_psi_1", "class_entropy_psi_0.5"}
    mix = r["style_mixing"]
    assert mix["coarse_layers"] == "0-3" and mix["fine_layers"] == "4-7"
    assert 0 <= r["memorization"]["memorized_share"] <= 1


def test_memorization_flags_copies():
    from training.eval.memorization import memorization
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (200, 1, 8, 8)).astype(np.float32)
    test = rng.uniform(-1, 1, (100, 1, 8, 8)).astype(np.float32)
    copies = train[:50] + 0.001
    fresh = rng.uniform(-1, 1, (50, 1, 8, 8)).astype(np.float32)
    assert memorization(copies, train, test)["memorized_share"] == 1.0
    assert memorization(fresh, train, test)["memorized_share"] < 0.1
