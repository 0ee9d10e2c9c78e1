"""How well a fine-tuned version fits the images it was tuned on.

The use case is adapting a model to a narrower set of images (say 1,000 bags), so three
numbers answer "did it work, without copying?":
- ``target_share``: the share of samples the project's classifier puts in the target classes;
- ``precision`` / ``recall`` (k = 3, classifier features) against the tuning images;
- ``near_copy_share``: samples closer (pixel L2) to a tuning image than the 1st percentile of
  unseen real images of the same classes are (``ganserve.evaluation.memorization``'s rule).
Conditional models are sampled in the target classes only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganserve.data import ImageData
from ganserve.evaluation.evaluate import EvaluationError, default_extractor
from ganserve.evaluation.memorization import memorization
from ganserve.features import FeatureExtractor
from ganserve.generator import OnnxGenerator
from ganserve.manifest import load_manifest
from ganserve.quality import precision_recall


def _sample_classes(class_names: list[str], targets: list[str], n: int) -> list[int] | None:
    if not class_names:
        return None
    wanted = [class_names.index(c) for c in targets if c in class_names] or \
        list(range(len(class_names)))
    return [wanted[i % len(wanted)] for i in range(n)]


def fine_tune_quality(version_dir: str | Path, tuned_on: ImageData, unseen: ImageData | None,
                      targets: list[str], n: int = 1000, seed: int = 0,
                      extractor: str | Path | None = None, device: str = "cpu"
                      ) -> dict[str, Any]:
    """Score ``version_dir`` against the images it was tuned on (``tuned_on``); ``unseen``
    (real images of the same classes it never saw) sets the near-copy threshold."""
    vdir = Path(version_dir)
    m = load_manifest(vdir)
    ext = FeatureExtractor(extractor or default_extractor(vdir), device=device)
    unknown = [c for c in targets if c not in ext.class_names]
    if unknown:
        raise EvaluationError(f"the classifier knows no class {', '.join(unknown)}")
    gen = OnnxGenerator(vdir, device=device)
    seeds = list(range(seed, seed + n))
    samples = gen.generate(seeds, _sample_classes(m.class_names if m.conditional else [],
                                                  targets, n))
    feats, logits = ext.run(samples)
    real_feats = ext.run(tuned_on.as_float())[0]
    precision, recall = precision_recall(real_feats, feats, k=3)
    out: dict[str, Any] = {"n": n, "seed": seed, "extractor": ext.spec.name,
                           "precision": round(float(precision), 4),
                           "recall": round(float(recall), 4)}
    if targets and logits is not None:
        idx = [ext.class_names.index(c) for c in targets]
        out["target_classes"] = list(targets)
        out["target_share"] = round(float(np.isin(logits.argmax(1), idx).mean()), 4)
    if unseen is not None and len(unseen) >= 2:
        mem = memorization(samples, tuned_on.as_float(), unseen.as_float())
        out["near_copy_share"] = mem["memorized_share"]
        out["near_copy_threshold_l2"] = mem["threshold_l2"]
    return out
