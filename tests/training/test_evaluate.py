import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ganserve.evaluation.evaluate as ev
from ganserve.data import DataError
from ganserve.evaluation.evaluate import evaluate, format_table
from ganserve.evaluations import (
    EvaluationRecord,
    effective_metrics,
    evaluations_dir,
    list_records,
)
from ganserve.features import ExtractorSpec, FeatureExtractor
from ganserve.generator import OnnxGenerator
from ganserve.manifest import load_manifest, sha256_file


def _copy_version(vdir, tmp_path):
    """A private store copy of a session export: MODELS/NAME/VERSION under tmp_path."""
    dest = tmp_path / "models" / vdir.parent.name / vdir.name
    shutil.copytree(vdir, dest)
    return dest


def _folder_digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_evaluate_stores_a_record_beside_the_version(family, baby_exports, extractor_dir,
                                                     idx_dir, tmp_path):
    vdir = _copy_version(baby_exports[family], tmp_path)
    r = evaluate(vdir, n=64, extractor=extractor_dir, data=idx_dir)
    for key in ("fid", "kid", "precision", "recall", "class_histogram", "class_entropy_bits"):
        assert key in r, key
    assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert sum(r["class_histogram"].values()) == pytest.approx(1.0, abs=1e-3)
    assert r["floor"] == {"fid": 1.0} and r["skipped"] == {}
    if family == "cgan":
        assert 0 <= r["conditional_accuracy"] <= 1
        assert len(r["conditional_accuracy_per_class"]) == 10
    else:
        assert "conditional_accuracy" not in r
    assert load_manifest(vdir).metrics == {}                 # the manifest is not written
    (rec,) = list_records(vdir)
    assert r["record"] == str(evaluations_dir(vdir) / f"{rec.id}.json")
    assert rec.metrics["fid"] == r["fid"] and rec.n == 64 and rec.kind == "tiny"
    card = effective_metrics(vdir, load_manifest(vdir))["tiny"]
    assert card["fid"] == r["fid"] and set(card["sources"].values()) == {rec.id}
    table = format_table("m", r)
    assert "FID" in table and "precision" in table


def test_evaluate_leaves_the_version_folder_byte_identical(baby_exports, extractor_dir,
                                                           idx_dir, tmp_path):
    vdir = _copy_version(baby_exports["stylegan"], tmp_path)
    before = _folder_digest(vdir)
    evaluate(vdir, n=40, extractor=extractor_dir, data=idx_dir)
    evaluate(vdir, n=20, extractor=extractor_dir, data_free=True, extras=False)
    assert _folder_digest(vdir) == before
    assert len(list_records(vdir)) == 2
    OnnxGenerator(vdir, verify=True)            # the sha256-verified load still passes


def test_evaluate_smaller_second_run_keeps_the_first_runs_metrics(baby_exports, extractor_dir,
                                                                  idx_dir, tmp_path):
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    full = evaluate(vdir, n=64, extractor=extractor_dir, data=idx_dir)
    small = evaluate(vdir, n=20, seed=7, extractor=extractor_dir, data_free=True, extras=False)
    assert small["fid"] != full["fid"] and "kid" not in small
    assert set(small["skipped"]) >= {"kid", "precision", "recall", "memorization"}
    first, second = list_records(vdir)
    assert (first.n, second.n) == (64, 20) and second.data_free
    card = effective_metrics(vdir, load_manifest(vdir))["tiny"]
    # metrics both have: the latest wins; metrics only the first has: kept, with their source
    assert card["fid"] == small["fid"] and card["sources"]["fid"] == second.id
    assert card["sources"]["class_entropy_bits"] == second.id
    for key in ("kid", "precision", "recall", "memorization"):
        assert card[key] == full[key] and card["sources"][key] == first.id, key
    assert card["evaluations"][first.id]["n"] == 64
    src = card["evaluations"][second.id]
    assert (src["n"], src["seed"], src["data_free"]) == (20, 7, True)


def test_evaluate_record_is_json_with_its_provenance(baby_exports, extractor_dir, idx_dir,
                                                    tmp_path, monkeypatch):
    monkeypatch.setenv("GANSERVE_EVALUATED_BY", "alice@lab")
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    r = evaluate(vdir, n=32, seed=3, psi=1.0, extractor=extractor_dir, data=idx_dir)
    raw = json.loads(Path(r["record"]).read_text())
    rec = EvaluationRecord.model_validate(raw)
    assert (raw["model"], raw["version"]) == ("baby-dcgan", "1")
    assert raw["evaluated_by"] == "alice@lab"
    assert raw["evaluated_at"].endswith("+00:00") and raw["evaluated_at"] == r["evaluated_at"]
    assert (raw["n"], raw["seed"], raw["psi"]) == (32, 3, 1.0)
    assert raw["ganserve_version"] and raw["manifest_sha256"] == sha256_file(
        vdir / "manifest.json")
    assert rec.extractor.name == "tiny"
    assert rec.extractor.file_sha256 == sha256_file(extractor_dir / "tiny.onnx")
    assert rec.extractor.spec_sha256 == sha256_file(extractor_dir / "extractor.json")
    assert rec.reference.fid_against == "extractor stats"
    assert rec.reference.stats_sha256 == sha256_file(extractor_dir / "ref.npz")
    assert rec.reference.data == str(idx_dir.resolve())
    assert (rec.reference.test_images, rec.reference.train_images) == (40, 64)
    assert len(rec.reference.test_sha256) == 64 and not rec.data_free
    assert rec.metrics["fid"] == r["fid"] and "n" not in rec.metrics


def test_evaluate_missing_data_fails_before_sampling(baby_exports, extractor_dir, tmp_path,
                                                     monkeypatch):
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)

    def no_sampling(*a, **k):
        raise AssertionError("sampled before checking the data")

    monkeypatch.setattr(ev, "sample_features", no_sampling)
    monkeypatch.setattr(ev, "OnnxGenerator", no_sampling)
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        evaluate(vdir, n=32, extractor=extractor_dir, data=missing)
    with pytest.raises(DataError, match=re.escape(str(missing))):
        evaluate(vdir, n=32, extractor=extractor_dir, data=missing, write=False)
    assert not evaluations_dir(vdir).exists()


def test_evaluate_missing_train_split_fails_unless_quick(baby_exports, extractor_dir, idx_dir,
                                                         tmp_path):
    """The memorization check needs the train split: its absence is an error up front too."""
    test_only = tmp_path / "test-only"
    test_only.mkdir()
    for f in idx_dir.glob("t10k-*"):
        shutil.copy(f, test_only / f.name)
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    with pytest.raises(DataError, match="test-only"):
        evaluate(vdir, n=32, extractor=extractor_dir, data=test_only)
    assert not evaluations_dir(vdir).exists()
    r = evaluate(vdir, n=32, extractor=extractor_dir, data=test_only, extras=False)
    assert "kid" in r and r["skipped"] == {"memorization": "--quick"}


def test_evaluate_no_write_stores_nothing(baby_exports, extractor_dir, idx_dir, tmp_path):
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    r = evaluate(vdir, n=32, extractor=extractor_dir, data=idx_dir, write=False)
    assert r["record"] is None and "fid" in r
    assert not evaluations_dir(vdir).exists()


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
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    r = evaluate(vdir, n=40, extractor=spec_path, data=idx_dir)
    assert r["extractor"] == "rgb-pool" and "class_histogram" not in r and r["fid"] >= 0
    # reference statistics computed from the data, since the spec ships none
    assert r["reference_n"] == 40
    (rec,) = list_records(vdir)
    assert rec.reference.fid_against == "test data" and rec.reference.stats is None
    assert "rgb-pool" in effective_metrics(vdir, load_manifest(vdir))


def test_extractor_spec_errors_are_clear(tmp_path):
    from ganserve.manifest import ManifestError
    with pytest.raises(ManifestError, match="no extractor spec"):
        FeatureExtractor(tmp_path)
    (tmp_path / "extractor.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ManifestError, match="invalid extractor spec"):
        FeatureExtractor(tmp_path)


def test_evaluate_data_free_uses_shipped_reference_and_says_so(baby_exports, extractor_dir,
                                                               tmp_path):
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    r = evaluate(vdir, n=32, extractor=extractor_dir, data_free=True)
    assert "fid" in r and "kid" not in r and "precision" not in r and r["data_free"]
    (rec,) = list_records(vdir)
    assert rec.data_free and rec.reference.data is None
    assert rec.reference.fid_against == "extractor stats"
    assert set(rec.skipped) == {"kid", "precision", "recall", "memorization"}
    assert "kid" not in rec.metrics and "fid" in rec.metrics


def test_evaluate_data_free_needs_stored_reference_stats(baby_exports, tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "sample_features", lambda *a, **k: pytest.fail("sampled"))
    vdir = _copy_version(baby_exports["dcgan"], tmp_path)
    spec_path = _rgb_extractor(tmp_path / "ext")
    with pytest.raises(DataError, match="no reference statistics"):
        evaluate(vdir, n=32, extractor=spec_path, data_free=True)
    assert not evaluations_dir(vdir).exists()


def test_stylegan_extras_measure_truncation_and_mixing(baby_exports, extractor_dir, idx_dir):
    r = evaluate(baby_exports["stylegan"], n=40, extractor=extractor_dir, data=idx_dir,
                 write=False)
    assert set(r["truncation"]) == {"class_entropy_psi_1", "class_entropy_psi_0.5"}
    mix = r["style_mixing"]
    assert mix["coarse_layers"] == "0-3" and mix["fine_layers"] == "4-7"
    assert 0 <= r["memorization"]["memorized_share"] <= 1


def test_memorization_flags_copies():
    from ganserve.evaluation.memorization import memorization
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (200, 1, 8, 8)).astype(np.float32)
    test = rng.uniform(-1, 1, (100, 1, 8, 8)).astype(np.float32)
    copies = train[:50] + 0.001
    fresh = rng.uniform(-1, 1, (50, 1, 8, 8)).astype(np.float32)
    assert memorization(copies, train, test)["memorized_share"] == 1.0
    assert memorization(fresh, train, test)["memorized_share"] < 0.1
