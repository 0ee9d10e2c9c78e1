"""The evaluation classifier shipped in models/_evaluators/fashion-mnist."""

from pathlib import Path

import numpy as np
import pytest

from ganserve.data import DEFAULT_FASHION_DIR, load_images
from ganserve.features import FeatureExtractor
from ganserve.quality import FeatureStats

EVALUATOR = Path(__file__).resolve().parents[2] / "models" / "_evaluators" / "fashion-mnist"


def test_shipped_evaluator_spec_and_files():
    ext = FeatureExtractor(EVALUATOR)          # verifies every file's sha256
    s = ext.spec
    assert s.input_size == 32 and s.channels == 1 and s.logits == "logits"
    assert s.test_accuracy >= 0.92
    assert len(s.class_names) == 10 and s.class_names[7] == "Sneaker"
    assert {"fid", "kid", "precision", "recall"} <= set(s.floor)
    ref = FeatureStats.load(EVALUATOR / s.reference)
    assert ref.n == 10_000 and ref.sigma.shape == (128, 128)


@pytest.mark.skipif(not DEFAULT_FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_shipped_classifier_reaches_92_percent_on_the_test_split():
    test = load_images(DEFAULT_FASHION_DIR, split="test")
    _, logits = FeatureExtractor(EVALUATOR).run(test.as_float())
    acc = float((logits.argmax(1) == test.labels).mean())
    assert acc >= 0.92
    assert acc == pytest.approx(FeatureExtractor(EVALUATOR).spec.test_accuracy, abs=1e-3)
    assert np.isfinite(logits).all()
