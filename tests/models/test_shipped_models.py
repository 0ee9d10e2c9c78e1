"""Every model shipped in models/ loads with ONNX Runtime and carries its proven metrics."""

from pathlib import Path

import numpy as np
import pytest

from ganserve.generator import OnnxGenerator
from ganserve.manifest import list_versions, load_manifest

MODELS = Path(__file__).resolve().parents[2] / "models"
METRICS_KEY = "fashion-mnist-classifier"


def shipped_versions() -> list[Path]:
    return [d / list_versions(d)[-1] for d in sorted(MODELS.iterdir())
            if not d.name.startswith(("_", ".")) and list_versions(d)]


# Bars a shipped model does not reach yet, with the measured value: each is reported in the
# README and fails loudly (strict xfail) once a retrained version reaches it.
KNOWN_MISSES: dict[str, str] = {}   # model name -> why it misses a bar (strict xfail)


def test_fashion_models_are_shipped():
    names = {p.parent.name for p in shipped_versions()}
    assert {"fashion-dcgan", "fashion-cgan", "fashion-stylegan"} <= names


def test_model_store_stays_under_60_mb():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 60 * 2**20, f"models/ is {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("vdir", shipped_versions(), ids=lambda p: p.parent.name)
def test_shipped_model_loads_and_generates(vdir):
    gen = OnnxGenerator(vdir, device="cpu")       # verifies every file's sha256
    m = gen.manifest
    assert (m.resolution, m.channels) == (32, 1) and m.name == vdir.parent.name
    seeds = [0, 1, 2]
    classes = [7, 5, 9] if m.conditional else None
    images = gen.generate(seeds, classes)
    assert images.shape == (3, 1, 32, 32) and np.isfinite(images).all()
    assert np.array_equal(images, gen.generate(seeds, classes))
    assert all(v <= 1e-4 for v in m.parity.values()) and m.parity
    assert m.training.steps > 0 and m.training.command.startswith("ganserve train")
    assert m.training.wall_seconds > 0 and m.training.images_per_second > 0
    if m.family == "stylegan":
        assert m.num_ws == 8 and len(m.w_avg) == m.w_dim


def bar_params():
    return [pytest.param(v, id=v.parent.name, marks=pytest.mark.xfail(
                reason=KNOWN_MISSES[v.parent.name], strict=True))
            if v.parent.name in KNOWN_MISSES else pytest.param(v, id=v.parent.name)
            for v in shipped_versions()]


@pytest.mark.parametrize("vdir", shipped_versions(), ids=lambda p: p.parent.name)
def test_shipped_model_metrics_meet_the_bar_apart_from_recall(vdir):
    m = load_manifest(vdir)
    r = m.metrics[METRICS_KEY]
    assert r["n"] == 10_000
    assert r["class_share_min"] >= 0.06 and r["class_share_max"] <= 0.14
    assert r["precision"] >= 0.70
    assert r["memorization"]["memorized_share"] < 0.01
    assert r["fid"] > r["floor"]["fid"]
    if m.conditional:
        assert r["conditional_accuracy"] >= 0.90 and r["conditional_accuracy_min"] >= 0.75
    if m.family == "stylegan":
        t = r["truncation"]
        assert t["class_entropy_psi_0.5"] < t["class_entropy_psi_1"]
        mix = r["style_mixing"]
        assert mix["pairs_with_different_classes"] >= 500
        assert mix["coarse_mix_follows_coarse_source"] > 0.5     # coarse styles carry the type
        assert mix["fine_mix_keeps_base_class"] > 0.5            # fine styles keep it


@pytest.mark.parametrize("vdir", bar_params())
def test_shipped_model_recall_meets_the_bar(vdir):
    assert load_manifest(vdir).metrics[METRICS_KEY]["recall"] >= 0.50
